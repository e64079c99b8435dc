//! kmetal's own JSON tree, for the objects it makes by the thousand.
//!
//! `serde_json::Value` (with `preserve_order`) keeps each mapping as an
//! `IndexMap`: a hash table beside the entries, SipHash for every key
//! inserted, 112 bytes an entry. Kubernetes objects are small mappings read
//! by a handful of known keys, so here a mapping is its entries in order and
//! nothing else (56 bytes an entry, one allocation), and a key is found by
//! comparing keys. The answers are `serde_json`'s: [`Map::insert`] replaces
//! in place, [`Map::remove`] moves the last entry into the gap (as
//! `serde_json`'s `remove` does with `preserve_order`), equality ignores
//! the order of keys, indexing a missing field gives null.
//!
//! The topology expansion works on these trees, and `jsonschema` validates
//! them where they are ([`Compact`]); conversions from and to
//! `serde_json::Value` stand where a stage still uses the other.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::Arc;

use jsonschema::json::{self, NodeIdentity};
use serde_json::Number;

/// `serde_json::json!`, as one of these trees: for fixed shapes written in
/// code (values that are already trees go in with [`Map`] instead).
#[macro_export]
macro_rules! tree {
    ($($json:tt)+) => {
        $crate::value::Value::from(serde_json::json!($($json)+))
    };
}

#[derive(Clone, Debug, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Str),
    Array(List),
    Object(Map),
}

/// A sequence in a tree. Like a [`Map`], it is shared by every copy of the
/// tree until a copy changes it: copying an object made from a template
/// counts the template's nodes instead of copying them, and a change copies
/// only the nodes on its path ([`Arc::make_mut`]).
#[derive(Clone, Debug, Default)]
pub struct List(Arc<Vec<Value>>);

impl std::ops::Deref for List {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.0
    }
}

/// A change to a shared sequence copies it first (its items are counted,
/// not copied).
impl std::ops::DerefMut for List {
    fn deref_mut(&mut self) -> &mut Vec<Value> {
        Arc::make_mut(&mut self.0)
    }
}

impl List {
    /// Whether both are copies of one sequence (then they are equal).
    pub fn is_shared_with(&self, other: &List) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl From<Vec<Value>> for List {
    fn from(items: Vec<Value>) -> List {
        List(Arc::new(items))
    }
}

impl FromIterator<Value> for List {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> List {
        List(Arc::new(iter.into_iter().collect()))
    }
}

impl PartialEq for List {
    fn eq(&self, other: &List) -> bool {
        self.is_shared_with(other) || *self.0 == *other.0
    }
}

impl<'l> IntoIterator for &'l List {
    type Item = &'l Value;
    type IntoIter = std::slice::Iter<'l, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for List {
    type Item = Value;
    type IntoIter = std::vec::IntoIter<Value>;
    /// The items, moved out when this is the only copy, else counted.
    fn into_iter(self) -> Self::IntoIter {
        Arc::unwrap_or_clone(self.0).into_iter()
    }
}

/// Text in a tree: shared by every copy of the tree (a rendered object is
/// a copy of its template's parse), so copying one allocates nothing.
pub type Str = std::sync::Arc<str>;

/// A mapping's key as YAML reads it, before it is shared.
struct Key(Str);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(Key(s.into()))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// A mapping: its entries in order, no two with one key. Shared by every
/// copy of its tree until a copy changes it, as a [`List`] is.
#[derive(Clone, Debug, Default)]
pub struct Map {
    entries: Arc<Vec<(Str, Value)>>,
}

/// Whether two keys are one. Keys are short (`kind`, `metadata`,
/// `apiVersion`): up to 16 bytes they are compared as two overlapping
/// words each, in a few instructions where a call to `memcmp` costs tens,
/// and a mapping is searched by comparing keys.
#[inline(always)]
pub fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}

