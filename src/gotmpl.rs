//! The subset of Go `text/template` that a ClusterClass's patches may use
//! (`enabledIf`, `valueFrom.template`), evaluated with the result Cluster API
//! gets.
//!
//! Supported: text; `{{ .a.b }}` (a missing key prints `<no value>`, as Go's
//! default `missingkey` does; a field of `null` is an error, as in Go);
//! `{{ eq X Y }}` with X and Y a field or a quoted string; `{{ if P }}…{{ end }}`
//! and `{{ else }}`, with Go's truth (false, 0, "", empty list or mapping,
//! missing). Numbers print as Go prints a float64 (`1e+06`). Anything else
//! (pipes, other functions, `range`, `with`, variables, trimming markers) is
//! refused when the stack is loaded, never evaluated approximately.

use std::borrow::Cow;

use crate::value::{Map, Value};

/// What a template reads: each top-level field from `own` when it is there,
/// else from `base` (an item's own variables over the Cluster's, as Cluster
/// API gives a MachineDeployment its overrides), without merging the two.
#[derive(Clone, Copy)]
pub struct Scope<'v> {
    pub own: &'v Map,
    pub base: Option<&'v Map>,
}

impl<'v> Scope<'v> {
    /// The fields of one mapping (none when `data` is not one).
    pub fn of(data: &'v Value) -> Scope<'v> {
        static EMPTY: std::sync::LazyLock<Map> = std::sync::LazyLock::new(Map::new);
        Scope {
            own: data.as_object().unwrap_or(&EMPTY),
            base: None,
        }
    }

    /// The top-level field `key`.
    pub fn field(&self, key: &str) -> Option<&'v Value> {
        (self.own.get(key)).or_else(|| self.base.and_then(|base| base.get(key)))
    }
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template(Vec<Node>);

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Text(String),
    Print(Expr),
    If(Expr, Vec<Node>, Vec<Node>),
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Field(Vec<String>),
    Literal(String),
    Eq(Box<Expr>, Box<Expr>),
}

/// Parse `text`; the error says which construct is outside the subset.
pub fn parse(text: &str) -> Result<Template, String> {
    let mut actions = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        actions.push(Token::Text(rest[..start].to_string()));
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "an action `{{` is not closed with `}}`".to_string())?;
        let inner = &after[..end];
        if inner.starts_with('-') || inner.ends_with('-') {
            return Err("trim markers ({{- and -}}) are not supported".into());
        }
        actions.push(Token::Action(inner.trim().to_string()));
        rest = &after[end + 2..];
    }
    actions.push(Token::Text(rest.to_string()));
    let mut tokens = actions.into_iter().peekable();
    let (nodes, stop) = block(&mut tokens)?;
    match stop {
        None => Ok(Template(nodes)),
        Some(word) => Err(format!("{{{{ {word} }}}} without a matching {{{{ if }}}}")),
    }
}

enum Token {
    Text(String),
    Action(String),
}

/// Nodes up to the end, or up to an `else`/`end` (returned).
fn block(
    tokens: &mut std::iter::Peekable<std::vec::IntoIter<Token>>,
) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = Vec::new();
    while let Some(token) = tokens.next() {
        let action = match token {
            Token::Text(text) if text.is_empty() => continue,
            Token::Text(text) => {
                nodes.push(Node::Text(text));
                continue;
            }
            Token::Action(action) => action,
        };
        if action == "else" || action == "end" {
            return Ok((nodes, Some(action)));
        }
        if let Some(condition) = action.strip_prefix("if ") {
            let condition = expr(condition.trim())?;
            let (then, stop) = block(tokens)?;
            let otherwise = match stop.as_deref() {
                Some("end") => Vec::new(),
                Some("else") => match block(tokens)? {
                    (otherwise, Some(end)) if end == "end" => otherwise,
                    _ => return Err("{{ if … }}{{ else }} is not closed with {{ end }}".into()),
                },
                _ => return Err("{{ if … }} is not closed with {{ end }}".into()),
            };
            nodes.push(Node::If(condition, then, otherwise));
            continue;
        }
        nodes.push(Node::Print(expr(&action)?));
    }
    Ok((nodes, None))
}

