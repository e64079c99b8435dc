//! Day 2 on the binary: a fleet is built, then edited; every change is judged
//! against what the last build wrote (or a git ref), the way Cluster API,
//! Kamaji and Flux will judge it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn kmetal(dir: &Path, args: &[&str]) -> Output {
    common::run_kmetal(dir, args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The bundled example, plus `extra` files, as a repository of its own
/// (output at ./deploy), not built yet.
fn example_fleet(extra: BTreeMap<String, String>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut files = common::read_tree(&common::root().join("examples/production"));
    files.retain(|path, _| !path.starts_with("deploy/"));
    files.extend(extra);
    for (path, content) in files {
        let content = content.replace("./examples/production/deploy", "./deploy");
        let target = dir.path().join(path);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(target, content).unwrap();
    }
    dir
}

/// The bundled example, built, as a repository of its own (output at ./deploy).
fn built_fleet() -> tempfile::TempDir {
    let dir = example_fleet(BTreeMap::new());
    let build = kmetal(dir.path(), &["build"]);
    assert_eq!(build.status.code(), Some(0), "{}", stderr(&build));
    dir
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// `validate` and `build` refuse, at `at` (file:line), and nothing is written.
fn refused(dir: &Path, args: &[&str], at: &str, message: &str) {
    let before = common::read_tree(dir);
    for command in ["validate", "build"] {
        let mut all = vec![command];
        all.extend(args);
        let run = kmetal(dir, &all);
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(1), "{command}: {err}");
        assert!(err.contains("kmetal::day2::refused"), "{command}: {err}");
        assert!(err.contains(at), "{command}: not at {at}:\n{err}");
        assert!(err.contains(message), "{command}: no {message:?}:\n{err}");
    }
    assert_eq!(
        before,
        common::read_tree(dir),
        "a refused build wrote files"
    );
}

#[test]
fn moving_a_namespace_replaces_the_cluster_only_with_consent() {
    let fleet = built_fleet();
    edit(
        fleet.path(),
        "tenants/acme.yaml",
        "name: acme\n",
        "name: acme\nnamespace: acme-moved\n",
    );
    refused(
        fleet.path(),
        &[],
        "tenants/acme.yaml:6:12",
        "building would replace Cluster tenant-acme/acme",
    );
    let consent = kmetal(fleet.path(), &["build", "--allow-replace", "acme"]);
    assert_eq!(consent.status.code(), Some(0), "{}", stderr(&consent));
    assert!(
        fleet
            .path()
            .join("deploy/tenants/acme/cluster.yaml")
            .is_file()
    );
}

#[test]
fn what_the_platform_refuses_is_refused_even_with_consent() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "tenants/team-b/beta.yaml",
            "kubernetesVersion: v1.33.5",
            "kubernetesVersion: v1.32.1",
            "tenants/team-b/beta.yaml:7",
            "version cannot be decreased from v1.33.5 to v1.32.1",
        ),
        (
            "tenants/team-b/beta.yaml",
            "pods: 10.210.0.0/16",
            "pods: 10.212.0.0/16",
            "tenants/team-b/beta.yaml:",
            "the pod network of a running cluster cannot change",
        ),
        (
            "tenants/team-b/beta.yaml",
            "vip: 192.168.1.121",
            "vip: 192.168.1.150",
            "tenants/team-b/beta.yaml:",
            "the control-plane VIP of a running cluster cannot move",
        ),
        (
            "kmetal.yaml",
            "driver: PostgreSQL",
            "driver: MySQL",
            "kmetal.yaml:",
            "the driver of DataStore tenant-pg cannot change",
        ),
    ];
    for (file, from, to, at, message) in cases {
        let fleet = built_fleet();
        edit(fleet.path(), file, from, to);
        refused(fleet.path(), &["--allow-replace", "beta"], at, message);
    }
}

