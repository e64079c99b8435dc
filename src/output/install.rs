//! [`OutputTree`] + the output directory on disk → the new tree in its place,
//! all at once.
//!
//! The new tree is staged beside the old one (files kmetal did not write are
//! carried over, unchanged files are hard-linked so their mtimes stay), then
//! swapped in with one atomic `renameat2(RENAME_EXCHANGE)`: a crash at any
//! moment leaves the old tree or the new one, never a mix. Files listed in the
//! old `.kmetal-manifest` and no longer produced are gone with the old tree;
//! files kmetal did not write are never deleted or overwritten. A build that
//! changes nothing touches nothing. A non-empty directory without a manifest
//! is refused: kmetal never takes over a directory it did not create.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{MANIFEST, OutputTree};
use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};

/// Test-only fault injection: a relative output path whose write fails.
const FAULT_ENV: &str = "KMETAL_FAULT_INJECT_WRITE";

/// What an install did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Files kmetal wrote (new or changed).
    pub written: usize,
    pub unchanged: usize,
    /// Files kmetal had written before and no longer produces.
    pub removed: usize,
}

/// What one entry of the old tree is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Other,
}

/// The output directory as it is now.
#[derive(Debug, Default)]
pub struct OldTree {
    /// Relative path (with `/`) → kind, every entry below the root.
    pub entries: BTreeMap<String, Kind>,
    /// What the old manifest says kmetal wrote.
    pub owned: BTreeSet<String>,
}

/// What the output directory holds where kmetal writes a file.
pub enum Held {
    /// No entry at all.
    Absent,
    /// A regular file with exactly the new text.
    Same,
    /// Anything else: a file with this other text, or (empty) a link, a
    /// directory or a file that cannot be read. A link is not the file
    /// `build` writes in its place, whatever it leads to.
    Other(String),
}

impl OldTree {
    /// What is at `path` against the `text` kmetal writes there; `same`
    /// holds the files already known to hold their new text (read with the
    /// previous output), which are not read again.
    pub fn held(&self, out_dir: &Path, same: &BTreeSet<String>, path: &str, text: &str) -> Held {
        match self.entries.get(path) {
            None => Held::Absent,
            Some(Kind::File) if same.contains(path) => Held::Same,
            Some(Kind::File) => match super::read_unless(&out_dir.join(path), Some(text)) {
                Ok(super::OnDisk::Same) => Held::Same,
                Ok(super::OnDisk::Other(before)) => Held::Other(before),
                Err(_) => Held::Other(String::new()),
            },
            Some(_) => Held::Other(String::new()),
        }
    }
}

fn io_error(path: &Path, error: io::Error) -> Diagnostic {
    Diagnostic::error(codes::IO, format!("{}: {error}", path.display()))
}

impl OldTree {
    /// Read the output directory; an empty tree if it does not exist. A
    /// symlink (or anything but a directory) in its place is refused.
    pub fn read(out_dir: &Path) -> Result<OldTree, Diagnostic> {
        let meta = match fs::symlink_metadata(out_dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OldTree::default()),
            Err(e) => return Err(io_error(out_dir, e)),
        };
        if !meta.is_dir() {
            return Err(Diagnostic::error(
                codes::OUTPUT_UNSAFE,
                format!(
                    "the output directory {} is a symlink or a file",
                    out_dir.display()
                ),
            )
            .help(
                "kmetal does not write through links: point output (or --out) at a real directory",
            ));
        }
        let mut tree = OldTree {
            entries: entries_below(out_dir, "", 0)?.into_iter().collect(),
            ..OldTree::default()
        };
        if tree.entries.get(MANIFEST) == Some(&Kind::File) {
            let text = fs::read_to_string(out_dir.join(MANIFEST))
                .map_err(|e| io_error(&out_dir.join(MANIFEST), e))?;
            tree.owned = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty() && super::is_plain_relative(l))
                .map(str::to_string)
                .collect();
            tree.owned.insert(MANIFEST.to_string());
        } else if !tree.entries.is_empty() {
            return Err(Diagnostic::error(
                codes::OUTPUT_UNSAFE,
                format!(
                    "{} is not empty and was not written by kmetal (it has no {MANIFEST})",
                    out_dir.display()
                ),
            )
            .help(
                "kmetal replaces its output directory as a whole: give it a new or empty directory",
            ));
        }
        Ok(tree)
    }

    /// Directories that hold an owned file: kmetal made them.
    fn owned_dirs(&self) -> BTreeSet<String> {
        (self.owned.iter())
            .flat_map(|f| ancestors(f).map(str::to_string))
            .collect()
    }
}

