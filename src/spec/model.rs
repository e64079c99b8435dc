//! The checked site and tenants: every name parsed, every reference resolved,
//! every site default applied. Built only by [`super::check_site`] and
//! [`super::check_tenants`]; nothing downstream re-checks or re-defaults.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::names::{Label, Subdomain};
use super::raw::Driver;
use std::collections::BTreeMap;

use crate::diagnostic::{Reported, SourceLocation};
use crate::network::Pool;

/// A Helm chart installed into every tenant cluster, checked.
#[derive(Clone, Debug)]
pub struct Addon {
    pub name: Label,
    pub source: AddonSource,
    pub chart: String,
    pub version: String,
    pub target_namespace: Label,
    /// The site's values (a mapping).
    pub values: serde_json::Map<String, serde_json::Value>,
    /// Value path → the tenant fact kmetal fills in there.
    pub tenant_values: Vec<(Vec<String>, TenantFact)>,
    pub schema: Option<ValuesSchema>,
}

/// Where an add-on's chart comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddonSource {
    /// An https:// Helm repository (a Flux HelmRepository).
    Helm(String),
    /// An oci:// repository holding the chart (a Flux OCIRepository).
    Oci(String),
}

/// What kmetal knows about a tenant that an add-on's values may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantFact {
    PodCidr,
    PodCidrs,
    ServiceCidr,
    ClusterName,
    ClusterNamespace,
}

impl TenantFact {
    pub const NAMES: [&'static str; 5] = [
        "podCIDR",
        "podCIDRs",
        "serviceCIDR",
        "clusterName",
        "clusterNamespace",
    ];

    pub fn parse(name: &str) -> Option<TenantFact> {
        let all = [
            TenantFact::PodCidr,
            TenantFact::PodCidrs,
            TenantFact::ServiceCidr,
            TenantFact::ClusterName,
            TenantFact::ClusterNamespace,
        ];
        (Self::NAMES.iter().zip(all))
            .find(|(n, _)| **n == name)
            .map(|(_, f)| f)
    }
}

/// An add-on's values schema, compiled once.
#[derive(Clone)]
pub struct ValuesSchema(pub std::sync::Arc<jsonschema::Validator>);

impl std::fmt::Debug for ValuesSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValuesSchema")
    }
}

/// A tenant's add-on: the site's, with its values merged for this tenant.
#[derive(Clone, Debug, Serialize)]
pub struct TenantAddon {
    pub name: Label,
    pub values: serde_json::Value,
}

/// A join address: an IP address or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Host {
    Ip(IpAddr),
    Name(Subdomain),
}

/// `kmetal.yaml`, checked.
#[derive(Clone, Debug)]
pub struct Site {
    /// Input file, relative to the repository root.
    pub file: String,
    pub name: Subdomain,
    /// Output directory, relative to the repository root.
    pub output: String,
    pub defaults: Defaults,
    pub metallb_namespace: Label,
    pub pools: Vec<Pool>,
    pub data_stores: Vec<DataStore>,
    pub issuers: Vec<Issuer>,
    pub certificates: Vec<Certificate>,
    pub flux: Flux,
    /// Whether kmetal writes the stacks' ClusterClasses into the output
    /// (`clusterClasses: kmetal`), or the platform installs them.
    pub emit_cluster_classes: bool,
    /// The site's boot images, by Kubernetes version (over the stacks' own).
    pub boot_images: BTreeMap<String, String>,
    /// The add-ons every tenant cluster gets (those that passed their checks).
    pub addons: Vec<Addon>,
    /// What failed; nothing is rendered from a site with any error.
    pub problems: SiteProblems,
}

/// The parts of a site that failed their checks, each with the proof that it
/// was reported. Tenants are checked against what is valid; what they would
/// take from a failed part is left out quietly, since its own error explains it.
#[derive(Clone, Debug, Default)]
pub struct SiteProblems {
    /// Any error in the site file.
    pub any: Option<Reported>,
    /// A part of the file that may hold defaults could not be read (a key
    /// cut out while parsing): a default a tenant misses may be there.
    pub unread: Option<Reported>,
    /// A datastore was left out, or `dataStores` was not read: a tenant's
    /// unknown datastore may be explained by it.
    pub data_stores: Option<Reported>,
    /// Add-ons left out by name: a tenant naming one reports nothing more.
    pub left_out_addons: BTreeMap<String, Reported>,
    /// The site name failed: checks that need it are skipped.
    pub name: bool,
    /// A pool was left out, or part of the file was not read: a VIP in no
    /// pool, or a tenant without a pool, may be explained by it.
    pub pools: Option<Reported>,
    /// Pools and datastores declared but left out, by name.
    pub left_out_pools: BTreeMap<String, Reported>,
    pub left_out_data_stores: BTreeMap<String, Reported>,
    /// Defaults that failed, by key (`kubernetesVersion`, `pods`, …).
    pub defaults: BTreeMap<&'static str, Reported>,
}

