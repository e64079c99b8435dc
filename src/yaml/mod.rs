//! YAML text ↔ values. The only module that parses or emits YAML.
//!
//! Input files are read into typed, spanned spec structs; template output is
//! read into generic JSON values; every written document is emitted here, in
//! one canonical style. The emitter quotes every string a YAML 1.1 reader would
//! take for a bool, number or null (`on`, `yes`, `0755`, `~`), never folds long
//! lines, and is deterministic. serde-saphyr stands behind this module so that
//! the choice of library can change in one file.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::ErrorKind;
use serde_saphyr::{Error, ExternalMessageSource, Location};

mod emit;
mod fast;
mod locate;
mod place;
mod scan;
pub mod tree;

pub use emit::Pieces;
pub use locate::{Located, find_scalar, locate};
pub use place::Place;

use crate::diagnostic::{Diagnostic, SourceLocation, codes, did_you_mean};

/// A value and where it was written: the spanned type of every input file.
pub use crate::spec::raw::S as Spanned;

/// Where a spanned value was written, as a diagnostic location.
pub fn location_of<T>(file: &str, spanned: &crate::spec::raw::S<T>) -> SourceLocation {
    spanned.referenced.in_file(file)
}

/// How deep an input file may nest: kmetal's files nest five levels at most.
const SPEC_MAX_DEPTH: usize = 32;
/// How many YAML documents an input file may hold before counting stops.
const SPEC_MAX_DOCUMENTS: usize = 16;
/// How many values aliases (`*name`) may expand to in one input file.
const SPEC_MAX_REPLAYED: usize = 10_000;
/// How many aliases, anchors and merge keys (each) an input file may hold.
const SPEC_MAX_ALIASES: usize = 1_000;

/// Input files (site, tenants, lock, stacks): limits far above any real file
/// (a lock of ten thousand tenants fits) but tight on what amplifies a small
/// file: aliases, nesting, documents. Sizes are capped before parsing as well
/// ([`crate::project::Project::max_file_bytes`]).
fn spec_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_depth: SPEC_MAX_DEPTH,
            flow_nesting_limit: SPEC_MAX_DEPTH,
            max_documents: SPEC_MAX_DOCUMENTS,
            max_nodes: 100_000,
            max_events: 250_000,
            max_total_scalar_bytes: 4 << 20,
            max_anchors: SPEC_MAX_ALIASES,
            max_aliases: SPEC_MAX_ALIASES,
            max_merge_keys: SPEC_MAX_ALIASES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: SPEC_MAX_REPLAYED,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
    }
}

/// Rendered templates, embedded schemas and user CRDs: CRDs are large and
/// nest about 40 levels, so only aliases are held tighter than the defaults.
fn value_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        budget: serde_saphyr::budget! {
            max_depth: 64,
            flow_nesting_limit: 64,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 10_000,
        },
    }
}

/// Parse one input file (site, tenant, lock or stack) into its raw spec type.
/// Unknown fields, wrong types, duplicate keys, syntax errors, tabs in
/// indentation and exceeded limits come back as a diagnostic at the offending
/// position; a file must hold exactly one document.
pub fn parse_spec<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Diagnostic> {
    parse_one(file, text, "YAML document")
}

/// [`parse_spec`] for a file that holds one `what` ("tenant"), named so in
/// the messages about an empty file or one with several documents.
pub fn parse_one<T: DeserializeOwned>(file: &str, text: &str, what: &str) -> Result<T, Diagnostic> {
    let node = one_node(file, text, what)?;
    from_node(file, text, &node)
}

/// The one document of an input file as a tree, or why there is none.
fn one_node(file: &str, text: &str, what: &str) -> Result<tree::Node, Diagnostic> {
    if let Some(diagnostic) = control_character(file, text).or_else(|| tab_indentation(file, text))
    {
        return Err(diagnostic);
    }
    let read = |mut nodes: Vec<tree::Node>| match nodes.len() {
        0 | 1 => nodes.pop().ok_or_else(|| {
            Diagnostic::error(codes::SPEC_SCHEMA, format!("the file holds no {what}"))
                .at(SourceLocation::file(file))
                .help(format!("write one {what} in this file, or delete the file"))
        }),
        _ => Err(several_documents(file, text, what)),
    };
    if let Some(nodes) = without_key_checks(text) {
        return read(nodes);
    }
    match serde_saphyr::from_multiple_with_options::<tree::Node>(text, spec_options()) {
        Ok(nodes) => read(nodes),
        Err(error) => Err(diagnostic_for(file, &error)),
    }
}

