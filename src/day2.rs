//! The previous output (what Flux has applied: the output directory on disk,
//! or at a git ref) + the new one → the [`Plan`]: what happens to each object,
//! in the platform's words, and the changes the platform would refuse or that
//! destroy a running cluster.
//!
//! Objects are identified by API group, kind, namespace and name. Refused
//! always (Cluster API, Kamaji or the CRDs refuse them too): a version
//! downgrade or a skipped minor, a DataStore's driver, a move to a datastore of
//! another driver, a running tenant's pod or service network or VIP, a pool that
//! holds VIPs disappearing, an immutable template edited in place. Refused
//! unless the user consents for that tenant (`--allow-removal`,
//! `--allow-replace`): deleting or replacing a Cluster, its Namespace, a pruning
//! Flux Kustomization or a DataStore, whatever the cause (a renamed site, a
//! moved namespace, a changed Flux namespace).

use crate::output::{self, OnDisk};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::value::Value;
use rayon::prelude::*;
use rustc_hash::FxBuildHasher;
use serde::Serialize;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::lock::Lock;
use crate::render::Document;
use crate::spec::Site;
use crate::variables::{cluster_variable, named_value};
use crate::yaml;

/// API group, kind, namespace, name.
pub type Identity = (String, String, String, String);

/// The objects of the previous output, by identity, with their path.
#[derive(Clone, Debug, Default)]
pub struct Previous<'a> {
    /// One object per identity ([`identity`]), in identity order. An object
    /// whose file the new output repeats is the new object itself, borrowed;
    /// the others are parsed.
    pub objects: Vec<OldObject<'a>>,
    /// The paths whose text is the new output's, byte for byte.
    pub same: BTreeSet<String>,
    /// The lock that went with it.
    pub lock: Lock,
}

/// A previous object: its file, and the object (borrowed when it is the new one).
pub type OldObject<'a> = (String, Cow<'a, Value>);

/// What a change does to one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    /// The JSON pointers that changed.
    Update(Vec<String>),
    Delete,
    /// Deleted and created under another identity.
    Replace,
    /// No object: a note about the change as a whole.
    Notice,
}

/// One object's change, and what it means for the platform.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The tenant it belongs to (`kmetal.io/tenant`); none for the platform.
    pub tenant: Option<String>,
    pub action: Action,
    /// In the platform's words: "control plane upgrade v1.33.5 → v1.34.1".
    pub meaning: Vec<String>,
    /// A refusal, with why; the same text as its diagnostic.
    pub refused: Option<String>,
    /// A warning: allowed, but worth a look.
    pub warning: Option<String>,
}

/// Every change, sorted by tenant, kind and name.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}

/// An object's identity: API group, kind, namespace, name.
pub fn identity(v: &Value) -> Identity {
    owned(key(v))
}

fn owned((group, kind, namespace, name): Key<'_>) -> Identity {
    (group.into(), kind.into(), namespace.into(), name.into())
}

/// An [`Identity`] borrowed from its object:
/// what the lookups of a whole fleet use, hashed, without a copy.
type Key<'v> = (&'v str, &'v str, &'v str, &'v str);

/// The identity of `v`, borrowed from it.
fn key(v: &Value) -> Key<'_> {
    fn s(v: Option<&Value>) -> &str {
        v.and_then(Value::as_str).unwrap_or_default()
    }
    let metadata = v.field("metadata");
    let field = |key: &str| s(metadata.and_then(|m| m.field(key)));
    let group = crate::json::api_group(s(v.field("apiVersion")));
    (group, s(v.field("kind")), field("namespace"), field("name"))
}

/// The new output's text and object at a path: a previous file with that
/// very text holds that object, and needs no parsing.
pub type Unchanged<'a> = dyn Fn(&str) -> Option<(&'a str, &'a Value)> + Sync + 'a;

/// Where the previous output's files are read.
pub enum Files<'f> {
    /// One at a time, from a directory, in parallel.
    Disk(&'f Path),
    /// All at once, in the manifest's order (`git cat-file --batch`).
    Read(Box<ReadAll<'f>>),
}

/// The texts of these paths (`None` for a missing file).
pub type ReadAll<'f> = dyn FnOnce(&[String]) -> Vec<Option<String>> + 'f;

/// The previous output from files: `manifest` is the old `.kmetal-manifest`
/// (only what it lists is kmetal's), `read` gives the texts of many paths at
/// once. Files whose text the new output repeats are taken from it unparsed;
/// the others are parsed in parallel.
pub fn previous_from<'a>(
    manifest: Option<String>,
    files: Files<'_>,
    unchanged: &Unchanged<'a>,
) -> Previous<'a> {
    let mut previous = Previous::default();
    let Some(manifest) = manifest else {
        return previous;
    };
    let paths: Vec<String> = (manifest.lines())
        .filter(|l| !l.starts_with('#'))
        .filter(|p| p.ends_with(".yaml") && !p.ends_with("kustomization.yaml"))
        .map(str::to_string)
        .collect();
    let known = |same: &'a Value| Some(Cow::Borrowed(same));
    let parsed = |text: &str| Some(Cow::Owned(yaml::parse_tree(text).ok()?));
    let value = |path: &str, text: &str| match unchanged(path) {
        Some((now, same)) if now == text => known(same),
        _ => parsed(text),
    };
    // Read, compared and dropped file by file: the texts are never all held.
    let values: Vec<Option<Cow<'a, Value>>> = match files {
        Files::Disk(dir) => (paths.par_iter())
            .map(|path| {
                let now = unchanged(path);
                match output::read_unless(&dir.join(path), now.map(|(text, _)| text)).ok()? {
                    OnDisk::Same => known(now?.1),
                    OnDisk::Other(text) => parsed(&text),
                }
            })
            .collect(),
        Files::Read(read) => {
            let texts = read(&paths);
            (paths.par_iter())
                .zip(texts.par_iter())
                .map(|(path, text)| value(path, text.as_deref()?))
                .collect()
        }
    };
    let mut objects: Vec<OldObject<'a>> = Vec::with_capacity(paths.len());
    let mut same = Vec::with_capacity(paths.len());
    for (path, value) in paths.into_iter().zip(values) {
        if let Some(value) = value {
            if matches!(value, Cow::Borrowed(_)) {
                same.push(path.clone());
            }
            objects.push((path, value));
        }
    }
    // The manifest lists paths sorted: the set is built from them at once
    // rather than a search per path.
    previous.same = same.into_iter().collect();
    // In identity order, sorted by identities borrowed from the objects; of
    // two files with one identity the later one counts (as inserting them in
    // order would have it): the last of each run of (identity, position).
    let order: Vec<usize> = {
        let mut keyed: Vec<(Key<'_>, usize)> = (objects.par_iter().enumerate())
            .map(|(at, (_, value))| (key(value), at))
            .collect();
        keyed.par_sort_unstable();
        let mut order: Vec<usize> = Vec::with_capacity(keyed.len());
        let mut last = None;
        for (id, at) in keyed {
            match order.last_mut() {
                Some(kept) if last == Some(id) => *kept = at,
                _ => order.push(at),
            }
            last = Some(id);
        }
        order
    };
    let mut slots: Vec<Option<OldObject<'a>>> = objects.into_iter().map(Some).collect();
    previous.objects = (order.into_iter())
        .filter_map(|at| slots[at].take())
        .collect();
    previous
}

