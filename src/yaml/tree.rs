//! One input file → a tree of spanned [`Node`]s (serde-saphyr reads it once)
//! → the raw spec types.
//!
//! Two ways down from the tree:
//! - [`recover`] walks it with the JSON Schema of the target type (the same
//!   schema `kmetal schema` prints) and reports every misfit at its place,
//!   in YAML's words: unknown keys, wrong types, missing keys. Each misfit is
//!   cut out, and the keys around it are still read, so one run reports every
//!   mistake of a file.
//! - [`NodeDeserializer`] turns a tree that fits into the serde types; spans
//!   reach [`crate::spec::raw::S`] through [`SPANNED`].

use crate::json::At;
use crate::json::Field;
use std::cell::Cell;
use std::fmt;

use super::place::Place;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, SourceLocation, codes, did_you_mean};

/// One YAML node and where it is written.
#[derive(Clone, Debug)]
pub struct Node {
    /// Where it is used: the alias it came through, else as `defined`.
    pub referenced: Place,
    /// Where it is written (for an alias, the anchored definition).
    pub defined: Place,
    pub kind: Kind,
}

/// What a node holds. Scalars keep YAML's reading of them; a plain scalar
/// read as text elsewhere is taken from the file as written.
#[derive(Clone, Debug)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let serde_saphyr::Spanned {
            value,
            referenced,
            defined,
        } = serde_saphyr::Spanned::<Kind>::deserialize(deserializer)?;
        Ok(Node {
            referenced: Place::of(&referenced),
            defined: Place::of(&defined),
            kind: value,
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Kind, E> {
        Ok(Kind::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Node, Node>()? {
            entries.push(entry);
        }
        Ok(Kind::Map(entries))
    }
}

/// The name under which [`crate::spec::raw::S`] asks for its span.
pub const SPANNED: &str = "$kmetal::Spanned";

thread_local! {
    /// The span of the node a `SPANNED` newtype is being read from: set right
    /// before the visitor runs, taken first thing by it.
    static SPAN: Cell<Option<(Place, Place)>> = const { Cell::new(None) };
}

/// The span [`NodeDeserializer`] set for the value being read, if any.
pub fn take_span() -> Option<(Place, Place)> {
    SPAN.with(Cell::take)
}

impl Node {
    /// This node's place with other content (not a copy of its own first).
    fn with(&self, kind: Kind) -> Node {
        Node {
            referenced: self.referenced,
            defined: self.defined,
            kind,
        }
    }

    /// Whether a mapping anywhere in this tree may hold one key twice: two
    /// scalar keys of the same text (`1`, `0x1`, `1.0` all read as one; a
    /// null is the empty text), or any key that is a list or a mapping.
    pub fn may_repeat_a_key(&self) -> bool {
        match &self.kind {
            Kind::Seq(items) => items.iter().any(Node::may_repeat_a_key),
            Kind::Map(entries) => {
                let mut keys = Vec::with_capacity(entries.len());
                for (key, value) in entries {
                    let text: std::borrow::Cow<'_, str> = match &key.kind {
                        Kind::Null => "".into(),
                        Kind::Bool(b) => b.to_string().into(),
                        Kind::Int(i) => i.to_string().into(),
                        Kind::Float(f) => f.to_string().into(),
                        Kind::Str(s) => s.as_str().into(),
                        Kind::Seq(_) | Kind::Map(_) => return true,
                    };
                    if value.may_repeat_a_key() {
                        return true;
                    }
                    keys.push(text);
                }
                keys.sort_unstable();
                keys.windows(2).any(|pair| pair[0] == pair[1])
            }
            _ => false,
        }
    }

    pub fn location(&self, file: &str) -> SourceLocation {
        self.referenced.in_file(file)
    }

    /// The scalar as written in `text` (for a plain scalar read as text).
    fn written<'t>(&self, text: &'t str) -> Option<&'t str> {
        let (start, len) = self.defined.bytes?;
        let (start, len) = (start as usize, len as usize);
        text.get(start..start + len)
    }

    /// The node in YAML's words, for "…, not <this>".
    fn described(&self, text: &str) -> String {
        match &self.kind {
            Kind::Null => "an empty value".into(),
            Kind::Bool(b) => format!("{b}"),
            Kind::Int(_) | Kind::Float(_) => {
                format!("the number {}", self.written(text).unwrap_or("?"))
            }
            Kind::Str(s) => format!("the text {:?}", shorten(s)),
            Kind::Seq(_) => "a list".into(),
            Kind::Map(_) => "a mapping".into(),
        }
    }

    fn is_scalar(&self) -> bool {
        !matches!(self.kind, Kind::Seq(_) | Kind::Map(_))
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

/// An input file's JSON Schema as the walk reads it: every `$ref` followed
/// and every keyword read out once per run, not at each node of each file
/// (each keyword of a JSON map is found by hashing it).
pub struct WalkSchema<'s> {
    /// The root's node first.
    nodes: Vec<SchemaNode<'s>>,
}

