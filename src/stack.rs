//! Template sets: the built-in `stacks/` (embedded) plus the user's `stacks/`
//! → checked [`Stacks`].
//!
//! A tenant stack is a directory with `stack.yaml` (what it supports) and
//! `templates/*.yaml.j2` (one object each, written as `<stem>.yaml` in the
//! tenant's output directory). The directory `platform/` holds the site-wide
//! templates. A user's stack replaces the built-in stack of the same name as a
//! whole; a user's `platform/<file>` replaces that one built-in template.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::spec::checker::{FileChecker, UniqueNames};
use crate::spec::names::{Label, Subdomain};
use crate::spec::raw::S;
use crate::yaml;

/// The site-wide template set's directory name (reserved: no tenant stack may use it).
pub const PLATFORM: &str = "platform";
/// The templates every platform set has, each rendered once per object of its kind.
pub const PLATFORM_TEMPLATES: &[&str] = &[
    "certificate.yaml.j2",
    "clusterissuer.yaml.j2",
    "datastore.yaml.j2",
    "flux-artifacts.yaml.j2",
    "flux-platform.yaml.j2",
    "flux-tenant.yaml.j2",
    "helmrelease.yaml.j2",
    "helmrepository.yaml.j2",
    "ipaddresspool.yaml.j2",
    "l2advertisement.yaml.j2",
    "ocirepository.yaml.j2",
];
const TEMPLATE_SUFFIX: &str = ".yaml.j2";

/// A template's text and where it came from.
#[derive(Clone, Debug)]
pub struct Template {
    /// Name in the template environment and in messages: `stacks/<stack>/…`,
    /// with ` (built-in)` appended for embedded ones.
    pub name: String,
    pub source: String,
}

/// The ClusterClass a stack's clusters use.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterClassRef {
    pub name: Subdomain,
    pub namespace: Label,
}

/// A checked tenant stack.
#[derive(Clone, Debug)]
pub struct Stack {
    pub name: Label,
    pub cluster_class: ClusterClassRef,
    pub kubernetes_versions: Vec<String>,
    pub machine_sizes: Vec<String>,
    pub worker_classes: Vec<String>,
    /// The ClusterClass's variables; a Cluster's topology is checked against them.
    pub variables: Vec<Variable>,
    /// Output file stem (`cluster`) → template, sorted by stem.
    pub templates: BTreeMap<Label, Template>,
    /// The stack's own ClusterClass (`class/`), if it ships one.
    pub class: Option<crate::class::StackClass>,
    /// The image worker VMs boot, per Kubernetes version (only with `class/`).
    pub boot_images: Option<BootImages>,
}

/// Where the image a worker VM boots goes, and the image of each Kubernetes
/// version (a site may override or add images, `bootImages` in kmetal.yaml).
#[derive(Clone, Debug)]
pub struct BootImages {
    /// JSON pointer into each worker class's infrastructure template.
    pub path: String,
    /// Kubernetes version → image.
    pub images: BTreeMap<String, String>,
}

impl Stack {
    /// The image workers of `version` boot: the site's, else the stack's. `None`
    /// for a stack that sets no boot images, `Some(None)` for a version it has no
    /// image for.
    pub fn boot_image<'a>(
        &'a self,
        site_images: &'a BTreeMap<String, String>,
        version: &str,
    ) -> Option<Option<&'a str>> {
        let images = self.boot_images.as_ref()?;
        Some(
            (site_images
                .get(version)
                .or_else(|| images.images.get(version)))
            .map(String::as_str),
        )
    }
}

/// Why a version has no boot image, and what to do, for a diagnostic.
pub fn no_boot_image(stack: &Stack, version: &str) -> (String, String) {
    (
        format!(
            "stack {} has no boot image for Kubernetes {version}: its workers would boot nothing",
            stack.name
        ),
        format!(
            "add the image to kmetal.yaml, e.g. `bootImages: {{{version}: <registry>/<image>:{version}}}`, or choose a version with an image"
        ),
    )
}

