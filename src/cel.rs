//! CRD `x-kubernetes-validations` rules + a JSON instance → the rules it breaks, as the
//! Kubernetes API server reports them. Invariant: every rule is compiled once, by
//! [`CelRules::compile`]; [`CelRules::evaluate`] never fails, it reports.
//!
//! Where this interprets the API server:
//! - Selecting an absent field (`self.a.b` with no `a`) fails the rule with the rule's own
//!   message; the API server fails it too, naming the "no such key" error instead.
//! - Other evaluation errors fail the rule: its message plus ` (evaluation error: …)`.
//! - Rules are parsed, not type-checked (the `cel` crate has no checker): a call to an
//!   unknown function is refused at compile time, anything else surfaces at evaluation.
//! - Transition rules (those mentioning `oldSelf`) run only in [`CelRules::evaluate_update`],
//!   at the nodes where the old object has a value at the same place, as the API server
//!   correlates them: object fields and map values by key, list items only in
//!   `x-kubernetes-list-type: map` lists, by their `x-kubernetes-list-map-keys`.
//!   (`optionalOldSelf` is not supported; none of the kinds kmetal emits uses it.)

use crate::json::At;
use crate::json::Field;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use ::cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString,
};
use ::cel::common::value::Val;
use ::cel::{Context, Env, ExecutionError, Program, Value};
use serde_json::Value as Json;

use crate::value::{JsonView as Instance, View};

/// One failed rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CelViolation {
    /// JSON pointer of the node the rule is attached to, e.g. "/spec" ("" for the root).
    pub path: String,
    pub rule: String,
    /// As the API server picks it: the `messageExpression` result (a non-blank string),
    /// else the rule's `message`, else "failed rule: <rule>".
    pub message: String,
}

/// Rules of one schema, compiled once.
pub struct CelRules {
    env: Arc<Env>,
    /// The schema tree, `$ref`s shared; `root` indexes it.
    nodes: Vec<Node>,
    root: usize,
    transition_rules: usize,
}

/// One schema node: its own rules, and the schemas of its children.
#[derive(Default)]
struct Node {
    rules: Vec<Rule>,
    /// Rules that use `oldSelf`: run on updates only.
    transition: Vec<Rule>,
    /// `x-kubernetes-list-map-keys` of a `x-kubernetes-list-type: map` list: how its
    /// items correlate with the old list's.
    list_map_keys: Option<Vec<String>>,
    properties: BTreeMap<String, usize>,
    items: Option<usize>,
    additional: Option<usize>,
    /// Whether this node or one below it has rules, and transition rules:
    /// a walk skips the parts of an object no rule looks at.
    below: Below,
}

#[derive(Clone, Copy, Default, PartialEq)]
struct Below {
    rules: bool,
    transition: bool,
}

struct Rule {
    source: String,
    program: Program,
    message: Option<String>,
    message_expression: Option<Program>,
}

/// A step of an instance path; derived order sorts array indices numerically.
/// Keys are borrowed from the instance: the path is spelled out only for a
/// violation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment<'v> {
    Index(usize),
    Key(&'v str),
}

type Found<'v> = Vec<(Vec<Segment<'v>>, CelViolation)>;

impl CelRules {
    /// Walk a JSON Schema (draft-07 JSON form of an openAPIV3Schema: `properties`, `items`,
    /// `additionalProperties` as schema, `definitions` + `$ref: "#/definitions/x"` may appear)
    /// and compile every `x-kubernetes-validations` rule. Rules that use `oldSelf` are
    /// transition rules, kept apart for [`CelRules::evaluate_update`].
    /// A rule that does not compile is an Err naming the schema path and the rule.
    pub fn compile(schema: &serde_json::Value) -> Result<CelRules, String> {
        let mut compiler = Compiler {
            document: schema,
            env: Arc::clone(&ENVIRONMENT),
            nodes: Vec::new(),
            refs: HashMap::new(),
            transition_rules: 0,
        };
        let root = compiler.node(schema, "")?;
        let mut nodes = compiler.nodes;
        mark_below(&mut nodes);
        Ok(CelRules {
            env: compiler.env,
            nodes,
            root,
            transition_rules: compiler.transition_rules,
        })
    }

    /// How many rules use `oldSelf` (they run on updates only).
    pub fn transition_rules(&self) -> usize {
        self.transition_rules
    }

