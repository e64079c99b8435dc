//! A stack's ClusterClass (`stacks/<stack>/class/*.yaml`) → checked
//! [`StackClass`] at load, and → [`Document`]s in the platform part of the
//! output.
//!
//! The class files are plain Kubernetes objects (no template language: their
//! patches hold Go templates of their own): one ClusterClass and the templates
//! it refers to. They are the only definition of the class: the variables
//! kmetal checks every Cluster against, the worker classes and the machine
//! sizes a tenant may name all come from them. kmetal fills in what depends on
//! the stack: names, the namespace, `spec.kubernetesVersions`, and the
//! content-derived name of every template (`<base>-<hash>`): CAPK refuses any
//! change to a KubevirtMachineTemplate or KubevirtClusterTemplate, so a changed
//! template is a new object, the class moves to it, and the next build prunes
//! the old one (Cluster API's template rotation).

use crate::json::At;
use crate::json::Field;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::render::Document;
use crate::spec::checker::FileChecker;
use crate::spec::names::Subdomain;
use crate::spec::raw::S;
use crate::stack::{RawVariable, Stack, Variable};
use crate::yaml;

/// The directory of a stack that holds its ClusterClass.
pub const CLASS_DIR: &str = "class";
const CLUSTER_CLASS: &str = "ClusterClass";
/// Hex digits of the content hash in a template's name.
const HASH_LEN: usize = 10;

/// One object of a stack's ClusterClass, as written.
#[derive(Clone, Debug)]
pub struct ClassObject {
    /// The file, as messages name it.
    pub file: String,
    pub kind: String,
    /// `metadata.name` as written: the base of a template's emitted name.
    pub base: String,
    pub value: Value,
}

