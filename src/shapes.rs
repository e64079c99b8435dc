//! Rendered templates without re-parsing every object.
//!
//! A template's text depends on its values in two ways: where its control flow
//! goes (`{% if %}`, `{% for %}`), and the JSON text of each `{{ value }}`. A
//! *shape render* writes a placeholder (a JSON string of two private-use
//! characters around the slot number) for each plain value and keeps the
//! value aside. The text left over depends on the control flow only, so
//! thousands of tenants share a handful of texts: each is parsed once into a
//! tree, and a tenant's object is that tree with its own values put back into
//! the placeholders' scalars.
//!
//! That is the object the usual render-then-parse gives, because:
//! - a JSON scalar, list or map and a JSON string are each one flow node, so
//!   the YAML around them parses to the same structure;
//! - a value is put back only where its placeholder is a whole scalar value.
//!   A placeholder inside another scalar, in a key or beside a literal
//!   private-use character makes the text *unfit*: such texts are rendered
//!   and parsed the usual way;
//! - a value is kept aside only when YAML reads its JSON text back as exactly
//!   that value: null, booleans, integers, strings without the characters
//!   YAML treats differently from JSON, lists and string-keyed maps of those
//!   (never a `<<` key). Anything else (floats, safe strings, another
//!   auto-escape mode) makes the render fall back;
//! - only templates whose tags are `if`, `for`, `set x = …`, `with`, `raw` and
//!   loop controls take this path: a captured block (`{% set x %}…`,
//!   `{% filter %}`, macros, blocks, includes) would let control flow or text
//!   depend on the JSON text itself.
//!
//! A render that errors, or whose text is unfit, is redone the usual way, so
//! every diagnostic is the usual one.

use std::cell::RefCell;
use std::sync::{Arc, RwLock};

use crate::value::{Map, Str, Value};
use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Error, Output, State};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::yaml;

/// Opens and closes a placeholder; both are private-use characters.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

thread_local! {
    /// The values set aside by the shape render running on this thread.
    static SLOTS: RefCell<Option<Slots>> = const { RefCell::new(None) };
}

struct Slots {
    values: Vec<Value>,
    /// False once a value could not be set aside exactly.
    exact: bool,
}

/// The formatter of every `{{ value }}`: the usual JSON escape, or during a
/// shape render a placeholder.
pub fn format(out: &mut Output, state: &mut State, value: &minijinja::Value) -> Result<(), Error> {
    let json = *state.auto_escape() == AutoEscape::Json;
    let slot = SLOTS.with_borrow_mut(|slots| {
        let slots = slots.as_mut().filter(|s| s.exact)?;
        let set_aside = (json && !value.is_safe()).then(|| plain(value)).flatten();
        match set_aside {
            Some(v) => {
                slots.values.push(v);
                Some(slots.values.len() - 1)
            }
            None => {
                slots.exact = false;
                None
            }
        }
    });
    match slot {
        Some(slot) => placeholder(out, slot).map_err(Error::from),
        None => minijinja::escape_formatter(out, state, value),
    }
}

/// `"<OPEN><slot><CLOSE>"`: this runs for every value of every object.
/// The first slots' texts are made once; `write!` costs several times more.
fn placeholder(out: &mut Output, slot: usize) -> std::fmt::Result {
    static MADE: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| (0..256).map(placeholder_text).collect());
    match MADE.get(slot) {
        Some(text) => out.write_str(text),
        None => out.write_str(&placeholder_text(slot)),
    }
}

fn placeholder_text(slot: usize) -> String {
    [
        "\"",
        OPEN.encode_utf8(&mut [0; 4]),
        &slot.to_string(),
        CLOSE.encode_utf8(&mut [0; 4]),
        "\"",
    ]
    .concat()
}

