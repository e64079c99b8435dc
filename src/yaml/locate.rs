//! YAML text + JSON pointer → where that node is written (its key and its value).
//!
//! Walks the parser's events, so it works on any valid YAML: block and flow
//! style, quoted keys, CRLF line ends, non-ASCII text before the node.

use serde_saphyr::granit_parser::{Event, Parser, Span};

use crate::diagnostic::SourceLocation;

/// The places of one node: its mapping key (none for the root and sequence
/// items) and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub key: Option<SourceLocation>,
    pub value: SourceLocation,
}

/// The segments of a JSON pointer (`/a/0/b~1c` → `a`, `0`, `b/c`).
fn segments(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn location(file: &str, text: &str, start: &Span, end: Option<&Span>) -> SourceLocation {
    let from = start
        .start
        .byte_offset()
        .unwrap_or_else(|| char_to_byte(text, start.start.index()));
    let to_marker = end.map_or(start.end, |e| e.end);
    let to = to_marker
        .byte_offset()
        .unwrap_or_else(|| char_to_byte(text, to_marker.index()));
    SourceLocation {
        file: file.to_string(),
        line: start.start.line() as u64,
        column: start.start.col() as u64 + 1,
        byte_offset: from as u64,
        byte_len: to.saturating_sub(from) as u64,
    }
}

fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

enum Frame {
    /// A mapping: the key just read (the next node is its value), if any.
    Mapping(Option<(String, Span)>),
    /// A sequence: the index of the next item.
    Sequence(usize),
}

/// Find `pointer` in the first document of `text`. `None` if the text does not
/// parse or has no such node.
pub fn locate(file: &str, text: &str, pointer: &str) -> Option<Located> {
    let target = segments(pointer);
    let mut path: Vec<String> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // The node found, waiting for its end event when it is a collection.
    let mut open: Option<(Option<SourceLocation>, Span, usize)> = None;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.ok()?;
        let is_start = matches!(event, Event::MappingStart(..) | Event::SequenceStart(..));
        let is_end = matches!(event, Event::MappingEnd | Event::SequenceEnd);
        if is_end {
            stack.pop();
            if let Some((key, start, depth)) = &open
                && *depth == stack.len()
            {
                return Some(Located {
                    key: key.clone(),
                    value: location(file, text, start, Some(&span)),
                });
            }
            finish_node(&mut stack, &mut path);
            continue;
        }
        if !(is_start || matches!(event, Event::Scalar(..) | Event::Alias(..))) {
            continue;
        }
        // A scalar where a mapping expects a key is a key, not a node.
        if let (Some(Frame::Mapping(pending @ None)), Event::Scalar(value, ..)) =
            (stack.last_mut(), &event)
        {
            path.push(value.to_string());
            *pending = Some((value.to_string(), span));
            continue;
        }
        let key = match stack.last() {
            Some(Frame::Mapping(Some((_, key_span)))) => Some(location(file, text, key_span, None)),
            _ => None,
        };
        if let Some(Frame::Sequence(index)) = stack.last() {
            path.push(index.to_string());
        }
        if path == target && open.is_none() {
            if !is_start {
                return Some(Located {
                    key,
                    value: location(file, text, &span, None),
                });
            }
            open = Some((key, span, stack.len()));
        }
        if is_start {
            stack.push(if matches!(event, Event::MappingStart(..)) {
                Frame::Mapping(None)
            } else {
                Frame::Sequence(0)
            });
        } else {
            finish_node(&mut stack, &mut path);
        }
    }
    None
}

