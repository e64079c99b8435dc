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
use std::rc::Rc;

use std::sync::Arc;

use crate::key;
use crate::value::{Map, Str, Value};

use crate::gotmpl::{self, Scope};
use crate::render::Document;
use crate::stack::Variable;
use crate::variables::apply_default;

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
    let patches = class.at("/spec/patches").and_then(Value::as_array);
    for patch in patches.into_iter().flatten() {
        let name = patch.field("name").and_then(Value::as_str).unwrap_or("?");
        if patch.field("external").is_some() {
            problems.push(format!(
                "patch {name}: external patches cannot be expanded offline"
            ));
        }
        if let Some(t) = patch.field("enabledIf").and_then(Value::as_str)
            && let Err(e) = gotmpl::parse(t)
        {
            problems.push(format!("patch {name}: enabledIf: {e}"));
        }
        let definitions = patch.field("definitions").and_then(Value::as_array);
        for op in definitions
            .into_iter()
            .flatten()
            .filter_map(|d| d.field("jsonPatches").and_then(Value::as_array))
            .flatten()
        {
            let verb = op.field("op").and_then(Value::as_str).unwrap_or_default();
            if !matches!(verb, "add" | "replace" | "remove") {
                problems.push(format!(
                    "patch {name}: op {verb:?} is not add, replace or remove"
                ));
            }
            if let Some(t) = op.at("/valueFrom/template").and_then(Value::as_str)
                && let Err(e) = gotmpl::parse(t)
            {
                problems.push(format!("patch {name}: valueFrom.template: {e}"));
            }
        }
    }
    problems
}

/// A stack's ClusterClass, prepared once for all its tenants: its templates by
/// kind and name, its naming templates and its patches parsed.
pub struct Class<'a> {
    class: &'a Value,
    /// The class file (where a failed expansion points).
    pub source: &'a str,
    variables: &'a [Variable],
    /// The control plane's and the infrastructure cluster's templates.
    control_plane: Found<'a>,
    infrastructure: Found<'a>,
    patches: Vec<Patch<'a>>,
    control_plane_naming: Naming,
    infrastructure_naming: Naming,
    /// Per worker class, in class order: its name, naming and health check.
    workers: Vec<WorkerClass<'a>>,
    /// Per patch target ([`Target`]), per patch: the definitions whose
    /// selector matches it. A selector reads only the template's kind and the
    /// item's role, both fixed by the class: matched once, not per Cluster.
    matched: Vec<Vec<Matched>>,
}

/// The definitions of one patch that select one target, and whether all
/// their operations stay inside what a patch keeps ([`Operation::stays_inside`]).
struct Matched {
    definitions: Vec<usize>,
    inside: bool,
}

/// What an item is for, as an index of [`Class::matched`]: the
/// infrastructure cluster (0), the control plane (1), then per worker class
/// its bootstrap (2 + 2 × index) and infrastructure (3 + 2 × index) templates.
type Target = usize;
const INFRASTRUCTURE_TARGET: Target = 0;
const CONTROL_PLANE_TARGET: Target = 1;
fn worker_targets(index: usize) -> [Target; 2] {
    [2 + 2 * index, 3 + 2 * index]
}

struct WorkerClass<'a> {
    class: &'a Value,
    name: &'a str,
    naming: Naming,
    bootstrap: Found<'a>,
    infrastructure: Found<'a>,
}

/// The class template a reference names, and its name; or why there is none
/// (what expanding a Cluster on the class then fails with).
type Found<'a> = Result<(&'a Value, &'a str), String>;

/// The template `reference` names (`kind`, `name`) among `templates`.
fn find<'a>(templates: &[&'a Value], reference: Option<&'a Value>, what: &str) -> Found<'a> {
    let reference = reference.ok_or_else(|| format!("the ClusterClass has no {what}"))?;
    let (kind, name) = (str_at(reference, "/kind")?, str_at(reference, "/name")?);
    let found = (templates.iter())
        .find(|t| t.item("kind") == kind && t.item("metadata").item("name") == name)
        .ok_or_else(|| format!("no template {kind} {name} in the class"))?;
    Ok((found, name))
}

/// A found template and its name, or why there is none.
fn template_of<'a>(found: &Found<'a>) -> Result<(&'a Value, String), String> {
    let (template, name) = found.as_ref().map_err(Clone::clone)?;
    Ok((template, name.to_string()))
}

/// A naming template: its text (for messages) and its parse.
struct Naming {
    text: String,
    parsed: Result<gotmpl::Template, String>,
}

impl Naming {
    fn new(template: Option<&Value>, default: &str) -> Naming {
        let text = template
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string();
        let parsed = gotmpl::parse(&text);
        Naming { text, parsed }
    }
}

struct Patch<'a> {
    name: &'a str,
    enabled_if: Option<Result<gotmpl::Template, String>>,
    definitions: Vec<Definition<'a>>,
}

struct Definition<'a> {
    selector: Option<Selector<'a>>,
    operations: Vec<Operation<'a>>,
}

/// A definition's selector: the template's `apiVersion` and `kind` (null
/// when unset), and which items it matches.
struct Selector<'a> {
    api_version: &'a Value,
    kind: &'a Value,
    control_plane: bool,
    infrastructure_cluster: bool,
    worker_classes: Vec<&'a str>,
}

