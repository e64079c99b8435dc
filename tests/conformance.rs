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

/// `(apiVersion, kind)` → compiled strict upstream schema.
fn upstream_schemas() -> BTreeMap<(String, String), jsonschema::Validator> {
    let crds = common::shared_crds();
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(crds.join("jsonschema/index.json")).unwrap())
            .unwrap();
    let mut schemas = BTreeMap::new();
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
        schemas.insert((field("apiVersion"), field("kind")), validator);
    }
    schemas
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
    let schemas = upstream_schemas();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (case, files) in expected_trees() {
        for (path, text) in files
            .iter()
            .filter(|(p, _)| p.ends_with(".yaml") && !p.ends_with("kustomization.yaml"))
        {
            let docs =
                kmetal::yaml::parse_values(text).unwrap_or_else(|e| panic!("{case}/{path}: {e}"));
            assert_eq!(docs.len(), 1, "{case}/{path}: one object per file");
            let doc = &docs[0];
            let key = (
                doc["apiVersion"].as_str().unwrap().to_string(),
                doc["kind"].as_str().unwrap().to_string(),
            );
            let Some(validator) = schemas.get(&key) else {
                assert!(
                    CORE_KINDS.contains(&(key.0.as_str(), key.1.as_str())),
                    "{case}/{path}: no upstream schema for {key:?}"
                );
                continue;
            };
            for error in validator.iter_errors(doc) {
                failures.push(format!("{case}/{path}: {}: {error}", error.instance_path()));
            }
            checked += 1;
        }
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
