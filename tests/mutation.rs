//! Nothing lost: random single edits of valid, built repositories, run
//! through the binary. Each edit touches the site, a tenant file or the lock:
//! a value swapped for another value of the same file, a hostile scalar, a
//! key deleted, a key renamed, a list item duplicated.
//!
//! After `kmetal build`:
//! - the exit code is 0, 1 or 2, never a panic (101);
//! - on exit 1, the output directory and `kmetal.lock` are byte-identical;
//! - on exit 0, every tenant and every locked address of the previous build
//!   is still there (no `--allow-removal` is ever given), every Cluster's
//!   DataStore and VIP lead to emitted objects, and a second build is a no-op.
//!
//! CI fixes the seed (`PROPTEST_RNG_SEED`, `.ci/run`); locally each run explores anew.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;

/// Mutations per run of the test (the issue asks for at least 2,000 in CI).
const CASES: u32 = 2000;

/// Values a careless or hostile edit may write anywhere.
fn hostile() -> Vec<Value> {
    let long = "a".repeat(300);
    let values = [
        "",
        "Tenant_PG",
        "tenant-pgg",
        "Letsencrypt-Prod",
        "../../etc",
        "/",
        "a\nb: c",
        "0755",
        "on",
        "~",
        "-1",
        "99999999999999999999",
        "10.0.0.0/33",
        "192.168.1.100",
        "192.168.1.255",
        "::",
        "{{ tenant.name }}",
        "a\u{202e}b",
        "default",
        "kube-system",
        "kmetal-flux",
        long.as_str(),
    ];
    let mut out: Vec<Value> = values.iter().map(|v| Value::from(*v)).collect();
    out.extend([
        Value::Null,
        Value::Bool(true),
        Value::from(0),
        Value::from(-3),
        Value::from(1.5),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!({"x": 1}),
        serde_json::json!(["a", "b"]),
    ]);
    out
}

/// One repository as built: every file, and what its lock and output held.
struct Base {
    files: BTreeMap<String, Vec<u8>>,
    /// The files a mutation may edit (YAML inputs and the lock).
    editable: Vec<String>,
}

fn kmetal(dir: &Path, args: &[&str]) -> Output {
    common::run_kmetal(dir, args)
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.expect("readable tree");
        if entry.file_type().is_file() {
            let relative = entry.path().strip_prefix(dir).expect("below dir");
            let key = relative.to_string_lossy().replace('\\', "/");
            files.insert(key, fs::read(entry.path()).expect("readable file"));
        }
    }
    files
}

fn lay_down(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (path, bytes) in files {
        let target = dir.join(path);
        fs::create_dir_all(target.parent().expect("a file has a parent")).unwrap();
        fs::write(target, bytes).unwrap();
    }
}

/// The bases: valid repositories, each built once.
fn bases() -> &'static [Base] {
    static BASES: OnceLock<Vec<Base>> = OnceLock::new();
    BASES.get_or_init(|| {
        let root = common::root();
        let inputs = [
            root.join("examples/production"),
            root.join("golden/alloc-small-pool/input"),
            root.join("golden/spec-example/input"),
        ];
        inputs
            .iter()
            .map(|input| {
                let dir = tempfile::tempdir().unwrap();
                let mut files = snapshot(input);
                files.retain(|path, _| !path.starts_with("deploy/"));
                // Outside kmetal's git repository, the output sits at ./deploy.
                if let Some(site) = files.get_mut("kmetal.yaml") {
                    let text = String::from_utf8(site.clone()).unwrap();
                    *site = text
                        .replace("./examples/production/deploy", "./deploy")
                        .into_bytes();
                }
                lay_down(dir.path(), &files);
                let built = kmetal(dir.path(), &["build"]);
                assert!(
                    built.status.success(),
                    "{} must build:\n{}",
                    input.display(),
                    String::from_utf8_lossy(&built.stderr)
                );
                let files = snapshot(dir.path());
                let editable = files
                    .keys()
                    .filter(|p| {
                        *p == "kmetal.yaml"
                            || *p == "kmetal.lock"
                            || (p.starts_with("tenants/") && p.ends_with(".yaml"))
                    })
                    .cloned()
                    .collect();
                Base { files, editable }
            })
            .collect()
    })
}

/// A path from the root of a YAML value to one node.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(value: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                at.push(Step::Key(k.clone()));
                paths(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(Step::Index(i));
                paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'v>(value: &'v mut Value, path: &[Step]) -> &'v mut Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// What to do to one node, picked by the numbers of a case.
#[derive(Clone, Copy, Debug)]
enum Edit {
    Swap,
    Hostile,
    DeleteKey,
    RenameKey,
    DuplicateItem,
}

