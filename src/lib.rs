//! kmetal compiles a kmetal repository (one site file, one short file per
//! tenant cluster) into a Flux-ready directory of Kubernetes manifests.
//!
//! The pipeline, each stage in its own module, each stage's output the next
//! one's input:
//!
//! ```text
//! project → stack::load ─┐
//! spec::read → spec::check_site → spec::check_tenants → network::assign
//!   → resolve → render (minijinja, re-parsed) → verify (schemas) → output
//! ```
//!
//! Every stage collects all of its problems as [`diagnostic::Diagnostics`];
//! nothing is written unless the whole run is clean. The library never prints.

pub mod cel;
pub mod class;
pub mod crds;
pub mod day2;
pub mod diagnostic;
mod embedded;
pub mod expand;
pub mod gotmpl;
pub mod integrity;
pub mod json;
pub mod layout;
pub mod lock;
pub mod network;
pub mod openapi;
pub mod output;
pub mod patterns;
pub mod project;
pub mod render;
pub mod report;
pub mod resolve;
pub mod scaffold;
pub mod schema;
pub mod shapes;
pub mod shard;
pub mod spec;
pub mod stack;
pub mod twin;
pub mod value;
pub mod variables;
pub mod verify;
pub mod yaml;

/// A property-test runner with a fixed seed and no failure files: the same
/// cases on every machine, CI included.
#[cfg(test)]
fn fixed_runner(cases: u32, seed: u8) -> proptest::test_runner::TestRunner {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use rayon::prelude::*;

use diagnostic::Diagnostics;
use output::{OutputTree, WriteReport};
use project::Project;

/// A successful compilation: the whole output and the new lock, in memory.
#[derive(Debug)]
pub struct Compiled {
    /// Every rendered object, verified, in output-path order.
    pub documents: Vec<render::Document>,
    pub tree: OutputTree,
    /// Where the output belongs.
    pub out_dir: PathBuf,
    /// `kmetal.lock` as it must be after this build.
    pub lock: lock::Lock,
    /// Tenants removed with `--allow-removal`, and what they held.
    pub removed: Vec<(spec::names::Label, lock::Held)>,
    pub tenants: usize,
    /// What the change does to the running fleet (against the previous output).
    pub plan: day2::Plan,
    /// The changes the plan refuses (errors of every command but `plan`).
    pub refusals: Diagnostics,
    /// The files of the output directory that already hold the new text, as
    /// read while judging the change (none with `--against`): writing and
    /// checking need not read them again.
    pub same_on_disk: BTreeSet<String>,
    /// What Cluster API's topology controller creates for each tenant
    /// (`kmetal expand`), checked like the output but never written: every
    /// tenant's with `keep_expanded`, else only those of the tenants whose
    /// Cluster or class changed.
    pub expanded: Vec<render::Document>,
    /// The checked site and the stacks it was built with.
    pub site: spec::Site,
    pub stacks: stack::Stacks,
}

/// Read, check, allocate, render and verify everything; write nothing.
pub fn compile(project: &Project) -> Result<Compiled, Diagnostics> {
    let mut diagnostics = Diagnostics::new();
    let stacks = stack::load(&project.stacks_dir(), &mut diagnostics);
    // The lock is read while the tenant files are.
    let (((raw_site, raw_tenants), read), (old_lock, locked)) = rayon::join(
        || {
            let mut found = Diagnostics::new();
            (spec::read(project, &mut found), found)
        },
        || {
            let mut found = Diagnostics::new();
            (lock::Lock::read(project, &mut found), found)
        },
    );
    diagnostics.extend(read);
    let all_tenant_files_read = !diagnostics.has_errors();
    diagnostics.extend(locked);
    // A site file that was read is checked for all it holds, and tenants
    // against what is valid in it, even when parts of it failed.
    let site = raw_site.as_ref().map(|raw| {
        spec::check_site(
            project::SITE_FILE,
            &raw.value,
            &raw.cut,
            &stacks,
            &mut diagnostics,
        )
    });
    let (Some(site), Some(old_lock)) = (site, old_lock) else {
        return Err(diagnostics);
    };
    let spec::CheckedTenants { tenants, facts } =
        spec::check_tenants(&raw_tenants, &site, &stacks, &mut diagnostics);
    network::checks::check(&site, &facts, &mut diagnostics);
    let removals = network::allocate::Removals {
        allowed: &project.allow_removal,
        allow_all: project.allow_all_removals,
        declared: raw_tenants
            .iter()
            .map(|t| t.raw.name.value.as_str())
            .collect(),
        all_tenant_files_read,
    };
    let default_pool = match site.problems.defaults.get("pool") {
        Some(reported) => Err(*reported),
        None => Ok(site.defaults.pool.as_ref().map(|p| &p.value)),
    };
    let allocation = network::allocate(
        &tenants,
        &facts,
        &site.pools,
        default_pool,
        site.problems.pools,
        &old_lock,
        removals,
        &mut diagnostics,
    );
    // What the last guard needs of the tenant files; the rest of what was
    // read is dropped before rendering. Into a list of its own size: `collect`
    // would reuse the read tenants' (1.6 kB an entry, 16 MB at 10,000) and
    // keep it to the end.
    let mut read_tenants: Vec<(String, yaml::Spanned<String>)> =
        Vec::with_capacity(raw_tenants.len());
    read_tenants.extend(raw_tenants.into_iter().map(|t| (t.file, t.raw.name)));
    drop(facts);
    let renderer = render::Renderer::new(&stacks).map_err(|d| diagnostics.extend(d));
    let (Ok(renderer), false) = (renderer, diagnostics.has_errors()) else {
        return Err(diagnostics);
    };
    // Each tenant on its own, in parallel; kept in the allocation's order.
    let each: Vec<Result<resolve::ResolvedTenant, diagnostic::Diagnostic>> =
        (allocation.placed.par_iter())
            .map(
                |placed| match stacks.tenant.get(placed.tenant.stack.as_str()) {
                    Some(stack) => Ok(resolve::resolve(placed, stack)),
                    None => {
                        let what = format!(
                            "tenant {}'s stack {} is gone",
                            placed.tenant.name, placed.tenant.stack
                        );
                        Err(diagnostic::internal(
                            placed.tenant.name_location.clone(),
                            &what,
                        ))
                    }
                },
            )
            .collect();
    let mut resolved = Vec::with_capacity(each.len());
    for tenant in each {
        match tenant {
            Ok(tenant) => resolved.push(tenant),
            Err(d) => diagnostics.push(d),
        }
    }
    // The checked tenants are in their contexts now: only their number and
    // the allocation's lock and removals stay.
    let network::allocate::Allocation { lock, removed, .. } = allocation;
    let tenant_count = tenants.len();
    drop(tenants);
    let (mut documents, problems) = renderer.render_all(&site, &stacks, &resolved);
    diagnostics.extend(problems);
    artifacts_fit(&site, &resolved, &mut diagnostics);
    let mut schemas = verify::Schemas::embedded();
    if let Some(crds) = &project.crds {
        schemas = schemas.with_crds(crds, &mut diagnostics);
    }
    diagnostics.extend(schemas.verify(&documents));
    // The classes as rendered: the previous topology expands on them when the
    // previous output holds none.
    let class_documents: Vec<render::Document> = (documents.iter())
        .filter(|d| class::is_class_document(&d.path))
        .cloned()
        .collect();
    // Checked either way; written only when kmetal installs the classes.
    if !site.emit_cluster_classes {
        documents.retain(|d| !class::is_class_document(&d.path));
    }
    let source = |file: &str| diagnostics.source(file).cloned();
    let variable_problems = variables::check(&documents, &resolved, &stacks, source);
    diagnostics.extend(variable_problems);
    let tree = OutputTree::from_documents(&mut documents).map_err(|d| diagnostics.extend(d));
    let expansion = Expanding {
        documents: &documents,
        classes: &class_documents,
        tenants: &resolved,
        stacks: &stacks,
        schemas: &schemas,
    };
    let (Ok(tree), false) = (tree, diagnostics.has_errors()) else {
        // Reported together with the rest, kept for nothing.
        expansion.run(&|_| false, &mut diagnostics);
        return Err(diagnostics);
    };
    let out_dir = project.out_dir(&site.output);
    let source = |file: &str| diagnostics.source(file).cloned();
    // A previous file the new output repeats byte for byte holds the new object.
    let by_path: rustc_hash::FxHashMap<&str, &value::Value> = documents
        .iter()
        .map(|d| (d.path.as_str(), &d.value))
        .collect();
    let files = tree.files();
    let unchanged = |path: &str| Some((files.get(path)?.as_str(), by_path.get(path).copied()?));
    // The references are checked while the previous output is read: the one
    // is mostly lookups on one thread, the other mostly reading files.
    let (dangling, previous) = rayon::join(
        || {
            integrity::check(
                &documents,
                &integrity::Context {
                    site: &site,
                    stacks: &stacks,
                    tree: &tree,
                    out_dir: &std::path::absolute(&out_dir).unwrap_or_else(|_| out_dir.clone()),
                    git_root: project.git_root.as_deref(),
                    source: &source,
                },
            )
        },
        || match &project.against {
            Some(reference) => day2::previous_at(&project.root, reference, &out_dir, &unchanged)
                .map(|(previous, lock)| day2::Previous {
                    lock: lock
                        .and_then(|text| lock::Lock::parse(&text).ok())
                        .unwrap_or_default(),
                    ..previous
                }),
            None => Ok(day2::Previous {
                lock: old_lock.clone(),
                ..day2::previous_on_disk(&out_dir, &unchanged)
            }),
        },
    );
    diagnostics.extend(dangling);
    let mut previous = match previous {
        Ok(previous) => previous,
        Err(d) => {
            diagnostics.push(d);
            return Err(diagnostics);
        }
    };
    // Every tenant is expanded and verified; only the expansions day 2
    // compares (or `kmetal expand` prints) are kept.
    let before = Before::of(&previous, &class_documents, &documents, &stacks);
    let compared = before.compared();
    let keep = |tenant: &str| project.keep_expanded || compared.contains(tenant);
    let (expanded, expanded_tenants) = expansion.run(&keep, &mut diagnostics);
    let (old_expanded, unexpanded) =
        expand_previous(&before, &class_documents, &expanded_tenants, &stacks);
    let mut refusals = Diagnostics::new();
    let source = |file: &str| diagnostics.source(file).cloned();
    let chained = class_versions(&stacks);
    let plan = day2::judge(
        &previous,
        &documents,
        &site,
        &chained,
        &day2::Consent {
            removal: &project.allow_removal,
            replace: &project.allow_replace,
            allow_all: project.allow_all_removals,
        },
        &day2::Updates {
            rules: &|old, new| schemas.update_violations(old, new),
            old_expanded: &old_expanded,
            new_expanded: &expanded,
            unexpanded: &unexpanded,
        },
        &source,
        &mut refusals,
    );
    if !project.plan_only {
        diagnostics.extend(refusals.clone());
    }
    every_tenant_reached_the_output(&read_tenants, &documents, &mut diagnostics);
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    let same_on_disk = match project.against {
        Some(_) => BTreeSet::new(),
        None => std::mem::take(&mut previous.same),
    };
    Ok(Compiled {
        same_on_disk,
        tree,
        documents,
        out_dir,
        lock,
        removed,
        tenants: tenant_count,
        site,
        stacks,
        expanded,
        plan,
        refusals,
    })
}

/// An ArtifactGenerator holds at most this many artifacts (source-watcher's CRD).
const ARTIFACTS_MAX: usize = 1000;

/// With per-tenant artifacts, each shard's generator holds one artifact per
/// tenant of the shard: at most [`ARTIFACTS_MAX`].
fn artifacts_fit(
    site: &spec::Site,
    tenants: &[resolve::ResolvedTenant],
    diagnostics: &mut Diagnostics,
) {
    if !site.flux.per_tenant_artifacts {
        return;
    }
    let mut per_shard: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for tenant in tenants {
        *per_shard
            .entry(shard::of(tenant.name.as_str(), site.flux.shards))
            .or_default() += 1;
    }
    let Some((shard, most)) = per_shard.into_iter().max_by_key(|(_, n)| *n) else {
        return;
    };
    if most <= ARTIFACTS_MAX {
        return;
    }
    let at = (diagnostics.source(&site.file).cloned())
        .and_then(|text| {
            yaml::find_scalar(&site.file, &text, "per-tenant")
                .into_iter()
                .next()
        })
        .unwrap_or_else(|| diagnostic::SourceLocation::file(&site.file));
    let holds = match shard {
        Some(shard) => format!("shard {shard} holds {most} tenants"),
        None => format!("the site has {most} tenants and no shards"),
    };
    let fewest = tenants.len().div_ceil(ARTIFACTS_MAX) + 1;
    diagnostics.push(
        diagnostic::Diagnostic::error(
            diagnostic::codes::SPEC_INVALID_VALUE,
            format!("flux.artifacts: per-tenant gives each shard one ArtifactGenerator, which holds at most {ARTIFACTS_MAX} artifacts; {holds}"),
        )
        .at(at)
        .help(format!("set flux.shards to {fewest} or more (a shard's share of the tenants varies by a few percent)")),
    );
}

/// Every Kubernetes version the stacks list (a ClusterClass's
/// `spec.kubernetesVersions` lets Cluster API chain upgrades through them).
fn class_versions(stacks: &stack::Stacks) -> Vec<String> {
    stacks
        .tenant
        .values()
        .filter(|s| s.class.is_some())
        .flat_map(|s| s.kubernetes_versions.iter().cloned())
        .collect()
}

/// What the expansion of every tenant needs.
struct Expanding<'a> {
    documents: &'a [render::Document],
    /// The class documents as rendered (also when they are not written).
    classes: &'a [render::Document],
    tenants: &'a [resolve::ResolvedTenant],
    stacks: &'a stack::Stacks,
    schemas: &'a verify::Schemas,
}

