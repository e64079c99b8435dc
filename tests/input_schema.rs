//! The JSON Schemas of the input files (`kmetal schema tenant|site`): every
//! valid input in the repository passes them, mistakes an editor should flag
//! fail them, and every property is described and every object closed.

mod common;

use std::path::{Path, PathBuf};

use kmetal::schema::{InputKind, input_schema};
use serde_json::Value;

fn schema(kind: InputKind) -> Value {
    let text = input_schema(kind);
    assert!(text.ends_with("}\n"), "{kind:?}: ends in a newline");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{kind:?}: not JSON: {e}"))
}

fn validator(kind: InputKind) -> jsonschema::Validator {
    jsonschema::draft7::new(&schema(kind)).unwrap_or_else(|e| panic!("{kind:?}: {e}"))
}

/// The one document of a YAML input file.
fn document(text: &str) -> Value {
    let mut docs = kmetal::yaml::parse_values(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(docs.len(), 1, "one document per input file");
    docs.remove(0)
}

/// Every repository whose inputs are meant to be valid: the golden cases
/// except the deliberately broken `error-*` ones, and the examples.
fn valid_repositories() -> Vec<PathBuf> {
    let root = common::root();
    let mut dirs: Vec<PathBuf> = common::golden_cases()
        .into_iter()
        .filter(|case| {
            let name = case.file_name().map(|n| n.to_string_lossy().into_owned());
            !name.unwrap_or_default().starts_with("error-")
        })
        .map(|case| case.join("input"))
        .collect();
    let examples = std::fs::read_dir(root.join("examples")).expect("examples/ exists");
    dirs.extend(
        examples
            .map(|e| e.expect("readable examples/ entry").path())
            .filter(|p| p.is_dir()),
    );
    dirs.sort();
    dirs
}

/// `(path, text)` of every tenant file of a repository.
fn tenant_files(repository: &Path) -> Vec<(String, String)> {
    let dir = repository.join("tenants");
    common::read_tree(&dir)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".yaml"))
        .map(|(name, text)| (dir.join(name).display().to_string(), text))
        .collect()
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn schemas_are_draft07_with_titles() {
    for (kind, title, kind_const) in [
        (InputKind::Tenant, "kmetal tenant", "Tenant"),
        (InputKind::Site, "kmetal site", "Site"),
    ] {
        let schema = schema(kind);
        assert_eq!(
            schema["$schema"], "http://json-schema.org/draft-07/schema#",
            "{kind:?}"
        );
        assert_eq!(schema["title"], title, "{kind:?}");
        assert_eq!(
            schema["properties"]["apiVersion"]["const"], "kmetal.io/v1alpha1",
            "{kind:?}"
        );
        assert_eq!(
            schema["properties"]["kind"]["const"], kind_const,
            "{kind:?}"
        );
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("{kind:?}: not a valid schema: {e}");
        }
        assert_eq!(input_schema(kind), input_schema(kind), "deterministic");
    }
}

