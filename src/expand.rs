//! A tenant's Cluster + its stack's ClusterClass (as emitted) → the objects
//! Cluster API's topology controller creates for it: the KamajiControlPlane,
//! the KubevirtCluster, and per worker pool a MachineDeployment with its own
//! copies of the KubevirtMachineTemplate and KubeadmConfigTemplate.
//!
//! It follows cluster-api v1.14 (`exp/topology/desiredstate`,
//! `core/reconcilers/topology/cluster/patches`): variables defaulted from their
//! schemas, the `builtin` variables known offline, inline patches applied in
//! class order to the class templates (per item: selector, `enabledIf`, RFC
//! 6902 with `add` needing its parent), then copied into the objects with the
//! labels, annotations and names CAPI sets. Where CAPI appends five random
//! characters, the name ends in [`RANDOM`]. What depends on a live cluster
//! (UIDs, owner references, version holds during upgrades) is left out.
//! Only the patch subset of [`check_patches`] is expanded; a stack that uses
//! more is refused when it is loaded.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::gotmpl;
use crate::render::Document;
use crate::stack::Variable;
use crate::variables::apply_defaults;

/// What stands where CAPI writes five random characters (a valid name part;
/// CAPI's alphabet is consonants and digits, so no real name ends like this
/// except by chance).
pub const RANDOM: &str = "xxxxx";
const CLUSTER_NAME: &str = "cluster.x-k8s.io/cluster-name";
const OWNED: &str = "topology.cluster.x-k8s.io/owned";
const DEPLOYMENT_NAME: &str = "topology.cluster.x-k8s.io/deployment-name";
const CLONED_NAME: &str = "cluster.x-k8s.io/cloned-from-name";
const CLONED_KIND: &str = "cluster.x-k8s.io/cloned-from-groupkind";

/// Check that every patch of a ClusterClass is inside the subset kmetal
/// expands exactly. Each problem names the patch.
pub fn check_patches(class: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let patches = class.pointer("/spec/patches").and_then(Value::as_array);
    for patch in patches.into_iter().flatten() {
        let name = patch.get("name").and_then(Value::as_str).unwrap_or("?");
        if patch.get("external").is_some() {
            problems.push(format!(
                "patch {name}: external patches cannot be expanded offline"
            ));
        }
        if let Some(t) = patch.get("enabledIf").and_then(Value::as_str)
            && let Err(e) = gotmpl::parse(t)
        {
            problems.push(format!("patch {name}: enabledIf: {e}"));
        }
        let definitions = patch.get("definitions").and_then(Value::as_array);
        for op in definitions
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("jsonPatches").and_then(Value::as_array))
            .flatten()
        {
            let verb = op.get("op").and_then(Value::as_str).unwrap_or_default();
            if !matches!(verb, "add" | "replace" | "remove") {
                problems.push(format!(
                    "patch {name}: op {verb:?} is not add, replace or remove"
                ));
            }
            if let Some(t) = op.pointer("/valueFrom/template").and_then(Value::as_str)
                && let Err(e) = gotmpl::parse(t)
            {
                problems.push(format!("patch {name}: valueFrom.template: {e}"));
            }
        }
    }
    problems
}

/// One patch target: a class template, and what it is for.
struct Item {
    template: Value,
    /// `controlPlane`, `infrastructureCluster`, or the worker class.
    role: Role,
    /// Variables of this item: the Cluster's, an MD's overrides, builtins.
    variables: Value,
}

#[derive(Clone, PartialEq)]
enum Role {
    ControlPlane,
    InfrastructureCluster,
    Worker(String),
}

