//! The whole output → every name it refers to is defined in it, or declared a
//! platform object. The last stage of every build, validate and check.
//!
//! Schemas see one object at a time; this stage sees them together, as the
//! platform will: a Cluster on a DataStore nobody emits, a Certificate whose
//! ClusterIssuer is missing, a Flux `dependsOn` or `path` that leads nowhere, a
//! VIP outside every MetalLB pool, an object in a namespace that no one
//! creates. Each violation is reported at the input that produced the value.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use crate::value::Value;
use rayon::prelude::*;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::network::AddressBlock;
use crate::output::OutputTree;
use crate::render::Document;
use crate::spec::Site;
use crate::stack::Stacks;
use crate::yaml;

use crate::spec::PLATFORM_DATASTORE;

/// What the integrity stage needs besides the documents.
pub struct Context<'a> {
    pub site: &'a Site,
    pub stacks: &'a Stacks,
    pub tree: &'a OutputTree,
    /// The output directory and the root of the git repository around it, if any.
    pub out_dir: &'a Path,
    pub git_root: Option<&'a Path>,
    /// The text of an input file, to point at the value that caused a problem.
    pub source: &'a (dyn Fn(&str) -> Option<std::sync::Arc<str>> + Sync),
}

/// Check every reference of the output.
pub fn check(documents: &[Document], cx: &Context<'_>) -> Diagnostics {
    let mut found = Found {
        cx,
        diagnostics: Diagnostics::new(),
    };
    let defined = Defined::of(documents, cx);
    // Each object on its own, in parallel; problems kept in document order.
    let per_document: Vec<Diagnostics> = documents
        .par_iter()
        .map(|document| {
            let mut found = Found {
                cx,
                diagnostics: Diagnostics::new(),
            };
            references(&mut found, document, &defined);
            found.diagnostics
        })
        .collect();
    for problems in per_document {
        found.diagnostics.extend(problems);
    }
    kustomize_resources(&mut found, cx.tree);
    flux_path(&mut found, documents, cx);
    found.diagnostics
}

/// What one object names: its namespace, and by kind its DataStore, class,
/// issuer, Flux dependencies and chart source.
fn references(found: &mut Found<'_, '_>, document: &Document, defined: &Defined<'_>) {
    let v = &document.value;
    let kind = v.field("kind").and_then(Value::as_str).unwrap_or_default();
    let namespace = str_at(v, "/metadata/namespace");
    if let Some(ns) = namespace
        && !defined.namespaces.contains(ns)
    {
        found.report(
            document,
            ns,
            format!(
                "{kind} {} is in namespace {ns}, which kmetal does not create and the site does not declare as a platform namespace",
                str_at(v, "/metadata/name").unwrap_or_default()
            ),
            "use the tenant's namespace, or one of the platform's namespaces (flux.namespace, metallb.namespace, certificate and secret namespaces)",
        );
    }
    match kind {
        "Cluster" => cluster(found, document, defined),
        "Certificate" => {
            if let Some(issuer) = str_at(v, "/spec/issuerRef/name")
                && !defined.issuers.contains(issuer)
            {
                found.report(
                    document,
                    issuer,
                    format!("Certificate refers to ClusterIssuer {issuer}, which the output does not define"),
                    "declare it under certManager.clusterIssuers, or name one that is declared",
                );
            }
        }
        "Kustomization" if api_group(v) == "kustomize.toolkit.fluxcd.io" => {
            kustomization(found, document, defined);
        }
        "HelmRelease" => {
            let own_ns = namespace.unwrap_or_default();
            let source = v
                .at("/spec/chart/spec/sourceRef")
                .or_else(|| v.at("/spec/chartRef"));
            if let Some(source) = source {
                let kind = str_at(source, "/kind").unwrap_or_default();
                let name = str_at(source, "/name").unwrap_or_default();
                let ns = str_at(source, "/namespace").unwrap_or(own_ns);
                if !defined
                    .chart_sources
                    .contains(&[kind, "/", ns, "/", name].concat())
                {
                    found.report(
                        document,
                        name,
                        format!("HelmRelease takes its chart from {kind} {ns}/{name}, which the output does not define"),
                        "fix the add-on's template: its source is platform/addons/",
                    );
                }
            }
        }
        _ => {}
    }
}