impl Expanding<'_> {
    /// Expand every tenant's Cluster on its stack's class and verify what
    /// comes out, in parallel. Problems go into `diagnostics`; the expanded
    /// documents of the tenants `keep` names are returned, with the set of
    /// tenants that expanded.
    fn run(
        &self,
        keep: &(dyn Fn(&str) -> bool + Sync),
        diagnostics: &mut Diagnostics,
    ) -> (Vec<render::Document>, BTreeSet<String>) {
        let classes = classes_of(self.classes.iter());
        let classes = prepared(&classes, self.stacks);
        let clusters = clusters_of(self.documents.iter());
        let jobs: Vec<Expansion<'_>> = (self.tenants.iter())
            .filter_map(|tenant| {
                let stack = self.stacks.tenant.get(tenant.stack.as_str())?;
                Some(Expansion {
                    tenant: tenant.name.as_str(),
                    source: &tenant.source_file,
                    cluster: &clusters.get(tenant.name.as_str())?.value,
                    stack,
                    class: classes.get(stack.name.as_str())?,
                })
            })
            .collect();
        let results: Vec<_> = jobs
            .par_iter()
            .filter_map(|job| {
                let result = job.objects()?;
                Some(result.map(|objects| {
                    let kept = keep(job.tenant);
                    // Objects that are valid and not kept need no name: each
                    // is checked as it is, and only a violation (or keeping
                    // them) makes them documents, checked again as such.
                    let family = job.class.source;
                    let valid = || {
                        (objects.iter()).all(|o| self.schemas.violations_from(o, family).is_empty())
                    };
                    if !kept && valid() {
                        return (job.tenant, None, Diagnostics::new());
                    }
                    let documents = job.documents(objects);
                    let problems = self.schemas.verify_here(&documents);
                    (job.tenant, kept.then_some(documents), problems)
                }))
            })
            .collect();
        let mut expanded = Vec::new();
        let mut tenants = BTreeSet::new();
        for result in results {
            match result {
                Ok((tenant, kept, problems)) => {
                    tenants.insert(tenant.to_string());
                    expanded.extend(kept.into_iter().flatten());
                    diagnostics.extend(problems);
                }
                Err(d) => diagnostics.push(d),
            }
        }
        (expanded, tenants)
    }
}

