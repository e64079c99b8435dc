//! Every golden output against the real upstream CRDs (`../shared/crds`), and
//! every output directory through `kubectl kustomize`.
//!
//! Our embedded schemas may be narrower than upstream, never looser: these
//! tests are what holds us to that.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Kinds of the Kubernetes core API: they have no CRD. Any other kind without
/// an upstream schema fails the test.
const CORE_KINDS: &[(&str, &str)] = &[("v1", "Namespace")];

/// The real CRD of one kind: its strict schema and its CEL rules.
struct Upstream {
    validator: jsonschema::Validator,
    rules: kmetal::cel::CelRules,
}

impl Upstream {
    /// Every schema error and broken CEL rule of `doc`, each as `name: path: …`.
    fn violations(&self, name: &str, doc: &Value) -> Vec<String> {
        let schema = (self.validator.iter_errors(doc))
            .map(|error| format!("{name}: {}: {error}", error.instance_path()));
        let rules = self.rules.evaluate(doc).into_iter().map(|violation| {
            format!(
                "{name}: {}: {} (CEL rule `{}`)",
                violation.path, violation.message, violation.rule
            )
        });
        schema.chain(rules).collect()
    }
}

type Key = (String, String);

/// `(apiVersion, kind)` → the upstream CRD, from `../shared/crds/jsonschema`.
fn upstream() -> BTreeMap<Key, Upstream> {
    let crds = common::shared_crds();
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(crds.join("jsonschema/index.json")).unwrap())
            .unwrap();
    let mut kinds = BTreeMap::new();
    for entry in index.as_array().expect("index.json is a list") {
        let field = |f: &str| {
            entry[f]
                .as_str()
                .unwrap_or_else(|| panic!("index entry without {f}"))
                .to_string()
        };
        let text = std::fs::read_to_string(crds.join("jsonschema").join(field("file"))).unwrap();
        let schema: Value = serde_json::from_str(&text).unwrap();
        let validator =
            jsonschema::draft7::new(&schema).unwrap_or_else(|e| panic!("{}: {e}", field("file")));
        let rules = kmetal::cel::CelRules::compile(&schema)
            .unwrap_or_else(|e| panic!("{}: {e}", field("file")));
        kinds.insert(
            (field("apiVersion"), field("kind")),
            Upstream { validator, rules },
        );
    }
    kinds
}

/// Every object of every golden output tree, named `case/path`, with its key.
fn golden_objects() -> Vec<(String, Key, Value)> {
    let mut objects = Vec::new();
    for (case, files) in expected_trees() {
        let yaml = files
            .iter()
            .filter(|(p, _)| p.ends_with(".yaml") && !p.ends_with("kustomization.yaml"));
        for (path, text) in yaml {
            let mut docs =
                kmetal::yaml::parse_values(text).unwrap_or_else(|e| panic!("{case}/{path}: {e}"));
            assert_eq!(docs.len(), 1, "{case}/{path}: one object per file");
            let doc = docs.remove(0);
            let key = (
                doc["apiVersion"].as_str().unwrap().to_string(),
                doc["kind"].as_str().unwrap().to_string(),
            );
            objects.push((format!("{case}/{path}"), key, doc));
        }
    }
    // What `kmetal expand` says Cluster API creates is held to the same CRDs.
    for case in common::golden_cases() {
        let Ok(text) = std::fs::read_to_string(case.join("expected.expand.yaml")) else {
            continue;
        };
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let docs = kmetal::yaml::parse_values(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (i, doc) in docs.into_iter().enumerate() {
            let key = (
                doc["apiVersion"].as_str().unwrap().to_string(),
                doc["kind"].as_str().unwrap().to_string(),
            );
            objects.push((format!("{name}/expected.expand.yaml#{i}"), key, doc));
        }
    }
    objects
}

fn expected_trees() -> Vec<(String, BTreeMap<String, String>)> {
    common::golden_cases()
        .into_iter()
        .filter(|case| case.join("expected").is_dir())
        .map(|case| {
            let name = case.file_name().unwrap().to_string_lossy().to_string();
            (name, common::read_tree(&case.join("expected")))
        })
        .collect()
}

#[test]
fn golden_outputs_satisfy_the_upstream_crds() {
    let upstream = upstream();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, key, doc) in golden_objects() {
        let Some(crd) = upstream.get(&key) else {
            assert!(
                CORE_KINDS.contains(&(key.0.as_str(), key.1.as_str())),
                "{name}: no upstream schema for {key:?}"
            );
            continue;
        };
        failures.extend(crd.violations(&name, &doc));
        checked += 1;
    }
    assert!(checked > 0, "no golden output was checked");
    assert!(
        failures.is_empty(),
        "upstream schema violations:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_output_directory_builds_with_kubectl_kustomize() {
    let kubectl = which("kubectl")
        .expect("kubectl is not installed: .ci/run installs it; the test never skips");
    for (case, files) in expected_trees() {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in &files {
            let target = dir.path().join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, text).unwrap();
        }
        let mut objects = 0;
        for path in files.keys().filter(|p| p.ends_with("kustomization.yaml")) {
            let sub = dir.path().join(path).parent().unwrap().to_path_buf();
            let output = Command::new(&kubectl)
                .arg("kustomize")
                .arg(&sub)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "kubectl kustomize {case}/{path} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            if path == "kustomization.yaml" {
                objects = count_objects(&output.stdout);
            }
        }
        let flux_files = files
            .keys()
            .filter(|p| p.starts_with("flux/") && !p.ends_with("kustomization.yaml"))
            .count();
        assert_eq!(
            objects, flux_files,
            "{case}: the root kustomization is the Flux entry point"
        );
    }
}