/// Every name the output defines, or the site declares as the platform's.
struct Defined<'a> {
    namespaces: BTreeSet<&'a str>,
    data_stores: BTreeSet<&'a str>,
    issuers: BTreeSet<&'a str>,
    /// `namespace/name` of every Flux Kustomization.
    kustomizations: BTreeSet<String>,
    /// `kind/namespace/name` of every Flux Helm chart source.
    chart_sources: BTreeSet<String>,
    /// `namespace/name` of every ClusterClass emitted, or installed by the
    /// platform (a stack without class/, or `clusterClasses: platform`).
    cluster_classes: BTreeSet<String>,
    pools: Vec<(&'a str, AddressBlock)>,
}

impl<'a> Defined<'a> {
    fn of(documents: &'a [Document], cx: &Context<'a>) -> Self {
        let site = cx.site;
        let mut defined = Defined {
            namespaces: BTreeSet::new(),
            data_stores: BTreeSet::from([PLATFORM_DATASTORE]),
            issuers: BTreeSet::new(),
            kustomizations: BTreeSet::new(),
            chart_sources: BTreeSet::new(),
            cluster_classes: BTreeSet::new(),
            pools: Vec::new(),
        };
        for stack in cx.stacks.tenant.values() {
            if stack.class.is_none() || !site.emit_cluster_classes {
                let class = &stack.cluster_class;
                defined
                    .cluster_classes
                    .insert([class.namespace.as_str(), "/", class.name.as_str()].concat());
            }
        }
        // Platform namespaces: created by the platform, not by kmetal (SPEC).
        defined.namespaces = site.platform_namespaces(cx.stacks);
        for document in documents {
            let v = &document.value;
            let name = str_at(v, "/metadata/name").unwrap_or_default();
            match (api_group(v), v.field("kind").and_then(Value::as_str)) {
                ("", Some("Namespace")) => {
                    defined.namespaces.insert(name);
                }
                ("kamaji.clastix.io", Some("DataStore")) => {
                    defined.data_stores.insert(name);
                }
                ("cert-manager.io", Some("ClusterIssuer")) => {
                    defined.issuers.insert(name);
                }
                ("cluster.x-k8s.io", Some("ClusterClass")) => {
                    let ns = str_at(v, "/metadata/namespace").unwrap_or_default();
                    defined.cluster_classes.insert([ns, "/", name].concat());
                }
                ("kustomize.toolkit.fluxcd.io", Some("Kustomization")) => {
                    let ns = str_at(v, "/metadata/namespace").unwrap_or_default();
                    defined.kustomizations.insert([ns, "/", name].concat());
                }
                ("source.toolkit.fluxcd.io", Some(kind @ ("HelmRepository" | "OCIRepository"))) => {
                    let ns = str_at(v, "/metadata/namespace").unwrap_or_default();
                    defined
                        .chart_sources
                        .insert([kind, "/", ns, "/", name].concat());
                }
                ("metallb.io", Some("IPAddressPool")) => {
                    let addresses = v.at("/spec/addresses").and_then(Value::as_array);
                    for address in addresses.into_iter().flatten().filter_map(Value::as_str) {
                        if let Ok(block) = AddressBlock::parse(address) {
                            defined.pools.push((name, block));
                        }
                    }
                }
                _ => {}
            }
        }
        defined
    }
}

