//! An input file's tree built straight from the parser's events, for the
//! plain files almost every tenant writes: about half of what reading it
//! through serde-saphyr's spanned deserializer costs.
//!
//! It reads only what it reads exactly as serde-saphyr does with
//! [`super::spec_options`] (the differential tests hold the two together):
//! one document that is a mapping or a list; no anchors, aliases, tags or
//! directives; at most [`MAX_DEPTH`] levels; and scalars whose reading is
//! beyond doubt:
//! - quoted and block scalars are text;
//! - plain `null`, `~` and the empty scalar are null; `true` and `false`
//!   (also `True`, `TRUE`, …) are booleans;
//! - plain decimal digits without a leading zero that fit 64 bits are
//!   integers;
//! - a plain scalar that starts with a letter or any non-ASCII character
//!   is text (no YAML 1.2 number starts with one), and so are digits with
//!   two dots or a slash (addresses and networks: no number has them).
//!
//! Anything else gives `None`, and the file is read the usual way, with the
//! usual errors: this reader reports nothing itself.

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

use super::place::Place;
use super::tree::{Kind, Node};

/// How deep this reader goes (kmetal's input files nest five levels).
const MAX_DEPTH: usize = 16;
/// How many events it reads before leaving the file to the usual way: well
/// inside the input files' budget (100,000 nodes, 250,000 events), so that
/// a file past the budget gets the usual error (a 10,000-tenant lock has
/// 70,000 events).
const MAX_EVENTS: usize = 90_000;
/// The longest text it reads: inside the budget's 4 MiB of scalars.
const MAX_BYTES: usize = 2 << 20;

/// A collection whose end has not been read yet.
enum Open {
    Seq(Place, Vec<Node>),
    /// A mapping, and the key whose value comes next.
    Map(Place, Vec<(Node, Node)>, Option<Node>),
}