/// A key written in code (a literal or a constant), shared: its text is
/// allocated once for the program, where it is written, and each mapping
/// made in code holds a count of it rather than a copy.
#[macro_export]
macro_rules! key {
    ($text:expr) => {{
        static KEY: std::sync::OnceLock<$crate::value::Str> = std::sync::OnceLock::new();
        std::sync::Arc::clone(KEY.get_or_init(|| $crate::value::Str::from($text)))
    }};
}

/// What [`Map::members`] walks.
pub type Members<'a> = std::iter::Map<
    std::slice::Iter<'a, (Str, Value)>,
    fn(&'a (Str, Value)) -> (&'a str, &'a Value),
>;

static NULL: Value = Value::Null;

impl Map {
    pub fn new() -> Map {
        Map::default()
    }

    pub fn with_capacity(capacity: usize) -> Map {
        Map {
            entries: Arc::new(Vec::with_capacity(capacity)),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether both are copies of one mapping (then they are equal).
    pub fn is_shared_with(&self, other: &Map) -> bool {
        Arc::ptr_eq(&self.entries, &other.entries)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[inline]
    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| same_key(k, key))
    }

    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| same_key(k, key))
            .map(|(_, v)| v)
    }

    /// The entries, for a change: copied first when they are shared.
    #[inline]
    fn entries_mut(&mut self) -> &mut Vec<(Str, Value)> {
        Arc::make_mut(&mut self.entries)
    }

    #[inline]
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let at = self.position(key)?;
        Some(&mut self.entries_mut()[at].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// The field's value, or null when there is none.
    pub fn item(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }

    /// Set `key` to `value`: in its place when it is there (the old value
    /// is returned), else at the end.
    pub fn insert(&mut self, key: impl AsRef<str> + Into<Str>, value: Value) -> Option<Value> {
        match self.position(key.as_ref()) {
            Some(at) => Some(std::mem::replace(&mut self.entries_mut()[at].1, value)),
            None => {
                self.entries_mut().push((key.into(), value));
                None
            }
        }
    }

    /// Take `key` out; the last entry takes its place.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self.position(key)?;
        Some(self.entries_mut().swap_remove(at).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Str, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Str, &mut Value)> {
        self.entries_mut().iter_mut().map(|(k, v)| (&*k, v))
    }

    /// A copy with each value replaced by what `f` makes of it (given its
    /// position), the keys as they are, in their order.
    pub fn with_values(&self, mut f: impl FnMut(usize, &Value) -> Value) -> Map {
        let entries = (self.entries.iter().enumerate())
            .map(|(i, (key, value))| (Arc::clone(key), f(i, value)))
            .collect();
        Map {
            entries: Arc::new(entries),
        }
    }

    /// The entries as `(key, value)`.
    pub fn members(&self) -> Members<'_> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Str> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.entries_mut().iter_mut().map(|(_, v)| v)
    }

    /// The value of `key`, inserted as null when there is none.
    fn entry(&mut self, key: &str) -> &mut Value {
        let at = match self.position(key) {
            Some(at) => at,
            None => {
                self.entries_mut().push((key.into(), Value::Null));
                self.entries.len() - 1
            }
        };
        &mut self.entries_mut()[at].1
    }
}

impl PartialEq for Map {
    /// Two renders of one template hold their keys in one order: then the
    /// entries are compared pairwise, else each key is looked up.
    fn eq(&self, other: &Map) -> bool {
        if self.is_shared_with(other) {
            return true;
        }
        self.len() == other.len()
            && if self.keys().eq(other.keys()) {
                self.values().zip(other.values()).all(|(v, w)| v == w)
            } else {
                (self.iter()).all(|(k, v)| other.get(k).is_some_and(|w| v == w))
            }
    }
}