/// `value` as JSON, when YAML reads its JSON text back as exactly it.
fn plain(value: &minijinja::Value) -> Option<Value> {
    Some(match value.kind() {
        ValueKind::None => Value::Null,
        ValueKind::Bool => Value::Bool(value.is_true()),
        ValueKind::Number if value.is_integer() => match i64::try_from(value.clone()) {
            Ok(i) => Value::from(i),
            Err(_) => Value::from(u64::try_from(value.clone()).ok()?),
        },
        ValueKind::String => Value::String(shared(plain_str(value.as_str()?)?)),
        ValueKind::Seq => Value::Array(
            value
                .try_iter()
                .ok()?
                .map(|item| plain(&item))
                .collect::<Option<_>>()?,
        ),
        ValueKind::Map => {
            let mut map = Map::with_capacity(value.len().unwrap_or(0));
            for key in value.try_iter().ok()? {
                let name = plain_str(key.as_str()?)?;
                if name == "<<" {
                    return None;
                }
                map.insert(shared(name), plain(&value.get_item(&key).ok()?)?);
            }
            Value::Object(map)
        }
        _ => return None,
    })
}

/// How many texts [`shared`] keeps on a thread before it starts over.
const SHARED_TEXTS: usize = 1 << 14;

thread_local! {
    /// The texts of the values set aside on this thread: a tenant's name
    /// and the site's values recur in every object, and each copy would be
    /// an allocation of its own.
    static TEXTS: RefCell<FxHashSet<Str>> = RefCell::default();
}

/// `text`, shared with the values set aside before it on this thread.
fn shared(text: &str) -> Str {
    TEXTS.with_borrow_mut(|texts| {
        if let Some(known) = texts.get(text) {
            return Arc::clone(known);
        }
        if texts.len() >= SHARED_TEXTS {
            texts.clear();
        }
        let new = Str::from(text);
        texts.insert(Arc::clone(&new));
        new
    })
}

/// A string whose JSON text YAML reads back unchanged: no DEL, C1 controls,
/// line or paragraph separators, byte-order marks, non-characters, or the
/// placeholder characters.
fn plain_str(s: &str) -> Option<&str> {
    let odd = |c: char| {
        matches!(
            c,
            '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        ) || c == OPEN
            || c == CLOSE
    };
    // Below DEL every byte is plain ASCII; in ASCII only DEL is odd.
    let plain = below_del(s.as_bytes()) || !s.contains(odd);
    plain.then_some(s)
}

/// Whether every byte is below DEL (0x7f), eight at a time: a word has a
/// byte at 0x80 or more, or one that adding 1 takes to 0x80 (DEL itself),
/// exactly when the high bit of a byte is set in it or in it plus 1 in each
/// byte (which carries nothing when every byte is below 0x80).
fn below_del(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut words = bytes.chunks_exact(8);
    let clean = |w: u64| (w | w.wrapping_add(ONES)) & HIGH == 0;
    words.all(|w| clean(u64::from_ne_bytes(w.try_into().expect("8 bytes"))))
        && words.remainder().iter().all(|b| *b < 0x7f)
}

/// Whether a template's source may be rendered as a shape: only control-flow
/// tags that do not capture output, and no placeholder characters.
pub fn fits(source: &str) -> bool {
    if source.contains([OPEN, CLOSE]) {
        return false;
    }
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        let Some(len) = rest[start..].find("%}") else {
            return false;
        };
        let tag = rest[start + 2..start + len].trim_matches(['-', '+', '~']);
        let mut words = tag.split_whitespace();
        let ok = match words.next() {
            Some(
                "if" | "elif" | "else" | "endif" | "for" | "endfor" | "with" | "endwith" | "raw"
                | "endraw" | "break" | "continue",
            ) => true,
            // `{% set x = … %}` only: `{% set x %}…{% endset %}` captures.
            Some("set") => tag.contains('='),
            _ => false,
        };
        if !ok {
            return false;
        }
        rest = &rest[start + len + 2..];
    }
    true
}

/// The parsed texts of shape renders, shared by every thread.
#[derive(Default)]
pub struct Shapes {
    parsed: RwLock<FxHashMap<String, Arc<Shape>>>,
}

/// A shape render's text, parsed.
enum Shape {
    /// One object whose placeholders are all whole scalar values, where
    /// each stands (in the order the text writes them), and the object's
    /// text cut at each (none when the emitter hands it to serde-saphyr).
    Tree(Value, Vec<(Vec<Step>, usize)>, Option<yaml::Pieces>),
    /// Anything else: render and parse the usual way.
    Unfit,
}

