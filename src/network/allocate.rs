//! Tenants + pools + the old lock → every tenant's VIP, and the new lock.
//!
//! Invariants: an address in the lock never moves unless its tenant's spec
//! moves it (an explicit VIP or another pool); an explicit VIP never takes an
//! address another tenant holds; new addresses are the lowest free usable
//! ones, tenants taken in name order; a removed tenant's address is reused
//! only when no never-used address is left; a tenant leaves the lock only with
//! the user's consent.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::Pool;
use crate::diagnostic::{Diagnostic, Diagnostics, Reported, SourceLocation, codes, internal};
use crate::lock::{Held, LOCK_FILE, Lock, Released};
use crate::spec::names::Label;
use crate::spec::{Tenant, TenantFacts};

/// The VIP a tenant's control plane gets, and the pool it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub vip: IpAddr,
    pub pool: Label,
}

/// A tenant with its VIP: the only thing [`crate::resolve`] takes, so a
/// tenant without an address cannot reach the output.
#[derive(Clone, Debug)]
pub struct Placed<'t> {
    pub tenant: &'t Tenant,
    pub assignment: Assignment,
}

/// The result of allocation: every tenant that got a VIP (in tenant order;
/// each one that did not was reported), the lock to write, and the tenants
/// removed with consent.
#[derive(Clone, Debug, Default)]
pub struct Allocation<'t> {
    pub placed: Vec<Placed<'t>>,
    pub lock: Lock,
    pub removed: Vec<(Label, Held)>,
}

/// Where one tenant's allocation stands.
enum Choice {
    /// Not decided yet.
    Open,
    Chosen(Label, IpAddr),
    /// No VIP, and why was reported.
    Failed(Reported),
}

/// Who may remove which tenants. A tenant counts as present when a tenant file
/// declares its name, valid or not; when some file could not be read at all, a
/// tenant missing from the specs may only be unreadable, so none counts as removed.
pub struct Removals<'a> {
    pub allowed: &'a BTreeSet<String>,
    /// Treat every absent tenant as removed with consent (for `check`, which reports them).
    pub allow_all: bool,
    pub declared: BTreeSet<&'a str>,
    pub all_tenant_files_read: bool,
}

