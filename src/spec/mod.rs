//! Input files → checked [`Site`] and [`Tenant`]s.
//!
//! `raw` says what may be written (serde, spans, unknown fields rejected);
//! `site` and `tenant` check names and references and apply defaults. Every
//! problem in every file is collected; a file with errors is skipped, never
//! half-used.

pub mod checker;
pub mod model;
pub mod names;
pub mod raw;
mod site;
mod tenant;

pub use model::*;
pub use site::check_site;
pub use tenant::{TenantSource, check_tenants};

use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::project::{self, Project};
use crate::yaml;

/// Read and parse `kmetal.yaml` and every tenant file. Unreadable or
/// malformed files become diagnostics; the rest are returned.
pub fn read(
    project: &Project,
    diagnostics: &mut Diagnostics,
) -> (Option<raw::RawSite>, Vec<TenantSource>) {
    let site = read_text(project, project::SITE_FILE, diagnostics).and_then(|text| {
        yaml::parse_spec(project::SITE_FILE, &text)
            .map_err(|d| diagnostics.push(d))
            .ok()
    });
    let mut tenants = Vec::new();
    for file in project.tenant_files(diagnostics) {
        let Some(text) = read_text(project, &file, diagnostics) else {
            continue;
        };
        match yaml::parse_spec(&file, &text) {
            Ok(raw) => tenants.push(TenantSource { file, raw }),
            Err(d) => diagnostics.push(d),
        }
    }
    (site, tenants)
}

/// The text of `file`, also remembered in `diagnostics` for snippets.
fn read_text(project: &Project, file: &str, diagnostics: &mut Diagnostics) -> Option<Arc<str>> {
    let bytes = match std::fs::read(project.root.join(file)) {
        Ok(bytes) => bytes,
        Err(error) => {
            diagnostics.push(
                Diagnostic::error(codes::IO, format!("cannot read this file: {error}"))
                    .at(SourceLocation::file(file)),
            );
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => {
            let text: Arc<str> = Arc::from(text);
            diagnostics.add_source(file, text.clone());
            Some(text)
        }
        Err(error) => {
            diagnostics.push(
                Diagnostic::error(
                    codes::YAML_SYNTAX,
                    format!(
                        "this file is not UTF-8 (invalid byte at offset {})",
                        error.utf8_error().valid_up_to()
                    ),
                )
                .at(SourceLocation::file(file))
                .help("save the file as UTF-8"),
            );
            None
        }
    }
}
