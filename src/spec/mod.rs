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
pub use site::{PLATFORM_DATASTORE, check_site};

/// Where the platform runs Kamaji and keeps its datastore Secrets: never a tenant's.
pub const KAMAJI_NAMESPACE: &str = "kmetal-kamaji";
pub use tenant::{CheckedTenants, TenantFacts, TenantSource, check_tenants};

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::project::{self, Project};
use crate::yaml;

/// Read and parse `kmetal.yaml` and every tenant file. Unreadable or
/// malformed files become diagnostics; the rest are returned.
pub fn read(
    project: &Project,
    diagnostics: &mut Diagnostics,
) -> (Option<yaml::Recovered<raw::RawSite>>, Vec<TenantSource>) {
    let site = read_bytes(project, project::SITE_FILE, diagnostics)
        .and_then(|bytes| parse_site(&bytes, diagnostics));
    // Files are read and parsed in parallel; results and problems are merged in file order.
    let files = project.tenant_files(diagnostics);
    let parsed: Vec<(Option<TenantSource>, Diagnostics)> = files
        .into_par_iter()
        .map(|file| {
            let mut found = Diagnostics::new();
            let tenant = read_bytes(project, &file, &mut found)
                .and_then(|bytes| parse_tenant(file, &bytes, &mut found));
            (tenant, found)
        })
        .collect();
    let mut tenants = Vec::with_capacity(parsed.len());
    for (tenant, found) in parsed {
        diagnostics.extend(found);
        tenants.extend(tenant);
    }
    (site, tenants)
}

/// The bytes of `kmetal.yaml` → the raw site, or diagnostics.
pub fn parse_site(
    bytes: &[u8],
    diagnostics: &mut Diagnostics,
) -> Option<yaml::Recovered<raw::RawSite>> {
    let text = decode(project::SITE_FILE, bytes, diagnostics)?;
    yaml::parse_recovering(
        project::SITE_FILE,
        &text,
        "site",
        crate::schema::walked(crate::schema::InputKind::Site),
        diagnostics,
    )
}

/// The bytes of a tenant file → its raw spec, or diagnostics.
pub fn parse_tenant(
    file: String,
    bytes: &[u8],
    diagnostics: &mut Diagnostics,
) -> Option<TenantSource> {
    let text = decode(&file, bytes, diagnostics)?;
    let raw = yaml::parse_recovering(
        &file,
        &text,
        "tenant",
        crate::schema::walked(crate::schema::InputKind::Tenant),
        diagnostics,
    )?
    .value;
    Some(TenantSource { file, raw })
}

/// The bytes of `file`, if it is a regular file of at most `project.max_file_bytes`.
fn read_bytes(project: &Project, file: &str, diagnostics: &mut Diagnostics) -> Option<Vec<u8>> {
    read_limited(&project.root.join(file), project.max_file_bytes)
        .map_err(|diagnostic| diagnostics.push(diagnostic.at(SourceLocation::file(file))))
        .ok()
}

/// UTF-8 text without a byte-order mark, also remembered in `diagnostics`
/// for snippets.
fn decode(file: &str, bytes: &[u8], diagnostics: &mut Diagnostics) -> Option<Arc<str>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let text: Arc<str> = Arc::from(text.strip_prefix('\u{feff}').unwrap_or(text));
            // A text without control characters is its own snippet.
            let snippet = match shown(&text) {
                std::borrow::Cow::Borrowed(_) => Arc::clone(&text),
                std::borrow::Cow::Owned(shown) => Arc::from(shown),
            };
            diagnostics.add_source(file, snippet);
            Some(text)
        }
        Err(error) => {
            diagnostics.push(
                Diagnostic::error(
                    codes::YAML_SYNTAX,
                    format!(
                        "this file is not UTF-8 (invalid byte at offset {})",
                        error.valid_up_to()
                    ),
                )
                .at(SourceLocation::file(file))
                .help("save the file as UTF-8"),
            );
            None
        }
    }
}

/// The bytes of the regular file at `path`, refused when it is larger than
/// `max` bytes (checked while reading, so a growing file cannot slip through).
/// Anything else (a FIFO, a device) is refused before it is opened: reading it
/// could block or never end.
fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, Diagnostic> {
    let io_error = |error: std::io::Error| {
        Diagnostic::error(codes::IO, format!("cannot read this file: {error}"))
    };
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if !metadata.is_file() {
        return Err(
            Diagnostic::error(codes::PROJECT_NOT_A_FILE, "this is not a regular file")
                .help("replace it with a plain YAML file"),
        );
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(io_error)?;
    if bytes.len() as u64 > max {
        return Err(Diagnostic::error(
            codes::YAML_LIMIT,
            format!("this file is larger than {}, the limit of an input file", size(max)),
        )
        .help("a tenant file is a few hundred bytes: check that this is the file you meant, or split it"));
    }
    Ok(bytes)
}

/// `text` as snippets may show it on a terminal: control characters (an
/// escape sequence, a NUL) replaced by visible ones of the same length in
/// bytes, so that every span still points at the same place.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if yaml::is_printable_ascii(text) {
        return text.into();
    }
    (text.chars())
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c.is_control() && c.len_utf8() == 1 => '?',
            c if c.is_control() => '\u{b7}',
            c => c,
        })
        .collect::<String>()
        .into()
}

/// `1048576` → `1 MiB`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_text_keeps_every_offset() {
        let text = "a\0b\x1b[31mc\u{85}d\u{9b}e\tf\r\n\u{7f}é";
        let shown = shown(text);
        assert_eq!(shown, "a?b?[31mc\u{b7}d\u{b7}e\tf\r\n?é");
        assert_eq!(shown.len(), text.len());
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(3 << 10), "3 KiB");
        assert_eq!(size(1000), "1000 bytes");
    }
}
