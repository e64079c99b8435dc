//! The output directory's layout, in one place: where every object goes, the
//! names of the Flux objects that apply each part, and the way back from a
//! path to the tenant or stack it belongs to. Rendering, the output tree,
//! the checks and the Flux templates all take their paths from here.
//!
//! ```text
//! kustomization.yaml                 lists flux/ only
//! flux/platform-<part>.yaml          one Kustomization per platform part
//! flux/tenant-<tenant>.yaml          one Kustomization per tenant
//! flux/artifacts[-<shard>].yaml      ArtifactGenerators (flux.artifacts: per-tenant)
//! platform/<part>/…                  metallb, cert-manager, datastores, clusterclasses/<stack>, addons
//! tenants/<tenant>/<template>.yaml   one file per stack template
//! ```

use serde::Serialize;

/// The directory Flux is pointed at (the root lists only it).
pub const FLUX_DIR: &str = "flux";
const TENANTS_DIR: &str = "tenants";
const PLATFORM_DIR: &str = "platform";

/// A part of the platform, applied by a Kustomization of its own, so that one
/// broken object holds back only what depends on its part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Part {
    Metallb,
    CertManager,
    DataStores,
    ClusterClasses,
    /// The chart sources of the tenants' add-ons.
    Addons,
}

impl Part {
    pub const ALL: [Part; 5] = [
        Part::Metallb,
        Part::CertManager,
        Part::DataStores,
        Part::ClusterClasses,
        Part::Addons,
    ];

    /// Its directory under `platform/`, and the suffix of its Kustomization's name.
    pub fn dir_name(self) -> &'static str {
        match self {
            Part::Metallb => "metallb",
            Part::CertManager => "cert-manager",
            Part::DataStores => "datastores",
            Part::ClusterClasses => "clusterclasses",
            Part::Addons => "addons",
        }
    }

    /// `platform/<part>`.
    pub fn dir(self) -> String {
        [PLATFORM_DIR, "/", self.dir_name()].concat()
    }

    /// A file of this part: `platform/<part>/<stem>.yaml`.
    pub fn file(self, stem: &str) -> String {
        [PLATFORM_DIR, "/", self.dir_name(), "/", stem, ".yaml"].concat()
    }
}

/// The name of the Kustomization that applies a platform part.
pub fn platform_kustomization(site: &str, part: Part) -> String {
    [site, "-platform-", part.dir_name()].concat()
}

/// The longest name a platform Kustomization of `site` takes.
pub fn longest_platform_kustomization(site: &str) -> String {
    (Part::ALL.into_iter())
        .map(|p| platform_kustomization(site, p))
        .max_by_key(String::len)
        .unwrap_or_default()
}

/// The name of a tenant's Kustomization (and of its artifact).
pub fn tenant_kustomization(site: &str, tenant: &str) -> String {
    [site, "-tenant-", tenant].concat()
}

/// `flux/platform-<part>.yaml`.
pub fn flux_platform_file(part: Part) -> String {
    [FLUX_DIR, "/platform-", part.dir_name(), ".yaml"].concat()
}

/// `flux/tenant-<tenant>.yaml`.
pub fn flux_tenant_file(tenant: &str) -> String {
    [FLUX_DIR, "/tenant-", tenant, ".yaml"].concat()
}

/// The ArtifactGenerator of one shard (or of every tenant): its name and file.
pub fn artifact_generator(site: &str, shard: Option<&str>) -> (String, String) {
    match shard {
        Some(shard) => (
            format!("{site}-tenants-{shard}"),
            format!("{FLUX_DIR}/artifacts-{shard}.yaml"),
        ),
        None => (
            format!("{site}-tenants"),
            format!("{FLUX_DIR}/artifacts.yaml"),
        ),
    }
}

/// `tenants/<tenant>`.
pub fn tenant_dir(tenant: &str) -> String {
    [TENANTS_DIR, "/", tenant].concat()
}

/// `tenants/<tenant>/<stem>.yaml`.
pub fn tenant_file(tenant: &str, stem: &str) -> String {
    [TENANTS_DIR, "/", tenant, "/", stem, ".yaml"].concat()
}

