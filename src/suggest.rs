//! "Did you mean ...?": the nearest known name to a mistyped one. Pure string work, shared by
//! the agents' parameter checks, fence_ups and `hastack config`.

/// The edit distance between two words, counting an insertion, a deletion, a substitution or a
/// swap of two neighbours as one edit (optimal string alignment), so `ups_seiral` is one edit
/// from `ups_serial` and `ext44` one from `ext4`.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: the one before the previous (for swaps), the previous and the current.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// The known name nearest to `word`, if it is close enough to be a typo of it: at most one edit
/// for short names, two for names of six characters or more. Ties go to the first candidate; a
/// known word has no suggestion.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = if word.chars().count() >= 6 { 2 } else { 1 };
    let (d, k) = known.into_iter().map(|k| (distance(word, k), k)).min_by_key(|(d, _)| *d)?;
    (d > 0 && d <= limit).then_some(k)
}

/// `" (did you mean 'x'?)"`, or nothing: for appending to an error message.
pub fn hint<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, known).map(|k| format!(" (did you mean '{k}'?)")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("ext4", "ext4"), 0);
        assert_eq!(distance("ext44", "ext4"), 1);
        assert_eq!(distance("xsf", "xfs"), 1, "a swap is one edit");
        assert_eq!(distance("ups_seiral", "ups_serial"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_names_typos_only() {
        let known = ["ext2", "ext3", "ext4", "xfs", "btrfs"];
        assert_eq!(closest("ext44", known), Some("ext4"));
        assert_eq!(closest("btfrs", known), Some("btrfs"));
        assert_eq!(closest("ext4", known), None, "a known name is no typo");
        assert_eq!(closest("zfs", ["nfs", "xfs"]), Some("nfs"), "ties: the first");
        assert_eq!(closest("beegfs", known), None);
        assert_eq!(hint("serial_prot", ["serial_port", "ups_serial"]), " (did you mean 'serial_port'?)");
        assert_eq!(hint("zzz", ["serial_port"]), "");
    }
}
