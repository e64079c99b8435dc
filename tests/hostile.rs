//! Hostile and broken input. A value written into any free-text field either
//! is refused with a diagnostic at the input, or comes out unchanged in its
//! own place with exactly the objects of a clean input; a broken file gets a
//! diagnostic naming it. Never a panic, a hang, an extra object or a path
//! outside the output directory.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kmetal::diagnostic::codes;
use kmetal::project::Project;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng};
use serde_json::Value;

/// The site of the baseline repository; `{field}` is replaced by a JSON-quoted string.
const SITE: &str = r#"apiVersion: kmetal.io/v1alpha1
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
    endpoints: [{endpoint}]
    basicAuth:
      secret: tenant-pg-auth
      namespace: kmetal-kamaji
      keys: { username: {username_key}, password: {password_key} }
    tls:
      ca: { secret: tenant-pg-ca, namespace: kmetal-kamaji, keys: { certificate: {ca_key} } }
      client: { secret: tenant-pg-client, namespace: kmetal-kamaji }
certManager:
  clusterIssuers:
    - name: letsencrypt-prod
      acme:
        email: {email}
        server: https://acme-v02.api.letsencrypt.org/directory
        http01IngressClass: haproxy
  certificates:
    - name: console-tls
      namespace: kmetal-console
      dnsNames: [{dns_name}]
      issuer: letsencrypt-prod
flux:
  sourceRef: { kind: GitRepository, name: kmetal-gitops }
  path: {path}
"#;

/// The one tenant of the baseline repository, in `tenants/tnt.yaml`.
const TENANT: &str = r#"apiVersion: kmetal.io/v1alpha1
kind: Tenant
name: {name}
namespace: {namespace}
controlPlane:
  certSANs: [{cert_san}]
  dataStore: tenant-pg
network:
  subnet: {subnet}
"#;

/// A free-text field: where it is written and where kmetal must write it.
struct Field {
    key: &'static str,
    baseline: &'static str,
    /// Values that should mostly be accepted, to be mixed with hostile text.
    plausible: &'static str,
    /// Kind and name of the output object that carries the value.
    kind: &'static str,
    object: fn(&str) -> String,
    /// Where in that object, and how kmetal writes the value.
    get: fn(&Value) -> Option<&Value>,
    written: fn(&str) -> String,
}

fn same(value: &str) -> String {
    value.to_string()
}

/// The value of the Cluster topology variable `name`.
fn variable<'a>(cluster: &'a Value, name: &str) -> Option<&'a Value> {
    let variables = cluster.pointer("/spec/topology/variables")?.as_array()?;
    let found = variables.iter().find(|v| v["name"] == name)?;
    found.get("value")
}