struct SchemaNode<'s> {
    /// The schema as written, `$ref`s followed: what messages are made of.
    raw: &'s Value,
    rule: Rule<'s>,
}

enum Rule<'s> {
    /// `anyOf` (schemars' `Option<T>`): a null where an option allows one,
    /// else the first option that is not only null; with none, anything.
    AnyOf {
        null: bool,
        chosen: Option<usize>,
    },
    Typed(Typed<'s>),
}

struct Typed<'s> {
    /// [`allows`] of each JSON type, as bits of [`TYPES`].
    types: u8,
    /// `enum`'s texts, when there is an `enum`.
    choices: Option<Vec<&'s str>>,
    /// `properties` → node.
    properties: FxHashMap<&'s str, usize>,
    /// The same keys in the schema's order (for help).
    known: Vec<&'s str>,
    /// `additionalProperties: false`.
    closed: bool,
    required: Vec<&'s str>,
    /// `items`, or anything.
    items: usize,
}

/// The JSON types, each with its bit of [`Typed::types`].
const TYPES: [(&str, u8); 7] = [
    ("null", NULL),
    ("object", OBJECT),
    ("array", ARRAY),
    ("string", STRING),
    ("integer", INTEGER),
    ("number", NUMBER),
    ("boolean", BOOLEAN),
];
const NULL: u8 = 1;
const OBJECT: u8 = 1 << 1;
const ARRAY: u8 = 1 << 2;
const STRING: u8 = 1 << 3;
const INTEGER: u8 = 1 << 4;
const NUMBER: u8 = 1 << 5;
const BOOLEAN: u8 = 1 << 6;

impl<'s> WalkSchema<'s> {
    pub fn new(root: &'s Value) -> WalkSchema<'s> {
        let mut compiling = Compiling {
            root,
            nodes: Vec::new(),
            done: FxHashMap::default(),
        };
        compiling.node(root);
        WalkSchema {
            nodes: compiling.nodes,
        }
    }
}

struct Compiling<'s> {
    root: &'s Value,
    nodes: Vec<SchemaNode<'s>>,
    /// Each schema (as written, before its `$ref`) → its node: a schema
    /// reached twice, or from inside itself, is compiled once.
    done: FxHashMap<*const Value, usize>,
}

impl<'s> Compiling<'s> {
    fn node(&mut self, schema: &'s Value) -> usize {
        if let Some(index) = self.done.get(&std::ptr::from_ref(schema)) {
            return *index;
        }
        let raw = resolve(self.root, schema);
        let index = self.nodes.len();
        self.nodes.push(SchemaNode {
            raw,
            rule: Rule::AnyOf {
                null: false,
                chosen: None,
            },
        });
        self.done.insert(std::ptr::from_ref(schema), index);
        let rule = match raw.field("anyOf").and_then(Value::as_array) {
            Some(options) => Rule::AnyOf {
                null: options.iter().any(|o| allows(o, "null")),
                chosen: (options.iter())
                    .find(|o| !allows(o, "null") || o.field("$ref").is_some())
                    .map(|o| self.node(o)),
            },
            None => {
                static ANYTHING: Value = Value::Bool(true);
                let properties = raw.field("properties").and_then(Value::as_object);
                let known: Vec<&'s str> = (properties.into_iter().flatten())
                    .map(|(k, _)| k.as_str())
                    .collect();
                let properties = (properties.into_iter().flatten())
                    .map(|(k, v)| (k.as_str(), self.node(v)))
                    .collect();
                Rule::Typed(Typed {
                    types: (TYPES.iter())
                        .filter(|(t, _)| allows(raw, t))
                        .fold(0, |bits, (_, bit)| bits | bit),
                    choices: (raw.field("enum").and_then(Value::as_array))
                        .map(|options| options.iter().filter_map(Value::as_str).collect()),
                    properties,
                    known,
                    closed: raw.field("additionalProperties") == Some(&Value::Bool(false)),
                    required: (raw.field("required").and_then(Value::as_array).into_iter())
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect(),
                    items: self.node(raw.field("items").unwrap_or(&ANYTHING)),
                })
            }
        };
        self.nodes[index].rule = rule;
        index
    }
}