impl Map {
    /// A mapping of `fields`, whose keys are all different (fixed shapes
    /// written in code).
    /// With room for one more: a fixed shape often gets one optional field
    /// (`replicas`, a label), and growing the list copies it.
    pub fn of<const N: usize>(fields: [(Str, Value); N]) -> Map {
        let mut entries: Vec<(Str, Value)> = Vec::with_capacity(N + 1);
        entries.extend(fields);
        debug_assert!(
            (entries.iter().enumerate())
                .all(|(i, (k, _))| entries[..i].iter().all(|(j, _)| j != k)),
            "a key twice in a fixed shape"
        );
        Map {
            entries: Arc::new(entries),
        }
    }
}

impl<K: AsRef<str> + Into<Str>> FromIterator<(K, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Map {
        let iter = iter.into_iter();
        let mut map = Map::with_capacity(iter.size_hint().0);
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl<'m> IntoIterator for &'m Map {
    type Item = (&'m Str, &'m Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'m, (Str, Value)>,
        fn(&'m (Str, Value)) -> (&'m Str, &'m Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    /// The field `key` of a mapping.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }

    pub fn field_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.as_object_mut()?.get_mut(key)
    }

    /// The field's value, or null when there is none (or this is no mapping).
    pub fn item(&self, key: &str) -> &Value {
        self.field(key).unwrap_or(&NULL)
    }

    /// The value at a JSON pointer (RFC 6901), as `serde_json`'s `pointer`.
    pub fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let tokens = pointer.strip_prefix('/')?;
        fn step<'v>(target: &'v Value, token: &str) -> Option<&'v Value> {
            match target {
                Value::Object(map) => map.get(token),
                Value::Array(list) => crate::json::index(token).and_then(|i| list.get(i)),
                _ => None,
            }
        }
        let escaped = || {
            tokens.split('/').try_fold(self, |target, token| {
                step(target, &token.replace("~1", "/").replace("~0", "~"))
            })
        };
        // Pointers are short: a byte loop finds the slashes in fewer
        // instructions than a searcher set up for each, and meets a `~`
        // (an escape: the pointer is read again, decoded) on the way.
        let mut target = self;
        let mut rest = tokens;
        loop {
            let end = rest.bytes().position(|b| b == b'/' || b == b'~');
            if end.is_some_and(|at| rest.as_bytes()[at] == b'~') {
                return escaped();
            }
            // A token before any `~` reads the same decoded.
            target = step(target, &rest[..end.unwrap_or(rest.len())])?;
            match end {
                Some(slash) => rest = &rest[slash + 1..],
                None => return Some(target),
            }
        }
    }

    /// This value, leaving null in its place.
    pub fn take(&mut self) -> Value {
        std::mem::take(self)
    }
}

/// As JSON text, as `serde_json` writes it (for messages).
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        serde_json::Value::from(self).fmt(f)
    }
}

impl std::ops::Index<&str> for Value {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        self.item(key)
    }
}

/// `value["key"] = …`: a null becomes an empty mapping first, and a missing
/// field is added as null, as with `serde_json`.
impl std::ops::IndexMut<&str> for Value {
    fn index_mut(&mut self, key: &str) -> &mut Value {
        if self.is_null() {
            *self = Value::Object(Map::new());
        }
        match self {
            Value::Object(map) => map.entry(key),
            other => panic!("cannot set the field {key:?} of a non-mapping: {other:?}"),
        }
    }
}

/// JSON equality (a mapping's keys in any order); a tree is equal to itself
/// without a look inside (an unchanged file's object is the new one).
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        if std::ptr::eq(self, other) {
            return true;
        }
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq<bool> for Value {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s.into())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Number(n.into())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(n.into())
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Value {
        Value::Object(map)
    }
}

impl From<&serde_json::Value> for Value {
    fn from(value: &serde_json::Value) -> Value {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.clone()),
            serde_json::Value::String(s) => Value::String(s.as_str().into()),
            serde_json::Value::Array(items) => {
                Value::Array(items.iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => Value::Object(Map {
                // A serde_json map holds no key twice.
                entries: Arc::new(
                    (map.iter())
                        .map(|(k, v)| (Str::from(k.as_str()), Value::from(v)))
                        .collect(),
                ),
            }),
        }
    }
}