const FIELDS: &[Field] = &[
    Field {
        key: "email",
        baseline: "admin@example.com",
        plausible: "[a-z0-9.+-]{1,12}@[a-z]{1,8}\\.[a-z]{2,4}",
        kind: "ClusterIssuer",
        object: |_| "letsencrypt-prod".into(),
        get: |o| o.pointer("/spec/acme/email"),
        written: same,
    },
    Field {
        key: "path",
        baseline: "./deploy",
        plausible: "(\\./)?[a-z]{1,8}(/[a-zA-Z0-9._ -]{1,8}){0,3}/?",
        kind: "Kustomization",
        object: |_| "production-platform-metallb".into(),
        get: |o| o.pointer("/spec/path"),
        written: |v| match v.trim_end_matches('/') {
            "" => "./platform/metallb".into(),
            path => format!("{path}/platform/metallb"),
        },
    },
    Field {
        key: "endpoint",
        baseline: "pg-rw.kmetal-cnpg.svc:5432",
        plausible: "[a-z0-9]{1,8}(\\.[a-z0-9-]{1,8}){0,3}:[1-9][0-9]{0,4}",
        kind: "DataStore",
        object: |_| "tenant-pg".into(),
        get: |o| o.pointer("/spec/endpoints/0"),
        written: same,
    },
    Field {
        key: "dns_name",
        baseline: "console.example.com",
        plausible: "(\\*\\.)?[a-z0-9]{1,8}(\\.[a-z0-9-]{1,8}){0,3}",
        kind: "Certificate",
        object: |_| "console-tls".into(),
        get: |o| o.pointer("/spec/dnsNames/0"),
        written: same,
    },
    Field {
        key: "username_key",
        baseline: "username",
        plausible: "[a-zA-Z0-9._-]{1,12}",
        kind: "DataStore",
        object: |_| "tenant-pg".into(),
        get: |o| o.pointer("/spec/basicAuth/username/secretReference/keyPath"),
        written: same,
    },
    Field {
        key: "password_key",
        baseline: "password",
        plausible: "[a-zA-Z0-9._-]{1,12}",
        kind: "DataStore",
        object: |_| "tenant-pg".into(),
        get: |o| o.pointer("/spec/basicAuth/password/secretReference/keyPath"),
        written: same,
    },
    Field {
        key: "ca_key",
        baseline: "ca.crt",
        plausible: "[a-zA-Z0-9._-]{1,12}",
        kind: "DataStore",
        object: |_| "tenant-pg".into(),
        get: |o| {
            o.pointer("/spec/tlsConfig/certificateAuthority/certificate/secretReference/keyPath")
        },
        written: same,
    },
    Field {
        key: "cert_san",
        baseline: "tnt.example.com",
        plausible: "(\\*\\.)?[a-z0-9]{1,8}(\\.[a-z0-9-]{1,8}){0,3}|10\\.[0-9]{1,3}\\.0\\.[0-9]{1,3}|fd00::[0-9a-f]{1,4}",
        kind: "Cluster",
        object: |_| "tnt".into(),
        get: |o| variable(o, "controlPlane")?.pointer("/network/certSANs/0"),
        written: |v| {
            v.parse::<std::net::IpAddr>()
                .map_or(v.to_string(), |ip| ip.to_string())
        },
    },
    Field {
        key: "name",
        baseline: "tnt",
        plausible: "[a-z0-9][a-z0-9-]{0,14}[a-z0-9]",
        kind: "Cluster",
        object: same,
        get: |o| o.pointer("/metadata/name"),
        written: same,
    },
    Field {
        key: "namespace",
        baseline: "tns",
        plausible: "[a-z0-9][a-z0-9-]{0,14}[a-z0-9]",
        kind: "Namespace",
        object: same,
        get: |o| o.pointer("/metadata/name"),
        written: same,
    },
    Field {
        key: "subnet",
        baseline: "tsub",
        plausible: "[a-z0-9]{1,8}(\\.[a-z0-9-]{1,8}){0,3}",
        kind: "Cluster",
        object: |_| "tnt".into(),
        get: |o| variable(o, "network")?.get("subnet"),
        written: same,
    },
];

/// Text that YAML, Jinja or a shell would read as more than a string.
const PIECES: &[&str] = &[
    "\n",
    "\r\n",
    "---",
    "\n---\n",
    "...",
    ": ",
    " #",
    "#",
    "\"",
    "'",
    "\\",
    "{{ ",
    " }}",
    "{{ tenant.name }}",
    "{% ",
    " %}",
    "{% raw %}",
    "{#",
    "*",
    "*a",
    "&a ",
    "!",
    "!!str ",
    "|",
    ">",
    "%",
    "%YAML",
    "@",
    "`",
    "$(id)",
    "\t",
    "\0",
    "\u{7}",
    "\u{1b}[31m",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\u{feff}",
    "\u{202e}",
    "\u{200b}",
    "/",
    "..",
    "../",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "?",
    "~",
    "null",
    "yes",
    "on",
    "0755",
    " ",
    "é",
    "\u{1f600}",
    "\nkind: ClusterRoleBinding\n",
    "a",
    "x.y",
];

