//! Golden tests: every `golden/<case>/input/` is compiled and compared with
//! `golden/<case>/expected/` (the whole output tree) and `expected.lock` (the
//! kmetal.lock a build would write), or with `golden/<case>/expected.stderr`
//! (the diagnostics). `golden/<case>/allow-removal`, if present, lists the
//! tenants the run may remove, one per line; `golden/<case>/crds/`, if present,
//! is passed as `--crds`. `UPDATE_GOLDEN=1` rewrites the
//! expectations; review them with `git diff golden/`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use kmetal::diagnostic::{Diagnostics, codes};
use kmetal::project::Project;
use kmetal::report;

fn update() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// What a case produces: the output tree with the lock, or the printed diagnostics.
enum Outcome {
    Tree(BTreeMap<String, String>),
    Stderr(String),
}

/// The pseudo-path under which the lock joins the compared tree.
const LOCK: &str = "../expected.lock";
/// The pseudo-path of `kmetal expand`'s output for every tenant.
const EXPAND: &str = "../expected.expand.yaml";

fn run_case(case_dir: &Path) -> Outcome {
    run(&case_dir.join("input"), case_dir)
}

/// Compile `input` with the options of the case in `case_dir`.
fn run(input: &Path, case_dir: &Path) -> Outcome {
    let allow = fs::read_to_string(case_dir.join("allow-removal")).unwrap_or_default();
    // Relative to the package root (the tests' working directory), so that
    // messages naming a CRD file wrap the same wherever the clone lives.
    let case_relative = case_dir
        .strip_prefix(common::root())
        .unwrap_or(case_dir)
        .to_path_buf();
    let crds = case_relative.join("crds");
    let human = |diagnostics: &Diagnostics| {
        let text = report::render(
            diagnostics,
            report::Format::Human {
                color: false,
                width: 100,
            },
        );
        let text = text.replace(&input.display().to_string(), "<input>");
        let text = text.replace(&case_dir.display().to_string(), "<case>");
        Outcome::Stderr(text.replace(&case_relative.display().to_string(), "<case>"))
    };
    let project = common::open_case_input(input).map(|mut project| {
        project.allow_removal = allow.lines().map(str::to_string).collect();
        project.crds = crds.is_dir().then_some(crds);
        project.keep_expanded = true;
        project
    });
    match project.map(|project| kmetal::compile(&project)) {
        Ok(Ok(compiled)) => {
            let mut files = compiled.tree.files().clone();
            files.insert(LOCK.to_string(), compiled.lock.to_text());
            let expanded = kmetal::expand::text(&compiled.expanded, &[]).unwrap();
            if !expanded.is_empty() {
                files.insert(EXPAND.to_string(), expanded);
            }
            Outcome::Tree(files)
        }
        Ok(Err(diagnostics)) => human(&diagnostics),
        Err(diagnostic) => human(&Diagnostics::from(diagnostic)),
    }
}

/// Compare two trees; a description of every missing, extra and changed file.
fn compare_trees(
    case: &str,
    expected: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) -> String {
    let mut report = String::new();
    for (path, text) in expected {
        match actual.get(path) {
            None => report += &format!("{case}: missing file {path}\n"),
            Some(new) if new != text => {
                report += &common::unified_diff(&format!("{case}/{path}"), text, new)
            }
            Some(_) => {}
        }
    }
    for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
        report += &format!("{case}: extra file {path}\n");
    }
    report
}

fn bless(case_dir: &Path, outcome: &Outcome) {
    let expected_dir = case_dir.join("expected");
    let stderr_file = case_dir.join("expected.stderr");
    let _ = fs::remove_dir_all(&expected_dir);
    let _ = fs::remove_file(&stderr_file);
    let _ = fs::remove_file(case_dir.join("expected.lock"));
    let _ = fs::remove_file(case_dir.join("expected.expand.yaml"));
    // expected.json and expected.github belong to `json_and_github_output_are_pinned`.
    match outcome {
        Outcome::Tree(files) => {
            for (path, text) in files {
                let target = expected_dir.join(path);
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::write(target, text).unwrap();
            }
        }
        Outcome::Stderr(text) => fs::write(stderr_file, text).unwrap(),
    }
}

