//! A directory → where everything of a kmetal repository is, decided once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};

pub const SITE_FILE: &str = "kmetal.yaml";
pub const TENANTS_DIR: &str = "tenants";
pub const STACKS_DIR: &str = "stacks";

/// A kmetal repository on disk.
#[derive(Clone, Debug)]
pub struct Project {
    /// The directory holding `kmetal.yaml`.
    pub root: PathBuf,
    /// `--out`, when given: replaces the site's `output`.
    pub out_override: Option<PathBuf>,
    /// Tenants the user agreed to remove (`--allow-removal`).
    pub allow_removal: BTreeSet<String>,
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

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}
