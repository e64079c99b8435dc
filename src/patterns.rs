//! The `pattern` keyword of every schema kmetal compiles. Kubernetes names,
//! namespaces, label keys and label values are checked with four regular
//! expressions (apimachinery's DNS-1123 label and subdomain, qualified name
//! and label value), on every object: those four are matched here by their
//! definition, byte by byte, a few times faster than the regex engine. Any
//! other pattern is jsonschema's own `pattern`, unchanged.
//!
//! Both give the same answer and the same message (a property test holds
//! each matcher to its regular expression).

use jsonschema::json::{Json, Node};
use jsonschema::{Keyword, ValidationError, Validator};
use serde_json::{Map, Value};

/// apimachinery's DNS-1123 label (names of namespaces, services, …).
const LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// apimachinery's DNS-1123 subdomain (names of most objects).
const SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A label or annotation key: an optional subdomain and `/`, then a name.
const LABEL_KEY: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
/// A label value (its length is `maxLength`'s to check).
const LABEL_VALUE: &str = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

#[derive(Clone, Copy, Debug)]
enum Known {
    Label,
    Subdomain,
    LabelKey,
    LabelValue,
}

impl Known {
    fn of(pattern: &str) -> Option<Known> {
        Some(match pattern {
            LABEL => Known::Label,
            SUBDOMAIN => Known::Subdomain,
            LABEL_KEY => Known::LabelKey,
            LABEL_VALUE => Known::LabelValue,
            _ => return None,
        })
    }

