//! The input files as written: serde types with spans, unknown fields rejected.
//!
//! These types only say what may be written; every default and cross-check is
//! applied by [`super::check`]. No `flatten`, `tag` or `untagged`: they lose
//! positions and fight `deny_unknown_fields`.

use serde::Deserialize;

use crate::yaml::Spanned;

pub type S<T> = Spanned<T>;

/// `kmetal.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSite {
    pub api_version: S<String>,
    pub kind: S<String>,
    pub name: S<String>,
    pub output: Option<S<String>>,
    pub stack: Option<S<String>>,
    pub bootstrap_server: Option<S<String>>,
    pub defaults: Option<RawDefaults>,
    pub metallb: Option<RawMetallb>,
    #[serde(default)]
    pub data_stores: Vec<RawDataStore>,
    pub cert_manager: Option<RawCertManager>,
    pub flux: RawFlux,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDefaults {
    pub kubernetes_version: Option<S<String>>,
    pub machine_size: Option<S<String>>,
    pub data_store: Option<S<String>>,
    pub control_plane_replicas: Option<S<u32>>,
    pub network: Option<RawNetworkDefaults>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNetworkDefaults {
    pub pods: Option<S<String>>,
    pub services: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetallb {
    pub namespace: Option<S<String>>,
    #[serde(default)]
    pub pools: Vec<RawPool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPool {
    pub name: S<String>,
    pub addresses: S<Vec<S<String>>>,
    pub auto_assign: Option<bool>,
    pub l2_advertisement: Option<bool>,
}

/// The drivers of a Kamaji DataStore, spelt as the CRD spells them.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
pub enum Driver {
    #[serde(rename = "etcd")]
    Etcd,
    MySQL,
    PostgreSQL,
    #[serde(rename = "NATS")]
    Nats,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDataStore {
    pub name: S<String>,
    pub driver: S<Driver>,
    pub endpoints: S<Vec<S<String>>>,
    pub basic_auth: Option<S<RawBasicAuth>>,
    pub tls: Option<S<RawTls>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBasicAuth {
    pub secret: S<String>,
    pub namespace: S<String>,
    pub keys: Option<RawBasicAuthKeys>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBasicAuthKeys {
    pub username: Option<S<String>>,
    pub password: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTls {
    pub ca: RawTlsSecret,
    pub client: Option<RawTlsSecret>,
}

/// A Secret holding a certificate and (optionally) its private key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTlsSecret {
    pub secret: S<String>,
    pub namespace: S<String>,
    pub keys: Option<RawTlsKeys>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTlsKeys {
    pub certificate: Option<S<String>>,
    pub private_key: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCertManager {
    #[serde(default)]
    pub cluster_issuers: Vec<RawIssuer>,
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawIssuer {
    pub name: S<String>,
    pub acme: RawAcme,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAcme {
    pub email: Option<S<String>>,
    pub server: S<String>,
    pub http01_ingress_class: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCertificate {
    pub name: S<String>,
    pub namespace: S<String>,
    pub dns_names: S<Vec<S<String>>>,
    pub issuer: S<String>,
    pub secret_name: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFlux {
    pub namespace: Option<S<String>>,
    pub source_ref: RawSourceRef,
    pub path: Option<S<String>>,
    pub interval: Option<S<String>>,
    pub prune: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSourceRef {
    pub kind: S<String>,
    pub name: S<String>,
    pub namespace: Option<S<String>>,
}

/// `tenants/**/*.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTenant {
    pub api_version: S<String>,
    pub kind: S<String>,
    pub name: S<String>,
    pub namespace: Option<S<String>>,
    pub stack: Option<S<String>>,
    pub kubernetes_version: Option<S<String>>,
    pub machine_size: Option<S<String>>,
    pub bootstrap_server: Option<S<String>>,
    pub control_plane: Option<RawControlPlane>,
    pub network: Option<RawTenantNetwork>,
    #[serde(default)]
    pub workers: Vec<RawWorker>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawControlPlane {
    pub replicas: Option<S<u32>>,
    pub vip: Option<S<String>>,
    pub pool: Option<S<String>>,
    #[serde(default, rename = "certSANs")]
    pub cert_sans: Vec<S<String>>,
    pub data_store: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTenantNetwork {
    pub pods: Option<S<String>>,
    pub services: Option<S<String>>,
    pub subnet: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWorker {
    pub name: S<String>,
    pub class: Option<S<String>>,
    pub replicas: Option<S<u32>>,
    pub machine_size: Option<S<String>>,
}