fn expr(text: &str) -> Result<Expr, String> {
    let words = words(text)?;
    match words.as_slice() {
        [one] => operand(one),
        [eq, a, b] if eq == "eq" => Ok(Expr::Eq(Box::new(operand(a)?), Box::new(operand(b)?))),
        _ => Err(format!(
            "{{{{ {text} }}}} is outside the template subset kmetal expands exactly (a field such as .a.b, a quoted string, or eq of two of them)"
        )),
    }
}

/// Space-separated words, a double-quoted string being one.
fn words(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| format!("unclosed string in {{{{ {text} }}}}"))?;
            if quoted[..end].contains('\\') {
                return Err("escapes in template strings are not supported".into());
            }
            out.push(format!("\"{}\"", &quoted[..end]));
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    Ok(out)
}

fn operand(word: &str) -> Result<Expr, String> {
    if let Some(s) = word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        return Ok(Expr::Literal(s.to_string()));
    }
    let path = word.strip_prefix('.').ok_or_else(|| {
        format!(
            "{word:?} is outside the template subset (only fields such as .a.b and quoted strings)"
        )
    })?;
    let segments: Vec<String> = path.split('.').map(str::to_string).collect();
    let valid =
        |s: &String| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !segments.iter().all(valid) {
        return Err(format!("{word:?} is not a field path such as .a.b"));
    }
    Ok(Expr::Field(segments))
}

/// What evaluating an operand gives: a value, or a missing key.
enum Got<'v> {
    Value(&'v Value),
    Missing,
}

impl Template {
    /// Render with `data` (the patch's variables, `builtin` among them).
    pub fn render(&self, data: Scope<'_>) -> Result<String, String> {
        let mut out = String::new();
        render(&self.0, data, &mut out)?;
        Ok(out)
    }
}

fn render(nodes: &[Node], data: Scope<'_>, out: &mut String) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Print(e) => print(&evaluate(e, data)?, out),
            Node::If(condition, then, otherwise) => {
                let branch = if truth(&evaluate(condition, data)?) {
                    then
                } else {
                    otherwise
                };
                render(branch, data, out)?;
            }
        }
    }
    Ok(())
}

/// The result of an expression: a value (borrowed from the data, or a
/// string or a boolean made here), or a missing key.
enum Evaluated<'v> {
    Got(Cow<'v, Value>),
    Missing,
}

fn evaluate<'v>(e: &Expr, data: Scope<'v>) -> Result<Evaluated<'v>, String> {
    match e {
        Expr::Literal(s) => Ok(Evaluated::Got(Cow::Owned(Value::from(s.as_str())))),
        Expr::Field(path) => Ok(match field(data, path)? {
            Got::Value(v) => Evaluated::Got(Cow::Borrowed(v)),
            Got::Missing => Evaluated::Missing,
        }),
        Expr::Eq(a, b) => {
            let (a, b) = (evaluate(a, data)?, evaluate(b, data)?);
            match (a, b) {
                (Evaluated::Got(a), Evaluated::Got(b)) => {
                    let (a, b) = (a.as_ref(), b.as_ref());
                    let kind = |v: &Value| match v {
                        Value::String(_) => 0,
                        Value::Number(_) => 1,
                        Value::Bool(_) => 2,
                        _ => 3,
                    };
                    if kind(a) != kind(b) || kind(a) == 3 {
                        return Err(format!(
                            "eq of {a} and {b}: incompatible types for comparison"
                        ));
                    }
                    let equal = match (a.as_f64(), b.as_f64()) {
                        (Some(x), Some(y)) => x == y,
                        _ => a == b,
                    };
                    Ok(Evaluated::Got(Cow::Owned(Value::Bool(equal))))
                }
                _ => Err("eq of a missing field: incompatible types for comparison".into()),
            }
        }
    }
}

