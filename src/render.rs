//! Site + resolved tenants + stacks → [`Document`]s (one object each, with its
//! output path).
//!
//! Templates are minijinja with JSON auto-escape on (`{{ v }}` is always a JSON
//! scalar, list or map: valid YAML that cannot break out of its place) and
//! strict undefined (a missing variable is an error, never ""). Each rendered
//! text is re-parsed by `yaml.rs` and must hold exactly one object: only that
//! value travels on, so template whitespace never reaches the output. Most
//! renders skip the re-parse: [`crate::shapes`] parses each distinct shape of
//! a template's text once and puts the values back into it.

use crate::json::Field;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::layout::{self, Part};
use crate::network::Pool;
use crate::resolve::ResolvedTenant;
use crate::shard;
use crate::spec::{Certificate, DataStore, Issuer, Site};
use crate::stack::{Stacks, Template};
use crate::yaml;

/// One rendered Kubernetes object and where it goes. Its tree is
/// `serde_json`'s, or kmetal's own ([`crate::value`]) for what the topology
/// expansion makes.
#[derive(Clone, Debug, PartialEq)]
pub struct Document<V = crate::value::Value> {
    /// Output path relative to the output directory, with `/`.
    pub path: String,
    /// The input file it was generated from.
    pub source: String,
    /// The template that produced it.
    pub template: String,
    pub value: V,
    /// The value's canonical text ([`crate::yaml::emit`]'s), when rendering
    /// wrote it from its template's shape ([`crate::shapes`]); `None`: it
    /// is emitted from the value. Nothing changes a document's value after
    /// it is made (debug builds check the text against the value).
    pub emitted: Option<String>,
}

/// The compiled templates of every stack.
pub struct Renderer {
    env: Environment<'static>,
    /// The templates that may be rendered as shapes ([`crate::shapes`]).
    shaped: BTreeSet<String>,
    shapes: crate::shapes::Shapes,
}

/// The site as templates see it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SiteContext<'a> {
    name: &'a str,
    metallb_namespace: &'a str,
    flux: &'a crate::spec::Flux,
}

/// A tenant's Flux Kustomization as its template sees it (`kustomization`),
/// in the order of its fields: typed, not a `serde_json` tree, because one
/// is made for every tenant.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TenantKustomization<'a> {
    name: &'a str,
    health_checks: Vec<HealthCheck<'a>>,
    labels: TenantLabels<'a>,
    path: &'a str,
    source_ref: TenantSource<'a>,
    depends_on: Vec<Named>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthCheck<'a> {
    api_version: &'static str,
    kind: &'static str,
    name: &'a str,
    namespace: &'a str,
}

/// The tenant Kustomization's labels (the shard's is [`SHARD_LABEL`]).
#[derive(Serialize)]
struct TenantLabels<'a> {
    #[serde(rename = "app.kubernetes.io/managed-by")]
    managed_by: &'static str,
    #[serde(rename = "kmetal.io/tenant")]
    tenant: &'a str,
    #[serde(
        rename = "sharding.fluxcd.io/key",
        skip_serializing_if = "Option::is_none"
    )]
    shard: Option<&'a str>,
}

/// Where a tenant Kustomization's objects come from.
#[derive(Serialize)]
#[serde(untagged)]
enum TenantSource<'a> {
    Artifact { kind: &'static str, name: &'a str },
    Repository(&'a crate::spec::SourceRef),
}

#[derive(Serialize)]
struct Named {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PoolContext<'a> {
    name: &'a str,
    addresses: &'a [String],
}