/// `schema` with `$ref`s (into `root`) followed.
fn resolve<'s>(root: &'s Value, schema: &'s Value) -> &'s Value {
    let mut schema = schema;
    for _ in 0..16 {
        // schemars writes a described `$ref` as `allOf: [{$ref}]`.
        if let Some([only]) = schema
            .field("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            schema = only;
            continue;
        }
        let Some(reference) = schema.field("$ref").and_then(Value::as_str) else {
            break;
        };
        let pointer = reference.trim_start_matches('#');
        match root.at(pointer) {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

/// Reports of one file.
pub struct Recovery<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub diagnostics: Vec<Diagnostic>,
    /// The path of every part cut out (`metallb.pools[0].addresses`, `metalb`).
    pub cut: Vec<String>,
    schema: &'a WalkSchema<'a>,
}

/// A node cut out of the tree; why was reported.
pub struct Cut;

/// Where a node is in its file (`metallb.pools[0].addresses`), written out
/// only for a message or a cut: the walk passes through every node.
#[derive(Clone, Copy)]
pub enum Path<'p> {
    Top,
    Key(&'p Path<'p>, &'p str),
    Item(&'p Path<'p>, usize),
}

impl Path<'_> {
    pub fn render(&self) -> String {
        match self {
            Path::Top => String::new(),
            Path::Key(parent, name) => {
                let parent = parent.render();
                match parent.is_empty() {
                    true => name.to_string(),
                    false => [&parent, ".", name].concat(),
                }
            }
            Path::Item(parent, i) => [&parent.render(), "[", &i.to_string(), "]"].concat(),
        }
    }
}

impl<'a> Recovery<'a> {
    pub fn new(file: &'a str, text: &'a str, schema: &'a WalkSchema<'a>) -> Self {
        Recovery {
            file,
            text,
            diagnostics: Vec::new(),
            cut: Vec::new(),
            schema,
        }
    }

    fn report(&mut self, at: &Node, message: String, help: Option<String>) {
        let mut d = Diagnostic::error(codes::SPEC_SCHEMA, message).at(at.location(self.file));
        d.help = help;
        self.diagnostics.push(d);
    }

    /// The whole node, against the schema's root.
    pub fn walk_file(&mut self, node: Node) -> Result<Node, Cut> {
        self.walk(node, 0, Path::Top)
    }

    /// The node, with every part that misfits schema node `at` cut out and
    /// reported; `Err` when the node itself must go.
    /// The node is taken, and what is kept of it moved into the result.
    fn walk(&mut self, mut node: Node, at: usize, path: Path<'_>) -> Result<Node, Cut> {
        let schema: &'a SchemaNode<'a> = &self.schema.nodes[at];
        let typed = match &schema.rule {
            Rule::AnyOf { null, chosen } => {
                if matches!(node.kind, Kind::Null) && *null {
                    return Ok(node);
                }
                return match chosen {
                    Some(chosen) => self.walk(node, *chosen, path),
                    None => Ok(node),
                };
            }
            Rule::Typed(typed) => typed,
        };
        let allows = |bits: u8| typed.types & bits != 0;
        if matches!(node.kind, Kind::Null) && allows(NULL) {
            return Ok(node);
        }
        let fits = match &node.kind {
            Kind::Map(_) => allows(OBJECT),
            Kind::Seq(_) => allows(ARRAY),
            Kind::Str(_) => allows(STRING),
            // A plain scalar is text where text is wanted: `name: 0755`, `on`.
            Kind::Int(i) => {
                allows(STRING | NUMBER) || (allows(INTEGER) && in_range(schema.raw, *i))
            }
            Kind::Float(_) => allows(STRING | NUMBER),
            Kind::Bool(_) => allows(STRING | BOOLEAN),
            Kind::Null => false,
        };
        if !fits {
            let expected = expected_words(schema.raw);
            let what = self.name(&path.render());
            let found = node.described(self.text);
            self.report(
                &node,
                format!("{what} must be {expected}, not {found}"),
                None,
            );
            return Err(Cut);
        }
        if let (Some(valid), Kind::Str(s)) = (&typed.choices, &node.kind)
            && !valid.contains(&s.as_str())
        {
            let what = self.name(&path.render());
            self.report(
                &node,
                format!(
                    "{what} must be one of {}, not {:?}",
                    valid.join(", "),
                    shorten(s)
                ),
                Some(did_you_mean(s, what.as_str(), valid)),
            );
            self.cut.push(path.render());
            return Err(Cut);
        }
        // What is kept goes back into the node, at its own place.
        match std::mem::replace(&mut node.kind, Kind::Null) {
            Kind::Map(entries) => self.walk_map(&node, entries, typed, path),
            Kind::Seq(items) => {
                let kept = items
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, item)| self.walk(item, typed.items, Path::Item(&path, i)).ok())
                    .collect();
                node.kind = Kind::Seq(kept);
                Ok(node)
            }
            scalar => {
                node.kind = scalar;
                Ok(node)
            }
        }
    }

    /// `node` is the mapping's place (its entries taken out).
    fn walk_map(
        &mut self,
        node: &Node,
        entries: Vec<(Node, Node)>,
        schema: &'a Typed<'a>,
        path: Path<'_>,
    ) -> Result<Node, Cut> {
        let mut kept = Vec::with_capacity(entries.len());
        let mut cut_keys = Vec::new();
        let mut unknown = Vec::new();
        for (key, value) in entries {
            let name: std::borrow::Cow<'_, str> = match &key.kind {
                Kind::Str(s) => s.as_str().into(),
                _ if key.is_scalar() => key.written(self.text).unwrap_or_default().into(),
                _ => {
                    self.report(
                        &key,
                        format!("a key {} must be text", self.within(&path.render())),
                        None,
                    );
                    continue;
                }
            };
            let child = Path::Key(&path, &name);
            match schema.properties.get(&*name) {
                Some(property) => match self.walk(value, *property, child) {
                    Ok(value) => kept.push((key, value)),
                    Err(Cut) => cut_keys.push(name.into_owned()),
                },
                None if schema.closed => {
                    self.cut.push(child.render());
                    unknown.push(name.to_string());
                    let known = &schema.known;
                    let help = did_you_mean(&name, "key", known);
                    let within = self.within(&path.render());
                    self.report(
                        &key,
                        format!("unknown key {:?}{within}", shorten(&name)),
                        Some(match known.len() {
                            0 => help,
                            _ => format!("{help} (the keys here: {})", known.join(", ")),
                        }),
                    );
                }
                None => kept.push((key, value)),
            }
        }
        let mut whole = true;
        for name in schema.required.iter().copied() {
            let present = kept.iter().any(|(k, _)| key_is(k, name, self.text));
            if present {
                continue;
            }
            whole = false;
            // A key cut for its own mistake was reported there, and so was a
            // misspelling of it (`dnsName:` for `dnsNames:`).
            let misspelt = unknown
                .iter()
                .any(|u| did_you_mean(u, "key", &[name]).starts_with("did you mean"));
            if !cut_keys.iter().any(|k| k == name) && !misspelt {
                let within = self.within(&path.render());
                self.report(
                    node,
                    format!("{name} is required{within}"),
                    Some(format!("add `{name}:` here")),
                );
            }
        }
        if !whole {
            self.cut.push(path.render());
            return Err(Cut);
        }
        Ok(node.with(Kind::Map(kept)))
    }

    /// How a field is named in messages: its path, or "the value" at the top.
    fn name(&self, path: &str) -> String {
        if path.is_empty() {
            "the file".into()
        } else {
            path.to_string()
        }
    }

    fn within(&self, path: &str) -> String {
        if path.is_empty() {
            String::new()
        } else {
            format!(" in {path}")
        }
    }
}