fn field<'v>(data: Scope<'v>, path: &[String]) -> Result<Got<'v>, String> {
    // A path has at least one segment (the parse refuses a bare `.`).
    let Some(mut at) = path.first().and_then(|top| data.field(top)) else {
        return Ok(Got::Missing);
    };
    for (i, segment) in path.iter().enumerate().skip(1) {
        match at {
            Value::Object(map) => match map.get(segment) {
                Some(next) => at = next,
                None => return Ok(Got::Missing),
            },
            Value::Null => {
                return Err(format!(
                    "nil pointer evaluating .{}: .{} is null",
                    path.join("."),
                    path[..i].join(".")
                ));
            }
            _ => {
                return Err(format!(
                    "can't evaluate field {segment} of .{}, which is not a mapping",
                    path[..i].join(".")
                ));
            }
        }
    }
    Ok(Got::Value(at))
}

fn truth(r: &Evaluated<'_>) -> bool {
    match r {
        Evaluated::Missing => false,
        Evaluated::Got(v) => match v.as_ref() {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
        },
    }
}

/// A value as Go prints it with the default format (`%v`).
/// Go's `%v` of the result, written onto `out`.
fn print(r: &Evaluated<'_>, out: &mut String) {
    match r {
        Evaluated::Missing => out.push_str("<no value>"),
        Evaluated::Got(v) => print_value(v, out),
    }
}

fn print_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::String(s) => out.push_str(s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_float(n.as_f64().unwrap_or_default())),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Go's fmt prints a map's entries sorted by key.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push_str("map[");
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                print_value(v, out);
            }
            out.push(']');
        }
    }
}

/// Go's `%v` of a float64: the shortest digits that round-trip, in exponent
/// form when the exponent is below -4 or at least 6 (strconv's 'g' with the
/// shortest precision).
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as Go does.
    let e = format!("{f:e}");
    let (mantissa, exponent) = e.split_once('e').unwrap_or((&e, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree as json;

    #[test]
    fn renders_the_subset_as_go_does() {
        let data = json!({"machineSize": "small", "n": 1000000, "three": 3, "c": {"network": {"certSANs": []}}, "nil": null, "builtin": {"cluster": {"name": "acme"}}, "list": ["a", 1, true, null, [], {}], "m": {"b": ["x"], "a": {"z": 1, "y": 2}}});
        let cases = [
            ("{{ eq .machineSize \"small\" }}", "true"),
            ("{{ eq .machineSize \"large\" }}", "false"),
            ("{{ if .c.network.certSANs }}true{{ end }}", ""),
            ("{{ if .machineSize }}yes{{ else }}no{{ end }}", "yes"),
            ("{{ .builtin.cluster.name }}-x", "acme-x"),
            ("{{ .missing.key }}", "<no value>"),
            ("{{ .n }} {{ .three }}", "1e+06 3"),
            // `%v` of a list and of a map (keys sorted, as Go's fmt does).
            ("{{ .list }}", "[a 1 true <nil> [] map[]]"),
            ("{{ .m }}", "map[a:map[y:2 z:1] b:[x]]"),
        ];
        for (template, expected) in cases {
            let t = parse(template).unwrap_or_else(|e| panic!("{template}: {e}"));
            assert_eq!(t.render(Scope::of(&data)).unwrap(), expected, "{template}");
        }
        assert!(
            parse("{{ .nil.x }}")
                .unwrap()
                .render(Scope::of(&data))
                .is_err()
        );
        assert!(
            parse("{{ eq .three \"3\" }}")
                .unwrap()
                .render(Scope::of(&data))
                .is_err()
        );
        // Own fields over the base's, each whole; the rest from the base.
        let own = json!({"machineSize": "large", "c": {}});
        let scope = Scope {
            own: own.as_object().unwrap(),
            base: data.as_object(),
        };
        let t = parse("{{ .machineSize }} {{ .c.network }} {{ .builtin.cluster.name }}").unwrap();
        assert_eq!(t.render(scope).unwrap(), "large <no value> acme");
    }

    #[test]
    fn refuses_what_it_cannot_evaluate_exactly() {
        for template in [
            "{{ .a | upper }}",
            "{{ range .a }}x{{ end }}",
            "{{- .a }}",
            "{{ printf \"%s\" .a }}",
            "{{ if .a }}x",
            "{{ end }}",
            "{{ $x := 1 }}",
            "{{ .a",
        ] {
            assert!(parse(template).is_err(), "{template}");
        }
    }
}