/// The documents of `text`, or `None` when `text` is outside this reader's
/// subset (or does not parse).
pub fn read(text: &str) -> Option<Vec<Node>> {
    if text.len() > MAX_BYTES {
        return None;
    }
    let mut open: Vec<Open> = Vec::new();
    let mut documents = Vec::new();
    for (count, event) in Parser::new_from_str(text).enumerate() {
        if count > MAX_EVENTS {
            return None;
        }
        let (event, span) = event.ok()?;
        let place = Place::of_span(&span);
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::DocumentStart(_, None) => continue,
            Event::Scalar(value, style, 0, None) => node(place, scalar(&value, style)?),
            Event::SequenceStart(_, 0, None) | Event::MappingStart(_, 0, None)
                if open.len() >= MAX_DEPTH =>
            {
                return None;
            }
            Event::SequenceStart(_, 0, None) => {
                open.push(Open::Seq(place, Vec::new()));
                continue;
            }
            Event::MappingStart(_, 0, None) => {
                open.push(Open::Map(place, Vec::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop()? {
                Open::Seq(place, items) => node(place, Kind::Seq(items)),
                Open::Map(place, entries, None) => node(place, Kind::Map(entries)),
                Open::Map(_, _, Some(_)) => return None,
            },
            // Aliases, anchors, tags, directives, comments.
            _ => return None,
        };
        match open.last_mut() {
            // serde-saphyr passes over a document that is only a null.
            None if !matches!(node.kind, Kind::Map(_) | Kind::Seq(_)) => return None,
            None => documents.push(node),
            Some(Open::Seq(_, items)) => items.push(node),
            Some(Open::Map(_, entries, pending)) => match pending.take() {
                Some(key) => entries.push((key, node)),
                None => *pending = Some(node),
            },
        }
    }
    (documents.len() == 1 && open.is_empty()).then_some(documents)
}

/// A node written at `place` (no alias: used where it is defined).
pub(super) fn node(place: Place, kind: Kind) -> Node {
    Node {
        referenced: place,
        defined: place,
        kind,
    }
}

/// A scalar as serde-saphyr reads it, when that is beyond doubt.
pub(super) fn scalar(value: &str, style: ScalarStyle) -> Option<Kind> {
    if style != ScalarStyle::Plain {
        return Some(Kind::Str(value.to_string()));
    }
    Some(match value {
        "" | "~" | "null" | "Null" | "NULL" => Kind::Null,
        "true" | "True" | "TRUE" => Kind::Bool(true),
        "false" | "False" | "FALSE" => Kind::Bool(false),
        _ => {
            let bytes = value.as_bytes();
            let digits = |extra: &[u8]| {
                bytes
                    .iter()
                    .all(|b| b.is_ascii_digit() || extra.contains(b))
            };
            if bytes[0].is_ascii_alphabetic() || !bytes[0].is_ascii() {
                Kind::Str(value.to_string())
            } else if digits(b"") && (bytes[0] != b'0' || bytes.len() == 1) {
                Kind::Int(value.parse::<u64>().ok()?.into())
            } else if bytes[0].is_ascii_digit()
                && digits(b"./")
                && (value.contains('/') || value.matches('.').count() >= 2)
            {
                Kind::Str(value.to_string())
            } else {
                return None;
            }
        }
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The tree serde-saphyr reads with the input files' options, written
    /// out (places included), or `None` when it refuses the text.
    fn usual(text: &str) -> Option<String> {
        serde_saphyr::from_multiple_with_options::<Node>(text, super::super::spec_options())
            .ok()
            .map(|nodes| format!("{nodes:?}"))
    }

    /// Whenever this reader reads a text, serde-saphyr reads the same tree,
    /// with the same places: a key that may repeat is left to the usual way
    /// by the caller, so it is left out here too.
    fn agrees(text: &str) -> Result<bool, String> {
        agrees_by(read, text)
    }

    /// [`agrees`] for the reader `read`.
    pub(in crate::yaml) fn agrees_by(
        read: fn(&str) -> Option<Vec<Node>>,
        text: &str,
    ) -> Result<bool, String> {
        let Some(nodes) = read(text) else {
            return Ok(false);
        };
        if nodes.iter().any(Node::may_repeat_a_key) {
            return Ok(false);
        }
        match usual(text) {
            Some(usual) if usual == format!("{nodes:?}") => Ok(true),
            Some(usual) => Err(format!("{text:?}\nfast:  {nodes:?}\nusual: {usual}")),
            None => Err(format!("{text:?}: serde-saphyr refuses what was read")),
        }
    }

    #[test]
    fn plain_files_are_read_as_serde_saphyr_reads_them() {
        let read_here = [
            "apiVersion: kmetal.io/v1alpha1\nkind: Tenant\nname: t00000\ncontrolPlane:\n  replicas: 3\n  vip: 172.18.0.1\n  certSANs: [t00000.k8s.example.com]\nworkers:\n  - name: md-0\n    replicas: 2\n  - name: md-1\n    replicas: 5\n    machineSize: medium\n",
            "a: 1\r\nb:\r\n  - x\r\n  - 'y'\r\n",
            "\u{feff}a: b\n",
            "---\na: b\n...\n",
            "# comment\na: b # trailing\n\n\nc: d\n",
            "a:\nb: ~\nc: null\nd: ''\ne: \"\"\n",
            "a: |\n  one\n  two\nb: >-\n  folded\n  text\n",
            "k: {a: [1, {b: c}], d: []}\n",
            "- a\n- - b\n  - c\n- {}\n",
            "1: a\n2: b\n",
            "  a: 1\n  b: 2\n",
            "t: True\nf: FALSE\nnet: 10.96.0.0/12\né: ü\n",
        ];
        for text in read_here {
            assert_eq!(agrees(text), Ok(true), "{text:?}");
        }
        // Numbers other than plain integers, a scalar document, anchors,
        // aliases, tags, directives, several or no documents, errors.
        let left = [
            "v: 1.30\n",
            "a: 0\nb: 007\n",
            "c: 18446744073709551616\n",
            "top",
            "~\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\n---\nb: 2\n",
            "",
            "a: [1\n",
        ];
        for text in left {
            assert!(read(text).is_none(), "{text:?}");
        }
        // The limits: depth, events, bytes.
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(read(&nested(MAX_DEPTH)).is_some());
        assert!(read(&nested(MAX_DEPTH + 1)).is_none());
        let keys = |n: usize| (0..n).map(|i| format!("k{i}: 1\n")).collect::<String>();
        assert!(read(&keys(MAX_EVENTS / 2 - 10)).is_some());
        assert!(read(&keys(MAX_EVENTS / 2 + 10)).is_none());
        assert!(read(&format!("a: {}\n", "x".repeat(MAX_BYTES))).is_none());
        // Read here, but a key that may repeat leaves it to the usual way.
        assert!(read("a: 'x'\na: y\n").is_some_and(|n| n[0].may_repeat_a_key()));
    }

    #[test]
    fn every_input_file_of_the_golden_cases_reads_as_serde_saphyr_reads_it() {
        let (mut read_here, mut scanned) = (0, 0);
        for entry in walkdir::WalkDir::new("golden").sort_by_file_name() {
            let entry = entry.unwrap();
            let path = entry.path();
            let input = path.components().any(|c| c.as_os_str() == "input");
            let yaml = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "lock")
            );
            if !(entry.file_type().is_file() && input && yaml) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            read_here += usize::from(agrees(&text).unwrap_or_else(|e| panic!("{path:?}: {e}")));
            scanned += usize::from(
                agrees_by(super::super::scan::read, &text)
                    .unwrap_or_else(|e| panic!("{path:?} (scan): {e}")),
            );
        }
        assert!(
            read_here >= 150,
            "{read_here} golden input files were read here"
        );
        assert!(
            scanned >= 150,
            "{scanned} golden input files were read line by line"
        );
    }

    /// A random YAML file: mappings and lists in block or flow style, keys
    /// and scalars written plain (as they come: often not valid YAML at
    /// all), single- or double-quoted.
    #[derive(Clone, Debug)]
    pub(in crate::yaml) enum Doc {
        Scalar(String, u8),
        Seq(Vec<Doc>, bool),
        Map(Vec<((String, u8), Doc)>, bool),
    }

    fn any_word() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a",
            "t00001",
            "md-0",
            "Tenant",
            "172.18.0.1",
            "10.0.0.0/8",
            "1.30",
            "0",
            "1",
            "42",
            "007",
            "1e3",
            "-1",
            "+1",
            ".5",
            "0x1f",
            "0X1F",
            "0o7",
            "0b1",
            "1_000",
            "~",
            "null",
            "Null",
            "NULL",
            "true",
            "True",
            "TRUE",
            "false",
            "False",
            "yes",
            "on",
            "y",
            ".inf",
            "-.inf",
            ".nan",
            "nan",
            "inf",
            "Infinity",
            "e5",
            "12:30",
            "1/2",
            "1.2.3",
            "1.",
            ".",
            " ",
            "#",
            " #",
            ": ",
            ":",
            "-",
            "- ",
            "'",
            "\"",
            "é",
            "\t",
            "[",
            "]",
            "{",
            "}",
            ",",
            "*a",
            "&a",
            "!t",
            "|",
            ">",
            "%",
            "@",
            "`",
            "?",
            "2001-12-14",
            "\u{2028}",
            "\u{85}",
        ]);
        prop::collection::vec(pieces, 0..4).prop_map(|p| p.concat())
    }

    pub(in crate::yaml) fn any_doc() -> impl Strategy<Value = Doc> {
        let scalar = (any_word(), 0u8..3).prop_map(|(s, q)| Doc::Scalar(s, q));
        scalar.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..4), any::<bool>())
                    .prop_map(|(items, flow)| Doc::Seq(items, flow)),
                (
                    prop::collection::vec(((any_word(), 0u8..3), inner), 0..4),
                    any::<bool>()
                )
                    .prop_map(|(entries, flow)| Doc::Map(entries, flow)),
            ]
        })
    }

    fn scalar_text(s: &str, quoting: u8) -> String {
        match quoting {
            0 => s.to_string(),
            1 => format!("'{}'", s.replace('\'', "''")),
            _ => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        }
    }

    fn flow(doc: &Doc) -> String {
        match doc {
            Doc::Scalar(s, q) => scalar_text(s, *q),
            Doc::Seq(items, _) => {
                format!(
                    "[{}]",
                    items.iter().map(flow).collect::<Vec<_>>().join(", ")
                )
            }
            Doc::Map(entries, _) => format!(
                "{{{}}}",
                (entries.iter())
                    .map(|((k, q), v)| format!("{}: {}", scalar_text(k, *q), flow(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn is_block(doc: &Doc) -> bool {
        match doc {
            Doc::Seq(items, flow) => !flow && !items.is_empty(),
            Doc::Map(entries, flow) => !flow && !entries.is_empty(),
            Doc::Scalar(..) => false,
        }
    }

    pub(in crate::yaml) fn block(doc: &Doc, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match doc {
            Doc::Seq(items, false) if !items.is_empty() => {
                for item in items {
                    if is_block(item) {
                        out.push_str(&format!("{pad}-\n"));
                        block(item, indent + 2, out);
                    } else {
                        out.push_str(&format!("{pad}- {}\n", flow(item)));
                    }
                }
            }
            Doc::Map(entries, false) if !entries.is_empty() => {
                for ((k, q), v) in entries {
                    let key = scalar_text(k, *q);
                    if is_block(v) {
                        out.push_str(&format!("{pad}{key}:\n"));
                        block(v, indent + 2, out);
                    } else {
                        out.push_str(&format!("{pad}{key}: {}\n", flow(v)));
                    }
                }
            }
            other => out.push_str(&format!("{pad}{}\n", flow(other))),
        }
    }

    #[test]
    fn any_file_read_here_is_what_serde_saphyr_reads() {
        let read_here = std::cell::Cell::new(0);
        let scanned = std::cell::Cell::new(0);
        crate::fixed_runner(3000, 12)
            .run(&any_doc(), |doc| {
                let mut text = String::new();
                block(&doc, 0, &mut text);
                let agreed = agrees(&text).map_err(TestCaseError::fail)?;
                read_here.set(read_here.get() + usize::from(agreed));
                let agreed =
                    agrees_by(super::super::scan::read, &text).map_err(TestCaseError::fail)?;
                scanned.set(scanned.get() + usize::from(agreed));
                Ok(())
            })
            .unwrap();
        assert!(
            read_here.get() >= 300,
            "{} of 3000 files were read here",
            read_here.get()
        );
        assert!(
            scanned.get() >= 150,
            "{} of 3000 files were read line by line",
            scanned.get()
        );
    }
}