/// Every text is copied into shared text either way: an owned value
/// converts as a borrowed one does.
impl From<serde_json::Value> for Value {
    fn from(value: serde_json::Value) -> Value {
        Value::from(&value)
    }
}

impl From<&Value> for serde_json::Value {
    fn from(value: &Value) -> serde_json::Value {
        match value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(items) => serde_json::Value::Array(items.iter().map(Into::into).collect()),
            Value::Object(map) => serde_json::Value::Object(
                (map.iter())
                    .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
                    .collect(),
            ),
        }
    }
}

/// Shared text is copied out either way: an owned tree converts as a
/// borrowed one does.
impl From<Value> for serde_json::Value {
    fn from(value: Value) -> serde_json::Value {
        serde_json::Value::from(&value)
    }
}

/// As `serde_json` serializes its values: the YAML emitter's fallback, and
/// JSON text.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => n.serialize(serializer),
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    out.serialize_entry(&**k, v)?;
                }
                out.end()
            }
        }
    }
}

/// As `serde_json` reads a value: a repeated key's last value wins (in the
/// first one's place), a float that is not finite is null.
impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(Visitor)
    }
}

struct Visitor;

impl<'de> serde::de::Visitor<'de> for Visitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.into()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s.into()))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items.into()))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::with_capacity(access.size_hint().unwrap_or(0));
        while let Some((Key(k), v)) = access.next_entry::<Key, Value>()? {
            map.insert(k, v);
        }
        Ok(Value::Object(map))
    }
}

/// A JSON tree seen one node at a time: `serde_json`'s or kmetal's own, for
/// the code that reads both (CEL rules, the emitter).
pub trait JsonView: Sized + PartialEq {
    type Fields<'a>: ExactSizeIterator<Item = (&'a str, &'a Self)>
    where
        Self: 'a;
    fn view(&self) -> View<'_, Self>;
    /// The field `key` of a mapping.
    fn member(&self, key: &str) -> Option<&Self>;
    fn is_null(&self) -> bool {
        matches!(self.view(), View::Null)
    }
}

/// One node of a [`JsonView`].
pub enum View<'a, I: JsonView + 'a> {
    Null,
    Bool(bool),
    Number(&'a serde_json::Number),
    String(&'a str),
    Array(&'a [I]),
    Object(I::Fields<'a>),
}

type JsonFields<'a> = std::iter::Map<
    serde_json::map::Iter<'a>,
    fn((&'a String, &'a serde_json::Value)) -> (&'a str, &'a serde_json::Value),
>;

fn json_field<'a>(
    (key, value): (&'a String, &'a serde_json::Value),
) -> (&'a str, &'a serde_json::Value) {
    (key, value)
}

impl JsonView for serde_json::Value {
    type Fields<'a> = JsonFields<'a>;
    fn view(&self) -> View<'_, serde_json::Value> {
        match self {
            serde_json::Value::Null => View::Null,
            serde_json::Value::Bool(b) => View::Bool(*b),
            serde_json::Value::Number(n) => View::Number(n),
            serde_json::Value::String(s) => View::String(s),
            serde_json::Value::Array(items) => View::Array(items),
            serde_json::Value::Object(fields) => {
                View::Object(fields.iter().map(json_field as fn(_) -> _))
            }
        }
    }
    fn member(&self, key: &str) -> Option<&serde_json::Value> {
        crate::json::Field::field(self, key)
    }
}

impl JsonView for Value {
    type Fields<'a> = Members<'a>;
    fn view(&self) -> View<'_, Value> {
        match self {
            Value::Null => View::Null,
            Value::Bool(b) => View::Bool(*b),
            Value::Number(n) => View::Number(n),
            Value::String(s) => View::String(s),
            Value::Array(items) => View::Array(items),
            Value::Object(fields) => View::Object(fields.members()),
        }
    }
    fn member(&self, key: &str) -> Option<&Value> {
        Value::field(self, key)
    }
}

/// These trees as `jsonschema` instances, validated where they are.
pub struct Compact;

impl json::Json for Compact {
    type Node<'a> = &'a Value;
    type PreparedKey = String;
    type StringBuffer = ();
    const KEYS_PER_LOOKUP: usize = 2;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_string()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(&Value) -> T) -> T {
        f(&Value::String(string.into()))
    }
}