impl Site {
    /// The namespaces the platform creates and owns, never kmetal: Flux's,
    /// MetalLB's, Kamaji's, each stack's ClusterClass namespace, and every
    /// namespace the site puts a Certificate in or reads a Secret from.
    pub fn platform_namespaces<'a>(
        &'a self,
        stacks: &'a crate::stack::Stacks,
    ) -> std::collections::BTreeSet<&'a str> {
        self.each_platform_namespace(stacks).collect()
    }

    /// Whether `namespace` is one of [`Site::platform_namespaces`] (asked
    /// for every tenant: no set is made).
    pub fn is_platform_namespace(&self, stacks: &crate::stack::Stacks, namespace: &str) -> bool {
        self.each_platform_namespace(stacks).any(|n| n == namespace)
    }

    /// The platform's namespaces, some more than once.
    fn each_platform_namespace<'a>(
        &'a self,
        stacks: &'a crate::stack::Stacks,
    ) -> impl Iterator<Item = &'a str> {
        let fixed = [
            self.flux.namespace.as_str(),
            self.metallb_namespace.as_str(),
            super::KAMAJI_NAMESPACE,
        ];
        let classes = (stacks.tenant.values()).map(|s| s.cluster_class.namespace.as_str());
        let certificates = self.certificates.iter().map(|c| c.namespace.as_str());
        let stores = self.data_stores.iter().flat_map(|store| {
            let auth = store.basic_auth.iter().map(|b| b.namespace.as_str());
            let tls = store.tls.iter();
            let secrets = tls.flat_map(|t| std::iter::once(&t.ca).chain(&t.client));
            auth.chain(secrets.map(|s| s.namespace.as_str()))
        });
        fixed
            .into_iter()
            .chain(classes)
            .chain(certificates)
            .chain(stores)
    }
}

/// A value and where it was written: in the tenant, or in the site for an
/// inherited default (`None`: a built-in default).
#[derive(Clone, Debug)]
pub struct Defaulted<T> {
    pub value: T,
    pub location: Option<SourceLocation>,
}

/// What tenants inherit from the site.
#[derive(Clone, Debug)]
pub struct Defaults {
    pub stack: Defaulted<String>,
    pub kubernetes_version: Option<Defaulted<String>>,
    pub machine_size: Defaulted<String>,
    /// `default` or a checked datastore of the site.
    pub data_store: Defaulted<Subdomain>,
    /// The pool VIPs are allocated from when a tenant names none (`None`: no pool).
    pub pool: Option<Defaulted<Label>>,
    pub bootstrap_server: Option<Defaulted<Host>>,
    pub replicas: u32,
    pub pods: Defaulted<IpNet>,
    pub services: Defaulted<IpNet>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataStore {
    pub name: Subdomain,
    pub driver: Driver,
    pub endpoints: Vec<String>,
    pub basic_auth: Option<BasicAuth>,
    pub tls: Option<Tls>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    pub secret: Subdomain,
    pub namespace: Label,
    pub username_key: String,
    pub password_key: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    pub ca: TlsSecret,
    pub client: Option<TlsSecret>,
}

/// A Secret with a certificate and, when `private_key_key` is set, its key.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsSecret {
    pub secret: Subdomain,
    pub namespace: Label,
    pub certificate_key: String,
    pub private_key_key: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Issuer {
    pub name: Subdomain,
    pub email: Option<String>,
    pub server: String,
    pub ingress_class_name: String,
    pub account_key_secret: Subdomain,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    pub name: Subdomain,
    pub namespace: Label,
    pub dns_names: Vec<String>,
    pub issuer: Subdomain,
    pub secret_name: Subdomain,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flux {
    pub namespace: Label,
    pub source_ref: SourceRef,
    /// The output directory's path in the git repository, without a trailing `/`.
    pub path: String,
    pub interval: String,
    pub prune: bool,
    /// Of tenant Kustomizations.
    pub timeout: String,
    pub retry_interval: String,
    /// How many shards the tenants are spread over; none when 0.
    pub shards: u32,
    /// Whether each tenant gets its own artifact (`flux.artifacts: per-tenant`).
    pub per_tenant_artifacts: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    pub kind: String,
    pub name: Subdomain,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Label>,
}

/// One tenant file, checked, with the site's defaults applied.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub file: String,
    pub name: Label,
    pub name_location: SourceLocation,
    pub namespace: Label,
    pub stack: Label,
    pub kubernetes_version: String,
    pub machine_size: String,
    pub bootstrap_server: Defaulted<Host>,
    pub replicas: u32,
    /// The explicit VIP and where it was written; `None` asks for allocation.
    pub vip: Option<(IpAddr, SourceLocation)>,
    /// The explicit pool and where it was written.
    pub pool: Option<(Label, SourceLocation)>,
    /// Each certSAN (normalised) and where it was written.
    pub cert_sans: Vec<(String, SourceLocation)>,
    pub data_store: Subdomain,
    pub pods: Defaulted<IpNet>,
    pub services: Defaulted<IpNet>,
    pub subnet: Subdomain,
    pub workers: Vec<Worker>,
    /// The site's add-ons this tenant gets, its values merged.
    pub addons: Vec<TenantAddon>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Worker {
    pub name: Label,
    pub class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_size: Option<String>,
}
