//! `RawSite` → [`Site`]: names, references inside the site, built-in defaults.

use crate::json::At;
use std::collections::BTreeMap;
use std::path::{Component, Path};

use super::checker::{FileChecker, HOST_MAX, TEXT_MAX, UniqueNames, site_default_error};
use super::model::*;
use super::names::{Label, Subdomain};
use super::raw::*;
use crate::diagnostic::{Diagnostics, codes};
use crate::network::{AddressBlock, Pool};
use crate::stack::Stacks;

const DEFAULT_STACK: &str = "kubevirt-kubeadm";
const DEFAULT_OUTPUT: &str = "deploy";
/// The DataStore the platform's Kamaji installation provides.
pub const PLATFORM_DATASTORE: &str = "default";
const DURATION_UNITS: &[&str] = &["ms", "s", "m", "h"];
/// Longest `host:port`: a host name, or an IPv6 address in brackets, and a port.
const ENDPOINT_MAX: usize = HOST_MAX + "[]:65535".len();
/// Longest email address (RFC 5321).
const EMAIL_MAX: usize = 254;

/// Check the site. A site with errors is still returned with what is valid
/// (and built-in values where a part failed), so that tenants are checked
/// against it; [`Site::problems`] says what failed, and a run with any error
/// renders nothing. `cut` are the paths of the parts that could not be read
/// at all (each reported while parsing): what a tenant misses may be there.
pub fn check_site(
    file: &str,
    raw: &RawSite,
    cut: &[String],
    stacks: &Stacks,
    diagnostics: &mut Diagnostics,
) -> Site {
    let unread = |section: &str| {
        unread_section(cut, section)
            .then(|| diagnostics.error_in(file))
            .flatten()
    };
    let (unread_defaults, unread_pools, unread_stores) = (
        unread("defaults")
            .or(unread("bootstrapServer"))
            .or(unread("stack")),
        unread("metallb"),
        unread("dataStores"),
    );
    let mut c = FileChecker { file, diagnostics };
    c.header(&raw.api_version, &raw.kind, "Site");
    let name_checked = c
        .subdomain(&raw.name, "site name")
        .filter(|name| flux_label_fits(&mut c, &raw.name, name));
    let output = match &raw.output {
        Some(output) => relative_dir(&mut c, output),
        None => Some(DEFAULT_OUTPUT.to_string()),
    };
    let mut problems = SiteProblems {
        unread: unread_defaults,
        ..SiteProblems::default()
    };
    let mark = c.diagnostics.mark();
    let data_stores = check_data_stores(&mut c, &raw.data_stores, &mut problems);
    problems.data_stores = c.diagnostics.reported_since_mark(mark).or(unread_stores);
    let metallb = raw.metallb.as_ref();
    let raw_pools = metallb.map(|m| m.pools.as_slice()).unwrap_or_default();
    let mark = c.diagnostics.mark();
    let pools = check_pools(&mut c, raw_pools, &mut problems);
    problems.pools = c.diagnostics.reported_since_mark(mark).or(unread_pools);
    let boot_images = check_boot_images(&mut c, raw, stacks);
    let addons = check_addons(&mut c, &raw.addons, &mut problems);
    let defaults = check_defaults(
        &mut c,
        raw,
        stacks,
        (&data_stores, &pools, &boot_images),
        &mut problems,
    );
    let metallb_namespace = match metallb.and_then(|m| m.namespace.as_ref()) {
        Some(ns) => c.label(ns, "MetalLB namespace"),
        None => Some(label("kmetal-metallb")),
    };
    let cert_manager = raw.cert_manager.as_ref();
    let issuers = check_issuers(
        &mut c,
        cert_manager
            .map(|m| m.cluster_issuers.as_slice())
            .unwrap_or_default(),
    );
    let declared_issuers: Vec<&str> = cert_manager
        .map(|m| {
            m.cluster_issuers
                .iter()
                .map(|i| i.name.value.as_str())
                .collect()
        })
        .unwrap_or_default();
    let certificates = check_certificates(
        &mut c,
        cert_manager
            .map(|m| m.certificates.as_slice())
            .unwrap_or_default(),
        Declared {
            checked: &issuers,
            declared: &declared_issuers,
        },
    );
    let flux = check_flux(
        &mut c,
        &raw.flux,
        output.as_deref().unwrap_or(DEFAULT_OUTPUT),
    );
    let emit_cluster_classes = match &raw.cluster_classes {
        Some(owner) => {
            c.reference(owner, "clusterClasses owner", ["kmetal", "platform"]);
            owner.value != "platform"
        }
        None => true,
    };
    problems.name = name_checked.is_none();
    problems.any = c.diagnostics.error_in(file);
    Site {
        file: file.to_string(),
        name: name_checked.unwrap_or_else(|| subdomain("site")),
        output: output.unwrap_or_else(|| DEFAULT_OUTPUT.to_string()),
        defaults,
        metallb_namespace: metallb_namespace.unwrap_or_else(|| label("kmetal-metallb")),
        pools,
        data_stores,
        issuers,
        certificates,
        flux: flux.unwrap_or_else(|| Flux {
            namespace: label("kmetal-flux"),
            source_ref: SourceRef {
                kind: "GitRepository".into(),
                name: subdomain("flux-system"),
                namespace: None,
            },
            path: format!("./{DEFAULT_OUTPUT}"),
            interval: "10m".into(),
            prune: true,
            timeout: "10m".into(),
            retry_interval: "2m".into(),
            shards: 0,
            per_tenant_artifacts: false,
        }),
        emit_cluster_classes,
        boot_images,
        addons,
        problems,
    }
}

