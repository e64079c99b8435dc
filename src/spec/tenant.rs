//! `RawTenant`s → [`Tenant`]s: names, uniqueness, references to the site and
//! the stack, with the site's defaults applied.

use super::checker::{FileChecker, UniqueNames, site_default_error, unknown_reference};
use super::model::*;
use super::names::{Label, Subdomain};
use super::raw::*;
use super::site::dns_name;
use crate::diagnostic::{Diagnostic, Diagnostics, Reported, SourceLocation, codes};
use crate::network;
use crate::stack::{Stack, Stacks};

const DEFAULT_WORKER_CLASS: &str = "default-worker";

/// A tenant file as read: its path and its raw content.
pub struct TenantSource {
    pub file: String,
    pub raw: RawTenant,
}

/// Check every tenant; tenants with errors are left out (their errors are in `diagnostics`).
pub fn check_tenants(
    sources: &[TenantSource],
    site: &Site,
    stacks: &Stacks,
    diagnostics: &mut Diagnostics,
) -> Vec<Tenant> {
    let mut names = UniqueNames::new("tenant name", "in this repository");
    let mut namespaces = UniqueNames::new("namespace", "by two tenants");
    let mut tenants = Vec::new();
    for source in sources {
        let mut c = FileChecker {
            file: &source.file,
            diagnostics,
        };
        let Ok(tenant) = check_tenant(&mut c, &source.raw, site, stacks) else {
            continue; // reported: the proof is the `Reported` in the `Err`
        };
        let name_ok = names.insert(
            tenant.name.as_str(),
            tenant.name_location.clone(),
            diagnostics,
        );
        let namespace_location = source.raw.namespace.as_ref().map_or_else(
            || tenant.name_location.clone(),
            |n| crate::yaml::location_of(&source.file, n),
        );
        // A duplicate name already explains a duplicate derived namespace.
        let namespace_ok = name_ok
            && namespaces.insert(tenant.namespace.as_str(), namespace_location, diagnostics);
        if name_ok && namespace_ok {
            tenants.push(tenant);
        }
    }
    tenants.sort_by(|a, b| a.name.cmp(&b.name));
    tenants
}

/// One tenant, checked, or the proof that the reasons it is left out were reported.
fn check_tenant(
    c: &mut FileChecker<'_>,
    raw: &RawTenant,
    site: &Site,
    stacks: &Stacks,
) -> Result<Tenant, Reported> {
    let mark = c.diagnostics.mark();
    let checked = checked_tenant(c, raw, site, stacks);
    match checked {
        Some(tenant) if !c.diagnostics.errors_since(mark) => Ok(tenant),
        _ => {
            let at = c.location(&raw.name);
            let what = format!("tenant {:?} was left out", raw.name.value);
            Err(c.diagnostics.reported_since(mark, &at, &what))
        }
    }
}

fn checked_tenant(
    c: &mut FileChecker<'_>,
    raw: &RawTenant,
    site: &Site,
    stacks: &Stacks,
) -> Option<Tenant> {
    c.header(&raw.api_version, &raw.kind, "Tenant");
    let name = c.label(&raw.name, "tenant name")?;
    let name_location = c.location(&raw.name);
    platform_name_rules(c, &raw.name, &name, site)?;
    let namespace = match &raw.namespace {
        Some(ns) => c.label(ns, "namespace"),
        None => c.label(
            &relabel(&raw.name, format!("tenant-{}", raw.name.value)),
            "namespace (tenant-<name>)",
        ),
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
    let d = &site.defaults;
    let stack_name = choose(
        c,
        raw.stack.as_ref(),
        Some(&d.stack),
        "stack",
        &name_location,
        stacks.tenant.keys().map(String::as_str).collect(),
    );
    let stack = stack_name.as_ref().and_then(|s| stacks.tenant.get(s));
    let (kubernetes_version, machine_size) = match stack {
        Some(stack) => (
            choose(
                c,
                raw.kubernetes_version.as_ref(),
                d.kubernetes_version.as_ref(),
                "Kubernetes version",
                &name_location,
                strs(&stack.kubernetes_versions),
            ),
            choose(
                c,
                raw.machine_size.as_ref(),
                Some(&d.machine_size),
                "machine size",
                &name_location,
                strs(&stack.machine_sizes),
            ),
        ),
        None => (None, None),
    };
    let bootstrap_server = match &raw.bootstrap_server {
        Some(b) => c.placed(b, |c| c.host(b, "bootstrap server")),
        None if d.bootstrap_server.is_some() => d.bootstrap_server.clone(),
        None => {
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
        Some(v) => Some(Some((c.ip(v, "controlPlane.vip")?, c.location(v)))),
        None => Some(None),
    };
    let pool = match cp.and_then(|cp| cp.pool.as_ref()) {
        Some(p) => {
            let known = c.reference(p, "pool", site.pools.iter().map(|p| p.name.as_str()));
            known.then(|| {
                site.pools
                    .iter()
                    .find(|q| q.name.as_str() == p.value)
                    .map(|q| (q.name.clone(), c.location(p)))
            })
        }
        None => Some(None),
    };
    let cert_sans = cp
        .map_or(&[][..], |cp| &cp.cert_sans)
        .iter()
        .filter_map(|s| Some((cert_san(c, s)?, c.location(s))))
        .collect::<Vec<_>>();
    let data_store = match cp.and_then(|cp| cp.data_store.as_ref()) {
        Some(ds) => data_store(c, ds, site),
        None => Some(d.data_store.value.clone()),
    };
    let network = raw.network.as_ref();
    let pods = network
        .and_then(|n| n.pods.as_ref())
        .map_or(Some(d.pods.clone()), |p| {
            c.placed(p, |c| c.cidr(p, "pod network"))
        });
    let services = network
        .and_then(|n| n.services.as_ref())
        .map_or(Some(d.services.clone()), |s| {
            c.placed(s, |c| c.cidr(s, "service network"))
        });
    let subnet = match network.and_then(|n| n.subnet.as_ref()) {
        Some(s) => c.subdomain(s, "subnet"),
        None => c.subdomain(
            &relabel(&raw.name, format!("tenant-{}", raw.name.value)),
            "subnet (tenant-<name>)",
        ),
    };
    let workers = stack.map(|stack| check_workers(c, &raw.workers, stack));
    Some(Tenant {
        file: c.file.to_string(),
        name,
        name_location,
        namespace: namespace?,
        stack: crate::spec::names::Label::parse(&stack_name?).ok()?,
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
    })
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
    let kustomization = format!("{}-tenant-{name}", site.name);
    if kustomization.len() > LABEL_VALUE_MAX {
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
    } else if site.platform_namespaces(stacks).contains(namespace) {
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
