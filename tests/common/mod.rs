//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every golden case directory, sorted.
pub fn golden_cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join("golden"))
        .expect("golden/ exists")
        .map(|e| e.expect("readable golden/ entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// Relative path (with `/`) → text of every file below `dir`.
pub fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    if !dir.is_dir() {
        return files;
    }
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.expect("readable tree");
        if entry.file_type().is_file() {
            let relative = entry.path().strip_prefix(dir).expect("below dir");
            let key = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(
                key,
                std::fs::read_to_string(entry.path()).expect("UTF-8 file"),
            );
        }
    }
    files
}

/// A unified diff with git-style `a/` and `b/` names.
pub fn unified_diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// `../shared/crds`, which CI provides beside the project. Missing is a failure, not a skip.
pub fn shared_crds() -> PathBuf {
    let dir = root().join("../shared/crds");
    assert!(
        dir.join("jsonschema/index.json").is_file(),
        "{} is missing: the upstream CRDs must sit beside the project (../shared/crds)",
        dir.display()
    );
    dir
}

/// A golden case's input, opened as a repository of its own: `flux.path` is
/// checked against the input directory, not against kmetal's own repository.
#[allow(dead_code)]
pub fn open_case_input(
    input: &Path,
) -> Result<kmetal::project::Project, kmetal::diagnostic::Diagnostic> {
    kmetal::project::Project::open(input, None).map(|mut project| {
        project.git_root = std::path::absolute(input).ok();
        project
    })
}

/// Run the kmetal binary in `dir` (`-C dir`), without colours.
#[allow(dead_code)]
pub fn run_kmetal(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kmetal"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the kmetal binary runs")
}