/// The site's add-ons; one that fails a check is left out, with its error.
fn check_addons(
    c: &mut FileChecker<'_>,
    raw: &[RawAddon],
    problems: &mut SiteProblems,
) -> Vec<Addon> {
    let mut names = UniqueNames::new("add-on", "the site");
    let mut addons = Vec::new();
    for addon in raw {
        let before = c.diagnostics.mark();
        let name = c.label(&addon.name, "add-on name");
        if let Some(name) = &name {
            let at = c.location(&addon.name);
            names.insert(name.as_str(), at, c.diagnostics);
        }
        let url = &addon.repository;
        let source = if url.value.chars().any(char::is_whitespace) || url.value.len() > TEXT_MAX {
            None
        } else if let Some(rest) = url.value.strip_prefix("oci://") {
            (!rest.is_empty()).then(|| AddonSource::Oci(url.value.clone()))
        } else if let Some(rest) = url.value.strip_prefix("https://") {
            (!rest.is_empty()).then(|| AddonSource::Helm(url.value.clone()))
        } else {
            None
        };
        if source.is_none() {
            c.error(
                codes::SPEC_INVALID_VALUE,
                url,
                format!("add-on repository {:?} is neither an https:// Helm repository nor an oci:// registry path", url.value),
                Some("write e.g. https://helm.cilium.io or oci://ghcr.io/org/charts".into()),
            );
        }
        let chart_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 253
                && s.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-_.".contains(ch))
        };
        if !chart_ok(&addon.chart.value) {
            c.error(
                codes::SPEC_INVALID_VALUE,
                &addon.chart,
                format!(
                    "chart {:?} is not a chart name (lowercase letters, digits, '-', '_', '.')",
                    addon.chart.value
                ),
                None,
            );
        }
        let version = &addon.version.value;
        if version.is_empty()
            || version.len() > 128
            || !version
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "+-._".contains(ch))
        {
            c.error(
                codes::SPEC_INVALID_VALUE,
                &addon.version,
                format!("chart version {version:?} is not an exact version, like 1.18.4"),
                None,
            );
        }
        let target_namespace = c.label(&addon.target_namespace, "add-on target namespace");
        let values = match &addon.values {
            None => Some(serde_json::Map::new()),
            Some(serde_json::Value::Object(map)) => Some(map.clone()),
            Some(_) => {
                c.error(
                    codes::SPEC_INVALID_VALUE,
                    &addon.name,
                    format!("add-on {}: values must be a mapping", addon.name.value),
                    None,
                );
                None
            }
        };
        let mut tenant_values = Vec::new();
        for (path, fact) in &addon.tenant_values {
            match TenantFact::parse(&fact.value) {
                Some(f) => tenant_values.push((path.split('.').map(str::to_string).collect(), f)),
                None => {
                    c.reference(fact, "tenant value", TenantFact::NAMES);
                }
            }
        }
        let schema = match &addon.values_schema {
            None => Some(None),
            Some(schema) => match jsonschema::draft7::new(schema) {
                Ok(v) => Some(Some(ValuesSchema(std::sync::Arc::new(v)))),
                Err(e) => {
                    c.error(
                        codes::SPEC_INVALID_VALUE,
                        &addon.name,
                        format!(
                            "add-on {}: valuesSchema is not a JSON Schema: {e}",
                            addon.name.value
                        ),
                        None,
                    );
                    None
                }
            },
        };
        if let Some(reported) = c.diagnostics.reported_since_mark(before) {
            problems
                .left_out_addons
                .insert(addon.name.value.clone(), reported);
            continue;
        }
        let (Some(name), Some(source), Some(target_namespace), Some(values), Some(schema)) =
            (name, source, target_namespace, values, schema)
        else {
            continue;
        };
        addons.push(Addon {
            name,
            source,
            chart: addon.chart.value.clone(),
            version: version.clone(),
            target_namespace,
            values,
            tenant_values,
            schema,
        });
    }
    addons
}

