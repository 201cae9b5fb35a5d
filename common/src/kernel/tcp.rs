//! TCP's states as the kernel numbers them (include/net/tcp_states.h, also
//! user-visible in /proc/net/tcp): one table for the `print fmt` renderer,
//! which meets them as `TCP_*` names, and for tcpretrans, which prints them.

/// The states from 1 (`ESTABLISHED`) up, without their `TCP_` prefix.
pub const TCP_STATES: [&str; 13] = [
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
    "BOUND_INACTIVE",
];

/// The number of a state named without its prefix.
pub fn state_number(name: &str) -> Option<u64> {
    TCP_STATES
        .iter()
        .position(|s| *s == name)
        .map(|i| i as u64 + 1)
}

/// The name of state `n` as `ss` and perf-tools print it, `STATE<n>` for
/// a number the table does not know.
pub fn state_name(n: i64) -> String {
    match usize::try_from(n)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| TCP_STATES.get(i))
    {
        Some(s) => s.to_string(),
        None => format!("STATE{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_agree() {
        assert_eq!(state_name(1), "ESTABLISHED");
        assert_eq!(state_name(13), "BOUND_INACTIVE");
        assert_eq!(state_name(0), "STATE0");
        assert_eq!(state_name(-1), "STATE-1");
        assert_eq!(state_name(99), "STATE99");
        assert_eq!(state_number("LISTEN"), Some(10));
        assert_eq!(state_number("NOPE"), None);
    }
}