/// The previous output as day 2's expansion sees it: its class documents,
/// and its Clusters on a class kmetal knows.
struct Before<'p, 's> {
    class_documents: Vec<render::Document>,
    clusters: Vec<OldCluster<'p, 's>>,
}

/// A Cluster of the previous output.
struct OldCluster<'p, 's> {
    tenant: &'p str,
    path: &'p String,
    cluster: &'p value::Value,
    /// The stack whose ClusterClass it names.
    stack: &'s stack::Stack,
    /// Its Cluster and class are both unchanged: it expands to what it
    /// expanded to before.
    unchanged: bool,
}

impl<'p, 's> Before<'p, 's> {
    /// The tenants whose expansions day 2 compares (Cluster or class changed).
    fn compared(&self) -> BTreeSet<&'p str> {
        (self.clusters.iter())
            .filter(|c| !c.unchanged)
            .map(|c| c.tenant)
            .collect()
    }

    fn of(
        previous: &'p day2::Previous<'_>,
        current: &[render::Document],
        documents: &[render::Document],
        stacks: &'s stack::Stacks,
    ) -> Before<'p, 's> {
        // Only the old classes (few) are copied; the old Clusters are borrowed.
        let class_documents: Vec<render::Document> = (previous.objects.iter())
            .filter(|(path, _)| class::is_class_document(path))
            .map(|(path, value)| render::Document {
                path: path.clone(),
                source: path.clone(),
                template: path.clone(),
                value: value.clone().into_owned(),
                emitted: None,
            })
            .collect();
        let old = classes_of(class_documents.iter());
        let now = classes_of(current.iter());
        // Per stack, once: the previous output's class is the current one (or
        // it holds none, when the platform installs the class).
        let same_class: BTreeSet<String> = (stacks.tenant.keys())
            .filter(
                |stack| match (old.get(stack.as_str()), now.get(stack.as_str())) {
                    (None, _) => true,
                    (Some(a), Some(b)) => {
                        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.value == y.value)
                    }
                    (Some(_), None) => false,
                },
            )
            .cloned()
            .collect();
        let new_clusters = clusters_of(documents.iter());
        let clusters = (previous.objects.par_iter())
            .filter(|(_, value)| value.item("kind") == "Cluster")
            .filter_map(|(path, value)| {
                let tenant = layout::tenant_of(path)?;
                let stack = stack_of_cluster(value, stacks)?;
                let unchanged = same_class.contains(stack.name.as_str())
                    && new_clusters.get(tenant).is_some_and(|d| d.value == **value);
                Some(OldCluster {
                    tenant,
                    path,
                    cluster: value,
                    stack,
                    unchanged,
                })
            })
            .collect();
        drop(old);
        Before {
            class_documents,
            clusters,
        }
    }
}

