//! A directory → where everything of a kmetal repository is, decided once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};

/// `a/./b/../c` → `a/c`, without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

pub const SITE_FILE: &str = "kmetal.yaml";
pub const TENANTS_DIR: &str = "tenants";
pub const STACKS_DIR: &str = "stacks";
/// [`Project::max_file_bytes`] unless changed: 1 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 20;

/// A kmetal repository on disk.
#[derive(Clone, Debug)]
pub struct Project {
    /// The directory holding `kmetal.yaml`.
    pub root: PathBuf,
    /// `--out`, when given: replaces the site's `output`.
    pub out_override: Option<PathBuf>,
    /// Tenants the user agreed to remove (`--allow-removal`).
    pub allow_removal: BTreeSet<String>,
    /// Tenants (or `datastore/<name>`, `platform`) whose objects may be
    /// deleted and created under a new identity (`--allow-replace`).
    pub allow_replace: BTreeSet<String>,
    /// `--against REF`: judge changes against the output at this git ref
    /// instead of the output directory on disk.
    pub against: Option<String>,
    /// `kmetal plan`: refused changes go into the plan, not into the errors.
    pub plan_only: bool,
    /// `kmetal expand`: keep every tenant's expanded objects, not only those
    /// day 2 compares (every one is verified either way).
    pub keep_expanded: bool,
    /// Let every removal through, to report it (`check`) rather than refuse it.
    pub allow_all_removals: bool,
    /// Largest input file (`kmetal.yaml`, a tenant file) read, in bytes: a
    /// tenant file is a few hundred bytes, anything near this is a mistake or an attack.
    pub max_file_bytes: u64,
    /// `--crds`: CRDs whose schemas replace the embedded ones of their kinds.
    pub crds: Option<PathBuf>,
    /// The root of the git repository holding the project, if any: Flux
    /// applies paths relative to it, so `flux.path` must lead to the output.
    pub git_root: Option<PathBuf>,
}

/// The nearest directory at or above `dir` with a `.git` (a directory, or the
/// file of a worktree or submodule), as an absolute path.
fn git_root(dir: &Path) -> Option<PathBuf> {
    let start = std::path::absolute(dir).ok()?;
    start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

impl Project {
    /// The repository at `dir`; an error if it has no `kmetal.yaml`.
    pub fn open(dir: &Path, out_override: Option<PathBuf>) -> Result<Self, Diagnostic> {
        if !dir.join(SITE_FILE).is_file() {
            return Err(Diagnostic::error(
                codes::PROJECT_NOT_FOUND,
                format!("no {SITE_FILE} in {}", dir.display()),
            )
            .help("run kmetal in a kmetal repository, or point at one with -C DIR"));
        }
        Ok(Project {
            root: dir.to_path_buf(),
            out_override,
            allow_removal: BTreeSet::new(),
            allow_replace: BTreeSet::new(),
            against: None,
            plan_only: false,
            keep_expanded: false,
            allow_all_removals: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            crds: None,
            git_root: git_root(dir),
        })
    }

    pub fn stacks_dir(&self) -> PathBuf {
        self.root.join(STACKS_DIR)
    }

    /// The output directory: `--out` as given, else the site's `output` below the root.
    pub fn out_dir(&self, site_output: &str) -> PathBuf {
        match &self.out_override {
            Some(out) => out.clone(),
            None => self.root.join(site_output),
        }
    }

    /// Every `tenants/**/*.yaml` and `*.yml`, relative to the root with `/`,
    /// sorted. Symlinks are not followed: they are reported.
    pub fn tenant_files(&self, diagnostics: &mut Diagnostics) -> Vec<String> {
        let dir = self.root.join(TENANTS_DIR);
        if !dir.is_dir() {
            return Vec::new();
        }
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(&dir).sort_by_file_name() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    let file = error
                        .path()
                        .map_or_else(|| TENANTS_DIR.to_string(), |p| self.relative(p));
                    diagnostics.push(
                        Diagnostic::error(codes::IO, format!("cannot read: {error}"))
                            .at(SourceLocation::file(file)),
                    );
                    continue;
                }
            };
            let name = entry.file_name().to_string_lossy();
            if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
                continue;
            }
            let file = self.relative(entry.path());
            if entry.path_is_symlink() {
                diagnostics.push(
                    Diagnostic::error(
                        codes::PROJECT_NOT_A_FILE,
                        "tenant files may not be symlinks",
                    )
                    .at(SourceLocation::file(file))
                    .help("replace the link with the file itself"),
                );
            } else if entry.file_type().is_dir() {
                diagnostics.push(
                    Diagnostic::error(
                        codes::PROJECT_NOT_A_FILE,
                        "a directory is named like a tenant file",
                    )
                    .at(SourceLocation::file(file))
                    .help("rename the directory so that it does not end in .yaml or .yml"),
                );
            } else {
                files.push(file);
            }
        }
        files
    }

    /// Refuse an output directory that `build` must not replace: `/`, the home
    /// directory, the repository itself or a directory holding it, and (unless
    /// `--out` named it) anything outside the repository.
    pub fn check_out_dir(&self, out_dir: &Path) -> Result<(), Diagnostic> {
        let absolute = |p: &Path| {
            std::path::absolute(p)
                .map(|p| lexical(&p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        let (out, root) = (absolute(out_dir), absolute(&self.root));
        let home = std::env::var_os("HOME").map(|h| absolute(Path::new(&h)));
        let why = if out.parent().is_none() {
            Some("it is the file system root")
        } else if home.as_deref() == Some(out.as_path()) {
            Some("it is the home directory")
        } else if root.starts_with(&out) {
            Some("it holds the kmetal repository itself")
        } else if !out.starts_with(&root) && self.out_override.is_none() {
            Some("it is outside the repository (name it with --out to allow that)")
        } else {
            None
        };
        match why {
            None => Ok(()),
            Some(why) => Err(Diagnostic::error(
                codes::OUTPUT_UNSAFE,
                format!(
                    "kmetal will not write its output to {}: {why}",
                    out_dir.display()
                ),
            )
            .help("choose a directory of its own, such as deploy/ beside kmetal.yaml")),
        }
    }

    /// `path` relative to the root when it is below it, with `/`.
    pub fn shown(&self, path: &Path) -> String {
        let absolute = |p: &Path| {
            std::path::absolute(p)
                .map(|p| lexical(&p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        match absolute(path).strip_prefix(absolute(&self.root)) {
            Ok(relative) => self.relative(&self.root.join(relative)),
            Err(_) => path.display().to_string(),
        }
    }

    fn relative(&self, path: &Path) -> String {
        let below = path.strip_prefix(&self.root).unwrap_or(path);
        // A path made by joining names (a directory walk's) is its text:
        // each of its components is one name between slashes.
        if let Some(text) = below.to_str()
            && text.split('/').all(|name| !name.is_empty() && name != ".")
        {
            return text.to_string();
        }
        below
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}