/// The documents of `text` read without serde-saphyr's duplicate-key and
/// merge-key bookkeeping (it hashes every key of every mapping), when that
/// reads them exactly as [`spec_options`] does:
/// - a text without `<<` (and without `\`, so no escape spells it) has no
///   merge key, so merging and not merging agree;
/// - a tree whose mappings repeat no key has no duplicate to refuse.
///
/// Files in the simple subset of [`scan`] are read line by line, those in
/// the wider one of [`fast`] built from the parser's events.
///
/// `None` sends the text the usual way, which gives every error its usual
/// message: a parse error here, or a key that may repeat
/// ([`tree::Node::may_repeat_a_key`] errs towards yes).
fn without_key_checks(text: &str) -> Option<Vec<tree::Node>> {
    if text.contains("<<") || text.contains('\\') {
        return None;
    }
    let nodes = match scan::read(text).or_else(|| fast::read(text)) {
        Some(nodes) => nodes,
        None => {
            let mut options = spec_options();
            options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
            options.merge_keys = serde_saphyr::MergeKeyPolicy::AsOrdinary;
            serde_saphyr::from_multiple_with_options::<tree::Node>(text, options).ok()?
        }
    };
    (!nodes.iter().any(tree::Node::may_repeat_a_key)).then_some(nodes)
}

/// A tree that fits `T` → `T`; the first misfit as a diagnostic at its place.
fn from_node<T: DeserializeOwned>(
    file: &str,
    text: &str,
    node: &tree::Node,
) -> Result<T, Diagnostic> {
    T::deserialize(tree::NodeDeserializer::new(node, text)).map_err(|e| {
        let at =
            e.at.map_or_else(|| node.location(file), |l| l.in_file(file));
        let mut d = Diagnostic::error(codes::SPEC_SCHEMA, e.message).at(at);
        d.help = e.help;
        d
    })
}

/// A file read field by field: what could be read, and the paths of the
/// parts cut out for their mistakes (each reported).
pub struct Recovered<T> {
    pub value: T,
    pub cut: Vec<String>,
}

/// Read an input file (site, tenant) field by field: every key that misfits
/// the file's JSON Schema (unknown, of the wrong type, missing) is reported at
/// its place and left out, and the rest is read. `None` only when nothing of
/// the file can be used (no document, a syntax error, a misfit at the top).
pub fn parse_recovering<T: DeserializeOwned>(
    file: &str,
    text: &str,
    what: &str,
    schema: &tree::WalkSchema<'_>,
    diagnostics: &mut crate::diagnostic::Diagnostics,
) -> Option<Recovered<T>> {
    let node = one_node(file, text, what)
        .map_err(|d| diagnostics.push(d))
        .ok()?;
    let mut recovery = tree::Recovery::new(file, text, schema);
    let kept = recovery.walk_file(node);
    let reported = !recovery.diagnostics.is_empty();
    for d in recovery.diagnostics {
        diagnostics.push(d);
    }
    let kept = kept.ok()?;
    match from_node(file, text, &kept) {
        Ok(value) => Some(Recovered {
            value,
            cut: recovery.cut,
        }),
        Err(d) => {
            // The schema and the types disagree: the walk let through what
            // the types refuse. Say so rather than lose the file silently.
            if !reported {
                diagnostics.push(d);
            }
            None
        }
    }
}

/// Every document of `text`, read whatever its content: where each starts,
/// or the first limit or syntax error in the whole file.
fn documents(file: &str, text: &str) -> Result<Vec<serde_saphyr::Spanned<IgnoredAny>>, Diagnostic> {
    serde_saphyr::from_multiple_with_options(text, spec_options())
        .map_err(|error| diagnostic_for(file, &error))
}

/// "one tenant per file", at the second document.
fn several_documents(file: &str, text: &str, what: &str) -> Diagnostic {
    let diagnostic = Diagnostic::error(
        codes::SPEC_SCHEMA,
        format!("one {what} per file: this is a second document"),
    )
    .help(format!("move each {what} into a file of its own"));
    match documents(file, text) {
        Ok(documents) => match documents.as_slice() {
            [first, second, ..] => diagnostic
                .at(Place::of(&second.referenced).in_file(file))
                .related(Place::of(&first.referenced).in_file(file), "the first one"),
            _ => diagnostic.at(SourceLocation::file(file)),
        },
        Err(diagnostic) => diagnostic,
    }
}