/// The stack whose ClusterClass a Cluster names.
fn stack_of_cluster<'s>(
    cluster: &value::Value,
    stacks: &'s stack::Stacks,
) -> Option<&'s stack::Stack> {
    let name = cluster.at("/spec/topology/classRef/name")?.as_str()?;
    (stacks.tenant.values()).find(|s| s.cluster_class.name.as_str() == name)
}

/// What Cluster API expanded from the previous output, by identity: each old
/// Cluster on the class the previous output emitted, or on the current class
/// when it emitted none (a site whose platform installs the class). A tenant
/// whose Cluster and class are unchanged expanded to what it expands to now:
/// it is left out (nothing to judge), so only changed tenants are expanded
/// again. The tenants whose old topology
/// no longer expands are listed with why.
fn expand_previous(
    before: &Before<'_, '_>,
    current: &[render::Document],
    expanded_tenants: &BTreeSet<String>,
    stacks: &stack::Stacks,
) -> (
    BTreeMap<day2::Identity, value::Value>,
    Vec<(String, String)>,
) {
    let old_class_documents = classes_of(before.class_documents.iter());
    let current_class_documents = classes_of(current.iter());
    let (old_classes, current_classes) = (
        prepared(&old_class_documents, stacks),
        prepared(&current_class_documents, stacks),
    );
    let mut jobs: Vec<Expansion<'_>> = Vec::new();
    for old in &before.clusters {
        let name = old.stack.name.as_str();
        // Unchanged: it expanded to what it expands to now, so there is no
        // update to judge; it is left out.
        if old.unchanged && expanded_tenants.contains(old.tenant) {
            continue;
        }
        // The old class when the previous output has one, else the current.
        let class = match old_class_documents.get(name) {
            Some(_) => old_classes.get(name),
            None => current_classes.get(name),
        };
        let Some(class) = class else {
            continue;
        };
        jobs.push(Expansion {
            tenant: old.tenant,
            source: old.path,
            cluster: old.cluster,
            stack: old.stack,
            class,
        });
    }
    let mut objects = BTreeMap::new();
    let mut unexpanded = Vec::new();
    for (job, result) in jobs
        .iter()
        .zip(jobs.par_iter().map(Expansion::run).collect::<Vec<_>>())
    {
        match result {
            Some(Ok(documents)) => {
                objects.extend((documents.into_iter()).map(|d| (day2::identity(&d.value), d.value)))
            }
            Some(Err(d)) => unexpanded.push((job.tenant.to_string(), d.message)),
            None => {}
        }
    }
    (objects, unexpanded)
}

