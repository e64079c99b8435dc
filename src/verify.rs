//! Rendered documents → schema and CEL violations, against the embedded
//! `schemas/` or the user's own CRDs (`--crds`).
//!
//! Our schemas are written for what we emit and are strict (unknown fields are
//! errors); they are narrower than the upstream CRDs, never looser (a test
//! checks every golden output against the upstream ones too). Each is compiled
//! once, with its `x-kubernetes-validations` CEL rules. A violation is a bug in
//! a stack template: the diagnostic names the template, the output file, the
//! input file and the JSON path.

use crate::json::{At, Field};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rustc_hash::FxHashMap;

use std::sync::{OnceLock, RwLock};

use jsonschema::Validator;
use rayon::prelude::*;
use serde_json::Value;

use crate::cel::CelRules;
use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::openapi;
use crate::render::Document;
use crate::value::{Compact, Value as Tree};

/// One kind's compiled checks, and where they came from.
pub struct KindSchema {
    schema: Value,
    /// For kmetal's own trees (every object it makes or reads back).
    validator: Validator<Compact>,
    /// The same schema for serde_json's trees, compiled when one is checked.
    serde: OnceLock<Validator>,
    rules: CelRules,
    origin: String,
    /// The schema in parts, and per family of objects (those of one
    /// template) the first found valid in full: the objects after it are
    /// checked by how they differ from it ([`crate::twin`]).
    parts: OnceLock<Option<crate::twin::Parts>>,
    twins: RwLock<FxHashMap<Box<str>, crate::twin::Twin>>,
}

/// Families of one kind that keep a twin: a fleet's templates are few, and
/// the objects of any others are checked in full.
const TWINS: usize = 64;

impl KindSchema {
    /// Whether `value` is valid by how it differs from the twin (false when
    /// there is none yet, or it cannot tell).
    fn valid_like_twin(&self, value: &Tree, family: &str) -> bool {
        let (Some(parts), Ok(twins)) = (self.parts(), self.twins.read()) else {
            return false;
        };
        twins
            .get(family)
            .is_some_and(|twin| parts.valid_like(value, twin))
    }

    /// Keep `value`, found valid in full, as its family's twin when it has none.
    fn found_valid(&self, value: &Tree, family: &str) {
        let Some(parts) = self.parts() else {
            return;
        };
        if let Ok(mut twins) = self.twins.write()
            && twins.len() < TWINS
            && !twins.contains_key(family)
        {
            twins.insert(family.into(), parts.twin(value));
        }
    }

    fn parts(&self) -> Option<&crate::twin::Parts> {
        (self.parts)
            .get_or_init(|| crate::twin::Parts::of(&self.schema))
            .as_ref()
    }

    fn serde(&self) -> &Validator {
        self.serde.get_or_init(|| {
            // Compiled for kmetal's trees already; compiling reads only the schema.
            openapi::validator(&self.schema).expect("the schema compiled before")
        })
    }
}

/// A tree the schemas check: `serde_json`'s or kmetal's own.
pub trait Checked: crate::value::JsonView {
    /// `apiVersion` and `kind` (empty when unset).
    fn kind_of(&self) -> (&str, &str);
    /// `(JSON pointer, message)` of each schema violation, none when valid.
    /// `family` names where the object comes from (its template): objects
    /// of one family are alike.
    fn schema_errors(&self, schema: &KindSchema, family: &str) -> Vec<(String, String)>;
}

fn as_errors<'a>(
    errors: impl Iterator<Item = jsonschema::ValidationError<'a>>,
) -> Vec<(String, String)> {
    errors
        .map(|e| (e.instance_path().to_string(), e.to_string()))
        .collect()
}

impl Checked for Value {
    fn kind_of(&self) -> (&str, &str) {
        let field = |f: &str| self.field(f).and_then(Value::as_str).unwrap_or_default();
        (field("apiVersion"), field("kind"))
    }
    fn schema_errors(&self, schema: &KindSchema, _family: &str) -> Vec<(String, String)> {
        // Most objects are valid: `is_valid` stops at the first error and
        // collects none; only an invalid object is walked again for its errors.
        let validator = schema.serde();
        match validator.is_valid(self) {
            true => Vec::new(),
            false => as_errors(validator.iter_errors(self)),
        }
    }
}