/// How many levels [`entries_below`] reads in parallel, the directories of
/// each level at once (`tenants/<name>/` is the second).
const PARALLEL_LEVELS: usize = 2;
/// How many levels it reads itself (kmetal writes three); below them walkdir
/// goes on, however deep, one subtree per thread.
const OWN_LEVELS: usize = 4;

/// Every entry below `dir` as (path relative to the output directory, with
/// `/`; kind), in no particular order. Links are not followed.
fn entries_below(
    dir: &Path,
    prefix: &str,
    level: usize,
) -> Result<Vec<(String, Kind)>, Diagnostic> {
    let failed = |e: &dyn std::fmt::Display| {
        Diagnostic::error(codes::IO, format!("cannot read the output directory: {e}"))
    };
    let kind = |t: fs::FileType| match t {
        t if t.is_dir() => Kind::Dir,
        t if t.is_file() => Kind::File,
        _ => Kind::Other,
    };
    let join = |name: &str| match prefix {
        "" => name.to_string(),
        _ => format!("{prefix}/{name}"),
    };
    if level >= OWN_LEVELS {
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(dir).min_depth(1) {
            let entry = entry.map_err(|e| failed(&e))?;
            found.push((join(&relative(dir, entry.path())), kind(entry.file_type())));
        }
        return Ok(found);
    }
    let with_path = |e: io::Error| failed(&format!("{}: {e}", dir.display()));
    // (path, kind, where to read it if it is a directory)
    let mut here = Vec::new();
    for entry in fs::read_dir(dir).map_err(with_path)? {
        let entry = entry.map_err(with_path)?;
        let kind = kind(entry.file_type().map_err(with_path)?);
        let name = join(&entry.file_name().to_string_lossy());
        here.push((name, kind, (kind == Kind::Dir).then(|| entry.path())));
    }
    // The first failure in name order, whichever thread met it.
    here.sort_by(|a, b| a.0.cmp(&b.0));
    let descend = |(name, _, dir): &(String, Kind, Option<PathBuf>)| {
        Some(entries_below(dir.as_ref()?, name, level + 1))
    };
    let below: Vec<_> = if level < PARALLEL_LEVELS {
        here.par_iter().filter_map(descend).collect()
    } else {
        here.iter().filter_map(descend).collect()
    };
    let mut found: Vec<(String, Kind)> = here.into_iter().map(|(n, k, _)| (n, k)).collect();
    for entries in below {
        found.extend(entries?);
    }
    Ok(found)
}

fn relative(root: &Path, path: &Path) -> String {
    let relative = path
        .strip_prefix(root)
        .expect("walkdir yields paths below its root");
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// `a/b/c.yaml` → `a`, `a/b`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> + '_ {
    path.match_indices('/').map(|(i, _)| &path[..i])
}

/// Files kmetal did not write, standing where it wants to write.
pub fn conflicts(tree: &OutputTree, old: &OldTree, out_dir: &Path) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    for path in tree.files().keys() {
        let blocked = std::iter::once(path.as_str())
            .chain(
                ancestors(path)
                    .filter(|dir| old.entries.get(*dir).is_some_and(|k| *k != Kind::Dir)),
            )
            .find(|p| {
                let kind = old.entries.get(*p);
                let in_the_way = if p == path { kind.is_some() } else { true };
                in_the_way
                    && !old.owned.contains(*p)
                    && !(p == path && super::holds(&out_dir.join(p), &tree.files()[path]))
            });
        if let Some(blocked) = blocked {
            diagnostics.push(
                Diagnostic::error(
                    codes::OUTPUT_CONFLICT,
                    format!("{} was not written by kmetal, and kmetal wants to write {path}", out_dir.join(blocked).display()),
                )
                .at(SourceLocation::file(out_dir.join(blocked).display().to_string()))
                .help("move the file away (kmetal never overwrites files it did not write), then build again"),
            );
        }
    }
    diagnostics
}