/// Allocate. `tenants` are in name order; `incomplete` are the facts of the
/// tenants that failed their checks, whose explicit VIPs are checked all the
/// same; `default_pool` is where tenants that name no pool get a new VIP (or
/// the proof that it failed in the site); `pools_incomplete`, the proof that a
/// pool was left out, explains a VIP in no pool.
#[allow(clippy::too_many_arguments)] // each is one input of the allocation
pub fn allocate<'t>(
    tenants: &'t [Tenant],
    incomplete: &[TenantFacts],
    pools: &[Pool],
    default_pool: Result<Option<&Label>, Reported>,
    pools_incomplete: Option<Reported>,
    old: &Lock,
    removals: Removals<'_>,
    diagnostics: &mut Diagnostics,
) -> Allocation<'t> {
    let present: BTreeSet<&Label> = tenants.iter().map(|t| &t.name).collect();
    let mut allocation = Allocation::default();
    let mut released: BTreeSet<Released> = old.released.iter().cloned().collect();
    remove_absent(
        old,
        &present,
        &removals,
        &mut allocation,
        &mut released,
        diagnostics,
    );

    // Every address some other party holds: explicit VIPs, then lock entries kept.
    let mut holders: BTreeMap<IpAddr, (&Label, Option<SourceLocation>)> = BTreeMap::new();
    let mut chosen: Vec<Choice> = tenants.iter().map(|_| Choice::Open).collect();
    // Explicit VIPs first, of every tenant that named one, complete or not,
    // in name order: a duplicate is reported even when one side has other errors.
    let mut claims: Vec<Claim<'_>> = tenants
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let (vip, at) = t.vip.as_ref()?;
            Some(Claim {
                name: &t.name,
                vip: *vip,
                at,
                pool: t.pool.as_ref(),
                index: Some(i),
            })
        })
        .chain(incomplete.iter().filter(|f| !f.complete).filter_map(|f| {
            let (vip, at) = f.vip.as_ref()?;
            Some(Claim {
                name: f.name.as_ref()?,
                vip: *vip,
                at,
                pool: f.pool.as_ref(),
                index: None,
            })
        }))
        .collect();
    claims.sort_by(|a, b| a.name.cmp(b.name));
    let held_by = LockHolders::of(old);
    for claim in &claims {
        let result = claim_explicit(
            claim,
            pools,
            &held_by,
            &present,
            &mut holders,
            pools_incomplete,
            diagnostics,
        );
        if let Some(i) = claim.index {
            chosen[i] = match result {
                Ok(pool) => Choice::Chosen(pool.name.clone(), claim.vip),
                Err(reported) => Choice::Failed(reported),
            };
        }
    }
    let mut pending: Vec<(usize, &Pool)> = Vec::new();
    for (i, tenant) in tenants.iter().enumerate() {
        if tenant.vip.is_none() {
            match pool_for_allocation(
                tenant,
                pools,
                default_pool,
                old,
                pools_incomplete,
                diagnostics,
            ) {
                Ok(pool) => pending.push((i, pool)),
                Err(reported) => {
                    chosen[i] = Choice::Failed(reported);
                    continue;
                }
            }
        }
        if let Some(held) = old.tenants.get(&tenant.name) {
            let moved = matches!(&chosen[i], Choice::Chosen(_, vip) if *vip != held.vip);
            let other_pool = pending
                .last()
                .is_some_and(|(j, pool)| *j == i && pool.name != held.pool);
            if moved || other_pool {
                released.insert(Released {
                    pool: held.pool.clone(),
                    vip: held.vip,
                    tenant: tenant.name.clone(),
                });
            }
        }
    }
    // Lock entries of tenants without an explicit VIP stay where they are.
    let mut fresh = Vec::new();
    for (i, pool) in pending {
        let tenant = &tenants[i];
        match old
            .tenants
            .get(&tenant.name)
            .filter(|held| held.pool == pool.name)
        {
            Some(held) if !pool.usable(held.vip) => {
                chosen[i] = Choice::Failed(diagnostics.report(stale(tenant, held, pool)));
            }
            Some(held) if holders.contains_key(&held.vip) => {
                // Lock::check refuses an address held twice, and an explicit
                // VIP never takes a locked one: a hole if it happens.
                let what = format!("tenant {}'s locked VIP {} is taken", tenant.name, held.vip);
                chosen[i] = Choice::Failed(
                    diagnostics.report(internal(tenant.name_location.clone(), &what)),
                );
            }
            Some(held) => {
                holders.insert(held.vip, (&tenant.name, None));
                chosen[i] = Choice::Chosen(pool.name.clone(), held.vip);
            }
            None => fresh.push((i, pool)),
        }
    }
    // New addresses only grow within a pool, so each search starts after the last one.
    let mut cursor: BTreeMap<&Label, IpAddr> = BTreeMap::new();
    let released_ips: BTreeSet<IpAddr> = released.iter().map(|r| r.vip).collect();
    for (i, pool) in fresh {
        let tenant = &tenants[i];
        let in_pool = |r: &&Released| {
            r.pool == pool.name && pool.usable(r.vip) && !holders.contains_key(&r.vip)
        };
        let after = cursor.get(&pool.name).copied();
        let never_used = pool.lowest_free(after, |ip| {
            holders.contains_key(&ip) || released_ips.contains(&ip)
        });
        if let Some(vip) = never_used {
            cursor.insert(&pool.name, vip);
        }
        let vip = never_used.or_else(|| released.iter().find(in_pool).map(|r| r.vip));
        match vip {
            Some(vip) => {
                released.retain(|r| r.vip != vip);
                holders.insert(vip, (&tenant.name, None));
                chosen[i] = Choice::Chosen(pool.name.clone(), vip);
            }
            None => {
                let full = pool_full(tenant, pool, &holders);
                chosen[i] = Choice::Failed(diagnostics.report(full));
            }
        }
    }
    for (tenant, choice) in tenants.iter().zip(chosen) {
        let (pool, vip) = match choice {
            Choice::Chosen(pool, vip) => (pool, vip),
            Choice::Failed(_reported) => continue,
            Choice::Open => {
                let what = format!("tenant {} got no VIP", tenant.name);
                let _reported = diagnostics.report(internal(tenant.name_location.clone(), &what));
                continue;
            }
        };
        let at = old.tenants.get(&tenant.name).and_then(|h| h.at.clone());
        allocation.lock.tenants.insert(
            tenant.name.clone(),
            Held {
                pool: pool.clone(),
                vip,
                at,
            },
        );
        allocation.placed.push(Placed {
            tenant,
            assignment: Assignment { vip, pool },
        });
    }
    let held: BTreeSet<IpAddr> = allocation.lock.tenants.values().map(|h| h.vip).collect();
    allocation.lock.released = released
        .into_iter()
        .filter(|r| !held.contains(&r.vip))
        .collect();
    allocation
}

