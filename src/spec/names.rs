//! Checked names: DNS-1123 labels and subdomains.
//!
//! A [`Label`] is safe as a Kubernetes namespace, an object name and a path
//! segment (no `/`, no `.`, no `..`); nothing downstream re-checks it.

use std::fmt;

use serde::Serialize;

/// A DNS-1123 label: 1–63 of `[a-z0-9-]`, starting and ending alphanumeric.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Label(String);

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Subdomain(String);

fn label_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".into());
    }
    if s.len() > 63 {
        return Some(format!(
            "it is {} characters long; at most 63 are allowed",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "{c:?} is not allowed; use lowercase letters, digits and '-'"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("it must start and end with a letter or digit".into());
    }
    None
}

impl Label {
    /// Check `s`; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        match label_problem(s) {
            None => Ok(Label(s.to_string())),
            Some(problem) => Err(format!("{s:?} is not a DNS-1123 label ({problem})")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Subdomain {
    /// Check `s`; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let problem = if s.len() > 253 {
            Some(format!(
                "it is {} characters long; at most 253 are allowed",
                s.len()
            ))
        } else {
            s.split('.').find_map(label_problem)
        };
        match problem {
            None => Ok(Subdomain(s.to_string())),
            Some(problem) => Err(format!("{s:?} is not a DNS-1123 subdomain ({problem})")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Label> for Subdomain {
    fn from(label: Label) -> Self {
        Subdomain(label.0)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Subdomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A suggestion for turning `s` into a label, when one is obvious.
pub fn suggest_label(s: &str) -> Option<String> {
    let lowered: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c == '_' || c == '.' || c == ' ' {
                '-'
            } else {
                c
            }
        })
        .collect();
    let trimmed = lowered.trim_matches('-');
    let candidate: String = trimmed.chars().take(63).collect();
    (candidate != s && Label::parse(&candidate).is_ok())
        .then(|| candidate.trim_end_matches('-').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let ok = ["a", "acme", "on", "yes", "0755", "team-b", &"a".repeat(63)];
        for s in ok {
            assert!(Label::parse(s).is_ok(), "{s}");
        }
        let bad = [
            "",
            "-a",
            "a-",
            "A",
            "a.b",
            "a/b",
            "..",
            "a_b",
            "é",
            &"a".repeat(64),
        ];
        for s in bad {
            assert!(Label::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn subdomains() {
        for s in ["a", "a.b", "letsencrypt-prod", "kmetal-gitops.example"] {
            assert!(Subdomain::parse(s).is_ok(), "{s}");
        }
        for s in ["", "a..b", ".a", "a.", "A.b", &"a.".repeat(127)] {
            assert!(Subdomain::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest_label(&"é".repeat(100)),
            None,
            "cuts on characters, never inside one"
        );
        assert_eq!(
            suggest_label(&"A".repeat(100)).as_deref(),
            Some("a".repeat(63).as_str())
        );
        assert_eq!(suggest_label("Team_B").as_deref(), Some("team-b"));
        assert_eq!(suggest_label("ok"), None);
        assert_eq!(suggest_label("ü"), None);
    }
}
