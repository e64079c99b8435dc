//! Address text → checked CIDRs, pools and VIPs.
//!
//! Parsing is ipnet's and std's; this module adds the rules kmetal needs:
//! no host bits in a CIDR, ranges `a-b` with `a <= b` in one family, and which
//! addresses of a pool a VIP may take.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceLocation, codes};
use crate::spec::Tenant;
use crate::spec::names::Label;

/// A problem with an address, and the fix when there is an obvious one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressError {
    pub message: String,
    pub help: Option<String>,
}

impl AddressError {
    fn new(message: String) -> Self {
        AddressError {
            message,
            help: None,
        }
    }
}

/// Parse a network in CIDR notation; host bits set is an error whose help is the corrected CIDR.
pub fn parse_cidr(text: &str) -> Result<IpNet, AddressError> {
    if IpAddr::from_str(text).is_ok() {
        return Err(AddressError {
            message: format!("{text:?} is an address, not a network"),
            help: Some(format!(
                "add a prefix length, e.g. \"{text}/{}\"",
                if text.contains(':') { 64 } else { 24 }
            )),
        });
    }
    let net = IpNet::from_str(text)
        .map_err(|_| AddressError::new(format!("{text:?} is not a CIDR (like 10.0.0.0/16)")))?;
    if net.trunc() != net {
        return Err(AddressError {
            message: format!("{text:?} has host bits set"),
            help: Some(format!("write \"{}\"", net.trunc())),
        });
    }
    Ok(net)
}

/// Parse an IP address.
pub fn parse_ip(text: &str) -> Result<IpAddr, AddressError> {
    IpAddr::from_str(text)
        .map_err(|_| AddressError::new(format!("{text:?} is not an IPv4 or IPv6 address")))
}

/// A contiguous block of a MetalLB pool, as written: a CIDR or an inclusive range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressBlock {
    Cidr(IpNet),
    Range(IpAddr, IpAddr),
}

impl AddressBlock {
    /// Parse one entry of `addresses`: `a.b.c.d-e.f.g.h` or a CIDR.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        if let Some((start, end)) = text.split_once('-') {
            let start = parse_ip(start.trim())?;
            let end = parse_ip(end.trim())?;
            if start.is_ipv4() != end.is_ipv4() {
                return Err(AddressError::new(format!(
                    "range {text:?} mixes IPv4 and IPv6"
                )));
            }
            if start > end {
                return Err(AddressError {
                    message: format!("range {text:?} ends before it starts"),
                    help: Some(format!("write \"{end}-{start}\"")),
                });
            }
            return Ok(AddressBlock::Range(start, end));
        }
        parse_cidr(text).map(AddressBlock::Cidr)
    }

    /// Whether a VIP may be `ip`: inside the block, and not the network or
    /// broadcast address of an IPv4 CIDR wider than /31.
    pub fn usable(&self, ip: IpAddr) -> bool {
        match self {
            AddressBlock::Range(start, end) => *start <= ip && ip <= *end,
            AddressBlock::Cidr(net) => {
                if !net.contains(&ip) {
                    return false;
                }
                match net {
                    IpNet::V4(v4) if v4.prefix_len() < 31 => {
                        ip != IpAddr::V4(v4.network()) && ip != IpAddr::V4(v4.broadcast())
                    }
                    _ => true,
                }
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            AddressBlock::Range(start, end) => *start <= ip && ip <= *end,
            AddressBlock::Cidr(net) => net.contains(&ip),
        }
    }
}

/// A MetalLB address pool from the site.
#[derive(Clone, Debug)]
pub struct Pool {
    pub name: Label,
    pub location: SourceLocation,
    /// The entries as written (after checking), in order.
    pub addresses: Vec<String>,
    pub blocks: Vec<AddressBlock>,
    pub auto_assign: bool,
    pub l2_advertisement: bool,
}

impl Pool {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }

    pub fn usable(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.usable(ip))
    }
}

/// The VIP a tenant's control plane gets, and the pool it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub vip: IpAddr,
    pub pool: Label,
}

