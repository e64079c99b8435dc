//! Arbitrary bytes as `kmetal.yaml` and as a tenant file, through the same
//! steps as `kmetal validate` (UTF-8, byte-order mark, YAML limits, one
//! document, the spec types), then the checks of the site and of the tenant
//! against a fixed valid site. Anything may be refused with diagnostics;
//! nothing may panic, hang or allocate without bound.
#![no_main]

use std::path::Path;

use kmetal::diagnostic::Diagnostics;
use kmetal::spec;
use libfuzzer_sys::fuzz_target;

const SITE: &str = "apiVersion: kmetal.io/v1alpha1
kind: Site
name: production
bootstrapServer: 10.10.0.10
defaults:
  kubernetesVersion: v1.34.1
metallb:
  pools:
    - name: default-pool
      addresses: [192.168.1.100-192.168.1.200]
dataStores:
  - name: tenant-pg
    driver: PostgreSQL
    endpoints: [pg-rw.kmetal-cnpg.svc:5432]
    basicAuth: { secret: tenant-pg-auth, namespace: kmetal-kamaji }
flux:
  sourceRef: { kind: GitRepository, name: kmetal-gitops }
";

fuzz_target!(|data: &[u8]| {
    let mut diagnostics = Diagnostics::new();
    // Built-in stacks only: the directory does not exist.
    let stacks = kmetal::stack::load(Path::new("/nonexistent/stacks"), &mut diagnostics);
    if let Some(raw) = spec::parse_site(data, &mut diagnostics) {
        let _ = spec::check_site("kmetal.yaml", &raw.value, &raw.cut, &stacks, &mut diagnostics);
    }
    let mut fixed = Diagnostics::new();
    let raw = spec::parse_site(SITE.as_bytes(), &mut fixed).expect("the fixed site parses");
    let site = spec::check_site("kmetal.yaml", &raw.value, &raw.cut, &stacks, &mut fixed);
    assert!(!fixed.has_errors(), "the fixed site is valid");
    if let Some(tenant) = spec::parse_tenant("tenants/fuzz.yaml".into(), data, &mut diagnostics) {
        let _ = spec::check_tenants(&[tenant], &site, &stacks, &mut diagnostics);
    }
});
