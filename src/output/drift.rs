//! The tree a build would write + what is on disk → the changes, as a unified
//! diff (git's `a/` and `b/` names, 3 lines of context) or a summary.

use std::fs;
use std::path::Path;

use rayon::prelude::*;

use super::OutputTree;
use super::install::{Held, OldTree};

/// How one file would change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Changed,
    Removed,
}

/// One file that would change, named as the user sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub change: Change,
    pub old: String,
    pub new: String,
}

/// Every file `build` would add, change or delete in `out_dir`; paths are
/// shown as `shown_as/<relative path>`.
pub fn changes(
    tree: &OutputTree,
    old: &OldTree,
    out_dir: &Path,
    same: &std::collections::BTreeSet<String>,
    shown_as: &str,
) -> Vec<FileChange> {
    let read = |p: &str| fs::read_to_string(out_dir.join(p)).unwrap_or_default();
    // Reading the old files is the cost: done in parallel, in a fixed order.
    let mut out: Vec<FileChange> = tree
        .files()
        .par_iter()
        .filter_map(|(path, text)| {
            let (change, before) = match old.held(out_dir, same, path, text) {
                Held::Same => return None,
                Held::Absent => (Change::Added, String::new()),
                Held::Other(before) => (Change::Changed, before),
            };
            Some(FileChange {
                path: join(shown_as, path),
                change,
                old: before,
                new: text.clone(),
            })
        })
        .collect();
    for path in old.owned.iter().filter(|p| !tree.files().contains_key(*p)) {
        out.push(FileChange {
            path: join(shown_as, path),
            change: Change::Removed,
            old: read(path),
            new: String::new(),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The change of a single file (the lock) from `old` (`None`: missing) to `new`.
pub fn file_change(path: &str, old: Option<String>, new: &str) -> Option<FileChange> {
    match old {
        None => Some(FileChange {
            path: path.into(),
            change: Change::Added,
            old: String::new(),
            new: new.into(),
        }),
        Some(old) if old != new => Some(FileChange {
            path: path.into(),
            change: Change::Changed,
            old,
            new: new.into(),
        }),
        Some(_) => None,
    }
}

fn join(prefix: &str, path: &str) -> String {
    if prefix.is_empty() || prefix == "." {
        path.to_string()
    } else {
        format!("{}/{path}", prefix.trim_end_matches('/'))
    }
}

/// A git-style unified diff of every change; coloured when `color`.
pub fn unified(changes: &[FileChange], color: bool) -> String {
    let mut out = String::new();
    for c in changes {
        let (a, b) = match c.change {
            Change::Added => ("/dev/null".to_string(), format!("b/{}", c.path)),
            Change::Removed => (format!("a/{}", c.path), "/dev/null".to_string()),
            Change::Changed => (format!("a/{}", c.path), format!("b/{}", c.path)),
        };
        let diff = similar::TextDiff::from_lines(&c.old, &c.new);
        let text = diff
            .unified_diff()
            .context_radius(3)
            .header(&a, &b)
            .to_string();
        out += &if color { colorize(&text) } else { text };
    }
    out
}

fn colorize(diff: &str) -> String {
    diff.lines()
        .map(|line| {
            let code = match line.as_bytes().first() {
                _ if line.starts_with("---") || line.starts_with("+++") => "1",
                Some(b'+') => "32",
                Some(b'-') => "31",
                Some(b'@') => "36",
                _ => return format!("{line}\n"),
            };
            format!("\u{1b}[{code}m{line}\u{1b}[0m\n")
        })
        .collect()
}

/// One line per changed file: `added|changed|removed path (+n -m)`.
pub fn stat(changes: &[FileChange]) -> String {
    let mut out = String::new();
    for c in changes {
        let diff = similar::TextDiff::from_lines(&c.old, &c.new);
        let (mut plus, mut minus) = (0, 0);
        for op in diff.iter_all_changes() {
            match op.tag() {
                similar::ChangeTag::Insert => plus += 1,
                similar::ChangeTag::Delete => minus += 1,
                similar::ChangeTag::Equal => {}
            }
        }
        let what = match c.change {
            Change::Added => "added",
            Change::Changed => "changed",
            Change::Removed => "removed",
        };
        out += &format!("{what:<8} {} (+{plus} -{minus})\n", c.path);
    }
    out += &format!("{} files would change\n", changes.len());
    out
}