/// Give every tenant its VIP and pool, in tenant order. A VIP must be a usable
/// address of its pool: the explicit `pool`, else the pool that contains it.
/// Tenants without a VIP are an error until allocation exists.
pub fn assign(
    tenants: &[Tenant],
    pools: &[Pool],
    diagnostics: &mut Diagnostics,
) -> Vec<Option<Assignment>> {
    tenants
        .iter()
        .map(|t| assign_one(t, pools, diagnostics))
        .collect()
}

fn assign_one(
    tenant: &Tenant,
    pools: &[Pool],
    diagnostics: &mut Diagnostics,
) -> Option<Assignment> {
    let pool_names = || {
        pools
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some((vip, vip_at)) = &tenant.vip else {
        let hint = match pools.iter().find(|p| p.auto_assign) {
            Some(pool) => format!("set controlPlane.vip to a free address of pool {} ({})", pool.name, pool.addresses.join(", ")),
            None => "declare a MetalLB pool in kmetal.yaml and set controlPlane.vip to one of its addresses".into(),
        };
        diagnostics.push(
            Diagnostic::error(
                codes::NETWORK_VIP_MISSING,
                format!("tenant {} has no controlPlane.vip", tenant.name),
            )
            .at(tenant.name_location.clone())
            .help(hint),
        );
        return None;
    };
    let pool = match &tenant.pool {
        Some((name, _)) => pools.iter().find(|p| &p.name == name),
        None => pools.iter().find(|p| p.contains(*vip)),
    };
    let Some(pool) = pool else {
        diagnostics.push(
            Diagnostic::error(
                codes::NETWORK_VIP_OUTSIDE_POOL,
                format!("VIP {vip} is in no MetalLB pool, so MetalLB would never announce it"),
            )
            .at(vip_at.clone())
            .help(if pools.is_empty() {
                "declare a pool under metallb.pools in kmetal.yaml".into()
            } else {
                format!("choose an address of one of the pools: {}", pool_names())
            }),
        );
        return None;
    };
    if !pool.usable(*vip) {
        let why = if pool.contains(*vip) {
            "is the network or broadcast address of"
        } else {
            "lies outside"
        };
        let mut diagnostic = Diagnostic::error(
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
        if let Some((_, pool_at)) = &tenant.pool {
            diagnostic = diagnostic.related(pool_at.clone(), "the tenant names the pool here");
        }
        diagnostics.push(diagnostic);
        return None;
    }
    Some(Assignment {
        vip: *vip,
        pool: pool.name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("fd00::/64").unwrap().to_string(), "fd00::/64");
        let error = parse_cidr("10.1.2.3/16").unwrap_err();
        assert_eq!(error.help.as_deref(), Some("write \"10.1.0.0/16\""));
        assert!(
            parse_cidr("10.0.0.1")
                .unwrap_err()
                .help
                .unwrap()
                .contains("/24")
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("banana").is_err());
    }

    #[test]
    fn blocks() {
        let range = AddressBlock::parse("192.168.1.100-192.168.1.200").unwrap();
        assert!(range.usable(ip("192.168.1.100")));
        assert!(range.usable(ip("192.168.1.200")));
        assert!(!range.usable(ip("192.168.1.201")));
        assert!(
            AddressBlock::parse("10.0.0.9-10.0.0.1")
                .unwrap_err()
                .help
                .is_some()
        );
        assert!(AddressBlock::parse("10.0.0.1-fd00::1").is_err());
        let cidr = AddressBlock::parse("10.0.0.0/30").unwrap();
        assert!(!cidr.usable(ip("10.0.0.0")));
        assert!(cidr.usable(ip("10.0.0.1")));
        assert!(!cidr.usable(ip("10.0.0.3")));
        assert!(cidr.contains(ip("10.0.0.3")));
        let point = AddressBlock::parse("10.0.0.7/32").unwrap();
        assert!(point.usable(ip("10.0.0.7")));
        let pair = AddressBlock::parse("10.0.0.6/31").unwrap();
        assert!(pair.usable(ip("10.0.0.6")) && pair.usable(ip("10.0.0.7")));
        let v6 = AddressBlock::parse("fd00::/120").unwrap();
        assert!(v6.usable(ip("fd00::")));
        assert!(!v6.usable(ip("10.0.0.1")));
    }
}