/// `bootImages`: each a version some stack lists, each a valid image reference.
fn check_boot_images(
    c: &mut FileChecker<'_>,
    raw: &RawSite,
    stacks: &Stacks,
) -> BTreeMap<String, String> {
    let mut images = BTreeMap::new();
    for (version, image) in &raw.boot_images {
        let listed = (stacks.tenant.values())
            .any(|s| s.boot_images.is_some() && s.kubernetes_versions.contains(version));
        if !listed {
            c.error(
                codes::SPEC_UNKNOWN_REFERENCE,
                image,
                format!("bootImages names {version}, which no stack with boot images lists"),
                Some("name a version of the stack's kubernetesVersions".into()),
            );
        } else if let Err(why) = crate::stack::check_image(&image.value) {
            c.error(
                codes::SPEC_INVALID_VALUE,
                image,
                format!("bootImages {version}: {why}"),
                None,
            );
        } else {
            images.insert(version.clone(), image.value.clone());
        }
    }
    images
}

/// Whether a part cut out while parsing may have held `section`: one under
/// it, or a key that is no key of the site at all (a misspelt section).
fn unread_section(cut: &[String], section: &str) -> bool {
    let schema = crate::schema::of(crate::schema::InputKind::Site);
    let known = |key: &str| schema.at(&format!("/properties/{key}")).is_some();
    cut.iter().any(|path| {
        let first = path.split(['.', '[']).next().unwrap_or_default();
        first == section || !known(first)
    })
}

fn subdomain(s: &str) -> Subdomain {
    Subdomain::parse(s).expect("built-in names are valid subdomains")
}

/// The longest label value Kubernetes accepts.
const LABEL_VALUE_MAX: usize = 63;

/// Flux writes every Kustomization's name as a label value on the objects it
/// applies (`kustomize.toolkit.fluxcd.io/name`), so `<site>-platform` must
/// fit in one; the tenant check holds `<site>-tenant-<name>` to the same.
fn flux_label_fits(c: &mut FileChecker<'_>, raw: &S<String>, name: &Subdomain) -> bool {
    let platform = crate::layout::longest_platform_kustomization(name.as_str());
    if platform.len() <= LABEL_VALUE_MAX {
        return true;
    }
    c.error(
        codes::SPEC_INVALID_NAME,
        raw,
        format!(
            "site name is too long: Flux Kustomization {platform:?} has {} characters, and Flux writes it as a label value, which holds at most {LABEL_VALUE_MAX}",
            platform.len()
        ),
        Some(format!(
            "shorten the site name to at most {} characters; tenant Kustomizations are named <site>-tenant-<name>, so a short one leaves room for tenant names",
            LABEL_VALUE_MAX - (platform.len() - name.as_str().len())
        )),
    );
    false
}

fn label(s: &str) -> Label {
    Label::parse(s).expect("built-in defaults are valid labels")
}

/// A directory below the repository root: relative, no `..`.
fn relative_dir(c: &mut FileChecker<'_>, value: &S<String>) -> Option<String> {
    c.text(value, "output", TEXT_MAX)?;
    let path = Path::new(&value.value);
    let normal =
        !value.value.is_empty() && path.components().all(|p| matches!(p, Component::Normal(_)));
    if !normal {
        c.error(
            codes::SPEC_INVALID_VALUE,
            value,
            format!(
                "output {:?} must be a directory below kmetal.yaml",
                value.value
            ),
            Some(
                "write a relative path without `..`, such as `deploy`; use --out for anything else"
                    .into(),
            ),
        );
        return None;
    }
    Some(value.value.trim_end_matches('/').to_string())
}

fn defaulted<T: Clone>(c: &FileChecker<'_>, value: Option<&S<T>>, builtin: T) -> Defaulted<T> {
    match value {
        Some(v) => Defaulted {
            value: v.value.clone(),
            location: Some(c.location(v)),
        },
        None => Defaulted {
            value: builtin,
            location: None,
        },
    }
}

/// The checked entries of a list, and the names of every entry declared,
/// valid or not. A reference to a declared entry that failed its own checks
/// was reported there: it is not reported again, and the referring entry is
/// left out, so that one mistake gives one diagnostic.
struct Declared<'a, T> {
    checked: &'a [T],
    declared: &'a [&'a str],
}

impl<T> Declared<'_, T> {
    /// The checked entry `value` names. `None` when it names none: then either
    /// a diagnostic is pushed here (an unknown name), or the entry of that name
    /// failed its own checks and is reported there.
    fn resolve<'t>(
        &'t self,
        c: &mut FileChecker<'_>,
        value: &S<String>,
        what: &str,
        name_of: impl Fn(&T) -> &str,
        builtin: &[&'t str],
    ) -> Option<Resolved<'t, T>> {
        if let Some(b) = builtin.iter().find(|b| **b == value.value) {
            return Some(Resolved::Builtin(b));
        }
        if let Some(entry) = self.checked.iter().find(|e| name_of(e) == value.value) {
            return Some(Resolved::Entry(entry));
        }
        let valid = builtin.iter().copied().chain(self.declared.iter().copied());
        // A declared name is known: its own entry carries the error.
        c.reference(value, what, valid);
        None
    }
}