/// A stack's ClusterClass and what it defines.
#[derive(Clone, Debug)]
pub struct StackClass {
    /// The ClusterClass first, then the templates by file name.
    pub objects: Vec<ClassObject>,
    pub variables: Vec<Variable>,
    /// `spec.workers.machineDeployments[].class`.
    pub worker_classes: Vec<String>,
    /// The `enum` of the `machineSize` variable, if it has one.
    pub machine_sizes: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawClassFile {
    spec: Option<RawClassSpec>,
}

#[derive(Deserialize)]
struct RawClassSpec {
    #[serde(default)]
    variables: Vec<S<RawVariable>>,
}

/// Check the class files of one stack (`files`: display name → text).
/// `None` when there are none; errors are in `diagnostics`.
pub fn load(
    files: &BTreeMap<String, String>,
    check_variables: impl FnOnce(&mut FileChecker<'_>, &[S<RawVariable>]) -> Vec<Variable>,
    diagnostics: &mut Diagnostics,
) -> Option<StackClass> {
    if files.is_empty() {
        return None;
    }
    let mut objects = Vec::new();
    for (file, text) in files {
        let bad = |message: String| {
            Diagnostic::error(codes::STACK_INVALID, message)
                .at(SourceLocation::file(file))
                .help("a class file holds one Kubernetes object with apiVersion, kind and metadata.name")
        };
        let value = match yaml::parse_values(text) {
            Ok(mut values) if values.len() == 1 => values.remove(0),
            Ok(values) => {
                diagnostics.push(bad(format!("holds {} documents, not one", values.len())));
                continue;
            }
            Err(e) => {
                diagnostics.push(bad(format!("is not YAML: {e}")));
                continue;
            }
        };
        let field = |pointer: &str| {
            value
                .at(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let (Some(_), Some(kind), Some(base)) = (
            field("/apiVersion"),
            field("/kind"),
            field("/metadata/name"),
        ) else {
            diagnostics.push(bad("has no apiVersion, kind or metadata.name".into()));
            continue;
        };
        if Subdomain::parse(&base).is_err() {
            diagnostics.push(bad(format!(
                "metadata.name {base:?} is not a DNS-1123 subdomain"
            )));
            continue;
        }
        objects.push(ClassObject {
            file: file.clone(),
            kind,
            base,
            value,
        });
    }
    let classes: Vec<usize> = (0..objects.len())
        .filter(|i| objects[*i].kind == CLUSTER_CLASS)
        .collect();
    let [class] = classes.as_slice() else {
        let at = files.keys().next().map(SourceLocation::file);
        let mut d = Diagnostic::error(
            codes::STACK_INVALID,
            format!(
                "class/ holds {} ClusterClasses; a stack has exactly one",
                classes.len()
            ),
        );
        if let Some(at) = at {
            d = d.at(at);
        }
        diagnostics.push(d);
        return None;
    };
    let class = objects.remove(*class);
    objects.insert(0, class);
    let class = &objects[0];
    for (pointer, reference) in template_refs(&class.value) {
        let (kind, name) = (
            reference
                .field("kind")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            reference
                .field("name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        let found = objects[1..]
            .iter()
            .any(|o| o.kind == kind && o.base == name);
        if !found {
            diagnostics.push(
                Diagnostic::error(
                    codes::STACK_INVALID,
                    format!("{pointer} refers to {kind} {name}, which no file in class/ defines"),
                )
                .at(SourceLocation::file(&class.file))
                .help("add the template to class/, or fix the reference"),
            );
        }
    }
    for problem in crate::expand::check_patches(&crate::value::Value::from(&class.value)) {
        diagnostics.push(
            Diagnostic::error(
                codes::STACK_INVALID,
                format!("{problem}: kmetal expands only what it evaluates exactly"),
            )
            .at(SourceLocation::file(&class.file))
            .help("use inline patches with value, valueFrom.variable, or templates of the subset the README lists"),
        );
    }
    let text = &files[&class.file];
    let variables = match yaml::parse_spec::<RawClassFile>(&class.file, text) {
        Ok(raw) => {
            let raw = raw.spec.map(|s| s.variables).unwrap_or_default();
            let mut c = FileChecker {
                file: &class.file,
                diagnostics,
            };
            check_variables(&mut c, &raw)
        }
        Err(d) => {
            diagnostics.push(d);
            Vec::new()
        }
    };
    let worker_classes = class
        .value
        .at("/spec/workers/machineDeployments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|md| {
            md.field("class")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let machine_sizes = variables
        .iter()
        .find(|v| v.name == "machineSize")
        .and_then(|v| v.schema.field("enum"))
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        });
    Some(StackClass {
        objects,
        variables,
        worker_classes,
        machine_sizes,
    })
}

/// Every `templateRef` of a ClusterClass, with its JSON pointer.
fn template_refs(class: &Value) -> Vec<(String, &Value)> {
    let mut refs = Vec::new();
    for pointer in [
        "/spec/controlPlane/templateRef",
        "/spec/infrastructure/templateRef",
    ] {
        if let Some(r) = class.at(pointer) {
            refs.push((pointer.to_string(), r));
        }
    }
    let mds = class
        .at("/spec/workers/machineDeployments")
        .and_then(Value::as_array);
    for (i, _) in mds.into_iter().flatten().enumerate() {
        for part in ["bootstrap", "infrastructure"] {
            let pointer = format!("/spec/workers/machineDeployments/{i}/{part}/templateRef");
            if let Some(r) = class.at(&pointer) {
                refs.push((pointer, r));
            }
        }
    }
    refs
}

/// The name of a template with this content: its base name and a hash of
/// everything but its name, so that any change gives a new name.
fn content_name(base: &str, value: &Value) -> String {
    let mut unnamed = value.clone();
    if let Some(metadata) = unnamed.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("name");
    }
    let bytes = serde_json::to_vec(&unnamed).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{base}-{}", &hex[..HASH_LEN])
}

/// The stack whose class object an output path holds, if it holds one.
pub fn stack_of_document(path: &str) -> Option<&str> {
    crate::layout::stack_of_class_file(path)
}

/// Whether an output path holds a class object.
pub fn is_class_document(path: &str) -> bool {
    stack_of_document(path).is_some()
}

/// The stack's class as it is emitted: the templates under their content
/// names, then the ClusterClass pointing at them, with one patch per
/// Kubernetes version that has a boot image (`site_images` over the stack's).
pub fn documents(
    stack: &Stack,
    class: &StackClass,
    site_images: &BTreeMap<String, String>,
) -> Vec<Document> {
    let namespace = stack.cluster_class.namespace.as_str();
    let mut names: BTreeMap<(&str, &str), String> = BTreeMap::new();
    let mut documents = Vec::new();
    let place = |value: &mut Value, name: &str| {
        value["metadata"]["name"] = json!(name);
        value["metadata"]["namespace"] = json!(namespace);
        value["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("kmetal");
        value["metadata"]["labels"]["kmetal.io/stack"] = json!(stack.name.as_str());
    };
    for object in &class.objects[1..] {
        let mut value = object.value.clone();
        place(&mut value, &object.base);
        let name = content_name(&object.base, &value);
        value["metadata"]["name"] = json!(name);
        names.insert((object.kind.as_str(), object.base.as_str()), name.clone());
        documents.push(document(stack, object, &name, value));
    }
    let object = &class.objects[0];
    let mut value = object.value.clone();
    place(&mut value, stack.cluster_class.name.as_str());
    value["spec"]["kubernetesVersions"] = json!(stack.kubernetes_versions);
    if let Some(boot) = &stack.boot_images {
        let patches = boot_image_patches(stack, boot, &value, site_images);
        match value["spec"]["patches"].as_array_mut() {
            Some(list) => list.extend(patches),
            None => value["spec"]["patches"] = Value::Array(patches),
        }
    }
    let pointers: Vec<String> = template_refs(&value).into_iter().map(|(p, _)| p).collect();
    for pointer in pointers {
        if let Some(reference) = value.pointer_mut(&pointer) {
            let kind = reference
                .item("kind")
                .as_str()
                .unwrap_or_default()
                .to_string();
            let base = reference
                .item("name")
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(name) = names.get(&(kind.as_str(), base.as_str())) {
                reference["name"] = json!(name);
            }
        }
    }
    documents.push(document(
        stack,
        object,
        stack.cluster_class.name.as_str(),
        value,
    ));
    documents
}

/// One patch per Kubernetes version with an image: enabled for the machine
/// deployments of that version, it sets the image at `boot.path` in the
/// infrastructure template of every worker class. Per version, so that a
/// worker pool boots its own version's image while Cluster API upgrades the
/// control plane first.
fn boot_image_patches(
    stack: &Stack,
    boot: &crate::stack::BootImages,
    class: &Value,
    site_images: &BTreeMap<String, String>,
) -> Vec<Value> {
    // The worker classes by infrastructure template kind.
    let mut by_kind: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let workers = class
        .at("/spec/workers/machineDeployments")
        .and_then(Value::as_array);
    for worker in workers.into_iter().flatten() {
        let reference = &worker.item("infrastructure").item("templateRef");
        let (Some(api), Some(kind), Some(name)) = (
            reference.item("apiVersion").as_str(),
            reference.item("kind").as_str(),
            worker.item("class").as_str(),
        ) else {
            continue;
        };
        by_kind
            .entry((api.to_string(), kind.to_string()))
            .or_default()
            .push(name.to_string());
    }
    let mut patches = Vec::new();
    for version in &stack.kubernetes_versions {
        let Some(Some(image)) = stack.boot_image(site_images, version) else {
            continue;
        };
        let definitions: Vec<Value> = by_kind
            .iter()
            .map(|((api, kind), names)| {
                json!({
                    "selector": {"apiVersion": api, "kind": kind,
                        "matchResources": {"machineDeploymentClass": {"names": names}}},
                    "jsonPatches": [{"op": "replace", "path": boot.path, "value": image}],
                })
            })
            .collect();
        patches.push(json!({
            "name": format!("boot-image-{}", version.replace('.', "-")),
            "description": format!("Workers of Kubernetes {version} boot {image}."),
            "enabledIf": format!("{{{{ eq .builtin.machineDeployment.version \"{version}\" }}}}"),
            "definitions": definitions,
        }));
    }
    patches
}

fn document(stack: &Stack, object: &ClassObject, name: &str, value: Value) -> Document {
    Document {
        path: format!(
            "{}/{}-{name}.yaml",
            crate::layout::class_dir(stack.name.as_str()),
            object.kind.to_lowercase()
        ),
        source: object.file.clone(),
        template: object.file.clone(),
        value: value.into(),
        emitted: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_names_follow_the_content_only() {
        let a = json!({"metadata": {"name": "x"}, "spec": {"a": 1}});
        let renamed = json!({"metadata": {"name": "y"}, "spec": {"a": 1}});
        let changed = json!({"metadata": {"name": "x"}, "spec": {"a": 2}});
        assert_eq!(content_name("t", &a), content_name("t", &renamed));
        assert_ne!(content_name("t", &a), content_name("t", &changed));
        assert_eq!(content_name("t", &a).len(), "t-".len() + HASH_LEN);
    }
}
