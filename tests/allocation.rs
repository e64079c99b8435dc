//! VIP allocation over many builds: a property test on random fleets.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::IpAddr;
use std::path::Path;

use kmetal::project::Project;
use proptest::prelude::*;

const SITE: &str = "apiVersion: kmetal.io/v1alpha1
kind: Site
name: lab
bootstrapServer: 10.10.0.10
defaults:
  kubernetesVersion: v1.34.1
metallb:
  pools:
    - name: first
      addresses: [10.9.0.0/28]
    - name: second
      addresses: [10.9.1.10-10.9.1.40]
      autoAssign: false
flux:
  sourceRef: { kind: GitRepository, name: lab }
";

/// One step of a fleet's life.
#[derive(Clone, Debug)]
enum Step {
    /// Add tenant `t<n>`, taking its VIP from pool `second` when the flag is set.
    Add(u8, bool),
    /// Remove tenant `t<n>` (with consent), if it exists.
    Remove(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..24, any::<bool>()).prop_map(|(n, second)| Step::Add(n, second)),
        1 => (0u8..24).prop_map(Step::Remove),
    ]
}

/// Build, and return tenant → (pool, VIP) from the lock.
fn build(dir: &Path, allow: BTreeSet<String>) -> BTreeMap<String, (String, IpAddr)> {
    let mut project = Project::open(dir, None).unwrap();
    project.allow_removal = allow;
    if let Err(diagnostics) = kmetal::build(&project) {
        panic!("build failed:\n{diagnostics}");
    }
    let compiled =
        kmetal::compile(&Project::open(dir, None).unwrap()).expect("a second build is clean");
    compiled
        .lock
        .tenants
        .iter()
        .map(|(name, held)| (name.to_string(), (held.pool.to_string(), held.vip)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn vips_are_unique_in_their_pool_and_never_move(steps in prop::collection::vec(step(), 1..12)) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("kmetal.yaml"), SITE).unwrap();
        fs::create_dir(dir.path().join("tenants")).unwrap();
        let mut before: BTreeMap<String, (String, IpAddr)> = BTreeMap::new();
        let first: ipnet::IpNet = "10.9.0.0/28".parse().unwrap();
        for step in steps {
            let mut allow = BTreeSet::new();
            match step {
                Step::Add(n, second) => {
                    let file = dir.path().join(format!("tenants/t{n}.yaml"));
                    let pool = if second { "controlPlane: { pool: second }\n" } else { "" };
                    // Pool `first` has 14 usable addresses: skip additions that cannot fit.
                    let in_first = before.values().filter(|(p, _)| p == "first").count();
                    if file.exists() || (!second && in_first >= 14) {
                        continue;
                    }
                    fs::write(file, format!("apiVersion: kmetal.io/v1alpha1\nkind: Tenant\nname: t{n}\n{pool}")).unwrap();
                }
                Step::Remove(n) => {
                    if fs::remove_file(dir.path().join(format!("tenants/t{n}.yaml"))).is_err() {
                        continue;
                    }
                    allow.insert(format!("t{n}"));
                }
            }
            let after = build(dir.path(), allow);
            let vips: BTreeSet<IpAddr> = after.values().map(|(_, vip)| *vip).collect();
            prop_assert_eq!(vips.len(), after.len(), "two tenants share a VIP: {:?}", after);
            for (name, (pool, vip)) in &after {
                let inside = match pool.as_str() {
                    "first" => first.contains(vip) && *vip != first.network() && *vip != first.broadcast(),
                    _ => (10u8..=40).any(|last| vip.to_string() == format!("10.9.1.{last}")),
                };
                prop_assert!(inside, "{} got {} outside pool {}", name, vip, pool);
                if let Some(old) = before.get(name) {
                    prop_assert_eq!(old, &(pool.clone(), *vip), "{} moved", name);
                }
            }
            before = after;
        }
    }
}
