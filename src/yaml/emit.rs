//! kmetal's canonical YAML text of a JSON value, written directly.
//!
//! The text is exactly what serde-saphyr writes with kmetal's options
//! ([`saphyr`]): block style, two-space indentation, a list under a key at the
//! key's own indentation, an item's first key or nested item right after its
//! `- `, empty collections as `{}` and `[]`, no block scalars, no folding. The
//! layout is written here; every scalar that needs a decision (quoting,
//! escapes, floats) is the one serde-saphyr writes for it alone, so the
//! quoting rules stay serde-saphyr's. Only words that are plain under any of
//! YAML's readings skip that call: an ASCII letter, then letters, digits and
//! `._/-` (and `:@+=~` in values, `:` not last), other than YAML 1.1's and
//! 1.2's booleans, nulls and special floats; a key also no longer than the
//! 1,024 characters YAML allows a key without `? `.
//!
//! The differential test below writes random values both ways; a scalar
//! serde-saphyr writes on more than one line (never, with these options)
//! makes the whole document its own.

use std::fmt::Write;

use serde::Serialize;

use crate::value::{JsonView, View};

/// serde-saphyr's text of `value` with kmetal's options: the reference.
pub fn saphyr<V: Serialize>(value: &V) -> String {
    let options = serde_saphyr::ser_options! {
        folded_wrap_chars: usize::MAX,
        prefer_block_scalars: false,
    };
    serde_saphyr::to_string_with_options(value, options)
        .expect("a JSON tree always serializes: its keys are strings and its floats finite")
}

/// The canonical text of `value` (`serde_json`'s tree or kmetal's own).
pub fn emit<V: JsonView + Serialize>(value: &V) -> String {
    let mut out = String::with_capacity(1024);
    let written = match value.view() {
        View::Object(map) if map.len() > 0 => entries::<V, _>(&mut out, map, 0, false, &mut NoHook),
        View::Array(items) if !items.is_empty() => items_of(&mut out, items, 0, false, &mut NoHook),
        _ => None,
    };
    match written {
        Some(()) => out,
        None => saphyr(value),
    }
}

/// Where a value stands in the text: after its key's `:`, or after the `- `
/// of a list item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    Key,
    Dash,
}

/// Sees each value before it is written; true when it took the value's place.
trait Hook<V> {
    fn value(&mut self, out: &mut String, value: &V, at: usize, position: Position) -> bool;
}

/// Every value written as it is.
struct NoHook;

impl<V> Hook<V> for NoHook {
    #[inline(always)]
    fn value(&mut self, _: &mut String, _: &V, _: usize, _: Position) -> bool {
        false
    }
}

/// A mapping's text with holes where some of its values go: the text
/// between them is written once, and [`Pieces::fill`] writes only the
/// values, each where and as [`emit`] would.
#[derive(Debug)]
pub struct Pieces {
    /// The text before each hole, and after the last.
    fixed: Vec<String>,
    /// Each hole's indentation and position.
    holes: Vec<(usize, Position)>,
}

/// Records a hole for each value `is_hole` picks.
struct Holes<F> {
    is_hole: F,
    fixed: Vec<String>,
    holes: Vec<(usize, Position)>,
}

impl<V, F: Fn(&V) -> bool> Hook<V> for Holes<F> {
    fn value(&mut self, out: &mut String, value: &V, at: usize, position: Position) -> bool {
        if !(self.is_hole)(value) {
            return false;
        }
        self.fixed.push(std::mem::take(out));
        self.holes.push((at, position));
        true
    }
}

impl Pieces {
    /// The text of `value` (a non-empty mapping) cut at each value
    /// `is_hole` picks, in the order they are written; `None` when its text
    /// is not written here ([`emit`] hands it to serde-saphyr whole).
    pub fn of<V: JsonView + Serialize>(value: &V, is_hole: impl Fn(&V) -> bool) -> Option<Pieces> {
        let View::Object(map) = value.view() else {
            return None;
        };
        if map.len() == 0 {
            return None;
        }
        let mut holes = Holes {
            is_hole,
            fixed: Vec::new(),
            holes: Vec::new(),
        };
        let mut out = String::new();
        entries::<V, _>(&mut out, map, 0, false, &mut holes)?;
        holes.fixed.push(out);
        Some(Pieces {
            fixed: holes.fixed,
            holes: holes.holes,
        })
    }

