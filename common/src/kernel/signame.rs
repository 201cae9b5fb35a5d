//! Signal names and numbers as Linux numbers them on x86-64 and arm64 (the
//! generic numbering): `SIGKILL` is 9, real-time signals are `SIGRTMIN`
//! (32, the kernel's; C libraries keep 32 to 34 for themselves) to
//! `SIGRTMAX` (64).

const NAMES: [&str; 32] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The kernel's first and last real-time signals.
const RTMIN: i64 = 32;
const RTMAX: i64 = 64;

/// The name of signal `sig` (`SIGKILL`, `SIGRTMIN+3`); `None` for 0 and
/// numbers that are no signal.
pub fn name(sig: i64) -> Option<String> {
    match sig {
        1..=31 => Some(NAMES[sig as usize].to_string()),
        RTMIN => Some("SIGRTMIN".into()),
        RTMAX => Some("SIGRTMAX".into()),
        33..=63 => Some(format!("SIGRTMIN+{}", sig - RTMIN)),
        _ => None,
    }
}

/// A signal given by the user: a number (`9`, `0`), or a name with or
/// without `SIG` in any case (`KILL`, `sigkill`, `RTMIN+2`, `SIGRTMAX-1`,
/// `POLL`, `IOT`, `CLD`).
pub fn parse(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u32>() {
        return (n as i64 <= RTMAX).then_some(n);
    }
    let up = t.to_ascii_uppercase();
    let bare = up.strip_prefix("SIG").unwrap_or(&up);
    let alias = match bare {
        "POLL" => "IO",
        "IOT" => "ABRT",
        "CLD" => "CHLD",
        b => b,
    };
    if let Some(i) = NAMES.iter().position(|n| n.len() > 3 && &n[3..] == alias) {
        return Some(i as u32);
    }
    let rt = |base: i64, rest: &str| -> Option<u32> {
        let v = if rest.is_empty() {
            base
        } else if let Some(n) = rest.strip_prefix('+') {
            base + n.parse::<i64>().ok()?
        } else if let Some(n) = rest.strip_prefix('-') {
            base - n.parse::<i64>().ok()?
        } else {
            return None;
        };
        (RTMIN..=RTMAX).contains(&v).then_some(v as u32)
    };
    if let Some(rest) = alias.strip_prefix("RTMIN") {
        return rt(RTMIN, rest);
    }
    if let Some(rest) = alias.strip_prefix("RTMAX") {
        return rt(RTMAX, rest);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_agree_with_libc() {
        assert_eq!(name(libc::SIGKILL as i64).as_deref(), Some("SIGKILL"));
        assert_eq!(name(libc::SIGCHLD as i64).as_deref(), Some("SIGCHLD"));
        assert_eq!(name(libc::SIGSYS as i64).as_deref(), Some("SIGSYS"));
        assert_eq!(name(35).as_deref(), Some("SIGRTMIN+3"));
        assert_eq!(name(64).as_deref(), Some("SIGRTMAX"));
        assert_eq!(name(0), None);
        assert_eq!(name(65), None);
        assert_eq!(name(-1), None);
        for sig in 1..=64 {
            assert_eq!(parse(&name(sig).unwrap()), Some(sig as u32));
        }
    }

    #[test]
    fn user_forms() {
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("kill"), Some(9));
        assert_eq!(parse("SIGTERM"), Some(15));
        assert_eq!(parse("sigusr1"), Some(10));
        assert_eq!(parse("POLL"), Some(29));
        assert_eq!(parse("IOT"), Some(6));
        assert_eq!(parse("RTMIN+2"), Some(34));
        assert_eq!(parse("SIGRTMAX-1"), Some(63));
        for bad in [
            "",
            "65",
            "SIG",
            "KIL",
            "RTMIN+40",
            "RTMAX+1",
            "-9",
            "SIGRTMINX",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