/// Apply `edit` to the YAML text; `None` when the file has no node it fits.
fn mutate(text: &str, edit: Edit, pick: usize, choice: usize) -> Option<String> {
    let mut value = kmetal::yaml::parse_value(text).ok()?;
    let mut all = Vec::new();
    paths(&value, &mut Vec::new(), &mut all);
    let fits = |path: &&Vec<Step>| {
        let node = {
            let mut v = &value;
            for step in path.iter() {
                v = match step {
                    Step::Key(k) => &v[k.as_str()],
                    Step::Index(i) => &v[*i],
                };
            }
            v
        };
        match edit {
            Edit::Swap | Edit::Hostile => !path.is_empty() && !node.is_object() && !node.is_array(),
            Edit::DeleteKey | Edit::RenameKey => matches!(path.last(), Some(Step::Key(_))),
            Edit::DuplicateItem => node.as_array().is_some_and(|a| !a.is_empty()),
        }
    };
    let candidates: Vec<&Vec<Step>> = all.iter().filter(fits).collect();
    if candidates.is_empty() {
        return None;
    }
    let path = candidates[pick % candidates.len()].clone();
    match edit {
        Edit::Swap => {
            let scalars: Vec<Value> = all
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| node_mut(&mut value.clone(), p).clone())
                .filter(|v| !v.is_object() && !v.is_array())
                .collect();
            *node_mut(&mut value, &path) = scalars[choice % scalars.len()].clone();
        }
        Edit::Hostile => {
            let values = hostile();
            *node_mut(&mut value, &path) = values[choice % values.len()].clone();
        }
        Edit::DeleteKey | Edit::RenameKey => {
            let (Some(Step::Key(key)), parent) = (path.last(), &path[..path.len() - 1]) else {
                return None;
            };
            let map = node_mut(&mut value, parent).as_object_mut()?;
            let old = map.remove(key)?;
            if let Edit::RenameKey = edit {
                let renamed = match choice % 3 {
                    0 => format!("{key}s"),
                    1 => key.chars().skip(1).collect(),
                    _ => key.to_uppercase(),
                };
                map.insert(renamed, old);
            }
        }
        Edit::DuplicateItem => {
            let items = node_mut(&mut value, &path).as_array_mut()?;
            let item = items[choice % items.len()].clone();
            items.push(item);
        }
    }
    Some(kmetal::yaml::emit(&value))
}

/// The tenants of an output directory (from its `tenants/<name>/` entries).
fn tenants_of(files: &BTreeMap<String, Vec<u8>>, out: &str) -> BTreeSet<String> {
    let prefix = format!("{out}/tenants/");
    files
        .keys()
        .filter_map(|p| p.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once('/').map(|(t, _)| t.to_string()))
        .collect()
}

/// Every address the lock holds or has released.
fn lock_addresses(lock: &[u8]) -> BTreeSet<IpAddr> {
    let text = String::from_utf8_lossy(lock);
    let Ok(value) = kmetal::yaml::parse_value(&text) else {
        return BTreeSet::new();
    };
    let held = value["tenants"].as_object().into_iter().flatten();
    let released = value["released"].as_array().into_iter().flatten();
    held.map(|(_, h)| h)
        .chain(released)
        .filter_map(|e| e["vip"].as_str()?.parse().ok())
        .collect()
}

/// The output directory of a built repository: the one with a `.kmetal-manifest`.
fn out_dir_of(files: &BTreeMap<String, Vec<u8>>) -> String {
    files
        .keys()
        .find_map(|p| p.strip_suffix("/.kmetal-manifest"))
        .expect("a built repository has an output directory")
        .to_string()
}

/// Every Cluster's DataStore is emitted (or the platform's), and its VIP is
/// the one the lock gives its tenant.
fn references_hold(files: &BTreeMap<String, Vec<u8>>, out: &str) -> Result<(), String> {
    let lock = kmetal::yaml::parse_value(&String::from_utf8_lossy(&files["kmetal.lock"]))
        .map_err(|e| format!("lock: {e:?}"))?;
    for tenant in tenants_of(files, out) {
        let path = format!("{out}/tenants/{tenant}/cluster.yaml");
        let Some(bytes) = files.get(&path) else {
            continue;
        };
        let cluster = kmetal::yaml::parse_value(&String::from_utf8_lossy(bytes))
            .map_err(|e| format!("{path}: {e:?}"))?;
        let variables = cluster["spec"]["topology"]["variables"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let control_plane = variables
            .iter()
            .find(|v| v["name"] == "controlPlane")
            .map(|v| v["value"].clone())
            .ok_or_else(|| format!("{path}: no controlPlane variable"))?;
        let store = control_plane["dataStoreName"].as_str().unwrap_or_default();
        let emitted = format!("{out}/platform/datastores/datastore-{store}.yaml");
        if store != "default" && !files.contains_key(&emitted) {
            return Err(format!("{path}: DataStore {store} is not emitted"));
        }
        let vip = control_plane["network"]["serviceAddress"].as_str();
        let locked = lock["tenants"][&tenant]["vip"].as_str();
        if vip != locked {
            return Err(format!("{path}: VIP {vip:?}, but the lock says {locked:?}"));
        }
    }
    Ok(())
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        Just(Edit::Swap),
        Just(Edit::Hostile),
        Just(Edit::DeleteKey),
        Just(Edit::RenameKey),
        Just(Edit::DuplicateItem),
    ]
}