enum Resolved<'t, T> {
    Builtin(&'t str),
    Entry(&'t T),
}

fn check_defaults(
    c: &mut FileChecker<'_>,
    raw: &RawSite,
    stacks: &Stacks,
    (data_stores, pools, boot_images): (&[DataStore], &[Pool], &BTreeMap<String, String>),
    problems: &mut SiteProblems,
) -> Defaults {
    let d = raw.defaults.as_ref();
    // Each default is checked on its own; one that fails is recorded as
    // broken, with the proof, so that tenants inheriting it report nothing more.
    let mut broken = |c: &mut FileChecker<'_>, what: &'static str, mark| {
        if let Some(reported) = c.diagnostics.reported_since_mark(mark) {
            problems.defaults.insert(what, reported);
        }
    };
    let mark = c.diagnostics.mark();
    let stack = defaulted(c, raw.stack.as_ref(), DEFAULT_STACK.to_string());
    if let Some(value) = &raw.stack {
        c.reference(value, "stack", stacks.tenant.keys().map(String::as_str));
    }
    broken(c, "stack", mark);
    if let Some(default_stack) = stacks.tenant.get(&stack.value) {
        let checks = [
            (
                d.and_then(|d| d.kubernetes_version.as_ref()),
                "Kubernetes version",
                "kubernetesVersion",
                &default_stack.kubernetes_versions,
            ),
            (
                d.and_then(|d| d.machine_size.as_ref()),
                "machine size",
                "machineSize",
                &default_stack.machine_sizes,
            ),
        ];
        for (value, what, key, valid) in checks {
            let Some(value) = value else { continue };
            let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
            if !valid.contains(&value.value.as_str()) {
                let mark = c.diagnostics.mark();
                c.diagnostics.push(site_default_error(
                    &value.value,
                    c.location(value),
                    what,
                    &valid,
                ));
                broken(c, key, mark);
            }
        }
        // The default version's workers must have an image to boot.
        let version = d.and_then(|d| d.kubernetes_version.as_ref());
        if let Some(version) =
            version.filter(|v| default_stack.kubernetes_versions.contains(&v.value))
            && let Some(None) = default_stack.boot_image(boot_images, &version.value)
        {
            let (message, help) = crate::stack::no_boot_image(default_stack, &version.value);
            let mark = c.diagnostics.mark();
            c.error(codes::SPEC_UNKNOWN_REFERENCE, version, message, Some(help));
            broken(c, "kubernetesVersion", mark);
        }
    }
    let network = d.and_then(|d| d.network.as_ref());
    let builtin = |cidr: &str| Defaulted {
        value: cidr.parse().expect("valid built-in CIDR"),
        location: None,
    };
    let mark = c.diagnostics.mark();
    let pods = match network.and_then(|n| n.pods.as_ref()) {
        Some(p) => c.placed(p, |c| c.cidr(p, "default pod network")),
        None => None,
    };
    broken(c, "pods", mark);
    let mark = c.diagnostics.mark();
    let services = match network.and_then(|n| n.services.as_ref()) {
        Some(s) => c.placed(s, |c| c.cidr(s, "default service network")),
        None => None,
    };
    broken(c, "services", mark);
    let mark = c.diagnostics.mark();
    let bootstrap_server = match &raw.bootstrap_server {
        Some(b) => c.placed(b, |c| c.host(b, "bootstrap server")),
        None => None,
    };
    broken(c, "bootstrapServer", mark);
    let replicas = d.and_then(|d| d.control_plane_replicas.as_ref());
    if let Some(r) = replicas.filter(|r| r.value == 0) {
        c.error(
            codes::SPEC_INVALID_VALUE,
            r,
            "controlPlaneReplicas must be at least 1".into(),
            None,
        );
    }
    let mark = c.diagnostics.mark();
    let data_store = default_data_store(c, raw, data_stores);
    broken(c, "dataStore", mark);
    let mark = c.diagnostics.mark();
    let pool = default_pool(c, raw, pools);
    broken(c, "pool", mark);
    if raw
        .defaults
        .as_ref()
        .and_then(|d| d.pool.as_ref())
        .is_none()
        && let Some(reported) = problems.pools
    {
        // The first pool may be one that was left out.
        problems.defaults.insert("pool", reported);
    }
    Defaults {
        stack,
        kubernetes_version: d
            .and_then(|d| d.kubernetes_version.as_ref())
            .map(|v| defaulted(c, Some(v), String::new())),
        machine_size: defaulted(c, d.and_then(|d| d.machine_size.as_ref()), "small".into()),
        data_store: data_store.unwrap_or_else(|| Defaulted {
            value: subdomain(PLATFORM_DATASTORE),
            location: None,
        }),
        pool: pool.flatten(),
        bootstrap_server,
        replicas: replicas.filter(|r| r.value > 0).map_or(2, |r| r.value),
        pods: pods.unwrap_or_else(|| builtin("10.200.0.0/16")),
        services: services.unwrap_or_else(|| builtin("10.201.0.0/16")),
    }
}

/// `defaults.dataStore`, checked here whether or not a tenant inherits it:
/// `default` (the platform's) or one of the site's datastores.
fn default_data_store(
    c: &mut FileChecker<'_>,
    raw: &RawSite,
    data_stores: &[DataStore],
) -> Option<Defaulted<Subdomain>> {
    let Some(value) = raw.defaults.as_ref().and_then(|d| d.data_store.as_ref()) else {
        return Some(Defaulted {
            value: Subdomain::parse(PLATFORM_DATASTORE).ok()?,
            location: None,
        });
    };
    let declared: Vec<&str> = raw
        .data_stores
        .iter()
        .map(|d| d.name.value.as_str())
        .collect();
    let stores = Declared {
        checked: data_stores,
        declared: &declared,
    };
    let name = match stores.resolve(
        c,
        value,
        "datastore (defaults.dataStore)",
        |d: &DataStore| d.name.as_str(),
        &[PLATFORM_DATASTORE],
    )? {
        Resolved::Builtin(name) => Subdomain::parse(name).ok()?,
        Resolved::Entry(store) => store.name.clone(),
    };
    Some(Defaulted {
        value: name,
        location: Some(c.location(value)),
    })
}

/// `defaults.pool`, else the first pool: where VIPs come from for tenants
/// that name neither an address nor a pool. `Some(None)`: the site has no pool.
fn default_pool(
    c: &mut FileChecker<'_>,
    raw: &RawSite,
    pools: &[Pool],
) -> Option<Option<Defaulted<Label>>> {
    let Some(value) = raw.defaults.as_ref().and_then(|d| d.pool.as_ref()) else {
        return Some(pools.first().map(|p| Defaulted {
            value: p.name.clone(),
            location: Some(p.location.clone()),
        }));
    };
    let raw_pools = raw
        .metallb
        .as_ref()
        .map(|m| m.pools.as_slice())
        .unwrap_or_default();
    let declared: Vec<&str> = raw_pools.iter().map(|p| p.name.value.as_str()).collect();
    let pools = Declared {
        checked: pools,
        declared: &declared,
    };
    match pools.resolve(
        c,
        value,
        "pool (defaults.pool)",
        |p: &Pool| p.name.as_str(),
        &[],
    )? {
        Resolved::Entry(pool) => Some(Some(Defaulted {
            value: pool.name.clone(),
            location: Some(c.location(value)),
        })),
        Resolved::Builtin(_) => None,
    }
}

fn check_pools(c: &mut FileChecker<'_>, raw: &[RawPool], problems: &mut SiteProblems) -> Vec<Pool> {
    let mut unique = UniqueNames::new("pool", "in this site");
    let mut pools = Vec::new();
    for p in raw {
        let mark = c.diagnostics.mark();
        let before = pools.len();
        let name = c.label(&p.name, "pool name");
        let unique_name = name
            .as_ref()
            .is_some_and(|n| unique.insert(n.as_str(), c.location(&p.name), c.diagnostics));
        let mut blocks = Vec::new();
        for entry in &p.addresses.value {
            match AddressBlock::parse(&entry.value) {
                Ok(block) => blocks.push((block, c.location(entry))),
                Err(e) => c.error(
                    codes::NETWORK_INVALID_ADDRESS,
                    entry,
                    format!("pool address: {}", e.message),
                    e.help,
                ),
            }
        }
        if p.addresses.value.is_empty() {
            c.error(
                codes::SPEC_INVALID_VALUE,
                &p.addresses,
                "a pool needs at least one address range or CIDR".into(),
                None,
            );
        }
        if let Some(auto) = p.auto_assign.as_ref().filter(|a| a.value) {
            c.error(
                codes::SPEC_INVALID_VALUE,
                auto,
                "autoAssign: true would let MetalLB give this pool's lowest free address, the one kmetal allocates next, to any LoadBalancer Service that asks for no address".into(),
                Some("remove the line: kmetal writes autoAssign: false. Give other Services (an ingress controller, say) a pool of their own outside kmetal".into()),
            );
        }
        let all_valid = blocks.len() == p.addresses.value.len() && !blocks.is_empty();
        if let (Some(name), true, true) = (name, unique_name, all_valid) {
            pools.push(Pool {
                name,
                location: c.location(&p.name),
                addresses: p.addresses.value.iter().map(|a| a.value.clone()).collect(),
                blocks,
                l2_advertisement: p.l2_advertisement.unwrap_or(true),
            });
        }
        if pools.len() == before
            && let Some(reported) = c.diagnostics.reported_since_mark(mark)
        {
            problems
                .left_out_pools
                .insert(p.name.value.clone(), reported);
        }
    }
    pools
}

fn check_data_stores(
    c: &mut FileChecker<'_>,
    raw: &[RawDataStore],
    problems: &mut SiteProblems,
) -> Vec<DataStore> {
    let mut unique = UniqueNames::new("datastore", "in this site");
    let mut out = Vec::new();
    for d in raw {
        let mark = c.diagnostics.mark();
        let mut left_out = |c: &mut FileChecker<'_>| {
            if let Some(reported) = c.diagnostics.reported_since_mark(mark) {
                problems
                    .left_out_data_stores
                    .insert(d.name.value.clone(), reported);
            }
        };
        let name = c.subdomain(&d.name, "datastore name");
        if d.name.value == PLATFORM_DATASTORE {
            c.error(
                codes::SPEC_DUPLICATE_NAME,
                &d.name,
                "the datastore \"default\" is provided by the platform chart".into(),
                Some("choose another name for a dedicated datastore".into()),
            );
        }
        let endpoints: Vec<String> = d
            .endpoints
            .value
            .iter()
            .filter_map(|e| endpoint(c, e))
            .collect();
        if d.endpoints.value.is_empty() {
            c.error(
                codes::SPEC_INVALID_VALUE,
                &d.endpoints,
                "a datastore needs at least one endpoint".into(),
                None,
            );
        }
        let basic_auth = d.basic_auth.as_ref().map(|b| {
            let keys = b.value.keys.as_ref();
            let username_key = secret_key(c, keys.and_then(|k| k.username.as_ref()), "username");
            let password_key = secret_key(c, keys.and_then(|k| k.password.as_ref()), "password");
            Some(BasicAuth {
                secret: c.subdomain(&b.value.secret, "secret name")?,
                namespace: c.label(&b.value.namespace, "secret namespace")?,
                username_key: username_key?,
                password_key: password_key?,
            })
        });
        let etcd = d.driver.value == Driver::Etcd;
        let tls = d.tls.as_ref().map(|t| {
            let ca = tls_secret(c, &t.value.ca, etcd);
            let client = match &t.value.client {
                Some(client) => Some(tls_secret(c, client, true)?),
                None => None,
            };
            Some(Tls { ca: ca?, client })
        });
        match (d.driver.value, &d.tls, &d.basic_auth) {
            (Driver::Etcd, Some(t), _) if t.value.client.is_none() => c.error(
                codes::SPEC_INVALID_VALUE,
                t,
                "an etcd datastore needs tls.client (a client certificate and key)".into(),
                Some("add `client: { secret: <name>, namespace: <ns> }` under tls".into()),
            ),
            (Driver::Etcd, None, _) => c.error(
                codes::SPEC_INVALID_VALUE,
                &d.driver,
                "an etcd datastore needs tls with ca and client".into(),
                Some("add `tls: { ca: {...}, client: {...} }`; Kamaji's DataStore CEL rules require both".into()),
            ),
            (_, None, None) => c.error(
                codes::SPEC_INVALID_VALUE,
                &d.driver,
                format!("a {:?} datastore needs tls or basicAuth", d.driver.value),
                Some("add `basicAuth: { secret: <name>, namespace: <ns> }` or `tls: {...}`".into()),
            ),
            _ => {}
        }
        let (Some(name), Some(basic_auth), Some(tls)) =
            (name, present_and_valid(basic_auth), present_and_valid(tls))
        else {
            left_out(c);
            continue;
        };
        if endpoints.len() == d.endpoints.value.len()
            && unique.insert(name.as_str(), c.location(&d.name), c.diagnostics)
        {
            out.push(DataStore {
                name,
                driver: d.driver.value,
                endpoints,
                basic_auth,
                tls,
            });
        } else {
            left_out(c);
        }
    }
    out
}