fn hostile_piece() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 1..6).prop_map(|p| p.concat())
}

/// Plausible values, plausible values with hostile text around them, hostile
/// text alone, any string at all, and very long values.
fn values(field: &Field) -> impl Strategy<Value = String> + use<> {
    let plausible = field.plausible;
    prop_oneof![
        3 => plausible.prop_map(|s: String| s),
        3 => (plausible, hostile_piece(), any::<bool>()).prop_map(|(value, hostile, front)| {
            if front { hostile + &value } else { value + &hostile }
        }),
        2 => hostile_piece(),
        1 => any::<String>(),
        1 => (plausible, 200usize..3000).prop_map(|(value, n)| value.repeat(n / value.len().max(1) + 1)),
    ]
}

/// The repository with `field` set to `value` (everything else at its baseline).
fn write_repository(dir: &Path, field: Option<(&Field, &str)>) {
    let fill = |template: &str| {
        let mut text = template.to_string();
        for f in FIELDS {
            let value = match field {
                Some((g, value)) if g.key == f.key => value,
                _ => f.baseline,
            };
            let quoted = serde_json::to_string(value).expect("a string serializes");
            text = text.replace(&format!("{{{}}}", f.key), &quoted);
        }
        text
    };
    fs::create_dir_all(dir.join("tenants")).unwrap();
    fs::write(dir.join("kmetal.yaml"), fill(SITE)).unwrap();
    fs::write(dir.join("tenants/tnt.yaml"), fill(TENANT)).unwrap();
}

/// (apiVersion, kind, namespace, name) of an object.
type Identity = (String, String, String, String);

fn identity(object: &Value) -> Identity {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        text(&object["apiVersion"]),
        text(&object["kind"]),
        text(&object["metadata"]["namespace"]),
        text(&object["metadata"]["name"]),
    )
}

/// Every object of the output, each file checked to be one document at a plain relative path.
fn objects(tree: &std::collections::BTreeMap<String, String>) -> Vec<Value> {
    let mut objects = Vec::new();
    for (path, text) in tree {
        let plain = !path.is_empty()
            && !path.starts_with('/')
            && !path.contains('\\')
            && path
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != "..");
        assert!(plain, "output path {path:?} is not a plain relative path");
        if path == ".kmetal-manifest" || path.ends_with("kustomization.yaml") {
            continue;
        }
        let mut docs = kmetal::yaml::parse_values(text).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(docs.len(), 1, "{path} holds {} documents", docs.len());
        objects.push(docs.remove(0));
    }
    objects
}

fn compile(dir: &Path) -> Result<Vec<Value>, kmetal::diagnostic::Diagnostics> {
    let project = Project::open(dir, None).expect("kmetal.yaml was written");
    kmetal::compile(&project).map(|compiled| objects(compiled.tree.files()))
}

/// The baseline's identities, with the tenant's name or namespace changed to `value`.
fn expected_identities(baseline: &[Value], field: &Field, value: &str) -> BTreeSet<Identity> {
    let rename = |s: String| match field.key {
        "name" => s.replace("tnt", value),
        "namespace" if s == "tns" => value.to_string(),
        _ => s,
    };
    baseline
        .iter()
        .map(identity)
        .map(|(a, k, ns, name)| (a, k, rename(ns), rename(name)))
        .collect()
}