impl<'a> Selector<'a> {
    fn new(selector: &'a Value) -> Selector<'a> {
        static NULL: Value = Value::Null;
        let resources = &selector.item("matchResources");
        Selector {
            api_version: selector.field("apiVersion").unwrap_or(&NULL),
            kind: selector.field("kind").unwrap_or(&NULL),
            control_plane: *resources.item("controlPlane") == true,
            infrastructure_cluster: *resources.item("infrastructureCluster") == true,
            worker_classes: resources
                .at("/machineDeploymentClass/names")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect(),
        }
    }
}

struct Operation<'a> {
    op: &'a Value,
    /// The path's tokens (decoded), or why it is not a JSON pointer.
    tokens: Result<Vec<String>, String>,
    value: Source<'a>,
}

impl Operation<'_> {
    /// Whether the operation only reaches inside `spec`, or inside the
    /// labels or annotations: what a patch keeps (see [`apply_patches`]).
    fn stays_inside(&self) -> bool {
        match self.tokens.as_deref() {
            Ok([first, _, ..]) if first == "spec" => true,
            Ok([first, second, _, ..]) => {
                first == "metadata" && (second == "labels" || second == "annotations")
            }
            _ => false,
        }
    }
}

/// The tokens of a JSON pointer, decoded; the error says why it is none.
fn tokens(path: &Value) -> Result<Vec<String>, String> {
    let path = path.as_str().ok_or("a patch operation needs a path")?;
    let pointer =
        json_patch::jsonptr::PointerBuf::parse(path).map_err(|e| format!("path {path:?}: {e}"))?;
    Ok(pointer.tokens().map(|t| t.decoded().into_owned()).collect())
}

/// Where an operation's value comes from.
enum Source<'a> {
    Literal(&'a Value),
    /// The dotted path, and its segments.
    Variable(&'a str, Vec<&'a str>),
    Template(Result<gotmpl::Template, String>),
    Missing,
}

