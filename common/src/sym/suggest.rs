//! "Did you mean" suggestions for unknown library and symbol names.
//!
//! Like [`crate::base::glob::suggestions`], but with a distance computation that
//! gives up early: a C++ or Rust binary has 100 000 symbols of 100 bytes,
//! and full Levenshtein over all of them takes seconds.

/// Picks up to `max` names close to `query`: within a small edit distance
/// (case-insensitive), or starting with it, or containing it. Closest first.
pub(crate) fn suggest<'a>(
    query: &str,
    names: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Vec<String> {
    let q = query.to_lowercase();
    if q.is_empty() {
        return Vec::new();
    }
    let limit = (q.chars().count() / 3).clamp(1, 3);
    let mut scored: Vec<(usize, String)> = Vec::new();
    for name in names {
        let n = name.to_lowercase();
        if n == q {
            continue;
        }
        let score = if n.starts_with(&q) {
            Some(1 + (n.len() - q.len()).min(20) / 10)
        } else if q.len() >= 3 && n.contains(&q) {
            Some(3)
        } else {
            bounded_distance(&q, &n, limit)
        };
        if let Some(s) = score {
            scored.push((s, name.to_string()));
        }
    }
    scored.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.len().cmp(&b.1.len()))
            .then(a.1.cmp(&b.1))
    });
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(max).map(|(_, n)| n).collect()
}

/// Levenshtein distance between `a` and `b` if it is at most `limit`.
pub(crate) fn bounded_distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            row_min = row_min.min(cur[j]);
        }
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[b.len()];
    (d <= limit).then_some(d)
}

/// Formats suggestions as a sentence tail: `" Did you mean: a, b?"`, or "".
pub(crate) fn did_you_mean(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" Did you mean: {}?", s.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(bounded_distance("malloc", "malloc", 2), Some(0));
        assert_eq!(bounded_distance("mallco", "malloc", 2), Some(2));
        assert_eq!(bounded_distance("mallo", "malloc", 1), Some(1));
        assert_eq!(bounded_distance("abc", "xyzxyz", 2), None);
    }

    #[test]
    fn suggestions() {
        let names = ["libssl", "libcrypto", "libc", "libsss_nss_idmap", "libz"];
        assert_eq!(suggest("libsl", names, 3)[0], "libssl");
        assert_eq!(
            suggest("libss", names, 5)[..2],
            ["libssl", "libsss_nss_idmap"]
        );
        assert!(suggest("zzzzzzzz", names, 3).is_empty());
        assert_eq!(
            did_you_mean(&["a".into(), "b".into()]),
            " Did you mean: a, b?"
        );
    }
}