impl Checked for Tree {
    fn kind_of(&self) -> (&str, &str) {
        let field = |f: &str| self.item(f).as_str().unwrap_or_default();
        (field("apiVersion"), field("kind"))
    }
    fn schema_errors(&self, schema: &KindSchema, family: &str) -> Vec<(String, String)> {
        if schema.valid_like_twin(self, family) {
            return Vec::new();
        }
        match schema.validator.is_valid(self) {
            true => {
                schema.found_valid(self, family);
                Vec::new()
            }
            false => as_errors(schema.validator.iter_errors(self)),
        }
    }
}

/// Compiled output schemas, by `(apiVersion, kind)`.
pub struct Schemas {
    /// apiVersion → kind → schema: looked up with the object's own strings,
    /// for every object (hashed: a tree search compares the texts at each
    /// level). Nothing walks it in its order but [`Schemas::kinds`], which sorts.
    by_kind: FxHashMap<String, FxHashMap<String, KindSchema>>,
    /// `(group, kind)` of every kind a user CRD replaced → the versions it serves and its file.
    from_crds: BTreeMap<(String, String), (BTreeSet<String>, String)>,
}

/// The single `enum` value of `properties.<field>` in a schema.
fn fixed(schema: &Value, field: &str) -> Option<String> {
    let values = schema
        .at(&format!("/properties/{field}/enum"))?
        .as_array()?;
    match values.as_slice() {
        [Value::String(only)] => Some(only.clone()),
        _ => None,
    }
}

fn compile(schema: &Value, origin: &str) -> Result<KindSchema, String> {
    let validator = openapi::validator_for(schema).map_err(|e| format!("{origin}: {e}"))?;
    let rules = CelRules::compile(schema).map_err(|e| format!("{origin}: {e}"))?;
    Ok(KindSchema {
        schema: schema.clone(),
        validator,
        serde: OnceLock::new(),
        rules,
        origin: origin.to_string(),
        parts: OnceLock::new(),
        twins: RwLock::default(),
    })
}

impl Schemas {
    /// Compile every embedded schema. Each fixes its apiVersion and kind with a one-value `enum`.
    pub fn embedded() -> Self {
        // Compiled in parallel; one map whatever the order.
        let schemas: Vec<(String, Value)> = crate::embedded::schemas().into_iter().collect();
        let compiled = (schemas.par_iter())
            .map(|(name, schema)| {
                let key = (
                    fixed(schema, "apiVersion")
                        .unwrap_or_else(|| panic!("schemas/{name} fixes apiVersion")),
                    fixed(schema, "kind").unwrap_or_else(|| panic!("schemas/{name} fixes kind")),
                );
                let compiled =
                    compile(schema, &format!("schemas/{name}")).unwrap_or_else(|e| panic!("{e}"));
                (key, compiled)
            })
            .collect::<Vec<_>>();
        let mut by_kind: FxHashMap<String, FxHashMap<String, KindSchema>> = FxHashMap::default();
        for ((api_version, kind), compiled) in compiled {
            by_kind
                .entry(api_version)
                .or_default()
                .insert(kind, compiled);
        }
        Schemas {
            by_kind,
            from_crds: BTreeMap::new(),
        }
    }

    /// Replace the schema of every kind the CRDs at `path` (a file or a
    /// directory of YAML) define, with the versions they serve.
    pub fn with_crds(mut self, path: &Path, diagnostics: &mut Diagnostics) -> Self {
        for (file, crd) in crate::crds::read(path, diagnostics) {
            let key = (crd.group.clone(), crd.kind.clone());
            let served: BTreeSet<String> = crd.versions.iter().map(|(v, _)| v.clone()).collect();
            for (api_version, kinds) in &mut self.by_kind {
                if crate::json::api_group(api_version) == crd.group {
                    kinds.remove(&crd.kind);
                }
            }
            self.by_kind.retain(|_, kinds| !kinds.is_empty());
            for (version, open_api) in &crd.versions {
                let api_version = format!("{}/{version}", crd.group);
                let schema =
                    openapi::object_schema(&api_version, &crd.kind, crd.namespaced, open_api);
                match compile(&schema, &file) {
                    Ok(compiled) => {
                        (self.by_kind.entry(api_version).or_default())
                            .insert(crd.kind.clone(), compiled);
                    }
                    Err(e) => diagnostics.push(
                        Diagnostic::error(
                            codes::CRD_INVALID,
                            format!(
                                "the schema of {api_version} {} does not compile: {e}",
                                crd.kind
                            ),
                        )
                        .at(SourceLocation::file(&file)),
                    ),
                }
            }
            self.from_crds.insert(key, (served, file));
        }
        self
    }