fn key_is(key: &Node, name: &str, text: &str) -> bool {
    match &key.kind {
        Kind::Str(s) => s == name,
        _ => key.written(text) == Some(name),
    }
}

/// Whether `schema` admits JSON type `t` (schemars writes `type` as a string or a list).
fn allows(schema: &Value, t: &str) -> bool {
    match schema.field("type") {
        Some(Value::String(s)) => s == t || (t == "integer" && s == "number"),
        Some(Value::Array(list)) => list.iter().any(|v| v == t),
        // No type: anything goes (a `$ref` already followed, or `true`).
        None => !(t == "null" && schema.field("$ref").is_some()),
        Some(_) => false,
    }
}

fn in_range(schema: &Value, i: i128) -> bool {
    let minimum = schema
        .field("minimum")
        .and_then(Value::as_i64)
        .map(i128::from);
    let maximum = match schema.field("format").and_then(Value::as_str) {
        Some("uint32") => Some(i128::from(u32::MAX)),
        Some("uint8") => Some(i128::from(u8::MAX)),
        Some("uint16") => Some(i128::from(u16::MAX)),
        Some("int32") => Some(i128::from(i32::MAX)),
        _ => None,
    };
    minimum.is_none_or(|m| i >= m) && maximum.is_none_or(|m| i <= m)
}