    /// The transition rules an update from `old` to `instance` breaks, as the API server
    /// checks them on update: each runs where both objects have a value at correlated
    /// places, with `self` the new value and `oldSelf` the old one. Same order as
    /// [`CelRules::evaluate`].
    pub fn evaluate_update<I: Instance>(&self, instance: &I, old: &I) -> Vec<CelViolation> {
        let mut found = Found::new();
        self.visit_update(self.root, instance, old, &mut Vec::new(), &mut found);
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.into_iter().map(|(_, violation)| violation).collect()
    }

    fn visit_update<'v, I: Instance>(
        &self,
        id: usize,
        value: &'v I,
        old: &I,
        at: &mut Vec<Segment<'v>>,
        found: &mut Found<'v>,
    ) {
        let node = &self.nodes[id];
        if value.is_null() || old.is_null() || !node.below.transition {
            return;
        }
        if !node.transition.is_empty() {
            let mut context = Context::with_env(Arc::clone(&self.env));
            context.add_variable_as_val("self", to_val(value));
            context.add_variable_as_val("oldSelf", to_val(old));
            check_rules(&node.transition, &context, at, found);
        }
        match (value.view(), old.view()) {
            (View::Object(fields), View::Object(_)) => {
                for (name, child) in fields {
                    let schema = node.properties.get(name).copied().or(node.additional);
                    if let (Some(schema), Some(old_child)) = (schema, old.member(name)) {
                        at.push(Segment::Key(name));
                        self.visit_update(schema, child, old_child, at, found);
                        at.pop();
                    }
                }
            }
            (View::Array(items), View::Array(old_items)) => {
                let (Some(schema), Some(keys)) = (node.items, &node.list_map_keys) else {
                    return;
                };
                // A missing key and a null one correlate, as before.
                fn key_of<'i, I: Instance>(item: &'i I, keys: &[String]) -> Vec<Option<&'i I>> {
                    keys.iter()
                        .map(|k| item.member(k).filter(|v| !v.is_null()))
                        .collect()
                }
                for (index, item) in items.iter().enumerate() {
                    let key = key_of(item, keys);
                    if let Some(old_item) = old_items.iter().find(|o| key_of(*o, keys) == key) {
                        at.push(Segment::Index(index));
                        self.visit_update(schema, item, old_item, at, found);
                        at.pop();
                    }
                }
            }
            _ => {}
        }
    }

    /// Evaluate every rule at every instance node its schema node applies to
    /// (object properties, array items, map values via additionalProperties), with
    /// `self` bound to that node. Deterministic order: by path, then rule order.
    /// A node that is absent or `null` runs no rules, nor do its children.
    pub fn evaluate<I: Instance>(&self, instance: &I) -> Vec<CelViolation> {
        let mut found = Found::new();
        self.visit(self.root, instance, &mut Vec::new(), &mut found);
        found.sort_by(|a, b| a.0.cmp(&b.0)); // stable: rule order kept within a path
        found.into_iter().map(|(_, violation)| violation).collect()
    }

    fn visit<'v, I: Instance>(
        &self,
        id: usize,
        value: &'v I,
        at: &mut Vec<Segment<'v>>,
        found: &mut Found<'v>,
    ) {
        let node = &self.nodes[id];
        if !node.below.rules {
            return;
        }
        if !node.rules.is_empty() && !value.is_null() {
            self.check(node, value, at, found);
        }
        match (value.view(), node.items) {
            (View::Object(fields), _) => {
                for (name, child) in fields {
                    let schema = node.properties.get(name).copied().or(node.additional);
                    if let Some(schema) = schema {
                        at.push(Segment::Key(name));
                        self.visit(schema, child, at, found);
                        at.pop();
                    }
                }
            }
            (View::Array(items), Some(schema)) => {
                for (index, item) in items.iter().enumerate() {
                    at.push(Segment::Index(index));
                    self.visit(schema, item, at, found);
                    at.pop();
                }
            }
            _ => {}
        }
    }

    fn check<'v, I: Instance>(
        &self,
        node: &Node,
        value: &I,
        at: &[Segment<'v>],
        found: &mut Found<'v>,
    ) {
        let mut context = Context::with_env(Arc::clone(&self.env));
        context.add_variable_as_val("self", to_val(value));
        check_rules(&node.rules, &context, at, found);
    }
}

