//! `kmetal.lock` ↔ [`Lock`]: the allocations that must stay stable between builds.
//!
//! A small, sorted, human-diffable YAML file beside `kmetal.yaml`. It records
//! every tenant's VIP and pool, and the addresses of removed tenants (handed
//! out again only when no never-used address is left). `build` writes it
//! together with the output; nothing else writes it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::project::Project;
use crate::spec::names::Label;
use crate::yaml::{self, Spanned};

pub const LOCK_FILE: &str = "kmetal.lock";
const VERSION: u32 = 1;
const HEADER: &str =
    "# Written by `kmetal build`. Commit it: it keeps every tenant's VIP where it is.\n";

/// What one tenant holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Held {
    pub pool: Label,
    pub vip: IpAddr,
    /// Where the entry is in the lock file (for messages); `None` when new.
    #[serde(skip)]
    pub at: Option<SourceLocation>,
}

/// An address whose tenant was removed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Released {
    pub pool: Label,
    pub vip: IpAddr,
    /// The tenant that held it, for people reading the lock.
    pub tenant: Label,
}

/// The lock's content, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    pub tenants: BTreeMap<Label, Held>,
    pub released: Vec<Released>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: Spanned<u32>,
    /// Each tenant's name (where it is written) and entry, in file order.
    #[serde(default, deserialize_with = "entries")]
    tenants: Vec<RawEntry>,
    #[serde(default)]
    released: Vec<Spanned<RawReleased>>,
}

/// A tenant's name (where it is written) and what it holds.
type RawEntry = (Spanned<String>, Spanned<RawHeld>);

