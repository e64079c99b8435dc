//! Reading JSON trees cheaply. JSON pointers (RFC 6901) read without
//! allocating: `serde_json`'s `Value::pointer` builds two strings per token,
//! and kmetal reads pointers in every object of the fleet. Fields of small
//! maps found by looking at each key: `serde_json`'s maps hash every key
//! they are asked for (SipHash), which costs more than comparing a few keys.

use serde_json::{Map, Value};

/// A key or index as a JSON pointer token (RFC 6901): `~` as `~0`, `/` as `~1`.
pub fn escaped(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The API group of a Kubernetes `apiVersion`: `apps/v1` → `apps`, and the
/// core group's `v1` → "".
/// (A byte loop: versions are a few bytes, shorter than a searcher's set-up.)
pub fn api_group(api_version: &str) -> &str {
    match api_version.bytes().rposition(|b| b == b'/') {
        Some(slash) => &api_version[..slash],
        None => "",
    }
}

/// Up to this many fields, a map is searched key by key instead of hashed.
const SCANNED: usize = 16;

/// `value.field("kind")`: what `value.get("kind")` answers.
pub trait Field {
    fn field(&self, key: &str) -> Option<&Value>;
    fn field_mut(&mut self, key: &str) -> Option<&mut Value>;
    /// The field's value, or null when there is none: what `value["kind"]`
    /// answers.
    fn item(&self, key: &str) -> &Value {
        self.field(key).unwrap_or(&Value::Null)
    }
}

impl Field for Map<String, Value> {
    fn field(&self, key: &str) -> Option<&Value> {
        if self.len() <= SCANNED {
            self.iter().find_map(|(k, v)| (k == key).then_some(v))
        } else {
            self.get(key)
        }
    }
    fn field_mut(&mut self, key: &str) -> Option<&mut Value> {
        if self.len() <= SCANNED {
            self.iter_mut().find_map(|(k, v)| (k == key).then_some(v))
        } else {
            self.get_mut(key)
        }
    }
}

impl Field for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => map.field(key),
            _ => None,
        }
    }
    fn field_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Object(map) => map.field_mut(key),
            _ => None,
        }
    }
}

/// `value.at("/a/b")`: the same answers as `serde_json::Value::pointer`.
pub trait At {
    fn at(&self, pointer: &str) -> Option<&Value>;
}

impl At for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let tokens = pointer.strip_prefix('/')?;
        tokens.split('/').try_fold(self, |target, token| {
            if token.as_bytes().contains(&b'~') {
                step(target, &token.replace("~1", "/").replace("~0", "~"))
            } else {
                step(target, token)
            }
        })
    }
}

fn step<'v>(target: &'v Value, token: &str) -> Option<&'v Value> {
    match target {
        Value::Object(map) => map.field(token),
        Value::Array(list) => index(token).and_then(|i| list.get(i)),
        _ => None,
    }
}

/// An array index as RFC 6901 writes it: digits, no sign, no leading zero.
pub(crate) fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_core_group_is_empty() {
        assert_eq!(api_group("apps/v1"), "apps");
        assert_eq!(api_group("cluster.x-k8s.io/v1beta2"), "cluster.x-k8s.io");
        assert_eq!(api_group("v1"), "");
        assert_eq!(api_group(""), "");
    }

    #[test]
    fn answers_as_serde_json_does() {
        let v = json!({"a": {"b~c/d": [1, {"e": 2}], "": 3}, "l": [0, 1, 2]});
        for p in [
            "",
            "/",
            "/a",
            "/a/b~0c~1d",
            "/a/b~0c~1d/1/e",
            "/a/b~0c~1d/01",
            "/a/b~0c~1d/+1",
            "/a/",
            "/l/2",
            "/l/3",
            "/l/-",
            "a",
            "/x/y",
            "/a/b~0c~1d/0/z",
        ] {
            assert_eq!(v.at(p), v.pointer(p), "{p:?}");
        }
    }

    /// Small maps are searched key by key, large ones hashed: both give
    /// what `get` gives, the first key of its name included.
    #[test]
    fn fields_are_found_as_get_finds_them() {
        for size in [0, 1, 2, SCANNED - 1, SCANNED, SCANNED + 1, 3 * SCANNED] {
            let mut v: Value = (0..size)
                .map(|i| (format!("k{i}"), json!(i)))
                .collect::<Map<_, _>>()
                .into();
            for key in ["k0", "k1", "k15", "k16", "k17", "k40", "", "k"] {
                assert_eq!(v.field(key), v.get(key), "{size} {key:?}");
                assert_eq!(v.item(key), &v[key], "{size} {key:?}");
                let expected = v.get(key).cloned();
                assert_eq!(v.field_mut(key).map(|x| x.clone()), expected);
            }
            if let Some(x) = v.field_mut("k0") {
                *x = json!("changed");
                assert_eq!(v["k0"], "changed");
            }
        }
        assert_eq!(json!([1]).field("0"), None);
        assert_eq!(json!("s").item("k"), &Value::Null);
    }
}