    /// How many values it takes.
    pub fn holes(&self) -> usize {
        self.holes.len()
    }

    /// The text with `values` in its holes, in order: what [`emit`] writes
    /// for the mapping with these values in place. `None` when a value is
    /// not written here (the whole text is then serde-saphyr's).
    pub fn fill<'v, V: JsonView + Serialize + 'v>(
        &self,
        values: impl IntoIterator<Item = &'v V>,
    ) -> Option<String> {
        let size = self.fixed.iter().map(String::len).sum::<usize>() + 32 * self.holes.len();
        let mut out = String::with_capacity(size);
        let mut values = values.into_iter();
        for (fixed, (at, position)) in self.fixed.iter().zip(&self.holes) {
            out.push_str(fixed);
            value_at(&mut out, values.next()?, *at, *position, &mut NoHook)?;
        }
        out.push_str(self.fixed.last()?);
        values.next().is_none().then_some(out)
    }
}

/// `n` spaces, copied at once (pushed one by one they cost several
/// instructions each, on every line of the output).
fn indent(out: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut left = n;
    while left > 0 {
        let now = left.min(SPACES.len());
        out.push_str(&SPACES[..now]);
        left -= now;
    }
}

/// A mapping's entries at `at` spaces; the first on the current line when
/// `inline` (right after `- `).
fn entries<'v, V: JsonView + Serialize + 'v, H: Hook<V>>(
    out: &mut String,
    map: V::Fields<'v>,
    at: usize,
    inline: bool,
    hook: &mut H,
) -> Option<()> {
    for (i, (key, value)) in map.enumerate() {
        if i > 0 || !inline {
            indent(out, at);
        }
        write_key(out, key)?;
        out.push(':');
        value_at(out, value, at, Position::Key, hook)?;
    }
    Some(())
}

/// A list's items at `at` spaces; the first on the current line when `inline`.
fn items_of<V: JsonView + Serialize, H: Hook<V>>(
    out: &mut String,
    items: &[V],
    at: usize,
    inline: bool,
    hook: &mut H,
) -> Option<()> {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline {
            indent(out, at);
        }
        out.push_str("- ");
        value_at(out, item, at, Position::Dash, hook)?;
    }
    Some(())
}

/// A value right after its key's `:` or its item's `- `, the key or dash at
/// `at` spaces.
fn value_at<V: JsonView + Serialize, H: Hook<V>>(
    out: &mut String,
    value: &V,
    at: usize,
    position: Position,
    hook: &mut H,
) -> Option<()> {
    if hook.value(out, value, at, position) {
        return Some(());
    }
    match (position, value.view()) {
        (Position::Key, View::Object(inner)) if inner.len() > 0 => {
            out.push('\n');
            entries::<V, H>(out, inner, at + 2, false, hook)
        }
        (Position::Key, View::Array(items)) if !items.is_empty() => {
            out.push('\n');
            items_of(out, items, at, false, hook)
        }
        (Position::Key, scalar) => {
            out.push(' ');
            write_scalar(out, value, scalar)?;
            out.push('\n');
            Some(())
        }
        (Position::Dash, View::Object(inner)) if inner.len() > 0 => {
            entries::<V, H>(out, inner, at + 2, true, hook)
        }
        (Position::Dash, View::Array(inner)) if !inner.is_empty() => {
            items_of(out, inner, at + 2, true, hook)
        }
        (Position::Dash, scalar) => {
            write_scalar(out, value, scalar)?;
            out.push('\n');
            Some(())
        }
    }
}

/// A scalar or an empty collection in value position (`view` is `value`'s).
fn write_scalar<V: JsonView + Serialize>(
    out: &mut String,
    value: &V,
    view: View<'_, V>,
) -> Option<()> {
    match view {
        View::Null => out.push_str("null"),
        View::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        View::Number(n) if n.is_i64() || n.is_u64() => {
            write!(out, "{n}").expect("writing to a String");
        }
        View::String(s) if plain_word(s, true) => out.push_str(s),
        View::String(s) if plain_text(s) => out.push_str(s),
        View::String(s) if is_address(s) => match s.contains('/') {
            // YAML 1.1 reads digits and dots as a float; a slash makes it text.
            true => out.push_str(s),
            false => {
                out.push('"');
                out.push_str(s);
                out.push('"');
            }
        },
        View::Array([]) => out.push_str("[]"),
        View::Object(map) if map.len() == 0 => out.push_str("{}"),
        _ => {
            // "- <scalar>\n": the scalar as serde-saphyr writes a list item.
            let text = saphyr(&[value]);
            out.push_str(one_line(&text, "- ", "\n")?);
        }
    }
    Some(())
}