#[test]
fn every_valid_input_in_the_repository_passes() {
    let site = validator(InputKind::Site);
    let tenant = validator(InputKind::Tenant);
    let mut problems = Vec::new();
    let (mut sites, mut tenants) = (0, 0);
    for repository in valid_repositories() {
        let site_file = repository.join("kmetal.yaml");
        let text = std::fs::read_to_string(&site_file)
            .unwrap_or_else(|e| panic!("{}: {e}", site_file.display()));
        for error in errors(&site, &document(&text)) {
            problems.push(format!("{}: {error}", site_file.display()));
        }
        sites += 1;
        for (path, text) in tenant_files(&repository) {
            for error in errors(&tenant, &document(&text)) {
                problems.push(format!("{path}: {error}"));
            }
            tenants += 1;
        }
    }
    assert!(
        sites >= 2 && tenants >= 4,
        "{sites} sites, {tenants} tenants"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn mistakes_fail() {
    let site = validator(InputKind::Site);
    let tenant = validator(InputKind::Tenant);
    let header = "apiVersion: kmetal.io/v1alpha1\n";
    let cases = [
        (
            &tenant,
            format!("{header}kind: Tenant\nname: acme\nmachinSize: small\n"),
            "machinSize",
        ),
        (
            &site,
            format!(
                "{header}kind: Site\nname: s\nflux: {{sourceRef: {{kind: GitRepository, name: x}}, intervl: 10m}}\n"
            ),
            "intervl",
        ),
        (
            &tenant,
            format!("{header}kind: Site\nname: acme\n"),
            "Tenant",
        ),
        (
            &tenant,
            "apiVersion: kmetal.io/v1\nkind: Tenant\nname: acme\n".to_string(),
            "kmetal.io/v1alpha1",
        ),
        (
            &site,
            format!(
                "{header}kind: Site\nname: s\nflux: {{sourceRef: {{kind: GitRepository, name: x}}}}\ndataStores: [{{name: d, driver: postgres, endpoints: [h:1]}}]\n"
            ),
            "postgres",
        ),
    ];
    for (validator, text, needle) in cases {
        let found = errors(validator, &document(&text));
        assert!(
            found.iter().any(|e| e.contains(needle)),
            "{text}\nexpected an error about {needle}, got {found:?}"
        );
    }
    // The smallest valid files pass, so the failures above are the mistakes'.
    let tenant_ok = format!("{header}kind: Tenant\nname: acme\n");
    assert_eq!(errors(&tenant, &document(&tenant_ok)), Vec::<String>::new());
    let site_ok = format!(
        "{header}kind: Site\nname: s\nflux: {{sourceRef: {{kind: GitRepository, name: x}}}}\n"
    );
    assert_eq!(errors(&site, &document(&site_ok)), Vec::<String>::new());
}

/// Calls `visit(pointer, schema)` on every subschema of `value`, definitions included.
fn walk(
    pointer: &str,
    value: &Value,
    visit: &mut dyn FnMut(&str, &serde_json::Map<String, Value>),
) {
    match value {
        Value::Object(map) => {
            visit(pointer, map);
            for (key, child) in map {
                walk(&format!("{pointer}/{key}"), child, visit);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(&format!("{pointer}/{i}"), child, visit);
            }
        }
        _ => {}
    }
}

#[test]
fn every_property_is_described_and_every_object_closed() {
    for kind in [InputKind::Tenant, InputKind::Site] {
        let schema = schema(kind);
        assert!(
            schema["definitions"]
                .as_object()
                .is_some_and(|d| !d.is_empty()),
            "{kind:?}: nested types are definitions"
        );
        let mut problems = Vec::new();
        let (mut properties, mut objects) = (0, 0);
        walk("#", &schema, &mut |pointer, map| {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, property) in props {
                    properties += 1;
                    let described = property["description"]
                        .as_str()
                        .is_some_and(|d| !d.trim().is_empty());
                    if !described {
                        problems.push(format!("{pointer}/properties/{name}: no description"));
                    }
                }
            }
            let is_object = map.get("type").is_some_and(|t| {
                t == "object"
                    || t.as_array()
                        .is_some_and(|ts| ts.iter().any(|t| t == "object"))
            });
            if is_object || map.contains_key("properties") {
                objects += 1;
                // A mapping is closed by its fields, or by a pattern its keys match.
                let keys_constrained = map
                    .get("propertyNames")
                    .is_some_and(|p| p.get("pattern").is_some());
                if map.get("additionalProperties") != Some(&Value::Bool(false)) && !keys_constrained
                {
                    problems.push(format!("{pointer}: additionalProperties is not false"));
                }
            }
        });
        assert!(
            properties > 10 && objects > 3,
            "{kind:?}: walked the schema"
        );
        assert!(problems.is_empty(), "{kind:?}:\n{}", problems.join("\n"));
    }
}