/// The class documents of each stack, by stack name.
fn classes_of<'d>(
    documents: impl Iterator<Item = &'d render::Document>,
) -> BTreeMap<&'d str, Vec<render::Document>> {
    let mut classes: BTreeMap<&str, Vec<render::Document>> = BTreeMap::new();
    for d in documents {
        if let Some(stack) = class::stack_of_document(&d.path) {
            classes.entry(stack).or_default().push(d.clone());
        }
    }
    for documents in classes.values_mut() {
        documents.sort_by(|a, b| a.path.cmp(&b.path));
    }
    classes
}

/// Each tenant's Cluster, by tenant name (its directory in the output).
fn clusters_of<'d>(
    documents: impl Iterator<Item = &'d render::Document>,
) -> BTreeMap<&'d str, &'d render::Document> {
    documents
        .filter(|d| d.value.item("kind") == "Cluster")
        .filter_map(|d| {
            let tenant = layout::tenant_of(&d.path)?;
            Some((tenant, d))
        })
        .collect()
}

/// One tenant's Cluster to expand on its stack's class.
struct Expansion<'a> {
    tenant: &'a str,
    source: &'a str,
    cluster: &'a value::Value,
    stack: &'a stack::Stack,
    class: &'a expand::Class<'a>,
}

/// Each stack's class documents, prepared for expansion, by stack name.
fn prepared<'a>(
    classes: &'a BTreeMap<&'a str, Vec<render::Document>>,
    stacks: &'a stack::Stacks,
) -> BTreeMap<&'a str, expand::Class<'a>> {
    (classes.iter())
        .filter_map(|(name, documents)| {
            let stack = stacks.tenant.get(*name)?;
            Some((*name, expand::Class::new(documents, &stack.variables)?))
        })
        .collect()
}