impl Renderer {
    /// Compile every template once. Syntax errors name the template and line.
    pub fn new(stacks: &Stacks) -> Result<Self, Diagnostics> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // minijinja's default is on in debug builds only: without it a release
        // build says "undefined value" where the tests see which one.
        env.set_debug(true);
        env.set_formatter(crate::shapes::format);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("the default delimiters are a valid syntax"),
        );
        let mut diagnostics = Diagnostics::new();
        let mut shaped = BTreeSet::new();
        let templates = stacks
            .platform
            .values()
            .chain(stacks.tenant.values().flat_map(|s| s.templates.values()));
        for Template { name, source } in templates {
            if let Err(error) = env.add_template_owned(name.clone(), source.clone()) {
                diagnostics.push(template_diagnostic(&error, name, "cannot be compiled"));
            }
            if crate::shapes::fits(source) {
                shaped.insert(name.clone());
            }
        }
        diagnostics.into_result(Renderer {
            env,
            shaped,
            shapes: crate::shapes::Shapes::default(),
        })
    }

    /// Every object of the site and its tenants that rendered, in output-path
    /// order, and the problems of those that did not.
    pub fn render_all<'s>(
        &'s self,
        site: &'s Site,
        stacks: &'s Stacks,
        tenants: &'s [ResolvedTenant],
    ) -> (Vec<Document>, Diagnostics) {
        // The site as templates see it, converted once and shared.
        let site_ctx = minijinja::Value::from(minijinja::value::Serde(SiteContext {
            name: site.name.as_str(),
            metallb_namespace: site.metallb_namespace.as_str(),
            flux: &site.flux,
        }));
        let mut jobs: Vec<Job<'_>> = Vec::new();
        let platform = |file: &str| &stacks.platform[file];
        let file = site.file.as_str();
        for pool in &site.pools {
            let ctx = context(&site_ctx, "pool", &pool_context(pool));
            let stem = format!("ipaddresspool-{}", pool.name);
            job(
                &mut jobs,
                Part::Metallb.file(&stem),
                file,
                platform("ipaddresspool.yaml.j2"),
                ctx.clone(),
            );
            if pool.l2_advertisement {
                let stem = format!("l2advertisement-{}", pool.name);
                job(
                    &mut jobs,
                    Part::Metallb.file(&stem),
                    file,
                    platform("l2advertisement.yaml.j2"),
                    ctx,
                );
            }
        }
        for issuer in &site.issuers {
            job(
                &mut jobs,
                Part::CertManager.file(&format!("clusterissuer-{}", issuer.name)),
                file,
                platform("clusterissuer.yaml.j2"),
                context::<Issuer>(&site_ctx, "issuer", issuer),
            );
        }
        for cert in &site.certificates {
            job(
                &mut jobs,
                Part::CertManager.file(&format!("certificate-{}-{}", cert.namespace, cert.name)),
                file,
                platform("certificate.yaml.j2"),
                context::<Certificate>(&site_ctx, "certificate", cert),
            );
        }
        for store in &site.data_stores {
            job(
                &mut jobs,
                Part::DataStores.file(&format!("datastore-{}", store.name)),
                file,
                platform("datastore.yaml.j2"),
                context::<DataStore>(&site_ctx, "dataStore", store),
            );
        }
        // The chart source of each add-on, once.
        let addon_contexts: BTreeMap<&str, Value> = (site.addons.iter())
            .map(|addon| {
                let source_name = format!("addon-{}", addon.name);
                let (oci, url) = match &addon.source {
                    crate::spec::AddonSource::Oci(url) => (
                        true,
                        format!("{}/{}", url.trim_end_matches('/'), addon.chart),
                    ),
                    crate::spec::AddonSource::Helm(url) => (false, url.clone()),
                };
                let context = json!({
                    "name": addon.name,
                    "sourceName": source_name,
                    "oci": oci,
                    "url": url,
                    "chart": addon.chart,
                    "version": addon.version,
                    "targetNamespace": addon.target_namespace,
                });
                (addon.name.as_str(), context)
            })
            .collect();
        for (name, addon) in &addon_contexts {
            let (kind, template) = if addon.item("oci") == true {
                ("ocirepository", "ocirepository.yaml.j2")
            } else {
                ("helmrepository", "helmrepository.yaml.j2")
            };
            job(
                &mut jobs,
                Part::Addons.file(&format!("{kind}-{name}")),
                file,
                platform(template),
                context(&site_ctx, "addon", addon),
            );
        }
        // The stacks whose ClusterClass kmetal writes: the site's default
        // stack and every tenant's.
        let classes: BTreeSet<&str> = std::iter::once(site.defaults.stack.value.as_str())
            .chain(tenants.iter().map(|t| t.stack.as_str()))
            .filter(|s| stacks.tenant.get(*s).is_some_and(|s| s.class.is_some()))
            .collect();
        let parts: BTreeSet<Part> = [
            (Part::Metallb, !site.pools.is_empty()),
            (
                Part::CertManager,
                !(site.issuers.is_empty() && site.certificates.is_empty()),
            ),
            (Part::DataStores, !site.data_stores.is_empty()),
            (
                Part::ClusterClasses,
                site.emit_cluster_classes && !classes.is_empty(),
            ),
            (Part::Addons, !site.addons.is_empty()),
        ]
        .into_iter()
        .filter_map(|(part, present)| present.then_some(part))
        .collect();
        let repository =
            serde_json::to_value(&site.flux.source_ref).expect("a source reference serializes");
        for part in &parts {
            let kustomization = json!({
                "name": layout::platform_kustomization(site.name.as_str(), *part),
                "part": part.dir_name(),
                "path": layout::in_source(&site.flux.path, &part.dir()),
                "sourceRef": repository,
            });
            job(
                &mut jobs,
                layout::flux_platform_file(*part),
                file,
                platform("flux-platform.yaml.j2"),
                context(&site_ctx, "kustomization", &kustomization),
            );
        }
        // Each tenant's jobs, made in parallel: its Flux Kustomization, its
        // stack's objects, its add-ons; and its artifact in its shard.
        let tenant_jobs = |tenant: &'s ResolvedTenant| {
            let mut out: Vec<Job<'s>> = Vec::new();
            let mut artifact = None;
            let name = tenant.name.as_str();
            let shard = shard::of(name, site.flux.shards);
            let kustomization_name = layout::tenant_kustomization(site.name.as_str(), name);
            let (source_ref, path) = if site.flux.per_tenant_artifacts {
                artifact = Some((
                    shard.clone(),
                    json!({
                        "name": kustomization_name,
                        "from": layout::copy_from(ARTIFACT_SOURCE, &site.flux.path, &layout::tenant_dir(name)),
                    }),
                ));
                (
                    TenantSource::Artifact {
                        kind: "ExternalArtifact",
                        name: &kustomization_name,
                    },
                    "./".to_string(),
                )
            } else {
                (
                    TenantSource::Repository(&site.flux.source_ref),
                    layout::in_source(&site.flux.path, &layout::tenant_dir(name)),
                )
            };
            let stack = stacks.tenant.get(tenant.stack.as_str());
            let uses = [
                (Part::Metallb, true),
                (
                    Part::DataStores,
                    tenant.control_plane.data_store.as_str() != crate::spec::PLATFORM_DATASTORE,
                ),
                (
                    Part::ClusterClasses,
                    stack.is_some_and(|s| s.class.is_some()),
                ),
                (Part::Addons, !tenant.addons.is_empty()),
            ];
            let depends_on: Vec<Named> = uses
                .into_iter()
                .filter(|(part, used)| *used && parts.contains(part))
                .map(|(part, _)| Named {
                    name: layout::platform_kustomization(site.name.as_str(), part),
                })
                .collect();
            // Ready when the Cluster is Available and every add-on installed.
            let namespace = tenant.namespace.as_str();
            let cluster = HealthCheck {
                api_version: "cluster.x-k8s.io/v1beta2",
                kind: "Cluster",
                name,
                namespace,
            };
            let health = std::iter::once(cluster)
                .chain(tenant.addons.iter().map(|a| HealthCheck {
                    api_version: "helm.toolkit.fluxcd.io/v2",
                    kind: "HelmRelease",
                    name: a.name.as_str(),
                    namespace,
                }))
                .collect();
            let kustomization = TenantKustomization {
                name: &kustomization_name,
                health_checks: health,
                labels: TenantLabels {
                    managed_by: "kmetal",
                    tenant: name,
                    shard: shard.as_deref(),
                },
                path: &path,
                source_ref,
                depends_on,
            };
            let ctx = context(&site_ctx, "tenant", tenant);
            let source = tenant.source_file.as_str();
            job(
                &mut out,
                layout::flux_tenant_file(name),
                source,
                platform("flux-tenant.yaml.j2"),
                with(&ctx, "kustomization", &kustomization),
            );
            for (stem, template) in &stacks.tenant[tenant.stack.as_str()].templates {
                job(
                    &mut out,
                    layout::tenant_file(name, stem.as_str()),
                    source,
                    template,
                    ctx.clone(),
                );
            }
            for addon in &tenant.addons {
                let Some(shared) = addon_contexts.get(addon.name.as_str()) else {
                    continue;
                };
                let mut this = shared.clone();
                this["values"] = addon.values.clone();
                job(
                    &mut out,
                    layout::tenant_file(name, &format!("helmrelease-{}", addon.name)),
                    source,
                    platform("helmrelease.yaml.j2"),
                    with(&ctx, "addon", &this),
                );
            }
            (out, artifact)
        };
        // Per shard (or for all when unsharded): the tenants' artifacts.
        let mut generators: BTreeMap<Option<String>, Vec<Value>> = BTreeMap::new();
        let per_tenant: Vec<_> = tenants.par_iter().map(tenant_jobs).collect();
        // Each tenant's Flux Kustomization (its first job) with the others',
        // then its own objects: the documents are then two runs in path
        // order when the tenants are in name order, which the sort below
        // merges instead of comparing every path with many.
        let mut flux_jobs = Vec::with_capacity(per_tenant.len());
        let mut object_jobs = Vec::new();
        for (tenant_jobs, artifact) in per_tenant {
            let mut tenant_jobs = tenant_jobs.into_iter();
            flux_jobs.extend(tenant_jobs.next());
            object_jobs.extend(tenant_jobs);
            if let Some((shard, artifact)) = artifact {
                generators.entry(shard).or_default().push(artifact);
            }
        }
        jobs.extend(flux_jobs);
        jobs.extend(object_jobs);
        for (shard, artifacts) in generators {
            let (name, path) = layout::artifact_generator(site.name.as_str(), shard.as_deref());
            let mut labels = json!({"app.kubernetes.io/managed-by": "kmetal"});
            if let Some(shard) = &shard {
                labels[SHARD_LABEL] = json!(shard);
            }
            let mut source = json!({
                "alias": ARTIFACT_SOURCE,
                "kind": site.flux.source_ref.kind,
                "name": site.flux.source_ref.name,
            });
            if let Some(ns) = &site.flux.source_ref.namespace {
                source["namespace"] = json!(ns);
            }
            let generator = json!({
                "name": name,
                "labels": labels,
                "source": source,
                "artifacts": artifacts,
            });
            job(
                &mut jobs,
                path,
                file,
                platform("flux-artifacts.yaml.j2"),
                context(&site_ctx, "generator", &generator),
            );
        }
        // Each template is rendered once per object; tenants render in
        // parallel, and the results keep the jobs' order.
        let results: Vec<Result<Document, Diagnostic>> = jobs
            .into_par_iter()
            .map(|job| {
                self.render(job.template, &job.ctx)
                    .map(|(value, emitted)| Document {
                        path: job.path,
                        source: job.source.to_string(),
                        template: job.template.name.clone(),
                        value,
                        emitted,
                    })
            })
            .collect();
        let mut diagnostics = Diagnostics::new();
        let mut documents = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(document) => documents.push(document),
                Err(d) => diagnostics.push(d),
            }
        }
        // The ClusterClass of every stack in use, once.
        for stack in classes.into_iter().filter_map(|s| stacks.tenant.get(s)) {
            if let Some(class) = &stack.class {
                documents.extend(crate::class::documents(stack, class, &site.boot_images));
            }
        }
        documents.sort_by(|a, b| a.path.cmp(&b.path));
        (documents, diagnostics)
    }

    /// Render one template and re-parse it into exactly one object (and its
    /// canonical text, when its shape gave it).
    fn render(
        &self,
        template: &Template,
        ctx: &minijinja::Value,
    ) -> Result<(crate::value::Value, Option<String>), Diagnostic> {
        let compiled = self
            .env
            .get_template(&template.name)
            .expect("every template of the stacks was added in Renderer::new");
        if self.shaped.contains(&template.name)
            && let Some(rendered) = self.shapes.render(&compiled, ctx)
        {
            return Ok(rendered);
        }
        let text = compiled
            .render(ctx)
            .map_err(|e| template_diagnostic(&e, &template.name, "failed to render"))?;
        let value = yaml::parse_tree::<crate::value::Value>(&text).map_err(|e| {
            let message = match e {
                yaml::NotOneValue::Several => "rendered several documents; a template must produce exactly one object".to_string(),
                yaml::NotOneValue::Invalid(e) => format!("rendered text is not valid YAML: {e}"),
            };
            Diagnostic::error(codes::TEMPLATE_ERROR, message)
                .at(SourceLocation::file(&template.name))
                .help("a template must produce one YAML document; use {{ value }} (JSON-escaped) for every value")
        })?;
        if !value.is_object() {
            return Err(Diagnostic::error(
                codes::TEMPLATE_ERROR,
                "rendered no object; a template must produce exactly one",
            )
            .at(SourceLocation::file(&template.name)));
        }
        Ok((value, None))
    }
}