#[test]
fn golden_cases_match() {
    let mut failures = String::new();
    let cases = common::golden_cases();
    assert!(!cases.is_empty(), "no golden cases found");
    for case_dir in cases {
        let case = case_dir.file_name().unwrap().to_string_lossy().to_string();
        let outcome = run_case(&case_dir);
        if update() {
            bless(&case_dir, &outcome);
            continue;
        }
        let stderr_file = case_dir.join("expected.stderr");
        match (&outcome, stderr_file.is_file()) {
            (Outcome::Tree(files), false) => {
                let mut expected = common::read_tree(&case_dir.join("expected"));
                if let Ok(lock) = fs::read_to_string(case_dir.join("expected.lock")) {
                    expected.insert(LOCK.to_string(), lock);
                }
                if let Ok(expand) = fs::read_to_string(case_dir.join("expected.expand.yaml")) {
                    expected.insert(EXPAND.to_string(), expand);
                }
                failures += &compare_trees(&case, &expected, files);
            }
            (Outcome::Stderr(text), true) => {
                let expected = fs::read_to_string(&stderr_file).unwrap();
                if &expected != text {
                    failures +=
                        &common::unified_diff(&format!("{case}/expected.stderr"), &expected, text);
                }
            }
            (Outcome::Tree(_), true) => {
                failures += &format!("{case}: expected diagnostics, but the build succeeded\n")
            }
            (Outcome::Stderr(text), false) => {
                failures += &format!("{case}: expected an output tree, but got:\n{text}")
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (UPDATE_GOLDEN=1 to bless):\n{failures}"
    );
}

/// Codes that no golden case can produce: an I/O error needs a file the test
/// user cannot read, and CI runs as root; the output directory is checked only
/// when writing (tests/gitops.rs covers it); an internal error is a hole in
/// kmetal's own checks, which no input can reach once it is fixed
/// (`diagnostic.rs` tests how one is raised).
const NOT_GOLDEN_TESTABLE: &[&str] = &[codes::IO, codes::OUTPUT_UNSAFE, codes::INTERNAL];

/// Every diagnostic code appears in at least one `expected.stderr`.
#[test]
fn every_diagnostic_code_has_a_golden_case() {
    let all_stderr: String = common::golden_cases()
        .iter()
        .filter_map(|case| fs::read_to_string(case.join("expected.stderr")).ok())
        .collect();
    let missing: Vec<&str> = codes::ALL
        .iter()
        .copied()
        .filter(|code| !NOT_GOLDEN_TESTABLE.contains(code))
        .filter(|code| !all_stderr.contains(&format!("{code}\n")))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a golden case: {missing:?}"
    );
}

/// The same input laid down in another order gives the same bytes.
#[test]
fn output_does_not_depend_on_file_system_order() {
    for case_dir in common::golden_cases() {
        let input = case_dir.join("input");
        let Outcome::Tree(first) = run_case(&case_dir) else {
            continue;
        };
        let copy = tempfile::tempdir().unwrap();
        let mut files: Vec<(String, String)> = common::read_tree(&input).into_iter().collect();
        files.reverse();
        for (path, text) in files {
            let target = copy.path().join(path);
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::write(target, text).unwrap();
        }
        let Outcome::Tree(second) = run(copy.path(), &case_dir) else {
            panic!("copy of {} failed", case_dir.display())
        };
        assert_eq!(first, second, "{}", case_dir.display());
    }
}

/// Every emitted file re-parses to exactly the value it was emitted from.
#[test]
fn emitted_files_round_trip() {
    for case_dir in common::golden_cases() {
        let Ok(project) = common::open_case_input(&case_dir.join("input")) else {
            continue;
        };
        let Ok(compiled) = kmetal::compile(&project) else {
            continue;
        };
        for document in &compiled.documents {
            let text = &compiled.tree.files()[&document.path];
            let back = kmetal::yaml::parse_values(text).unwrap();
            assert_eq!(
                back,
                vec![serde_json::Value::from(&document.value)],
                "{}: {}",
                case_dir.display(),
                document.path
            );
        }
    }
}

/// The bundled examples build cleanly.
#[test]
fn examples_compile() {
    for entry in fs::read_dir(common::root().join("examples")).unwrap() {
        let dir = entry.unwrap().path();
        let project = Project::open(&dir, None).unwrap();
        if let Err(diagnostics) = kmetal::compile(&project) {
            panic!("{}:\n{diagnostics}", dir.display());
        }
    }
}

/// One thread or many: the same bytes.
#[test]
fn output_does_not_depend_on_thread_count() {
    for case_dir in common::golden_cases() {
        let in_pool = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            match pool.install(|| run_case(&case_dir)) {
                Outcome::Tree(files) => files,
                Outcome::Stderr(text) => BTreeMap::from([("stderr".to_string(), text)]),
            }
        };
        assert_eq!(in_pool(1), in_pool(8), "{}", case_dir.display());
    }
}

