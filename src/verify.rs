//! Rendered documents → schema violations, against the embedded `schemas/`.
//!
//! Our schemas are written for what we emit and are strict (unknown fields are
//! errors); they are narrower than the upstream CRDs, never looser (a test
//! checks every golden output against the upstream ones too). They are
//! compiled once. A violation is a bug in a stack template: the diagnostic
//! names the template, the output file, the input file and the JSON path.

use std::collections::BTreeMap;

use jsonschema::Validator;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::render::Document;
use crate::yaml;

/// Compiled output schemas, by `(apiVersion, kind)`.
pub struct Schemas {
    by_kind: BTreeMap<(String, String), Validator>,
}

/// The single `enum` value of `properties.<field>` in a schema.
fn fixed(schema: &Value, field: &str) -> Option<String> {
    let values = schema
        .pointer(&format!("/properties/{field}/enum"))?
        .as_array()?;
    match values.as_slice() {
        [Value::String(only)] => Some(only.clone()),
        _ => None,
    }
}

impl Schemas {
    /// Compile every embedded schema. Each fixes its apiVersion and kind with a one-value `enum`.
    pub fn embedded() -> Self {
        let mut by_kind = BTreeMap::new();
        for (name, text) in crate::embedded::schema_files() {
            let mut docs = yaml::parse_values(text)
                .unwrap_or_else(|e| panic!("schemas/{name} is not YAML: {e}"));
            assert_eq!(docs.len(), 1, "schemas/{name} holds one schema");
            let schema = docs.remove(0);
            let key = (
                fixed(&schema, "apiVersion")
                    .unwrap_or_else(|| panic!("schemas/{name} fixes apiVersion")),
                fixed(&schema, "kind").unwrap_or_else(|| panic!("schemas/{name} fixes kind")),
            );
            let validator = jsonschema::draft7::new(&schema)
                .unwrap_or_else(|e| panic!("schemas/{name} does not compile: {e}"));
            by_kind.insert(key, validator);
        }
        Schemas { by_kind }
    }

    /// The kinds there is a schema for, as `apiVersion/kind`.
    pub fn kinds(&self) -> impl Iterator<Item = String> + '_ {
        self.by_kind.keys().map(|(a, k)| format!("{a}/{k}"))
    }

    /// Check every document; all violations are reported.
    pub fn verify(&self, documents: &[Document]) -> Diagnostics {
        let mut diagnostics = Diagnostics::new();
        for document in documents {
            for (pointer, message) in self.violations(&document.value) {
                let at = if pointer.is_empty() {
                    "/".to_string()
                } else {
                    pointer
                };
                diagnostics.push(
                    Diagnostic::error(
                        codes::OUTPUT_SCHEMA,
                        format!(
                            "output {} (from {}) is invalid at {at}: {message}",
                            document.path, document.source
                        ),
                    )
                    .at(SourceLocation::file(&document.template))
                    .help("this is a bug in the stack template: fix the template so that it emits what the CRD accepts"),
                );
            }
        }
        diagnostics
    }

    /// `(JSON pointer, message)` for each violation of one object.
    pub fn violations(&self, value: &Value) -> Vec<(String, String)> {
        let field = |f: &str| {
            value
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let key = (field("apiVersion"), field("kind"));
        let Some(validator) = self.by_kind.get(&key) else {
            let known: Vec<String> = self.kinds().collect();
            return vec![(
                String::new(),
                format!(
                    "kmetal has no schema for {}/{}; it emits only {}",
                    key.0,
                    key.1,
                    known.join(", ")
                ),
            )];
        };
        let mut found: Vec<(String, String)> = validator
            .iter_errors(value)
            .map(|e| (e.instance_path().to_string(), e.to_string()))
            .collect();
        found.sort();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_and_keyed_by_kind() {
        let schemas = Schemas::embedded();
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-a"}});
        assert!(schemas.violations(&ns).is_empty());
        let extra =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}, "spec": {}});
        assert!(!schemas.violations(&extra).is_empty());
        let unknown = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}});
        assert!(schemas.violations(&unknown)[0].1.contains("no schema"));
    }
}