fn pool_context(pool: &Pool) -> PoolContext<'_> {
    PoolContext {
        name: pool.name.as_str(),
        addresses: &pool.addresses,
    }
}

/// `{ site: …, <key>: value }` as a template context.
fn context<T: Serialize + ?Sized>(
    site: &minijinja::Value,
    key: &str,
    value: &T,
) -> minijinja::Value {
    let mut map = BTreeMap::new();
    map.insert("site".to_string(), site.clone());
    map.insert(
        key.to_string(),
        minijinja::Value::from(minijinja::value::Serde(value)),
    );
    minijinja::Value::from_object(map)
}

/// `ctx` with one more key.
fn with<T: Serialize + ?Sized>(ctx: &minijinja::Value, key: &str, value: &T) -> minijinja::Value {
    let mut map: BTreeMap<String, minijinja::Value> = (ctx.try_iter().into_iter().flatten())
        .filter_map(|k| Some((k.as_str()?.to_string(), ctx.get_item(&k).ok()?)))
        .collect();
    map.insert(
        key.to_string(),
        minijinja::Value::from(minijinja::value::Serde(value)),
    );
    minijinja::Value::from_object(map)
}

/// The label Flux's sharding selects on.
pub const SHARD_LABEL: &str = "sharding.fluxcd.io/key";
/// The alias of the site's source in the ArtifactGenerators.
const ARTIFACT_SOURCE: &str = "source";

