//! `RawTenant`s → [`Tenant`]s: names, uniqueness, references to the site and
//! the stack, with the site's defaults applied.

use super::checker::{FileChecker, UniqueNames, site_default_error, unknown_reference};
use super::model::*;
use super::names::{Label, Subdomain};
use super::raw::*;
use super::site::{PLATFORM_DATASTORE, dns_name};
use crate::diagnostic::{Diagnostic, Diagnostics, Reported, SourceLocation, codes};
use crate::network;
use crate::stack::{Stack, Stacks};
use rayon::prelude::*;

const DEFAULT_WORKER_CLASS: &str = "default-worker";

/// A tenant file as read: its path and its raw content.
pub struct TenantSource {
    pub file: String,
    pub raw: RawTenant,
}

/// What the cross-tenant checks need of every tenant file, complete or not:
/// the fields that passed their own checks.
#[derive(Clone, Debug)]
pub struct TenantFacts {
    pub file: String,
    pub name: Option<Label>,
    pub name_location: SourceLocation,
    pub namespace: Option<(Label, SourceLocation)>,
    pub vip: Option<(std::net::IpAddr, SourceLocation)>,
    pub pool: Option<(Label, SourceLocation)>,
    pub cert_sans: Vec<(String, SourceLocation)>,
    pub pods: Option<Defaulted<ipnet::IpNet>>,
    pub services: Option<Defaulted<ipnet::IpNet>>,
    pub bootstrap_server: Option<Defaulted<Host>>,
    /// Whether the tenant checked fully (it is in [`CheckedTenants::tenants`]).
    pub complete: bool,
}

/// Every tenant that checked fully, in name order, and the facts of every
/// tenant file, in file order.
pub struct CheckedTenants {
    pub tenants: Vec<Tenant>,
    pub facts: Vec<TenantFacts>,
}

/// Check every tenant. A tenant with errors is left out of `tenants` (its
/// errors are in `diagnostics`), but its valid fields still take part in the
/// checks across tenants: names and namespaces here, networks, certSANs and
/// VIPs in [`crate::network`].
pub fn check_tenants(
    sources: &[TenantSource],
    site: &Site,
    stacks: &Stacks,
    diagnostics: &mut Diagnostics,
) -> CheckedTenants {
    let mut names = UniqueNames::new("tenant name", "in this repository");
    let mut namespaces = UniqueNames::new("namespace", "by two tenants");
    let mut tenants = Vec::new();
    let mut facts = Vec::new();
    // Each tenant on its own, in parallel, into its own list; the lists are
    // taken in file order, each before the checks across tenants of its
    // tenant, as one pass in order would report them.
    let each: Vec<(Diagnostics, Checked)> = (sources.par_iter())
        .map(|source| {
            let mut own = Diagnostics::new();
            let mut c = FileChecker {
                file: &source.file,
                diagnostics: &mut own,
            };
            let checked = check_tenant(&mut c, &source.raw, site, stacks);
            (own, checked)
        })
        .collect();
    for (own, (checked, mut fact)) in each {
        diagnostics.extend(own);
        let name_ok = match &fact.name {
            Some(name) => names.insert(name.as_str(), fact.name_location.clone(), diagnostics),
            None => false,
        };
        // A duplicate name already explains a duplicate derived namespace.
        let namespace_ok = match (&fact.namespace, name_ok || fact.name.is_none()) {
            (Some((ns, at)), true) => namespaces.insert(ns.as_str(), at.clone(), diagnostics),
            _ => false,
        };
        match checked {
            Ok(tenant) if name_ok && namespace_ok => tenants.push(tenant),
            Ok(_) => fact.complete = false, // reported as a duplicate just now
            Err(Reported { .. }) => {}
        }
        facts.push(fact);
    }
    tenants.sort_by(|a, b| a.name.cmp(&b.name));
    CheckedTenants { tenants, facts }
}

/// A tenant checked, or the proof that the reasons it is left out were
/// reported; and its facts either way.
type Checked = (Result<Tenant, Reported>, TenantFacts);