impl Expansion<'_> {
    /// The expanded objects, or a diagnostic at the tenant's file; none for a
    /// stack without a class.
    fn run(&self) -> Option<Result<Vec<render::Document>, diagnostic::Diagnostic>> {
        Some(self.objects()?.map(|objects| self.documents(objects)))
    }

    /// The expanded objects, as documents of the output.
    fn documents(&self, objects: Vec<value::Value>) -> Vec<render::Document> {
        expand::documents(self.tenant, self.source, self.class.source, objects)
    }

    /// [`Expansion::run`]'s objects, before they are named as documents.
    fn objects(&self) -> Option<Result<Vec<value::Value>, diagnostic::Diagnostic>> {
        self.stack.class.as_ref()?;
        Some(match expand::expand(self.cluster, self.class) {
            Ok(objects) => Ok(objects),
            Err(problem) => Err(diagnostic::Diagnostic::error(
                diagnostic::codes::EXPAND_FAILED,
                format!(
                    "Cluster API could not expand tenant {}'s Cluster: {problem}",
                    self.tenant
                ),
            )
            .at(diagnostic::SourceLocation::file(self.source))
            .related(
                diagnostic::SourceLocation::file(self.class.source),
                "the stack's ClusterClass",
            )
            .help("fix the tenant value the patch reads, or the stack's ClusterClass")),
        })
    }
}