impl<'a> Class<'a> {
    /// The class in `documents` (the ClusterClass and its templates), or
    /// `None` when they hold no ClusterClass.
    pub fn new(documents: &'a [Document<Value>], variables: &'a [Variable]) -> Option<Class<'a>> {
        let document = documents
            .iter()
            .find(|d| d.value.item("kind") == "ClusterClass")?;
        let class = &document.value;
        let list = |v: Option<&'a Value>| v.and_then(Value::as_array).into_iter().flatten();
        let patches: Vec<Patch<'a>> = list(class.at("/spec/patches"))
            .map(|patch| Patch {
                name: patch.field("name").and_then(Value::as_str).unwrap_or("?"),
                enabled_if: (patch.field("enabledIf").and_then(Value::as_str)).map(gotmpl::parse),
                definitions: list(patch.field("definitions"))
                    .map(|d| Definition {
                        selector: d.field("selector").map(Selector::new),
                        operations: list(d.field("jsonPatches"))
                            .map(|op| Operation {
                                op: op.item("op"),
                                tokens: tokens(op.item("path")),
                                value: match (op.field("value"), op.field("valueFrom")) {
                                    (Some(value), _) => Source::Literal(value),
                                    (None, Some(from)) => match (
                                        from.field("variable").and_then(Value::as_str),
                                        from.field("template").and_then(Value::as_str),
                                    ) {
                                        (Some(path), _) => {
                                            Source::Variable(path, path.split('.').collect())
                                        }
                                        (None, Some(t)) => Source::Template(gotmpl::parse(t)),
                                        (None, None) => Source::Missing,
                                    },
                                    (None, None) => Source::Missing,
                                },
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        let naming =
            |pointer: &str| Naming::new(class.at(pointer), "{{ .cluster.name }}-{{ .random }}");
        let templates: Vec<&Value> = documents.iter().map(|d| &d.value).collect();
        let workers: Vec<WorkerClass<'a>> = list(class.at("/spec/workers/machineDeployments"))
            .enumerate()
            .map(|(index, c)| {
                let base = format!("/spec/workers/machineDeployments/{index}");
                WorkerClass {
                    class: c,
                    name: c.field("class").and_then(Value::as_str).unwrap_or_default(),
                    naming: Naming::new(
                        c.at("/naming/template"),
                        "{{ .cluster.name }}-{{ .machineDeployment.topologyName }}-{{ .random }}",
                    ),
                    bootstrap: find(
                        &templates,
                        c.at("/bootstrap/templateRef"),
                        &format!("{base}/bootstrap/templateRef"),
                    ),
                    infrastructure: find(
                        &templates,
                        c.at("/infrastructure/templateRef"),
                        &format!("{base}/infrastructure/templateRef"),
                    ),
                }
            })
            .collect();
        let control_plane = find(
            &templates,
            class.at("/spec/controlPlane/templateRef"),
            "/spec/controlPlane/templateRef",
        );
        let infrastructure = find(
            &templates,
            class.at("/spec/infrastructure/templateRef"),
            "/spec/infrastructure/templateRef",
        );
        let mut targets = vec![
            (&infrastructure, Role::InfrastructureCluster),
            (&control_plane, Role::ControlPlane),
        ];
        for worker in &workers {
            for template in [&worker.bootstrap, &worker.infrastructure] {
                targets.push((template, Role::Worker(worker.name)));
            }
        }
        let matched = (targets.iter())
            .map(|(found, role)| match found {
                Ok((template, _)) => (patches.iter())
                    .map(|patch| matched(patch, template, role))
                    .collect(),
                // Expanding on this target fails before any patch.
                Err(_) => Vec::new(),
            })
            .collect();
        Some(Class {
            class,
            source: &document.source,
            variables,
            control_plane,
            infrastructure,
            patches,
            control_plane_naming: naming("/spec/controlPlane/naming/template"),
            infrastructure_naming: naming("/spec/infrastructure/naming/template"),
            workers,
            matched,
        })
    }
}

/// One patch target: a copy of a class template, and what it is for.
struct Item<'c> {
    template: Value,
    /// The class template's `kind` (null when unset): a patch never changes it.
    kind: &'c Value,
    /// Whether the template is exactly [`is_plain`].
    plain: bool,
    /// Which of the class's templates it is, and for what.
    target: Target,
    /// This item's own variables (builtins, an MD's overrides), over the
    /// Cluster's.
    variables: Rc<Map>,
}

impl<'c> Item<'c> {
    fn new(class_template: &'c Value, target: Target, variables: Rc<Map>) -> Item<'c> {
        Item {
            kind: class_template.item("kind"),
            plain: is_plain(class_template),
            template: class_template.clone(),
            target,
            variables,
        }
    }
}

/// What a patch selector's `matchResources` asks of a target.
enum Role<'a> {
    ControlPlane,
    InfrastructureCluster,
    Worker(&'a str),
}

/// The objects CAPI creates for `cluster`, or why it cannot: a variable path
/// that does not exist, a patch that does not apply, a template that renders
/// what YAML 1.1 and 1.2 read differently.
pub fn expand(cluster: &Value, class: &Class<'_>) -> Result<Vec<Value>, String> {
    let name = str_at(cluster, "/metadata/name")?;
    let namespace = str_at(cluster, "/metadata/namespace")?;
    let topology = cluster
        .at("/spec/topology")
        .ok_or("the Cluster has no spec.topology")?;
    let version = str_at(topology, "/version")?;
    // The texts every object of the Cluster repeats, made once.
    let (name_text, namespace_text, version_text) =
        (Str::from(name), Str::from(namespace), Str::from(version));
    let globals = defaulted(topology.field("variables"), class.variables);
    let class_ref = map([
        (
            key!("name"),
            class.class.item("metadata").item("name").clone(),
        ),
        (
            key!("namespace"),
            class.class.item("metadata").item("namespace").clone(),
        ),
    ]);
    let builtin_cluster = map([
        (key!("name"), counted(&name_text)),
        (key!("namespace"), counted(&namespace_text)),
        (
            key!("topology"),
            map([
                (key!("version"), counted(&version_text)),
                (key!("classRef"), class_ref),
            ]),
        ),
    ]);
    let mut naming_data = naming_data(name);
    let cp_name = naming(&class.control_plane_naming, &mut naming_data, None)?;
    let infra_name = naming(&class.infrastructure_naming, &mut naming_data, None)?;
    let mut cp_builtin = map([
        (key!("name"), cp_name.as_str().into()),
        (key!("version"), counted(&version_text)),
    ]);
    let cp_replicas = topology.at("/controlPlane/replicas");
    if let Some(replicas) = cp_replicas {
        set(&mut cp_builtin, key!("replicas"), replicas.clone());
    }
    // Each item's own variables: its `builtin`, an MD's overrides; the
    // Cluster's are looked up beneath them (never copied per item).
    let own = |mut variables: Map, builtin: Option<(Str, Value)>| {
        let mut builtins = Map::new();
        builtins.insert(key!("cluster"), builtin_cluster.clone());
        if let Some((key, value)) = builtin {
            builtins.insert(key, value);
        }
        variables.insert(key!("builtin"), Value::Object(builtins));
        Rc::new(variables)
    };
    let cp_variables = own(Map::new(), Some((key!("controlPlane"), cp_builtin)));
    let (cp_template, cp_template_name) = template_of(&class.control_plane)?;
    let (infra_template, infra_template_name) = template_of(&class.infrastructure)?;
    let mut items = Vec::new();
    let mut mds = Vec::new();
    let workers = topology
        .at("/workers/machineDeployments")
        .and_then(Value::as_array);
    for md in workers.into_iter().flatten() {
        let class_name = str_at(md, "/class")?;
        let topology_name = str_at(md, "/name")?;
        let index = (class.workers.iter())
            .position(|c| c.name == class_name)
            .ok_or_else(|| format!("the ClusterClass has no worker class {class_name}"))?;
        let worker = &class.workers[index];
        let md_name = naming(&worker.naming, &mut naming_data, Some(topology_name))?;
        let template_name = prefixed(&[name, "-", topology_name, "-"].concat());
        let mut md_variables = Map::new();
        let overrides = md.at("/variables/overrides").and_then(Value::as_array);
        for o in overrides.into_iter().flatten() {
            if let (Some(n), Some(v)) = (o.field("name").and_then(Value::as_str), o.field("value"))
            {
                md_variables.insert(n.to_string(), v.clone());
            }
        }
        let mut md_builtin = map([
            (key!("version"), counted(&version_text)),
            (key!("class"), class_name.into()),
            (key!("name"), md_name.as_str().into()),
            (key!("topologyName"), topology_name.into()),
            (
                key!("bootstrap"),
                map([(
                    key!("configRef"),
                    map([(key!("name"), template_name.as_str().into())]),
                )]),
            ),
            (
                key!("infrastructureRef"),
                map([(key!("name"), template_name.as_str().into())]),
            ),
        ]);
        if let Some(replicas) = md.field("replicas") {
            set(&mut md_builtin, key!("replicas"), replicas.clone());
        }
        let md_variables = own(md_variables, Some((key!("machineDeployment"), md_builtin)));
        let (bootstrap, bootstrap_name) = template_of(&worker.bootstrap)?;
        let (infra, infra_md_name) = template_of(&worker.infrastructure)?;
        let first = 2 + items.len();
        for (t, target) in [bootstrap, infra].into_iter().zip(worker_targets(index)) {
            items.push(Item::new(t, target, Rc::clone(&md_variables)));
        }
        mds.push((
            md,
            worker,
            md_name,
            template_name,
            first,
            bootstrap_name,
            infra_md_name,
        ));
    }
    let mut items: Vec<Item> = [
        Item::new(infra_template, INFRASTRUCTURE_TARGET, own(Map::new(), None)),
        Item::new(cp_template, CONTROL_PLANE_TARGET, cp_variables),
    ]
    .into_iter()
    .chain(items)
    .collect();
    apply_patches(class, &mut items, &globals)?;
    let mut objects = Vec::new();
    let base_labels = map([
        (key!(CLUSTER_NAME), counted(&name_text)),
        (key!(OWNED), Value::String(key!(""))),
    ]);
    // Each template becomes its object: moved, not copied.
    let infra = std::mem::take(&mut items[0].template);
    objects.push(object(
        infra,
        &infra_name,
        &namespace_text,
        &base_labels,
        &infra_template_name,
        Value::Object(Map::new()),
    )?);
    let cp = std::mem::take(&mut items[1].template);
    let mut preserved = map([(key!("version"), counted(&version_text))]);
    if let Some(replicas) = cp_replicas {
        set(&mut preserved, key!("replicas"), replicas.clone());
    }
    objects.push(object(
        cp,
        &cp_name,
        &namespace_text,
        &base_labels,
        &cp_template_name,
        preserved,
    )?);
    for (md, worker, md_name, template_name, first, bootstrap_name, infra_md_name) in mds {
        let topology_name = str_at(md, "/name")?;
        let topology_text = Str::from(topology_name);
        let template_text = Str::from(template_name.as_str());
        let md_text = Str::from(md_name.as_str());
        let mut labels = base_labels.clone();
        set(&mut labels, key!(DEPLOYMENT_NAME), counted(&topology_text));
        let copy = |item: &mut Item, from: &str| {
            template_copy(
                std::mem::take(&mut item.template),
                &template_text,
                &namespace_text,
                &labels,
                from,
            )
        };
        let bootstrap = copy(&mut items[first], &bootstrap_name);
        let infra = copy(&mut items[first + 1], &infra_md_name);
        let group = |v: &Value| {
            crate::json::api_group(v.item("apiVersion").as_str().unwrap_or_default()).to_string()
        };
        let reference = |template: &Value| {
            map([
                (key!("apiGroup"), group(template).into()),
                (key!("kind"), template.item("kind").clone()),
                (key!("name"), counted(&template_text)),
            ])
        };
        let machine = map([
            (key!("clusterName"), counted(&name_text)),
            (key!("version"), counted(&version_text)),
            (
                key!("bootstrap"),
                map([(key!("configRef"), reference(&bootstrap))]),
            ),
            (key!("infrastructureRef"), reference(&infra)),
        ]);
        let mut spec = map([
            (key!("clusterName"), counted(&name_text)),
            (
                key!("selector"),
                map([(key!("matchLabels"), labels.clone())]),
            ),
            (
                key!("template"),
                map([
                    (key!("metadata"), map([(key!("labels"), labels.clone())])),
                    (key!("spec"), machine),
                ]),
            ),
            // The MachineDeployment webhook's default.
            (
                key!("rollout"),
                map([(
                    key!("strategy"),
                    map([
                        (key!("type"), Value::String(key!("RollingUpdate"))),
                        (
                            key!("rollingUpdate"),
                            map([
                                (key!("maxSurge"), 1u64.into()),
                                (key!("maxUnavailable"), 0u64.into()),
                            ]),
                        ),
                    ]),
                )]),
            ),
        ]);
        if let Some(replicas) = md.field("replicas") {
            set(&mut spec, key!("replicas"), replicas.clone());
        }
        objects.push(map([
            (
                key!("apiVersion"),
                Value::String(key!("cluster.x-k8s.io/v1beta2")),
            ),
            (key!("kind"), Value::String(key!("MachineDeployment"))),
            (
                key!("metadata"),
                metadata(&md_text, &namespace_text, labels),
            ),
            (key!("spec"), spec),
        ]));
        objects.push(bootstrap);
        objects.push(infra);
        let names = Names {
            cluster: &name_text,
            namespace: &namespace_text,
            machine_deployment: &md_text,
            topology: &topology_text,
        };
        if let Some(check) = health_check(worker.class, md, &names) {
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
fn health_check(md_class: &Value, md: &Value, names: &Names<'_>) -> Option<Value> {
    let from_class = md_class.field("healthCheck");
    let from_topology = md.field("healthCheck");
    if from_topology.and_then(|h| h.field("enabled")) == Some(&Value::Bool(false)) {
        return None;
    }
    let part = |key: &str| {
        (from_topology.and_then(|h| h.field(key)))
            .or_else(|| from_class.and_then(|h| h.field(key)))
            .cloned()
    };
    let (checks, remediation) = (part("checks"), part("remediation"));
    if checks.is_none() && remediation.is_none() {
        return None;
    }
    let mut checks = checks.unwrap_or_else(|| Value::Object(Map::new()));
    if checks.field("nodeStartupTimeoutSeconds").is_none() {
        set(
            &mut checks,
            key!("nodeStartupTimeoutSeconds"),
            600u64.into(),
        );
    }
    let mut spec = map([
        (key!("clusterName"), counted(names.cluster)),
        (
            key!("selector"),
            map([(
                key!("matchLabels"),
                map([
                    (key!(OWNED), Value::String(key!(""))),
                    (key!(DEPLOYMENT_NAME), counted(names.topology)),
                ]),
            )]),
        ),
        (key!("checks"), checks),
    ]);
    if let Some(remediation) = remediation {
        set(&mut spec, key!("remediation"), remediation);
    }
    Some(map([
        (
            key!("apiVersion"),
            Value::String(key!("cluster.x-k8s.io/v1beta2")),
        ),
        (key!("kind"), Value::String(key!("MachineHealthCheck"))),
        (
            key!("metadata"),
            metadata(
                names.machine_deployment,
                names.namespace,
                map([
                    (key!(OWNED), Value::String(key!(""))),
                    (key!(CLUSTER_NAME), counted(names.cluster)),
                ]),
            ),
        ),
        (key!("spec"), spec),
    ]))
}

/// The string at `pointer`, or which field is missing.
fn str_at<'v>(v: &'v Value, pointer: &str) -> Result<&'v str, String> {
    v.at(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{pointer} is missing"))
}

/// The Cluster's variables, with top-level defaults for those it leaves out
/// and nested defaults inside those it sets (CAPI's defaulting webhook).
fn defaulted(set: Option<&Value>, definitions: &[Variable]) -> Map {
    let mut values = Map::new();
    for v in set.and_then(Value::as_array).into_iter().flatten() {
        if let (Some(name), Some(value)) =
            (v.field("name").and_then(Value::as_str), v.field("value"))
        {
            values.insert(name.to_string(), value.clone());
        }
    }
    for definition in definitions {
        apply_default(&mut values, &definition.name, &definition.schema);
    }
    values
}

/// A name from a naming template (`{{ .cluster.name }}`, `{{ .random }}`,
/// `{{ .machineDeployment.topologyName }}`), CAPI's default when there is none.
/// `data` is [`naming_data`] of the Cluster; only the topology name changes.
fn naming(template: &Naming, data: &mut Value, md: Option<&str>) -> Result<String, String> {
    data["machineDeployment"]["topologyName"] = md.unwrap_or_default().into();
    let name = (template.parsed.as_ref().map_err(Clone::clone))
        .and_then(|t| t.render(Scope::of(data)))
        .map_err(|e| format!("naming template {:?}: {e}", template.text))?;
    // Longer than a label: cut to 58 and five random characters appended.
    Ok(if name.len() > 63 {
        prefixed(&name)
    } else {
        name
    })
}

/// What naming templates read of a Cluster.
fn naming_data(cluster: &str) -> Value {
    map([
        (key!("cluster"), map([(key!("name"), cluster.into())])),
        (key!("random"), RANDOM.into()),
        (
            key!("machineDeployment"),
            map([(key!("topologyName"), "".into())]),
        ),
    ])
}

/// CAPI's prefix names: the base cut to 58 bytes (between characters), then five random characters.
fn prefixed(base: &str) -> String {
    [cut(base), RANDOM].concat()
}

/// At most the first 58 bytes of `name`, where CAPI cuts a long name, and
/// never inside a character (a stack's naming template may write any text).
fn cut(name: &str) -> &str {
    let mut end = name.len().min(58);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

fn apply_patches(class: &Class<'_>, items: &mut [Item<'_>], globals: &Map) -> Result<(), String> {
    for (index, patch) in class.patches.iter().enumerate() {
        let patch_name = patch.name;
        for item in items.iter_mut() {
            let variables = Scope {
                own: &item.variables,
                base: Some(globals),
            };
            let matched = &class.matched[item.target][index];
            if matched.definitions.is_empty() {
                continue;
            }
            let matching =
                || (matched.definitions.iter()).flat_map(|&d| &patch.definitions[d].operations);
            if let Some(t) = &patch.enabled_if {
                let rendered = (t.as_ref().map_err(Clone::clone))
                    .map_err(|e| format!("patch {patch_name}: {e}"))?
                    .render(variables)
                    .map_err(|e| format!("patch {patch_name}: enabledIf: {e}"))?;
                if !yaml11_true(&rendered) {
                    continue;
                }
            }
            let mut operations = Vec::new();
            for op in matching() {
                operations.push(
                    operation(op, variables).map_err(|e| format!("patch {patch_name}: {e}"))?,
                );
            }
            let failed =
                |e: String| format!("patch {patch_name} does not apply to {}: {e}", item.kind);
            // After a patch only spec, labels and annotations are kept. When
            // every operation stays inside them, and the template is the
            // usual four fields, patching in place is exactly that.
            if matched.inside && item.plain {
                patch_in_place(&mut item.template, operations).map_err(failed)?;
                continue;
            }
            let kept = [
                item.template.field("apiVersion").cloned(),
                item.template.field("kind").cloned(),
                item.template.field("metadata").cloned(),
            ];
            patch_in_place(&mut item.template, operations).map_err(failed)?;
            let mut patched = std::mem::take(&mut item.template);
            let mut template = Map::new();
            for (key, value) in ["apiVersion", "kind", "metadata"].into_iter().zip(kept) {
                if let Some(value) = value {
                    template.insert(key, value);
                }
            }
            let mut template = Value::Object(template);
            template["spec"] = patched["spec"].take();
            for key in ["labels", "annotations"] {
                if let Some(v) = patched["metadata"].field_mut(key) {
                    template["metadata"][key] = v.take();
                }
            }
            item.template = template;
            item.plain = is_plain(&item.template);
        }
    }
    Ok(())
}

/// `apiVersion`, `kind`, `metadata` (a mapping) and `spec`, in this order
/// and nothing else: what rebuilding a template after a patch gives.
fn is_plain(template: &Value) -> bool {
    let Some(fields) = template.as_object() else {
        return false;
    };
    fields
        .keys()
        .map(|k| &**k)
        .eq(["apiVersion", "kind", "metadata", "spec"])
        && fields.item("metadata").is_object()
}

/// One RFC 6902 operation, resolved for one item.
enum Resolved<'o> {
    Add(&'o [String], Value),
    Replace(&'o [String], Value),
    Remove(&'o [String]),
}

/// One RFC 6902 operation of a patch, with its value for this item.
fn operation<'o>(op: &'o Operation<'_>, variables: Scope<'_>) -> Result<Resolved<'o>, String> {
    let tokens = op.tokens.as_deref().map_err(Clone::clone)?;
    Ok(match op.op.as_str() {
        Some("add") => Resolved::Add(tokens, value_of(&op.value, variables)?),
        Some("replace") => Resolved::Replace(tokens, value_of(&op.value, variables)?),
        Some("remove") => Resolved::Remove(tokens),
        other => return Err(format!("op {other:?} is not add, replace or remove")),
    })
}

/// Apply `operations` in order, as the `json-patch` crate does (`add` needs
/// the parent, an array index may be one past the end, `-` appends; `remove`
/// and `replace` need the target), walking decoded tokens instead of
/// re-parsing each pointer. On failure the document is partly patched: the
/// expansion stops there.
fn patch_in_place(doc: &mut Value, operations: Vec<Resolved<'_>>) -> Result<(), String> {
    for (index, operation) in operations.into_iter().enumerate() {
        let tokens = match &operation {
            Resolved::Add(t, _) | Resolved::Replace(t, _) | Resolved::Remove(t) => *t,
        };
        let invalid = || {
            let path: String = tokens
                .iter()
                .map(|t| format!("/{}", crate::json::escaped(t)))
                .collect();
            format!("operation '/{index}' failed at path '{path}': path is invalid")
        };
        match operation {
            Resolved::Replace(tokens, value) => {
                *walk(doc, tokens).ok_or_else(invalid)? = value;
            }
            Resolved::Add(tokens, value) => {
                let Some((last, parent)) = tokens.split_last() else {
                    *doc = value;
                    continue;
                };
                match walk(doc, parent).ok_or_else(invalid)? {
                    Value::Object(map) => {
                        map.insert(last.clone(), value);
                    }
                    Value::Array(list) => {
                        let at = match last.as_str() {
                            "-" => list.len(),
                            token => array_index(token)
                                .filter(|i| *i <= list.len())
                                .ok_or_else(invalid)?,
                        };
                        list.insert(at, value);
                    }
                    _ => return Err(invalid()),
                }
            }
            Resolved::Remove(tokens) => {
                let (last, parent) = tokens.split_last().ok_or_else(invalid)?;
                match walk(doc, parent).ok_or_else(invalid)? {
                    Value::Object(map) => {
                        map.remove(last.as_str()).ok_or_else(invalid)?;
                    }
                    Value::Array(list) => {
                        let at = array_index(last)
                            .filter(|i| *i < list.len())
                            .ok_or_else(invalid)?;
                        list.remove(at);
                    }
                    _ => return Err(invalid()),
                }
            }
        }
    }
    Ok(())
}

/// The value at decoded `tokens`, as `serde_json`'s `pointer_mut` finds it.
fn walk<'v>(doc: &'v mut Value, tokens: &[String]) -> Option<&'v mut Value> {
    tokens.iter().try_fold(doc, |at, token| match at {
        Value::Object(map) => map.get_mut(token),
        Value::Array(list) => array_index(token).and_then(|i| list.get_mut(i)),
        _ => None,
    })
}

/// An RFC 6901 array index: digits, no leading zero.
fn array_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    (digits && (token == "0" || !token.starts_with('0')))
        .then(|| token.parse().ok())
        .flatten()
}

/// The definitions of `patch` whose selector matches `template` in `role`.
fn matched(patch: &Patch<'_>, template: &Value, role: &Role<'_>) -> Matched {
    let definitions: Vec<usize> = (patch.definitions.iter().enumerate())
        .filter(|(_, d)| (d.selector.as_ref()).is_some_and(|s| matches(s, template, role)))
        .map(|(i, _)| i)
        .collect();
    let inside = (definitions.iter())
        .flat_map(|&d| &patch.definitions[d].operations)
        .all(Operation::stays_inside);
    Matched {
        definitions,
        inside,
    }
}

fn matches(selector: &Selector<'_>, template: &Value, role: &Role<'_>) -> bool {
    if selector.kind != template.item("kind") || selector.api_version != template.item("apiVersion")
    {
        return false;
    }
    match role {
        Role::ControlPlane => selector.control_plane,
        Role::InfrastructureCluster => selector.infrastructure_cluster,
        Role::Worker(class) => (selector.worker_classes.iter()).any(|p| name_matches(p, class)),
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
fn value_of(source: &Source<'_>, variables: Scope<'_>) -> Result<Value, String> {
    match source {
        Source::Literal(value) => Ok((*value).clone()),
        Source::Variable(path, segments) => {
            let missing = || format!("variable {path:?} does not exist");
            let (top, segments) = segments.split_first().ok_or_else(missing)?;
            let mut at = variables.field(top).ok_or_else(missing)?;
            for segment in segments {
                at = at.field(segment).ok_or_else(missing)?;
            }
            Ok(at.clone())
        }
        Source::Template(template) => {
            let rendered = template.as_ref().map_err(Clone::clone)?.render(variables)?;
            yaml_value(&rendered)
        }
        Source::Missing => Err("a patch operation needs value or valueFrom".into()),
    }
}

/// A rendered template as CAPI reads it (YAML 1.1). A scalar that YAML 1.1
/// and kmetal's YAML 1.2 read differently is refused, never guessed.
fn yaml_value(text: &str) -> Result<Value, String> {
    // A word YAML reads as itself (a version, a name) needs no parse.
    let value = match crate::yaml::is_plain_text(text) {
        true => Value::String(text.into()),
        false => (crate::yaml::parse_value(text).map(Value::from))
            .map_err(|e| format!("rendered {text:?}: {e:?}"))?,
    };
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

/// Whether an `enabledIf` result is `true` as YAML 1.1 reads it.
fn yaml11_true(text: &str) -> bool {
    let t = text.trim();
    ["true", "yes", "on", "y"]
        .iter()
        .any(|word| t.eq_ignore_ascii_case(word))
}

/// The object a template becomes: kind without `Template`, the template's
/// `spec.template` as its metadata and spec, CAPI's labels and annotations.
fn object(
    mut template: Value,
    name: &str,
    namespace: &Str,
    labels: &Value,
    template_name: &str,
    preserved: Value,
) -> Result<Value, String> {
    let kind = template.item("kind").as_str().unwrap_or_default();
    let object_kind = kind
        .strip_suffix("Template")
        .ok_or_else(|| format!("{kind} is not a template kind"))?;
    let object_kind = object_kind.to_string();
    let mut metadata = self::metadata(&Str::from(name), namespace, labels.clone());
    set(
        &mut metadata,
        key!("annotations"),
        cloned_from(&template, template_name),
    );
    let mut inner = (template.field_mut("spec"))
        .and_then(|spec| spec.field_mut("template"))
        .map(Value::take)
        .unwrap_or_default();
    merge(&mut metadata["labels"], &inner["metadata"]["labels"]);
    merge(
        &mut metadata["annotations"],
        inner.item("metadata").item("annotations"),
    );
    let mut spec = match inner.field_mut("spec") {
        Some(spec) => spec.take(),
        None => Value::Object(Map::new()),
    };
    merge(&mut spec, &preserved);
    Ok(map([
        (key!("apiVersion"), template["apiVersion"].take()),
        (key!("kind"), object_kind.into()),
        (key!("metadata"), metadata),
        (key!("spec"), spec),
    ]))
}

/// A per-MachineDeployment copy of a class template.
fn template_copy(
    mut template: Value,
    name: &Str,
    namespace: &Str,
    labels: &Value,
    from: &str,
) -> Value {
    let mut metadata = self::metadata(name, namespace, labels.clone());
    merge(&mut metadata["labels"], &template["metadata"]["labels"]);
    set(
        &mut metadata,
        key!("annotations"),
        cloned_from(&template, from),
    );
    template["metadata"] = metadata;
    template
}

fn cloned_from(template: &Value, name: &str) -> Value {
    let kind = template.item("kind").as_str().unwrap_or_default();
    let group = crate::json::api_group(template.item("apiVersion").as_str().unwrap_or_default());
    // Cluster API's GroupKind text: `Kind.group`, the kind alone in the core group.
    let group_kind = match group {
        "" => kind.to_string(),
        group => [kind, ".", group].concat(),
    };
    map([
        (key!(CLONED_NAME), name.into()),
        (key!(CLONED_KIND), group_kind.into()),
    ])
}

/// A JSON object of these fields, in this order. Unlike `json!`, it moves
/// the values in (`json!` serializes each `Value` it is given, a deep copy).
fn map<const N: usize>(fields: [(Str, Value); N]) -> Value {
    Value::Object(Map::of(fields))
}

/// `metadata` with a name, a namespace and labels.
fn metadata(name: &Str, namespace: &Str, labels: Value) -> Value {
    map([
        (key!("name"), counted(name)),
        (key!("namespace"), counted(namespace)),
        (key!("labels"), labels),
    ])
}

/// The names a MachineDeployment's objects are made of.
struct Names<'a> {
    cluster: &'a Str,
    namespace: &'a Str,
    machine_deployment: &'a Str,
    topology: &'a Str,
}

/// `into[key] = value` (null becomes a mapping).
fn set(into: &mut Value, key: Str, value: Value) {
    if into.is_null() {
        *into = Value::Object(Map::new());
    }
    match into.as_object_mut() {
        Some(map) => drop(map.insert(key, value)),
        None => into[&*key] = value,
    }
}

/// A shared text as a value: a count, not a copy.
fn counted(shared: &Str) -> Value {
    Value::String(Arc::clone(shared))
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
) -> Vec<Document<Value>> {
    let mut by_path = BTreeMap::new();
    for value in objects {
        let kind = value.item("kind").as_str().unwrap_or_default();
        let name = value
            .item("metadata")
            .item("name")
            .as_str()
            .unwrap_or_default();
        by_path.insert(crate::layout::expanded_file(tenant, kind, name), value);
    }
    by_path
        .into_iter()
        .map(|(path, value)| Document {
            path,
            source: source.to_string(),
            template: class_file.to_string(),
            value,
            emitted: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_at_58_bytes_between_characters() {
        let ascii = "a".repeat(70);
        assert_eq!(cut(&ascii), &ascii[..58]);
        assert_eq!(cut("short"), "short");
        // 'a' then two-byte characters: byte 58 falls inside one.
        let wide = format!("a{}", "é".repeat(40));
        assert_eq!(cut(&wide).len(), 57);
        assert_eq!(prefixed(&wide), format!("{}{RANDOM}", &wide[..57]));
        assert_eq!(prefixed(&ascii).len(), 58 + RANDOM.len());
    }

    /// The patch step gives what the `json-patch` crate gives: the same
    /// document, or the same error.
    #[test]
    fn a_rendered_word_reads_as_the_parse_reads_it() {
        let parsed = |text: &str| {
            let value = crate::yaml::parse_value(text).map_err(|e| format!("{e:?}"))?;
            let value = Value::from(value);
            check_yaml11(&value)?;
            Ok::<Value, String>(value)
        };
        for text in [
            "v1.30.0",
            "infinity",
            "Infinity",
            "in_f",
            "n_a_n",
            "nan",
            "on",
            "Off",
            "a:b",
            "x~y",
            "true",
            "abc-def",
            "a/b",
            "a.b_c",
            "e5",
            "E_5",
            "y",
            "NULL",
            "k8s@x+y=z",
        ] {
            assert_eq!(yaml_value(text), parsed(text), "{text}");
        }
        assert!(crate::yaml::is_plain_text("in_f") && yaml_value("in_f").is_err());
    }

    #[test]
    fn patching_in_place_agrees_with_json_patch() {
        let doc =
            crate::tree!({"spec": {"a": 1, "list": [1, 2, 3], "m": {"x~/y": true}}, "s": "x"});
        let ops = [
            ("add", "/spec/b", Some(crate::tree!(2))),
            ("add", "/spec/a", Some(crate::tree!({"n": 1}))),
            ("add", "/spec/list/-", Some(crate::tree!(4))),
            ("add", "/spec/list/0", Some(crate::tree!(0))),
            ("add", "/spec/list/3", Some(crate::tree!(9))),
            ("add", "/spec/list/4", Some(crate::tree!(9))),
            ("add", "/spec/list/01", Some(crate::tree!(9))),
            ("add", "/spec/list/+1", Some(crate::tree!(9))),
            ("add", "/spec/missing/x", Some(crate::tree!(1))),
            ("add", "/s/x", Some(crate::tree!(1))),
            ("add", "", Some(crate::tree!({"whole": 1}))),
            ("add", "/spec/m/x~0~1y", Some(crate::tree!(false))),
            ("replace", "/spec/a", Some(crate::tree!("r"))),
            ("replace", "/spec/nothing", Some(crate::tree!(1))),
            ("replace", "/spec/list/2", Some(crate::tree!("two"))),
            ("replace", "/spec/list/3", Some(crate::tree!(1))),
            ("replace", "", Some(crate::tree!([]))),
            ("remove", "/spec/a", None),
            ("remove", "/spec/nothing", None),
            ("remove", "/spec/list/1", None),
            ("remove", "/spec/list/-", None),
            ("remove", "/spec/list/3", None),
            ("remove", "/spec/m/x~0~1y", None),
            ("remove", "", None),
        ];
        // Each operation alone, and every pair in order.
        let single = ops.iter().map(|op| vec![op.clone()]);
        let pairs = ops
            .iter()
            .flat_map(|a| ops.iter().map(|b| vec![a.clone(), b.clone()]));
        for case in single.chain(pairs) {
            let operations: Vec<json_patch::PatchOperation> = case
                .iter()
                .map(|(op, path, value)| {
                    let mut o = crate::tree!({"op": op, "path": path});
                    if let Some(v) = value {
                        o["value"] = v.clone();
                    }
                    serde_json::from_value(o.into()).unwrap()
                })
                .collect();
            let mut theirs = serde_json::Value::from(&doc);
            let theirs = json_patch::patch_unsafe(&mut theirs, &operations)
                .map(|()| theirs)
                .map_err(|e| e.to_string());
            let tokens: Vec<Vec<String>> = case
                .iter()
                .map(|(_, p, _)| tokens(&crate::tree!(p)).unwrap())
                .collect();
            let resolved = case
                .iter()
                .zip(&tokens)
                .map(|((op, _, value), t)| match *op {
                    "add" => Resolved::Add(t, value.clone().unwrap()),
                    "replace" => Resolved::Replace(t, value.clone().unwrap()),
                    _ => Resolved::Remove(t),
                })
                .collect();
            let mut ours = doc.clone();
            let ours = patch_in_place(&mut ours, resolved).map(|()| serde_json::Value::from(ours));
            assert_eq!(ours, theirs, "{case:?}");
        }
    }
}