/// Check one tenant against the site and the stacks, on its own.
fn check_tenant(c: &mut FileChecker<'_>, raw: &RawTenant, site: &Site, stacks: &Stacks) -> Checked {
    let mark = c.diagnostics.mark();
    let mut inherited = None;
    let (checked, mut facts) = checked_tenant(c, raw, site, stacks, &mut inherited);
    let result = match checked {
        Some(tenant) if !c.diagnostics.errors_since(mark) => Ok(tenant),
        _ => match (c.diagnostics.reported_since_mark(mark), inherited) {
            (Some(reported), _) | (None, Some(reported)) => Err(reported),
            (None, None) => {
                let at = c.location(&raw.name);
                let what = format!("tenant {:?} was left out", raw.name.value);
                Err(c.diagnostics.reported_since(mark, &at, &what))
            }
        },
    };
    facts.complete = result.is_ok();
    (result, facts)
}

/// A site default the tenant inherits: its value, or `None` with the proof
/// (in `inherited`) when the default itself failed in the site.
fn inherit<'d, T>(
    site: &Site,
    key: &str,
    value: &'d T,
    inherited: &mut Option<Reported>,
) -> Option<&'d T> {
    match site.problems.defaults.get(key) {
        Some(reported) => {
            *inherited = Some(*reported);
            None
        }
        None => Some(value),
    }
}