/// The objects CAPI creates for `cluster`, or why it cannot: a variable path
/// that does not exist, a patch that does not apply, a template that renders
/// what YAML 1.1 and 1.2 read differently.
pub fn expand(
    cluster: &Value,
    class: &Value,
    templates: &[Document],
    variables: &[Variable],
) -> Result<Vec<Value>, String> {
    let name = str_at(cluster, "/metadata/name")?;
    let namespace = str_at(cluster, "/metadata/namespace")?;
    let topology = cluster
        .pointer("/spec/topology")
        .ok_or("the Cluster has no spec.topology")?;
    let version = str_at(topology, "/version")?;
    let template = |pointer: &str| -> Result<(Value, String), String> {
        let reference = class
            .pointer(pointer)
            .ok_or_else(|| format!("the ClusterClass has no {pointer}"))?;
        let (kind, ref_name) = (str_at(reference, "/kind")?, str_at(reference, "/name")?);
        let found = templates
            .iter()
            .find(|d| d.value["kind"] == kind && d.value["metadata"]["name"] == ref_name)
            .ok_or_else(|| format!("no template {kind} {ref_name} in the class"))?;
        Ok((found.value.clone(), ref_name.to_string()))
    };
    let mut globals = defaulted(topology.get("variables"), variables);
    let class_ref = json!({
        "name": class["metadata"]["name"],
        "namespace": class["metadata"]["namespace"],
    });
    let builtin_cluster = json!({
        "name": name,
        "namespace": namespace,
        "topology": {"version": version, "classRef": class_ref},
    });
    let cp_name = naming(class, "/spec/controlPlane/naming/template", name, None)?;
    let infra_name = naming(class, "/spec/infrastructure/naming/template", name, None)?;
    let mut cp_builtin = json!({"name": cp_name, "version": version});
    if let Some(replicas) = topology.pointer("/controlPlane/replicas") {
        cp_builtin["replicas"] = replicas.clone();
    }
    globals.insert("builtin".into(), json!({"cluster": builtin_cluster}));
    let with_builtin = |extra: (&str, Value)| {
        let mut v = globals.clone();
        v["builtin"][extra.0] = extra.1;
        Value::Object(v)
    };
    let (cp_template, cp_template_name) = template("/spec/controlPlane/templateRef")?;
    let (infra_template, infra_template_name) = template("/spec/infrastructure/templateRef")?;
    let mut items = vec![
        Item {
            template: infra_template,
            role: Role::InfrastructureCluster,
            variables: Value::Object(globals.clone()),
        },
        Item {
            template: cp_template,
            role: Role::ControlPlane,
            variables: with_builtin(("controlPlane", cp_builtin)),
        },
    ];
    let workers = topology
        .pointer("/workers/machineDeployments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let md_classes = class
        .pointer("/spec/workers/machineDeployments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut mds = Vec::new();
    for md in &workers {
        let class_name = str_at(md, "/class")?;
        let topology_name = str_at(md, "/name")?;
        let index = md_classes
            .iter()
            .position(|c| c["class"] == class_name)
            .ok_or_else(|| format!("the ClusterClass has no worker class {class_name}"))?;
        let md_name = naming(
            class,
            &format!("/spec/workers/machineDeployments/{index}/naming/template"),
            name,
            Some(topology_name),
        )?;
        let template_name = prefixed(&format!("{name}-{topology_name}-"));
        let mut md_variables = globals.clone();
        let overrides = md.pointer("/variables/overrides").and_then(Value::as_array);
        for o in overrides.into_iter().flatten() {
            if let (Some(n), Some(v)) = (o.get("name").and_then(Value::as_str), o.get("value")) {
                md_variables.insert(n.to_string(), v.clone());
            }
        }
        let mut md_builtin = json!({
            "version": version,
            "class": class_name,
            "name": md_name,
            "topologyName": topology_name,
            "bootstrap": {"configRef": {"name": template_name}},
            "infrastructureRef": {"name": template_name},
        });
        if let Some(replicas) = md.get("replicas") {
            md_builtin["replicas"] = replicas.clone();
        }
        if let Some(builtin) = md_variables
            .get_mut("builtin")
            .and_then(Value::as_object_mut)
        {
            builtin.insert("machineDeployment".into(), md_builtin);
        }
        let md_variables = Value::Object(md_variables);
        let base = format!("/spec/workers/machineDeployments/{index}");
        let (bootstrap, bootstrap_name) = template(&format!("{base}/bootstrap/templateRef"))?;
        let (infra, infra_md_name) = template(&format!("{base}/infrastructure/templateRef"))?;
        let first = items.len();
        for t in [bootstrap, infra] {
            items.push(Item {
                template: t,
                role: Role::Worker(class_name.to_string()),
                variables: md_variables.clone(),
            });
        }
        mds.push((
            md.clone(),
            md_name,
            template_name,
            first,
            bootstrap_name,
            infra_md_name,
        ));
    }
    apply_patches(class, &mut items)?;
    let mut objects = Vec::new();
    let base_labels = json!({CLUSTER_NAME: name, OWNED: ""});
    let infra = &items[0].template;
    objects.push(object(
        infra,
        &infra_name,
        namespace,
        &base_labels,
        &infra_template_name,
        json!({}),
    )?);
    let cp = &items[1].template;
    let mut preserved = json!({"version": version});
    if let Some(replicas) = topology.pointer("/controlPlane/replicas") {
        preserved["replicas"] = replicas.clone();
    }
    objects.push(object(
        cp,
        &cp_name,
        namespace,
        &base_labels,
        &cp_template_name,
        preserved,
    )?);
    for (md, md_name, template_name, first, bootstrap_name, infra_md_name) in mds {
        let topology_name = str_at(&md, "/name")?;
        let mut labels = base_labels.clone();
        labels[DEPLOYMENT_NAME] = json!(topology_name);
        let copy = |item: &Item, from: &str| {
            template_copy(&item.template, &template_name, namespace, &labels, from)
        };
        let bootstrap = copy(&items[first], &bootstrap_name)?;
        let infra = copy(&items[first + 1], &infra_md_name)?;
        let group = |v: &Value| {
            let api = v["apiVersion"].as_str().unwrap_or_default();
            api.rsplit_once('/').map_or(api, |(g, _)| g).to_string()
        };
        let mut spec = json!({
            "clusterName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "clusterName": name,
                    "version": version,
                    "bootstrap": {"configRef": {
                        "apiGroup": group(&bootstrap), "kind": bootstrap["kind"], "name": template_name,
                    }},
                    "infrastructureRef": {
                        "apiGroup": group(&infra), "kind": infra["kind"], "name": template_name,
                    },
                },
            },
            // The MachineDeployment webhook's default.
            "rollout": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
        });
        if let Some(replicas) = md.get("replicas") {
            spec["replicas"] = replicas.clone();
        }
        objects.push(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2",
            "kind": "MachineDeployment",
            "metadata": {"name": md_name, "namespace": namespace, "labels": labels},
            "spec": spec,
        }));
        objects.push(bootstrap);
        objects.push(infra);
        if let Some(check) = health_check(class, &md, name, namespace, &md_name, topology_name) {
            objects.push(check);
        }
    }
    Ok(objects)
}