/// The last guard: a tenant file that was read either reaches the output or
/// has an error of its own. Anything else is a hole in the checks, and an
/// internal error rather than a tenant Flux would silently delete.
fn every_tenant_reached_the_output(
    sources: &[(String, yaml::Spanned<String>)],
    documents: &[render::Document],
    diagnostics: &mut Diagnostics,
) {
    let emitted: std::collections::BTreeSet<&str> =
        documents.iter().map(|d| d.source.as_str()).collect();
    let mut missing = Vec::new();
    for (file, name) in sources {
        let explained = diagnostics.iter().any(|d| {
            d.severity == diagnostic::Severity::Error
                && (d.location.as_ref().is_some_and(|l| l.file == *file)
                    || d.related.iter().any(|(l, _)| l.file == *file))
        });
        if !emitted.contains(file.as_str()) && !explained {
            missing.push(diagnostic::internal(
                yaml::location_of(file, name),
                &format!("tenant {:?} is missing from the output", name.value),
            ));
        }
    }
    for d in missing {
        diagnostics.push(d);
    }
}

/// Compile, then put the new output directory and lock in place (nothing
/// changes on any error, and nothing is touched when nothing changed).
pub fn build(project: &Project) -> Result<(Compiled, WriteReport), Diagnostics> {
    let compiled = compile(project)?;
    project.check_out_dir(&compiled.out_dir)?;
    let report = output::install(&compiled.tree, &compiled.out_dir, &compiled.same_on_disk)?;
    output::write_file(
        &project.root.join(lock::LOCK_FILE),
        &compiled.lock.to_text(),
    )?;
    Ok((compiled, report))
}

/// What `build` would change, without changing it.
#[derive(Debug)]
pub struct Drift {
    pub compiled: Compiled,
    /// Every file that would be added, changed or deleted, the lock included.
    pub changes: Vec<output::drift::FileChange>,
}

/// Compile in memory and compare with the output directory and the lock.
/// Tenants that would be removed are allowed here, and listed in `removed`.
pub fn check(project: &Project) -> Result<Drift, Diagnostics> {
    let reporting = Project {
        allow_all_removals: true,
        ..project.clone()
    };
    let compiled = compile(&reporting)?;
    project.check_out_dir(&compiled.out_dir)?;
    let old = output::install::OldTree::read(&compiled.out_dir)?;
    let conflicts = output::install::conflicts(&compiled.tree, &old, &compiled.out_dir);
    if conflicts.has_errors() {
        return Err(conflicts);
    }
    let shown = project.shown(&compiled.out_dir);
    let mut changes = output::drift::changes(
        &compiled.tree,
        &old,
        &compiled.out_dir,
        &compiled.same_on_disk,
        &shown,
    );
    let old_lock = std::fs::read_to_string(project.root.join(lock::LOCK_FILE)).ok();
    changes.extend(output::drift::file_change(
        lock::LOCK_FILE,
        old_lock,
        &compiled.lock.to_text(),
    ));
    Ok(Drift { compiled, changes })
}
