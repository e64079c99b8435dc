//! Rendered Clusters + their stack's ClusterClass variables → what CAPI's
//! webhook would reject: unknown variables, missing required ones, values
//! that break a variable's schema or CEL rules (after CAPI's defaulting).
//!
//! CAPI skips this check when the ClusterClass is not reconciled yet, which is
//! exactly when Flux applies both together; kmetal does it before anything is
//! applied. A problem points at the tenant value that produced it when that
//! value can be found in the tenant file.

use crate::json::Field;
use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value as Json;

use crate::value::{Compact, Map, Value};

use crate::cel::CelRules;
use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::render::Document;
use crate::resolve::ResolvedTenant;
use crate::stack::{Stacks, Variable};
use crate::yaml;

/// A variable's compiled checks.
struct Compiled<'a> {
    variable: &'a Variable,
    validator: jsonschema::Validator<Compact>,
    rules: CelRules,
    /// Values (defaults applied) found valid: a fleet's tenants give most
    /// variables one of a few values (a machine size, the site's bootstrap
    /// address), and the same value has the same answer.
    valid: std::sync::RwLock<Vec<Value>>,
}

/// How many valid values of a variable are remembered.
const REMEMBERED: usize = 8;

impl Compiled<'_> {
    fn known_valid(&self, value: &Value) -> bool {
        (self.valid.read()).is_ok_and(|known| known.iter().any(|k| k == value))
    }

    fn found_valid(&self, value: &Value) {
        if let Ok(mut known) = self.valid.write()
            && known.len() < REMEMBERED
            && !known.contains(value)
        {
            known.push(value.clone());
        }
    }
}

/// Check the Cluster of every tenant whose stack declares variables.
pub fn check(
    documents: &[Document],
    tenants: &[ResolvedTenant],
    stacks: &Stacks,
    source: impl Fn(&str) -> Option<Arc<str>> + Sync,
) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    let mut compiled: BTreeMap<&str, Vec<Compiled<'_>>> = BTreeMap::new();
    for (name, stack) in stacks
        .tenant
        .iter()
        .filter(|(_, s)| !s.variables.is_empty())
    {
        let mut list = Vec::new();
        for v in &stack.variables {
            // Both compiled when the stack was loaded, and refused there if
            // they did not: a failure here is kmetal's own.
            match (
                crate::openapi::validator_for(&v.schema),
                CelRules::compile(&v.schema),
            ) {
                (Ok(validator), Ok(rules)) => list.push(Compiled {
                    variable: v,
                    validator,
                    rules,
                    valid: std::sync::RwLock::default(),
                }),
                _ => diagnostics.push(crate::diagnostic::internal(
                    SourceLocation::file(format!("stacks/{name}/stack.yaml")),
                    &format!("the schema of variable {} no longer compiles", v.name),
                )),
            }
        }
        compiled.insert(name, list);
    }
    let stack_of: BTreeMap<&str, &str> = tenants
        .iter()
        .map(|t| (t.name.as_str(), t.stack.as_str()))
        .collect();
    // One Cluster per tenant: checked in parallel, reported in document order.
    let clusters: Vec<&Document> = (documents.iter())
        .filter(|d| d.value.item("kind") == "Cluster")
        .collect();
    let found: Vec<Vec<Diagnostic>> = clusters
        .par_iter()
        .map(|document| {
            let mut found = Vec::new();
            let tenant = crate::layout::tenant_of(&document.path);
            let Some(variables) = tenant
                .and_then(|t| stack_of.get(t))
                .and_then(|stack| compiled.get(stack))
            else {
                return found;
            };
            let text = source(&document.source);
            let mut report = |code, message: String, value: Option<&Value>| {
                let at = locate(&document.source, text.as_deref(), value);
                found.push(
                    Diagnostic::error(code, format!("{message} (in {})", document.path))
                        .at(at)
                        .related(SourceLocation::file(&document.template), "rendered by this template")
                        .help("CAPI's webhook would reject this Cluster: fix the tenant value, or the stack's template or variables"),
                );
            };
            check_cluster(&document.value, variables, &mut report);
            found
        })
        .collect();
    for d in found.into_iter().flatten() {
        diagnostics.push(d);
    }
    diagnostics
}