impl Shapes {
    /// The object `template` renders for `ctx` and, when its shape has one,
    /// its canonical text ([`yaml::emit`]'s) written from the shape's: or
    /// `None` when it must be rendered and parsed the usual way (an error, an
    /// unfit text or value).
    pub fn render(
        &self,
        template: &minijinja::Template<'_, '_>,
        ctx: &minijinja::Value,
    ) -> Option<(Value, Option<String>)> {
        SLOTS.set(Some(Slots {
            values: Vec::new(),
            exact: true,
        }));
        let text = template.render(ctx);
        let slots = SLOTS.take().expect("the slots were set above");
        let text = text.ok().filter(|_| slots.exact)?;
        let known = self.parsed.read().ok()?.get(&text).cloned();
        let shape = match known {
            Some(shape) => shape,
            None => {
                let shape = Arc::new(Shape::of(&text, slots.values.len()));
                let mut parsed = self.parsed.write().ok()?;
                parsed.entry(text).or_insert(shape).clone()
            }
        };
        match &*shape {
            Shape::Tree(tree, places, pieces) => {
                let text = (pieces.as_ref())
                    .and_then(|p| p.fill(places.iter().map(|(_, slot)| &slots.values[*slot])));
                Some((fill(tree, places, slots.values), text))
            }
            Shape::Unfit => None,
        }
    }
}

impl Shape {
    fn of(text: &str, slots: usize) -> Shape {
        match yaml::parse_tree::<Value>(text) {
            Ok(tree) if tree.is_object() => {
                let mut places = Vec::new();
                if !find(&tree, slots, &mut Vec::new(), &mut places) {
                    return Shape::Unfit;
                }
                // `find` and the emitter both go through the object in its
                // order: the n-th hole is the n-th place.
                let is_place = |v: &Value| matches!(v, Value::String(s) if slot_of(s).is_some());
                let pieces = yaml::Pieces::of(&tree, is_place)
                    .filter(|pieces| pieces.holes() == places.len());
                Shape::Tree(tree, places, pieces)
            }
            _ => Shape::Unfit,
        }
    }
}

/// The slot a scalar stands for, when it is exactly a placeholder.
fn slot_of(s: &str) -> Option<usize> {
    let inner = s.strip_prefix(OPEN)?.strip_suffix(CLOSE)?;
    if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    inner.parse().ok()
}

/// A step down a tree: the n-th field of a mapping (in its order), or the
/// n-th item of a list. Positions, not keys: following them hashes nothing.
#[derive(Clone, Copy)]
enum Step {
    Field(usize),
    Item(usize),
}

/// Where each placeholder of `tree` stands, and its slot; false when a
/// placeholder character is anywhere but in a whole-scalar placeholder of a
/// slot that exists (in a key, inside other text).
fn find(
    tree: &Value,
    slots: usize,
    at: &mut Vec<Step>,
    places: &mut Vec<(Vec<Step>, usize)>,
) -> bool {
    let marked = |s: &str| s.contains([OPEN, CLOSE]);
    match tree {
        Value::String(s) => match slot_of(s) {
            Some(slot) if slot < slots => {
                places.push((at.clone(), slot));
                true
            }
            Some(_) => false,
            None => !marked(s),
        },
        Value::Array(items) => items.iter().enumerate().all(|(i, item)| {
            at.push(Step::Item(i));
            let fits = find(item, slots, at, places);
            at.pop();
            fits
        }),
        Value::Object(map) => map.iter().enumerate().all(|(i, (key, value))| {
            at.push(Step::Field(i));
            let fits = !marked(key) && find(value, slots, at, places);
            at.pop();
            fits
        }),
        _ => true,
    }
}

/// A copy of `tree` with each placeholder replaced by its value. Only the
/// nodes above a placeholder are new; the rest are the tree's own, shared.
fn fill(tree: &Value, places: &[(Vec<Step>, usize)], mut values: Vec<Value>) -> Value {
    // A slot is usually used once: the last use takes the value.
    let mut uses = vec![0usize; values.len()];
    for (_, slot) in places {
        uses[*slot] += 1;
    }
    let mut put = |slot: usize| {
        uses[slot] -= 1;
        match uses[slot] {
            0 => std::mem::take(&mut values[slot]),
            _ => values[slot].clone(),
        }
    };
    filled(tree, 0, places, &mut put)
}