/// Check an OCI image reference: `name[:tag]` or `name@sha256:<digest>`, with
/// a tag or a digest, lowercase name, no whitespace.
pub fn check_image(s: &str) -> Result<(), String> {
    let fail = |why: &str| {
        Err(format!(
            "{s:?} is not an image reference ({why}), like registry.example.com/capk/ubuntu-2404-container-disk:v1.34.1"
        ))
    };
    let (name, pinned) = match s.split_once('@') {
        Some((name, digest)) => (
            name,
            digest
                .strip_prefix("sha256:")
                .is_some_and(|d| d.len() == 64 && d.chars().all(|c| c.is_ascii_hexdigit())),
        ),
        None => match s.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (
                name,
                !tag.is_empty()
                    && tag.len() <= 128
                    && tag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            ),
            _ => (s, false),
        },
    };
    if !pinned {
        return fail("it needs a tag or an @sha256: digest");
    }
    let part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
    };
    let mut parts = name.split('/');
    // The first part may be a registry host with a port.
    let host = parts.next().unwrap_or_default();
    let host_ok = host.split_once(':').map_or(part(host), |(h, port)| {
        part(h) && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
    });
    if !host_ok || !parts.all(part) {
        return fail("its name is lowercase letters, digits, '.', '_', '-' and '/'");
    }
    Ok(())
}