fn checked_tenant(
    c: &mut FileChecker<'_>,
    raw: &RawTenant,
    site: &Site,
    stacks: &Stacks,
    inherited: &mut Option<Reported>,
) -> (Option<Tenant>, TenantFacts) {
    c.header(&raw.api_version, &raw.kind, "Tenant");
    let name_location = c.location(&raw.name);
    let name = c
        .label(&raw.name, "tenant name")
        .filter(|name| platform_name_rules(c, &raw.name, name, site).is_some());
    // Derived names are checked only from a valid tenant name: an invalid
    // one was reported once, at the name.
    let derived = |prefix: &str| {
        name.as_ref()
            .map(|n| relabel(&raw.name, format!("{prefix}{n}")))
    };
    let namespace = match (&raw.namespace, derived("tenant-")) {
        (Some(ns), _) => c.label(ns, "namespace"),
        (None, Some(derived)) => c.label(&derived, "namespace (tenant-<name>)"),
        (None, None) => None,
    };
    let namespace = namespace.filter(|ns| {
        let reserved = reserved_namespace(ns.as_str(), site, stacks);
        if let Some(why) = reserved {
            c.error(
                codes::SPEC_INVALID_VALUE,
                raw.namespace.as_ref().unwrap_or(&raw.name),
                format!("namespace {ns} {why}: kmetal would own it, and removing the tenant would make Flux delete it"),
                Some("give the tenant a namespace of its own, e.g. tenant-<name>".into()),
            );
        }
        reserved.is_none()
    });
    let namespace_location = raw
        .namespace
        .as_ref()
        .map_or_else(|| name_location.clone(), |n| c.location(n));
    let d = &site.defaults;
    let stack_name = match &raw.stack {
        Some(_) => choose(
            c,
            raw.stack.as_ref(),
            None,
            "stack",
            &name_location,
            strs_of(stacks),
        ),
        None => inherit(site, "stack", &d.stack, inherited).and_then(|default| {
            choose(
                c,
                None,
                Some(default),
                "stack",
                &name_location,
                strs_of(stacks),
            )
        }),
    };
    let stack = stack_name.as_ref().and_then(|s| stacks.tenant.get(s));
    let unread = site.problems.unread;
    let mut from_site = |c: &mut FileChecker<'_>,
                         own: Option<&S<String>>,
                         default: Option<&Defaulted<String>>,
                         key: &str,
                         what: &str,
                         valid: Vec<&str>| {
        if own.is_some() {
            return choose(c, own, None, what, &name_location, valid);
        }
        let default = match default {
            Some(default) => inherit(site, key, default, inherited)?,
            // The site's default may be in a part of the file that was not read.
            None if unread.is_some() => {
                *inherited = unread;
                return None;
            }
            None => return choose(c, None, None, what, &name_location, valid),
        };
        choose(c, None, Some(default), what, &name_location, valid)
    };
    let (kubernetes_version, machine_size) = match stack {
        Some(stack) => (
            from_site(
                c,
                raw.kubernetes_version.as_ref(),
                d.kubernetes_version.as_ref(),
                "kubernetesVersion",
                "Kubernetes version",
                strs(&stack.kubernetes_versions),
            ),
            from_site(
                c,
                raw.machine_size.as_ref(),
                Some(&d.machine_size),
                "machineSize",
                "machine size",
                strs(&stack.machine_sizes),
            ),
        ),
        None => (None, None),
    };
    // Its workers must have an image to boot. A site default without one is
    // reported at the site's line, for the site's default stack.
    let kubernetes_version = match (kubernetes_version, stack) {
        (Some(version), Some(stack))
            if stack.boot_image(&site.boot_images, &version) == Some(None) =>
        {
            let own = raw.kubernetes_version.as_ref();
            if own.is_some() || stack.name.as_str() != d.stack.value.as_str() {
                let (message, help) = crate::stack::no_boot_image(stack, &version);
                let at = own.map_or_else(|| name_location.clone(), |v| c.location(v));
                c.diagnostics.push(
                    Diagnostic::error(codes::SPEC_UNKNOWN_REFERENCE, message)
                        .at(at)
                        .help(help),
                );
            }
            None
        }
        (version, _) => version,
    };
    let bootstrap_server = match &raw.bootstrap_server {
        Some(b) => c.placed(b, |c| c.host(b, "bootstrap server")),
        None => match (
            &d.bootstrap_server,
            site.problems
                .defaults
                .get("bootstrapServer")
                .or(unread.as_ref()),
        ) {
            (Some(server), None) => Some(server.clone()),
            (_, Some(reported)) => {
                *inherited = Some(*reported);
                None
            }
            (None, None) => {
                c.diagnostics.push(
                    Diagnostic::error(
                        codes::SPEC_INVALID_VALUE,
                        "no bootstrap server for this tenant's workers",
                    )
                    .at(name_location.clone())
                    .help("set bootstrapServer here or in kmetal.yaml"),
                );
                None
            }
        },
    };
    let cp = raw.control_plane.as_ref();
    let replicas = match cp.and_then(|cp| cp.replicas.as_ref()) {
        Some(r) if r.value == 0 => {
            c.error(
                codes::SPEC_INVALID_VALUE,
                r,
                "controlPlane.replicas must be at least 1".into(),
                None,
            );
            None
        }
        Some(r) => Some(r.value),
        None => Some(d.replicas),
    };
    let vip = match cp.and_then(|cp| cp.vip.as_ref()) {
        Some(v) => c
            .ip(v, "controlPlane.vip")
            .map(|ip| Some((ip, c.location(v)))),
        None => Some(None),
    };
    let pool = match cp.and_then(|cp| cp.pool.as_ref()) {
        Some(p) => match site.problems.left_out_pools.get(&p.value).or(site
            .problems
            .pools
            .as_ref()
            .filter(|_| !site.pools.iter().any(|q| q.name.as_str() == p.value)))
        {
            Some(reported) => {
                *inherited = Some(*reported);
                None
            }
            None => {
                let known = c.reference(p, "pool", site.pools.iter().map(|p| p.name.as_str()));
                known.then(|| {
                    site.pools
                        .iter()
                        .find(|q| q.name.as_str() == p.value)
                        .map(|q| (q.name.clone(), c.location(p)))
                })
            }
        },
        None => Some(None),
    };
    let cert_sans = cp
        .map_or(&[][..], |cp| &cp.cert_sans)
        .iter()
        .filter_map(|s| Some((cert_san(c, s)?, c.location(s))))
        .collect::<Vec<_>>();
    let data_store = match cp.and_then(|cp| cp.data_store.as_ref()) {
        Some(ds) => match site.problems.left_out_data_stores.get(&ds.value).or(site
            .problems
            .data_stores
            .as_ref()
            .filter(|_| {
                !site.data_stores.iter().any(|d| d.name.as_str() == ds.value)
                    && ds.value != PLATFORM_DATASTORE
            })) {
            Some(reported) => {
                *inherited = Some(*reported);
                None
            }
            None => data_store(c, ds, site),
        },
        None => inherit(site, "dataStore", &d.data_store, inherited).map(|d| d.value.clone()),
    };
    let network = raw.network.as_ref();
    let pods = match network.and_then(|n| n.pods.as_ref()) {
        Some(p) => c.placed(p, |c| c.cidr(p, "pod network")),
        None => inherit(site, "pods", &d.pods, inherited).cloned(),
    };
    let services = match network.and_then(|n| n.services.as_ref()) {
        Some(s) => c.placed(s, |c| c.cidr(s, "service network")),
        None => inherit(site, "services", &d.services, inherited).cloned(),
    };
    let subnet = match (network.and_then(|n| n.subnet.as_ref()), derived("tenant-")) {
        (Some(s), _) => c.subdomain(s, "subnet"),
        (None, Some(derived)) => c.subdomain(&derived, "subnet (tenant-<name>)"),
        (None, None) => None,
    };
    let workers = stack.map(|stack| check_workers(c, &raw.workers, stack));
    let addons = match (&name, &namespace, &pods, &services) {
        (Some(name), Some(namespace), Some(pods), Some(services)) => check_addons(
            c,
            raw,
            site,
            &Facts {
                name: name.as_str(),
                namespace: namespace.as_str(),
                pods: crate::network::net_text(&pods.value),
                services: crate::network::net_text(&services.value),
            },
            &name_location,
        ),
        _ => None,
    };
    let facts = TenantFacts {
        file: c.file.to_string(),
        name: name.clone(),
        name_location: name_location.clone(),
        namespace: namespace.clone().map(|ns| (ns, namespace_location)),
        vip: vip.clone().flatten(),
        pool: pool.clone().flatten(),
        cert_sans: cert_sans.clone(),
        pods: pods.clone(),
        services: services.clone(),
        bootstrap_server: bootstrap_server.clone(),
        complete: false,
    };
    let tenant = (|| {
        Some(Tenant {
            file: c.file.to_string(),
            name: name?,
            name_location,
            namespace: namespace?,
            stack: Label::parse(&stack_name?).ok()?,
            kubernetes_version: kubernetes_version?,
            machine_size: machine_size?,
            bootstrap_server: bootstrap_server?,
            replicas: replicas?,
            vip: vip?,
            pool: pool?,
            cert_sans,
            data_store: data_store?,
            pods: pods?,
            services: services?,
            subnet: subnet?,
            workers: workers?,
            addons: addons?,
        })
    })();
    (tenant, facts)
}