    /// The kinds there is a schema for, as `apiVersion/kind`.
    pub fn kinds(&self) -> impl Iterator<Item = String> + '_ {
        let mut kinds: Vec<(&str, &str)> = (self.by_kind.iter())
            .flat_map(|(a, kinds)| kinds.keys().map(move |k| (a.as_str(), k.as_str())))
            .collect();
        kinds.sort_unstable();
        kinds.into_iter().map(|(a, k)| format!("{a}/{k}"))
    }

    /// Check every document, in parallel; all violations are reported.
    pub fn verify<V: Checked + Sync>(&self, documents: &[Document<V>]) -> Diagnostics {
        let found: Vec<_> = documents
            .par_iter()
            .map(|d| self.violations_from(&d.value, &d.template))
            .collect();
        self.reported(documents, found)
    }

    /// [`Schemas::verify`] on this thread: for the few documents of one
    /// tenant, checked where the tenants are in parallel already.
    pub fn verify_here<V: Checked>(&self, documents: &[Document<V>]) -> Diagnostics {
        let found = (documents.iter())
            .map(|d| self.violations_from(&d.value, &d.template))
            .collect();
        self.reported(documents, found)
    }

    fn reported<V>(
        &self,
        documents: &[Document<V>],
        found: Vec<Vec<(&'static str, String, String)>>,
    ) -> Diagnostics {
        let mut diagnostics = Diagnostics::new();
        for (document, violations) in documents.iter().zip(found) {
            for (code, pointer, message) in violations {
                let at = if pointer.is_empty() {
                    "/".to_string()
                } else {
                    pointer
                };
                diagnostics.push(
                    Diagnostic::error(code, format!("output {} (from {}) is invalid at {at}: {message}", document.path, document.source))
                        .at(SourceLocation::file(&document.template))
                        .related(SourceLocation::file(&document.source), "the input it was rendered from")
                        .help("fix the stack template (or the input) so that the object is what the CRD accepts"),
                );
            }
        }
        diagnostics
    }

    /// `(code, JSON pointer, message)` for each violation of one object.
    pub fn violations<V: Checked>(&self, value: &V) -> Vec<(&'static str, String, String)> {
        self.violations_from(value, "")
    }

    /// [`Schemas::violations`] of an object of `family` (the template it
    /// comes from): the same answer, found faster after one of its family.
    pub fn violations_from<V: Checked>(
        &self,
        value: &V,
        family: &str,
    ) -> Vec<(&'static str, String, String)> {
        let (api_version, kind) = value.kind_of();
        let Some(schema) = self.schema(api_version, kind) else {
            let unknown = self.unknown_kind(api_version, kind);
            return vec![(codes::OUTPUT_SCHEMA, String::new(), unknown)];
        };
        let mut found: Vec<(&'static str, String, String)> = (value.schema_errors(schema, family))
            .into_iter()
            .map(|(pointer, message)| (codes::OUTPUT_SCHEMA, pointer, message))
            .collect();
        found.sort();
        for violation in schema.rules.evaluate(value) {
            let message = format!(
                "{} (rule `{}` of {})",
                violation.message, violation.rule, schema.origin
            );
            found.push((codes::OUTPUT_CEL, violation.path, message));
        }
        found
    }

    /// `(JSON pointer, message)` of each CRD transition rule (`oldSelf`) that an
    /// update of `old` to `new` breaks, as the API server would refuse it. Objects
    /// of another apiVersion or kind, or of a kind without a schema, break none.
    pub fn update_violations<V: Checked>(&self, old: &V, new: &V) -> Vec<(String, String)> {
        let (api_version, kind) = new.kind_of();
        if (api_version, kind) != old.kind_of() {
            return Vec::new();
        }
        let Some(schema) = self.schema(api_version, kind) else {
            return Vec::new();
        };
        (schema.rules.evaluate_update(new, old).into_iter())
            .map(|v| {
                let message = format!("{} (rule `{}` of {})", v.message, v.rule, schema.origin);
                (v.path, message)
            })
            .collect()
    }

    fn schema(&self, api_version: &str, kind: &str) -> Option<&KindSchema> {
        self.by_kind.get(api_version)?.get(kind)
    }

    fn unknown_kind(&self, api_version: &str, kind: &str) -> String {
        let group = crate::json::api_group(api_version);
        if let Some((served, file)) = self.from_crds.get(&(group.to_string(), kind.to_string())) {
            let served: Vec<&str> = served.iter().map(String::as_str).collect();
            return format!(
                "{file} does not serve {api_version} for {kind} (it serves {})",
                served.join(", ")
            );
        }
        let known: Vec<String> = self.kinds().collect();
        format!(
            "kmetal has no schema for {api_version}/{kind}; it emits only {}",
            known.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_embedded_json_is_what_the_schemas_yaml_reads_as() {
        let embedded = crate::embedded::schemas();
        let files = crate::embedded::schema_files();
        assert_eq!(embedded.len(), files.len());
        for (name, text) in files {
            let read = crate::yaml::parse_values(text).unwrap();
            assert_eq!(read.len(), 1, "{name}");
            // Equal in content and in the order of every mapping's keys.
            let (json, yaml) = (&embedded[&name], &read[0]);
            assert_eq!(
                serde_json::to_string(json).unwrap(),
                serde_json::to_string(yaml).unwrap(),
                "schemas/{name}"
            );
        }
    }

    #[test]
    fn strict_and_keyed_by_kind() {
        let schemas = Schemas::embedded();
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-a"}});
        assert!(schemas.violations(&ns).is_empty());
        let extra =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}, "spec": {}});
        assert!(!schemas.violations(&extra).is_empty());
        let unknown = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}});
        assert!(schemas.violations(&unknown)[0].2.contains("no schema"));
    }

    #[test]
    fn after_a_valid_object_each_of_its_kind_is_still_checked() {
        let schemas = Schemas::embedded();
        let ns = |name: &str, labels: serde_json::Value| {
            Tree::from(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": labels}}))
        };
        let first = ns("tenant-a", json!({"kmetal.io/tenant": "a"}));
        assert!(schemas.violations(&first).is_empty());
        // The first valid one is the twin of those after it.
        let namespace = schemas.schema("v1", "Namespace").unwrap();
        assert!(namespace.twins.read().unwrap().contains_key(""));
        assert!(
            schemas
                .violations(&ns("tenant-b", json!({"kmetal.io/tenant": "b"})))
                .is_empty()
        );
        for (name, labels) in [
            ("Tenant_B", json!({"kmetal.io/tenant": "b"})),
            ("tenant-b", json!({"kmetal.io/tenant": "not a label value"})),
            (
                "tenant-b",
                json!({"kmetal.io/tenant": "b", "bad key!": "x"}),
            ),
            ("tenant-b", json!({"kmetal.io/tenant": 1})),
        ] {
            let found = schemas.violations(&ns(name, labels.clone()));
            let full = schemas.violations(&serde_json::Value::from(&ns(name, labels.clone())));
            assert!(!found.is_empty(), "{name} {labels}");
            assert_eq!(found, full, "the full check's errors");
        }
    }

    #[test]
    fn datastore_cel_rules_run() {
        let schemas = Schemas::embedded();
        let secret =
            |key: &str| json!({"secretReference": {"name": "s", "namespace": "n", "keyPath": key}});
        let etcd = json!({
            "apiVersion": "kamaji.clastix.io/v1alpha1", "kind": "DataStore", "metadata": {"name": "d"},
            "spec": {"driver": "etcd", "endpoints": ["e:2379"], "tlsConfig": {"certificateAuthority": {"certificate": secret("tls.crt"), "privateKey": secret("tls.key")}}},
        });
        let found = schemas.violations(&etcd);
        assert!(
            found.iter().any(|(code, _, m)| *code == codes::OUTPUT_CEL
                && m.contains(
                    "clientCertificate must have secretReference or content when driver is etcd"
                )),
            "{found:?}"
        );
    }
}