/// The MachineHealthCheck Cluster API creates for a MachineDeployment whose
/// class (or topology) defines `healthCheck`, unless the topology sets
/// `healthCheck.enabled: false`: the MachineDeployment's name, the checks and
/// remediation of the topology over the class's, and what the MHC webhook
/// defaults (the cluster-name label, `nodeStartupTimeoutSeconds: 600`).
fn health_check(
    class: &Value,
    md: &Value,
    cluster: &str,
    namespace: &str,
    md_name: &str,
    topology_name: &str,
) -> Option<Value> {
    let md_class = md.get("class").and_then(Value::as_str)?;
    let classes = class
        .pointer("/spec/workers/machineDeployments")
        .and_then(Value::as_array)?;
    let from_class = classes
        .iter()
        .find(|c| c.get("class").and_then(Value::as_str) == Some(md_class))
        .and_then(|c| c.get("healthCheck"));
    let from_topology = md.get("healthCheck");
    if from_topology.and_then(|h| h.get("enabled")) == Some(&Value::Bool(false)) {
        return None;
    }
    let part = |key: &str| {
        (from_topology.and_then(|h| h.get(key)))
            .or_else(|| from_class.and_then(|h| h.get(key)))
            .cloned()
    };
    let (checks, remediation) = (part("checks"), part("remediation"));
    if checks.is_none() && remediation.is_none() {
        return None;
    }
    let mut checks = checks.unwrap_or_else(|| json!({}));
    if checks.get("nodeStartupTimeoutSeconds").is_none() {
        checks["nodeStartupTimeoutSeconds"] = json!(600);
    }
    let mut spec = json!({
        "clusterName": cluster,
        "selector": {"matchLabels": {OWNED: "", DEPLOYMENT_NAME: topology_name}},
        "checks": checks,
    });
    if let Some(remediation) = remediation {
        spec["remediation"] = remediation;
    }
    Some(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "MachineHealthCheck",
        "metadata": {
            "name": md_name,
            "namespace": namespace,
            "labels": {OWNED: "", CLUSTER_NAME: cluster},
        },
        "spec": spec,
    }))
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Result<&'v str, String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{pointer} is missing"))
}

