//! The input files as written: serde types with spans, unknown fields rejected.
//!
//! These types only say what may be written; every default and cross-check is
//! applied by [`super::check`]. No `flatten`, `tag` or `untagged`: they lose
//! positions and fight `deny_unknown_fields`. The same types give the JSON
//! Schema of each file ([`crate::schema`]): their doc comments are its
//! descriptions, so say what a field is and its default, shortly.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

use super::checker::API_VERSION;

/// A value and where it was written in its file.
#[derive(Clone, Debug)]
pub struct S<T> {
    /// The value.
    pub value: T,
    /// Where it is used: the alias or merge key it came through, else as `defined`.
    pub referenced: crate::yaml::Place,
    /// Where it is written (for an alias, the anchored definition).
    pub defined: crate::yaml::Place,
}

/// Read through [`crate::yaml`], which hands over the span of the value.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for S<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_newtype_struct(crate::yaml::tree::SPANNED, SpannedVisitor(PhantomData))
    }
}

struct SpannedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for SpannedVisitor<T> {
    type Value = S<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<S<T>, D::Error> {
        let (referenced, defined) = crate::yaml::tree::take_span()
            .unwrap_or((crate::yaml::Place::UNKNOWN, crate::yaml::Place::UNKNOWN));
        Ok(S {
            value: T::deserialize(d)?,
            referenced,
            defined,
        })
    }
}

/// The position is not part of what is written: the schema is `T`'s.
impl<T: JsonSchema> JsonSchema for S<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A kmetal site, `kmetal.yaml`: the platform and the defaults of its tenants.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "kmetal site")]
pub struct RawSite {
    /// Always kmetal.io/v1alpha1.
    #[schemars(extend("const" = API_VERSION))]
    pub api_version: S<String>,
    /// Always Site.
    #[schemars(extend("const" = "Site"))]
    pub kind: S<String>,
    /// Name of the site, a DNS-1123 subdomain; names its Flux objects.
    pub name: S<String>,
    /// Output directory, relative to this file. Default: deploy.
    pub output: Option<S<String>>,
    /// Stack of tenants that name none. Default: kubevirt-kubeadm.
    pub stack: Option<S<String>>,
    /// Who installs the stacks' ClusterClasses: `kmetal` writes them into the output, `platform` means the platform chart already installs them (kmetal still checks against its own definition, which the running class must match). Default: kmetal.
    pub cluster_classes: Option<S<String>>,
    /// Images worker VMs boot, per Kubernetes version (e.g. v1.35.2: registry.example.com/capk/ubuntu-2404-container-disk:v1.35.2), over the stack's own bootImages: a mirror, or your builds for versions the stack has no image for. Default: none.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": "^v[0-9]+[.][0-9]+[.][0-9]+$"}))]
    pub boot_images: BTreeMap<String, S<String>>,
    /// Default address (IP or DNS name) workers join (bootstrapConfig.serverAddress). Default: none; then every tenant sets it.
    pub bootstrap_server: Option<S<String>>,
    /// Defaults for tenant fields.
    pub defaults: Option<RawDefaults>,
    /// MetalLB address pools, from which control-plane VIPs are taken.
    pub metallb: Option<RawMetallb>,
    /// Dedicated Kamaji DataStores; `default` is provided by the platform chart and is not declared here. Default: none.
    #[serde(default)]
    pub data_stores: Vec<RawDataStore>,
    /// cert-manager ClusterIssuers and Certificates of the platform. Default: none.
    pub cert_manager: Option<RawCertManager>,
    /// How Flux applies the output directory.
    pub flux: RawFlux,
    /// Helm charts every tenant cluster gets (the CNI first), each installed by a Flux HelmRelease per tenant through the Cluster's kubeconfig; a tenant may opt out or override values. Default: none.
    #[serde(default)]
    pub addons: Vec<RawAddon>,
}

