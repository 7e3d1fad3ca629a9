//! The mount table, read from /proc/self/mountinfo (exact, unlike /proc/mounts: it has mount
//! IDs, the device number and the root of bind mounts).

use std::fs;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    pub mount_id: u32,
    pub parent_id: u32,
    /// `major:minor` of the filesystem's device.
    pub major: u32,
    pub minor: u32,
    /// The directory of the filesystem mounted here (`/` unless a bind mount of a subtree).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub mount_options: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

/// Undoes the octal escapes the kernel uses for space, tab, newline and backslash.
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // The kernel writes \ooo for one byte: \000 to \377. A higher value (\777) is no escape
        // of the kernel's and stays as written.
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        let value = octal.map(|d| d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0')));
        if let Some(v) = value.and_then(|v| u8::try_from(v).ok()) {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one mountinfo line:
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
pub fn parse_line(line: &str) -> Option<MountInfo> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    let (major, minor) = l.get(2)?.split_once(':')?;
    Some(MountInfo {
        mount_id: l.first()?.parse().ok()?,
        parent_id: l.get(1)?.parse().ok()?,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root: PathBuf::from(unescape(l.get(3)?)),
        mount_point: PathBuf::from(unescape(l.get(4)?)),
        mount_options: l.get(5)?.to_string(),
        fstype: r.first()?.to_string(),
        source: unescape(r.get(1)?),
        super_options: r.get(2).unwrap_or(&"").to_string(),
    })
}

pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

/// The current mount table of this process's mount namespace.
pub fn mounts() -> std::io::Result<Vec<MountInfo>> {
    Ok(parse(&fs::read_to_string("/proc/self/mountinfo")?))
}

/// The topmost mount on exactly `dir` (the last one in the table wins, as the kernel stacks them).
pub fn mounted_at<'a>(table: &'a [MountInfo], dir: &Path) -> Option<&'a MountInfo> {
    table.iter().rev().find(|m| m.mount_point == dir)
}

/// Mounts strictly below `dir`.
pub fn mounted_below<'a>(table: &'a [MountInfo], dir: &Path) -> Vec<&'a MountInfo> {
    table.iter().filter(|m| m.mount_point != dir && m.mount_point.starts_with(dir)).collect()
}

/// The mount a path lies on, as path lookup in this namespace would find it: the mount whose
/// mount point is the longest prefix of `path` (component-wise), the topmost where mounts stack.
/// Used where the kernel only gives a path string (readlink of /proc/PID/cwd) and no mount ID.
pub fn mount_containing<'a>(table: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    let mut best: Option<&MountInfo> = None;
    for m in table {
        if path.starts_with(&m.mount_point)
            && best.is_none_or(|b| m.mount_point.components().count() >= b.mount_point.components().count())
        {
            best = Some(m);
        }
    }
    best
}

/// The mount `id` and every mount on top of or below it (its mount subtree, by parent IDs),
/// children before parents: the order in which they can be unmounted.
pub fn subtree_post_order(table: &[MountInfo], id: u32) -> Vec<&MountInfo> {
    fn visit<'a>(table: &'a [MountInfo], id: u32, out: &mut Vec<&'a MountInfo>, depth: usize) {
        // Later mounts first: of two children, the one mounted last may sit on the other.
        for child in table.iter().rev().filter(|m| m.parent_id == id && m.mount_id != id) {
            if depth < 64 && !out.iter().any(|o| o.mount_id == child.mount_id) {
                visit(table, child.mount_id, out, depth + 1);
            }
        }
        if let Some(me) = table.iter().find(|m| m.mount_id == id) {
            out.push(me);
        }
    }
    let mut out = Vec::new();
    visit(table, id, &mut out, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
36 22 7:0 / /srv/data rw,relatime shared:20 - xfs /dev/loop0 rw,attr2
37 36 0:40 / /srv/data/tmp rw shared:21 - tmpfs tmpfs rw,size=1024k
38 22 7:0 /sub /mnt/bind\\040dir rw,relatime shared:20 - xfs /dev/loop0 rw,attr2
";

    #[test]
    fn parses_fields_and_escapes() {
        let t = parse(TABLE);
        assert_eq!(t.len(), 4);
        assert_eq!(t[1].mount_id, 36);
        assert_eq!((t[1].major, t[1].minor), (7, 0));
        assert_eq!(t[1].fstype, "xfs");
        assert_eq!(t[1].source, "/dev/loop0");
        assert_eq!(t[3].mount_point, PathBuf::from("/mnt/bind dir"));
        assert_eq!(t[3].root, PathBuf::from("/sub"));
    }

    #[test]
    fn finds_mounts_at_and_below() {
        let t = parse(TABLE);
        assert_eq!(mounted_at(&t, Path::new("/srv/data")).unwrap().mount_id, 36);
        assert!(mounted_at(&t, Path::new("/srv")).is_none());
        let below: Vec<u32> = mounted_below(&t, Path::new("/srv/data")).iter().map(|m| m.mount_id).collect();
        assert_eq!(below, vec![37]);
        // A sibling with a common string prefix is not below.
        assert!(mounted_below(&t, Path::new("/srv/dat")).is_empty());
    }

    #[test]
    fn an_octal_escape_above_377_stays_as_written() {
        // Fuzz finding (proc_files): \777 overflowed a u8 (a panic with overflow checks).
        assert_eq!(unescape("a\\777b"), "a\\777b");
        assert_eq!(unescape("a\\377"), String::from_utf8_lossy(b"a\xff"));
        assert_eq!(unescape("end\\04"), "end\\04");
        let line = "36 22 7:0 / /srv/data rw,relatime shared:2\\777 - xfs /dev/loop0 rw";
        assert_eq!(parse_line(line).unwrap().mount_point, std::path::PathBuf::from("/srv/data"));
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape("plain\\"), "plain\\");
    }

    #[test]
    fn finds_the_mount_a_path_lies_on() {
        let t = parse(TABLE);
        let id = |p: &str| mount_containing(&t, Path::new(p)).map(|m| m.mount_id);
        assert_eq!(id("/srv/data/file"), Some(36));
        assert_eq!(id("/srv/data"), Some(36));
        assert_eq!(id("/srv/data/tmp/x"), Some(37));
        assert_eq!(id("/srv/datafile"), Some(22));
        assert_eq!(id("/mnt/bind dir/x"), Some(38));
    }

    #[test]
    fn subtree_lists_children_first() {
        let t = parse(
            "22 1 8:1 / / rw - ext4 /dev/sda1 rw
36 22 7:0 / /d rw - xfs /dev/loop0 rw
37 36 0:40 / /d/a rw - tmpfs tmpfs rw
39 37 0:41 / /d/a/b rw - tmpfs tmpfs rw
40 36 0:42 / /d rw - tmpfs tmpfs rw
41 22 7:0 / /elsewhere rw - xfs /dev/loop0 rw
",
        );
        let ids: Vec<u32> = subtree_post_order(&t, 36).iter().map(|m| m.mount_id).collect();
        assert_eq!(ids, vec![40, 39, 37, 36]);
        assert!(subtree_post_order(&t, 99).is_empty());
    }
}
