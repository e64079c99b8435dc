//! Field-level checks shared by the site and tenant checks: each parses one
//! spanned value, or pushes a diagnostic at it and returns `None` so that the
//! caller skips the entry and goes on.

use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{Defaulted, Host};
use super::names::{Label, Subdomain, suggest_label};
use super::raw::S;
use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes, did_you_mean};
use crate::network::{self, AddressError};
use crate::yaml::location_of;

pub const API_VERSION: &str = "kmetal.io/v1alpha1";
/// Longest free-text value (a URL, a path), in bytes.
pub const TEXT_MAX: usize = 1024;
/// Longest host name, in bytes (DNS).
pub const HOST_MAX: usize = 253;

/// Characters no free-text value may hold: C0 (tab and newline included), DEL
/// and C1 controls, zero-width and bidi formatting characters, the Unicode
/// line and paragraph separators and the byte-order mark. They end lines,
/// hide text or reorder it on screen, and no kmetal value needs them.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Checks values of one input file, collecting diagnostics.
pub struct FileChecker<'a> {
    pub file: &'a str,
    pub diagnostics: &'a mut Diagnostics,
}

impl FileChecker<'_> {
    pub fn location<T>(&self, value: &S<T>) -> SourceLocation {
        location_of(self.file, value)
    }

    /// `check`'s result, placed where `value` was written.
    pub fn placed<T, U>(
        &mut self,
        value: &S<U>,
        check: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<Defaulted<T>> {
        let location = Some(self.location(value));
        check(self).map(|value| Defaulted { value, location })
    }

    pub fn error<T>(
        &mut self,
        code: &'static str,
        at: &S<T>,
        message: String,
        help: Option<String>,
    ) {
        let mut diagnostic = Diagnostic::error(code, message).at(self.location(at));
        diagnostic.help = help;
        self.diagnostics.push(diagnostic);
    }

    /// `apiVersion` and `kind` of a kmetal input file.
    pub fn header(&mut self, api_version: &S<String>, kind: &S<String>, expected_kind: &str) {
        if api_version.value != API_VERSION {
            self.error(
                codes::SPEC_API_VERSION,
                api_version,
                format!("apiVersion {:?} is not one kmetal reads", api_version.value),
                Some(format!("write `apiVersion: {API_VERSION}`")),
            );
        }
        if kind.value != expected_kind {
            self.error(
                codes::SPEC_API_VERSION,
                kind,
                format!(
                    "kind {:?} found where a {expected_kind} is expected",
                    kind.value
                ),
                Some(format!("write `kind: {expected_kind}`")),
            );
        }
    }

    /// A free-text value (a URL, an email, a path): at most `max_len` bytes,
    /// no [hidden](is_hidden) characters. Checked before any other check of
    /// the value, so that messages never quote a huge or invisible value.
    pub fn text(&mut self, value: &S<String>, what: &str, max_len: usize) -> Option<String> {
        let text = &value.value;
        let (message, help) = if text.len() > max_len {
            (
                format!(
                    "{what} is {} bytes long; at most {max_len} are allowed",
                    text.len()
                ),
                format!("shorten it to at most {max_len} bytes"),
            )
        } else if let Some((at, c)) = text.char_indices().find(|(_, c)| is_hidden(*c)) {
            (
                format!(
                    "{what} holds the control or invisible character U+{:04X} at byte {at}",
                    u32::from(c)
                ),
                "write it on one line, with visible characters only".to_string(),
            )
        } else {
            return Some(text.clone());
        };
        self.error(codes::SPEC_INVALID_VALUE, value, message, Some(help));
        None
    }

    pub fn label(&mut self, value: &S<String>, what: &str) -> Option<Label> {
        Label::parse(&value.value)
            .map_err(|problem| {
                // Only ASCII can become a label (and `suggest_label` cuts at
                // a byte index, which would split a wider character).
                let help = (value.value.is_ascii())
                    .then(|| suggest_label(&value.value))
                    .flatten()
                    .map(|s| format!("use {s:?}"))
                    .or_else(|| Some("use lowercase letters, digits and '-', at most 63".into()));
                self.error(
                    codes::SPEC_INVALID_NAME,
                    value,
                    format!("{what}: {problem}"),
                    help,
                );
            })
            .ok()
    }

    pub fn subdomain(&mut self, value: &S<String>, what: &str) -> Option<Subdomain> {
        Subdomain::parse(&value.value)
            .map_err(|problem| {
                self.error(
                    codes::SPEC_INVALID_NAME,
                    value,
                    format!("{what}: {problem}"),
                    Some("use lowercase letters, digits, '-' and '.', at most 253".into()),
                );
            })
            .ok()
    }

    fn address<T>(
        &mut self,
        value: &S<String>,
        what: &str,
        parsed: Result<T, AddressError>,
    ) -> Option<T> {
        parsed
            .map_err(|e| {
                self.error(
                    codes::NETWORK_INVALID_ADDRESS,
                    value,
                    format!("{what}: {}", e.message),
                    e.help,
                );
            })
            .ok()
    }

    pub fn cidr(&mut self, value: &S<String>, what: &str) -> Option<IpNet> {
        self.address(value, what, network::parse_cidr(&value.value))
    }

    pub fn ip(&mut self, value: &S<String>, what: &str) -> Option<IpAddr> {
        self.address(value, what, network::parse_ip(&value.value))
    }

    /// An IP address or a DNS name.
    pub fn host(&mut self, value: &S<String>, what: &str) -> Option<Host> {
        if let Ok(ip) = network::parse_ip(&value.value) {
            return Some(Host::Ip(ip));
        }
        match Subdomain::parse(&value.value) {
            Ok(name) => Some(Host::Name(name)),
            Err(_) => {
                self.error(
                    codes::SPEC_INVALID_VALUE,
                    value,
                    format!(
                        "{what}: {:?} is neither an IP address nor a DNS name",
                        value.value
                    ),
                    Some(
                        "write an address such as 10.10.0.10 or a name such as api.example.com"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    /// A reference that must be one of `valid`; suggests the closest one.
    pub fn reference<'v>(
        &mut self,
        value: &S<String>,
        what: &str,
        valid: impl IntoIterator<Item = &'v str>,
    ) -> bool {
        let valid: Vec<&str> = valid.into_iter().collect();
        if valid.contains(&value.value.as_str()) {
            return true;
        }
        let diagnostic = unknown_reference(&value.value, what, &valid).at(self.location(value));
        self.diagnostics.push(diagnostic);
        false
    }
}

/// "unknown X", with the closest valid name or the list of valid ones.
pub fn unknown_reference(value: &str, what: &str, valid: &[&str]) -> Diagnostic {
    Diagnostic::error(
        codes::SPEC_UNKNOWN_REFERENCE,
        format!("unknown {what} {value:?}"),
    )
    .help(did_you_mean(value, what, valid))
}

/// A site default that is not valid for a tenant's stack, reported at the default.
pub fn site_default_error(
    value: &str,
    at: SourceLocation,
    what: &str,
    valid: &[&str],
) -> Diagnostic {
    let diagnostic = unknown_reference(value, what, valid);
    Diagnostic {
        message: format!("{} (site default)", diagnostic.message),
        ..diagnostic
    }
    .at(at)
}

/// Remembers the first place each name was used and reports later uses.
pub struct UniqueNames {
    what: &'static str,
    scope: String,
    /// Only looked up, never walked: a hash table (no order to keep).
    seen: rustc_hash::FxHashMap<String, SourceLocation>,
}

impl UniqueNames {
    pub fn new(what: &'static str, scope: impl Into<String>) -> Self {
        UniqueNames {
            what,
            scope: scope.into(),
            seen: rustc_hash::FxHashMap::default(),
        }
    }

    /// Record `name` at `location`; `false` (and a diagnostic) if it was taken.
    pub fn insert(
        &mut self,
        name: &str,
        location: SourceLocation,
        diagnostics: &mut Diagnostics,
    ) -> bool {
        // One search of the names seen (this runs for every tenant).
        match self.seen.entry(name.to_string()) {
            std::collections::hash_map::Entry::Occupied(first) => {
                diagnostics.push(
                    Diagnostic::error(
                        codes::SPEC_DUPLICATE_NAME,
                        format!("{} {name:?} is used twice {}", self.what, self.scope),
                    )
                    .at(location)
                    .related(first.get().clone(), "first used here")
                    .help("rename one of them"),
                );
                false
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(location);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_refuses_hidden_characters_and_long_values() {
        let value = |s: &str| S {
            value: s.to_string(),
            referenced: crate::yaml::Place::UNKNOWN,
            defined: crate::yaml::Place::UNKNOWN,
        };
        let mut diagnostics = Diagnostics::new();
        let mut c = FileChecker {
            file: "t.yaml",
            diagnostics: &mut diagnostics,
        };
        for good in ["admin@example.com", "./deploy", "ünïcödé ok", "a b"] {
            assert_eq!(c.text(&value(good), "x", 64).as_deref(), Some(good));
        }
        let bad = [
            "a\nb",
            "a\tb",
            "a\0b",
            "a\rb",
            "a\u{7f}",
            "a\u{85}",
            "a\u{2028}",
            "a\u{2029}",
            "\u{feff}a",
            "a\u{202e}b",
            "a\u{200b}b",
        ];
        for bad in bad {
            assert!(c.text(&value(bad), "x", 64).is_none(), "{bad:?}");
        }
        assert!(c.text(&value(&"a".repeat(65)), "x", 64).is_none());
        assert!(c.text(&value(&"a".repeat(64)), "x", 64).is_some());
        let messages: Vec<String> = diagnostics.iter().map(|d| d.message.clone()).collect();
        assert_eq!(
            messages[0],
            "x holds the control or invisible character U+000A at byte 1"
        );
        assert_eq!(
            messages.last().unwrap(),
            "x is 65 bytes long; at most 64 are allowed"
        );
        assert!(
            diagnostics
                .iter()
                .all(|d| d.code == codes::SPEC_INVALID_VALUE)
        );
    }

    #[test]
    fn did_you_mean() {
        let d = unknown_reference("meduim", "machine size", &["small", "medium", "large"]);
        assert_eq!(d.help.as_deref(), Some("did you mean \"medium\"?"));
        let d = unknown_reference("huge", "machine size", &["small", "medium", "large"]);
        assert_eq!(
            d.help.as_deref(),
            Some("valid values: \"small\", \"medium\", \"large\"")
        );
        let d = unknown_reference("x", "pool", &[]);
        assert_eq!(d.help.as_deref(), Some("there is no pool to refer to yet"));
    }
}
