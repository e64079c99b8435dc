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

pub mod diagnostic;
mod embedded;
pub mod network;
pub mod output;
pub mod project;
pub mod render;
pub mod report;
pub mod resolve;
pub mod spec;
pub mod stack;
pub mod verify;
pub mod yaml;

use std::path::PathBuf;

use diagnostic::Diagnostics;
use output::{OutputTree, WriteReport};
use project::Project;

/// A successful compilation: the whole output, in memory.
#[derive(Debug)]
pub struct Compiled {
    /// Every rendered object, verified, in output-path order.
    pub documents: Vec<render::Document>,
    pub tree: OutputTree,
    /// Where the output belongs.
    pub out_dir: PathBuf,
    pub tenants: usize,
}

/// Read, check, render and verify everything; write nothing.
pub fn compile(project: &Project) -> Result<Compiled, Diagnostics> {
    let mut diagnostics = Diagnostics::new();
    let stacks = stack::load(&project.stacks_dir(), &mut diagnostics);
    let (raw_site, raw_tenants) = spec::read(project, &mut diagnostics);
    let site = raw_site
        .as_ref()
        .and_then(|raw| spec::check_site(project::SITE_FILE, raw, &stacks, &mut diagnostics));
    let Some(site) = site else {
        return Err(diagnostics);
    };
    let tenants = spec::check_tenants(&raw_tenants, &site, &stacks, &mut diagnostics);
    let assignments = network::assign(&tenants, &site.pools, &mut diagnostics);
    let renderer = render::Renderer::new(&stacks).map_err(|d| diagnostics.extend(d));
    let (Ok(renderer), false) = (renderer, diagnostics.has_errors()) else {
        return Err(diagnostics);
    };
    let resolved: Vec<_> = tenants
        .iter()
        .zip(&assignments)
        .map(|(tenant, assignment)| {
            let assignment = assignment
                .as_ref()
                .expect("no errors: every tenant has a VIP");
            resolve::resolve(tenant, assignment, &stacks.tenant[tenant.stack.as_str()])
        })
        .collect();
    let (documents, mut diagnostics) = renderer.render_all(&site, &stacks, &resolved);
    diagnostics.extend(verify::Schemas::embedded().verify(&documents));
    let tree = OutputTree::from_documents(&documents).map_err(|d| diagnostics.extend(d));
    let (Ok(tree), false) = (tree, diagnostics.has_errors()) else {
        return Err(diagnostics);
    };
    Ok(Compiled {
        tree,
        documents,
        out_dir: project.out_dir(&site.output),
        tenants: tenants.len(),
    })
}

/// Compile, then write the output directory.
pub fn build(project: &Project) -> Result<(Compiled, WriteReport), Diagnostics> {
    let compiled = compile(project)?;
    let report = compiled.tree.write(&compiled.out_dir)?;
    Ok((compiled, report))
}