/// `node` (at `depth` on the paths of `places`, which all pass through it,
/// in the tree's order) with its placeholders replaced.
fn filled(
    node: &Value,
    depth: usize,
    places: &[(Vec<Step>, usize)],
    put: &mut impl FnMut(usize) -> Value,
) -> Value {
    match places {
        [] => return node.clone(),
        [(path, slot)] if path.len() == depth => return put(*slot),
        _ => {}
    }
    // Child `i` with the places below it: the next ones whose step here is
    // `i` (most children have none, and are shared as they are).
    let mut rest = places;
    let mut child = |i: usize, value: &Value| {
        let n = (rest.iter())
            .take_while(|(path, _)| matches!(path[depth], Step::Field(j) | Step::Item(j) if j == i))
            .count();
        if n == 0 {
            return value.clone();
        }
        let (these, others) = rest.split_at(n);
        rest = others;
        filled(value, depth + 1, these, put)
    };
    match node {
        Value::Object(map) => Value::Object(map.with_values(&mut child)),
        Value::Array(items) => Value::Array(
            (items.iter().enumerate())
                .map(|(i, item)| child(i, item))
                .collect(),
        ),
        _ => unreachable!("the steps were found in this tree"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_del_is_every_byte_below_0x7f() {
        // Each length up to three words, each odd byte at each place.
        for len in 0..24 {
            for at in 0..len {
                for odd in [0x7e_u8, 0x7f, 0x80, 0xfe, 0xff, 0x00] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = odd;
                    assert_eq!(
                        below_del(&bytes),
                        bytes.iter().all(|b| *b < 0x7f),
                        "{bytes:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_placeholder_is_its_slot_between_the_marks_in_quotes() {
        for slot in [0, 7, 42, 255, 256, 1000, 123_456] {
            assert_eq!(placeholder_text(slot), format!("\"{OPEN}{slot}{CLOSE}\""));
        }
    }

    /// The usual render-then-parse and the shape render, side by side.
    fn both(source: &str, ctx: serde_json::Value) -> (Option<Value>, Value) {
        let mut env = minijinja::Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        env.set_formatter(format);
        env.add_template_owned("t.yaml", source.to_string())
            .unwrap();
        let template = env.get_template("t.yaml").unwrap();
        let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
        let usual = yaml::parse_tree(&template.render(&ctx).unwrap()).unwrap();
        let shapes = Shapes::default();
        let shaped = fits(source)
            .then(|| shapes.render(&template, &ctx))
            .flatten()
            .map(|(object, text)| {
                if let Some(text) = text {
                    assert_eq!(text, yaml::emit(&object), "{source}");
                }
                object
            });
        (shaped, usual)
    }

    #[test]
    fn a_shape_render_gives_the_usual_object() {
        let ctx = serde_json::json!({
            "name": "t1", "n": 3, "big": u64::MAX, "neg": -4, "on": "on", "none": null,
            "list": ["a", 1, true], "map": {"b": {"c": [1, 2]}, "a": "x"},
            "odd": "tab\there \"quoted\" \\ and 'single' <html> & ünïcode",
        });
        let source = "kind: X\nmetadata:\n  name: {{ name }}\nspec:\n  n: {{ n }}\n  big: {{ big }}\n  neg: {{ neg }}\n  on: {{ on }}\n  none: {{ none }}\n  flow: [{{ name }}, {{ list }}]\n  map: {{ map }}\n  odd: {{ odd }}\n  joined: {{ name ~ '-' ~ n }}\n{% for x in list %}\n  item{{ loop.index }}: {{ x }}\n{% endfor %}\n";
        // `item{{ loop.index }}` is a key: that text is unfit.
        let (shaped, usual) = both(source, ctx.clone());
        assert_eq!(shaped, None);
        let source = source
            .replace("  item{{ loop.index }}: {{ x }}", "  - {{ x }}")
            .replace("{% for", "  items:\n{% for");
        let (shaped, usual2) = both(&source, ctx);
        assert_ne!(usual, usual2);
        assert_eq!(shaped, Some(usual2));
    }

    #[test]
    fn values_inside_other_text_and_captures_take_the_usual_path() {
        let ctx = serde_json::json!({"name": "t1", "n": 1.5});
        for source in [
            "kind: X\nname: prefix-{{ name }}\n",
            "kind: X\ntext: |\n  name={{ name }}\n",
            "kind: X\n'{{ name }}': 1\n",
            "kind: X\nf: {{ n }}\n",
            "kind: X\nv: {{ name | safe }}\n",
            "kind: X\nlit: \"\u{E000}0\u{E001}\"\nv: {{ name }}\n",
        ] {
            let (shaped, _) = both(source, ctx.clone());
            assert_eq!(shaped, None, "{source}");
        }
        for source in [
            "{% set x %}{{ name }}{% endset %}kind: X\nl: {{ x | length }}\n",
            "{% filter upper %}kind: X\nv: {{ name }}\n{% endfilter %}",
            "{% macro m() %}{{ name }}{% endmacro %}kind: X\nv: {{ m() }}\n",
        ] {
            assert!(!fits(source), "{source}");
        }
        assert!(fits("{% set x = name %}{%- if x -%}\nkind: X\n{% endif %}"));
    }

    #[test]
    fn a_text_is_parsed_once_for_all_its_renders() {
        let mut env = minijinja::Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        env.set_formatter(format);
        env.add_template("t.yaml", "kind: X\nname: {{ name }}\n")
            .unwrap();
        let template = env.get_template("t.yaml").unwrap();
        let shapes = Shapes::default();
        for name in ["a", "b", "c"] {
            let ctx =
                minijinja::Value::from(minijinja::value::Serde(serde_json::json!({"name": name})));
            let (object, text) = shapes.render(&template, &ctx).unwrap();
            assert_eq!(object, crate::tree!({"kind": "X", "name": name}));
            assert_eq!(text.unwrap(), format!("kind: X\nname: {name}\n"));
        }
        assert_eq!(shapes.parsed.read().unwrap().len(), 1);
    }

    /// Any JSON value, with the strings YAML reads in odd ways well represented.
    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let odd = prop::sample::select(vec![
            "on",
            "<<",
            "~",
            "",
            "a: b",
            "- x",
            "#c",
            "'",
            "\"",
            "\u{85}",
            "\u{2028}",
            "\u{feff}x",
            "\u{7f}",
            "\u{E000}0\u{E001}",
            "\t",
            "\r\n",
            "{x}",
            "*a",
            "&a",
            "!t",
            "%",
            "@",
            "`",
        ])
        .prop_map(|s| Value::String(s.into()));
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<String>().prop_map(|s| Value::String(s.into())),
            odd,
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| Value::Array(items.into())),
                prop::collection::vec((any::<String>(), inner), 0..4)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn any_value_comes_back_as_the_usual_render_reads_it() {
        let mut env = minijinja::Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        env.set_formatter(format);
        let source = "kind: X\nv: {{ v }}\nflow: [{{ v }}, {k: {{ v }}}]\nitems:\n  - {{ v }}\ndeep:\n  a:\n    - b: {{ v }}\n      c: [[{{ v }}]]\n";
        env.add_template("t.yaml", source).unwrap();
        let template = env.get_template("t.yaml").unwrap();
        let shapes = Shapes::default();
        let (shaped, usual_only) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
        let written = std::cell::Cell::new(0);
        crate::fixed_runner(512, 7)
            .run(&any_value(), |v| {
                let ctx =
                    minijinja::Value::from(minijinja::value::Serde(serde_json::json!({"v": v})));
                let usual = yaml::parse_tree(&template.render(&ctx).unwrap()).ok();
                match shapes.render(&template, &ctx) {
                    Some((object, text)) => {
                        shaped.set(shaped.get() + 1);
                        // The text written from the shape's is the emitter's.
                        if let Some(text) = text {
                            written.set(written.get() + 1);
                            assert_eq!(text, yaml::emit(&object));
                        }
                        assert_eq!(Some(object), usual);
                    }
                    None => usual_only.set(usual_only.get() + 1),
                }
                Ok(())
            })
            .unwrap();
        // Both paths must be exercised, or the property says little.
        let (shaped, usual_only, written) = (shaped.get(), usual_only.get(), written.get());
        assert!(
            shaped > 100 && usual_only > 10 && written > 100,
            "{shaped} shaped ({written} written from the shape's text), {usual_only} not"
        );
    }
}