/// Compare `text` with the pinned `case_dir/file` (a unified diff into
/// `failures` when they differ), or write it when blessing.
fn pin(case_dir: &Path, case: &str, file: &str, text: &str, failures: &mut String) {
    let path = case_dir.join(file);
    if update() {
        fs::write(&path, text).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_default();
    if expected != text {
        *failures += &common::unified_diff(&format!("{case}/{file}"), &expected, text);
    }
}

/// Cases whose `kmetal plan` is pinned in its three formats
/// (`expected.plan.txt`, `.md`, `.json`): their input holds a built `deploy/`.
const PLAN_CASES: &[&str] = &["day2-plan", "error-day2"];

#[test]
fn plan_formats_are_pinned() {
    let mut failures = String::new();
    for case in PLAN_CASES {
        let case_dir = common::root().join("golden").join(case);
        let mut project = common::open_case_input(&case_dir.join("input")).unwrap();
        project.plan_only = true;
        let compiled = match kmetal::compile(&project) {
            Ok(compiled) => compiled,
            Err(d) => panic!("{case}: {}", report::render(&d, report::Format::Json)),
        };
        let plan = &compiled.plan;
        let json = serde_json::to_string_pretty(plan).unwrap() + "\n";
        for (file, text) in [
            ("expected.plan.txt", kmetal::day2::text(plan)),
            ("expected.plan.md", kmetal::day2::markdown(plan)),
            ("expected.plan.json", json),
        ] {
            pin(&case_dir, case, file, &text, &mut failures);
        }
    }
    assert!(
        failures.is_empty(),
        "pinned plans differ (UPDATE_GOLDEN=1 to bless):\n{failures}"
    );
}

/// Cases whose diagnostics are also pinned as JSON lines (`expected.json`)
/// and GitHub annotations (`expected.github`).
const OTHER_FORMATS: &[&str] = &["error-fleet-mistakes"];

#[test]
fn json_and_github_output_are_pinned() {
    let mut failures = String::new();
    for case in OTHER_FORMATS {
        let case_dir = common::root().join("golden").join(case);
        let project = common::open_case_input(&case_dir.join("input")).unwrap();
        let Err(diagnostics) = kmetal::compile(&project) else {
            panic!("{case}: expected diagnostics");
        };
        for (file, format) in [
            ("expected.json", report::Format::Json),
            ("expected.github", report::Format::Github),
        ] {
            let text = report::render(&diagnostics, format);
            pin(&case_dir, case, file, &text, &mut failures);
        }
    }
    assert!(
        failures.is_empty(),
        "pinned formats differ (UPDATE_GOLDEN=1 to bless):\n{failures}"
    );
}