/// The files of `tree` that `out_dir` already holds as regular files with
/// their new text: those in `same` (known from reading the previous output)
/// and those found so here, each read once.
fn already_there<'t>(
    tree: &'t OutputTree,
    old: &OldTree,
    out_dir: &Path,
    same: &BTreeSet<String>,
) -> BTreeSet<&'t str> {
    (tree.files().par_iter())
        .filter(|(path, text)| matches!(old.held(out_dir, same, path, text), Held::Same))
        .map(|(path, _)| path.as_str())
        .collect()
}

/// Put `tree` in place of `out_dir`. Refuses (changing nothing) on conflicts.
/// `same`: files known to hold their new text already (not read again).
pub fn install(
    tree: &OutputTree,
    out_dir: &Path,
    same: &BTreeSet<String>,
) -> Result<WriteReport, Diagnostics> {
    let old = OldTree::read(out_dir)?;
    let problems = conflicts(tree, &old, out_dir);
    if problems.has_errors() {
        return Err(problems);
    }
    let mut report = WriteReport::default();
    let there = already_there(tree, &old, out_dir, same);
    let stale = old.owned.iter().any(|p| !tree.files().contains_key(p));
    if !stale && there.len() == tree.files().len() {
        report.unchanged = tree.files().len();
        return Ok(report);
    }
    let staging = sibling(out_dir, "kmetal-staging");
    let result = stage(tree, &old, out_dir, &there, &staging, &mut report)
        .and_then(|()| swap(&staging, out_dir));
    let _ = fs::remove_dir_all(&staging);
    result.map_err(Diagnostics::from)?;
    report.removed = old
        .owned
        .iter()
        .filter(|p| !tree.files().contains_key(*p))
        .count();
    Ok(report)
}

/// `deploy` → `.deploy.<suffix>` in the same parent directory.
fn sibling(out_dir: &Path, suffix: &str) -> PathBuf {
    let name = out_dir
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    out_dir.with_file_name(format!(".{name}.{suffix}"))
}

fn stage(
    tree: &OutputTree,
    old: &OldTree,
    out_dir: &Path,
    there: &BTreeSet<&str>,
    staging: &Path,
    report: &mut WriteReport,
) -> Result<(), Diagnostic> {
    if fs::symlink_metadata(staging).is_ok() {
        fs::remove_dir_all(staging)
            .or_else(|_| fs::remove_file(staging))
            .map_err(|e| io_error(staging, e))?;
    }
    fs::create_dir_all(staging).map_err(|e| io_error(staging, e))?;
    // Everything kmetal did not write comes along unchanged.
    let owned_dirs = old.owned_dirs();
    for (path, kind) in &old.entries {
        let (from, to) = (out_dir.join(path), staging.join(path));
        match kind {
            _ if old.owned.contains(path) || tree.files().contains_key(path) => {}
            Kind::Dir if owned_dirs.contains(path) => {}
            Kind::Dir => fs::create_dir_all(&to).map_err(|e| io_error(&to, e))?,
            Kind::File | Kind::Other => carry(&from, &to)?,
        }
    }
    let fault = std::env::var(FAULT_ENV).ok();
    // Each directory is created once, first; then the files are written in
    // parallel (on a slow file system each call waits, and waits overlap),
    // and only files that exist are compared.
    let parents: BTreeSet<&Path> = (tree.files().keys())
        .filter_map(|path| Path::new(path).parent())
        .collect();
    for parent in parents {
        let parent = staging.join(parent);
        fs::create_dir_all(&parent).map_err(|e| io_error(&parent, e))?;
    }
    // Per file: written (true), or linked as it was (false).
    let written: Vec<Result<bool, Diagnostic>> = (tree.files().par_iter())
        .map(|(path, text)| {
            let (from, to) = (out_dir.join(path), staging.join(path));
            if fault.as_deref() == Some(path) {
                return Err(io_error(&to, io::Error::other("injected fault")));
            }
            if there.contains(path.as_str()) && fs::hard_link(&from, &to).is_ok() {
                return Ok(false);
            }
            fs::write(&to, text).map_err(|e| io_error(&to, e))?;
            Ok(true)
        })
        .collect();
    // The first failure in path order, whichever thread met it first.
    for result in written {
        match result? {
            true => report.written += 1,
            false => report.unchanged += 1,
        }
    }
    Ok(())
}