/// A Helm chart installed into every tenant cluster.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAddon {
    /// Name of the add-on, a DNS-1123 label: names its HelmRelease in each tenant's namespace, and tenants' addons.<name>.
    pub name: S<String>,
    /// Chart repository: an https:// Helm repository (a Flux HelmRepository) or an oci:// registry path holding the chart (a Flux OCIRepository).
    pub repository: S<String>,
    /// Name of the chart in the repository.
    pub chart: S<String>,
    /// Exact chart version, e.g. 1.18.4.
    pub version: S<String>,
    /// Namespace in the tenant cluster the chart is installed into.
    pub target_namespace: S<String>,
    /// Helm values for every tenant, a mapping. Default: none.
    pub values: Option<serde_json::Value>,
    /// Values kmetal fills in per tenant: a dotted value path (e.g. ipam.operator.clusterPoolIPv4PodCIDRList) → podCIDR, podCIDRs (a list), serviceCIDR, clusterName or clusterNamespace. Default: none.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z0-9_-]+([.][A-Za-z0-9_-]+)*$"}))]
    pub tenant_values: BTreeMap<String, S<String>>,
    /// JSON Schema (draft 7) that each tenant's values (the site's, the tenant's over them, and tenantValues) must match. Default: none.
    pub values_schema: Option<serde_json::Value>,
}

/// Defaults for tenant fields, used where a tenant does not set them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDefaults {
    /// Kubernetes release of tenant clusters, e.g. v1.34.1; must be one the stack supports. Default: none; then every tenant sets it.
    pub kubernetes_version: Option<S<String>>,
    /// Machine size of tenant clusters; one of the stack's sizes. Default: small.
    pub machine_size: Option<S<String>>,
    /// DataStore of tenant control planes: `default` or a dataStores[].name. Default: default.
    pub data_store: Option<S<String>>,
    /// MetalLB pool that tenants without controlPlane.vip or controlPlane.pool take their VIP from. Default: the first pool.
    pub pool: Option<S<String>>,
    /// Control-plane replicas of tenant clusters, at least 1. Default: 2.
    pub control_plane_replicas: Option<S<u32>>,
    /// Pod and service networks of tenant clusters.
    pub network: Option<RawNetworkDefaults>,
}

/// Default networks of tenant clusters (tenants are isolated: all may use the same).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNetworkDefaults {
    /// Pod CIDR. Default: 10.200.0.0/16.
    pub pods: Option<S<String>>,
    /// Service CIDR. Default: 10.201.0.0/16.
    pub services: Option<S<String>>,
}

/// MetalLB settings of the platform.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetallb {
    /// Namespace of the MetalLB objects (the platform chart's). Default: kmetal-metallb.
    pub namespace: Option<S<String>>,
    /// IPAddressPools; they must not overlap. Default: none.
    #[serde(default)]
    pub pools: Vec<RawPool>,
}

/// A MetalLB IPAddressPool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPool {
    /// Name of the pool, a DNS-1123 label unique in the site.
    pub name: S<String>,
    /// Address ranges (first-last) and/or CIDRs of the pool; at least one.
    pub addresses: S<Vec<S<String>>>,
    /// Must be false, or left out: kmetal writes `autoAssign: false`, so that
    /// MetalLB never hands a tenant's VIP to a Service that asked for none.
    pub auto_assign: Option<S<bool>>,
    /// Whether to also emit an L2Advertisement for the pool. Default: true.
    pub l2_advertisement: Option<bool>,
}

/// Driver of a Kamaji DataStore, spelt as the CRD spells it.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize, JsonSchema)]
pub enum Driver {
    #[serde(rename = "etcd")]
    Etcd,
    MySQL,
    PostgreSQL,
    #[serde(rename = "NATS")]
    Nats,
}

/// A dedicated Kamaji DataStore (cluster-scoped).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDataStore {
    /// Name of the DataStore, a DNS-1123 subdomain other than `default`, unique in the site.
    pub name: S<String>,
    /// Database driver: etcd, MySQL, PostgreSQL or NATS.
    pub driver: S<Driver>,
    /// host:port of each server, without a scheme; at least one.
    pub endpoints: S<Vec<S<String>>>,
    /// Secret with the username and password. Default: none.
    pub basic_auth: Option<S<RawBasicAuth>>,
    /// Secrets with the CA and client certificates. Default: none; etcd needs a client certificate.
    pub tls: Option<S<RawTls>>,
}

