//! Checking an object against its schema by what sets it apart from a valid
//! twin: another object of its kind, checked in full before.
//!
//! Thousands of objects of one kind differ from each other in a few values
//! (names, addresses, a version): a tenant's Cluster, the MachineDeployments
//! of one class. Where an object has the twin's shape, the schema's answer
//! at each mapping and list depends only on what the twin shares with it,
//! so only the values that differ are checked, each against the part of the
//! schema that applies to it. The answer is the full check's:
//!
//! - a mapping with the twin's keys (in its order) under a schema whose
//!   keywords read only the keys and the validity of the values (`type`,
//!   `properties`, `additionalProperties`, `required`, `propertyNames`,
//!   `min/maxProperties`, annotations) is valid when each value is valid
//!   under the schema that applies to its key; a list of the twin's length
//!   under `items` (one schema), `min/maxItems`, when each item is;
//! - anything else (another shape, `enum`, `anyOf`, `uniqueItems`, …) is
//!   checked whole against its own part of the schema, unless it is equal
//!   to the twin's (the same value is valid under the same schema): the
//!   mappings above it have the twin's keys and structural keywords only,
//!   so its validity is all they ask of it;
//! - a value no schema constrains (a key `additionalProperties` leaves
//!   open) is valid as it is.
//!
//! A `$ref` to one of the root's `definitions` is walked as the definition
//! it names; a schema with `$id`, or another `$ref`, is never split (its
//! parts are not schemas alone). Only a `true` answer is taken: an object the twin cannot vouch
//! for is checked in full, so every error is the full check's.

use std::sync::{Arc, OnceLock};

use jsonschema::Validator;
use serde_json::Value as Schema;

use crate::value::{Compact, List, Map, Value, same_key};

/// A schema as the nodes an instance walks, each checkable alone.
pub struct Parts {
    nodes: Vec<Part>,
    schema: Schema,
}

struct Part {
    /// JSON pointer of this part in the schema.
    pointer: String,
    /// Keys of `properties` and their parts.
    properties: Vec<(String, usize)>,
    /// The part of keys `properties` does not name, when it is a schema.
    additional: Option<usize>,
    /// The part of every item (`items` as one schema).
    items: Option<usize>,
    /// Its keywords read only keys, lengths and the validity of children.
    structural: bool,
    validator: OnceLock<Option<Validator<Compact>>>,
}

/// Keywords whose answer on a mapping or list depends only on its keys or
/// length and its children's validity, or that do not apply to one at all.
fn structural(key: &str) -> bool {
    key.starts_with("x-kubernetes-")
        || matches!(
            key,
            "type"
                | "properties"
                | "additionalProperties"
                | "required"
                | "propertyNames"
                | "minProperties"
                | "maxProperties"
                | "items"
                | "minItems"
                | "maxItems"
                | "description"
                | "title"
                | "default"
                | "examples"
                | "$schema"
                | "definitions"
                | "format"
                | "pattern"
                | "minLength"
                | "maxLength"
                | "minimum"
                | "maximum"
                | "exclusiveMinimum"
                | "exclusiveMaximum"
                | "multipleOf"
        )
}

/// Whether `schema` can be split: no `$id`, and every `$ref` names one of
/// the root's `definitions`.
fn splittable(schema: &Schema) -> bool {
    match schema {
        Schema::Object(map) => map.iter().all(|(k, v)| match k.as_str() {
            "$id" => false,
            "$ref" => v.as_str().and_then(definition).is_some(),
            _ => splittable(v),
        }),
        Schema::Array(items) => items.iter().all(splittable),
        _ => true,
    }
}

/// The definition a local `$ref` names (`#/definitions/<name>`).
fn definition(reference: &str) -> Option<&str> {
    reference
        .strip_prefix("#/definitions/")
        .filter(|name| !name.contains(['/', '~']))
}

/// Keywords that say nothing about an instance.
fn annotation(key: &str) -> bool {
    matches!(
        key,
        "description" | "title" | "default" | "examples" | "$schema"
    )
}

