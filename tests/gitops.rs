//! `check`, safe writes and pruning, on the real binary in temporary directories.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn kmetal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kmetal"));
    command.arg("-C").arg(dir).args(args).env_remove("NO_COLOR");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the kmetal binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `kmetal build` in `dir`, which must succeed; what it says on stderr.
fn build_ok(dir: &Path) -> String {
    let build = kmetal(dir, &["build"], &[]);
    assert_eq!(build.status.code(), Some(0), "{}", text(&build.stderr));
    text(&build.stderr)
}

/// A built copy of the bundled example.
fn built_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in common::read_tree(&common::root().join("examples/production")) {
        if !path.starts_with("deploy/") {
            let target = dir.path().join(path);
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::write(target, content).unwrap();
        }
    }
    build_ok(dir.path());
    dir
}

/// Every file below `dir` with its bytes and mtime.
fn snapshot(dir: &Path) -> Vec<(String, String, std::time::SystemTime)> {
    common::read_tree(dir)
        .into_iter()
        .map(|(p, content)| {
            let modified = fs::metadata(dir.join(&p)).unwrap().modified().unwrap();
            (p, content, modified)
        })
        .collect()
}

#[test]
fn check_is_clean_after_build_and_shows_an_edit_as_a_diff() {
    let repo = built_example();
    let clean = kmetal(repo.path(), &["check"], &[]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}{}",
        text(&clean.stdout),
        text(&clean.stderr)
    );
    assert!(clean.stdout.is_empty());

    let gamma = repo.path().join("tenants/gamma.yaml");
    fs::write(
        &gamma,
        fs::read_to_string(&gamma)
            .unwrap()
            .replace("replicas: 2", "replicas: 5"),
    )
    .unwrap();
    let before = snapshot(repo.path());
    let drift = kmetal(repo.path(), &["check"], &[]);
    assert_eq!(drift.status.code(), Some(1));
    let diff = text(&drift.stdout);
    assert!(
        diff.starts_with(
            "plan: 0 to replace, 0 to delete, 1 to update, 0 to create; 0 refused\n\
             --- a/deploy/tenants/gamma/cluster.yaml\n+++ b/deploy/tenants/gamma/cluster.yaml\n@@"
        ),
        "{diff}"
    );
    assert!(
        diff.contains("\n-        replicas: 2\n+        replicas: 5\n"),
        "{diff}"
    );
    assert!(
        !diff.contains('\u{1b}'),
        "no colour off a terminal: {diff:?}"
    );
    assert_eq!(before, snapshot(repo.path()), "check wrote nothing");

    let stat = kmetal(repo.path(), &["check", "--stat"], &[]);
    assert_eq!(stat.status.code(), Some(1));
    assert_eq!(
        text(&stat.stdout),
        "plan: 0 to replace, 0 to delete, 1 to update, 0 to create; 0 refused\n\
         changed  deploy/tenants/gamma/cluster.yaml (+1 -1)\n1 files would change\n"
    );
}

#[test]
fn removal_prunes_generated_files_and_keeps_hand_written_ones() {
    let repo = built_example();
    let deploy = repo.path().join("deploy");
    fs::write(deploy.join("README.md"), "hand-written\n").unwrap();
    fs::write(deploy.join("tenants/acme/notes.txt"), "mine\n").unwrap();
    fs::remove_file(repo.path().join("tenants/gamma.yaml")).unwrap();

    let check = kmetal(repo.path(), &["check"], &[]);
    assert_eq!(check.status.code(), Some(1));
    let out = text(&check.stdout);
    assert!(
        out.starts_with("tenant gamma is gone from tenants/"),
        "{out}"
    );
    assert!(
        out.contains("--- a/deploy/tenants/gamma/cluster.yaml\n+++ /dev/null\n"),
        "{out}"
    );

    let build = kmetal(repo.path(), &["build", "--allow-removal", "gamma"], &[]);
    assert_eq!(build.status.code(), Some(0), "{}", text(&build.stderr));
    assert!(
        !deploy.join("tenants/gamma").exists(),
        "the tenant's directory is pruned"
    );
    assert!(!deploy.join("flux/tenant-gamma.yaml").exists());
    assert_eq!(
        fs::read_to_string(deploy.join("README.md")).unwrap(),
        "hand-written\n"
    );
    assert_eq!(
        fs::read_to_string(deploy.join("tenants/acme/notes.txt")).unwrap(),
        "mine\n"
    );
    assert_eq!(kmetal(repo.path(), &["check"], &[]).status.code(), Some(0));
}