/// Where a wrong value came from: the one place the tenant file has it, else the file.
fn locate(file: &str, text: Option<&str>, value: Option<&Value>) -> SourceLocation {
    let scalar = match value {
        Some(Value::String(s)) => Some(s.to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    };
    let found = match (text, scalar) {
        (Some(text), Some(scalar)) => yaml::find_scalar(file, text, &scalar),
        _ => Vec::new(),
    };
    match found.as_slice() {
        [one] => one.clone(),
        _ => SourceLocation::file(file),
    }
}

fn check_cluster(
    cluster: &Value,
    variables: &[Compiled<'_>],
    report: &mut impl FnMut(&'static str, String, Option<&Value>),
) {
    let empty = Vec::new();
    let topology = &cluster.item("spec").item("topology");
    let given = topology.item("variables").as_array().unwrap_or(&empty);
    check_list(given, variables, true, "topology.variables", report);
    for md in topology
        .item("workers")
        .item("machineDeployments")
        .as_array()
        .unwrap_or(&empty)
    {
        let overrides = md
            .item("variables")
            .item("overrides")
            .as_array()
            .unwrap_or(&empty);
        let place = format!(
            "the overrides of machineDeployment {}",
            md.item("name").as_str().unwrap_or("?")
        );
        check_list(overrides, variables, false, &place, report);
    }
}

fn check_list(
    given: &[Value],
    variables: &[Compiled<'_>],
    top_level: bool,
    place: &str,
    report: &mut impl FnMut(&'static str, String, Option<&Value>),
) {
    for entry in given {
        let name = entry.item("name").as_str().unwrap_or_default();
        let Some(compiled) = variables.iter().find(|c| c.variable.name == name) else {
            let known: Vec<&str> = variables.iter().map(|c| c.variable.name.as_str()).collect();
            let help = crate::diagnostic::did_you_mean(name, "variable", &known);
            report(
                codes::VARIABLE_UNKNOWN,
                format!(
                    "variable {name:?} in {place} is not a variable of the ClusterClass ({help})"
                ),
                None,
            );
            continue;
        };
        let mut value = entry.item("value").clone();
        apply_defaults(&compiled.variable.schema, &mut value);
        if compiled.known_valid(&value) {
            continue;
        }
        let mut valid = true;
        for error in compiled.validator.iter_errors(&value) {
            valid = false;
            let at = value.at(&error.instance_path().to_string()).cloned();
            let message = format!(
                "variable {name} at {}: {error}",
                display_path(&error.instance_path().to_string())
            );
            report(codes::VARIABLE_INVALID, message, at.as_ref());
        }
        for violation in compiled.rules.evaluate(&value) {
            valid = false;
            let at = value.at(&violation.path).cloned();
            let message = format!(
                "variable {name} at {}: {}",
                display_path(&violation.path),
                violation.message
            );
            report(codes::VARIABLE_INVALID, message, at.as_ref());
        }
        if valid {
            compiled.found_valid(&value);
        }
    }
    if top_level {
        for compiled in variables.iter().filter(|c| c.variable.required) {
            let present = given
                .iter()
                .any(|e| e.item("name") == compiled.variable.name.as_str());
            if !present && compiled.variable.schema.field("default").is_none() {
                report(
                    codes::VARIABLE_MISSING,
                    format!(
                        "required variable {} is missing from {place}",
                        compiled.variable.name
                    ),
                    None,
                );
            }
        }
    }
}

fn display_path(pointer: &str) -> String {
    if pointer.is_empty() {
        "its root".into()
    } else {
        pointer.to_string()
    }
}

/// The value of a Cluster's topology variable `name`, if it sets one.
pub fn cluster_variable<'v>(cluster: &'v Value, name: &str) -> Option<&'v Value> {
    named_value(cluster.at("/spec/topology/variables")?, name)
}

/// The `value` of entry `name` in a list of `{name, value}` (a topology's
/// variables, or a worker pool's overrides).
pub fn named_value<'v>(list: &'v Value, name: &str) -> Option<&'v Value> {
    list.as_array()?
        .iter()
        .find(|v| v.item("name") == name)?
        .field("value")
}

/// Fill in `default`s of missing object properties, as the API server does.
pub fn apply_defaults(schema: &Json, value: &mut Value) {
    let (Some(properties), Value::Object(map)) =
        (schema.field("properties").and_then(Json::as_object), value)
    else {
        return;
    };
    for (key, property) in properties {
        apply_default(map, key, property);
    }
}

/// The field `key` of `map` as the API server defaults it by `schema`: the
/// defaults inside a value that is set, or the schema's default (with the
/// defaults inside it) when none is.
pub fn apply_default(map: &mut Map, key: &str, schema: &Json) {
    match map.get_mut(key) {
        Some(value) => apply_defaults(schema, value),
        None => {
            if let Some(default) = schema.field("default") {
                let mut value = Value::from(default);
                apply_defaults(schema, &mut value);
                map.insert(key.to_string(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compiled(variable: &Variable) -> Compiled<'_> {
        Compiled {
            variable,
            validator: crate::openapi::validator_for(&variable.schema).expect("a valid schema"),
            rules: CelRules::compile(&variable.schema).expect("valid rules"),
            valid: std::sync::RwLock::default(),
        }
    }

    /// The messages `check_list` gives for a Cluster whose `size` is `value`.
    fn problems(value: &str, variables: &[Compiled<'_>]) -> Vec<String> {
        let given = [crate::tree!({"name": "size", "value": value})];
        let mut found = Vec::new();
        check_list(&given, variables, true, "the Cluster", &mut |_, m, _| {
            found.push(m)
        });
        found
    }

    fn remembered(compiled: &Compiled<'_>) -> Vec<String> {
        let known = compiled.valid.read().expect("not poisoned");
        known
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn only_values_found_valid_are_remembered_and_each_is_checked_again_otherwise() {
        let variable = Variable {
            name: "size".into(),
            required: true,
            schema: json!({
                "type": "string",
                "maxLength": 5,
                "x-kubernetes-validations": [{"rule": "self != 'bad'", "message": "not bad"}]
            }),
        };
        let variables = [compiled(&variable)];
        // The same valid value twice: no problem, remembered once.
        assert!(problems("small", &variables).is_empty());
        assert!(problems("small", &variables).is_empty());
        assert_eq!(remembered(&variables[0]), ["small"]);
        // A value the schema refuses, and one only the rule refuses, are
        // reported every time and never remembered.
        for bad in ["toolong", "bad"] {
            for _ in 0..2 {
                let found = problems(bad, &variables);
                assert_eq!(found.len(), 1, "{bad}: {found:?}");
                assert!(found[0].starts_with("variable size at "), "{found:?}");
            }
        }
        assert_eq!(remembered(&variables[0]), ["small"]);
        // At most REMEMBERED values are kept; later valid ones are still valid.
        for value in ["a", "b", "c", "d", "e", "f", "g", "h", "i"] {
            assert!(problems(value, &variables).is_empty(), "{value}");
        }
        assert_eq!(remembered(&variables[0]).len(), REMEMBERED);
        assert!(problems("i", &variables).is_empty());
        assert_eq!(problems("bad", &variables).len(), 1);
    }
}