/// A mapping's entries with their keys' places (a map type keeps none).
fn entries<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<RawEntry>, D::Error> {
    struct Entries;
    impl<'de> serde::de::Visitor<'de> for Entries {
        type Value = Vec<RawEntry>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    deserializer.deserialize_map(Entries)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeld {
    pool: String,
    vip: IpAddr,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReleased {
    pool: String,
    vip: IpAddr,
    tenant: String,
}

impl Lock {
    /// Read the project's lock; no file is an empty lock.
    pub fn read(project: &Project, diagnostics: &mut Diagnostics) -> Option<Lock> {
        let path = project.root.join(LOCK_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Lock::default()),
            Err(e) => {
                diagnostics.push(
                    Diagnostic::error(codes::IO, format!("cannot read this file: {e}"))
                        .at(SourceLocation::file(LOCK_FILE)),
                );
                return None;
            }
        };
        diagnostics.add_source(LOCK_FILE, std::sync::Arc::from(text.as_str()));
        let raw: RawLock = yaml::parse_spec(LOCK_FILE, &text)
            .map_err(|d| diagnostics.push(lock_error(d)))
            .ok()?;
        Lock::check(raw, diagnostics)
    }

    /// A lock's text (from git, for `--against`) → the lock.
    pub fn parse(text: &str) -> Result<Lock, Diagnostics> {
        let mut diagnostics = Diagnostics::new();
        let raw: RawLock = yaml::parse_spec(LOCK_FILE, text).map_err(Diagnostics::from)?;
        Lock::check(raw, &mut diagnostics).ok_or(diagnostics)
    }

    fn check(raw: RawLock, diagnostics: &mut Diagnostics) -> Option<Lock> {
        let before = diagnostics.len();
        let bad = |at: SourceLocation, message: String| {
            Diagnostic::error(codes::LOCK_INVALID, message)
                .at(at)
                .help("kmetal.lock is written by kmetal build: restore it from git rather than editing it")
        };
        if raw.version.value != VERSION {
            let at = yaml::location_of(LOCK_FILE, &raw.version);
            diagnostics.push(bad(
                at,
                format!(
                    "lock version {} is not {VERSION}, the one this kmetal writes",
                    raw.version.value
                ),
            ));
        }
        let mut lock = Lock::default();
        let mut tenants = raw.tenants;
        tenants.sort_by(|a, b| a.0.value.cmp(&b.0.value));
        for (name, held) in tenants {
            let at = yaml::location_of(LOCK_FILE, &name);
            let name = name.value;
            match (Label::parse(&name), Label::parse(&held.value.pool)) {
                (Ok(tenant), Ok(pool)) => {
                    lock.tenants.insert(
                        tenant,
                        Held {
                            pool,
                            vip: held.value.vip,
                            at: Some(at),
                        },
                    );
                }
                _ => diagnostics.push(bad(
                    at,
                    format!("entry {name:?} has an invalid tenant or pool name"),
                )),
            }
        }
        duplicate_vips(&lock, diagnostics);
        for released in raw.released {
            let at = yaml::location_of(LOCK_FILE, &released);
            let r = released.value;
            match (Label::parse(&r.pool), Label::parse(&r.tenant)) {
                (Ok(pool), Ok(tenant)) => lock.released.push(Released {
                    pool,
                    vip: r.vip,
                    tenant,
                }),
                _ => diagnostics.push(bad(
                    at,
                    "a released entry has an invalid tenant or pool name".into(),
                )),
            }
        }
        lock.released.sort();
        (diagnostics.len() == before).then_some(lock)
    }

    /// The file text: header, version, tenants by name, released by pool and address.
    pub fn to_text(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            version: u32,
            tenants: &'a BTreeMap<Label, Held>,
            released: &'a [Released],
        }
        let value = serde_json::to_value(Out {
            version: VERSION,
            tenants: &self.tenants,
            released: &self.released,
        })
        .expect("the lock serializes: string keys only");
        format!("{HEADER}{}", yaml::emit(&value))
    }
}

/// Two tenants holding one address: what a clean git merge of two branches
/// that each added a tenant produces, since both took the lowest free address.
fn duplicate_vips(lock: &Lock, diagnostics: &mut Diagnostics) {
    let mut first: BTreeMap<IpAddr, (&Label, &Held)> = BTreeMap::new();
    for (tenant, held) in &lock.tenants {
        let Some((other, other_held)) = first.get(&held.vip).copied() else {
            first.insert(held.vip, (tenant, held));
            continue;
        };
        let at = |h: &Held| {
            h.at.clone()
                .unwrap_or_else(|| SourceLocation::file(LOCK_FILE))
        };
        diagnostics.push(
            Diagnostic::error(
                codes::LOCK_DUPLICATE_VIP,
                format!(
                    "tenants {other} and {tenant} both hold VIP {} in kmetal.lock",
                    held.vip
                ),
            )
            .at(at(held))
            .related(at(other_held), format!("{other} holds it here"))
            .help(format!(
                "this usually comes from a git merge of two branches that each added a tenant and took the lowest free address; keep the entry of the cluster that already exists (its control plane answers on {}), delete the other entry, and build again: that tenant gets a free address",
                held.vip
            )),
        );
    }
}

fn lock_error(mut diagnostic: Diagnostic) -> Diagnostic {
    diagnostic.code = codes::LOCK_INVALID;
    diagnostic.help = Some(
        "kmetal.lock is written by kmetal build: restore it from git rather than editing it".into(),
    );
    diagnostic
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock_from(text: &str) -> (Option<Lock>, Diagnostics) {
        let mut diagnostics = Diagnostics::new();
        let raw: RawLock = yaml::parse_spec(LOCK_FILE, text).unwrap();
        (Lock::check(raw, &mut diagnostics), diagnostics)
    }

    #[test]
    fn round_trips_sorted() {
        let text = "version: 1\ntenants:\n  zeta: {pool: p, vip: 10.0.0.9}\n  alpha: {pool: p, vip: 10.0.0.2}\nreleased:\n- {pool: p, vip: 10.0.0.7, tenant: gone}\n- {pool: p, vip: 10.0.0.3, tenant: old}\n";
        let (lock, diagnostics) = lock_from(text);
        assert!(diagnostics.is_empty());
        let written = lock.unwrap().to_text();
        assert!(written.starts_with(HEADER));
        let alpha = written.find("alpha").unwrap();
        assert!(alpha < written.find("zeta").unwrap());
        assert!(written.find("10.0.0.3").unwrap() < written.find("10.0.0.7").unwrap());
        let (again, _) = lock_from(&written);
        assert_eq!(again.unwrap().to_text(), written);
    }

    #[test]
    fn rejects_other_versions_and_bad_names() {
        let (lock, diagnostics) =
            lock_from("version: 2\ntenants:\n  Bad_Name: {pool: p, vip: 10.0.0.1}\n");
        assert!(lock.is_none());
        assert_eq!(diagnostics.len(), 2);
        assert!(diagnostics.iter().all(|d| d.code == codes::LOCK_INVALID));
    }
}