/// A one-line ASCII text serde-saphyr writes plain in a block value, told
/// without calling it: one that no YAML reading takes for anything else
/// (it starts with a letter and is none of YAML's words, starts with `./`,
/// or is digits then a unit such as `10m`), with no edge spaces, no `: `
/// or ` #` inside and no `:` at the end.
fn plain_text(s: &str) -> bool {
    let bytes = s.as_bytes();
    let start = match bytes {
        [first, ..] if first.is_ascii_alphabetic() => !is_word(s),
        [b'.', b'/', ..] => true,
        _ => is_duration(bytes),
    };
    start
        && bytes.iter().all(|b| (b' '..=b'~').contains(b))
        && bytes.last() != Some(&b' ')
        && bytes.last() != Some(&b':')
        && !s.contains(": ")
        && !s.contains(" #")
}

/// Digits, then lowercase letters that no number spelling uses (`e`, and
/// the `b`, `o`, `x` of `0b`, `0o`, `0x`): `10m`, `30s`, `500ms`.
fn is_duration(bytes: &[u8]) -> bool {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let unit = &bytes[digits..];
    digits > 0
        && !unit.is_empty()
        && unit
            .iter()
            .all(|b| b.is_ascii_lowercase() && !matches!(b, b'e' | b'b' | b'o' | b'x'))
}

/// Digits, dots and slashes after a digit (addresses, networks, versions):
/// written without a call to serde-saphyr, as it writes them.
fn is_address(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'/')
}

/// YAML's limit for a key written without `? ` (serde-saphyr writes longer
/// ones as explicit keys, over two lines).
const SIMPLE_KEY_MAX: usize = 1024;

fn write_key(out: &mut String, key: &str) -> Option<()> {
    if key.len() <= SIMPLE_KEY_MAX && plain_word(key, false) {
        out.push_str(key);
        return Some(());
    }
    // "<key>: null\n": the key as serde-saphyr writes it.
    let text = saphyr(&std::collections::BTreeMap::from([(key, ())]));
    out.push_str(one_line(&text, "", ": null\n")?);
    Some(())
}

/// The single line between `prefix` and `suffix`, if that is all of `text`.
fn one_line<'t>(text: &'t str, prefix: &str, suffix: &str) -> Option<&'t str> {
    let inner = text.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!inner.contains('\n')).then_some(inner)
}

/// The bytes a plain word may hold after its first letter: letters, digits
/// and `._/-`, and in a value also `:@+=~`. A table, because every key and
/// scalar of the output is looked at byte by byte.
const INNER_OF_KEY: [bool; 256] = inner_bytes(false);
const INNER_OF_VALUE: [bool; 256] = inner_bytes(true);

const fn inner_bytes(value: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(b, b'.' | b'_' | b'/' | b'-')
            || (value && matches!(b, b':' | b'@' | b'+' | b'=' | b'~'));
        i += 1;
    }
    table
}

/// A word every YAML reading takes as this text, so no quoting rule applies.
pub(super) fn plain_word(s: &str, value: bool) -> bool {
    let bytes = s.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    let inner: &[bool; 256] = if value {
        &INNER_OF_VALUE
    } else {
        &INNER_OF_KEY
    };
    first.is_ascii_alphabetic()
        && bytes[1..].iter().all(|b| inner[usize::from(*b)])
        && bytes.last() != Some(&b':')
        && !is_word(s)
}