/// The Cluster's variables, with top-level defaults for those it leaves out
/// and nested defaults inside those it sets (CAPI's defaulting webhook).
fn defaulted(set: Option<&Value>, definitions: &[Variable]) -> Map<String, Value> {
    let mut values = Map::new();
    for v in set.and_then(Value::as_array).into_iter().flatten() {
        if let (Some(name), Some(value)) = (v.get("name").and_then(Value::as_str), v.get("value")) {
            values.insert(name.to_string(), value.clone());
        }
    }
    for definition in definitions {
        match values.get_mut(&definition.name) {
            Some(value) => apply_defaults(&definition.schema, value),
            None => {
                if let Some(default) = definition.schema.get("default") {
                    let mut value = default.clone();
                    apply_defaults(&definition.schema, &mut value);
                    values.insert(definition.name.clone(), value);
                }
            }
        }
    }
    values
}

/// A name from a naming template (`{{ .cluster.name }}`, `{{ .random }}`,
/// `{{ .machineDeployment.topologyName }}`), CAPI's default when there is none.
fn naming(class: &Value, pointer: &str, cluster: &str, md: Option<&str>) -> Result<String, String> {
    let default = match md {
        Some(_) => "{{ .cluster.name }}-{{ .machineDeployment.topologyName }}-{{ .random }}",
        None => "{{ .cluster.name }}-{{ .random }}",
    };
    let template = class
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or(default);
    let data = json!({
        "cluster": {"name": cluster},
        "random": RANDOM,
        "machineDeployment": {"topologyName": md.unwrap_or_default()},
    });
    let name = gotmpl::parse(template)
        .and_then(|t| t.render(&data))
        .map_err(|e| format!("naming template {template:?}: {e}"))?;
    // Longer than a label: cut to 58 and five random characters appended.
    Ok(if name.len() > 63 {
        format!("{}{RANDOM}", &name[..58])
    } else {
        name
    })
}

/// CAPI's prefix names: the base cut to 58 characters, then five random ones.
fn prefixed(base: &str) -> String {
    let cut = base.get(..58).unwrap_or(base);
    format!("{cut}{RANDOM}")
}

fn apply_patches(class: &Value, items: &mut [Item]) -> Result<(), String> {
    let patches = class.pointer("/spec/patches").and_then(Value::as_array);
    for patch in patches.into_iter().flatten() {
        let patch_name = patch.get("name").and_then(Value::as_str).unwrap_or("?");
        let enabled_if = match patch.get("enabledIf").and_then(Value::as_str) {
            Some(t) => Some(gotmpl::parse(t).map_err(|e| format!("patch {patch_name}: {e}"))?),
            None => None,
        };
        for item in items.iter_mut() {
            let definitions = patch.get("definitions").and_then(Value::as_array);
            let matching: Vec<&Value> = definitions
                .into_iter()
                .flatten()
                .filter(|d| matches(d.get("selector"), item))
                .collect();
            if matching.is_empty() {
                continue;
            }
            if let Some(t) = &enabled_if {
                let rendered = t
                    .render(&item.variables)
                    .map_err(|e| format!("patch {patch_name}: enabledIf: {e}"))?;
                if yaml11_scalar(&rendered)? != Value::Bool(true) {
                    continue;
                }
            }
            let mut operations = Vec::new();
            for op in matching
                .iter()
                .filter_map(|d| d.get("jsonPatches").and_then(Value::as_array))
                .flatten()
            {
                let mut operation = json!({"op": op["op"], "path": op["path"]});
                if op["op"] != "remove" {
                    operation["value"] = value_of(op, &item.variables)
                        .map_err(|e| format!("patch {patch_name}: {e}"))?;
                }
                operations.push(operation);
            }
            let operations: json_patch::Patch = serde_json::from_value(Value::Array(operations))
                .map_err(|e| format!("patch {patch_name}: {e}"))?;
            // After a patch only spec, labels and annotations are kept.
            let mut patched = item.template.clone();
            json_patch::patch(&mut patched, &operations).map_err(|e| {
                format!(
                    "patch {patch_name} does not apply to {}: {e}",
                    item.template["kind"]
                )
            })?;
            item.template["spec"] = patched["spec"].take();
            for key in ["labels", "annotations"] {
                if let Some(v) = patched["metadata"].get(key) {
                    item.template["metadata"][key] = v.clone();
                }
            }
        }
    }
    Ok(())
}

