//! Input file kind → its JSON Schema (draft-07), for editors such as
//! yaml-language-server.
//!
//! The schema is generated from the very serde types that parse the file
//! ([`crate::spec::raw`]), so it cannot drift from what kmetal reads: their
//! doc comments are the descriptions, `deny_unknown_fields` gives
//! `additionalProperties: false` on every object. It says what may be written;
//! names, references and networks are still checked only by kmetal itself.

use std::sync::OnceLock;

use crate::yaml::tree::WalkSchema;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

use crate::spec::raw::{RawSite, RawTenant};

/// Which input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// `tenants/**/*.yaml`.
    Tenant,
    /// `kmetal.yaml`.
    Site,
}

/// The JSON Schema (draft-07) of one input file, pretty-printed, ending in a newline.
pub fn input_schema(kind: InputKind) -> String {
    format!("{:#}\n", of(kind))
}

/// The JSON Schema of one input file, generated once per run: every tenant
/// file is read against it.
pub fn of(kind: InputKind) -> &'static serde_json::Value {
    static TENANT: OnceLock<serde_json::Value> = OnceLock::new();
    static SITE: OnceLock<serde_json::Value> = OnceLock::new();
    match kind {
        InputKind::Tenant => TENANT.get_or_init(schema_for::<RawTenant>),
        InputKind::Site => SITE.get_or_init(schema_for::<RawSite>),
    }
}

/// The JSON Schema of one input file as [`parse_recovering`] walks it,
/// compiled once per run.
///
/// [`parse_recovering`]: crate::yaml::parse_recovering
pub fn walked(kind: InputKind) -> &'static WalkSchema<'static> {
    static TENANT: OnceLock<WalkSchema<'static>> = OnceLock::new();
    static SITE: OnceLock<WalkSchema<'static>> = OnceLock::new();
    let cell = match kind {
        InputKind::Tenant => &TENANT,
        InputKind::Site => &SITE,
    };
    cell.get_or_init(|| WalkSchema::new(of(kind)))
}

/// The JSON Schema (draft-07) of `T` as a value: what editors get, and what
/// [`crate::yaml::parse_recovering`] reads input files against.
fn schema_for<T: JsonSchema>() -> serde_json::Value {
    SchemaSettings::draft07()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}
