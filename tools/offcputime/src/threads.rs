//! What offcputime asks of a thread it sees switched out: its process,
//! and whether it is a kernel thread (for -p, -u, -k), read from /proc
//! once per thread.

use std::collections::HashMap;

/// `PF_KTHREAD` in the flags of /proc/TID/stat.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The flags field of a /proc/TID/stat line (the 9th field; the name in
/// parentheses may hold spaces and parentheses, so fields are counted
/// after the last `)`).
pub fn stat_flags(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(6)?.parse().ok()
}

#[derive(Debug, Clone, Copy)]
struct Info {
    tgid: Option<u32>,
    kthread: bool,
}

/// Threads seen so far.
#[derive(Debug, Default)]
pub struct Threads {
    known: HashMap<i32, Info>,
}

impl Threads {
    fn info(&mut self, tid: i32) -> Info {
        *self.known.entry(tid).or_insert_with(|| {
            let t = tid.max(0) as u32;
            let flags = std::fs::read_to_string(format!("/proc/{t}/stat"))
                .ok()
                .and_then(|s| stat_flags(&s));
            Info {
                tgid: ftrace_common::kernel::proc::tgid(t),
                kthread: flags.is_some_and(|f| f & PF_KTHREAD != 0),
            }
        })
    }

    /// The process of `tid` (None once it has exited unseen).
    pub fn tgid(&mut self, tid: i32) -> Option<u32> {
        self.info(tid).tgid
    }

    /// Whether `tid` is a kernel thread.
    pub fn kthread(&mut self, tid: i32) -> bool {
        self.info(tid).kthread
    }

    /// Forgets a thread (it exited; its ID may come back as another's).
    pub fn forget(&mut self, tid: i32) {
        self.known.remove(&tid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flags_are_found_after_the_name() {
        let s = "42 (a) b) (c) S 2 0 0 0 -1 2129984 0 0 0 0";
        assert_eq!(stat_flags(s), Some(2129984));
        assert!(stat_flags(s).unwrap() & PF_KTHREAD != 0);
        assert_eq!(stat_flags("1 (init) S 0 1"), None);
        assert_eq!(stat_flags("no parenthesis"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert_eq!(stat_flags(&own).map(|f| f & PF_KTHREAD), Some(0));
    }

    proptest! {
        #[test]
        fn stat_parsing_never_panics(s in "\\PC*") {
            let _ = stat_flags(&s);
        }
    }
}
