//! Project + a name → the text of a new tenant file, every site default written
//! out, so that users start from a file that validates.

use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Diagnostics, codes};
use crate::network::Pool;
use crate::project::Project;
use crate::spec::names::Label;
use crate::spec::{self, Host};
use crate::{lock, yaml};

/// Editors with yaml-language-server validate the file against the schema that
/// `kmetal schema tenant > .kmetal/schema/tenant.json` writes (path relative to `tenants/`).
pub const MODELINE: &str = "# yaml-language-server: $schema=../.kmetal/schema/tenant.json\n";

/// The tenant file for `name`, with the VIP it would get now in its header
/// (not reserved: the VIP is allocated and locked by `kmetal build`).
pub fn new_tenant(project: &Project, name: &str) -> Result<String, Diagnostics> {
    let compiled = crate::compile(project)?;
    let name = Label::parse(name).map_err(|problem| {
        Diagnostics::from(Diagnostic::error(
            codes::SPEC_INVALID_NAME,
            format!("tenant name: {problem}"),
        ))
    })?;
    if compiled.lock.tenants.contains_key(&name) {
        return Err(Diagnostic::error(
            codes::SPEC_DUPLICATE_NAME,
            format!("tenant {name} exists already"),
        )
        .into());
    }
    let (site, stacks) = (&compiled.site, &compiled.stacks);
    let d = &site.defaults;
    let pool = d
        .pool
        .as_ref()
        .and_then(|p| site.pools.iter().find(|q| q.name == p.value));
    let mut control_plane = json!({ "replicas": d.replicas });
    if let Some(pool) = pool {
        control_plane["pool"] = json!(pool.name);
    }
    control_plane["certSANs"] = json!([]);
    control_plane["dataStore"] = json!(d.data_store.value);
    let mut tenant = json!({
        "apiVersion": spec::checker::API_VERSION,
        "kind": "Tenant",
        "name": name,
        "namespace": format!("tenant-{name}"),
        "stack": d.stack.value,
    });
    let fields = tenant.as_object_mut().expect("a JSON object");
    let newest = stacks
        .tenant
        .get(&d.stack.value)
        .and_then(|s| s.kubernetes_versions.last());
    if let Some(version) = d.kubernetes_version.as_ref().map(|v| &v.value).or(newest) {
        fields.insert("kubernetesVersion".into(), json!(version));
    }
    fields.insert("machineSize".into(), json!(d.machine_size.value));
    if let Some(server) = &d.bootstrap_server {
        fields.insert("bootstrapServer".into(), host(&server.value));
    }
    fields.insert("controlPlane".into(), control_plane);
    fields.insert(
        "network".into(),
        json!({"pods": d.pods.value.to_string(), "services": d.services.value.to_string(), "subnet": format!("tenant-{name}")}),
    );
    fields.insert(
        "workers".into(),
        json!([{"name": "md-0", "class": "default-worker", "replicas": 2}]),
    );
    Ok(format!(
        "{}{}",
        header(pool, &compiled.lock),
        yaml::emit(&tenant)
    ))
}

fn host(host: &Host) -> Value {
    match host {
        Host::Ip(ip) => json!(ip.to_string()),
        Host::Name(name) => json!(name),
    }
}

fn header(pool: Option<&Pool>, lock: &lock::Lock) -> String {
    let Some(pool) = pool else {
        return "# The site has no MetalLB pool: declare one under metallb.pools, or set controlPlane.vip, before building.\n".into();
    };
    let held = |ip| {
        lock.tenants.values().any(|h| h.vip == ip) || lock.released.iter().any(|r| r.vip == ip)
    };
    match pool.lowest_free(None, held) {
        Some(vip) => format!(
            "# kmetal build would give this tenant VIP {vip} from pool {} (not reserved until then).\n",
            pool.name
        ),
        None => format!(
            "# Pool {} has no never-used address left: a released one, or none, would be given.\n",
            pool.name
        ),
    }
}