/// Run `rules` in `context`; each that does not hold is a violation at `at`.
fn check_rules<'v>(
    rules: &[Rule],
    context: &Context<'_, '_>,
    at: &[Segment<'v>],
    found: &mut Found<'v>,
) {
    for rule in rules {
        let message = match rule.program.execute(context) {
            Ok(Value::Bool(true)) => continue,
            Ok(_) | Err(ExecutionError::NoSuchKey(_)) => rule.message(context),
            Err(error) => format!("{} (evaluation error: {error})", rule.message(context)),
        };
        found.push((at.to_vec(), violation(at, &rule.source, message)));
    }
}

impl Rule {
    /// As the API server does: a `messageExpression` that errs, or gives a blank or
    /// multi-line string, counts as unset.
    fn message(&self, context: &Context<'_, '_>) -> String {
        let computed = self.message_expression.as_ref().and_then(|expression| {
            match expression.execute(context) {
                Ok(Value::String(text)) if usable(&text) => Some(text.to_string()),
                _ => None,
            }
        });
        computed
            .or_else(|| self.message.clone())
            .unwrap_or_else(|| format!("failed rule: {}", self.source.trim()))
    }
}

/// Builds the node tree of one schema document.
/// Fill in [`Below`]: the schema graph may be cyclic (`$ref`), so marks
/// spread from child to parent until nothing changes.
fn mark_below(nodes: &mut [Node]) {
    for node in nodes.iter_mut() {
        node.below = Below {
            rules: !node.rules.is_empty(),
            transition: !node.transition.is_empty(),
        };
    }
    loop {
        let mut changed = false;
        for id in 0..nodes.len() {
            let node = &nodes[id];
            let children = (node.properties.values().copied())
                .chain(node.items)
                .chain(node.additional);
            let below = children.fold(node.below, |b, child| Below {
                rules: b.rules || nodes[child].below.rules,
                transition: b.transition || nodes[child].below.transition,
            });
            if below != nodes[id].below {
                nodes[id].below = below;
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

struct Compiler<'s> {
    document: &'s Json,
    env: Arc<Env>,
    nodes: Vec<Node>,
    refs: HashMap<&'s str, usize>,
    transition_rules: usize,
}

impl<'s> Compiler<'s> {
    /// A `$ref` is built once, and registered before it is filled: recursion terminates.
    fn node(&mut self, schema: &'s Json, path: &str) -> Result<usize, String> {
        let reference = schema.field("$ref").and_then(Json::as_str);
        if let Some(&id) = reference.and_then(|r| self.refs.get(r)) {
            return Ok(id);
        }
        let (schema, path) = match reference {
            None => (schema, path),
            Some(r) => (self.resolve(r)?, r.trim_start_matches('#')),
        };
        self.nodes.push(Node::default());
        let id = self.nodes.len() - 1;
        self.refs.extend(reference.map(|r| (r, id)));
        self.fill(id, schema, path)?;
        Ok(id)
    }

    fn resolve(&self, reference: &str) -> Result<&'s Json, String> {
        let document = self.document;
        (reference.strip_prefix('#'))
            .and_then(|pointer| document.at(pointer))
            .filter(|target| target.field("$ref").is_none())
            .ok_or_else(|| format!("$ref {reference:?}: no schema at that place"))
    }

    fn fill(&mut self, id: usize, schema: &'s Json, path: &str) -> Result<(), String> {
        let (rules, transition) = self.rules(schema, path)?;
        let list_map_keys = (schema
            .field("x-kubernetes-list-type")
            .and_then(Json::as_str)
            == Some("map"))
        .then(|| {
            let keys = schema
                .field("x-kubernetes-list-map-keys")
                .and_then(Json::as_array);
            keys.into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        });
        let mut properties = BTreeMap::new();
        let fields = schema.field("properties").and_then(Json::as_object);
        for (name, sub) in fields.into_iter().flatten() {
            let sub_path = format!("{path}/properties/{}", crate::json::escaped(name));
            properties.insert(name.clone(), self.node(sub, &sub_path)?);
        }
        let items = self.child(schema, "items", path)?;
        let additional = self.child(schema, "additionalProperties", path)?;
        self.nodes[id] = Node {
            rules,
            transition,
            list_map_keys,
            properties,
            items,
            additional,
            below: Below::default(),
        };
        Ok(())
    }

    /// The sub-schema under `key`; a boolean (`additionalProperties: false`) is none.
    fn child(&mut self, schema: &'s Json, key: &str, path: &str) -> Result<Option<usize>, String> {
        match schema.get(key) {
            Some(sub @ Json::Object(_)) => self.node(sub, &format!("{path}/{key}")).map(Some),
            _ => Ok(None),
        }
    }

    /// A schema node's rules: those that hold on any object, and the transition rules.
    fn rules(&mut self, schema: &Json, path: &str) -> Result<(Vec<Rule>, Vec<Rule>), String> {
        let entries = schema
            .field("x-kubernetes-validations")
            .and_then(Json::as_array);
        let (mut rules, mut transition) = (Vec::new(), Vec::new());
        for entry in entries.into_iter().flatten() {
            let text = |key| {
                entry
                    .get(key)
                    .and_then(Json::as_str)
                    .filter(|s| !s.trim().is_empty())
            };
            let source = text("rule")
                .ok_or_else(|| format!("schema {path:?}: a validation without a rule"))?;
            let program = self.program(source, path)?;
            let on_update = program.references().has_variable("oldSelf");
            let message_expression = text("messageExpression").map(|m| self.program(m, path));
            let rule = Rule {
                source: source.to_owned(),
                program,
                message: text("message").map(str::to_owned),
                message_expression: message_expression.transpose()?,
            };
            if on_update {
                self.transition_rules += 1;
                transition.push(rule);
            } else {
                rules.push(rule);
            }
        }
        Ok((rules, transition))
    }

    fn program(&self, source: &str, path: &str) -> Result<Program, String> {
        let fail =
            |why: String| format!("schema {path:?}: rule {source:?} does not compile: {why}");
        let program = self.env.compile(source).map_err(|e| fail(e.to_string()))?;
        let unknown = {
            let references = program.references();
            let mut functions = references.functions();
            functions.sort_unstable();
            functions
                .into_iter()
                .find(|f| !declared(&self.env, f))
                .map(str::to_owned)
        };
        match unknown {
            Some(function) => Err(fail(format!("unknown function `{function}`"))),
            None => Ok(program),
        }
    }
}

/// Whether a call to `name` can resolve: an operator (`_==_`, `!_`, `@in`, dispatched by the
/// interpreter itself) or an overload declared in `env`.
fn declared(env: &Arc<Env>, name: &str) -> bool {
    if name.starts_with(['_', '@']) || name.ends_with('_') {
        return true;
    }
    // `cel` has no public "is it declared" query, but `Context::add_function` refuses,
    // by its documented contract, exactly the names that `env` declares as overloads.
    let mut probe = Context::with_env(Arc::clone(env));
    probe.add_function(name, |x: i64| x).is_err()
}

/// [`environment`], built once: it never changes, and every schema's rules
/// compile in it.
static ENVIRONMENT: std::sync::LazyLock<Arc<Env>> =
    std::sync::LazyLock::new(|| Arc::new(environment()));

/// The CEL standard library, the strings extension, and Kubernetes' `isIP` and `isCIDR`.
/// Not here: the rest of Kubernetes' libraries (`ip()`, `cidr()`, `quantity()`, `url()`,
/// `format`, `semver`, `sets`, the regex `find`, its lists `isSorted`/`sum`/`min`/`max`).
fn environment() -> Env {
    let mut env = Env::stdlib();
    let why = "names and ids are unique in a fresh environment";
    env.add_extension(::cel::extensions::strings).expect(why);
    ::cel::add_overload!(env, fn cel_is_ip: (CelString) -> CelBool, name = "isIP", id = "is_ip")
        .expect(why);
    ::cel::add_overload!(env, fn cel_is_cidr: (CelString) -> CelBool,
        name = "isCIDR", id = "is_cidr")
    .expect(why);
    env
}

fn cel_is_ip(text: &CelString<'_>) -> CelBool {
    CelBool::from(is_ip(text.inner()))
}

fn cel_is_cidr(text: &CelString<'_>) -> CelBool {
    CelBool::from(is_cidr(text.inner()))
}

/// Kubernetes' `isIP`: an IPv4 or IPv6 address as Go's `netip.ParseAddr` reads it (no
/// leading zeros), with no zone and not IPv4-mapped.
pub fn is_ip(text: &str) -> bool {
    parse_ip(text).is_some()
}

/// Kubernetes' `isCIDR`: an address as for [`is_ip`], `/`, and a prefix length in range
/// without leading zeros. Host bits may be set (`10.0.0.1/8`), as in `netip.ParsePrefix`.
pub fn is_cidr(text: &str) -> bool {
    let Some((address, bits)) = text.split_once('/') else {
        return false;
    };
    let Some(ip) = parse_ip(address) else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let plain = bits == "0" || (!bits.starts_with('0') && bits.bytes().all(|b| b.is_ascii_digit()));
    plain && bits.parse::<u8>().is_ok_and(|bits| bits <= max)
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    match text.parse().ok()? {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => None,
        ip => Some(ip),
    }
}

/// JSON → CEL: integers are `int`, other numbers `double`, objects string-keyed maps.
/// The instance as CEL sees it, borrowing its texts: what converting it to
/// a `cel::Value` and that to a `Val` gives, without either copy.
fn to_val<'v, I: Instance>(json: &'v I) -> Box<dyn Val + 'v> {
    match json.view() {
        View::Null => Box::new(CelNull),
        View::Bool(b) => Box::new(CelBool::from(b)),
        View::Number(n) => match n.as_i64() {
            Some(int) => Box::new(CelInt::from(int)),
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        View::String(s) => Box::new(CelString::from(s)),
        View::Array(items) => Box::new(CelList::from(items.iter().map(to_val).collect::<Vec<_>>())),
        View::Object(fields) => Box::new(CelMap::from(
            fields
                .map(|(k, v)| (CelMapKey::from(k), to_val(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

fn pointer(at: &[Segment<'_>]) -> String {
    at.iter()
        .map(|segment| match segment {
            Segment::Index(index) => format!("/{index}"),
            Segment::Key(key) => format!("/{}", crate::json::escaped(key)),
        })
        .collect()
}

fn violation(at: &[Segment<'_>], rule: &str, message: String) -> CelViolation {
    let (path, rule) = (pointer(at), rule.to_owned());
    CelViolation {
        path,
        rule,
        message,
    }
}

fn usable(message: &str) -> bool {
    !message.trim().is_empty() && !message.contains('\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(file: &str) -> Json {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/crds/jsonschema");
        let text = std::fs::read_to_string(dir.join(file)).expect("upstream schema is readable");
        serde_json::from_str(&text).expect("upstream schema is JSON")
    }

    fn rules(file: &str) -> CelRules {
        CelRules::compile(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    fn messages(rules: &CelRules, instance: &Json) -> Vec<String> {
        rules
            .evaluate(instance)
            .into_iter()
            .map(|v| v.message)
            .collect()
    }

    /// `(path, message)` of every violation of the inline `schema`'s rules.
    fn failures(schema: Json, instance: Json) -> Vec<(String, String)> {
        let rules = CelRules::compile(&schema).unwrap_or_else(|e| panic!("{e}"));
        rules
            .evaluate(&instance)
            .into_iter()
            .map(|v| (v.path, v.message))
            .collect()
    }

    /// `self` holds every JSON type as CEL reads it: lists, maps by key,
    /// integers, doubles, texts, booleans and null.
    #[test]
    fn self_holds_every_json_type() {
        let rule = "self.list.size() == 2 && self.list[1] == 'b' && self.map['k'] == 1 \
            && self.d == 1.5 && self.i == -3 && self.t && self.n == null && !has(self.missing)";
        let schema =
            serde_json::json!({"type": "object", "x-kubernetes-validations": [{"rule": rule}]});
        let rules = CelRules::compile(&schema).unwrap();
        let good =
            json!({"list": ["a", "b"], "map": {"k": 1}, "d": 1.5, "i": -3, "t": true, "n": null});
        assert_eq!(rules.evaluate(&good), []);
        let bad =
            json!({"list": ["a", "c"], "map": {"k": 1}, "d": 1.5, "i": -3, "t": true, "n": null});
        assert_eq!(rules.evaluate(&bad).len(), 1);
        assert_eq!(rules.evaluate(&crate::value::Value::from(&good)), []);
    }

    #[test]
    fn datastore_rules_match_the_api_server() {
        let rules = rules("kamaji.clastix.io/datastore_v1alpha1.json");
        assert_eq!(rules.transition_rules(), 2);
        let secret = |key: &str| {
            json!({"secretReference": {
                "name": "certs", "namespace": "kamaji", "keyPath": key}})
        };
        let pair = json!({"certificate": secret("tls.crt"), "privateKey": secret("tls.key")});
        let etcd = |tls: Json| {
            json!({"spec": {
                "driver": "etcd", "endpoints": ["etcd:2379"], "tlsConfig": tls}})
        };
        let pg = |auth: Json| {
            json!({"spec": {
                "driver": "PostgreSQL", "endpoints": ["pg:5432"], "basicAuth": auth}})
        };
        let complete = etcd(json!({"certificateAuthority": pair, "clientCertificate": pair}));
        assert_eq!(messages(&rules, &complete), Vec::<String>::new());
        let no_client = messages(&rules, &etcd(json!({"certificateAuthority": pair})));
        let client = "clientCertificate must have secretReference or content when driver is etcd";
        let client_key = "clientCertificate privateKey must have secretReference or content \
            when driver is etcd";
        assert_eq!(no_client, [client, client_key]);
        let basic_auth =
            json!({"username": {"content": "a2FtYWpp"}, "password": secret("password")});
        assert_eq!(messages(&rules, &pg(basic_auth)), Vec::<String>::new());
        let bare = json!({"spec": {"driver": "PostgreSQL", "endpoints": ["pg:5432"]}});
        let failed = rules.evaluate(&bare);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].path, "/spec");
        let message = "When driver is not etcd, either tlsConfig or basicAuth must be provided";
        assert_eq!(failed[0].message, message);
        let rule = &failed[0].rule;
        assert!(rule.ends_with("(has(self.tlsConfig) || has(self.basicAuth)) : true"));
    }

    #[test]
    fn cluster_rejects_ready_as_an_unhealthy_condition() {
        let rules = rules("cluster.x-k8s.io/cluster_v1beta2.json");
        let cluster = |kind: &str| {
            json!({"spec": {"topology": {"controlPlane": {"healthCheck": {"checks": {
                "unhealthyMachineConditions": [{"type": "NodeDiskPressure", "status": "True"},
                    {"type": kind, "status": "False"}]}}}}}})
        };
        assert_eq!(rules.evaluate(&cluster("NodeReady")), []);
        let failed = rules.evaluate(&cluster("Ready"));
        let path =
            "/spec/topology/controlPlane/healthCheck/checks/unhealthyMachineConditions/1/type";
        assert_eq!((failed.len(), failed[0].path.as_str()), (1, path));
        assert!(
            failed[0]
                .message
                .starts_with("type must not be one of: Ready,")
        );
    }

    #[test]
    fn our_schemas_compile_and_small_instances_pass() {
        let cases = [
            (
                "cert-manager.io/clusterissuer_v1.json",
                json!({"spec": {"selfSigned": {}}}),
            ),
            (
                "kustomize.toolkit.fluxcd.io/kustomization_v1.json",
                json!({"spec": {"interval": "10m", "prune": true,
                    "sourceRef": {"kind": "GitRepository", "name": "site"},
                    "kubeConfig": {"secretRef": {"name": "kc"}}}}),
            ),
            (
                "controlplane.cluster.x-k8s.io/kamajicontrolplane_v1alpha2.json",
                json!({"spec": {"version": "v1.33.0",
                    "addons": {"konnectivity": {"agent": {"mode": "DaemonSet"}}},
                    "network": {"serviceType": "LoadBalancer",
                        "loadBalancerConfig": {"loadBalancerSourceRanges": ["192.0.2.0/24"]}}}}),
            ),
            (
                "kamaji.clastix.io/tenantcontrolplane_v1alpha1.json",
                json!({"spec": {"kubernetes": {"version": "v1.33.0"},
                    "controlPlane": {"service": {"serviceType": "LoadBalancer"}},
                    "networkProfile": {"advertiseAddress": "192.0.2.10",
                        "podCidr": "10.244.0.0/16", "serviceCidr": "10.96.0.0/16",
                        "loadBalancerSourceRanges": ["192.0.2.0/24"]}}}),
            ),
        ];
        for (file, instance) in &cases {
            assert_eq!(rules(file).evaluate(instance), [], "{file}");
        }
        let bad = json!({"spec": {"controlPlane": {"service": {"serviceType": "ClusterIP"}},
            "networkProfile": {"podCidr": "10.244.0.0/33", "podCidrs": ["fd00::/64", "x"]}}});
        let expected = [
            "podCidr must be empty or a valid CIDR",
            "all podCidrs entries must be valid CIDRs",
        ];
        assert_eq!(messages(&rules(cases[3].0), &bad), expected);
    }

    #[test]
    fn transition_rules_run_on_updates_where_the_old_value_exists() {
        let rules = rules("kamaji.clastix.io/datastore_v1alpha1.json");
        let store = |driver: &str| {
            json!({"spec": {"driver": driver, "endpoints": ["db:5432"],
                "basicAuth": {"username": {"content": "dQ=="}, "password": {"content": "cA=="}},
                "tlsConfig": {"certificateAuthority": {"certificate": {"content": "Yw=="}}}}})
        };
        let update = |new: &Json, old: &Json| -> Vec<String> {
            (rules.evaluate_update(new, old).into_iter())
                .map(|v| format!("{}: {}", v.path, v.message))
                .collect()
        };
        let (pg, mysql) = (store("PostgreSQL"), store("MySQL"));
        assert_eq!(update(&pg, &pg), Vec::<String>::new());
        // Both rules of the CRD: on the field and on the spec.
        assert_eq!(
            update(&mysql, &pg),
            [
                "/spec: driver is immutable and cannot be changed after creation",
                "/spec/driver: Datastore driver is immutable",
            ]
        );
        // Creating (no old object) and on-create evaluation run no transition rule.
        assert_eq!(update(&mysql, &json!({})), Vec::<String>::new());
        assert!(messages(&rules, &mysql).is_empty());

        // Lists correlate by their map keys only; maps by key.
        let schema = json!({"type": "object", "properties": {
            "byName": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"size": {"type": "integer",
                    "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "no shrinking"}]}}}},
            "atomic": {"type": "array", "items": {"type": "object", "properties": {"size": {"type": "integer",
                "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "no shrinking"}]}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string",
                "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "fixed"}]}}}});
        let rules = CelRules::compile(&schema).unwrap_or_else(|e| panic!("{e}"));
        let old = json!({"byName": [{"name": "a", "size": 2}, {"name": "b", "size": 2}],
            "atomic": [{"size": 2}], "labels": {"x": "1"}});
        let new = json!({"byName": [{"name": "b", "size": 1}, {"name": "c", "size": 0}],
            "atomic": [{"size": 1}], "labels": {"x": "2", "y": "3"}});
        let found: Vec<String> = (rules.evaluate_update(&new, &old).into_iter())
            .map(|v| format!("{}: {}", v.path, v.message))
            .collect();
        assert_eq!(found, ["/byName/0/size: no shrinking", "/labels/x: fixed"]);
    }

    #[test]
    fn every_indexed_schema_compiles_with_its_transition_rules_counted() {
        let index = read("index.json");
        for entry in index.as_array().expect("index is a list") {
            let file = entry
                .item("file")
                .as_str()
                .expect("every entry names its file");
            let rules = rules(file);
            let compiled: usize = rules.nodes.iter().map(|n| n.rules.len()).sum();
            let transition: usize = rules.nodes.iter().map(|n| n.transition.len()).sum();
            assert_eq!(transition, rules.transition_rules(), "{file}");
            let counts = (compiled + transition, transition);
            assert_eq!(
                json!(counts),
                json!([entry.item("celRules"), entry.item("celTransitionRules")]),
                "{file}"
            );
        }
    }

    #[test]
    fn builtins_behave_as_in_kubernetes() {
        let object = json!({"name": "web-1", "ports": [80, 443], "weight": 0.5,
            "labels": {"app": "web"}, "none": null});
        let passing = "size(self.ports) == 2 && self.ports.size() == 2 && size(self.name) == 5
            has(self.name) && !has(self.missing) && has(self.labels.app) && has(self.none)
            self.ports.exists(p, p == 443) && self.ports.all(p, p > 0)
            !self.ports.exists(p, p < 0) && !self.ports.all(p, p == 80)
            self.ports.exists_one(p, p > 100) && self.ports.filter(p, p > 100) == [443]
            'app' in self.labels && 80 in self.ports && !('x' in self.labels)
            self.name.startsWith('web') && self.name.endsWith('-1')
            self.name.matches('^[a-z]+-1$') && !self.name.matches('^[0-9]')
            (self.name == 'web-1' ? 1 : 2) == 1 && self.weight == 0.5 && self.none == null
            self.ports[0] == 80 && type(self.ports[0]) == int && type(self.weight) == double
            self.name.lowerAscii() == 'web-1' && self.name.split('-') == ['web', '1']
            duration('90s').getSeconds() == 90 && duration('1500ms').getMilliseconds() == 1500
            isIP('192.0.2.1') && isCIDR('2001:db8::/32') && !isIP('192.0.2.1/32') && !isCIDR('x')";
        let failing = [
            "self.ports.all(p, p < 100)",
            "self.missing == 1",
            "self.name",
            "1 / 0 == 1",
        ];
        let run = |rules: &[&str]| {
            let entries: Vec<_> = rules.iter().map(|r| json!({"rule": r})).collect();
            failures(json!({"x-kubernetes-validations": entries}), object.clone())
        };
        let passing: Vec<_> = passing.lines().map(str::trim).collect();
        assert_eq!(
            run(&passing),
            [],
            "each is reported as `failed rule: <rule>`"
        );
        assert_eq!(run(&failing).len(), failing.len());
    }

    #[test]
    fn messages_errors_and_absent_nodes() {
        let schema = json!({
            "x-kubernetes-validations": [{"rule": "self.absent == 1", "message": "absent key"}],
            "properties": {"a": {"x-kubernetes-validations": [
                {"rule": "self > 1", "messageExpression": "'a is ' + string(self)", "message": "s"},
                {"rule": "self / 0 == 1", "message": "divides"}, {"rule": "self > 5"}]},
            "m": {"additionalProperties": {"x-kubernetes-validations": [
                {"rule": "self.size() < 3", "message": "long"}]}},
            "l": {"items": {"x-kubernetes-validations": [
                {"rule": "self != 0", "message": "zero"}]}}}});
        assert_eq!(failures(schema.clone(), json!(null)), []);
        assert_eq!(
            failures(
                schema.clone(),
                json!({"absent": 1, "a": null, "m": null, "l": null})
            ),
            []
        );
        let instance = json!({"l": [1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
            "m": {"z": "abc", "a/b": "xyz"}, "a": 1});
        let found = failures(schema, instance);
        let seen: Vec<_> = found.iter().map(|(p, m)| format!("{p} {m}")).collect();
        let division = "/a divides (evaluation error: Division by zero of Int(1))";
        let head = [
            " absent key",
            "/a a is 1",
            division,
            "/a failed rule: self > 5",
        ];
        assert_eq!(seen[..4], head);
        let zeros = [1, 3, 4, 5, 6, 7, 8, 9, 10].map(|i| format!("/l/{i} zero"));
        assert_eq!(seen[4..13], zeros);
        assert_eq!(seen[13..], ["/m/a~1b long", "/m/z long"]);
    }

    #[test]
    fn bad_rules_are_refused_with_their_place() {
        let compile = |rule: &str| {
            let schema =
                json!({"properties": {"spec": {"x-kubernetes-validations": [{"rule": rule}]}}});
            CelRules::compile(&schema).err().expect("refused")
        };
        let error = compile("self.a ==");
        assert!(
            error.starts_with(r#"schema "/properties/spec": rule "self.a ==" does not compile"#),
            "{error}"
        );
        assert!(
            compile("quantity(self.a).isLessThan(1)").ends_with("unknown function `isLessThan`")
        );
        assert!(compile("ip(self) == oldSelf").ends_with("unknown function `ip`"));
    }

    #[test]
    fn refs_are_followed_and_may_recurse() {
        let schema = json!({"$ref": "#/definitions/tree", "definitions": {"tree": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.v >= 0", "message": "negative"}],
            "properties": {"children": {"type": "array",
                "items": {"$ref": "#/definitions/tree"}}}}}});
        let instance = json!({"v": 1, "children": [{"v": 2}, {"v": -1, "children": [{"v": -2}]}]});
        let paths: Vec<_> = failures(schema, instance)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(paths, ["/children/1", "/children/1/children/0"]);
    }

    #[test]
    fn ip_and_cidr_follow_kubernetes() {
        let ips = "192.0.2.1 2001:db8::1 :: ::1.2.3.4";
        let not_ips = "192.0.2.01 192.0.2 ::ffff:192.0.2.1 fe80::1%eth0 192.0.2.1/32 x";
        let cidrs = "10.0.0.0/8 10.1.2.3/8 0.0.0.0/0 2001:db8::/128 fd00::/0";
        let not_cidrs = "10.0.0.0/33 2001:db8::/129 10.0.0.0/08 10.0.0.0/ 10.0.0.0/+8 10.0.0.0 \
            ::ffff:10.0.0.0/104 010.0.0.0/8";
        assert!(ips.split(' ').all(is_ip) && !not_ips.split(' ').any(is_ip));
        assert!(cidrs.split(' ').all(is_cidr) && !not_cidrs.split(' ').any(is_cidr));
        assert!(!is_ip("") && !is_cidr("") && !is_ip(" 192.0.2.1"));
    }
}