/// A tenant's explicit `controlPlane.vip`.
struct Claim<'a> {
    name: &'a Label,
    vip: IpAddr,
    at: &'a SourceLocation,
    pool: Option<&'a (Label, SourceLocation)>,
    /// The tenant's place in the complete tenants, if it is one.
    index: Option<usize>,
}

/// Check an explicit VIP against the pools, the lock and the VIPs claimed
/// before it, and hold it.
fn claim_explicit<'a, 'p>(
    claim: &Claim<'a>,
    pools: &'p [Pool],
    held_by: &LockHolders<'_>,
    present: &BTreeSet<&Label>,
    holders: &mut BTreeMap<IpAddr, (&'a Label, Option<SourceLocation>)>,
    pools_incomplete: Option<Reported>,
    diagnostics: &mut Diagnostics,
) -> Result<&'p Pool, Reported> {
    let (vip, vip_at) = (claim.vip, claim.at);
    let pool = pool_of_explicit(
        claim.pool,
        vip,
        vip_at,
        pools,
        pools_incomplete,
        diagnostics,
    )?;
    if let Some((other, held)) = held_by.other(vip, claim.name, present) {
        return Err(diagnostics.report(
            Diagnostic::error(
                codes::LOCK_CONFLICT,
                format!("VIP {vip} is held by tenant {other} (kmetal.lock)"),
            )
            .at(vip_at.clone())
            .related(
                held.at
                    .clone()
                    .unwrap_or_else(|| SourceLocation::file(LOCK_FILE)),
                "held here",
            )
            .help("an explicit VIP never takes another tenant's address: choose a free one"),
        ));
    }
    if let Some((first, first_at)) = holders.get(&vip) {
        let mut d = Diagnostic::error(
            codes::NETWORK_DUPLICATE_VIP,
            format!("VIP {vip} is also tenant {first}'s VIP"),
        )
        .at(vip_at.clone())
        .help("every tenant needs its own VIP");
        if let Some(at) = first_at {
            d = d.related(at.clone(), "also written here");
        }
        return Err(diagnostics.report(d));
    }
    holders.insert(vip, (claim.name, Some(vip_at.clone())));
    Ok(pool)
}