fn cluster(found: &mut Found<'_, '_>, document: &Document, defined: &Defined<'_>) {
    let class_ref = document.value.at("/spec/topology/classRef");
    if let Some(class) = class_ref.and_then(|r| str_at(r, "/name")) {
        let own = str_at(&document.value, "/metadata/namespace").unwrap_or_default();
        let ns = class_ref
            .and_then(|r| str_at(r, "/namespace"))
            .unwrap_or(own);
        if !defined.cluster_classes.contains(&[ns, "/", class].concat()) {
            found.report(
                document,
                class,
                format!("Cluster uses ClusterClass {ns}/{class}, which the output does not define and no stack declares as installed by the platform"),
                "give the stack a class/ directory, or point the Cluster at the stack's ClusterClass",
            );
        }
    }
    let Some(control_plane) = crate::variables::cluster_variable(&document.value, "controlPlane")
    else {
        return;
    };
    if let Some(store) = str_at(control_plane, "/dataStoreName")
        && !defined.data_stores.contains(store)
    {
        found.report(
            document,
            store,
            format!("Cluster's control plane uses DataStore {store}, which the output does not define"),
            "name \"default\" (the platform's) or a datastore declared under dataStores in kmetal.yaml",
        );
    }
    if let Some(vip) = str_at(control_plane, "/network/serviceAddress")
        && let Ok(ip) = vip.parse::<IpAddr>()
        && !defined.pools.iter().any(|(_, block)| block.usable(ip))
    {
        found.report(
            document,
            vip,
            format!("control-plane VIP {vip} lies in no emitted MetalLB IPAddressPool, so MetalLB would never announce it"),
            "choose an address of one of the pools under metallb.pools",
        );
    }
}

fn kustomization(found: &mut Found<'_, '_>, document: &Document, defined: &Defined<'_>) {
    let v = &document.value;
    let own_ns = str_at(v, "/metadata/namespace").unwrap_or_default();
    for dependency in v
        .at("/spec/dependsOn")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = str_at(dependency, "/name") else {
            continue;
        };
        let ns = str_at(dependency, "/namespace").unwrap_or(own_ns);
        if !defined.kustomizations.contains(&[ns, "/", name].concat()) {
            found.report(
                document,
                name,
                format!("Flux Kustomization depends on {ns}/{name}, which the output does not define: it would wait forever"),
                "fix the stack template's dependsOn",
            );
        }
    }
}

/// Every `resources:` entry of every kustomization.yaml is a file or a
/// directory with a kustomization.yaml of its own. The entries are the ones
/// the tree keeps beside each text, so nothing is parsed back.
fn kustomize_resources(found: &mut Found<'_, '_>, tree: &OutputTree) {
    let files = tree.files();
    for (path, listed) in tree.resources() {
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
        for entry in listed {
            let target = join(dir, entry);
            let exists = files.contains_key(&target)
                || files.contains_key(&join(&target, "kustomization.yaml"));
            if !exists {
                found.diagnostics.push(
                    Diagnostic::error(
                        codes::OUTPUT_DANGLING,
                        format!("{path} lists {entry}, which the output does not contain"),
                    )
                    .help("this is a bug in kmetal's layout: please report it"),
                );
            }
        }
    }
}

fn join(dir: &str, entry: &str) -> String {
    let entry = entry.trim_start_matches("./").trim_end_matches('/');
    if dir.is_empty() {
        entry.to_string()
    } else {
        [dir, "/", entry].concat()
    }
}