/// The previous output as the output directory holds it.
pub fn previous_on_disk<'a>(out_dir: &Path, unchanged: &Unchanged<'a>) -> Previous<'a> {
    let manifest = std::fs::read_to_string(out_dir.join(crate::output::MANIFEST)).ok();
    previous_from(manifest, Files::Disk(out_dir), unchanged)
}

/// The previous output and lock at git `reference` (`kmetal plan --against`).
pub fn previous_at<'a>(
    root: &Path,
    reference: &str,
    out_dir: &Path,
    unchanged: &Unchanged<'a>,
) -> Result<(Previous<'a>, Option<String>), Diagnostic> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
    };
    let failed = |why: String| {
        Diagnostic::error(codes::IO, format!("--against {reference}: {why}")).help(
            "name a commit, branch or tag of the repository holding kmetal.yaml, e.g. origin/main",
        )
    };
    let top = git(&["rev-parse", "--show-toplevel"])
        .map_err(|e| failed(format!("cannot run git: {e}")))?;
    if !top.status.success() {
        return Err(failed("kmetal.yaml is not in a git repository".into()));
    }
    let top = std::path::PathBuf::from(String::from_utf8_lossy(&top.stdout).trim());
    let verified = git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{reference}^{{commit}}"),
    ])
    .map_err(|e| failed(e.to_string()))?;
    if !verified.status.success() {
        return Err(failed("no such commit".into()));
    }
    let relative = |path: &Path| {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let canonical_top = top.canonicalize().unwrap_or(top.clone());
        let absolute = absolute.canonicalize().unwrap_or_else(|_| absolute.clone());
        absolute
            .strip_prefix(&canonical_top)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .ok()
    };
    let show = |path: String| {
        git(&["show", &format!("{reference}:{path}")])
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let out = relative(out_dir).unwrap_or_default();
    let join = |p: &str| {
        if out.is_empty() {
            p.to_string()
        } else {
            format!("{out}/{p}")
        }
    };
    // Every file in one `git cat-file --batch`, not one git per file.
    let batch = |paths: &[String]| -> Vec<Option<String>> {
        let names: Vec<String> = paths
            .iter()
            .map(|p| format!("{reference}:{}", join(p)))
            .collect();
        cat_files(root, &names).unwrap_or_else(|| paths.iter().map(|p| show(join(p))).collect())
    };
    let previous = previous_from(
        show(join(crate::output::MANIFEST)),
        Files::Read(Box::new(batch)),
        unchanged,
    );
    let lock = relative(&root.join(crate::lock::LOCK_FILE)).and_then(show);
    Ok((previous, lock))
}

/// The contents of `objects` (`REF:path`) from one `git cat-file --batch`;
/// a missing object is `None`. `None` as a whole when git cannot run.
fn cat_files(root: &Path, objects: &[String]) -> Option<Vec<Option<String>>> {
    use std::io::Write;
    let mut child = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["cat-file", "--batch"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input: String = objects.iter().map(|o| format!("{o}\n")).collect();
    // Written from a thread: git answers while it reads, and a full pipe
    // either way would stall both.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    let mut out = output.stdout.as_slice();
    let mut texts = Vec::with_capacity(objects.len());
    for _ in objects {
        let end = out.iter().position(|b| *b == b'\n')?;
        let header = std::str::from_utf8(&out[..end]).ok()?;
        out = &out[end + 1..];
        if header.ends_with(" missing") {
            texts.push(None);
            continue;
        }
        let size: usize = header.rsplit(' ').next()?.parse().ok()?;
        let body = out.get(..size)?;
        texts.push(String::from_utf8(body.to_vec()).ok());
        out = out.get(size + 1..)?;
    }
    Some(texts)
}

/// Who consented to what: tenants that may be removed, tenants (or
/// `datastore/<name>`, `platform`) whose objects may be replaced, and whether
/// every removal of a tenant is allowed (`check`, which reports them).
pub struct Consent<'a> {
    pub removal: &'a BTreeSet<String>,
    pub replace: &'a BTreeSet<String>,
    pub allow_all: bool,
}

/// `(old, new)` → `(JSON pointer, message)` of each CRD transition rule broken.
pub type UpdateRules<'a> = dyn Fn(&Value, &Value) -> Vec<(String, String)> + 'a;

