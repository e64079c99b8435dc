//! `--crds PATH` (a CustomResourceDefinition file or a directory of them, as
//! `kubectl get crd -o yaml` writes them) → the served versions of each kind.

use crate::json::At;
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
    pub versions: Vec<(String, serde_json::Map<String, Value>)>,
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
                Ok(crd) => crds.push((name.clone(), crd)),
                Err(why) => diagnostics.push(
                    Diagnostic::error(codes::CRD_INVALID, why)
                        .at(SourceLocation::file(&name))
                        .help("pass the CustomResourceDefinition as the cluster serves it: `kubectl get crd <name> -o yaml`"),
                ),
            }
        }
    }
    crds
}

/// A CustomResourceDefinition's group, kind, scope and served schemas, or why
/// the document cannot be one.
fn crd(doc: &Value) -> Result<Crd, String> {
    let not_a_crd = || {
        "a document here is not a CustomResourceDefinition with spec.group, spec.names.kind and versions".to_string()
    };
    if doc.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
        return Err(not_a_crd());
    }
    let spec = doc.get("spec").ok_or_else(not_a_crd)?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or_else(not_a_crd)?;
    let kind = spec
        .at("/names/kind")
        .and_then(Value::as_str)
        .ok_or_else(not_a_crd)?;
    let mut versions = Vec::new();
    for v in spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or_else(not_a_crd)?
    {
        if !v.get("served").and_then(Value::as_bool).unwrap_or(false) {
            continue;
        }
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(not_a_crd)?;
        // A served version without a structural schema cannot be checked
        // against; the API server refuses such a CRD too.
        match v.at("/schema/openAPIV3Schema") {
            Some(Value::Object(schema)) => versions.push((name.to_string(), schema.clone())),
            _ => {
                return Err(format!(
                    "{kind}.{group} version {name} is served, but its schema.openAPIV3Schema is not a mapping"
                ));
            }
        }
    }
    Ok(Crd {
        group: group.to_string(),
        kind: kind.to_string(),
        namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
        versions,
    })
}
