//! Checked tenant + its VIP + its stack → [`ResolvedTenant`], the template
//! context. Cannot fail: everything was checked before.

use std::net::IpAddr;

use serde::Serialize;

use crate::network::allocate::Placed;
use crate::spec::names::{Label, Subdomain};
use crate::spec::{Host, Worker};
use crate::stack::{ClusterClassRef, Stack};

/// Everything a tenant template may use; nothing optional but worker fields.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedTenant {
    pub name: Label,
    pub namespace: Label,
    /// The tenant file, relative to the repository root.
    pub source_file: String,
    pub stack: Label,
    pub cluster_class: ClusterClassRef,
    pub kubernetes_version: String,
    pub machine_size: String,
    pub bootstrap_server: Host,
    pub control_plane: ResolvedControlPlane,
    pub network: ResolvedNetwork,
    pub workers: Vec<Worker>,
    /// The site's add-ons this tenant gets, with its values.
    pub addons: Vec<crate::spec::TenantAddon>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedControlPlane {
    pub replicas: u32,
    pub vip: IpAddr,
    pub pool: Label,
    #[serde(rename = "certSANs")]
    pub cert_sans: Vec<String>,
    pub data_store: Subdomain,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedNetwork {
    pub pods: String,
    pub services: String,
    pub subnet: Subdomain,
}

/// The template context of a placed tenant on its stack. Cannot fail: the
/// tenant was checked and got its VIP.
pub fn resolve(placed: &Placed<'_>, stack: &Stack) -> ResolvedTenant {
    let Placed { tenant, assignment } = placed;
    ResolvedTenant {
        name: tenant.name.clone(),
        namespace: tenant.namespace.clone(),
        source_file: tenant.file.clone(),
        stack: stack.name.clone(),
        cluster_class: stack.cluster_class.clone(),
        kubernetes_version: tenant.kubernetes_version.clone(),
        machine_size: tenant.machine_size.clone(),
        bootstrap_server: tenant.bootstrap_server.value.clone(),
        control_plane: ResolvedControlPlane {
            replicas: tenant.replicas,
            vip: assignment.vip,
            pool: assignment.pool.clone(),
            cert_sans: tenant
                .cert_sans
                .iter()
                .map(|(san, _)| san.clone())
                .collect(),
            data_store: tenant.data_store.clone(),
        },
        network: ResolvedNetwork {
            pods: crate::network::net_text(&tenant.pods.value),
            services: crate::network::net_text(&tenant.services.value),
            subnet: tenant.subnet.clone(),
        },
        workers: tenant.workers.clone(),
        addons: tenant.addons.clone(),
    }
}