fn count_objects(yaml: &[u8]) -> usize {
    kmetal::yaml::parse_values(&String::from_utf8_lossy(yaml))
        .unwrap()
        .len()
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// `--crds ../shared/crds/upstream`: every golden case that builds still
/// builds when the real CRDs replace kmetal's schemas.
#[test]
fn golden_inputs_build_against_the_upstream_crds() {
    let upstream = common::shared_crds().join("upstream");
    for case in common::golden_cases()
        .into_iter()
        .filter(|c| c.join("expected").is_dir())
    {
        let mut project = common::open_case_input(&case.join("input")).unwrap();
        project.allow_removal = std::fs::read_to_string(case.join("allow-removal"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        project.crds = Some(upstream.clone());
        if let Err(diagnostics) = kmetal::compile(&project) {
            panic!("{}:\n{diagnostics}", case.display());
        }
    }
}

/// Every way of breaking one golden object (dropping a field, emptying a
/// string, adding an unknown field) that the upstream CRD (schema and CEL)
/// rejects, kmetal's embedded schema rejects too: ours is never looser.
#[test]
fn embedded_schemas_are_never_looser_than_upstream() {
    let upstream = upstream();
    let ours = kmetal::verify::Schemas::embedded();
    let mut looser = Vec::new();
    let mut tried = 0;
    for (name, key, doc) in golden_objects() {
        let Some(crd) = upstream.get(&key) else {
            continue;
        };
        for (what, mutant) in mutations(&doc) {
            tried += 1;
            let upstream_ok =
                crd.validator.is_valid(&mutant) && crd.rules.evaluate(&mutant).is_empty();
            if !upstream_ok && ours.violations(&mutant).is_empty() {
                looser.push(format!("{name}: {what}"));
            }
        }
    }
    assert!(tried > 1000, "only {tried} mutations");
    assert!(
        looser.is_empty(),
        "kmetal accepts what the CRD rejects:\n{}",
        looser.join("\n")
    );
}

/// Variations of `doc`, each with a description.
fn mutations(doc: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut pointers = Vec::new();
    collect_pointers(doc, String::new(), &mut pointers);
    for pointer in pointers {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let mut dropped = doc.clone();
        match dropped.pointer_mut(if parent.is_empty() { "" } else { parent }) {
            Some(Value::Object(map)) => {
                map.remove(key);
            }
            Some(Value::Array(list)) => {
                list.remove(key.parse::<usize>().unwrap());
            }
            _ => continue,
        }
        out.push((format!("without {pointer}"), dropped));
        if doc.pointer(&pointer).is_some_and(Value::is_string) {
            let mut emptied = doc.clone();
            *emptied.pointer_mut(&pointer).unwrap() = Value::String(String::new());
            out.push((format!("{pointer} empty"), emptied));
        }
        if doc.pointer(&pointer).is_some_and(Value::is_object) {
            let mut extended = doc.clone();
            extended.pointer_mut(&pointer).unwrap()["zzUnknownField"] = Value::from(1);
            out.push((format!("unknown field in {pointer}"), extended));
        }
    }
    out
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let pointer = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(pointer.clone());
                collect_pointers(v, pointer, out);
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                let pointer = format!("{at}/{i}");
                out.push(pointer.clone());
                collect_pointers(v, pointer, out);
            }
        }
        _ => {}
    }
}

/// The YAML of `docs/getting-started.md` (the GitRepository and root
/// Kustomization that apply kmetal's output) passes the upstream CRDs.
#[test]
fn the_getting_started_yaml_satisfies_the_upstream_crds() {
    let upstream = upstream();
    let text = std::fs::read_to_string(common::root().join("docs/getting-started.md")).unwrap();
    let mut kinds = Vec::new();
    let mut failures = Vec::new();
    for block in text.split("```yaml\n").skip(1) {
        let block = block.split("```").next().unwrap();
        for doc in kmetal::yaml::parse_values(block).unwrap() {
            let key: Key = (
                doc["apiVersion"].as_str().unwrap().to_string(),
                doc["kind"].as_str().unwrap().to_string(),
            );
            let crd = upstream
                .get(&key)
                .unwrap_or_else(|| panic!("no upstream CRD for {key:?}"));
            failures.extend(crd.violations(&format!("{key:?}"), &doc));
            kinds.push(key.1);
        }
    }
    assert_eq!(kinds, ["GitRepository", "Kustomization"]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // It points where the bundled example's kmetal.yaml says Flux finds it.
    let example =
        std::fs::read_to_string(common::root().join("examples/production/kmetal.yaml")).unwrap();
    for name in ["kmetal-gitops", "kmetal-flux"] {
        assert!(text.contains(name) && example.contains(name), "{name}");
    }
}