/// Add one object to render to `jobs`.
fn job<'s>(
    jobs: &mut Vec<Job<'s>>,
    path: String,
    source: &'s str,
    template: &'s Template,
    ctx: minijinja::Value,
) {
    jobs.push(Job {
        path,
        source,
        template,
        ctx,
    });
}

/// One object to render: where it goes, what it comes from, with what.
struct Job<'s> {
    path: String,
    source: &'s str,
    template: &'s Template,
    ctx: minijinja::Value,
}

fn template_diagnostic(error: &minijinja::Error, template: &str, what: &str) -> Diagnostic {
    let line = error.line().unwrap_or(0) as u64;
    let detail = error.detail().map_or_else(
        || error.kind().to_string(),
        |d| format!("{}: {d}", error.kind()),
    );
    Diagnostic::error(codes::TEMPLATE_ERROR, format!("template {what}: {detail}"))
        .at(SourceLocation {
            file: template.to_string(),
            line,
            column: if line > 0 { 1 } else { 0 },
            byte_offset: 0,
            byte_len: 0,
        })
        .help("fix the stack template; every variable it uses must exist in the context")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shard label a tenant Kustomization carries is the one Flux's
    /// sharding selects on.
    #[test]
    fn the_shard_label_is_fluxs() {
        let labels = TenantLabels {
            managed_by: "kmetal",
            tenant: "t",
            shard: Some("shard0"),
        };
        let value = serde_json::to_value(&labels).unwrap();
        assert_eq!(value[SHARD_LABEL], "shard0");
        let unsharded = TenantLabels {
            shard: None,
            ..labels
        };
        let keys: Vec<String> = (serde_json::to_value(&unsharded).unwrap())
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["app.kubernetes.io/managed-by", "kmetal.io/tenant"]);
    }
}
