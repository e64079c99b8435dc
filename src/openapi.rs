//! Kubernetes structural OpenAPI v3 schemas (CRD versions, ClusterClass
//! variables) → strict draft-07 JSON Schema, as the API server applies them
//! with strict field validation.
//!
//! `nullable` admits `null`, `x-kubernetes-int-or-string` admits both, and an
//! object without `x-kubernetes-preserve-unknown-fields` rejects fields it does
//! not declare. `x-kubernetes-validations` stay in place for [`crate::cel`].

use serde_json::{Map, Value, json};

/// The validator of a converted schema. Its `pattern`s are Go regular
/// expressions (the API server and Cluster API match them with Go's RE2
/// engine), so they are matched by the `regex` crate, which has that syntax:
/// no look-around, no backreferences.
pub fn validator(
    schema: &Value,
) -> Result<jsonschema::Validator, jsonschema::ValidationError<'static>> {
    validator_for(schema)
}

/// [`validator`] for instances of the representation `F`; the patterns
/// Kubernetes checks every name and label with are matched by
/// [`crate::patterns`].
pub fn validator_for<F: jsonschema::json::Json + 'static>(
    schema: &Value,
) -> Result<jsonschema::Validator<F>, jsonschema::ValidationError<'static>> {
    options::<F>()
        .with_keyword("pattern", crate::patterns::keyword::<F>)
        .build(schema)
}

/// The options of every validator, before the `pattern` keyword is replaced.
pub(crate) fn options<F: jsonschema::json::Json>()
-> jsonschema::ValidationOptions<'static, std::sync::Arc<dyn jsonschema::Retrieve>, F> {
    jsonschema::options_for::<F>()
        .with_draft(jsonschema::Draft::Draft7)
        .with_pattern_options(jsonschema::PatternOptions::regex())
}

/// Convert one schema node and everything below it.
pub fn to_json_schema(node: &Value) -> Value {
    match node {
        Value::Object(map) => Value::Object(convert(map)),
        other => other.clone(),
    }
}

/// [`to_json_schema`] of one object node.
fn convert(map: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "properties" | "patternProperties" | "definitions" => match value {
                Value::Object(children) => Value::Object(
                    children
                        .iter()
                        .map(|(k, v)| (k.clone(), to_json_schema(v)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "additionalProperties" | "not" => to_json_schema(value),
            "allOf" | "anyOf" | "oneOf" => match value {
                Value::Array(list) => Value::Array(list.iter().map(to_json_schema).collect()),
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if out.remove("nullable") == Some(Value::Bool(true))
        && let Some(Value::String(t)) = out.get("type").cloned()
    {
        out.insert("type".into(), json!([t, "null"]));
    }
    if out.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        out.remove("type");
        out.insert(
            "anyOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    let is_object = out.get("type") == Some(&json!("object")) || out.contains_key("properties");
    let open = out.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if is_object && !open && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    out
}

/// The schema of a whole object of one CRD version: its `openAPIV3Schema`
/// with `apiVersion` and `kind` fixed and `metadata` checked as the API server does.
pub fn object_schema(
    api_version: &str,
    kind: &str,
    namespaced: bool,
    open_api: &Map<String, Value>,
) -> Value {
    let mut map = convert(open_api);
    let name = json!({"type": "string", "maxLength": 253, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"});
    let mut metadata = json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": name,
            "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "additionalProperties": false,
    });
    if namespaced {
        metadata["properties"]["namespace"] = json!({"type": "string", "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"});
    }
    map.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    let properties = map.entry("properties").or_insert_with(|| json!({}));
    properties["apiVersion"] = json!({"enum": [api_version]});
    properties["kind"] = json!({"enum": [kind]});
    properties["metadata"] = metadata;
    map.insert("required".into(), json!(["apiVersion", "kind", "metadata"]));
    map.insert("additionalProperties".into(), Value::Bool(false));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictness_nullable_and_int_or_string() {
        let crd = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string", "nullable": true},
                "port": {"x-kubernetes-int-or-string": true},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}},
            },
        });
        let schema = to_json_schema(&crd);
        let validator = validator(&schema).unwrap();
        for ok in [
            json!({"a": null}),
            json!({"port": 80}),
            json!({"port": "http"}),
            json!({"free": {"any": 1}}),
            json!({"list": [{"x": 1}]}),
        ] {
            assert!(validator.is_valid(&ok), "{ok}");
        }
        for bad in [
            json!({"b": 1}),
            json!({"list": [{"y": 1}]}),
            json!({"port": true}),
        ] {
            assert!(!validator.is_valid(&bad), "{bad}");
        }
    }

    #[test]
    fn patterns_are_go_regular_expressions() {
        // RE2, as the API server compiles them: no look-around.
        let pattern = |p: &str| validator(&json!({"type": "string", "pattern": p}));
        assert!(pattern("^(?=a)a$").is_err());
        let name = pattern("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap();
        assert!(name.is_valid(&json!("tenant-a")) && !name.is_valid(&json!("Tenant")));
    }

    #[test]
    fn whole_objects_fix_api_version_kind_and_metadata() {
        let schema = object_schema(
            "example.io/v1",
            "Thing",
            false,
            json!({"type": "object", "properties": {"spec": {"type": "object"}}})
                .as_object()
                .unwrap(),
        );
        let validator = validator(&schema).unwrap();
        assert!(validator.is_valid(&json!({"apiVersion": "example.io/v1", "kind": "Thing", "metadata": {"name": "a"}, "spec": {}})));
        assert!(!validator.is_valid(
            &json!({"apiVersion": "example.io/v2", "kind": "Thing", "metadata": {"name": "a"}})
        ));
        assert!(!validator.is_valid(&json!({"apiVersion": "example.io/v1", "kind": "Thing", "metadata": {"name": "a", "namespace": "x"}})));
    }
}