/// A Secret holding a username and a password.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBasicAuth {
    /// Name of the Secret.
    pub secret: S<String>,
    /// Namespace of the Secret.
    pub namespace: S<String>,
    /// Key names in the Secret. Default: username and password.
    pub keys: Option<RawBasicAuthKeys>,
}

/// Key names in a basic-auth Secret.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBasicAuthKeys {
    /// Key of the username. Default: username.
    pub username: Option<S<String>>,
    /// Key of the password. Default: password.
    pub password: Option<S<String>>,
}

/// TLS Secrets of a DataStore.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTls {
    /// Secret with the CA certificate (and, for etcd, its key).
    pub ca: RawTlsSecret,
    /// Secret with the client certificate and key. Default: none; required for etcd.
    pub client: Option<RawTlsSecret>,
}

/// A Secret holding a certificate and (optionally) its private key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTlsSecret {
    /// Name of the Secret.
    pub secret: S<String>,
    /// Namespace of the Secret.
    pub namespace: S<String>,
    /// Key names in the Secret. Default: tls.crt and tls.key.
    pub keys: Option<RawTlsKeys>,
}

/// Key names in a TLS Secret.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTlsKeys {
    /// Key of the certificate. Default: tls.crt.
    pub certificate: Option<S<String>>,
    /// Key of the private key. Default: tls.key.
    pub private_key: Option<S<String>>,
}

/// cert-manager objects of the platform.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCertManager {
    /// ACME ClusterIssuers. Default: none.
    #[serde(default)]
    pub cluster_issuers: Vec<RawIssuer>,
    /// Certificates. Default: none.
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
}

/// A cert-manager ClusterIssuer.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawIssuer {
    /// Name of the ClusterIssuer, a DNS-1123 subdomain; its ACME account key is in Secret <name>-account-key.
    pub name: S<String>,
    /// ACME account and HTTP-01 solver.
    pub acme: RawAcme,
}

/// An ACME issuer solving HTTP-01 challenges through an ingress class.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAcme {
    /// Contact email of the ACME account. Default: none.
    pub email: Option<S<String>>,
    /// ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory.
    pub server: S<String>,
    /// Ingress class that solves HTTP-01 challenges (solvers[].http01.ingress.ingressClassName).
    pub http01_ingress_class: S<String>,
}

/// A cert-manager Certificate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCertificate {
    /// Name of the Certificate, a DNS-1123 subdomain.
    pub name: S<String>,
    /// Namespace of the Certificate (the platform chart's).
    pub namespace: S<String>,
    /// DNS names it covers; a leading `*.` wildcard is allowed.
    pub dns_names: S<Vec<S<String>>>,
    /// Name of a ClusterIssuer declared in certManager.clusterIssuers.
    pub issuer: S<String>,
    /// Secret the certificate is stored in. Default: the certificate's name.
    pub secret_name: Option<S<String>>,
}

/// The Flux Kustomizations that apply the output directory.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFlux {
    /// Namespace of the Flux Kustomizations (the platform chart's). Default: kmetal-flux.
    pub namespace: Option<S<String>>,
    /// Flux source holding this repository.
    pub source_ref: RawSourceRef,
    /// Where the output directory sits in the source. Default: ./ + output.
    pub path: Option<S<String>>,
    /// Reconciliation interval, e.g. 10m, 1h or 30s. Default: 10m.
    pub interval: Option<S<String>>,
    /// Whether Flux deletes objects no longer in the output. Default: true.
    pub prune: Option<bool>,
    /// How long a tenant's Kustomization waits for its Cluster to become Available before it reports failure (it then retries after retryInterval). Default: 10m.
    pub timeout: Option<S<String>>,
    /// How soon a failed tenant Kustomization is retried. Default: 2m.
    pub retry_interval: Option<S<String>>,
    /// Spread the tenant Kustomizations over this many Flux shards (label sharding.fluxcd.io/key: shard0 … shardN-1, by rendezvous hashing of the tenant's name); the platform stays on the main controllers. Default: none (no shards).
    pub shards: Option<S<u32>>,
    /// Where each tenant Kustomization takes its files from: `repository` (the sourceRef, so every commit reconciles every tenant) or `per-tenant` (an ArtifactGenerator gives each tenant its own artifact, whose revision changes only when its directory does; needs Flux source-watcher). Default: repository.
    pub artifacts: Option<S<String>>,
}