/// Tenants in the lock but not in the specs: released with consent, else an error.
fn remove_absent(
    old: &Lock,
    present: &BTreeSet<&Label>,
    removals: &Removals<'_>,
    allocation: &mut Allocation,
    released: &mut BTreeSet<Released>,
    diagnostics: &mut Diagnostics,
) {
    let absent: Vec<(&Label, &Held)> = old
        .tenants
        .iter()
        .filter(|(name, _)| !present.contains(name) && !removals.declared.contains(name.as_str()))
        .collect();
    for (name, held) in &absent {
        if removals.allow_all || removals.allowed.contains(name.as_str()) {
            released.insert(Released {
                pool: held.pool.clone(),
                vip: held.vip,
                tenant: (*name).clone(),
            });
            allocation.removed.push(((*name).clone(), (*held).clone()));
        } else if removals.all_tenant_files_read {
            diagnostics.push(
                Diagnostic::error(
                    codes::LOCK_REMOVAL,
                    format!(
                        "tenant {name} is in kmetal.lock but no tenant file defines it: building would delete its manifests, and Flux would delete the cluster"
                    ),
                )
                .at(held.at.clone().unwrap_or_else(|| SourceLocation::file(LOCK_FILE)))
                .help(format!("restore its tenant file (or its `name:`), or run with --allow-removal {name} to delete it")),
            );
        }
    }
    for allowed in removals.allowed {
        if !absent.iter().any(|(name, _)| name.as_str() == allowed) {
            diagnostics.push(
                Diagnostic::error(
                    codes::LOCK_REMOVAL,
                    format!("--allow-removal {allowed}: no tenant {allowed} is being removed"),
                )
                .help("drop the flag, or check the name against kmetal.lock"),
            );
        }
    }
}

/// The lock's tenants by the VIP each holds, in name order: one lookup per
/// explicit VIP instead of a pass over the whole lock.
struct LockHolders<'a>(BTreeMap<IpAddr, Vec<(&'a Label, &'a Held)>>);

impl<'a> LockHolders<'a> {
    fn of(old: &'a Lock) -> Self {
        let mut by_vip: BTreeMap<IpAddr, Vec<(&Label, &Held)>> = BTreeMap::new();
        for (name, held) in &old.tenants {
            by_vip.entry(held.vip).or_default().push((name, held));
        }
        LockHolders(by_vip)
    }

    /// The first tenant of the lock, other than `me` and still present, that
    /// holds `vip`.
    fn other(
        &self,
        vip: IpAddr,
        me: &Label,
        present: &BTreeSet<&Label>,
    ) -> Option<(&'a Label, &'a Held)> {
        (self.0.get(&vip).into_iter().flatten())
            .find(|(name, _)| *name != me && present.contains(name))
            .copied()
    }
}

/// The pool of an explicit VIP: the tenant's `pool`, else the one containing it.
fn pool_of_explicit<'p>(
    named: Option<&(Label, SourceLocation)>,
    vip: IpAddr,
    vip_at: &SourceLocation,
    pools: &'p [Pool],
    pools_incomplete: Option<Reported>,
    diagnostics: &mut Diagnostics,
) -> Result<&'p Pool, Reported> {
    let pool = match named {
        Some((name, _)) => pools.iter().find(|p| &p.name == name),
        None => pools.iter().find(|p| p.contains(vip)),
    };
    let Some(pool) = pool else {
        // A pool the site left out (with its own error) may hold it.
        if let Some(reported) = pools_incomplete {
            return Err(reported);
        }
        let help = if pools.is_empty() {
            "declare a pool under metallb.pools in kmetal.yaml".to_string()
        } else {
            format!("choose an address of one of the pools: {}", names(pools))
        };
        return Err(diagnostics.report(
            Diagnostic::error(
                codes::NETWORK_VIP_OUTSIDE_POOL,
                format!("VIP {vip} is in no MetalLB pool, so MetalLB would never announce it"),
            )
            .at(vip_at.clone())
            .help(help),
        ));
    };
    if !pool.usable(vip) {
        let why = if pool.contains(vip) {
            "is the network or broadcast address of"
        } else {
            "lies outside"
        };
        let mut d = Diagnostic::error(
            codes::NETWORK_VIP_OUTSIDE_POOL,
            format!("VIP {vip} {why} pool {}", pool.name),
        )
        .at(vip_at.clone())
        .help(format!(
            "choose an address of {} ({})",
            pool.name,
            pool.addresses.join(", ")
        ))
        .related(pool.location.clone(), "the pool is declared here");
        if let Some((_, pool_at)) = named {
            d = d.related(pool_at.clone(), "the tenant names the pool here");
        }
        return Err(diagnostics.report(d));
    }
    Ok(pool)
}

