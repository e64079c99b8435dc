//! YAML text ↔ values. The only module that parses or emits YAML.
//!
//! Input files are read into typed, spanned spec structs; template output is
//! read into generic JSON values; every written document is emitted here, in
//! one canonical style. The emitter quotes every string a YAML 1.1 reader would
//! take for a bool, number or null (`on`, `yes`, `0755`, `~`), never folds long
//! lines, and is deterministic. serde-saphyr stands behind this module so that
//! the choice of library can change in one file.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_saphyr::{Error, Location};

mod locate;

pub use locate::{Located, find_scalar, locate};

use crate::diagnostic::{Diagnostic, SourceLocation, codes, did_you_mean};

/// A value and where it was written: the spanned type of every input file.
pub use crate::spec::raw::S as Spanned;

/// Where a spanned value was written, as a diagnostic location.
pub fn location_of<T>(file: &str, spanned: &crate::spec::raw::S<T>) -> SourceLocation {
    to_source_location(file, &spanned.referenced)
}

fn to_source_location(file: &str, location: &Location) -> SourceLocation {
    let span = location.span();
    SourceLocation {
        file: file.to_string(),
        line: location.line(),
        column: location.column(),
        byte_offset: span.byte_offset().unwrap_or(0),
        byte_len: span.byte_len().unwrap_or(0),
    }
}

fn spec_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
    }
}

fn value_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
    }
}

/// Parse one input file (site, tenant or stack) into its raw spec type.
/// Unknown fields, wrong types, duplicate keys and syntax errors come back as a
/// diagnostic at the offending position.
pub fn parse_spec<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Diagnostic> {
    serde_saphyr::from_str_with_options(text, spec_options())
        .map_err(|error| diagnostic_for(file, &error))
}

/// Parse a stream of YAML documents into generic values (empty documents skipped).
/// Used for rendered templates and for schemas; the error is a plain message
/// with line and column, for the caller to place.
pub fn parse_values(text: &str) -> Result<Vec<Value>, String> {
    serde_saphyr::from_multiple_with_options(text, value_options()).map_err(|e| e.to_string())
}

/// Emit one document in the canonical style.
pub fn emit(value: &Value) -> String {
    let options = serde_saphyr::ser_options! {
        folded_wrap_chars: usize::MAX,
        prefer_block_scalars: false,
    };
    serde_saphyr::to_string_with_options(value, options)
        .expect("a serde_json::Value always serializes: its keys are strings and its floats finite")
}

fn diagnostic_for(file: &str, error: &Error) -> Diagnostic {
    let inner = error.without_snippet();
    let code = if matches!(
        inner,
        Error::SerdeUnknownField { .. }
            | Error::SerdeMissingField { .. }
            | Error::SerdeInvalidType { .. }
            | Error::SerdeInvalidValue { .. }
            | Error::SerdeUnknownVariant { .. }
            | Error::SerdeInvalidLength { .. }
            | Error::InvalidScalar { .. }
            | Error::InvalidBooleanStrict { .. }
            | Error::NullIntoString { .. }
            | Error::DuplicateMappingKey { .. }
            | Error::Message { .. }
            | Error::Unexpected { .. }
    ) {
        codes::SPEC_SCHEMA
    } else {
        codes::YAML_SYNTAX
    };
    let mut message = inner.to_string();
    let location = error.location().filter(|l| l.line() > 0);
    if let Some(location) = &location {
        let suffix = format!(" at line {}, column {}", location.line(), location.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
    }
    let mut diagnostic = Diagnostic::error(code, message);
    diagnostic = diagnostic.at(match &location {
        Some(location) => to_source_location(file, location),
        None => SourceLocation::file(file),
    });
    if let Error::SerdeUnknownField {
        field, expected, ..
    } = inner
    {
        diagnostic = diagnostic.help(did_you_mean(field, "field", expected));
    }
    diagnostic
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Small {
        name: Spanned<String>,
        count: Option<u32>,
    }

    #[test]
    fn ambiguous_strings_are_quoted_and_round_trip() {
        let value = json!({
            "names": ["on", "yes", "no", "0755", "1.30", "~", "null", "true", "-", "*x", "a: b", "x #y"],
            "multi": "a\nb",
            "long": "word ".repeat(40),
            "empty": [],
        });
        let text = emit(&value);
        for quoted in [
            "\"on\"", "\"yes\"", "\"no\"", "\"0755\"", "\"1.30\"", "\"~\"",
        ] {
            assert!(text.contains(quoted), "{quoted} not quoted in\n{text}");
        }
        assert!(
            !text.contains('>'),
            "long strings are never folded:\n{text}"
        );
        let back = parse_values(&text).unwrap();
        assert_eq!(back, vec![value]);
    }

    #[test]
    fn spec_errors_carry_file_line_and_column() {
        let cases = [
            (
                "name: a\nnmae: b\n",
                2,
                1,
                codes::SPEC_SCHEMA,
                "unknown field `nmae`",
            ),
            (
                "name: a\nname: b\n",
                2,
                1,
                codes::SPEC_SCHEMA,
                "duplicate mapping key",
            ),
            (
                "# héllo wörld\nname: [a\n",
                2,
                7,
                codes::SPEC_SCHEMA,
                "expected string",
            ),
            (
                "name: a\ncount: -1\n",
                2,
                8,
                codes::SPEC_SCHEMA,
                "invalid u32",
            ),
            ("name: \"a\n", 1, 7, codes::YAML_SYNTAX, "unclosed quote"),
        ];
        for (text, line, column, code, needle) in cases {
            let error = parse_spec::<Small>("t.yaml", text).unwrap_err();
            let location = error.location.as_deref().cloned().unwrap();
            assert_eq!(
                (location.line, location.column),
                (line, column),
                "{text:?}: {error}"
            );
            assert_eq!(error.code, code, "{text:?}: {error}");
            assert!(error.message.contains(needle), "{text:?}: {error}");
            assert!(!error.message.contains(" at line "), "{error}");
        }
    }

    #[test]
    fn spans_count_bytes_after_non_ascii() {
        let text = "# ünïcödé\nname: value\n";
        let parsed: Small = parse_spec("t.yaml", text).unwrap();
        let location = location_of("t.yaml", &parsed.name);
        assert_eq!((location.line, location.column), (2, 7));
        let start = location.byte_offset as usize;
        assert_eq!(&text[start..start + location.byte_len as usize], "value");
    }

    #[test]
    fn documents_split_and_empty_ones_skipped() {
        let docs = parse_values("a: 1\n---\nb: \"on\"\n---\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": "on"})]);
    }
}