#[test]
fn a_failed_write_leaves_the_old_tree_and_lock() {
    let repo = built_example();
    let before = snapshot(repo.path());
    let beta = repo.path().join("tenants/team-b/beta.yaml");
    let edited = fs::read_to_string(&beta)
        .unwrap()
        .replace("replicas: 3", "replicas: 5");
    fs::write(&beta, &edited).unwrap();
    fs::write(
        repo.path().join("tenants/delta.yaml"),
        "apiVersion: kmetal.io/v1alpha1\nkind: Tenant\nname: delta\n",
    )
    .unwrap();
    let failed = kmetal(
        repo.path(),
        &["build"],
        &[("KMETAL_FAULT_INJECT_WRITE", "tenants/delta/cluster.yaml")],
    );
    assert_eq!(failed.status.code(), Some(2), "{}", text(&failed.stderr));
    assert!(text(&failed.stderr).contains("injected fault"));
    let after: Vec<_> = snapshot(repo.path())
        .into_iter()
        .filter(|(p, _, _)| p != "tenants/team-b/beta.yaml" && p != "tenants/delta.yaml")
        .collect();
    let expected: Vec<_> = before
        .into_iter()
        .filter(|(p, _, _)| p != "tenants/team-b/beta.yaml")
        .collect();
    assert_eq!(
        expected, after,
        "old tree and lock untouched, no staging left behind"
    );
}

#[test]
fn hand_written_files_where_kmetal_writes_are_refused() {
    let repo = built_example();
    fs::write(
        repo.path().join("tenants/delta.yaml"),
        "apiVersion: kmetal.io/v1alpha1\nkind: Tenant\nname: delta\n",
    )
    .unwrap();
    fs::create_dir_all(repo.path().join("deploy/tenants/delta")).unwrap();
    fs::write(
        repo.path().join("deploy/tenants/delta/cluster.yaml"),
        "# mine\n",
    )
    .unwrap();
    let build = kmetal(repo.path(), &["build"], &[]);
    assert_eq!(build.status.code(), Some(1));
    assert!(
        text(&build.stderr).contains(
            "was not written by kmetal, and kmetal wants to write tenants/delta/cluster.yaml"
        ),
        "{}",
        text(&build.stderr)
    );
    assert_eq!(
        fs::read_to_string(repo.path().join("deploy/tenants/delta/cluster.yaml")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn dangerous_output_directories_are_refused() {
    let repo = built_example();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let parent = repo.path().join("..").display().to_string();
    let itself = repo.path().display().to_string();
    let tenants = repo.path().join("tenants").display().to_string();
    for out in [
        "/",
        parent.as_str(),
        itself.as_str(),
        home.as_str(),
        tenants.as_str(),
    ] {
        let build = kmetal(repo.path(), &["build", "--out", out], &[]);
        assert_eq!(
            build.status.code(),
            Some(1),
            "--out {out}: {}",
            text(&build.stderr)
        );
        let stderr = text(&build.stderr);
        assert!(
            stderr.contains("kmetal will not write its output to")
                || stderr.contains("was not written by kmetal"),
            "{stderr}"
        );
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let link = repo.path().join("linked");
    std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
    let build = kmetal(
        repo.path(),
        &["build", "--out", link.to_str().unwrap()],
        &[],
    );
    assert_eq!(build.status.code(), Some(1), "{}", text(&build.stderr));
    assert!(
        fs::read_dir(elsewhere.path()).unwrap().next().is_none(),
        "nothing written through the link"
    );
}

#[test]
fn completions_and_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let bash = kmetal(dir.path(), &["completions", "bash"], &[]);
    assert_eq!(bash.status.code(), Some(0));
    assert!(text(&bash.stdout).contains("kmetal"));
    let man = kmetal(dir.path(), &["man"], &[]);
    assert_eq!(man.status.code(), Some(0));
    assert!(
        text(&man.stdout).starts_with(".ie"),
        "{}",
        text(&man.stdout)
    );
}

#[test]
fn schema_command_prints_the_input_schemas() {
    let dir = tempfile::tempdir().unwrap();
    for (file, title) in [("tenant", "kmetal tenant"), ("site", "kmetal site")] {
        let out = kmetal(dir.path(), &["schema", file], &[]);
        assert_eq!(out.status.code(), Some(0));
        let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(schema["title"], title);
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    }
}

/// A link in place of a file kmetal wrote is not that file, even when it
/// leads to the same text: `check` reports it, the next build writes the
/// file again, and a build after that changes nothing.
#[test]
fn an_output_file_replaced_by_a_link_is_written_again() {
    let repo = built_example();
    let deploy = repo.path().join("deploy");
    let tenant = fs::read_dir(deploy.join("tenants"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("the example has a tenant");
    let file = tenant.join("namespace.yaml");
    let text_before = fs::read_to_string(&file).unwrap();
    let copy = repo.path().join("namespace-copy.yaml");
    fs::write(&copy, &text_before).unwrap();
    fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&copy, &file).unwrap();
    let check = kmetal(repo.path(), &["check", "--stat"], &[]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains("namespace.yaml"),
        "{}",
        text(&check.stdout)
    );
    let built = build_ok(repo.path());
    assert!(built.contains("1 written"), "{built}");
    let meta = fs::symlink_metadata(&file).unwrap();
    assert!(meta.file_type().is_file(), "a regular file again");
    assert_eq!(fs::read_to_string(&file).unwrap(), text_before);
    let before = snapshot(&deploy);
    let again = build_ok(repo.path());
    assert!(again.contains("0 written"), "{again}");
    assert_eq!(snapshot(&deploy), before);
}