/// The property for one field and one value; whether kmetal accepted it.
fn check(baseline: &[Value], field: &Field, value: &str) -> Result<bool, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    write_repository(dir.path(), Some((field, value)));
    let objects = match compile(dir.path()) {
        Ok(objects) => objects,
        Err(diagnostics) => {
            prop_assert!(diagnostics.has_errors());
            for d in diagnostics.iter() {
                let file = d.location.as_ref().map(|l| l.file.as_str());
                let at_input = matches!(file, Some("kmetal.yaml" | "tenants/tnt.yaml"));
                let input_code = ["kmetal::spec::", "kmetal::yaml::", "kmetal::network::"]
                    .iter()
                    .any(|prefix| d.code.starts_with(prefix));
                prop_assert!(at_input && input_code, "refused late or elsewhere: {d}");
            }
            return Ok(false);
        }
    };
    let actual: BTreeSet<Identity> = objects.iter().map(identity).collect();
    prop_assert_eq!(objects.len(), baseline.len());
    prop_assert_eq!(actual, expected_identities(baseline, field, value));
    let name = (field.object)(value);
    let carrier = objects
        .iter()
        .find(|o| o["kind"] == field.kind && o["metadata"]["name"] == name.as_str());
    let written = carrier.and_then(field.get).and_then(Value::as_str);
    let expected = (field.written)(value);
    prop_assert_eq!(
        written,
        Some(expected.as_str()),
        "{} of {}",
        field.key,
        field.kind
    );
    Ok(true)
}

fn baseline() -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    write_repository(dir.path(), None);
    compile(dir.path()).unwrap_or_else(|d| panic!("the baseline compiles:\n{d}"))
}