/// The pool a VIP is allocated from: the tenant's `pool`; else the pool the
/// lock holds its VIP in, if the site still has it, so that changing the
/// site's default pool never moves a running tenant; else the default pool.
fn pool_for_allocation<'p>(
    tenant: &Tenant,
    pools: &'p [Pool],
    default_pool: Result<Option<&Label>, Reported>,
    old: &Lock,
    pools_incomplete: Option<Reported>,
    diagnostics: &mut Diagnostics,
) -> Result<&'p Pool, Reported> {
    let named = |name: &Label| pools.iter().find(|p| &p.name == name);
    let pool = match &tenant.pool {
        Some((name, _)) => named(name),
        None => old
            .tenants
            .get(&tenant.name)
            .and_then(|held| named(&held.pool))
            .or_else(|| default_pool.ok().flatten().and_then(named)),
    };
    // The default pool failed in the site, and said so there.
    if let (None, None, Err(reported)) = (pool, &tenant.pool, default_pool) {
        return Err(reported);
    }
    let Some(pool) = pool else {
        if let Some(reported) = pools_incomplete {
            return Err(reported);
        }
        let help = if pools.is_empty() {
            "declare a pool under metallb.pools in kmetal.yaml, or set controlPlane.vip".to_string()
        } else {
            format!("set controlPlane.pool to one of {}", names(pools))
        };
        return Err(diagnostics.report(
            Diagnostic::error(
                codes::NETWORK_NO_POOL,
                format!(
                    "tenant {} has no VIP and no pool to take one from",
                    tenant.name
                ),
            )
            .at(tenant.name_location.clone())
            .help(help),
        ));
    };
    Ok(pool)
}

fn names(pools: &[Pool]) -> String {
    pools
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn stale(tenant: &Tenant, held: &Held, pool: &Pool) -> Diagnostic {
    Diagnostic::error(
        codes::LOCK_STALE,
        format!(
            "tenant {} holds VIP {} (kmetal.lock), which pool {} no longer offers",
            tenant.name, held.vip, pool.name
        ),
    )
    .at(held
        .at
        .clone()
        .unwrap_or_else(|| SourceLocation::file(LOCK_FILE)))
    .related(pool.location.clone(), "the pool is declared here")
    .related(tenant.name_location.clone(), "the tenant that holds it")
    .help(format!(
        "put {} back into the pool, or give the tenant an explicit controlPlane.vip to move it",
        held.vip
    ))
}

fn pool_full(
    tenant: &Tenant,
    pool: &Pool,
    holders: &BTreeMap<IpAddr, (&Label, Option<SourceLocation>)>,
) -> Diagnostic {
    let mut in_pool: Vec<String> = holders
        .iter()
        .filter(|(ip, _)| pool.contains(**ip))
        .map(|(ip, (t, _))| format!("{t} ({ip})"))
        .collect();
    let total = in_pool.len();
    in_pool.truncate(10);
    let more = if total > 10 {
        format!(" and {} more", total - 10)
    } else {
        String::new()
    };
    let size = match pool.usable_size() {
        1 => "its only usable address is".to_string(),
        n => format!("all {n} of its usable addresses are"),
    };
    Diagnostic::error(
        codes::NETWORK_POOL_FULL,
        format!(
            "pool {} is full: {size} held by {}{more}; tenant {} gets none",
            pool.name,
            in_pool.join(", "),
            tenant.name
        ),
    )
    .at(tenant.name_location.clone())
    .related(pool.location.clone(), "the pool is declared here")
    .help("add addresses to the pool, or give this tenant another pool with controlPlane.pool")
}