impl<'a> json::Node<'a, Compact> for &'a Value {
    type Object = &'a Map;
    type Array = &'a [Value];
    type Number = &'a Number;

    fn as_object(&self) -> Option<&'a Map> {
        Value::as_object(self)
    }

    fn as_array(&self) -> Option<&'a [Value]> {
        Value::as_array(self).map(Vec::as_slice)
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        Value::as_str(self).map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<&'a Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// `minLength` and `maxLength` count code points: a text has at most
    /// as many as bytes and at least a quarter as many, which decides most
    /// texts without counting.
    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let text = Value::as_str(self)?;
        let bytes = text.len() as u64;
        if bytes <= max && bytes.div_ceil(4) >= min {
            return Some(true);
        }
        if bytes < min {
            return Some(false);
        }
        Some((min..=max).contains(&(text.chars().count() as u64)))
    }

    fn as_boolean(&self) -> Option<bool> {
        Value::as_bool(self)
    }

    fn is_null(&self) -> bool {
        Value::is_null(self)
    }

    fn json_type(&self) -> jsonschema::JsonType {
        use jsonschema::JsonType;
        match self {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }

    /// `const` and `enum`: JSON equality, numbers by their value.
    fn equals_value(&self, expected: &serde_json::Value) -> bool {
        equals(self, expected)
    }

    fn to_value(&self) -> Cow<'a, serde_json::Value> {
        Cow::Owned(serde_json::Value::from(*self))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(std::ptr::from_ref::<Value>(self) as usize))
    }
}

/// JSON equality of a tree and a `serde_json` value, numbers compared by value.
fn equals(value: &Value, expected: &serde_json::Value) -> bool {
    match (value, expected) {
        (Value::Null, serde_json::Value::Null) => true,
        (Value::Bool(a), serde_json::Value::Bool(b)) => a == b,
        (Value::Number(a), serde_json::Value::Number(b)) => json::cmp::equal_numbers(a, b),
        (Value::String(a), serde_json::Value::String(b)) => **a == **b,
        (Value::Array(a), serde_json::Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equals(x, y))
        }
        (Value::Object(a), serde_json::Value::Object(b)) => {
            a.len() == b.len() && (a.iter()).all(|(k, v)| b.get(&**k).is_some_and(|w| equals(v, w)))
        }
        _ => false,
    }
}

impl<'a> json::Object<'a, Compact> for &'a Map {
    type Node = &'a Value;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        Map::len(self)
    }

    fn get(&self, key: &String) -> Option<&'a Value> {
        Map::get(self, key)
    }

    fn members(&self) -> Members<'a> {
        Map::members(self)
    }

    /// `propertyNames` sees each key as a text node sharing the key's text.
    fn try_for_each_name_node<B>(
        &self,
        (): &mut (),
        mut f: impl FnMut(&Value) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        for (key, _) in self.iter() {
            f(&Value::String(Arc::clone(key)))?;
        }
        ControlFlow::Continue(())
    }
}