fn matches(selector: Option<&Value>, item: &Item) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    if selector["apiVersion"] != item.template["apiVersion"]
        || selector["kind"] != item.template["kind"]
    {
        return false;
    }
    let resources = &selector["matchResources"];
    match &item.role {
        Role::ControlPlane => resources["controlPlane"] == true,
        Role::InfrastructureCluster => resources["infrastructureCluster"] == true,
        Role::Worker(class) => resources
            .pointer("/machineDeploymentClass/names")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|pattern| name_matches(pattern, class)),
    }
}

/// `*`, `prefix*`, `*suffix` or an exact name.
fn name_matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return name.starts_with(prefix);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return name.ends_with(suffix);
    }
    pattern == name
}

/// `value`, the variable at a dotted path, or a rendered template (read as YAML).
fn value_of(op: &Value, variables: &Value) -> Result<Value, String> {
    if let Some(value) = op.get("value") {
        return Ok(value.clone());
    }
    if let Some(path) = op.pointer("/valueFrom/variable").and_then(Value::as_str) {
        let mut at = variables;
        for segment in path.split('.') {
            at = at
                .get(segment)
                .ok_or_else(|| format!("variable {path:?} does not exist"))?;
        }
        return Ok(at.clone());
    }
    if let Some(template) = op.pointer("/valueFrom/template").and_then(Value::as_str) {
        let rendered = gotmpl::parse(template)?.render(variables)?;
        return yaml_value(&rendered);
    }
    Err("a patch operation needs value or valueFrom".into())
}

/// A rendered template as CAPI reads it (YAML 1.1). A scalar that YAML 1.1
/// and kmetal's YAML 1.2 read differently is refused, never guessed.
fn yaml_value(text: &str) -> Result<Value, String> {
    let value = crate::yaml::parse_value(text).map_err(|e| format!("rendered {text:?}: {e:?}"))?;
    check_yaml11(&value)?;
    Ok(value)
}

fn check_yaml11(value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) if yaml11_ambiguous(s) => Err(format!(
            "the template renders {s:?}, which YAML 1.1 (Cluster API's reader) does not read as text"
        )),
        Value::Array(items) => items.iter().try_for_each(check_yaml11),
        Value::Object(map) => map.values().try_for_each(check_yaml11),
        _ => Ok(()),
    }
}

/// Plain scalars YAML 1.1 reads as a boolean, null or number.
fn yaml11_ambiguous(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let words = [
        "y", "yes", "n", "no", "on", "off", "true", "false", "null", "~", "",
    ];
    words.contains(&lower.as_str())
        || s.replace('_', "").parse::<f64>().is_ok()
        || (s.starts_with('0') && s.len() > 1 && s.chars().all(|c| c.is_ascii_digit()))
}

/// An `enabledIf` result: `true` only as YAML 1.1 reads it.
fn yaml11_scalar(text: &str) -> Result<Value, String> {
    let t = text.trim();
    Ok(match t.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" => Value::Bool(true),
        "" => Value::Null,
        _ => Value::String(t.to_string()),
    })
}

