//! `--crds PATH` (a CustomResourceDefinition file or a directory of them, as
//! `kubectl get crd -o yaml` writes them) → the served versions of each kind.

use std::path::Path;

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::yaml;

/// What one CRD defines.
#[derive(Clone, Debug)]
pub struct Crd {
    pub group: String,
    pub kind: String,
    pub namespaced: bool,
    /// Served versions, in order, with their `openAPIV3Schema`.
    pub versions: Vec<(String, Value)>,
}

/// Every CRD in `path`, with the file it came from. Problems become diagnostics.
pub fn read(path: &Path, diagnostics: &mut Diagnostics) -> Vec<(String, Crd)> {
    let mut files: Vec<_> = walkdir::WalkDir::new(path)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        diagnostics.push(
            Diagnostic::error(codes::CRD_INVALID, format!("no CRD files (*.yaml, *.yml, *.json) at {}", path.display()))
                .help("point --crds at a CRD file or a directory of them, e.g. from `kubectl get crd -o yaml`"),
        );
    }
    let mut crds = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let parsed = std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| yaml::parse_values(&t));
        let docs = match parsed {
            Ok(docs) => docs,
            Err(e) => {
                diagnostics.push(
                    Diagnostic::error(codes::CRD_INVALID, format!("cannot read CRDs: {e}"))
                        .at(SourceLocation::file(&name)),
                );
                continue;
            }
        };
        for doc in docs
            .iter()
            .flat_map(|d| match d.get("kind").and_then(Value::as_str) {
                Some("List") => d
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                _ => vec![d.clone()],
            })
        {
            match crd(&doc) {
                Some(crd) => crds.push((name.clone(), crd)),
                None => diagnostics.push(
                    Diagnostic::error(codes::CRD_INVALID, "a document here is not a CustomResourceDefinition with spec.group, spec.names.kind and versions")
                        .at(SourceLocation::file(&name)),
                ),
            }
        }
    }
    crds
}

fn crd(doc: &Value) -> Option<Crd> {
    if doc.get("kind")?.as_str()? != "CustomResourceDefinition" {
        return None;
    }
    let spec = doc.get("spec")?;
    let versions = spec
        .get("versions")?
        .as_array()?
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|v| {
            let schema = v.pointer("/schema/openAPIV3Schema")?.clone();
            Some((v.get("name")?.as_str()?.to_string(), schema))
        })
        .collect();
    Some(Crd {
        group: spec.get("group")?.as_str()?.to_string(),
        kind: spec.pointer("/names/kind")?.as_str()?.to_string(),
        namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
        versions,
    })
}