/// How one mutated build ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The edit fits no node of the file.
    Skipped,
    Built,
    Refused,
    CouldNotRun,
}

fn one_edit(
    base: usize,
    file: usize,
    edit: Edit,
    pick: usize,
    choice: usize,
) -> Result<Outcome, TestCaseError> {
    let base = &bases()[base];
    let file = &base.editable[file % base.editable.len()];
    let text = String::from_utf8(base.files[file].clone()).unwrap();
    let Some(mutated) = mutate(&text, edit, pick, choice) else {
        return Ok(Outcome::Skipped);
    };
    let dir = tempfile::tempdir().unwrap();
    lay_down(dir.path(), &base.files);
    fs::write(dir.path().join(file), &mutated).unwrap();
    let before = snapshot(dir.path());
    let run = kmetal(dir.path(), &["build"]);
    let code = run.status.code();
    let stderr = String::from_utf8_lossy(&run.stderr);
    prop_assert!(
        matches!(code, Some(0..=2)),
        "{edit:?} of {file} gave exit {code:?}:\n{mutated}\n{stderr}"
    );
    let after = snapshot(dir.path());
    let out = out_dir_of(&base.files);
    match code {
        Some(1) => {
            prop_assert!(
                before == after,
                "{edit:?} of {file}: exit 1 changed files:\n{mutated}\n{stderr}"
            );
            return Ok(Outcome::Refused);
        }
        Some(0) => {}
        _ => return Ok(Outcome::CouldNotRun),
    }
    let old_tenants = tenants_of(&base.files, &out);
    // An edit of `output:` moves the output; the old directory stays as it was.
    let new_out = after
        .keys()
        .filter_map(|p| p.strip_suffix("/.kmetal-manifest"))
        .find(|dir| *dir != out)
        .map_or_else(|| out.clone(), str::to_string);
    let new_tenants = tenants_of(&after, &new_out);
    let lost: Vec<_> = old_tenants.difference(&new_tenants).collect();
    prop_assert!(
        lost.is_empty(),
        "{edit:?} of {file} lost tenants {lost:?}:\n{mutated}\n{stderr}"
    );
    let old_addresses = lock_addresses(&before["kmetal.lock"]);
    let new_addresses = lock_addresses(&after["kmetal.lock"]);
    let gone: Vec<_> = old_addresses.difference(&new_addresses).collect();
    prop_assert!(
        gone.is_empty(),
        "{edit:?} of {file} dropped addresses {gone:?} from the lock:\n{mutated}"
    );
    if let Err(problem) = references_hold(&after, &new_out) {
        prop_assert!(false, "{edit:?} of {file}: {problem}:\n{mutated}");
    }
    let again = kmetal(dir.path(), &["check", "--stat"]);
    prop_assert!(
        again.status.success(),
        "{edit:?} of {file}: a second build would change files:\n{}",
        String::from_utf8_lossy(&again.stdout)
    );
    Ok(Outcome::Built)
}

#[test]
#[allow(clippy::print_stderr)] // the tally, for `cargo test -- --nocapture`
fn one_edit_never_loses_a_tenant() {
    let config = ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let tally: std::cell::RefCell<BTreeMap<String, u32>> = Default::default();
    let cases = (
        0usize..3,
        any::<usize>(),
        edit(),
        any::<usize>(),
        any::<usize>(),
    );
    proptest::test_runner::TestRunner::new(config)
        .run(&cases, |(base, file, edit, pick, choice)| {
            let outcome = one_edit(base, file, edit, pick, choice)?;
            *tally
                .borrow_mut()
                .entry(format!("{outcome:?}"))
                .or_default() += 1;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let tally = tally.into_inner();
    eprintln!("mutations: {tally:?}");
    // Both outcomes must be common, or the property says little.
    let count = |what: &str| tally.get(what).copied().unwrap_or(0);
    assert!(
        count("Built") >= CASES / 10 && count("Refused") >= CASES / 10,
        "too one-sided: {tally:?}"
    );
}