/// A line indented with a tab: YAML forbids it, and parsers disagree on what
/// it means, so it is refused before parsing.
fn tab_indentation(file: &str, text: &str) -> Option<Diagnostic> {
    if !text.contains('\t') {
        return None;
    }
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_start_matches([' ', '\t']);
        let indent = &line[..line.len() - content.len()];
        let content = content.trim_end();
        if let Some(tab) = indent.find('\t')
            && !content.is_empty()
            && !content.starts_with('#')
        {
            return Some(
                Diagnostic::error(codes::YAML_SYNTAX, "this line is indented with a tab")
                    .at(location_at(file, text, offset + tab))
                    .help("indent with spaces: YAML does not allow tabs in indentation"),
            );
        }
        offset += line.len();
    }
    None
}

/// A character YAML does not allow in a file (NUL, other C0 and C1 controls,
/// DEL): refused before parsing, at its place.
fn control_character(file: &str, text: &str) -> Option<Diagnostic> {
    let printable = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{85}')
            || !(c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')
    };
    if is_printable_ascii(text) {
        return None;
    }
    let (offset, c) = text.char_indices().find(|(_, c)| !printable(*c))?;
    Some(
        Diagnostic::error(
            codes::YAML_SYNTAX,
            format!(
                "the control character U+{:04X} is not allowed in a YAML file",
                u32::from(c)
            ),
        )
        .at(location_at(file, text, offset))
        .help("remove it, and save the file as plain UTF-8 text"),
    )
}

/// Printable ASCII, tabs and line breaks only: most files, told byte by byte
/// (no control character, and every byte is a character).
pub fn is_printable_ascii(text: &str) -> bool {
    (text.bytes()).all(|b| matches!(b, b'\t' | b'\n' | b'\r' | b' '..=b'~'))
}

/// The character at byte `offset` of `text`, as a location.
fn location_at(file: &str, text: &str, offset: usize) -> SourceLocation {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let len = text[offset..].chars().next().map_or(0, char::len_utf8);
    SourceLocation {
        file: file.to_string(),
        line: before.matches('\n').count() as u64 + 1,
        column: before[line_start..].chars().count() as u64 + 1,
        byte_offset: offset as u64,
        byte_len: len as u64,
    }
}

/// Parse a stream of YAML documents into generic values (empty documents skipped).
/// Used for rendered templates and for schemas; the error is a plain message
/// with line and column, for the caller to place.
pub fn parse_values(text: &str) -> Result<Vec<Value>, String> {
    serde_saphyr::from_multiple_with_options(text, value_options()).map_err(|e| e.to_string())
}

/// Why text is not one YAML value.
#[derive(Debug)]
pub enum NotOneValue {
    /// It holds more than one document.
    Several,
    /// It does not parse; a plain message with line and column.
    Invalid(String),
}

/// Parse text that must hold exactly one YAML document (rendered templates):
/// cheaper than [`parse_values`], and a second document is its own error.
pub fn parse_value(text: &str) -> Result<Value, NotOneValue> {
    parse_tree(text)
}

/// [`parse_value`] into any tree (kmetal's own: [`crate::value::Value`]).
pub fn parse_tree<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, NotOneValue> {
    serde_saphyr::from_str_with_options(text, value_options()).map_err(|e| {
        match e.without_snippet() {
            Error::MultipleDocuments { .. } => NotOneValue::Several,
            _ => NotOneValue::Invalid(e.to_string()),
        }
    })
}

/// Whether every YAML reading (1.1 and 1.2) takes `s`, written plainly, as
/// exactly this text: a letter, then letters, digits and `._/-:@+=~`, not
/// ending in `:`, and no word YAML reads as anything else.
pub fn is_plain_text(s: &str) -> bool {
    emit::plain_word(s, true)
}

/// Emit one document in the canonical style ([`emit`]).
pub fn emit<V: crate::value::JsonView + serde::Serialize>(value: &V) -> String {
    emit::emit(value)
}

