//! One interval's counts, turned into perf-tools' columns (bcc's formula),
//! and the Buffers and Cached lines of /proc/meminfo.

use crate::points::{Role, ROLES};

/// Raw counts of one interval, by [`Role`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts(pub [u64; 4]);

impl Counts {
    pub fn add(&mut self, role: Role) {
        self.0[slot(role)] += 1;
    }

    pub fn get(&self, role: Role) -> u64 {
        self.0[slot(role)]
    }
}

fn slot(role: Role) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap_or(0)
}

/// The columns computed from [`Counts`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub dirties: u64,
    /// Percent of accesses that were hits; 0 without accesses.
    pub ratio: f64,
}

/// bcc's cachestat formula: accesses are page accesses less buffer
/// dirtyings (mark_buffer_dirty marks its page accessed too); misses are
/// pages added to the cache less those added by writes (a page written
/// anew is added and dirtied); hits the rest. Where misses exceed the
/// accesses (readahead added pages not yet read), every access is a miss.
pub fn compute(c: &Counts) -> Stats {
    let total = c.get(Role::Access).saturating_sub(c.get(Role::BufferDirty));
    let mut misses = c.get(Role::Add).saturating_sub(c.get(Role::Dirty));
    let hits = match total.checked_sub(misses) {
        Some(h) => h,
        None => {
            misses = total;
            0
        }
    };
    let ratio = if total > 0 {
        100.0 * hits as f64 / total as f64
    } else {
        0.0
    };
    Stats {
        hits,
        misses,
        dirties: c.get(Role::Dirty),
        ratio,
    }
}

/// `Buffers` and `Cached` of /proc/meminfo, in MiB (None: unreadable).
pub fn meminfo_mb(text: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb / 1024)
        })
    };
    (field("Buffers"), field("Cached"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_then_rereads() {
        // 256 pages read from disk, then the same again from the cache.
        let first = compute(&Counts([256, 256, 0, 0]));
        assert_eq!((first.hits, first.misses), (0, 256));
        let second = compute(&Counts([256, 0, 0, 0]));
        assert_eq!((second.hits, second.misses, second.ratio), (256, 0, 100.0));
    }

    #[test]
    fn writes_are_not_misses_and_readahead_is_capped() {
        let w = compute(&Counts([10, 10, 10, 2]));
        assert_eq!((w.hits, w.misses, w.dirties), (8, 0, 10));
        let ra = compute(&Counts([4, 32, 0, 0]));
        assert_eq!((ra.hits, ra.misses), (0, 4));
    }

    #[test]
    fn meminfo_fields() {
        let t = "MemTotal:        1000 kB\nBuffers:           2048 kB\nCached:          10240 kB\nSwapCached:  0 kB\n";
        assert_eq!(meminfo_mb(t), (Some(2), Some(10)));
        assert_eq!(meminfo_mb("junk"), (None, None));
    }

    proptest! {
        #[test]
        fn never_more_than_the_accesses(c in proptest::array::uniform4(0u64..1_000_000)) {
            let s = compute(&Counts(c));
            prop_assert!(s.hits + s.misses <= c[0]);
            prop_assert!((0.0..=100.0).contains(&s.ratio));
        }

        #[test]
        fn meminfo_never_panics(t in ".{0,200}") {
            let _ = meminfo_mb(&t);
        }
    }
}