/// `flux.path` is where the output directory sits in the git repository, and
/// every Flux Kustomization's `path` is a directory of the output.
fn flux_path(found: &mut Found<'_, '_>, documents: &[Document], cx: &Context<'_>) {
    let flux_path = normal(&cx.site.flux.path);
    if let Some(root) = cx.git_root
        && let Some(actual) = relative_to(cx.out_dir, root)
        && actual != flux_path
    {
        let shown = if actual.is_empty() {
            ".".to_string()
        } else {
            format!("./{actual}")
        };
        found.report_in(
            &cx.site.file,
            &cx.site.flux.path,
            format!(
                "flux.path is {:?}, but the output directory is {shown} in its git repository: Flux would apply a path that does not hold this output",
                cx.site.flux.path
            ),
            &format!("write `path: {shown}` under flux (the path from the root of the git repository to the output directory)"),
        );
        return;
    }
    let files = cx.tree.files();
    let flux_dir = format!("{}/", crate::layout::FLUX_DIR);
    let flux_files: Vec<(&String, &Value)> = (documents.iter())
        .filter(|d| d.path.starts_with(&flux_dir))
        .map(|d| (&d.path, &d.value))
        .collect();
    // The artifacts kmetal's ArtifactGenerators make: name → the directory
    // they copy, in the source.
    let mut artifacts: BTreeMap<&str, String> = BTreeMap::new();
    for (_, value) in flux_files
        .iter()
        .filter(|(_, v)| v.item("kind") == "ArtifactGenerator")
    {
        let list = value.at("/spec/artifacts").and_then(Value::as_array);
        for artifact in list.into_iter().flatten() {
            let (Some(name), Some(from)) = (
                artifact.item("name").as_str(),
                artifact.at("/copy/0/from").and_then(Value::as_str),
            ) else {
                continue;
            };
            let dir = from.split_once('/').map_or("", |(_, rest)| rest);
            artifacts.insert(name, dir.trim_end_matches("/**").to_string());
        }
    }
    for (path, value) in &flux_files {
        let Some(target) = str_at(value, "/spec/path") else {
            continue;
        };
        // A Kustomization of an artifact kmetal generates applies that
        // artifact's root: the directory it copies must be one of this output.
        let generated = (str_at(value, "/spec/sourceRef/kind") == Some("ExternalArtifact"))
            .then(|| str_at(value, "/spec/sourceRef/name").and_then(|n| artifacts.get(n)))
            .flatten();
        let target_dir = match generated {
            Some(dir) if normal(target).is_empty() => dir.clone(),
            _ => target.to_string(),
        };
        let inside = normal(&target_dir)
            .strip_prefix(&flux_path)
            .map(|rest| rest.trim_start_matches('/').to_string());
        let ok = inside.is_some_and(|dir| files.contains_key(&join(&dir, "kustomization.yaml")));
        if !ok {
            found.diagnostics.push(
                Diagnostic::error(
                    codes::OUTPUT_DANGLING,
                    format!("{path}: Flux path {target} is not a directory of this output"),
                )
                .help("fix the stack's Flux template: paths start with site.flux.path"),
            );
        }
    }
}

/// A repository path without `./`, empty segments or a trailing `/`.
fn normal(path: &str) -> String {
    path.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// `path` relative to `root`, with `/`, when it lies inside it.
fn relative_to(path: &Path, root: &Path) -> Option<String> {
    let path = lexical(path);
    let root = lexical(root);
    let rest = path.strip_prefix(&root).ok()?;
    let parts: Vec<String> = rest
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

/// `..` and `.` resolved without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn api_group(v: &Value) -> &str {
    crate::json::api_group(v.field("apiVersion").and_then(Value::as_str).unwrap_or(""))
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.at(pointer).and_then(Value::as_str)
}

struct Found<'c, 'a> {
    cx: &'c Context<'a>,
    diagnostics: Diagnostics,
}

impl Found<'_, '_> {
    /// A violation in `document`, at the place of `value` in its input file.
    fn report(&mut self, document: &Document, value: &str, message: String, help: &str) {
        let at = self.place(&document.source, value);
        self.diagnostics.push(
            Diagnostic::error(
                codes::OUTPUT_DANGLING,
                format!("{message} (in {})", document.path),
            )
            .at(at)
            .related(
                SourceLocation::file(&document.template),
                "rendered by this template",
            )
            .help(help),
        );
    }

    fn report_in(&mut self, file: &str, value: &str, message: String, help: &str) {
        let at = self.place(file, value);
        self.diagnostics.push(
            Diagnostic::error(codes::OUTPUT_DANGLING, message)
                .at(at)
                .help(help),
        );
    }

    /// The first place `value` is written in `file`, else the file.
    fn place(&self, file: &str, value: &str) -> SourceLocation {
        (self.cx.source)(file)
            .and_then(|text| yaml::find_scalar(file, &text, value).into_iter().next())
            .unwrap_or_else(|| SourceLocation::file(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normal("./deploy/"), "deploy");
        assert_eq!(normal("."), "");
        assert_eq!(normal("./a//b"), "a/b");
        assert_eq!(join("", "./flux"), "flux");
        assert_eq!(join("tenants", "acme"), "tenants/acme");
        assert_eq!(
            relative_to(Path::new("/r/x/../deploy"), Path::new("/r")).as_deref(),
            Some("deploy")
        );
        assert_eq!(
            relative_to(Path::new("/r"), Path::new("/r")).as_deref(),
            Some("")
        );
        assert_eq!(relative_to(Path::new("/elsewhere"), Path::new("/r")), None);
    }
}