/// What an add-on's tenantValues may take.
struct Facts<'a> {
    name: &'a str,
    namespace: &'a str,
    pods: String,
    services: String,
}

/// The site's add-ons for this tenant: opted out, or with its values merged
/// over the site's and the tenant facts filled in, checked against the
/// add-on's values schema. `None` when any of that failed (reported).
fn check_addons(
    c: &mut FileChecker<'_>,
    raw: &RawTenant,
    site: &Site,
    facts: &Facts<'_>,
    name_location: &SourceLocation,
) -> Option<Vec<TenantAddon>> {
    let mut ok = true;
    for key in raw.addons.keys() {
        let declared = site.addons.iter().any(|a| a.name.as_str() == key)
            || site.problems.left_out_addons.contains_key(key);
        if !declared {
            let known: Vec<&str> = site.addons.iter().map(|a| a.name.as_str()).collect();
            c.diagnostics.push(
                Diagnostic::error(
                    codes::SPEC_UNKNOWN_REFERENCE,
                    format!("addons names {key:?}, which is no add-on of the site"),
                )
                .at(name_location.clone())
                .help(if known.is_empty() {
                    "the site declares no addons; remove this".to_string()
                } else {
                    format!("the site's add-ons: {}", known.join(", "))
                }),
            );
            ok = false;
        }
    }
    let mut addons = Vec::new();
    for addon in &site.addons {
        let own = raw.addons.get(addon.name.as_str());
        if own.and_then(|o| o.enabled) == Some(false) {
            continue;
        }
        let mut values = serde_json::Value::Object(addon.values.clone());
        match own.and_then(|o| o.values.as_ref()) {
            Some(serde_json::Value::Object(over)) => merge_values(&mut values, over),
            Some(_) => {
                c.diagnostics.push(
                    Diagnostic::error(
                        codes::SPEC_INVALID_VALUE,
                        format!("addons.{}.values must be a mapping", addon.name),
                    )
                    .at(name_location.clone()),
                );
                ok = false;
                continue;
            }
            None => {}
        }
        for (path, fact) in &addon.tenant_values {
            let value = match fact {
                TenantFact::PodCidr => serde_json::json!(facts.pods),
                TenantFact::PodCidrs => serde_json::json!([facts.pods]),
                TenantFact::ServiceCidr => serde_json::json!(facts.services),
                TenantFact::ClusterName => serde_json::json!(facts.name),
                TenantFact::ClusterNamespace => serde_json::json!(facts.namespace),
            };
            set_path(&mut values, path, value);
        }
        if let Some(schema) = &addon.schema {
            let problems: Vec<String> = (schema.0.iter_errors(&values))
                .map(|e| {
                    format!(
                        "{}: {e}",
                        if e.instance_path().to_string().is_empty() {
                            "/".to_string()
                        } else {
                            e.instance_path().to_string()
                        }
                    )
                })
                .collect();
            if !problems.is_empty() {
                c.diagnostics.push(
                    Diagnostic::error(
                        codes::SPEC_INVALID_VALUE,
                        format!("the values of add-on {} for this tenant do not match its valuesSchema: {}", addon.name, problems.join("; ")),
                    )
                    .at(name_location.clone())
                    .help(format!("fix addons.{} in this file, or the add-on's values in kmetal.yaml", addon.name)),
                );
                ok = false;
                continue;
            }
        }
        addons.push(TenantAddon {
            name: addon.name.clone(),
            values,
        });
    }
    ok.then_some(addons)
}