/// One of YAML 1.1's and 1.2's booleans, nulls and special floats, in any case.
fn is_word(s: &str) -> bool {
    // Compared only with the words of its length (none is longer than five).
    let words: &[&str] = match s.len() {
        1 => &["y", "n"],
        2 => &["no", "on"],
        3 => &["nan", "inf", "yes", "off"],
        4 => &["null", "true"],
        5 => &["false"],
        _ => return false,
    };
    words.iter().any(|w| s.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// YAML's eleven words in any case, and nothing near them.
    #[test]
    fn the_words_are_yamls_in_any_case() {
        let words = [
            "null", "true", "false", "nan", "inf", "y", "n", "yes", "no", "on", "off",
        ];
        for word in words {
            for variant in [word.to_string(), word.to_uppercase(), {
                let mut c = word.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap()
            }] {
                assert!(is_word(&variant), "{variant}");
            }
        }
        for other in [
            "", "x", "ye", "nul", "nulls", "falsey", "o", "of", "in", "infinity", "yess",
        ] {
            assert!(!is_word(other), "{other}");
        }
    }

    #[test]
    fn the_layout_is_serde_saphyrs() {
        let cases = [
            json!({"a": 1, "b": {"c": [1, 2, {"d": "x", "e": [[], {}, [3, [4, 5]], {"f": null}]}], "g": {}}, "h": []}),
            json!([{"a": [1, 2]}, [[1], {"b": 2}], "multi\nline", "", "yes", "a: b", " x", "1.0", 1.5, -3, true, null, "#x", "x #y", "é", "\u{2028}", "a'b", "\"q", "a:", "https://x.io/a", "10.0.0.1"]),
            json!({"": 1, "a b": 2, "1": 3, "true": 4, "k:": 5, "-": 6, "x\ny": 7, "long": "a".repeat(200), "On": 8, "<<": 9}),
            // A key past YAML's 1,024 characters is an explicit `? ` key.
            json!({"k".repeat(1024): 1, "k".repeat(1025): 2, "v": "v".repeat(3000)}),
            json!({}),
            json!([]),
            json!("top"),
            json!(null),
            json!({"a": [{"b": [{"c": 1}], "d": [[{"e": 1, "f": [2]}]]}]}),
            // Indented past the 64 spaces copied at once.
            (0..40).fold(
                json!({"leaf": [1, {"x": "y"}]}),
                |inner, _| json!({"k": inner, "z": 2}),
            ),
        ];
        for value in cases {
            assert_eq!(emit(&value), saphyr(&value), "{value}");
            assert_eq!(
                emit(&crate::value::Value::from(&value)),
                saphyr(&value),
                "{value}"
            );
        }
    }

    /// Strings that stress the quoting rules: YAML's words, numbers in
    /// every spelling, indicators, spaces, controls, line breaks, unicode.
    fn any_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a",
            "Z",
            "k8s",
            "x-y",
            "a.b",
            "a/b",
            "_",
            "-",
            "?",
            ":",
            ": ",
            " :",
            "#",
            " #",
            "&",
            "*",
            "!",
            "|",
            ">",
            "'",
            "\"",
            "%",
            "@",
            "`",
            ",",
            "[",
            "]",
            "{",
            "}",
            "~",
            "=",
            "<<",
            "+",
            " ",
            "\t",
            "\n",
            "\r",
            "\u{85}",
            "\u{2028}",
            "\u{feff}",
            "\u{7f}",
            "é",
            "0",
            "1",
            "9",
            "0x",
            "0o",
            "0b",
            "1e5",
            ".",
            "..",
            "...",
            "---",
            "inf",
            "nan",
            "NaN",
            ".inf",
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "true",
            "False",
            "null",
            "NULL",
            "2001",
            "-12-14",
            "1:20",
            "_1",
            "\\",
            "\u{0}",
            "\u{1b}",
            "/",
            "10.0.0.1",
            "10.96.0.0/12",
            "1.31",
            "10m",
            "ms",
            "h",
            "e",
            "x",
            "b",
            "./",
            "(",
            ")",
            "&&",
            "==",
        ]);
        prop::collection::vec(pieces, 0..5).prop_map(|p| p.concat())
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            any_text().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((any_text(), inner), 0..5)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn any_value_is_written_as_serde_saphyr_writes_it() {
        crate::fixed_runner(2000, 11)
            .run(&any_value(), |value| {
                prop_assert_eq!(emit(&value), saphyr(&value));
                prop_assert_eq!(emit(&crate::value::Value::from(&value)), saphyr(&value));
                Ok(())
            })
            .unwrap();
    }
}