/// What the CRDs say about updates, and what Cluster API expanded before and
/// after: the objects no output holds, yet the API server judges.
pub struct Updates<'a> {
    /// The CRD transition rules (`oldSelf`) an update old → new breaks, as
    /// `(JSON pointer, message)`.
    pub rules: &'a UpdateRules<'a>,
    pub old_expanded: &'a BTreeMap<Identity, Value>,
    pub new_expanded: &'a [Document],
    /// Tenants whose previous topology no longer expands, and why.
    pub unexpanded: &'a [(String, String)],
}

/// Entries found by their identity: a hash table of positions in
/// `entries` (4 bytes a slot, not a copy of the key). Of two entries with
/// one identity the later one counts.
struct ByKey<'e, 'k, T> {
    entries: &'e [(Key<'k>, T)],
    table: hashbrown::HashTable<u32>,
}

impl<'e, 'k, T> ByKey<'e, 'k, T> {
    fn new(entries: &'e [(Key<'k>, T)]) -> Self {
        use std::hash::BuildHasher;
        let hash = |key: &Key<'_>| FxBuildHasher.hash_one(key);
        let mut table = hashbrown::HashTable::with_capacity(entries.len());
        for (at, (key, _)) in entries.iter().enumerate() {
            let at = u32::try_from(at).expect("fewer than 4 billion objects");
            let same = |other: &u32| entries[*other as usize].0 == *key;
            match table.find_mut(hash(key), same) {
                Some(slot) => *slot = at,
                None => {
                    table.insert_unique(hash(key), at, |other: &u32| {
                        hash(&entries[*other as usize].0)
                    });
                }
            }
        }
        ByKey { entries, table }
    }

    fn get(&self, key: &Key<'_>) -> Option<&'e T> {
        use std::hash::BuildHasher;
        let found = self.table.find(FxBuildHasher.hash_one(key), |other| {
            self.entries[*other as usize].0 == *key
        })?;
        Some(&self.entries[*found as usize].1)
    }

    fn contains_key(&self, key: &Key<'_>) -> bool {
        self.get(key).is_some()
    }
}