fn diagnostic_for(file: &str, error: &Error) -> Diagnostic {
    let inner = error.without_snippet();
    // An error met through an alias is wrapped with the alias's place.
    let mut original = inner;
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = original {
        original = error;
    }
    let location = error.location().filter(|l| l.line() > 0);
    let place = |location: &Option<Location>| match location {
        Some(location) => Place::of(location).in_file(file),
        None => SourceLocation::file(file),
    };
    if let Some((message, help)) = limit_exceeded(original) {
        return Diagnostic::error(codes::YAML_LIMIT, message)
            .at(place(&location))
            .help(help);
    }
    let mut message = inner.to_string();
    if let Some(location) = &location {
        let suffix = format!(" at line {}, column {}", location.line(), location.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
    }
    let diagnostic = Diagnostic::error(code_of(original), message).at(place(&location));
    match original {
        Error::SerdeUnknownField {
            field, expected, ..
        } => diagnostic.help(did_you_mean(field, "field", expected)),
        Error::DuplicateMappingKey { key, .. } => Diagnostic {
            message: match key {
                Some(key) => format!("duplicate mapping key: {key:?} is written twice here"),
                None => "duplicate mapping key: this key is written twice here".into(),
            },
            ..diagnostic
        }
        .help("keep one of them: a later key never replaces an earlier one"),
        _ => diagnostic,
    }
}

/// Type and shape errors are the spec's; everything else is the YAML's.
fn code_of(inner: &Error) -> &'static str {
    if matches!(
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
    }
}

