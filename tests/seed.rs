//! The seed (`../shared/reference/kmetal-api.md`): the golden case `seed`
//! reproduces its KamajiControlPlane through `kmetal expand`, field for field,
//! but for the differences `golden/seed/README.md` lists.

mod common;

use serde_json::{Value, json};

/// The reference's KamajiControlPlane, its placeholders filled in as the
/// case's tenant fills them.
fn seed_control_plane() -> Value {
    let text = std::fs::read_to_string(common::shared_crds().join("../reference/kmetal-api.md"))
        .expect("../shared/reference/kmetal-api.md is readable");
    let start = text
        .find("apiVersion: controlplane.cluster.x-k8s.io/v1alpha1")
        .expect("the reference has the seed's KamajiControlPlane");
    let end = start
        + text[start..]
            .find("\nKubevirtCluster")
            .expect("a section follows");
    let yaml = text[start..end]
        .replace("<tenant-namespace>", "tenant-my-cluster")
        .replace("<metallb-vip>", "\"192.168.1.100\"")
        .replace("<bootstrap-server>", "\"10.10.0.10\"")
        .replace("<public-fqdn-or-ip>", "my-cluster.example.com");
    kmetal::yaml::parse_value(&yaml).expect("the seed's YAML parses")
}

#[test]
fn the_seed_kamaji_control_plane_is_reproduced() {
    let case = common::root().join("golden/seed/input");
    let mut project = common::open_case_input(&case).unwrap();
    project.keep_expanded = true;
    let compiled = kmetal::compile(&project).unwrap_or_else(|d| panic!("{d}"));
    let mut ours = serde_json::Value::from(
        &compiled
            .expanded
            .iter()
            .find(|d| d.value["kind"] == "KamajiControlPlane")
            .expect("the seed's tenant expands to a KamajiControlPlane")
            .value,
    );
    let mut seed = seed_control_plane();
    // The differences golden/seed/README.md explains.
    assert_eq!(seed["apiVersion"], "controlplane.cluster.x-k8s.io/v1alpha1");
    seed["apiVersion"] = json!("controlplane.cluster.x-k8s.io/v1alpha2");
    let endpoint = seed["spec"]
        .as_object_mut()
        .unwrap()
        .remove("controlPlaneEndpoint");
    assert_eq!(
        endpoint,
        Some(json!({"host": "192.168.1.100", "port": 6443}))
    );
    assert_eq!(
        seed["spec"]["addons"]["coreDNS"],
        json!({"imageTag": "v1.13.1"})
    );
    seed["spec"]["addons"]["coreDNS"] = json!({});
    let konnectivity = &mut seed["spec"]["addons"]["konnectivity"];
    for part in ["server", "agent"] {
        let version = konnectivity[part]
            .as_object_mut()
            .unwrap()
            .remove("version");
        assert_eq!(version, Some(json!("v0.34.0")), "{part}");
    }
    let metadata = ours["metadata"].as_object_mut().unwrap();
    metadata.remove("labels");
    metadata.remove("annotations");
    // Only the seed's fields are compared; kmetal's other fields are the
    // template's settings (kubelet), which the seed does not show.
    let kubelet = ours["spec"].as_object_mut().unwrap().remove("kubelet");
    assert!(kubelet.is_some());
    assert_eq!(ours, seed, "\nours: {ours:#}\nseed: {seed:#}");
}
