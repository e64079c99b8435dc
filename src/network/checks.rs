//! Site + tenants → diagnostics for addresses that collide: pools that
//! overlap, pod and service networks that overlap each other, a pool or the
//! bootstrap server, and certSANs claimed by two tenants.
//!
//! Tenants that inherit a site default get the same diagnostic, at the
//! default, once (identical diagnostics are merged when reported).

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::{Interval, Pool};
use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::spec::names::Label;
use crate::spec::{Defaulted, Host, Site, TenantFacts};

/// The checks of the site's pools and default networks, and of every
/// tenant's networks and certSANs that passed their own checks, whether or
/// not the rest of the tenant did.
pub fn check(site: &Site, tenants: &[TenantFacts], diagnostics: &mut Diagnostics) {
    check_pools(&site.pools, diagnostics);
    let d = &site.defaults;
    let broken = |key| site.problems.defaults.contains_key(key);
    if !broken("pods") && !broken("services") {
        let bootstrap = d.bootstrap_server.as_ref();
        check_networks(&d.pods, &d.services, bootstrap, &site.pools, diagnostics);
    }
    for tenant in tenants {
        if let (Some(pods), Some(services)) = (&tenant.pods, &tenant.services) {
            let bootstrap = tenant.bootstrap_server.as_ref();
            check_networks(pods, services, bootstrap, &site.pools, diagnostics);
        }
    }
    check_cert_sans(tenants, diagnostics);
}

fn check_pools(pools: &[Pool], diagnostics: &mut Diagnostics) {
    let blocks: Vec<(&Pool, String, Interval, &SourceLocation)> = pools
        .iter()
        .flat_map(|p| {
            p.blocks
                .iter()
                .zip(&p.addresses)
                .map(move |((b, at), text)| (p, text.clone(), b.interval(), at))
        })
        .collect();
    for (i, (pool, text, interval, at)) in blocks.iter().enumerate() {
        if let Some((other_pool, other_text, _, other_at)) =
            blocks[..i].iter().find(|(_, _, o, _)| o.overlaps(interval))
        {
            let whose = if other_pool.name == pool.name {
                "another entry of this pool".to_string()
            } else {
                format!("pool {}", other_pool.name)
            };
            diagnostics.push(
                Diagnostic::error(
                    codes::NETWORK_OVERLAP,
                    format!("pool address {text} overlaps {other_text} of {whose}"),
                )
                .at((*at).clone())
                .related((*other_at).clone(), "the other addresses")
                .help("MetalLB pools must not share addresses: shrink or remove one of them"),
            );
        }
    }
}

/// Name a value for a message, marking a built-in default.
fn described(what: &str, value: &impl std::fmt::Display, at: &Option<SourceLocation>) -> String {
    match at {
        Some(_) => format!("{what} {value}"),
        None => format!("{what} {value} (built-in default)"),
    }
}

/// Report an overlap at the first written place, with the other one related.
fn overlap(
    message: String,
    places: [&Option<SourceLocation>; 2],
    help: &str,
    diagnostics: &mut Diagnostics,
) {
    let mut written = places.iter().filter_map(|p| p.as_ref());
    let Some(primary) = written.next() else {
        return;
    };
    let mut diagnostic = Diagnostic::error(codes::NETWORK_OVERLAP, message)
        .at(primary.clone())
        .help(help);
    if let Some(other) = written.next().filter(|o| *o != primary) {
        diagnostic = diagnostic.related(other.clone(), "the other network");
    }
    diagnostics.push(diagnostic);
}

fn check_networks(
    pods: &Defaulted<IpNet>,
    services: &Defaulted<IpNet>,
    bootstrap: Option<&Defaulted<Host>>,
    pools: &[Pool],
    diagnostics: &mut Diagnostics,
) {
    let nets = [("pod network", pods), ("service network", services)];
    if Interval::of_net(&pods.value).overlaps(&Interval::of_net(&services.value)) {
        let message = format!(
            "{} overlaps {}",
            described("pod network", &pods.value, &pods.location),
            described("service network", &services.value, &services.location)
        );
        overlap(
            message,
            [&pods.location, &services.location],
            "give pods and services separate ranges",
            diagnostics,
        );
    }
    for (what, net) in nets {
        let interval = Interval::of_net(&net.value);
        for pool in pools {
            for ((block, at), text) in pool.blocks.iter().zip(&pool.addresses) {
                if block.interval().overlaps(&interval) {
                    let message = format!(
                        "{} overlaps pool {} ({text})",
                        described(what, &net.value, &net.location),
                        pool.name
                    );
                    let help =
                        "tenant networks must not contain MetalLB addresses: choose another range";
                    overlap(
                        message,
                        [&net.location, &Some(at.clone())],
                        help,
                        diagnostics,
                    );
                }
            }
        }
        if let Some(Defaulted {
            value: Host::Ip(ip),
            location,
        }) = bootstrap
            && interval.overlaps(&Interval::of_ip(*ip))
        {
            let message = format!(
                "{} contains the bootstrap server {ip}",
                described(what, &net.value, &net.location)
            );
            let help = "workers must reach the bootstrap server outside the cluster's own networks";
            overlap(message, [&net.location, location], help, diagnostics);
        }
    }
}

fn check_cert_sans(tenants: &[TenantFacts], diagnostics: &mut Diagnostics) {
    let mut claimed: BTreeMap<&str, (&Label, &SourceLocation)> = BTreeMap::new();
    for tenant in tenants {
        let Some(name) = &tenant.name else { continue };
        for (san, at) in &tenant.cert_sans {
            match claimed.get(san.as_str()) {
                Some((other, other_at)) if *other != name => diagnostics.push(
                    Diagnostic::error(
                        codes::NETWORK_DUPLICATE_CERT_SAN,
                        format!("certSAN {san} is also claimed by tenant {other}"),
                    )
                    .at(at.clone())
                    .related((*other_at).clone(), "claimed here")
                    .help("a name or address can serve one tenant's API server only"),
                ),
                Some(_) => {}
                None => {
                    claimed.insert(san, (name, at));
                }
            }
        }
    }
}