impl Parts {
    /// The parts of a compiled kind's schema, or `None` when it cannot be split.
    pub fn of(schema: &Schema) -> Option<Parts> {
        if !splittable(schema) {
            return None;
        }
        let mut nodes = Vec::new();
        add(&mut nodes, schema, schema, String::new(), &mut Vec::new());
        Some(Parts {
            nodes,
            schema: schema.clone(),
        })
    }

    fn validator(&self, at: usize) -> Option<&Validator<Compact>> {
        let part = &self.nodes[at];
        (part.validator.get_or_init(|| {
            // The part alone, with the root's definitions its `$ref`s name.
            let mut schema = self.schema.pointer(&part.pointer)?.clone();
            if let (Some(map), Some(definitions)) =
                (schema.as_object_mut(), self.schema.get("definitions"))
            {
                map.insert("definitions".into(), definitions.clone());
            }
            crate::openapi::validator_for::<Compact>(&schema).ok()
        }))
        .as_ref()
    }

    /// The part of `key`'s value in a mapping of part `at`: `None` when no
    /// schema constrains it.
    fn child(&self, at: usize, key: &str) -> Option<usize> {
        let part = &self.nodes[at];
        (part.properties.iter())
            .find(|(k, _)| k == key)
            .map(|(_, child)| *child)
            .or(part.additional)
    }

    /// What to compare an object with: `twin` (valid) with the part of the
    /// schema at each of its nodes.
    pub fn twin(&self, twin: &Value) -> Twin {
        self.plan(0, twin)
    }

    fn plan(&self, at: usize, twin: &Value) -> Twin {
        let part = &self.nodes[at];
        match twin {
            Value::Object(map) if part.structural => Twin::Mapping(
                at,
                map.clone(),
                (map.iter())
                    .map(|(key, value)| match self.child(at, key) {
                        Some(child) => self.plan(child, value),
                        None => Twin::Free,
                    })
                    .collect(),
            ),
            Value::Array(items) if part.structural => {
                let plans = match part.items {
                    Some(child) => items.iter().map(|i| self.plan(child, i)).collect(),
                    None => items.iter().map(|_| Twin::Free).collect(),
                };
                Twin::List(at, items.clone(), plans)
            }
            other => Twin::Whole(at, other.clone()),
        }
    }

    /// Whether `value` is valid, judged by how it differs from `twin`; false
    /// also when it cannot tell (then only the full check can).
    pub fn valid_like(&self, value: &Value, twin: &Twin) -> bool {
        match twin {
            Twin::Free => true,
            Twin::Whole(at, twin) => same(value, twin) || self.whole(*at, value),
            Twin::Mapping(at, node, entries) => match value {
                // The twin's own node (both copies of one template's): valid.
                Value::Object(map) if map.is_shared_with(node) => true,
                Value::Object(map) if map.len() == entries.len() => {
                    for ((key, twin), (k, v)) in node.keys().zip(entries).zip(map.iter()) {
                        if !(Arc::ptr_eq(key, k) || same_key(key, k)) {
                            // Other keys: its validity is its part's to tell.
                            return self.whole(*at, value);
                        }
                        if !self.child_valid_like(v, twin) {
                            return false;
                        }
                    }
                    true
                }
                _ => self.whole(*at, value),
            },
            Twin::List(at, node, items) => match value {
                Value::Array(values) if values.is_shared_with(node) => true,
                Value::Array(values) if values.len() == items.len() => {
                    (items.iter().zip(values)).all(|(twin, v)| self.child_valid_like(v, twin))
                }
                _ => self.whole(*at, value),
            },
        }
    }

    /// [`Parts::valid_like`] of a member or item: most are leaves, decided
    /// here without a call.
    #[inline(always)]
    fn child_valid_like(&self, value: &Value, twin: &Twin) -> bool {
        match twin {
            Twin::Free => true,
            Twin::Whole(at, twin) => same(value, twin) || self.whole(*at, value),
            _ => self.valid_like(value, twin),
        }
    }