/// A Flux source object.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSourceRef {
    /// Kind of the source: GitRepository, OCIRepository, Bucket or ExternalArtifact.
    pub kind: S<String>,
    /// Name of the source.
    pub name: S<String>,
    /// Namespace of the source. Default: the Kustomizations' namespace.
    pub namespace: Option<S<String>>,
}

/// A tenant cluster, `tenants/**/*.yaml`; fields it omits come from the site.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "kmetal tenant")]
pub struct RawTenant {
    /// Always kmetal.io/v1alpha1.
    #[schemars(extend("const" = API_VERSION))]
    pub api_version: S<String>,
    /// Always Tenant.
    #[schemars(extend("const" = "Tenant"))]
    pub kind: S<String>,
    /// Name of the tenant, a DNS-1123 label unique across the repository.
    pub name: S<String>,
    /// Namespace of the tenant's objects, created by kmetal; unique. Default: tenant-<name>.
    pub namespace: Option<S<String>>,
    /// Stack that renders the cluster. Default: the site's stack.
    pub stack: Option<S<String>>,
    /// Kubernetes release of the cluster, e.g. v1.34.1. Default: the site's defaults.kubernetesVersion; must be one the stack supports.
    pub kubernetes_version: Option<S<String>>,
    /// Machine size; one of the stack's sizes. Default: the site's defaults.machineSize.
    pub machine_size: Option<S<String>>,
    /// Address (IP or DNS name) workers join (bootstrapConfig.serverAddress). Default: the site's bootstrapServer.
    pub bootstrap_server: Option<S<String>>,
    /// The hosted (Kamaji) control plane.
    pub control_plane: Option<RawControlPlane>,
    /// Networks of the cluster.
    pub network: Option<RawTenantNetwork>,
    /// Worker pools (MachineDeployments). Default: none.
    #[serde(default)]
    pub workers: Vec<RawWorker>,
    /// Per add-on of the site (by name): opt out, or override its values. Default: every add-on with the site's values.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}))]
    pub addons: BTreeMap<String, RawTenantAddon>,
}

/// A tenant's settings for one of the site's add-ons.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTenantAddon {
    /// Whether this cluster gets the add-on. Default: true.
    pub enabled: Option<bool>,
    /// Helm values merged over the site's (mappings merge key by key; anything else replaces). Default: none.
    pub values: Option<serde_json::Value>,
}

/// The hosted control plane of a tenant cluster.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawControlPlane {
    /// Control-plane replicas, at least 1. Default: the site's defaults.controlPlaneReplicas.
    pub replicas: Option<S<u32>>,
    /// MetalLB VIP of the API server, inside its pool and held by no other tenant. Default: allocated from the pool and recorded in kmetal.lock.
    pub vip: Option<S<String>>,
    /// MetalLB pool of the VIP. Default: the pool containing vip; without a vip, the site's first pool with autoAssign.
    pub pool: Option<S<String>>,
    /// Extra API server certificate SANs: DNS names (a leading `*.` allowed) or IP addresses. Default: none.
    #[serde(default, rename = "certSANs")]
    pub cert_sans: Vec<S<String>>,
    /// DataStore: `default` or a site dataStores[].name. Default: the site's defaults.dataStore.
    pub data_store: Option<S<String>>,
}

/// Networks of a tenant cluster.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTenantNetwork {
    /// Pod CIDR. Default: the site's defaults.network.pods.
    pub pods: Option<S<String>>,
    /// Service CIDR. Default: the site's defaults.network.services.
    pub services: Option<S<String>>,
    /// OVN subnet name. Default: tenant-<name>.
    pub subnet: Option<S<String>>,
}

/// A worker pool (MachineDeployment).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWorker {
    /// Name of the pool, a DNS-1123 label unique in the tenant.
    pub name: S<String>,
    /// Worker class of the stack. Default: default-worker.
    pub class: Option<S<String>>,
    /// Number of machines. Default: unset (Cluster API's default).
    pub replicas: Option<S<u32>>,
    /// Machine size of this pool; one of the stack's sizes. Default: the tenant's machineSize.
    pub machine_size: Option<S<String>>,
}