/// Mappings merge key by key; anything else is replaced.
fn merge_values(into: &mut serde_json::Value, over: &serde_json::Map<String, serde_json::Value>) {
    let serde_json::Value::Object(target) = into else {
        *into = serde_json::Value::Object(over.clone());
        return;
    };
    for (key, value) in over {
        match (target.get_mut(key), value) {
            (Some(existing @ serde_json::Value::Object(_)), serde_json::Value::Object(inner)) => {
                merge_values(existing, inner)
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Set `value` at the dotted `path`, making mappings on the way.
fn set_path(into: &mut serde_json::Value, path: &[String], value: serde_json::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = into;
    for key in parents {
        if !at.get(key).is_some_and(serde_json::Value::is_object) {
            at[key.as_str()] = serde_json::json!({});
        }
        at = &mut at[key.as_str()];
    }
    at[last.as_str()] = value;
}

fn strs_of(stacks: &Stacks) -> Vec<&str> {
    stacks.tenant.keys().map(String::as_str).collect()
}

/// The longest label value Kubernetes accepts.
const LABEL_VALUE_MAX: usize = 63;

/// What the platform refuses of a tenant name after kmetal would have
/// accepted it as a DNS-1123 label.
fn platform_name_rules(
    c: &mut FileChecker<'_>,
    raw: &S<String>,
    name: &Label,
    site: &Site,
) -> Option<()> {
    // The TenantControlPlane takes the tenant's name, and Kamaji's webhook
    // requires a DNS-1035 label (clastix/kamaji
    // internal/webhook/handlers/tcp_name.go: validation.IsDNS1035Label).
    if !name
        .as_str()
        .starts_with(|ch: char| ch.is_ascii_lowercase())
    {
        c.error(
            codes::SPEC_INVALID_NAME,
            raw,
            format!(
                "tenant name \"{name}\" must start with a letter: its Kamaji TenantControlPlane takes this name, and Kamaji accepts only DNS-1035 labels"
            ),
            Some(format!("use a name such as \"t-{name}\"")),
        );
        return None;
    }
    // kustomize-controller labels every object it applies with
    // kustomize.toolkit.fluxcd.io/name: <Kustomization name> (fluxcd
    // kustomize-controller docs/spec/v1/kustomizations.md), and a label
    // value holds at most 63 characters.
    // Its length is known without making it.
    if site.name.as_str().len() + "-tenant-".len() + name.as_str().len() > LABEL_VALUE_MAX {
        let kustomization = format!("{}-tenant-{name}", site.name);
        let site_part = site.name.as_str().len() + "-tenant-".len();
        c.error(
            codes::SPEC_INVALID_NAME,
            raw,
            format!(
                "tenant name \"{name}\" is too long: Flux Kustomization {kustomization:?} has {} characters, and Flux writes it as a label value, which holds at most {LABEL_VALUE_MAX}",
                kustomization.len()
            ),
            Some(format!(
                "the site name and \"-tenant-\" take {site_part} of them: shorten the tenant name to at most {} characters",
                LABEL_VALUE_MAX.saturating_sub(site_part)
            )),
        );
        return None;
    }
    Some(())
}

/// Why a tenant may not have `namespace`: Kubernetes' own namespaces and
/// the platform's, which kmetal must never own.
fn reserved_namespace(namespace: &str, site: &Site, stacks: &Stacks) -> Option<&'static str> {
    if namespace.starts_with("kube-") || namespace == "default" {
        Some("belongs to Kubernetes")
    } else if site.is_platform_namespace(stacks, namespace) {
        Some("belongs to the platform")
    } else {
        None
    }
}

fn strs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

/// A derived value, placed where the value it was derived from was written.
fn relabel(at: &S<String>, value: String) -> S<String> {
    S {
        value,
        referenced: at.referenced,
        defined: at.defined,
    }
}

/// The tenant's own value, else the site's default; either must be one of `valid`.
/// An inherited value that is not valid is reported at the site's default.
fn choose(
    c: &mut FileChecker<'_>,
    own: Option<&S<String>>,
    default: Option<&Defaulted<String>>,
    what: &str,
    tenant: &SourceLocation,
    valid: Vec<&str>,
) -> Option<String> {
    if let Some(own) = own {
        return c.reference(own, what, valid).then(|| own.value.clone());
    }
    let Some(default) = default else {
        c.diagnostics.push(
            Diagnostic::error(
                codes::SPEC_INVALID_VALUE,
                format!("no {what} for this tenant"),
            )
            .at(tenant.clone())
            .help(format!(
                "set it here, or as a default in kmetal.yaml; valid values: {}",
                valid.join(", ")
            )),
        );
        return None;
    };
    if valid.contains(&default.value.as_str()) {
        return Some(default.value.clone());
    }
    let diagnostic = match &default.location {
        Some(site) => site_default_error(&default.value, site.clone(), what, &valid)
            .related(tenant.clone(), "inherited by this tenant"),
        None => {
            let diagnostic = unknown_reference(&default.value, what, &valid);
            Diagnostic {
                message: format!("{} (built-in default)", diagnostic.message),
                help: Some(format!(
                    "set {what} here or in kmetal.yaml's defaults; valid values: {}",
                    valid.join(", ")
                )),
                ..diagnostic
            }
            .at(tenant.clone())
        }
    };
    c.diagnostics.push(diagnostic);
    None
}

fn data_store(c: &mut FileChecker<'_>, value: &S<String>, site: &Site) -> Option<Subdomain> {
    let valid = std::iter::once(super::site::PLATFORM_DATASTORE)
        .chain(site.data_stores.iter().map(|d| d.name.as_str()));
    c.reference(value, "datastore", valid)
        .then(|| Subdomain::parse(&value.value).ok())
        .flatten()
}

/// A certSAN: a DNS name (optionally `*.`) or an IP address.
fn cert_san(c: &mut FileChecker<'_>, value: &S<String>) -> Option<String> {
    match network::parse_ip(&value.value) {
        Ok(ip) => Some(ip.to_string()),
        Err(_) => dns_name(c, value),
    }
}

fn check_workers(c: &mut FileChecker<'_>, raw: &[RawWorker], stack: &Stack) -> Vec<Worker> {
    let mut unique = UniqueNames::new("worker pool name", "in this tenant");
    let mut workers = Vec::new();
    for w in raw {
        let name = c.label(&w.name, "worker pool name");
        let unique_name = name
            .as_ref()
            .is_some_and(|n| unique.insert(n.as_str(), c.location(&w.name), c.diagnostics));
        let class = match &w.class {
            Some(class) => c
                .reference(class, "worker class", strs(&stack.worker_classes))
                .then(|| class.value.clone()),
            None if stack
                .worker_classes
                .iter()
                .any(|w| w == DEFAULT_WORKER_CLASS) =>
            {
                Some(DEFAULT_WORKER_CLASS.to_string())
            }
            None => {
                c.error(
                    codes::SPEC_UNKNOWN_REFERENCE,
                    &w.name,
                    format!(
                        "stack {} has no worker class {DEFAULT_WORKER_CLASS:?}",
                        stack.name
                    ),
                    Some(format!(
                        "set class to one of: {}",
                        stack.worker_classes.join(", ")
                    )),
                );
                None
            }
        };
        let machine_size = match &w.machine_size {
            Some(size) => c
                .reference(size, "machine size", strs(&stack.machine_sizes))
                .then(|| Some(size.value.clone())),
            None => Some(None),
        };
        if let (Some(name), true, Some(class), Some(machine_size)) =
            (name, unique_name, class, machine_size)
        {
            workers.push(Worker {
                name,
                class,
                replicas: w.replicas.as_ref().map(|r| r.value),
                machine_size,
            });
        }
    }
    workers
}