#[test]
fn renaming_the_site_needs_consent_for_every_kustomization() {
    let fleet = built_fleet();
    edit(
        fleet.path(),
        "kmetal.yaml",
        "name: production",
        "name: prod",
    );
    refused(
        fleet.path(),
        &[],
        "kmetal.yaml:",
        "building would replace Kustomization kmetal-flux/production-tenant-acme",
    );
    let mut args = vec!["build"];
    for consent in ["acme", "beta", "gamma", "platform"] {
        args.extend(["--allow-replace", consent]);
    }
    let run = kmetal(fleet.path(), &args);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
}

#[test]
fn allowed_changes_are_planned_in_the_platform_s_words() {
    let fleet = built_fleet();
    edit(
        fleet.path(),
        "tenants/team-b/beta.yaml",
        "kubernetesVersion: v1.33.5",
        "kubernetesVersion: v1.34.1",
    );
    edit(
        fleet.path(),
        "tenants/team-b/beta.yaml",
        "replicas: 2\n    machineSize: medium",
        "replicas: 3\n    machineSize: large",
    );
    let plan = kmetal(fleet.path(), &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert_eq!(
        stdout(&plan),
        "plan: 0 to replace, 0 to delete, 1 to update, 0 to create; 0 refused\n\
         tenant beta: update /spec/topology/version, /spec/topology/workers/machineDeployments Cluster team-b-beta/beta\n  \
         control plane upgrade v1.33.5 → v1.34.1\n  \
         workers md-0 scaled 2 → 3\n  \
         workers md-0 replaced (machine size medium → large)\n"
    );
    let markdown = kmetal(fleet.path(), &["plan", "--output", "markdown"]);
    assert_eq!(
        stdout(&markdown),
        "### kmetal plan\n\nplan: 0 to replace, 0 to delete, 1 to update, 0 to create; 0 refused\n\n#### Changes\n\n\
         - control plane upgrade v1.33.5 → v1.34.1 — beta\n\
         - workers md-0 replaced (machine size medium → large) — beta\n\
         - workers md-0 scaled 2 → 3 — beta\n"
    );
    let json = kmetal(fleet.path(), &["plan", "--output", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["changes"][0]["kind"], "Cluster");
    assert_eq!(
        value["changes"][0]["meaning"][0],
        "control plane upgrade v1.33.5 → v1.34.1"
    );
    let build = kmetal(fleet.path(), &["build"]);
    assert_eq!(build.status.code(), Some(0), "{}", stderr(&build));
    let again = kmetal(fleet.path(), &["plan"]);
    assert_eq!(
        stdout(&again),
        "plan: 0 to replace, 0 to delete, 0 to update, 0 to create; 0 refused\n"
    );
}

#[test]
fn plan_against_a_git_ref_judges_what_that_commit_applied() {
    let fleet = built_fleet();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(fleet.path())
            .args([
                "-c",
                "user.name=kmetal",
                "-c",
                "user.email=kmetal@example.com",
            ])
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "fleet"]);
    edit(
        fleet.path(),
        "tenants/acme.yaml",
        "name: acme\n",
        "name: acme\nnamespace: acme-moved\n",
    );
    let build = kmetal(fleet.path(), &["build", "--allow-replace", "acme"]);
    assert_eq!(build.status.code(), Some(0), "{}", stderr(&build));
    // On disk the move is done; against main it is still a replacement.
    let on_disk = kmetal(fleet.path(), &["plan"]);
    assert_eq!(on_disk.status.code(), Some(0), "{}", stderr(&on_disk));
    let against = kmetal(fleet.path(), &["plan", "--against", "main"]);
    assert_eq!(against.status.code(), Some(1), "{}", stdout(&against));
    assert!(
        stdout(&against).contains("replace Cluster tenant-acme/acme"),
        "{}",
        stdout(&against)
    );
    let consented = kmetal(
        fleet.path(),
        &["plan", "--against", "main", "--allow-replace", "acme"],
    );
    assert_eq!(consented.status.code(), Some(0), "{}", stderr(&consented));
    let unknown = kmetal(fleet.path(), &["plan", "--against", "no-such-ref"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
}

#[test]
fn a_change_that_reaches_many_tenants_is_a_warning() {
    let fleet = built_fleet();
    for i in 0..10 {
        fs::write(
            fleet.path().join(format!("tenants/t{i}.yaml")),
            format!("apiVersion: kmetal.io/v1alpha1\nkind: Tenant\nname: t{i}\nworkers:\n  - name: md-0\n    replicas: 1\n"),
        )
        .unwrap();
    }
    let build = kmetal(fleet.path(), &["build"]);
    assert_eq!(build.status.code(), Some(0), "{}", stderr(&build));
    // A mirror for v1.34.1's boot image: a ClusterClass change that rotates
    // the worker template of every tenant on v1.34.1.
    let images = "bootImages:\n  v1.34.1: registry.example.com/capk/ubuntu-2404-container-disk:v1.34.1\n  v1.34.2: registry.example.com/capk/ubuntu-2404-container-disk:v1.34.2\n";
    edit(
        fleet.path(),
        "kmetal.yaml",
        "defaults:\n",
        &format!("{images}defaults:\n"),
    );
    let plan = kmetal(fleet.path(), &["plan"]);
    let out = stdout(&plan);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(
        out.contains("warning: a ClusterClass change replaces workers: rolls out the machines of 11 tenants in one commit\n"),
        "{out}"
    );
    assert!(
        out.contains("KubevirtMachineTemplate tenant-t0/t0-md-0-xxxxx\n  workers md-0 replaced (new KubevirtMachineTemplate from the ClusterClass: every machine rolls out)\n"),
        "{out}"
    );
    // gamma and t0…t9 have workers on v1.34.1 (acme has none); beta runs
    // v1.33.5, whose image did not change.
    assert!(!out.contains("tenant beta:"), "{out}");
    let build = kmetal(fleet.path(), &["build"]);
    assert_eq!(build.status.code(), Some(0), "{}", stderr(&build));
    edit(
        fleet.path(),
        "kmetal.yaml",
        "kubernetesVersion: v1.34.1",
        "kubernetesVersion: v1.34.2",
    );
    let plan = kmetal(fleet.path(), &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    // acme, gamma and t0…t9 inherit the default; beta sets its own version.
    assert!(
        stdout(&plan).contains(
            "platform: note on Fleet production\n  warning: control plane upgrade v1.34.1 → v1.34.2: upgrades 12 tenants in one commit\n"
        ),
        "{}",
        stdout(&plan)
    );
}

#[test]
fn crd_update_rules_judge_what_cluster_api_would_update() {
    // The site's own copy of the stack, whose control planes run with a
    // loadBalancerClass.
    let stack = "stacks/kubevirt-kubeadm";
    let template = format!("{stack}/class/kamajicontrolplanetemplate.yaml");
    let own_stack = common::read_tree(&common::root().join(stack));
    let fleet = example_fleet(
        (own_stack.into_iter())
            .map(|(path, text)| (format!("{stack}/{path}"), text))
            .collect(),
    );
    let class =
        |name: &str| format!("        loadBalancerConfig:\n          loadBalancerClass: {name}\n");
    edit(
        fleet.path(),
        &template,
        "        serviceType: LoadBalancer\n",
        &format!("        serviceType: LoadBalancer\n{}", class("metallb")),
    );
    let build = kmetal(fleet.path(), &["build"]);
    assert_eq!(build.status.code(), Some(0), "{}", stderr(&build));
    // Another class for every running control plane: the CRD refuses it.
    edit(
        fleet.path(),
        &template,
        &class("metallb"),
        &class("kube-vip"),
    );
    let crds = common::root().join("../shared/crds/upstream");
    let crds = crds.to_str().unwrap();
    for crds_args in [vec![], vec!["--crds", crds]] {
        let mut args = vec!["plan"];
        args.extend(&crds_args);
        let plan = kmetal(fleet.path(), &args);
        let out = stdout(&plan);
        assert_eq!(
            plan.status.code(),
            Some(1),
            "{crds_args:?}: {out}{}",
            stderr(&plan)
        );
        for tenant in ["acme", "beta", "gamma"] {
            let refusal = format!(
                "the API server would refuse Cluster API's update of KamajiControlPlane {tenant} at /spec/network/loadBalancerConfig/loadBalancerClass: LoadBalancerClass is immutable"
            );
            assert!(out.contains(&refusal), "{crds_args:?}: {out}");
        }
        let validate = kmetal(fleet.path(), &["validate"]);
        let err = stderr(&validate);
        assert_eq!(validate.status.code(), Some(1), "{err}");
        // At the class's line that sets it.
        let text = fs::read_to_string(fleet.path().join(&template)).unwrap();
        let line = 1 + text
            .lines()
            .position(|l| l.ends_with("loadBalancerClass: kube-vip"))
            .unwrap();
        assert!(err.contains(&format!("{template}:{line}:")), "{err}");
    }
    // Unsetting it is not refused: the rule runs only where the old and the
    // new object both have a loadBalancerConfig, as in the API server.
    edit(fleet.path(), &template, &class("kube-vip"), "");
    let plan = kmetal(fleet.path(), &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));

    // The DataStore's driver: refused once, by kmetal's own rule at the
    // site's line, not a second time by the CRD's.
    edit(
        fleet.path(),
        "kmetal.yaml",
        "driver: PostgreSQL",
        "driver: MySQL",
    );
    let validate = kmetal(fleet.path(), &["validate", "--crds", crds]);
    let err = stderr(&validate);
    assert_eq!(validate.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("kmetal::day2::refused").count(), 1, "{err}");
    assert!(
        err.contains("the driver of DataStore tenant-pg cannot change"),
        "{err}"
    );
}

#[test]
fn removing_a_tenant_s_add_on_needs_consent() {
    let fleet = built_fleet();
    edit(
        fleet.path(),
        "tenants/team-b/beta.yaml",
        "  cilium:\n    values:",
        "  cilium:\n    enabled: false\n    values:",
    );
    refused(
        fleet.path(),
        &[],
        "tenants/team-b/beta.yaml",
        "building would delete HelmRelease team-b-beta/cilium",
    );
    let build = kmetal(fleet.path(), &["build", "--allow-replace", "beta"]);
    assert_eq!(build.status.code(), Some(0), "{}", stderr(&build));
    assert!(
        !fleet
            .path()
            .join("deploy/tenants/beta/helmrelease-cilium.yaml")
            .exists()
    );
    assert!(
        fleet
            .path()
            .join("deploy/tenants/acme/helmrelease-cilium.yaml")
            .exists()
    );
}

#[test]
fn only_the_expansions_day_2_compares_are_kept() {
    let fleet = built_fleet();
    let expanded_tenants = |keep_all: bool| {
        let mut project = kmetal::project::Project::open(fleet.path(), None).unwrap();
        project.keep_expanded = keep_all;
        let compiled = kmetal::compile(&project).unwrap_or_else(|d| panic!("{d}"));
        let tenants: BTreeSet<String> = (compiled.expanded.iter())
            .filter_map(|d| kmetal::layout::tenant_of_expanded(&d.path).map(str::to_string))
            .collect();
        tenants
    };
    let all: BTreeSet<String> = ["acme", "beta", "gamma"].map(String::from).into();
    assert_eq!(expanded_tenants(true), all);
    // Nothing changed: every tenant expanded and was verified, none is kept.
    assert_eq!(expanded_tenants(false), BTreeSet::new());
    edit(
        fleet.path(),
        "tenants/team-b/beta.yaml",
        "replicas: 2\n    machineSize: medium",
        "replicas: 3\n    machineSize: medium",
    );
    assert_eq!(expanded_tenants(false), ["beta".to_string()].into());
    assert_eq!(expanded_tenants(true), all);
}