/// Every stack and the platform templates.
#[derive(Clone, Debug)]
pub struct Stacks {
    pub tenant: BTreeMap<String, Stack>,
    /// File name (`datastore.yaml.j2`) → template.
    pub platform: BTreeMap<String, Template>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawStack {
    api_version: S<String>,
    kind: S<String>,
    name: S<String>,
    cluster_class: RawClusterClass,
    kubernetes_versions: S<Vec<S<String>>>,
    /// Only without class/: with it, the class's machineSize variable says.
    machine_sizes: Option<S<Vec<S<String>>>>,
    /// Only without class/: with it, the class's worker classes say.
    worker_classes: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    variables: Vec<S<RawVariable>>,
    /// Only with class/: the image worker VMs boot, per Kubernetes version.
    boot_images: Option<S<RawBootImages>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBootImages {
    path: S<String>,
    images: BTreeMap<String, S<String>>,
}

/// A ClusterClass variable, declared as CAPI declares it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVariable {
    name: String,
    required: bool,
    schema: RawVariableSchema,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariableSchema {
    #[serde(rename = "openAPIV3Schema")]
    open_api_v3_schema: serde_json::Value,
}

/// A ClusterClass variable: its name, whether a Cluster must set it, and its
/// schema converted to strict JSON Schema (CEL rules kept).
#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub required: bool,
    pub schema: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawClusterClass {
    name: S<String>,
    namespace: S<String>,
}

/// Files of one origin: path relative to the stacks dir (with `/`) → text.
type Files = BTreeMap<String, String>;

fn builtin_files() -> Files {
    crate::embedded::stack_files()
        .into_iter()
        .map(|(path, text)| (path, text.to_string()))
        .collect()
}

fn user_files(stacks_dir: &Path, diagnostics: &mut Diagnostics) -> Files {
    let mut files = Files::new();
    if !stacks_dir.is_dir() {
        return files;
    }
    for entry in walkdir::WalkDir::new(stacks_dir).sort_by_file_name() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                diagnostics.push(Diagnostic::error(
                    codes::IO,
                    format!("cannot read stacks/: {error}"),
                ));
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(stacks_dir)
            .expect("walkdir yields paths below its root")
            .to_string_lossy()
            .replace('\\', "/");
        match std::fs::read_to_string(entry.path()) {
            Ok(text) => {
                files.insert(relative, text);
            }
            Err(error) => diagnostics.push(
                Diagnostic::error(codes::IO, format!("cannot read this file: {error}"))
                    .at(SourceLocation::file(format!("stacks/{relative}"))),
            ),
        }
    }
    files
}

/// Load the built-in stacks and the user's `stacks_dir` (if it exists).
pub fn load(stacks_dir: &Path, diagnostics: &mut Diagnostics) -> Stacks {
    let builtin = builtin_files();
    let user = user_files(stacks_dir, diagnostics);
    let top = |path: &str| path.split('/').next().unwrap_or_default().to_string();
    let user_stacks: std::collections::BTreeSet<String> = user.keys().map(|p| top(p)).collect();

    let mut stacks = Stacks {
        tenant: BTreeMap::new(),
        platform: BTreeMap::new(),
    };
    // Group files by stack directory, user directories replacing built-in ones,
    // except `platform/`, which is replaced file by file.
    let mut groups: BTreeMap<String, Files> = BTreeMap::new();
    for (from_user, files) in [(false, &builtin), (true, &user)] {
        for (path, text) in files {
            let name = shown_name(path, from_user);
            diagnostics.add_source(name.clone(), std::sync::Arc::from(text.as_str()));
            let dir = top(path);
            if dir == PLATFORM {
                let file = path.trim_start_matches("platform/").to_string();
                let source = text.clone();
                stacks.platform.insert(file, Template { name, source });
            } else if from_user || !user_stacks.contains(&dir) {
                groups
                    .entry(dir)
                    .or_default()
                    .insert(path.clone(), text.clone());
            }
        }
    }
    for required in PLATFORM_TEMPLATES {
        if !stacks.platform.contains_key(*required) {
            diagnostics.push(Diagnostic::error(
                codes::STACK_INVALID,
                format!("the platform template set has no {required}"),
            ));
        }
    }
    for (dir, files) in groups {
        let from_user = user_stacks.contains(&dir);
        if let Some(stack) = check_stack(&dir, &files, from_user, diagnostics) {
            stacks.tenant.insert(stack.name.to_string(), stack);
        }
    }
    stacks
}

fn check_stack(
    dir: &str,
    files: &Files,
    from_user: bool,
    diagnostics: &mut Diagnostics,
) -> Option<Stack> {
    let display = |path: &str| shown_name(path, from_user);
    let stack_file = format!("{dir}/stack.yaml");
    let Some(text) = files.get(&stack_file) else {
        diagnostics.push(
            Diagnostic::error(
                codes::STACK_INVALID,
                format!("stack directory {dir:?} has no stack.yaml"),
            )
            .at(SourceLocation::file(display(dir)))
            .help(
                "add stack.yaml (see stacks/kubevirt-kubeadm/stack.yaml) or remove the directory",
            ),
        );
        return None;
    };
    let file = display(&stack_file);
    let raw: RawStack = match yaml::parse_spec(&file, text) {
        Ok(raw) => raw,
        Err(diagnostic) => {
            diagnostics.push(diagnostic);
            return None;
        }
    };
    let before = diagnostics.len();
    let mut c = FileChecker {
        file: &file,
        diagnostics,
    };
    c.header(&raw.api_version, &raw.kind, "Stack");
    let name = c.label(&raw.name, "stack name");
    if raw.name.value != dir {
        c.error(
            codes::STACK_INVALID,
            &raw.name,
            format!("stack {:?} lives in directory {dir:?}", raw.name.value),
            Some(format!("name the stack {dir:?} or rename its directory")),
        );
    }
    if raw.name.value == PLATFORM {
        c.error(
            codes::STACK_INVALID,
            &raw.name,
            "the name \"platform\" is reserved for the site-wide templates".into(),
            None,
        );
    }
    let class_name = c.subdomain(&raw.cluster_class.name, "ClusterClass name");
    let class_namespace = c.label(&raw.cluster_class.namespace, "ClusterClass namespace");
    let kubernetes_versions = names_list(
        &mut c,
        &raw.kubernetes_versions,
        "Kubernetes version",
        check_version,
    );
    let class_files: BTreeMap<String, String> = files
        .iter()
        .filter(|(path, _)| {
            path.strip_prefix(&format!("{dir}/{}/", crate::class::CLASS_DIR))
                .is_some_and(|f| f.ends_with(".yaml") && !f.contains('/'))
        })
        .map(|(path, text)| (display(path), text.clone()))
        .collect();
    let class = crate::class::load(&class_files, check_variables, c.diagnostics);
    let (machine_sizes, worker_classes, variables) = match &class {
        Some(class) => {
            // The class is the one definition: stack.yaml may not repeat it.
            let twice = [
                (
                    "machineSizes",
                    raw.machine_sizes.as_ref().map(|l| c.location(l)),
                ),
                (
                    "workerClasses",
                    raw.worker_classes.as_ref().map(|l| c.location(l)),
                ),
                ("variables", raw.variables.first().map(|v| c.location(v))),
            ];
            for (key, at) in twice {
                if let Some(at) = at {
                    c.diagnostics.push(
                        Diagnostic::error(
                            codes::STACK_INVALID,
                            format!("{key} is defined by the stack's ClusterClass (class/); stack.yaml may not repeat it"),
                        )
                        .at(at)
                        .help(format!("remove {key} from stack.yaml")),
                    );
                }
            }
            let sizes = class.machine_sizes.clone().unwrap_or_default();
            if sizes.is_empty() {
                c.diagnostics.push(
                    Diagnostic::error(
                        codes::STACK_INVALID,
                        "the ClusterClass has no machineSize variable with an enum of sizes",
                    )
                    .at(SourceLocation::file(class.objects[0].file.clone())),
                );
            }
            (sizes, class.worker_classes.clone(), class.variables.clone())
        }
        None => {
            let mut required =
                |list: &Option<S<Vec<S<String>>>>,
                 what: &'static str,
                 key: &str,
                 check: fn(&str) -> Result<(), String>| match list {
                    Some(list) => names_list(&mut c, list, what, check),
                    None => {
                        c.error(
                            codes::STACK_INVALID,
                            &raw.name,
                            format!("a stack without class/ lists its {key} in stack.yaml"),
                            None,
                        );
                        Vec::new()
                    }
                };
            let sizes = required(&raw.machine_sizes, "machine size", "machineSizes", |s| {
                Label::parse(s).map(|_| ())
            });
            let workers = required(&raw.worker_classes, "worker class", "workerClasses", |s| {
                Subdomain::parse(s).map(|_| ())
            });
            (sizes, workers, check_variables(&mut c, &raw.variables))
        }
    };
    let boot_images = raw.boot_images.as_ref().and_then(|raw_images| {
        if class.is_none() {
            c.error(
                codes::STACK_INVALID,
                raw_images,
                "bootImages needs the stack's ClusterClass (class/): its patches set the image"
                    .into(),
                Some("remove bootImages, or add class/".into()),
            );
            return None;
        }
        let path = &raw_images.value.path;
        if !path.value.starts_with('/') {
            c.error(
                codes::STACK_INVALID,
                path,
                format!("bootImages.path {:?} is not a JSON pointer", path.value),
                Some(
                    "write the path from the template's root, e.g. /spec/template/spec/…/image"
                        .into(),
                ),
            );
        }
        let mut images = BTreeMap::new();
        for (version, image) in &raw_images.value.images {
            if !kubernetes_versions.contains(version) {
                c.error(
                    codes::STACK_INVALID,
                    image,
                    format!(
                        "bootImages.images names {version}, which kubernetesVersions does not list"
                    ),
                    Some("add the version to kubernetesVersions, or remove its image".into()),
                );
            } else if let Err(why) = check_image(&image.value) {
                c.error(codes::STACK_INVALID, image, why, None);
            } else {
                images.insert(version.clone(), image.value.clone());
            }
        }
        Some(BootImages {
            path: path.value.clone(),
            images,
        })
    });
    let mut templates = BTreeMap::new();
    let prefix = format!("{dir}/templates/");
    for (path, source) in files {
        let Some(file_name) = path.strip_prefix(&prefix) else {
            continue;
        };
        let template_name = display(path);
        let stem = file_name.strip_suffix(TEMPLATE_SUFFIX).map(Label::parse);
        match stem {
            Some(Ok(stem)) => {
                templates.insert(stem, Template { name: template_name, source: source.clone() });
            }
            _ => c.diagnostics.push(
                Diagnostic::error(
                    codes::STACK_INVALID,
                    format!("{file_name:?} is not a template: templates are named <name>.yaml.j2, <name> a DNS-1123 label"),
                )
                .at(SourceLocation::file(template_name)),
            ),
        }
    }
    if templates.is_empty() {
        c.error(
            codes::STACK_INVALID,
            &raw.name,
            format!("stack {dir:?} has no templates/*.yaml.j2"),
            None,
        );
    }
    if diagnostics.len() > before {
        return None;
    }
    Some(Stack {
        name: name?,
        cluster_class: ClusterClassRef {
            name: class_name?,
            namespace: class_namespace?,
        },
        kubernetes_versions,
        machine_sizes,
        worker_classes,
        variables,
        templates,
        class,
        boot_images,
    })
}

/// ClusterClass variables → checked [`Variable`]s (each schema compiled once here).
pub fn check_variables(c: &mut FileChecker<'_>, raw: &[S<RawVariable>]) -> Vec<Variable> {
    let mut unique = UniqueNames::new("variable", "in this stack");
    let mut variables = Vec::new();
    for variable in raw {
        let schema = crate::openapi::to_json_schema(&variable.value.schema.open_api_v3_schema);
        let compiles = crate::openapi::validator(&schema)
            .map(|_| ())
            .map_err(|e| e.to_string())
            .and_then(|()| crate::cel::CelRules::compile(&schema).map(|_| ()));
        if let Err(e) = compiles {
            c.error(
                codes::STACK_INVALID,
                variable,
                format!(
                    "variable {}: its schema does not compile: {e}",
                    variable.value.name
                ),
                None,
            );
        } else if unique.insert(&variable.value.name, c.location(variable), c.diagnostics) {
            variables.push(Variable {
                name: variable.value.name.clone(),
                required: variable.value.required,
                schema,
            });
        }
    }
    variables
}

/// How a stack file is named in messages: its path, marked when built in.
fn shown_name(path: &str, from_user: bool) -> String {
    if from_user {
        format!("stacks/{path}")
    } else {
        format!("stacks/{path} (built-in)")
    }
}

/// A Kubernetes release as CAPI wants it: `v<major>.<minor>.<patch>`.
fn check_version(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.strip_prefix('v').unwrap_or("").split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    if parts.len() == 3 && parts.iter().all(numeric) {
        Ok(())
    } else {
        Err(format!("{s:?} is not a Kubernetes version like v1.34.1"))
    }
}

fn names_list(
    c: &mut FileChecker<'_>,
    list: &S<Vec<S<String>>>,
    what: &'static str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Vec<String> {
    let mut unique = UniqueNames::new(what, "in this stack");
    let mut out = Vec::new();
    for item in &list.value {
        if let Err(problem) = check(&item.value) {
            c.error(
                codes::STACK_INVALID,
                item,
                format!("{what}: {problem}"),
                None,
            );
        } else if unique.insert(&item.value, c.location(item), c.diagnostics) {
            out.push(item.value.clone());
        }
    }
    if list.value.is_empty() {
        c.error(
            codes::STACK_INVALID,
            list,
            format!("a stack lists at least one {what}"),
            None,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_stacks_load_cleanly() {
        let mut diagnostics = Diagnostics::new();
        let stacks = load(Path::new("/nonexistent"), &mut diagnostics);
        assert!(diagnostics.is_empty(), "{diagnostics}");
        let stack = &stacks.tenant["kubevirt-kubeadm"];
        assert!(stack.kubernetes_versions.iter().any(|v| v == "v1.34.1"));
        assert!(
            stack
                .kubernetes_versions
                .iter()
                .any(|v| v.starts_with("v1.33."))
        );
        assert_eq!(stack.machine_sizes, ["small", "medium", "large"]);
        assert_eq!(stack.worker_classes, ["default-worker"]);
        assert_eq!(
            stack.cluster_class.namespace.as_str(),
            "kmetal-capi-providers"
        );
        for required in PLATFORM_TEMPLATES {
            assert!(stacks.platform.contains_key(*required), "{required}");
        }
    }

    #[test]
    fn versions() {
        assert!(check_version("v1.34.1").is_ok());
        for bad in ["1.34.1", "v1.34", "v1.34.x", "v1..1", "v1.34.1-rc.0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