    fn matches(self, s: &str) -> bool {
        let s = s.as_bytes();
        match self {
            Known::Label => label(s),
            Known::Subdomain => subdomain(s),
            Known::LabelKey => match s.iter().position(|b| *b == b'/') {
                Some(slash) => subdomain(&s[..slash]) && name(&s[slash + 1..]),
                None => name(s),
            },
            Known::LabelValue => s.is_empty() || name_chars(s),
        }
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn label(s: &[u8]) -> bool {
    run(&LABEL_STEPS, s) == ALNUM
}

/// Labels joined by dots.
fn subdomain(s: &[u8]) -> bool {
    run(&SUBDOMAIN_STEPS, s) == ALNUM
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?`
fn name(s: &[u8]) -> bool {
    s.len() <= 63 && name_chars(s)
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
fn name_chars(s: &[u8]) -> bool {
    run(&NAME_STEPS, s) == ALNUM
}

/// The states of the three matchers, each the class of the last byte read:
/// none fits (and none will), a letter or digit, a dash (or in a name `_`
/// or `.`), a dot (or nothing read yet).
const OUT: u8 = 0;
const ALNUM: u8 = 1;
const DASH: u8 = 2;
const DOT: u8 = 3;

/// A matcher's next state for each state and byte.
type Steps = [[u8; 256]; 4];

/// The state after `s`, from the start (`DOT`): one table lookup a byte,
/// no branch (`OUT` is never left; every state is below 4, which the mask
/// tells the compiler).
fn run(steps: &Steps, s: &[u8]) -> u8 {
    s.iter().fold(DOT, |state, &b| {
        steps[usize::from(state & 3)][usize::from(b)]
    })
}

/// A DNS label's steps (dots between labels when `dots`): a dash or dot may
/// not start or end a label, nor a dot follow a dash.
const fn dns_steps(dots: bool) -> Steps {
    let mut steps = [[OUT; 256]; 4];
    let mut state = 1;
    while state < 4 {
        let mut b = 0;
        while b < 256 {
            steps[state][b] = match b as u8 {
                b'a'..=b'z' | b'0'..=b'9' => ALNUM,
                b'-' if state != DOT as usize => DASH,
                b'.' if dots && state == ALNUM as usize => DOT,
                _ => OUT,
            };
            b += 1;
        }
        state += 1;
    }
    steps
}

/// A qualified name's steps: letters, digits, and `-`, `_`, `.` between them.
const fn name_steps() -> Steps {
    let mut steps = [[OUT; 256]; 4];
    let mut state = 1;
    while state < 4 {
        let mut b = 0;
        while b < 256 {
            steps[state][b] = match b as u8 {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => ALNUM,
                b'-' | b'_' | b'.' if state != DOT as usize => DASH,
                _ => OUT,
            };
            b += 1;
        }
        state += 1;
    }
    steps
}

static LABEL_STEPS: Steps = dns_steps(false);
static SUBDOMAIN_STEPS: Steps = dns_steps(true);
static NAME_STEPS: Steps = name_steps();

/// A known pattern, matched here.
struct Matched {
    known: Known,
    pattern: String,
}

impl<'i, F: Json> Keyword<'i, F> for Matched {
    fn validate(&self, instance: F::Node<'i>) -> Result<(), ValidationError<'i>> {
        match instance.as_string() {
            Some(s) if !self.known.matches(&s) => Err(ValidationError::custom(format!(
                r#"{} does not match "{}""#,
                Value::from(&*s),
                self.pattern
            ))),
            _ => Ok(()),
        }
    }

    fn is_valid(&self, instance: F::Node<'i>) -> bool {
        instance.as_string().is_none_or(|s| self.known.matches(&s))
    }
}

/// Any other pattern: a validator of `{"pattern": …}` alone.
struct Other<F: Json>(Validator<F>);

impl<'i, F: Json> Keyword<'i, F> for Other<F> {
    fn validate(&self, instance: F::Node<'i>) -> Result<(), ValidationError<'i>> {
        self.0.validate(instance)
    }

    fn is_valid(&self, instance: F::Node<'i>) -> bool {
        self.0.is_valid(instance)
    }
}

/// The `pattern` keyword's factory.
pub fn keyword<'a, F: Json + 'static>(
    _parent: &'a Map<String, Value>,
    value: &'a Value,
    _path: jsonschema::paths::Location,
) -> Result<Box<dyn for<'i> Keyword<'i, F>>, ValidationError<'a>> {
    if let Some(known) = value.as_str().and_then(Known::of) {
        return Ok(Box::new(Matched {
            known,
            pattern: value.as_str().unwrap_or_default().to_string(),
        }));
    }
    let alone = serde_json::json!({ "pattern": value });
    let validator = crate::openapi::options::<F>()
        .build(&alone)
        .map_err(ValidationError::to_owned)?;
    Ok(Box::new(Other(validator)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Texts near the four patterns' edges: their letters and the ones
    /// beside them, dots, slashes, dashes, lengths around 63.
    fn any_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a", "z", "A", "Z", "0", "9", "-", "_", ".", "/", "..", "a.b", "x-y", "k8s.io/", " ",
            "é", ":", "\n", "$", "^", "A_b",
        ]);
        let long = prop::sample::select(vec![
            String::new(),
            "a".repeat(61),
            "a".repeat(62),
            "a".repeat(63),
        ]);
        (long, prop::collection::vec(pieces, 0..6), any::<bool>()).prop_map(
            |(long, pieces, before)| match before {
                true => long + &pieces.concat(),
                false => pieces.concat() + &long,
            },
        )
    }

    #[test]
    fn each_matcher_agrees_with_its_regular_expression() {
        let known = [LABEL, SUBDOMAIN, LABEL_KEY, LABEL_VALUE];
        // jsonschema's own `pattern`, as every other pattern is matched.
        let regexes: Vec<_> = (known.iter())
            .map(|p| {
                let alone = serde_json::json!({ "pattern": p });
                (
                    Known::of(p).unwrap(),
                    crate::openapi::options().build(&alone).unwrap(),
                )
            })
            .collect();
        let is_match = |v: &Validator, text: &str| v.is_valid(&Value::from(text));
        let edges = [
            "",
            "a",
            "-",
            "a-",
            "-a",
            "a.b",
            "a..b",
            ".a",
            "a.",
            "k8s.io/name",
            "/name",
            "k8s.io/",
            "a/b/c",
            "A",
            "a_b",
            "_a",
            &"a".repeat(63),
            &"a".repeat(64),
            &format!("x.io/{}", "a".repeat(63)),
            &format!("x.io/{}", "a".repeat(64)),
        ];
        // Every text of up to four bytes from one byte of each kind: each
        // pair of adjacent kinds, at the start, inside and at the end.
        let mut short = vec![String::new()];
        for length in 1..=4 {
            let kinds = ['a', 'Z', '0', '-', '_', '.', '/', ' '];
            for mut pick in 0..kinds.len().pow(length) {
                short.push(
                    (0..length)
                        .map(|_| {
                            let kind = kinds[pick % kinds.len()];
                            pick /= kinds.len();
                            kind
                        })
                        .collect(),
                );
            }
        }
        for (known, regex) in &regexes {
            for text in edges
                .iter()
                .copied()
                .chain(short.iter().map(String::as_str))
            {
                assert_eq!(
                    known.matches(text),
                    is_match(regex, text),
                    "{known:?} {text:?}"
                );
            }
        }
        crate::fixed_runner(4000, 13)
            .run(&any_text(), |text| {
                for (known, regex) in &regexes {
                    prop_assert_eq!(known.matches(&text), is_match(regex, &text), "{:?}", known);
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_schema_gives_the_same_answers_and_messages_as_jsonschemas_pattern() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "pattern": SUBDOMAIN},
                "ns": {"type": "string", "pattern": LABEL},
                "labels": {
                    "type": "object",
                    "propertyNames": {"pattern": LABEL_KEY},
                    "additionalProperties": {"type": "string", "pattern": LABEL_VALUE},
                },
                "interval": {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"},
            },
        });
        let ours = crate::openapi::validator(&schema).unwrap();
        let theirs = crate::openapi::options().build(&schema).unwrap();
        let instances = [
            serde_json::json!({"name": "a.b", "ns": "x", "labels": {"k8s.io/a": "b", "c": ""}, "interval": "1m"}),
            serde_json::json!({"name": "A", "ns": "x-", "labels": {"/a": "-b", "c/d/e": "ok"}, "interval": "1"}),
            serde_json::json!({"name": 1, "labels": {"a": 2}}),
        ];
        for instance in &instances {
            assert_eq!(
                ours.is_valid(instance),
                theirs.is_valid(instance),
                "{instance}"
            );
            let messages = |v: &jsonschema::Validator| {
                let mut m: Vec<(String, String)> = (v.iter_errors(instance))
                    .map(|e| (e.instance_path().to_string(), e.to_string()))
                    .collect();
                m.sort();
                m
            };
            assert_eq!(messages(&ours), messages(&theirs), "{instance}");
        }
    }
}