/// Every place in `text` where a scalar value (not a key) equals `value`.
/// Used to point at the input that produced a value found wrong in the output.
pub fn find_scalar(file: &str, text: &str, value: &str) -> Vec<SourceLocation> {
    let mut found = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut path = Vec::new();
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        match event {
            Event::MappingStart(..) => stack.push(Frame::Mapping(None)),
            Event::SequenceStart(..) => stack.push(Frame::Sequence(0)),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                finish_node(&mut stack, &mut path);
            }
            Event::Scalar(scalar, ..) => {
                if let Some(Frame::Mapping(pending @ None)) = stack.last_mut() {
                    path.push(String::new());
                    *pending = Some((scalar.to_string(), span));
                    continue;
                }
                if let Some(Frame::Sequence(_)) = stack.last() {
                    path.push(String::new());
                }
                if scalar == value {
                    found.push(location(file, text, &span, None));
                }
                finish_node(&mut stack, &mut path);
            }
            _ => {}
        }
    }
    found
}

/// A node ended: step the parent past it.
fn finish_node(stack: &mut [Frame], path: &mut Vec<String>) {
    match stack.last_mut() {
        Some(Frame::Mapping(pending)) => {
            *pending = None;
            path.pop();
        }
        Some(Frame::Sequence(index)) => {
            *index += 1;
            path.pop();
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(text, pointer, key text, value text)`: the spans must cover exactly these.
    const CASES: &[(&str, &str, Option<&str>, &str)] = &[
        ("a: 1\nb:\n  c: hello\n", "/b/c", Some("c"), "hello"),
        ("a: 1\nb:\n  c: hello\n", "/b", Some("b"), "c: hello\n"),
        (
            "list:\n  - x\n  - name: y\n    v: 2\n",
            "/list/1/v",
            Some("v"),
            "2",
        ),
        ("list:\n  - x\n  - y\n", "/list/1", None, "y"),
        (
            "flow: {a: [1, 2, {b: deep}]}\n",
            "/flow/a/2/b",
            Some("b"),
            "deep",
        ),
        (
            "\"quoted key\": 'v'\n",
            "/quoted key",
            Some("\"quoted key\""),
            "'v'",
        ),
        ("# ünïcødé ✓\nname: wert\n", "/name", Some("name"), "wert"),
        ("a: 1\r\nb: two\r\n", "/b", Some("b"), "two"),
        ("a~b: 1\nc/d: 2\n", "/c~1d", Some("c/d"), "2"),
        ("a~b: 1\n", "/a~0b", Some("a~b"), "1"),
        ("x: 1\n", "", None, "x: 1\n"),
    ];

    #[test]
    fn pointers_resolve_to_key_and_value_spans() {
        for (text, pointer, key, value) in CASES {
            let found = locate("f.yaml", text, pointer)
                .unwrap_or_else(|| panic!("{pointer} not found in {text:?}"));
            let slice = |l: &SourceLocation| {
                &text[l.byte_offset as usize..(l.byte_offset + l.byte_len) as usize]
            };
            assert_eq!(found.key.as_ref().map(slice), *key, "{pointer} in {text:?}");
            assert_eq!(slice(&found.value), *value, "{pointer} in {text:?}");
        }
    }

    #[test]
    fn lines_and_columns_count_characters() {
        let found = locate("f.yaml", "# ü\nname: wört\nnext: x\n", "/next").unwrap();
        assert_eq!((found.value.line, found.value.column), (3, 7));
        let found = locate("f.yaml", "a: 1\r\nb: two\r\n", "/b").unwrap();
        assert_eq!((found.value.line, found.value.column), (2, 4));
    }

    #[test]
    fn scalars_are_found_as_values_not_keys() {
        let text = "name: acme\nacme: 1\nlist: [acme, b]\nmore:\n  x: acme\n";
        let found = find_scalar("f.yaml", text, "acme");
        let lines: Vec<u64> = found.iter().map(|l| l.line).collect();
        assert_eq!(lines, [1, 3, 5]);
        assert_eq!(find_scalar("f.yaml", text, "zzz"), vec![]);
    }

    #[test]
    fn missing_nodes_and_broken_text_are_none() {
        assert_eq!(locate("f.yaml", "a: 1\n", "/b"), None);
        assert_eq!(locate("f.yaml", "a: [1\n", "/a/0"), None);
        assert_eq!(locate("f.yaml", "a: [1]\n", "/a/3"), None);
    }
}