impl<'a> json::Array<'a, Compact> for &'a [Value] {
    type Node = &'a Value;
    type ElementsIter = std::slice::Iter<'a, Value>;

    fn len(&self) -> usize {
        <[Value]>::len(self)
    }

    fn elements(&self) -> Self::ElementsIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_equal_exactly_when_their_texts_are() {
        // Every length up to past two words, every byte changed in turn,
        // and texts of other lengths sharing a prefix.
        for n in 0..=24usize {
            let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(same_key(&a, &a.clone()));
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'Z';
                let b = String::from_utf8(b).unwrap();
                assert!(!same_key(&a, &b), "{a:?} {b:?}");
            }
            assert!(!same_key(&a, &format!("{a}x")));
            assert!(!same_key(&format!("{a}x"), &a));
        }
    }

    #[test]
    fn a_key_written_in_code_is_one_text() {
        let at = || crate::key!("metadata");
        let (a, b) = (at(), at());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "metadata");
    }

    fn tree(v: serde_json::Value) -> Value {
        Value::from(v)
    }

    #[test]
    fn maps_answer_as_serde_json_does() {
        let mut a = tree(json!({"a": 1, "b": 2, "c": 3}));
        let mut b = json!({"a": 1, "b": 2, "c": 3});
        // Insert replaces in place; remove moves the last entry into the gap.
        a.as_object_mut().unwrap().insert("b", tree(json!(5)));
        b.as_object_mut().unwrap().insert("b".into(), json!(5));
        a.as_object_mut().unwrap().remove("a");
        b.as_object_mut().unwrap().remove("a");
        a["d"]["e"] = "f".into();
        b["d"]["e"] = "f".into();
        let back = serde_json::Value::from(&a);
        assert_eq!(back, b);
        let order: Vec<&str> = a.as_object().unwrap().keys().map(|k| &**k).collect();
        let expected: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(order, expected);
        assert_eq!(a["missing"], Value::Null);
        assert_eq!(a.at("/d/e"), Some(&Value::from("f")));
        assert_eq!(a.at("/b"), b.pointer("/b").map(Value::from).as_ref());
    }

    /// Pointers find what `serde_json`'s `pointer` finds, escapes and all.
    #[test]
    fn pointers_find_what_serde_json_finds() {
        let b = json!({"a": {"": {"x": 1}, "b/c": [10, {"m~n": 2}], "d": {"e": "f"}}, "": 3});
        let a = tree(b.clone());
        for pointer in [
            "",
            "/",
            "//",
            "/a",
            "/a/",
            "/a//x",
            "/a/b~1c",
            "/a/b~1c/0",
            "/a/b~1c/1/m~0n",
            "/a/b~1c/01",
            "/a/b~1c/2",
            "/a/b~1c/-",
            "/a/d/e",
            "/a/d/e/f",
            "/a/b/c",
            "a",
            "/a~",
            "/z",
            "/z/b~1c",
            "/a/d~0",
            "/a/b~1c~",
        ] {
            assert_eq!(
                a.at(pointer),
                b.pointer(pointer).map(Value::from).as_ref(),
                "{pointer:?}"
            );
        }
    }

    #[test]
    fn yaml_reads_and_writes_trees_as_it_does_serde_json() {
        let text = "a: 1\nb: [x, 2.5, null, true, -7]\nc: {d: e, \"f g\": []}\n";
        let theirs = crate::yaml::parse_value(text).unwrap();
        let ours: Value = crate::yaml::parse_tree(text).unwrap();
        assert_eq!(serde_json::Value::from(&ours), theirs);
        assert_eq!(
            serde_saphyr::to_string(&ours).unwrap(),
            serde_saphyr::to_string(&theirs).unwrap()
        );
        assert_eq!(ours.to_string(), theirs.to_string());
    }

    #[test]
    fn equality_ignores_key_order_as_serde_json_does() {
        let a = tree(json!({"x": [1, {"p": true, "q": null}], "y": "z"}));
        let b = tree(json!({"y": "z", "x": [1, {"q": null, "p": true}]}));
        assert_eq!(a, b);
        assert_ne!(a, tree(json!({"y": "z", "x": [1, {"q": null}]})));
    }

    #[test]
    fn schemas_validate_trees_as_they_validate_serde_json() {
        let schema = json!({
            "type": "object",
            "required": ["kind"],
            "additionalProperties": false,
            "properties": {
                "kind": {"enum": ["A", "B"]},
                "size": {"type": "integer", "minimum": 1, "const": 3},
                "tags": {"type": "array", "uniqueItems": true, "items": {"type": "string", "pattern": "^t"}},
                "meta": {"type": "object", "propertyNames": {"maxLength": 3}}
            }
        });
        let plain = crate::openapi::validator(&schema).unwrap();
        let compact = crate::openapi::validator_for::<Compact>(&schema).unwrap();
        for instance in [
            json!({"kind": "A", "size": 3, "tags": ["t1", "t2"], "meta": {"abc": 1}}),
            json!({"kind": "C"}),
            json!({"size": 3.0, "kind": "B"}),
            json!({"kind": "A", "size": 2}),
            json!({"kind": "A", "tags": ["t1", "t1"]}),
            json!({"kind": "A", "tags": ["x"]}),
            json!({"kind": "A", "meta": {"abcd": 1}}),
            json!({"kind": "A", "extra": 1}),
        ] {
            let t = tree(instance.clone());
            assert_eq!(
                plain.is_valid(&instance),
                compact.is_valid(&t),
                "{instance}"
            );
            let errors =
                |e: jsonschema::ValidationError<'_>| (e.instance_path().to_string(), e.to_string());
            let want: Vec<_> = plain.iter_errors(&instance).map(errors).collect();
            let got: Vec<_> = compact.iter_errors(&t).map(errors).collect();
            assert_eq!(want, got, "{instance}");
        }
    }

    /// Lengths are code points, whatever their bytes: every text of up to
    /// four characters of one to four bytes each, and each of them after
    /// four more, against every bound up to eight.
    #[test]
    fn text_lengths_are_judged_as_serde_json_texts_are() {
        let characters = ["a", "é", "€", "😀"];
        let mut texts = vec![String::new()];
        let mut start = 0;
        for _ in 0..4 {
            let end = texts.len();
            for i in start..end {
                for c in characters {
                    texts.push([texts[i].as_str(), c].concat());
                }
            }
            start = end;
        }
        let longer: Vec<String> = texts
            .iter()
            .map(|t| [t.as_str(), "a😀éa"].concat())
            .collect();
        texts.extend(longer);
        for min in 0..=8 {
            for max in min..=8 {
                let schema = json!({"type": "object", "properties": {
                    "name": {"minLength": min, "maxLength": max},
                    "labels": {"propertyNames": {"minLength": min, "maxLength": max}}
                }});
                let plain = crate::openapi::validator(&schema).unwrap();
                let compact = crate::openapi::validator_for::<Compact>(&schema).unwrap();
                for text in &texts {
                    for instance in [json!({"name": text}), json!({"labels": {text.as_str(): 1}})] {
                        assert_eq!(
                            plain.is_valid(&instance),
                            compact.is_valid(&tree(instance.clone())),
                            "{instance} against {min}..={max}"
                        );
                    }
                }
            }
        }
    }

    /// Trees are equal as `serde_json` values are, maps in one order or not.
    #[test]
    fn trees_are_equal_as_serde_json_values_are() {
        let values = [
            json!({"a": 1, "b": [1, {"c": null}]}),
            json!({"b": [1, {"c": null}], "a": 1}),
            json!({"a": 1, "b": [1, {"c": false}]}),
            json!({"a": 1, "c": [1, {"c": null}]}),
            json!({"a": 1}),
            json!({"a": 1.0}),
            json!([{"a": 1}, {"b": 2}]),
            json!([{"b": 2}, {"a": 1}]),
            json!("a"),
            json!(null),
            json!({}),
            json!([]),
        ];
        for a in &values {
            let ours = tree(a.clone());
            assert!(ours == ours);
            for b in &values {
                assert_eq!(ours == tree(b.clone()), a == b, "{a} {b}");
            }
        }
    }
}
