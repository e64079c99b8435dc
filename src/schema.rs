//! Input file kind → its JSON Schema (draft-07), for editors such as
//! yaml-language-server.
//!
//! The schema is generated from the very serde types that parse the file
//! ([`crate::spec::raw`]), so it cannot drift from what kmetal reads: their
//! doc comments are the descriptions, `deny_unknown_fields` gives
//! `additionalProperties: false` on every object. It says what may be written;
//! names, references and networks are still checked only by kmetal itself.

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
    let schema = match kind {
        InputKind::Tenant => schema_for::<RawTenant>(),
        InputKind::Site => schema_for::<RawSite>(),
    };
    format!("{schema:#}\n")
}

/// The JSON Schema (draft-07) of `T` as a value: what editors get, and what
/// [`crate::yaml::parse_recovering`] reads input files against.
pub fn schema_for<T: JsonSchema>() -> serde_json::Value {
    SchemaSettings::draft07()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}