    /// `value` checked against part `at` alone.
    #[inline(never)]
    fn whole(&self, at: usize, value: &Value) -> bool {
        self.validator(at).is_some_and(|v| v.is_valid(value))
    }
}

/// An object checked in full, with the schema's part at each node.
pub enum Twin {
    /// A mapping under structural keywords (the part numbered): the twin's
    /// node (a copy sharing it is valid as it is; its keys in order), each
    /// value's plan.
    Mapping(usize, Map, Vec<Twin>),
    /// A list under structural keywords (the part numbered): the twin's
    /// node, each item's plan.
    List(usize, List, Vec<Twin>),
    /// A value checked whole, against the part numbered, unless equal to this.
    Whole(usize, Value),
    /// A value no schema constrains.
    Free,
}

/// Equal as JSON, numbers by how they are written (`1` is not `1.0`), a
/// mapping's keys in any order; texts shared by both are equal at once.
#[inline]
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Arc::ptr_eq(x, y) || same_key(x, y),
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        _ => a == b,
    }
}

/// Add the part of `schema` (at `pointer` in `root`) and the parts below it;
/// a `$ref` alone is the definition it names, walked once on each path
/// (a definition inside itself is checked whole).
fn add(
    nodes: &mut Vec<Part>,
    root: &Schema,
    schema: &Schema,
    pointer: String,
    expanding: &mut Vec<String>,
) -> usize {
    // A `$ref` alone is the definition it names: its part is the definition's.
    if let Some(map) = schema.as_object()
        && let Some(name) = map
            .get("$ref")
            .and_then(Schema::as_str)
            .and_then(definition)
        && map.keys().all(|k| k == "$ref" || annotation(k))
        && let Some(target) = root.get("definitions").and_then(|d| d.get(name))
        && !expanding.iter().any(|e| e == name)
    {
        expanding.push(name.to_string());
        let at = add(
            nodes,
            root,
            target,
            format!("/definitions/{name}"),
            expanding,
        );
        expanding.pop();
        return at;
    }
    let at = nodes.len();
    nodes.push(Part {
        pointer: pointer.clone(),
        properties: Vec::new(),
        additional: None,
        items: None,
        structural: false,
        validator: OnceLock::new(),
    });
    let Some(map) = schema.as_object() else {
        return at;
    };
    if map.contains_key("$ref") {
        // A `$ref` with keywords beside it, or inside its own definition.
        return at;
    }
    let mut properties = Vec::new();
    if let Some(Schema::Object(children)) = map.get("properties") {
        for (key, child) in children {
            let child_pointer = format!("{pointer}/properties/{}", crate::json::escaped(key));
            properties.push((
                key.clone(),
                add(nodes, root, child, child_pointer, expanding),
            ));
        }
    }
    // `additionalProperties` and `items` as one schema each have a part.
    let mut one = |keyword: &str| match map.get(keyword) {
        Some(child @ Schema::Object(_)) => Some(add(
            nodes,
            root,
            child,
            format!("{pointer}/{keyword}"),
            expanding,
        )),
        _ => None,
    };
    let additional = one("additionalProperties");
    let items = one("items");
    let array_items = matches!(map.get("items"), Some(i) if !i.is_object());
    let node = &mut nodes[at];
    node.properties = properties;
    node.additional = additional;
    node.items = items;
    node.structural = !array_items && map.keys().all(|k| structural(k));
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parts_and_validator(schema: &Schema) -> (Parts, Validator<Compact>) {
        (
            Parts::of(schema).expect("no $ref"),
            crate::openapi::validator_for::<Compact>(schema).unwrap(),
        )
    }

    fn schema() -> Schema {
        crate::openapi::to_json_schema(&json!({
            "type": "object",
            "definitions": {
                "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 4}},
                "tree": {"type": "object", "properties": {"up": {"$ref": "#/definitions/tree"}, "n": {"type": "integer"}}}
            },
            "required": ["name", "spec"],
            "properties": {
                "name": {"type": "string", "maxLength": 8, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "labels": {"$ref": "#/definitions/labels"},
                "spec": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer", "minimum": 0},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "ports": {"type": "array", "maxItems": 3, "items": {"type": "integer", "maximum": 9}},
                        "tags": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "either": {"x-kubernetes-int-or-string": true},
                        "nested": {"type": "object", "properties": {"x": {"type": "boolean"}}, "maxProperties": 1},
                        "tree": {"$ref": "#/definitions/tree"}
                    }
                }
            }
        }))
    }

    fn tree(v: Schema) -> Value {
        Value::from(v)
    }

    #[test]
    fn a_value_that_differs_is_checked_against_its_part() {
        let (parts, _) = parts_and_validator(&schema());
        let twin = tree(json!({"name": "a", "spec": {"replicas": 1, "ports": [1, 2]}}));
        let plan = parts.twin(&twin);
        let ok = tree(json!({"name": "bb", "spec": {"replicas": 3, "ports": [4, 5]}}));
        assert!(parts.valid_like(&ok, &plan));
        for bad in [
            json!({"name": "Bad", "spec": {"replicas": 3, "ports": [4, 5]}}),
            json!({"name": "b", "spec": {"replicas": -1, "ports": [4, 5]}}),
            json!({"name": "b", "spec": {"replicas": 1, "ports": [4, 10]}}),
            json!({"name": "b", "spec": {"replicas": 1, "ports": [4, 5, 6, 7]}}),
            json!({"name": "b", "spec": {"replicas": 1, "ports": [4, 5], "extra": 1}}),
            json!({"name": "b"}),
        ] {
            assert!(!parts.valid_like(&tree(bad.clone()), &plan), "{bad}");
        }
    }

    #[test]
    fn a_copy_of_the_twin_is_judged_as_the_full_check_judges_it() {
        // Copies share the twin's nodes, but for those on the path of a change.
        let (parts, full) = parts_and_validator(&schema());
        let twin = tree(json!({
            "name": "a",
            "labels": {"k": "v"},
            "spec": {"replicas": 1, "ports": [1, 2], "nested": {"x": true}}
        }));
        let plan = parts.twin(&twin);
        let changed = |pointer: &[&str], value: Schema| {
            let mut copy = twin.clone();
            let leaf = (pointer.iter()).fold(&mut copy, |at, key| match at {
                Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
                other => other.field_mut(key).unwrap(),
            });
            *leaf = tree(value);
            copy
        };
        let copies = [
            (twin.clone(), true),
            (changed(&["name"], json!("bb")), true),
            (changed(&["name"], json!("Bad")), false),
            (changed(&["labels", "k"], json!("toolong")), false),
            (changed(&["spec", "ports", "1"], json!(10)), false),
            (changed(&["spec", "ports", "1"], json!(3)), true),
            (changed(&["spec", "nested", "x"], json!("yes")), false),
            (changed(&["spec", "replicas"], json!(-1)), false),
        ];
        for (copy, valid) in copies {
            assert_eq!(full.is_valid(&copy), valid, "{copy}");
            assert_eq!(parts.valid_like(&copy, &plan), valid, "{copy}");
        }
    }

    #[test]
    fn a_schema_with_a_remote_ref_or_an_id_is_not_split() {
        assert!(Parts::of(&json!({"$ref": "other.json#/a"})).is_none());
        assert!(Parts::of(&json!({"$id": "x", "type": "object"})).is_none());
        assert!(Parts::of(&json!({"definitions": {"a": {}}, "$ref": "#/definitions/a"})).is_some());
    }

    /// A random instance near the schema's shape: sometimes valid, sometimes not.
    fn near() -> impl Strategy<Value = Schema> {
        let name = prop_oneof![
            4 => Just(json!("a")),
            4 => Just(json!("ab-1")),
            4 => Just(json!("x")),
            1 => Just(json!("Bad")),
            1 => Just(json!("toolongname")),
            1 => Just(json!(3))
        ];
        let label =
            prop_oneof![6 => Just(json!("v")), 1 => Just(json!("long-v")), 1 => Just(json!(1))];
        let int = prop_oneof![
            4 => Just(json!(0)),
            4 => Just(json!(5)),
            1 => Just(json!(-1)),
            1 => Just(json!(10)),
            1 => Just(json!(1.0)),
            1 => Just(json!("1"))
        ];
        let maybe = |v: BoxedStrategy<Schema>| proptest::option::weighted(0.9, v);
        (
            maybe(name.boxed()),
            proptest::collection::btree_map("[ab]", label, 0..3),
            maybe(int.clone().boxed()),
            maybe(prop_oneof![4 => Just(json!("a")), 1 => Just(json!("c"))].boxed()),
            maybe(
                proptest::collection::vec(int.clone(), 0..5)
                    .prop_map(Schema::from)
                    .boxed(),
            ),
            maybe(
                proptest::collection::vec(prop_oneof![Just(json!("t")), Just(json!("u"))], 0..3)
                    .prop_map(Schema::from)
                    .boxed(),
            ),
            maybe(prop_oneof![Just(json!({"k": 1})), Just(json!({"k": [1, {"z": null}]}))].boxed()),
            maybe(
                prop_oneof![3 => Just(json!(1)), 3 => Just(json!("s")), 1 => Just(json!(true))]
                    .boxed(),
            ),
            maybe(
                prop_oneof![
                    3 => Just(json!({})),
                    3 => Just(json!({"x": true})),
                    1 => Just(json!({"x": 1})),
                    1 => Just(json!({"x": true, "y": 1}))
                ]
                .boxed(),
            ),
            proptest::bool::weighted(0.1),
            maybe(
                prop_oneof![
                    3 => Just(json!({"n": 1})),
                    3 => Just(json!({"up": {"n": 2, "up": {"n": 3}}})),
                    1 => Just(json!({"up": {"n": "x"}})),
                    1 => Just(json!({"up": {"up": {"n": 1.5}}}))
                ]
                .boxed(),
            ),
        )
            .prop_map(
                |(name, labels, replicas, mode, ports, tags, free, either, nested, extra, tree)| {
                    let mut spec = serde_json::Map::new();
                    let mut put = |k: &str, v: Option<Schema>| {
                        if let Some(v) = v {
                            spec.insert(k.to_string(), v);
                        }
                    };
                    put("replicas", replicas);
                    put("mode", mode);
                    put("ports", ports);
                    put("tags", tags);
                    put("free", free);
                    put("either", either);
                    put("nested", nested);
                    put("tree", tree);
                    if extra {
                        spec.insert("unknown".into(), json!(1));
                    }
                    let mut o = serde_json::Map::new();
                    if let Some(name) = name {
                        o.insert("name".into(), name);
                    }
                    if !labels.is_empty() {
                        o.insert("labels".into(), json!(labels));
                    }
                    o.insert("spec".into(), Schema::Object(spec));
                    Schema::Object(o)
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 1000,
            max_global_rejects: 100_000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(17),
            ..ProptestConfig::default()
        })]
        /// Against any valid twin, an object is judged valid only when the
        /// full check finds it valid (and, near the twin's shape, it is).
        #[test]
        fn the_twin_never_vouches_for_an_invalid_object(twin in near(), value in near()) {
            static COMPILED: std::sync::LazyLock<(Parts, Validator<Compact>)> =
                std::sync::LazyLock::new(|| parts_and_validator(&schema()));
            let (parts, validator) = &*COMPILED;
            let (twin, value) = (tree(twin), tree(value));
            prop_assume!(validator.is_valid(&twin));
            let plan = parts.twin(&twin);
            let full = validator.is_valid(&value);
            let like = parts.valid_like(&value, &plan);
            prop_assert!(!like || full, "vouched for an invalid {value}");
            // Its own twin, or one that differs only in leaves, is vouched for.
            prop_assert!(parts.valid_like(&twin, &plan));
        }
    }
}