/// Bring an entry kmetal did not write into the staged tree: a hard link for
/// files (same inode, same mtime), the link itself for symlinks.
fn carry(from: &Path, to: &Path) -> Result<(), Diagnostic> {
    let parent = to.parent().expect("a staged entry has a parent");
    fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    let meta = fs::symlink_metadata(from).map_err(|e| io_error(from, e))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(|e| io_error(from, e))?;
        return std::os::unix::fs::symlink(target, to).map_err(|e| io_error(to, e));
    }
    fs::hard_link(from, to)
        .or_else(|_| fs::copy(from, to).map(|_| ()))
        .map_err(|e| io_error(from, e))
}

/// Put the staged tree where the output is: one atomic exchange where the
/// file system supports it, else two renames.
fn swap(staging: &Path, out_dir: &Path) -> Result<(), Diagnostic> {
    if fs::symlink_metadata(out_dir).is_err() {
        if let Some(parent) = out_dir.parent() {
            fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        return fs::rename(staging, out_dir).map_err(|e| io_error(out_dir, e));
    }
    let exchanged = rustix::fs::renameat_with(
        rustix::fs::CWD,
        staging,
        rustix::fs::CWD,
        out_dir,
        rustix::fs::RenameFlags::EXCHANGE,
    );
    if exchanged.is_ok() {
        return Ok(());
    }
    let old = sibling(out_dir, "kmetal-old");
    let _ = fs::remove_dir_all(&old);
    fs::rename(out_dir, &old).map_err(|e| io_error(out_dir, e))?;
    if let Err(e) = fs::rename(staging, out_dir) {
        let _ = fs::rename(&old, out_dir);
        return Err(io_error(out_dir, e));
    }
    fs::remove_dir_all(&old).map_err(|e| io_error(&old, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries walkdir finds below `root` (what the old tree was read
    /// with before the top levels were read in parallel).
    fn walked(root: &Path) -> BTreeMap<String, Kind> {
        walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .map(|entry| {
                let entry = entry.unwrap();
                let kind = match entry.file_type() {
                    t if t.is_dir() => Kind::Dir,
                    t if t.is_file() => Kind::File,
                    _ => Kind::Other,
                };
                (relative(root, entry.path()), kind)
            })
            .collect()
    }

    #[test]
    fn the_old_tree_holds_every_entry_walkdir_finds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["a/b/c/d/e", "tenants/t1/x", "tenants/t2", "empty"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "top.yaml",
            "a/b/c/d/e/deep.yaml",
            "tenants/t1/x/y.yaml",
            "tenants/t2/z",
        ] {
            fs::write(root.join(f), "x").unwrap();
        }
        std::os::unix::fs::symlink(root.join("a"), root.join("tenants/link-to-dir")).unwrap();
        std::os::unix::fs::symlink(root.join("top.yaml"), root.join("a/b/link")).unwrap();
        let found: BTreeMap<String, Kind> =
            entries_below(root, "", 0).unwrap().into_iter().collect();
        assert_eq!(found, walked(root));
        assert_eq!(found.get("tenants/link-to-dir"), Some(&Kind::Other));
        assert_eq!(found.get("a/b/c/d/e/deep.yaml"), Some(&Kind::File));
        assert!(!found.contains_key("tenants/link-to-dir/b"));
        assert_eq!(found.len(), 16);
    }
}