/// An optional part that was checked: `None` if it was written and failed,
/// `Some(None)` if it was not written.
fn present_and_valid<T>(part: Option<Option<T>>) -> Option<Option<T>> {
    match part {
        None => Some(None),
        Some(checked) => checked.map(Some),
    }
}

/// A bare `host:port` endpoint, as Kamaji wants it (no scheme).
fn endpoint(c: &mut FileChecker<'_>, value: &S<String>) -> Option<String> {
    let text = &c.text(value, "datastore endpoint", ENDPOINT_MAX)?;
    if !is_endpoint(text) {
        c.error(
            codes::SPEC_INVALID_VALUE,
            value,
            format!("datastore endpoint {text:?} is not host:port"),
            Some(
                "write a bare host and port without a scheme, e.g. pg-rw.kmetal-cnpg.svc:5432"
                    .into(),
            ),
        );
        return None;
    }
    Some(text.clone())
}

/// `host:port`, the host a DNS name, an IPv4 address or a bracketed IPv6 address.
fn is_endpoint(text: &str) -> bool {
    text.rsplit_once(':').is_some_and(|(host, port)| {
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => host.parse::<std::net::Ipv4Addr>().is_ok() || Subdomain::parse(host).is_ok(),
        };
        host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

fn tls_secret(c: &mut FileChecker<'_>, raw: &RawTlsSecret, with_key: bool) -> Option<TlsSecret> {
    let keys = raw.keys.as_ref();
    let certificate_key = secret_key(c, keys.and_then(|k| k.certificate.as_ref()), "tls.crt");
    let private_key = keys.and_then(|k| k.private_key.as_ref());
    let private_key_key = match private_key {
        Some(_) => Some(secret_key(c, private_key, "tls.key")?),
        None => with_key.then(|| "tls.key".to_string()),
    };
    Some(TlsSecret {
        secret: c.subdomain(&raw.secret, "secret name")?,
        namespace: c.label(&raw.namespace, "secret namespace")?,
        certificate_key: certificate_key?,
        private_key_key,
    })
}

/// A key of a Secret, as Kubernetes allows it: 1–253 of `[-._a-zA-Z0-9]`,
/// not `.` or `..`; `default` when none is written.
fn secret_key(c: &mut FileChecker<'_>, value: Option<&S<String>>, default: &str) -> Option<String> {
    let Some(value) = value else {
        return Some(default.to_string());
    };
    let key = c.text(value, "Secret key", HOST_MAX)?;
    let allowed = |ch: char| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '.' | '_');
    if key.is_empty() || key == "." || key.starts_with("..") || !key.chars().all(allowed) {
        c.error(
            codes::SPEC_INVALID_VALUE,
            value,
            format!("{key:?} is not a Secret key"),
            Some(format!(
                "write a key of the Secret: letters, digits, '-', '_' and '.', such as {default}"
            )),
        );
        return None;
    }
    Some(key)
}

fn check_issuers(c: &mut FileChecker<'_>, raw: &[RawIssuer]) -> Vec<Issuer> {
    let mut unique = UniqueNames::new("ClusterIssuer", "in this site");
    let mut out = Vec::new();
    for i in raw {
        let name = c.subdomain(&i.name, "ClusterIssuer name");
        let server = &i.acme.server;
        if c.text(server, "ACME server", TEXT_MAX).is_none() {
            continue;
        }
        if !server.value.starts_with("https://")
            || server.value.chars().any(|ch| ch.is_whitespace())
        {
            c.error(
                codes::SPEC_INVALID_VALUE,
                server,
                format!("ACME server {:?} is not an https:// URL", server.value),
                Some("e.g. https://acme-v02.api.letsencrypt.org/directory".into()),
            );
            continue;
        }
        if let Some(email) = &i.acme.email {
            if c.text(email, "ACME email", EMAIL_MAX).is_none() {
                continue;
            }
            let ok = email
                .value
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
            if !ok
                || email
                    .value
                    .chars()
                    .any(|ch| ch.is_whitespace() || ch.is_control())
            {
                c.error(
                    codes::SPEC_INVALID_VALUE,
                    email,
                    format!("{:?} is not an email address", email.value),
                    Some("write an address such as admin@example.com".into()),
                );
                continue;
            }
        }
        let class = c.subdomain(&i.acme.http01_ingress_class, "ingress class");
        let (Some(name), Some(class)) = (name, class) else {
            continue;
        };
        if unique.insert(name.as_str(), c.location(&i.name), c.diagnostics) {
            let account_key_secret = Subdomain::parse(&format!("{name}-account-key"));
            let Ok(account_key_secret) = account_key_secret else {
                c.error(
                    codes::SPEC_INVALID_NAME,
                    &i.name,
                    "the issuer name is too long to derive <name>-account-key".into(),
                    None,
                );
                continue;
            };
            out.push(Issuer {
                name,
                email: i.acme.email.as_ref().map(|e| e.value.clone()),
                server: server.value.clone(),
                ingress_class_name: class.to_string(),
                account_key_secret,
            });
        }
    }
    out
}

fn check_certificates(
    c: &mut FileChecker<'_>,
    raw: &[RawCertificate],
    issuers: Declared<'_, Issuer>,
) -> Vec<Certificate> {
    let mut unique = UniqueNames::new("Certificate", "in one namespace");
    let mut out = Vec::new();
    for cert in raw {
        let name = c.subdomain(&cert.name, "Certificate name");
        let namespace = c.label(&cert.namespace, "Certificate namespace");
        let issuer = issuers
            .resolve(
                c,
                &cert.issuer,
                "ClusterIssuer",
                |i: &Issuer| i.name.as_str(),
                &[],
            )
            .and_then(|r| match r {
                Resolved::Entry(issuer) => Some(issuer.name.clone()),
                Resolved::Builtin(_) => None,
            });
        let secret_name = match &cert.secret_name {
            Some(s) => c.subdomain(s, "secretName"),
            None => name.clone(),
        };
        let dns_names: Vec<String> = cert
            .dns_names
            .value
            .iter()
            .filter_map(|d| dns_name(c, d))
            .collect();
        if cert.dns_names.value.is_empty() {
            c.error(
                codes::SPEC_INVALID_VALUE,
                &cert.dns_names,
                "a Certificate needs at least one DNS name".into(),
                None,
            );
        }
        let (Some(name), Some(namespace), Some(secret_name), Some(issuer), true) = (
            name,
            namespace,
            secret_name,
            issuer,
            dns_names.len() == cert.dns_names.value.len(),
        ) else {
            continue;
        };
        let key = format!("{namespace}/{name}");
        if unique.insert(&key, c.location(&cert.name), c.diagnostics) {
            out.push(Certificate {
                name,
                namespace,
                dns_names,
                issuer,
                secret_name,
            });
        }
    }
    out
}

/// A DNS name, optionally with a leading `*.` wildcard.
pub fn dns_name(c: &mut FileChecker<'_>, value: &S<String>) -> Option<String> {
    c.text(value, "DNS name", HOST_MAX + "*.".len())?;
    let bare = value.value.strip_prefix("*.").unwrap_or(&value.value);
    match Subdomain::parse(bare) {
        Ok(_) => Some(value.value.clone()),
        Err(problem) => {
            c.error(
                codes::SPEC_INVALID_VALUE,
                value,
                format!("DNS name: {problem}"),
                Some(
                    "write a lowercase name such as api.example.com, optionally starting with `*.`"
                        .into(),
                ),
            );
            None
        }
    }
}

fn check_flux(c: &mut FileChecker<'_>, raw: &RawFlux, output: &str) -> Option<Flux> {
    let namespace = match &raw.namespace {
        Some(ns) => c.label(ns, "Flux namespace"),
        None => Some(label("kmetal-flux")),
    };
    let kinds = [
        "GitRepository",
        "OCIRepository",
        "Bucket",
        "ExternalArtifact",
    ];
    let kind_ok = c.reference(&raw.source_ref.kind, "Flux source kind", kinds);
    let name = c.subdomain(&raw.source_ref.name, "Flux source name");
    let source_namespace = match &raw.source_ref.namespace {
        Some(ns) => Some(c.label(ns, "Flux source namespace")?),
        None => None,
    };
    let path = match &raw.path {
        Some(p) => {
            c.text(p, "Flux path", TEXT_MAX)?;
            let bad = p.value.is_empty() || p.value.split('/').any(|seg| seg == "..");
            if bad {
                c.error(
                    codes::SPEC_INVALID_VALUE,
                    p,
                    format!("Flux path {:?} is not a path in the repository", p.value),
                    Some("write a path such as ./deploy".into()),
                );
                return None;
            }
            p.value.trim_end_matches('/').to_string()
        }
        None => format!("./{output}"),
    };
    let mut duration = |value: &Option<S<String>>, what: &str, default: &str| match value {
        Some(i) if !is_duration(&i.value) => {
            c.error(
                codes::SPEC_INVALID_VALUE,
                i,
                format!("{what} {:?} is not a duration", i.value),
                Some("write e.g. 10m, 1h or 30s".into()),
            );
            None
        }
        Some(i) => Some(i.value.clone()),
        None => Some(default.to_string()),
    };
    let interval = duration(&raw.interval, "interval", "10m");
    let timeout = duration(&raw.timeout, "timeout", "10m");
    let retry_interval = duration(&raw.retry_interval, "retryInterval", "2m");
    let shards = match &raw.shards {
        Some(n) if n.value == 0 || n.value > MAX_SHARDS => {
            c.error(
                codes::SPEC_INVALID_VALUE,
                n,
                format!("flux.shards must be 1 to {MAX_SHARDS}, not {}", n.value),
                Some("leave it out for no shards".into()),
            );
            None
        }
        Some(n) => Some(n.value),
        None => Some(0),
    };
    let per_tenant_artifacts = match &raw.artifacts {
        Some(a) => c
            .reference(a, "flux.artifacts setting", ["repository", "per-tenant"])
            .then(|| a.value == "per-tenant"),
        None => Some(false),
    };
    kind_ok.then_some(())?;
    Some(Flux {
        namespace: namespace?,
        source_ref: SourceRef {
            kind: raw.source_ref.kind.value.clone(),
            name: name?,
            namespace: source_namespace,
        },
        path: if path.is_empty() { ".".into() } else { path },
        interval: interval?,
        prune: raw.prune.unwrap_or(true),
        timeout: timeout?,
        retry_interval: retry_interval?,
        shards: shards?,
        per_tenant_artifacts: per_tenant_artifacts?,
    })
}

/// More shards than this is a typo: Flux's own guidance shards at tens of
/// thousands of Kustomizations, about 1,000 per controller.
const MAX_SHARDS: u32 = 100;

/// A Go duration as Flux accepts it: `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`.
fn is_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|ch: char| !ch.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let n = fraction
                .find(|ch: char| !ch.is_ascii_digit())
                .unwrap_or(fraction.len());
            if n == 0 {
                return false;
            }
            rest = &fraction[n..];
        }
        let Some(unit) = DURATION_UNITS.iter().find(|u| rest.starts_with(**u)) else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::is_duration;

    #[test]
    fn endpoints() {
        for ok in [
            "pg-rw.kmetal-cnpg.svc:5432",
            "10.0.0.1:2379",
            "[fd00::1]:2379",
            "etcd:1",
        ] {
            assert!(super::is_endpoint(ok), "{ok}");
        }
        for bad in [
            "/0:1",
            "pg:0",
            "pg",
            "https://pg:5432",
            "pg:5432x",
            "[fd00::1:2379",
            "Pg:5432",
            ":5432",
            "a b:1",
        ] {
            assert!(!super::is_endpoint(bad), "{bad}");
        }
    }

    #[test]
    fn durations() {
        for ok in ["10m", "1h30m", "1.5h", "500ms", "30s"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "10", "m", "1.h", "10d", "10m ", "-1m"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }
}