/// Judge the new output against the previous one. Refusals are pushed to
/// `diagnostics` at the input line that causes them.
#[allow(clippy::too_many_arguments)]
pub fn judge(
    previous: &Previous<'_>,
    documents: &[Document],
    site: &Site,
    chained_versions: &[String],
    consent: &Consent<'_>,
    updates: &Updates<'_>,
    source: &dyn Fn(&str) -> Option<std::sync::Arc<str>>,
    diagnostics: &mut Diagnostics,
) -> Plan {
    // Both outputs by identity, borrowed and hashed: a fleet's worth of
    // lookups each way. Of two new objects with one identity the later one
    // counts.
    let (keyed, old_keyed) = rayon::join(
        || -> Vec<(Key<'_>, &Document)> {
            documents.par_iter().map(|d| (key(&d.value), d)).collect()
        },
        || -> Vec<(Key<'_>, &OldObject<'_>)> {
            (previous.objects.par_iter())
                .map(|object| (key(&object.1), object))
                .collect()
        },
    );
    let (new, old) = rayon::join(|| ByKey::new(&keyed), || ByKey::new(&old_keyed));
    let mut plan = Plan::default();
    let place = |file: &str, values: &[&str]| {
        values
            .iter()
            .find_map(|v| {
                let text = source(file)?;
                yaml::find_scalar(file, &text, v).into_iter().next()
            })
            .unwrap_or_else(|| SourceLocation::file(file))
    };
    let mut refuse =
        |plan_change: &mut Change, at: SourceLocation, message: String, help: String| {
            plan_change.refused = Some(match plan_change.refused.take() {
                Some(earlier) => format!("{earlier}; {message}"),
                None => message.clone(),
            });
            diagnostics.push(
                Diagnostic::error(codes::DAY2_REFUSED, message)
                    .at(at)
                    .help(help),
            );
        };
    let tenant_of = |v: &Value| {
        v.at("/metadata/labels/kmetal.io~1tenant")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    // The DataStores' drivers, by name (the identities say which are DataStores).
    let drivers =
        |objects: &mut dyn Iterator<Item = (Key<'_>, &Value)>| -> BTreeMap<String, String> {
            let mut map: BTreeMap<String, String> = objects
                .filter(|(id, _)| id.1 == "DataStore")
                .map(|(_, v)| {
                    (
                        v.item("metadata")
                            .item("name")
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        v.item("spec")
                            .item("driver")
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
            // The platform's `default` DataStore is Kamaji's etcd.
            map.entry(crate::spec::PLATFORM_DATASTORE.to_string())
                .or_insert_with(|| "etcd".into());
            map
        };
    let old_drivers = drivers(&mut old_keyed.iter().map(|(id, (_, v))| (*id, &**v)));
    let new_drivers = drivers(&mut keyed.iter().map(|(id, d)| (*id, &d.value)));
    // The new objects of each tenant, by kind: where a deleted one went.
    // Built only when something is deleted.
    let by_tenant = std::cell::OnceCell::new();
    let by_tenant = || {
        by_tenant.get_or_init(|| {
            let mut by_tenant: BTreeMap<(&str, String), &Document> = BTreeMap::new();
            for d in documents {
                if let (Some(kind), Some(t)) = (d.value.item("kind").as_str(), tenant_of(&d.value))
                {
                    by_tenant.entry((kind, t)).or_insert(d);
                }
            }
            by_tenant
        })
    };
    // Deleted or replaced: the previous objects the new output lacks,
    // found in parallel (a lookup each), judged in order.
    let gone: Vec<(Identity, &OldObject<'_>)> = (old_keyed.par_iter())
        .filter(|(id, _)| !new.contains_key(id))
        .map(|&(id, object)| (owned(id), object))
        .collect();
    for (id, (path, old)) in gone {
        let (group, kind, namespace, name) = id;
        let tenant = tenant_of(old);
        let successor = tenant
            .as_ref()
            .and_then(|t| by_tenant().get(&(kind.as_str(), t.clone())).copied());
        let mut change = Change {
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            tenant: tenant.clone(),
            action: if successor.is_some() {
                Action::Replace
            } else {
                Action::Delete
            },
            meaning: Vec::new(),
            refused: None,
            warning: None,
        };
        let kept = (old.at("/metadata/annotations/kustomize.toolkit.fluxcd.io~1prune"))
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("disabled"));
        if kind == "Namespace" && kept {
            change.meaning.push(format!(
                "namespace {name} stays (Flux does not prune it): delete it once its Cluster is gone"
            ));
        }
        let destructive = match kind.as_str() {
            "Cluster" => Some("Cluster API deletes the cluster and its machines"),
            "Namespace" if !kept => Some("Kubernetes deletes everything in it, the Cluster too"),
            "DataStore" => Some("the control planes on it lose their state"),
            "HelmRelease" => Some(
                "helm-controller uninstalls the add-on from the tenant cluster (without its CNI, no workload runs)",
            ),
            "Kustomization"
                if group == "kustomize.toolkit.fluxcd.io"
                    && *old.item("spec").item("prune") == true =>
            {
                Some("Flux prunes everything it applied before a new Kustomization takes over")
            }
            _ => None,
        };
        if kind == "Cluster" {
            change.meaning.push(match &successor {
                Some(d) => format!(
                    "cluster replaced: deleted as {namespace}/{name}, created as {}/{}",
                    d.value
                        .item("metadata")
                        .item("namespace")
                        .as_str()
                        .unwrap_or_default(),
                    d.value
                        .item("metadata")
                        .item("name")
                        .as_str()
                        .unwrap_or_default()
                ),
                None => "cluster deleted".into(),
            });
        }
        if let Some(why) = destructive {
            let consented = (successor.is_none() && consent.allow_all)
                || tenant
                    .as_ref()
                    .is_some_and(|t| consent.removal.contains(t) || consent.replace.contains(t))
                || (kind == "DataStore" && consent.replace.contains(&format!("datastore/{name}")))
                || (tenant.is_none() && consent.replace.contains("platform"));
            if !consented {
                let verb = if successor.is_some() {
                    "replace"
                } else {
                    "delete"
                };
                let (at, flag) = match (&successor, &tenant) {
                    (Some(d), Some(t)) => {
                        let v = &d.value.item("metadata");
                        let values = [
                            v.item("namespace").as_str().unwrap_or_default(),
                            v.item("name").as_str().unwrap_or_default(),
                            site.name.as_str(),
                            site.flux.namespace.as_str(),
                        ];
                        let at = place(&d.source, &values);
                        let at = if at.line == 0 {
                            place(&site.file, &values)
                        } else {
                            at
                        };
                        (at, format!("--allow-replace {t}"))
                    }
                    (None, Some(t)) => {
                        // A tenant still in the output (an add-on it lost): its
                        // own file says why, and the consent is to change it.
                        // Every tenant has its Flux Kustomization.
                        let remaining = by_tenant().get(&("Kustomization", t.clone()));
                        match remaining {
                            Some(d) => (
                                place(&d.source, &[name.as_str()]),
                                format!("--allow-replace {t}"),
                            ),
                            None => (SourceLocation::file(path), format!("--allow-removal {t}")),
                        }
                    }
                    (_, None) if kind == "DataStore" => (
                        SourceLocation::file(&site.file),
                        format!("--allow-replace datastore/{name}"),
                    ),
                    _ => (
                        place(
                            &site.file,
                            &[site.name.as_str(), site.flux.namespace.as_str()],
                        ),
                        "--allow-replace platform".to_string(),
                    ),
                };
                let object = if namespace.is_empty() {
                    name.clone()
                } else {
                    format!("{namespace}/{name}")
                };
                refuse(
                    &mut change,
                    at,
                    format!("building would {verb} {kind} {object}: {why}"),
                    format!(
                        "if that is what you want, build with {flag}; else restore what removed, renamed or moved it"
                    ),
                );
            }
        }
        plan.changes.push(change);
    }
    // Tenants whose Cluster was just planned as replaced: no "created" for them.
    let replaced_clusters: BTreeSet<Option<String>> = plan
        .changes
        .iter()
        .filter(|c| c.kind == "Cluster")
        .map(|c| c.tenant.clone())
        .collect();
    // Created or updated: the new objects that are not the previous ones
    // (often the very same: see `Previous`), found in parallel, judged in
    // the order of their identities.
    let mut differing: Vec<(Key<'_>, &Document, Option<&OldObject<'_>>)> = (keyed.par_iter())
        .filter(|(id, document)| new.get(id).is_some_and(|d| std::ptr::eq(*d, *document)))
        .filter_map(|&(id, document)| {
            let previous_object = old.get(&id).copied();
            let unchanged = previous_object.is_some_and(|(_, old)| **old == document.value);
            (!unchanged).then_some((id, document, previous_object))
        })
        .collect();
    differing.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for ((_, kind, namespace, name), document, previous_object) in differing {
        let (kind, namespace, name) = (kind.to_string(), namespace.to_string(), name.to_string());
        let object_name = name.clone();
        let new_value = &document.value;
        let mut change = Change {
            kind: kind.clone(),
            namespace,
            name,
            tenant: tenant_of(new_value),
            action: Action::Create,
            meaning: Vec::new(),
            refused: None,
            warning: None,
        };
        let Some((_, old)) = previous_object else {
            if kind == "Cluster" && !replaced_clusters.contains(&change.tenant) {
                change.meaning.push("cluster created".into());
            }
            plan.changes.push(change);
            continue;
        };
        let changed = differences(old, new_value, "");
        if changed.is_empty() {
            continue;
        }
        change.action = Action::Update(changed.clone());
        let at = |values: &[&str]| {
            let at = place(&document.source, values);
            if at.line == 0 {
                place(&site.file, values)
            } else {
                at
            }
        };
        match kind.as_str() {
            "Cluster" => {
                let version = |v: &Value| {
                    v.at("/spec/topology/version")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let (from, to) = (version(old), version(new_value));
                if from != to {
                    match version_change(&from, &to, chained_versions) {
                        Ok(words) => change.meaning.push(words),
                        Err(why) => refuse(
                            &mut change,
                            at(&[&to]),
                            why,
                            "Cluster API and Kamaji refuse it: go one minor at a time, never down"
                                .into(),
                        ),
                    }
                }
                for (what, pointer) in [
                    ("pod network", "/spec/clusterNetwork/pods/cidrBlocks"),
                    (
                        "service network",
                        "/spec/clusterNetwork/services/cidrBlocks",
                    ),
                    ("service domain", "/spec/clusterNetwork/serviceDomain"),
                ] {
                    let (a, b) = (old.at(pointer), new_value.at(pointer));
                    if a != b {
                        let (from, to) = (words(a), words(b));
                        let shown = |w: &[&str]| {
                            if w.is_empty() {
                                "none".to_string()
                            } else {
                                w.join(", ")
                            }
                        };
                        refuse(&mut change, at(&to), format!("the {what} of a running cluster cannot change ({} → {})", shown(&from), shown(&to)), "keep the network the cluster was created with; a new network needs a new cluster".into());
                    }
                }
                let cp = |v: &Value, p: &str| {
                    control_plane(v)
                        .and_then(|c| c.at(p))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let (vip_a, vip_b) = (
                    cp(old, "/network/serviceAddress"),
                    cp(new_value, "/network/serviceAddress"),
                );
                if vip_a != vip_b {
                    refuse(
                        &mut change,
                        at(&[&vip_b]),
                        format!(
                            "the control-plane VIP of a running cluster cannot move ({vip_a} → {vip_b}): its certificates and kubeconfigs name it"
                        ),
                        "keep controlPlane.vip (or the pool) the cluster was created with".into(),
                    );
                }
                let (ds_a, ds_b) = (cp(old, "/dataStoreName"), cp(new_value, "/dataStoreName"));
                if ds_a != ds_b {
                    let (d_a, d_b) = (
                        old_drivers.get(&ds_a).cloned().unwrap_or_default(),
                        new_drivers.get(&ds_b).cloned().unwrap_or_default(),
                    );
                    if d_a == d_b {
                        change.meaning.push(format!("datastore migration {ds_a} → {ds_b} (same driver: the control plane is read-only while it runs, kubelets restart)"));
                        change.warning = Some(format!("datastore migration {ds_a} → {ds_b}"));
                    } else {
                        refuse(
                            &mut change,
                            at(&[&ds_b]),
                            format!(
                                "a tenant cannot move from datastore {ds_a} ({d_a}) to {ds_b} ({d_b}): Kamaji migrates only between datastores of one driver"
                            ),
                            format!("choose a datastore with driver {d_a}"),
                        );
                    }
                }
                let replicas = |v: &Value| v.at("/spec/topology/controlPlane/replicas").cloned();
                if replicas(old) != replicas(new_value) {
                    change.meaning.push(format!(
                        "control plane scaled {} → {}",
                        show(replicas(old)),
                        show(replicas(new_value))
                    ));
                }
                workers(old, new_value, &mut change);
            }
            "DataStore" => {
                let (a, b) = (
                    old.item("spec").item("driver").as_str().unwrap_or_default(),
                    new_value
                        .item("spec")
                        .item("driver")
                        .as_str()
                        .unwrap_or_default(),
                );
                if a != b {
                    refuse(
                        &mut change,
                        place(&site.file, &[b]),
                        format!(
                            "the driver of DataStore {} cannot change ({a} → {b}): the DataStore CRD makes it immutable",
                            object_name
                        ),
                        "declare a new datastore with the new driver instead".into(),
                    );
                }
            }
            "KubevirtMachineTemplate" | "KubevirtClusterTemplate"
                if changed.iter().any(|p| p.starts_with("/spec")) =>
            {
                refuse(
                    &mut change,
                    SourceLocation::file(&document.template),
                    format!(
                        "{kind} {} is immutable: CAPK refuses any change to its spec",
                        object_name
                    ),
                    "give the changed template a new name (kmetal's class/ does this by content)"
                        .into(),
                );
            }
            _ => {}
        }
        // What no rule above refused, the CRD's transition rules may.
        if change.refused.is_none() {
            for (pointer, message) in (updates.rules)(old, new_value) {
                let value = new_value.at(&pointer).and_then(Value::as_str);
                refuse(
                    &mut change,
                    at(&value.into_iter().collect::<Vec<_>>()),
                    format!("the API server would refuse this update of {kind} {object_name} at {}: {message}", shown(&pointer)),
                    "keep the value the object was created with, or replace the object under a new name".into(),
                );
            }
        }
        plan.changes.push(change);
    }
    // The objects Cluster API creates from each Cluster: the update rules of
    // their CRDs, where the tenant's own change was not refused already.
    let refused_tenants: BTreeSet<String> = (plan.changes.iter())
        .filter(|c| c.refused.is_some())
        .filter_map(|c| c.tenant.clone())
        .collect();
    let class_files: BTreeSet<&str> = (documents.iter())
        .filter(|d| crate::class::is_class_document(&d.path))
        .map(|d| d.source.as_str())
        .collect();
    for document in updates.new_expanded {
        let id = identity(&document.value);
        let tenant = crate::layout::tenant_of_expanded(&document.path)
            .unwrap_or_default()
            .to_string();
        let Some(old) = updates.old_expanded.get(&id) else {
            continue;
        };
        if *old == document.value {
            continue;
        }
        if refused_tenants.contains(&tenant) {
            continue;
        }
        rollouts(old, document, &tenant, &mut plan);
        let broken = (updates.rules)(old, &document.value);
        if broken.is_empty() {
            continue;
        }
        let (_, kind, namespace, name) = id;
        let mut change = Change {
            kind: kind.clone(),
            namespace,
            name: name.clone(),
            tenant: Some(tenant),
            action: Action::Update(differences(old, &document.value, "")),
            meaning: vec![format!(
                "{kind} {name} updated by Cluster API from the ClusterClass"
            )],
            refused: None,
            warning: None,
        };
        let tenant_changed = (plan.changes.iter()).any(|c| {
            c.tenant == change.tenant
                && c.kind == "Cluster"
                && matches!(c.action, Action::Update(_))
        });
        for (pointer, message) in broken {
            let value = document.value.at(&pointer).and_then(Value::as_str);
            // The tenant's edit, or else the class's: its ClusterClass or a
            // template of it.
            let files: Vec<&str> = if tenant_changed {
                vec![document.source.as_str()]
            } else {
                std::iter::once(document.template.as_str())
                    .chain(class_files.iter().copied())
                    .collect()
            };
            let at = (value.into_iter())
                .flat_map(|v| files.iter().map(move |f| place(f, &[v])))
                .find(|at| at.line > 0)
                .unwrap_or_else(|| SourceLocation::file(files[0]));
            refuse(
                &mut change,
                at,
                format!("the API server would refuse Cluster API's update of {kind} {name} at {}: {message}", shown(&pointer)),
                "keep what the ClusterClass's patches give this field for running clusters, or replace the cluster".into(),
            );
        }
        plan.changes.push(change);
    }
    for (tenant, why) in updates.unexpanded {
        plan.changes.push(Change {
            kind: "Cluster".into(),
            namespace: String::new(),
            name: tenant.clone(),
            tenant: Some(tenant.clone()),
            action: Action::Notice,
            meaning: Vec::new(),
            refused: None,
            warning: Some(format!("the previous topology does not expand any more, so the update rules of what Cluster API created were not checked: {why}")),
        });
    }
    // A pool that held VIPs disappearing moves them.
    for id in (old_keyed.iter())
        .map(|&(id, _)| id)
        .filter(|id| id.1 == "IPAddressPool" && !new.contains_key(id))
    {
        let holders: Vec<&str> = previous
            .lock
            .tenants
            .iter()
            .filter(|(_, h)| h.pool.as_str() == id.3)
            .map(|(t, _)| t.as_str())
            .collect();
        if !holders.is_empty() {
            diagnostics.push(
                Diagnostic::error(
                    codes::DAY2_REFUSED,
                    format!(
                        "pool {} holds the VIPs of {}: removing or renaming it would move them",
                        id.3,
                        holders.join(", ")
                    ),
                )
                .at(SourceLocation::file(&site.file))
                .help("keep the pool's name; add a pool for new tenants instead"),
            );
        }
    }
    plan.changes.sort_by(|a, b| {
        (&a.tenant, &a.kind, &a.namespace, &a.name).cmp(&(
            &b.tenant,
            &b.kind,
            &b.namespace,
            &b.name,
        ))
    });
    // One edit (a site default) that upgrades many tenants at once.
    let mut upgrades: BTreeMap<String, BTreeSet<Option<&str>>> = BTreeMap::new();
    for c in &plan.changes {
        for m in &c.meaning {
            let key = if m.starts_with("control plane upgrade") {
                format!("{m}: upgrades")
            } else if m.ends_with("from the ClusterClass: every machine rolls out)") {
                "a ClusterClass change replaces workers: rolls out the machines of".to_string()
            } else {
                continue;
            };
            upgrades.entry(key).or_default().insert(c.tenant.as_deref());
        }
    }
    let many: Vec<Change> = upgrades
        .into_iter()
        .map(|(m, tenants)| (m, tenants.len()))
        .filter(|(_, n)| *n >= MANY_TENANTS)
        .map(|(m, n)| Change {
            kind: "Fleet".into(),
            namespace: String::new(),
            name: site.name.to_string(),
            tenant: None,
            action: Action::Notice,
            meaning: Vec::new(),
            refused: None,
            warning: Some(format!("{m} {n} tenants in one commit")),
        })
        .collect();
    plan.changes.extend(many);
    plan
}

/// A worker pool whose machine template (infrastructure or bootstrap) Cluster
/// API would rotate, which rolls out every machine: said on the tenant's
/// Cluster change, or as a change of its own when the Cluster did not change
/// (an edit of the ClusterClass, which reaches every tenant at once).
fn rollouts(old: &Value, document: &Document, tenant: &str, plan: &mut Plan) {
    let kind = document.value.item("kind").as_str().unwrap_or_default();
    if !matches!(kind, "KubevirtMachineTemplate" | "KubeadmConfigTemplate")
        || old.item("spec") == document.value.item("spec")
    {
        return;
    }
    let pool = document
        .value
        .at("/metadata/labels/topology.cluster.x-k8s.io~1deployment-name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let already = format!("workers {pool} replaced");
    let cluster = (plan.changes.iter_mut())
        .find(|c| c.kind == "Cluster" && c.tenant.as_deref() == Some(tenant));
    if let Some(cluster) = &cluster
        && cluster.meaning.iter().any(|m| m.starts_with(&already))
    {
        return;
    }
    let words = format!("{already} (new {kind} from the ClusterClass: every machine rolls out)");
    match cluster {
        Some(cluster) => cluster.meaning.push(words),
        None => {
            let (_, kind, namespace, name) = identity(&document.value);
            plan.changes.push(Change {
                kind,
                namespace,
                name,
                tenant: Some(tenant.to_string()),
                action: Action::Update(differences(old, &document.value, "")),
                meaning: vec![words],
                refused: None,
                warning: None,
            });
        }
    }
}

/// The text of a scalar or of a list's items.
fn words(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![&**s],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A JSON pointer as messages show it: `/` for the whole object.
fn shown(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

/// How many tenants one upgrade must touch to be worth a warning.
const MANY_TENANTS: usize = 10;

fn show(v: Option<Value>) -> String {
    v.map_or_else(|| "default".into(), |v| v.to_string())
}

fn control_plane(cluster: &Value) -> Option<&Value> {
    cluster_variable(cluster, "controlPlane")
}

/// Worker pools: scaled, replaced (machine size), added, removed, renamed.
fn workers(old: &Value, new: &Value, change: &mut Change) {
    let pools = |v: &Value| -> BTreeMap<String, Value> {
        v.at("/spec/topology/workers/machineDeployments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|md| {
                (
                    md.item("name").as_str().unwrap_or_default().to_string(),
                    md.clone(),
                )
            })
            .collect()
    };
    let size = |cluster: &Value, md: &Value| {
        let own = md
            .at("/variables/overrides")
            .and_then(|o| named_value(o, "machineSize"));
        own.or_else(|| cluster_variable(cluster, "machineSize"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (a, b) = (pools(old), pools(new));
    for (name, md) in &b {
        match a.get(name) {
            Some(before) => {
                if before.field("replicas") != md.field("replicas") {
                    change.meaning.push(format!(
                        "workers {name} scaled {} → {}",
                        show(before.field("replicas").cloned()),
                        show(md.field("replicas").cloned())
                    ));
                }
                let (s_a, s_b) = (size(old, before), size(new, md));
                if s_a != s_b {
                    change.meaning.push(format!(
                        "workers {name} replaced (machine size {s_a} → {s_b})"
                    ));
                }
            }
            None => change.meaning.push(format!("workers {name} added")),
        }
    }
    let removed: Vec<&String> = a.keys().filter(|n| !b.contains_key(*n)).collect();
    let added: Vec<&String> = b.keys().filter(|n| !a.contains_key(*n)).collect();
    for name in &removed {
        change.meaning.push(format!("workers {name} removed"));
    }
    if !removed.is_empty() && !added.is_empty() {
        change.warning = Some(format!(
            "worker pool {} renamed to {}: that means new nodes",
            removed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            added
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

/// `v1.33.5` → (1, 33, 5).
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v
        .strip_prefix('v')?
        .split('.')
        .map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// "control plane upgrade a → b", or why Cluster API refuses it. `chain` are
/// the versions the ClusterClass lists (`spec.kubernetesVersions`), which let
/// it upgrade through every minor in between.
fn version_change(from: &str, to: &str, chain: &[String]) -> Result<String, String> {
    let (Some(a), Some(b)) = (parse_version(from), parse_version(to)) else {
        return Ok(format!("control plane version {from} → {to}"));
    };
    if b < a {
        return Err(format!(
            "version cannot be decreased from {from} to {to}: Cluster API's webhook refuses a downgrade"
        ));
    }
    if b.0 != a.0 || b.1 > a.1 + 1 {
        let listed: BTreeSet<u64> = chain
            .iter()
            .filter_map(|v| parse_version(v))
            .filter(|v| v.0 == a.0)
            .map(|v| v.1)
            .collect();
        let chained = b.0 == a.0 && (a.1 + 1..b.1).all(|m| listed.contains(&m));
        if !chained {
            return Err(format!(
                "version cannot be increased from {from} to {to}: Cluster API upgrades one minor at a time, and the ClusterClass lists no version of every minor in between"
            ));
        }
        return Ok(format!(
            "control plane upgrade {from} → {to} (chained through every minor in between)"
        ));
    }
    Ok(format!("control plane upgrade {from} → {to}"))
}

/// JSON pointers of the leaves that differ.
fn differences(old: &Value, new: &Value, at: &str) -> Vec<String> {
    if old == new {
        return Vec::new();
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&str> = a.keys().chain(b.keys()).map(|k| &**k).collect();
            keys.into_iter()
                .flat_map(|k| {
                    let here = format!("{at}/{}", crate::json::escaped(k));
                    match (a.get(k), b.get(k)) {
                        (Some(x), Some(y)) => differences(x, y, &here),
                        _ => vec![here],
                    }
                })
                .collect()
        }
        _ => vec![if at.is_empty() {
            "/".into()
        } else {
            at.to_string()
        }],
    }
}

/// The plan's first line: how many objects each action touches.
pub fn summary(plan: &Plan) -> String {
    text(plan).lines().next().unwrap_or_default().to_string()
}

/// The plan as text: one line per change with its meaning; unchanged objects are left out.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let counts =
        |pred: &dyn Fn(&Action) -> bool| plan.changes.iter().filter(|c| pred(&c.action)).count();
    out += &format!(
        "plan: {} to replace, {} to delete, {} to update, {} to create; {} refused\n",
        counts(&|a| *a == Action::Replace),
        counts(&|a| *a == Action::Delete),
        counts(&|a| matches!(a, Action::Update(_))),
        counts(&|a| *a == Action::Create),
        plan.changes.iter().filter(|c| c.refused.is_some()).count()
    );
    for c in &plan.changes {
        let owner = c
            .tenant
            .as_ref()
            .map_or_else(|| "platform".to_string(), |t| format!("tenant {t}"));
        let action = match &c.action {
            Action::Create => "create".to_string(),
            Action::Delete => "delete".to_string(),
            Action::Replace => "replace".to_string(),
            Action::Update(fields) => format!("update {}", fields.join(", ")),
            Action::Notice => "note on".to_string(),
        };
        let object = if c.namespace.is_empty() {
            c.name.clone()
        } else {
            format!("{}/{}", c.namespace, c.name)
        };
        out += &format!("{owner}: {action} {} {object}\n", c.kind);
        for m in &c.meaning {
            out += &format!("  {m}\n");
        }
        if let Some(w) = &c.warning {
            out += &format!("  warning: {w}\n");
        }
        if let Some(r) = &c.refused {
            out += &format!("  refused: {r}\n");
        }
    }
    out
}

/// GitHub's limit on a comment's length.
const COMMENT_MAX: usize = 65_536;

/// The plan as Markdown, for a pull-request comment: counts first, refusals
/// and destructive changes before the rest, identical changes grouped across
/// tenants, cut at GitHub's comment limit with a line saying what was left out.
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!("### kmetal plan\n\n{}\n", summary(plan));
    const SECTIONS: [&str; 4] = [
        "Refused",
        "Destructive (deleted or replaced)",
        "Warnings",
        "Changes",
    ];
    // Identical lines (the same meaning in many tenants) become one.
    let mut groups: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
    for c in &plan.changes {
        let owner = c.tenant.clone().unwrap_or_else(|| "platform".into());
        let action = match &c.action {
            Action::Create => "create",
            Action::Delete => "**delete**",
            Action::Replace => "**replace**",
            Action::Update(_) => "update",
            Action::Notice => "note on",
        };
        let destructive = matches!(c.action, Action::Replace | Action::Delete);
        let section = usize::from(!destructive) * 2 + 1;
        let mut lines = vec![(section, format!("{action} {}", c.kind))];
        lines.extend(c.meaning.iter().map(|m| (section, m.clone())));
        let skip = usize::from(!c.meaning.is_empty());
        let mut lines: Vec<(usize, String)> = lines.into_iter().skip(skip).collect();
        lines.extend(c.warning.iter().map(|w| (2, format!("⚠️ {w}"))));
        lines.extend(c.refused.iter().map(|r| (0, format!("❌ {r}"))));
        for line in lines {
            groups.entry(line).or_default().push(owner.clone());
        }
    }
    let total = groups.len();
    let mut section = None;
    for (shown, ((at, line), owners)) in groups.into_iter().enumerate() {
        let who = match owners.as_slice() {
            [one] => one.clone(),
            many => format!(
                "{} tenants ({}{})",
                many.len(),
                many.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                if many.len() > 3 { ", …" } else { "" }
            ),
        };
        let heading = if section == Some(at) {
            String::new()
        } else {
            format!("\n#### {}\n\n", SECTIONS[at])
        };
        let entry = format!("{heading}- {line} — {who}\n");
        // Room for the line that says what was left out.
        if out.len() + entry.len() + 200 > COMMENT_MAX {
            out += &format!(
                "\n… {} more lines left out: GitHub comments hold {COMMENT_MAX} characters; run `kmetal plan` for all of them.\n",
                total - shown
            );
            break;
        }
        section = Some(at);
        out += &entry;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As a hash map collected from the entries: the later of two entries
    /// with one identity counts, an identity not there is not found.
    #[test]
    fn identities_find_the_later_entry() {
        let keys: Vec<Key<'static>> = (0..300)
            .map(|i| ("apps", ["A", "B", "C"][i % 3], "ns", ["x", "y"][i % 2]))
            .chain([("", "Namespace", "", "ns")])
            .collect();
        let entries: Vec<(Key<'static>, usize)> = keys.into_iter().zip(0..).collect();
        let by_key = ByKey::new(&entries);
        let map: std::collections::HashMap<Key<'static>, usize> = entries.iter().copied().collect();
        for (key, _) in &entries {
            assert_eq!(by_key.get(key), map.get(key), "{key:?}");
        }
        assert_eq!(by_key.get(&("apps", "A", "ns", "y")), Some(&297));
        assert!(!by_key.contains_key(&("apps", "D", "ns", "x")));
        assert!(!by_key.contains_key(&("", "Namespace", "", "other")));
    }

    #[test]
    fn markdown_groups_and_stays_under_the_comment_limit() {
        let change = |tenant: &str| Change {
            kind: "Cluster".into(),
            namespace: format!("tenant-{tenant}"),
            name: tenant.into(),
            tenant: Some(tenant.into()),
            action: Action::Update(vec!["/spec/topology/version".into()]),
            meaning: vec!["control plane upgrade v1.33.5 → v1.34.1".into()],
            refused: None,
            warning: None,
        };
        let plan = Plan {
            changes: (0..412).map(|i| change(&format!("t{i}"))).collect(),
        };
        let text = markdown(&plan);
        assert!(
            text.contains(
                "- control plane upgrade v1.33.5 → v1.34.1 — 412 tenants (t0, t1, t2, …)"
            ),
            "{text}"
        );
        let many = Plan {
            changes: (0..5000)
                .map(|i| Change {
                    meaning: vec![format!("workers md-{i} scaled 2 → 3")],
                    ..change(&format!("t{i}"))
                })
                .collect(),
        };
        let text = markdown(&many);
        assert!(text.len() <= COMMENT_MAX, "{}", text.len());
        assert!(text.contains("more lines left out"));
    }

    #[test]
    fn version_rules() {
        assert!(version_change("v1.34.1", "v1.34.0", &[]).is_err());
        assert!(version_change("v1.33.5", "v1.35.0", &[]).is_err());
        assert!(version_change("v1.33.5", "v1.35.0", &["v1.34.2".into()]).is_ok());
        assert_eq!(
            version_change("v1.33.5", "v1.34.1", &[]).unwrap(),
            "control plane upgrade v1.33.5 → v1.34.1"
        );
    }
}