/// A schema's type in YAML's words: text, a whole number, a list, a mapping.
fn expected_words(schema: &Value) -> String {
    let types: Vec<&str> = match schema.field("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => vec![],
    };
    let word = |t: &str| match t {
        "string" => "text".to_string(),
        "integer" if schema.field("minimum").and_then(Value::as_i64) == Some(0) => {
            "a whole number (0 or more)".to_string()
        }
        "integer" => "a whole number".to_string(),
        "number" => "a number".to_string(),
        "boolean" => "true or false".to_string(),
        "array" => "a list".to_string(),
        "object" => "a mapping".to_string(),
        other => other.to_string(),
    };
    match types.as_slice() {
        [] => "a value".into(),
        [one] => word(one),
        many => many
            .iter()
            .map(|t| word(t))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// Reads a [`Node`] tree into serde types. Strict: the first misfit is the
/// error (with its place and in YAML's words); [`Recovery::walk`] first for
/// every misfit at once.
pub struct NodeDeserializer<'n, 'p> {
    pub node: &'n Node,
    pub text: &'n str,
    /// Where the node is, written out only for an error.
    pub path: Path<'p>,
}

/// Why a tree does not fit a type, and where.
#[derive(Debug)]
pub struct Error {
    pub message: String,
    pub help: Option<String>,
    pub at: Option<Place>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            message: msg.to_string(),
            help: None,
            at: None,
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error::custom(format!(
            "must be {}, not {}",
            serde_expected(exp),
            serde_unexpected(&unexp)
        ))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error::invalid_type(unexp, exp)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error {
            message: format!(
                "must be one of {}, not {:?}",
                expected.join(", "),
                shorten(variant)
            ),
            help: Some(did_you_mean(variant, "value", expected)),
            at: None,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error {
            message: format!("unknown key {:?}", shorten(field)),
            help: Some(did_you_mean(field, "key", expected)),
            at: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            message: format!("{field} is required"),
            help: Some(format!("add `{field}:` here")),
            at: None,
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        Error::custom(format!("{field} is written twice"))
    }
}

fn serde_expected(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a string" | "string" | "a borrowed string" => "text".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        t if t.starts_with("struct ") => "a mapping".into(),
        t if t.starts_with("variant identifier") || t.starts_with("enum ") => {
            "one of the listed values".into()
        }
        "IP address" => "an IP address".into(),
        _ => text,
    }
}

fn serde_unexpected(unexp: &de::Unexpected<'_>) -> String {
    use de::Unexpected as U;
    match unexp {
        U::Bool(b) => format!("{b}"),
        U::Unsigned(n) => format!("the number {n}"),
        U::Signed(n) => format!("the number {n}"),
        U::Float(n) => format!("the number {n}"),
        U::Str(s) => format!("the text {:?}", shorten(s)),
        U::Unit | U::Option => "an empty value".into(),
        U::Seq => "a list".into(),
        U::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

impl<'n, 'p> NodeDeserializer<'n, 'p> {
    pub fn new(node: &'n Node, text: &'n str) -> Self {
        NodeDeserializer {
            node,
            text,
            path: Path::Top,
        }
    }

    fn child<'c>(&'c self, node: &'n Node, path: Path<'c>) -> NodeDeserializer<'n, 'c> {
        NodeDeserializer {
            node,
            text: self.text,
            path,
        }
    }

    /// Give an error without a place this node's place and path.
    fn placed(&self, mut e: Error) -> Error {
        if e.at.is_none() {
            e.at = Some(self.node.referenced);
            let path = self.path.render();
            if !path.is_empty() {
                e.message =
                    if e.message.starts_with("unknown key") || e.message.ends_with("is required") {
                        format!("{} in {}", e.message, path)
                    } else if e.message.starts_with("must be") {
                        format!("{} {}", path, e.message)
                    } else {
                        format!("{}: {}", path, e.message)
                    };
            }
        }
        e
    }
}

impl<'de, 'n, 'p> Deserializer<'de> for NodeDeserializer<'n, 'p> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.node.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Bool(b) => visitor.visit_bool(*b),
            Kind::Int(i) => match (u64::try_from(*i), i64::try_from(*i)) {
                (Ok(u), _) => visitor.visit_u64(u),
                (_, Ok(s)) => visitor.visit_i64(s),
                _ => visitor.visit_i128(*i),
            },
            Kind::Float(f) => visitor.visit_f64(*f),
            Kind::Str(s) => visitor.visit_str(s),
            Kind::Seq(items) => visitor.visit_seq(Items {
                de: &self,
                items: items.iter().enumerate(),
            }),
            Kind::Map(entries) => visitor.visit_map(Entries {
                de: &self,
                entries: entries.iter(),
                value: None,
            }),
        };
        result.map_err(|e| self.placed(e))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            Kind::Str(s) => visitor.visit_str(s).map_err(|e| self.placed(e)),
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => {
                let written = self.node.written(self.text).unwrap_or_default();
                visitor.visit_str(written).map_err(|e| self.placed(e))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.kind {
            Kind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED {
            SPAN.with(|s| s.set(Some((self.node.referenced, self.node.defined))));
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.kind {
            Kind::Str(s) => {
                let de: de::value::StrDeserializer<'_, Error> = s.as_str().into_deserializer();
                visitor.visit_enum(de).map_err(|e| self.placed(e))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct
    }
}

struct Items<'d, 'n, 'p> {
    de: &'d NodeDeserializer<'n, 'p>,
    items: std::iter::Enumerate<std::slice::Iter<'n, Node>>,
}

impl<'de> SeqAccess<'de> for Items<'_, '_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some((i, item)) => {
                let path = Path::Item(&self.de.path, i);
                seed.deserialize(self.de.child(item, path)).map(Some)
            }
            None => Ok(None),
        }
    }
}

struct Entries<'d, 'n, 'p> {
    de: &'d NodeDeserializer<'n, 'p>,
    entries: std::slice::Iter<'n, (Node, Node)>,
    /// The value of the key read last, and the key as written.
    value: Option<(&'n Node, &'n str)>,
}

impl<'de> MapAccess<'de> for Entries<'_, '_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let name = match &key.kind {
            Kind::Str(s) => s.as_str(),
            _ => key.written(self.de.text).unwrap_or_default(),
        };
        self.value = Some((value, name));
        let key_de = NodeDeserializer {
            node: key,
            text: self.de.text,
            path: self.de.path,
        };
        seed.deserialize(key_de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (value, name) = self
            .value
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("a value without a key"))?;
        seed.deserialize(self.de.child(value, Path::Key(&self.de.path, name)))
    }
}