#[test]
fn free_text_is_refused_or_lands_unchanged_in_its_place() {
    let baseline = baseline();
    let config = ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    for (index, field) in FIELDS.iter().enumerate() {
        let (accepted, refused) = (Cell::new(0), Cell::new(0));
        // A fixed seed per field: the same values on every machine, so "both
        // outcomes" cannot hold on one run and fail on the next.
        let seed = [u8::try_from(index).expect("a few fields") + 1; 32];
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
        let mut runner = proptest::test_runner::TestRunner::new_with_rng(config.clone(), rng);
        runner
            .run(&values(field), |value| {
                let counter = if check(&baseline, field, &value)? {
                    &accepted
                } else {
                    &refused
                };
                counter.set(counter.get() + 1);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("field {}: {e}", field.key));
        // Both outcomes must be exercised, or the property says little.
        assert!(
            accepted.get() > 0 && refused.get() > 0,
            "field {}: {} accepted, {} refused",
            field.key,
            accepted.get(),
            refused.get()
        );
    }
}

/// The baseline repository with `tenants/tnt.yaml` replaced by `bytes`.
fn repository_with_tenant(bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_repository(dir.path(), None);
    fs::write(dir.path().join("tenants/tnt.yaml"), bytes).unwrap();
    dir
}

fn baseline_tenant() -> String {
    let dir = tempfile::tempdir().unwrap();
    write_repository(dir.path(), None);
    fs::read_to_string(dir.path().join("tenants/tnt.yaml")).unwrap()
}

#[test]
fn a_byte_order_mark_and_crlf_line_ends_change_nothing() {
    let baseline = baseline();
    let tenant = baseline_tenant();
    let bom = format!("\u{feff}{tenant}").into_bytes();
    let crlf = tenant.replace('\n', "\r\n").into_bytes();
    for bytes in [bom, crlf] {
        let dir = repository_with_tenant(&bytes);
        let objects = compile(dir.path()).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(objects, baseline);
    }
}

#[test]
fn files_over_the_size_limit_are_refused_before_parsing() {
    let padded = format!("{}# {}\n", baseline_tenant(), "x".repeat(8 << 10));
    let dir = repository_with_tenant(padded.as_bytes());
    let mut project = Project::open(dir.path(), None).unwrap();
    assert!(
        kmetal::compile(&project).is_ok(),
        "the default limit is 1 MiB"
    );
    project.max_file_bytes = 4 << 10;
    let diagnostics = kmetal::compile(&project).unwrap_err();
    let found: Vec<_> = diagnostics
        .iter()
        .map(|d| {
            (
                d.code,
                d.location.as_ref().map(|l| l.file.clone()),
                d.message.clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [(
            codes::YAML_LIMIT,
            Some("tenants/tnt.yaml".to_string()),
            "this file is larger than 4 KiB, the limit of an input file".to_string()
        )]
    );
}

/// A billion laughs: nine levels of nine aliases to the level below.
fn alias_bomb() -> String {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..9 {
        let below = vec![format!("*a{}", level - 1); 9].join(", ");
        text += &format!("a{level}: &a{level} [{below}]\n");
    }
    text
}

/// What a corpus entry puts at `tenants/tnt.yaml`.
enum Entry {
    File(Vec<u8>),
    Directory,
    Fifo,
}

/// Broken and hostile tenant files, and the exit code each must give.
fn corpus() -> Vec<(&'static str, Entry, i32)> {
    let tenant = baseline_tenant();
    let file = |text: String| Entry::File(text.into_bytes());
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(tenant.encode_utf16().flat_map(u16::to_le_bytes));
    vec![
        ("invalid UTF-8", Entry::File(b"name: caf\xe9\n".to_vec()), 1),
        ("UTF-16", Entry::File(utf16), 1),
        ("byte-order mark", file(format!("\u{feff}{tenant}")), 0),
        ("CRLF line ends", file(tenant.replace('\n', "\r\n")), 0),
        ("duplicate keys", file(format!("{tenant}name: again\n")), 1),
        ("tab indentation", file(tenant.replace("  ", "\t")), 1),
        ("empty file", file(String::new()), 1),
        ("only comments", file("# name: tnt\n".into()), 1),
        ("two documents", file(format!("{tenant}---\n{tenant}")), 1),
        (
            "billion laughs",
            file(format!("{tenant}{}", alias_bomb())),
            1,
        ),
        (
            "billion laughs first",
            file(format!("{}{tenant}", alias_bomb())),
            1,
        ),
        (
            "10,000-deep nesting",
            file(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))),
            1,
        ),
        (
            "deep nesting in a value",
            file(format!("{tenant}x: {}\n", "[".repeat(10_000))),
            1,
        ),
        (
            "2 MiB file",
            file(format!("{tenant}# {}\n", "x".repeat(2 << 20))),
            1,
        ),
        ("NUL bytes", file(format!("{tenant}\0\0\0")), 1),
        (
            "an escape sequence",
            file(format!("{tenant}# \u{1b}]0;owned\u{7}\n")),
            1,
        ),
        ("10,000 documents", file("---\n".repeat(10_000)), 1),
        ("a directory named tnt.yaml", Entry::Directory, 1),
        ("a FIFO named tnt.yaml", Entry::Fifo, 1),
    ]
}

/// Run `kmetal -C dir validate`; its exit code and stderr. A run that takes
/// over a minute is a hang.
fn validate(dir: &Path) -> (Option<i32>, String) {
    let stderr_path = dir.join("stderr.txt");
    let stderr = fs::File::create(&stderr_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmetal"))
        .arg("-C")
        .arg(dir)
        .arg("validate")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the kmetal binary runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("kmetal hangs on {}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), fs::read_to_string(stderr_path).unwrap())
}

#[test]
fn the_binary_never_panics_on_broken_files() {
    for (name, entry, expected) in corpus() {
        let dir = tempfile::tempdir().unwrap();
        write_repository(dir.path(), None);
        let tenant = dir.path().join("tenants/tnt.yaml");
        fs::remove_file(&tenant).unwrap();
        match entry {
            Entry::File(bytes) => fs::write(&tenant, bytes).unwrap(),
            Entry::Directory => fs::create_dir(&tenant).unwrap(),
            Entry::Fifo => {
                let made = Command::new("mkfifo").arg(&tenant).status();
                assert!(made.is_ok_and(|s| s.success()), "mkfifo works");
            }
        }
        let (code, stderr) = validate(dir.path());
        assert_eq!(code, Some(expected), "{name}:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{name}:\n{stderr}");
        if expected != 0 {
            assert!(
                stderr.contains("tenants/tnt.yaml"),
                "{name} names no file:\n{stderr}"
            );
        }
        assert!(
            !stderr.contains('\u{1b}'),
            "{name}: stderr holds an escape:\n{stderr}"
        );
    }
}