/// The message and help of an error that is a resource limit of
/// [`spec_options`], not a mistake in the YAML.
fn limit_exceeded(error: &Error) -> Option<(String, String)> {
    let too_deep = || {
        (
            format!("this is nested more than {SPEC_MAX_DEPTH} levels deep"),
            "kmetal's files nest a few levels: write the structure `kmetal schema` describes"
                .to_string(),
        )
    };
    let aliases = |message: String| {
        let help = "write the values out instead of repeating aliases (*name)";
        (message, help.to_string())
    };
    match error {
        Error::Budget { breach, .. } => Some(match breach {
            BudgetBreach::Depth { .. } => too_deep(),
            BudgetBreach::Documents { .. } => (
                format!("the file holds more than {SPEC_MAX_DOCUMENTS} YAML documents"),
                "write one document per file".to_string(),
            ),
            BudgetBreach::Aliases { .. }
            | BudgetBreach::Anchors { .. }
            | BudgetBreach::MergeKeys { .. } => aliases(format!(
                "the file holds more than {SPEC_MAX_ALIASES} aliases, anchors or merge keys"
            )),
            BudgetBreach::AliasAnchorRatio {
                aliases: n,
                anchors,
            } => aliases(format!(
                "the file repeats aliases too often ({n} aliases of {anchors} anchors)"
            )),
            BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. } => {
                aliases("the anchors (&name) of the file hold too much".to_string())
            }
            other => (
                format!("the file is too large to be a kmetal input ({other:?})"),
                "a tenant file is a few dozen lines: split the content or check the file"
                    .to_string(),
            ),
        }),
        Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. }
        | Error::AliasReplayCounterOverflow { .. } => Some(aliases(format!(
            "aliases (*name) here expand to more than {SPEC_MAX_REPLAYED} values"
        ))),
        Error::ExternalMessage { source, .. } => match &**source {
            ExternalMessageSource::Parser(scan)
                if matches!(scan.kind(), ErrorKind::RecursionLimitExceeded) =>
            {
                Some(too_deep())
            }
            _ => None,
        },
        _ => None,
    }
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
    fn reading_without_key_checks_reads_what_the_usual_way_reads() {
        let usual = |text: &str| {
            serde_saphyr::from_multiple_with_options::<tree::Node>(text, spec_options())
                .map(|nodes| format!("{nodes:?}"))
        };
        let texts = [
            "name: a\ncount: 1\n",
            "a: &x {b: 1, c: [1, 2]}\nd: *x\ne: [*x, *x]\n",
            "? [1, 2]\n: a\n",
            "1: a\n0x1: b\n",
            "1: a\n1.0: b\n",
            "~: a\nnull: b\n",
            "true: a\nTrue: b\n",
            "a: 1\nb: {a: 1, a: 2}\n",
            "a:\n  - {x: 1}\n  - {x: 1, y: 2, x: 3}\n",
            "\"a\": 1\na: 2\n",
            "a: &m {x: 1}\nb:\n  <<: *m\n  x: 2\n",
            "\"\\x3c\\x3c\": 1\n",
            "a: [1\n",
            "a: 1\n---\nb: 2\n",
            "",
            "t: !!str 1\n'1': 2\n",
        ];
        let mut fast = 0;
        for text in texts {
            // Otherwise the usual way decides: it refuses duplicates, merges `<<`.
            if let Some(nodes) = without_key_checks(text) {
                fast += 1;
                assert_eq!(
                    Ok(format!("{nodes:?}")),
                    usual(text).map_err(|_| ()),
                    "{text}"
                );
            }
        }
        assert!(
            fast >= 4,
            "{fast} of the texts were read without key checks"
        );
        for repeats in [
            "1: a\n0x1: b\n",
            "a: 1\nb: {a: 1, a: 2}\n",
            "\"a\": 1\na: 2\n",
        ] {
            assert!(without_key_checks(repeats).is_none(), "{repeats}");
            assert!(usual(repeats).is_err(), "{repeats}");
        }
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
                "unknown key \"nmae\"",
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
                codes::YAML_SYNTAX,
                "unclosed bracket",
            ),
            (
                "name: a\ncount: -1\n",
                2,
                8,
                codes::SPEC_SCHEMA,
                "count must be a whole number (0 or more), not the number -1",
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

    /// A billion-laughs file: nine levels of nine aliases to the level below.
    pub(crate) fn alias_bomb() -> String {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..9 {
            let below = format!("*a{}", level - 1);
            let list = [below.as_str(); 9].join(", ");
            text += &format!("a{level}: &a{level} [{list}]\n");
        }
        text + "name: x\n"
    }

    #[test]
    fn broken_files_get_a_diagnostic_at_the_place() {
        let deep_block: String = (0..40)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect();
        let cases = [
            ("", 0, codes::SPEC_SCHEMA, "the file holds no thing"),
            (
                "# only a comment\n\n",
                0,
                codes::SPEC_SCHEMA,
                "the file holds no thing",
            ),
            (
                "---\n...\n",
                0,
                codes::SPEC_SCHEMA,
                "the file holds no thing",
            ),
            ("~\n", 0, codes::SPEC_SCHEMA, "the file holds no thing"),
            (
                "name: a\n---\nname: b\n",
                3,
                codes::SPEC_SCHEMA,
                "one thing per file",
            ),
            (
                "name: a\nname: b\n",
                2,
                codes::SPEC_SCHEMA,
                "duplicate mapping key",
            ),
            (
                "name: a\n\tcount: 1\n",
                2,
                codes::YAML_SYNTAX,
                "indented with a tab",
            ),
            (
                "name: a\n\ncount: 1\0\n",
                3,
                codes::YAML_SYNTAX,
                "U+0000 is not allowed",
            ),
            (
                "n\u{e9}: \u{e9}\u{7f}\n",
                1,
                codes::YAML_SYNTAX,
                "U+007F is not allowed",
            ),
            (
                &alias_bomb(),
                5,
                codes::YAML_LIMIT,
                "aliases (*name) here expand",
            ),
            (
                &format!("name: {}\n", "[".repeat(10_000)),
                1,
                codes::YAML_LIMIT,
                "nested more",
            ),
            (&deep_block, 33, codes::YAML_LIMIT, "nested more than 32"),
            (
                &"x: 1\n---\n".repeat(20),
                32,
                codes::YAML_LIMIT,
                "more than 16 YAML documents",
            ),
            (
                &format!("name: a\ncount: [&x 1{}]\n", ", *x".repeat(1_001)),
                2,
                codes::YAML_LIMIT,
                "aliases",
            ),
        ];
        for (text, line, code, needle) in cases {
            let error = parse_one::<Small>("t.yaml", text, "thing").unwrap_err();
            let location = error.location.as_deref().cloned().unwrap();
            let short = &text[..text.len().min(40)];
            assert_eq!(location.file, "t.yaml");
            assert_eq!(location.line, line, "{short:?}: {error}");
            assert_eq!(error.code, code, "{short:?}: {error}");
            assert!(error.message.contains(needle), "{short:?}: {error}");
            if code != codes::SPEC_SCHEMA {
                assert!(error.help.is_some(), "{error}");
            }
        }
    }

    #[test]
    fn bom_crlf_and_a_final_document_marker_are_accepted() {
        for text in [
            "\u{feff}name: a\n",
            "name: a\r\ncount: 1\r\n",
            "---\nname: a\n---\n",
            "name: a\n...\n",
            "name: a\n  # \tcomment\n\t\n",
        ] {
            let parsed: Small = parse_one("t.yaml", text, "thing").unwrap();
            assert_eq!(parsed.name.value, "a", "{text:?}");
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

    #[test]
    fn one_value_or_a_clear_refusal() {
        assert_eq!(parse_value("a: 1\n").unwrap(), json!({"a": 1}));
        assert!(matches!(
            parse_value("a: 1\n---\nkind: ClusterRoleBinding\n"),
            Err(NotOneValue::Several)
        ));
        assert!(matches!(
            parse_value("a: [1\n"),
            Err(NotOneValue::Invalid(_))
        ));
    }
}
