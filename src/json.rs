//! JSON pointers (RFC 6901) read without allocating: `serde_json`'s
//! `Value::pointer` builds two strings per token, and kmetal reads pointers
//! in every object of the fleet.

use serde_json::Value;

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
            if token.contains('~') {
                step(target, &token.replace("~1", "/").replace("~0", "~"))
            } else {
                step(target, token)
            }
        })
    }
}

fn step<'v>(target: &'v Value, token: &str) -> Option<&'v Value> {
    match target {
        Value::Object(map) => map.get(token),
        Value::Array(list) => index(token).and_then(|i| list.get(i)),
        _ => None,
    }
}

/// An array index as RFC 6901 writes it: digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
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
}