/// The tenant a path of the output belongs to (`tenants/<tenant>/…`).
pub fn tenant_of(path: &str) -> Option<&str> {
    path.strip_prefix(TENANTS_DIR)?
        .strip_prefix('/')?
        .split('/')
        .next()
        .filter(|t| !t.is_empty())
}

/// `platform/clusterclasses/<stack>`: a stack's class objects.
pub fn class_dir(stack: &str) -> String {
    [
        PLATFORM_DIR,
        "/",
        Part::ClusterClasses.dir_name(),
        "/",
        stack,
    ]
    .concat()
}

/// The stack whose class object an output path holds, if it holds one.
pub fn stack_of_class_file(path: &str) -> Option<&str> {
    path.strip_prefix(PLATFORM_DIR)?
        .strip_prefix('/')?
        .strip_prefix(Part::ClusterClasses.dir_name())?
        .strip_prefix('/')?
        .split('/')
        .next()
}

/// The pseudo-path of an object `kmetal expand` shows for a tenant (never written).
pub fn expanded_file(tenant: &str, kind: &str, name: &str) -> String {
    [
        "expand/",
        tenant,
        "/",
        &kind.to_lowercase(),
        "-",
        name,
        ".yaml",
    ]
    .concat()
}

/// The tenant of an expanded object's pseudo-path.
pub fn tenant_of_expanded(path: &str) -> Option<&str> {
    path.strip_prefix("expand/")?.split('/').next()
}

/// A directory of the output as Flux names it in the source: `flux.path` + dir.
pub fn in_source(flux_path: &str, dir: &str) -> String {
    format!("{flux_path}/{dir}")
}

/// The same, as an ArtifactGenerator's copy source takes it: `@alias/<path>/**`.
pub fn copy_from(alias: &str, flux_path: &str, dir: &str) -> String {
    let path = in_source(flux_path, dir);
    let path = path.trim_start_matches("./").trim_start_matches('.');
    let path = path.trim_start_matches('/');
    format!("@{alias}/{path}/**")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lead_back_to_what_they_hold() {
        assert_eq!(tenant_of(&tenant_file("acme", "cluster")), Some("acme"));
        assert_eq!(tenant_of("tenantsx/acme/cluster.yaml"), None);
        assert_eq!(tenant_of(&flux_tenant_file("acme")), None);
        let class = format!("{}/clusterclass-x.yaml", class_dir("kubevirt-kubeadm"));
        assert_eq!(stack_of_class_file(&class), Some("kubevirt-kubeadm"));
        let expanded = expanded_file("acme", "MachineDeployment", "acme-md-0");
        assert_eq!(tenant_of_expanded(&expanded), Some("acme"));
        assert_eq!(
            copy_from("src", "./deploy", &tenant_dir("acme")),
            "@src/deploy/tenants/acme/**"
        );
        assert_eq!(copy_from("src", ".", "tenants/a"), "@src/tenants/a/**");
        assert_eq!(
            longest_platform_kustomization("s"),
            "s-platform-clusterclasses"
        );
        assert_eq!(
            stack_of_class_file("platform/clusterclassesx/a/b.yaml"),
            None
        );
        assert_eq!(stack_of_class_file("platform/metallb/a.yaml"), None);
    }

    /// Every path and name as the layout above draws it.
    #[test]
    fn the_layout_spells_each_path() {
        assert_eq!(Part::CertManager.dir(), "platform/cert-manager");
        assert_eq!(Part::Metallb.file("pool-a"), "platform/metallb/pool-a.yaml");
        assert_eq!(
            platform_kustomization("s", Part::Addons),
            "s-platform-addons"
        );
        assert_eq!(tenant_kustomization("s", "acme"), "s-tenant-acme");
        assert_eq!(
            flux_platform_file(Part::DataStores),
            "flux/platform-datastores.yaml"
        );
        assert_eq!(flux_tenant_file("acme"), "flux/tenant-acme.yaml");
        assert_eq!(tenant_dir("acme"), "tenants/acme");
        assert_eq!(tenant_file("acme", "cluster"), "tenants/acme/cluster.yaml");
        assert_eq!(class_dir("k"), "platform/clusterclasses/k");
        assert_eq!(
            expanded_file("acme", "MachineDeployment", "acme-md-0"),
            "expand/acme/machinedeployment-acme-md-0.yaml"
        );
    }
}