/// The object a template becomes: kind without `Template`, the template's
/// `spec.template` as its metadata and spec, CAPI's labels and annotations.
fn object(
    template: &Value,
    name: &str,
    namespace: &str,
    labels: &Value,
    template_name: &str,
    preserved: Value,
) -> Result<Value, String> {
    let kind = template["kind"].as_str().unwrap_or_default();
    let object_kind = kind
        .strip_suffix("Template")
        .ok_or_else(|| format!("{kind} is not a template kind"))?;
    let inner = &template["spec"]["template"];
    let mut metadata = json!({"name": name, "namespace": namespace, "labels": labels});
    merge(&mut metadata["labels"], &inner["metadata"]["labels"]);
    metadata["annotations"] = cloned_from(template, template_name);
    merge(
        &mut metadata["annotations"],
        &inner["metadata"]["annotations"],
    );
    let mut spec = inner.get("spec").cloned().unwrap_or_else(|| json!({}));
    merge(&mut spec, &preserved);
    Ok(json!({
        "apiVersion": template["apiVersion"],
        "kind": object_kind,
        "metadata": metadata,
        "spec": spec,
    }))
}

/// A per-MachineDeployment copy of a class template.
fn template_copy(
    template: &Value,
    name: &str,
    namespace: &str,
    labels: &Value,
    from: &str,
) -> Result<Value, String> {
    let mut copy = template.clone();
    let mut metadata = json!({"name": name, "namespace": namespace, "labels": labels});
    merge(&mut metadata["labels"], &template["metadata"]["labels"]);
    metadata["annotations"] = cloned_from(template, from);
    copy["metadata"] = metadata;
    Ok(copy)
}

fn cloned_from(template: &Value, name: &str) -> Value {
    let kind = template["kind"].as_str().unwrap_or_default();
    let api = template["apiVersion"].as_str().unwrap_or_default();
    let group = api.rsplit_once('/').map_or(api, |(g, _)| g);
    json!({CLONED_NAME: name, CLONED_KIND: format!("{kind}.{group}")})
}

/// `from`'s keys over `into`'s (objects only).
fn merge(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// The expanded objects of one tenant as documents, for verifying and printing.
pub fn documents(
    tenant: &str,
    source: &str,
    class_file: &str,
    objects: Vec<Value>,
) -> Vec<Document> {
    let mut by_path = BTreeMap::new();
    for value in objects {
        let kind = value["kind"].as_str().unwrap_or_default();
        let name = value["metadata"]["name"].as_str().unwrap_or_default();
        by_path.insert(crate::layout::expanded_file(tenant, kind, name), value);
    }
    by_path
        .into_iter()
        .map(|(path, value)| Document {
            path,
            source: source.to_string(),
            template: class_file.to_string(),
            value,
        })
        .collect()
}

/// `kmetal expand`: the expanded objects of `tenants` (every tenant when
/// empty) as YAML documents, each tenant under a header that says what is
/// not exact.
pub fn text(
    expanded: &[Document],
    tenants: &[String],
) -> Result<String, crate::diagnostic::Diagnostics> {
    let tenant_of =
        |d: &Document| (crate::layout::tenant_of_expanded(&d.path).unwrap_or_default()).to_string();
    let known: std::collections::BTreeSet<String> = expanded.iter().map(tenant_of).collect();
    let mut diagnostics = crate::diagnostic::Diagnostics::new();
    for t in tenants.iter().filter(|t| !known.contains(*t)) {
        let valid: Vec<&str> = known.iter().map(String::as_str).collect();
        diagnostics.push(
            crate::diagnostic::Diagnostic::error(
                crate::diagnostic::codes::EXPAND_FAILED,
                format!("no tenant {t} with a ClusterClass to expand"),
            )
            .help(crate::diagnostic::did_you_mean(t, "tenant", &valid)),
        );
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    let mut out = String::new();
    let mut current = None;
    for d in expanded {
        let tenant = tenant_of(d);
        if !tenants.is_empty() && !tenants.contains(&tenant) {
            continue;
        }
        if current.as_ref() != Some(&tenant) {
            out += &format!(
                "# What Cluster API creates for tenant {tenant} ({}), by kmetal expand.\n\
                 # Names ending in {RANDOM} stand for Cluster API's five random characters;\n\
                 # UIDs, owner references and status come from the cluster.\n",
                d.source
            );
            current = Some(tenant);
        }
        out += "---\n";
        out += &crate::yaml::emit(&d.value);
    }
    Ok(out)
}
