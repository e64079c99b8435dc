//! Address text → checked CIDRs, pools and VIPs; then the network checks
//! across the fleet ([`checks`]) and VIP allocation ([`allocate`]).
//!
//! Parsing is ipnet's and std's; this module adds the rules kmetal needs:
//! no host bits in a CIDR, ranges `a-b` with `a <= b` in one family, and which
//! addresses of a pool a VIP may take.

pub mod allocate;
pub mod checks;

pub use allocate::{Allocation, Assignment, allocate};

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::diagnostic::SourceLocation;
use crate::spec::names::Label;

/// An inclusive range of addresses of one family, as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub v4: bool,
    pub first: u128,
    pub last: u128,
}

impl Interval {
    pub fn of_net(net: &IpNet) -> Self {
        Interval {
            v4: net.addr().is_ipv4(),
            first: bits(net.network()),
            last: bits(net.broadcast()),
        }
    }

    pub fn of_ip(ip: IpAddr) -> Self {
        Interval {
            v4: ip.is_ipv4(),
            first: bits(ip),
            last: bits(ip),
        }
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.v4 == other.v4 && self.first <= other.last && other.first <= self.last
    }

    /// How many addresses, saturating.
    pub fn size(&self) -> u128 {
        (self.last - self.first).saturating_add(1)
    }
}

/// An address as a number (IPv4 in the low 32 bits).
pub fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of a number, in the given family.
pub fn from_bits(v4: bool, n: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(std::net::Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(n))
    }
}

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

/// A CIDR's text, as its `Display` writes it. An IPv4 network is written
/// here digit by digit: `Display` goes through the formatting machinery for
/// each octet, about 1,300 instructions for one network of every tenant.
pub fn net_text(net: &IpNet) -> String {
    match net {
        IpNet::V4(v4) => {
            let mut text = String::with_capacity(18);
            for (i, octet) in v4.addr().octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                push_decimal(&mut text, octet);
            }
            text.push('/');
            push_decimal(&mut text, v4.prefix_len());
            text
        }
        IpNet::V6(_) => net.to_string(),
    }
}

/// `n` in decimal, without leading zeros.
fn push_decimal(text: &mut String, n: u8) {
    let digit = |d: u8| char::from(b'0' + d);
    if n >= 100 {
        text.push(digit(n / 100));
    }
    if n >= 10 {
        text.push(digit(n / 10 % 10));
    }
    text.push(digit(n % 10));
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

    /// Every address of the block.
    pub fn interval(&self) -> Interval {
        match self {
            AddressBlock::Range(start, end) => Interval {
                v4: start.is_ipv4(),
                first: bits(*start),
                last: bits(*end),
            },
            AddressBlock::Cidr(net) => Interval::of_net(net),
        }
    }

    /// The addresses a VIP may take: all of a range; all of a CIDR but the
    /// network and broadcast address of an IPv4 CIDR wider than /31.
    pub fn usable_interval(&self) -> Interval {
        let all = self.interval();
        match self {
            AddressBlock::Cidr(IpNet::V4(v4)) if v4.prefix_len() < 31 => Interval {
                first: all.first + 1,
                last: all.last - 1,
                ..all
            },
            _ => all,
        }
    }

    /// Whether a VIP may be `ip`.
    pub fn usable(&self, ip: IpAddr) -> bool {
        self.usable_interval().overlaps(&Interval::of_ip(ip))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.interval().overlaps(&Interval::of_ip(ip))
    }
}

/// A MetalLB address pool from the site.
#[derive(Clone, Debug)]
pub struct Pool {
    pub name: Label,
    pub location: SourceLocation,
    /// The entries as written (after checking), in order.
    pub addresses: Vec<String>,
    /// The parsed entries and where each was written.
    pub blocks: Vec<(AddressBlock, SourceLocation)>,
    pub l2_advertisement: bool,
}

impl Pool {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|(b, _)| b.contains(ip))
    }

    pub fn usable(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|(b, _)| b.usable(ip))
    }

    /// How many addresses a VIP may take, saturating.
    pub fn usable_size(&self) -> u128 {
        self.blocks
            .iter()
            .map(|(b, _)| b.usable_interval().size())
            .fold(0, u128::saturating_add)
    }

    /// The lowest usable address above `after` (if given) for which `taken` is
    /// false. Steps over taken addresses one by one: `taken` must be true for
    /// finitely many.
    pub fn lowest_free(
        &self,
        after: Option<IpAddr>,
        taken: impl Fn(IpAddr) -> bool,
    ) -> Option<IpAddr> {
        let mut intervals: Vec<Interval> = self
            .blocks
            .iter()
            .map(|(b, _)| b.usable_interval())
            .collect();
        intervals.sort();
        intervals.into_iter().find_map(|interval| {
            let first = match after {
                Some(a) if a.is_ipv4() == interval.v4 => {
                    interval.first.max(bits(a).saturating_add(1))
                }
                _ => interval.first,
            };
            (first..=interval.last)
                .map(|n| from_bits(interval.v4, n))
                .find(|ip| !taken(*ip))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_network_is_written_as_display_writes_it() {
        let mut nets: Vec<IpNet> = vec!["fd00::/64".parse().unwrap(), "::/0".parse().unwrap()];
        // Every octet value in every position, and every prefix length.
        for n in 0..=255u8 {
            for position in 0..4 {
                let mut octets = [1, 20, 255, 0];
                octets[position] = n;
                let prefix = n % 33;
                nets.push(IpNet::V4(
                    ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(octets), prefix).unwrap(),
                ));
            }
        }
        for net in nets {
            assert_eq!(net_text(&net), net.to_string());
        }
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

    fn pool(addresses: &[&str]) -> Pool {
        let at = SourceLocation::file("kmetal.yaml");
        Pool {
            name: Label::parse("p").unwrap(),
            location: at.clone(),
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
            blocks: addresses
                .iter()
                .map(|a| (AddressBlock::parse(a).unwrap(), at.clone()))
                .collect(),
            l2_advertisement: true,
        }
    }

    #[test]
    fn sizes_and_lowest_free() {
        /// Pool addresses, usable size, taken addresses, the lowest free one.
        type Case<'a> = (&'a [&'a str], u128, &'a [&'a str], Option<&'a str>);
        let cases: &[Case] = &[
            (&["10.0.0.0/30"], 2, &[], Some("10.0.0.1")),
            (&["10.0.0.0/30"], 2, &["10.0.0.1"], Some("10.0.0.2")),
            (&["10.0.0.0/30"], 2, &["10.0.0.1", "10.0.0.2"], None),
            (
                &["10.0.0.9-10.0.0.10", "10.0.0.1-10.0.0.2"],
                4,
                &["10.0.0.1"],
                Some("10.0.0.2"),
            ),
            (&["10.0.0.7/32"], 1, &[], Some("10.0.0.7")),
            (
                &["fd00::/64"],
                1 << 64,
                &["fd00::", "fd00::1"],
                Some("fd00::2"),
            ),
            (&["::/0"], u128::MAX, &[], Some("::")),
        ];
        let p = pool(&["10.0.0.1-10.0.0.3", "10.0.0.9/32"]);
        assert_eq!(
            p.lowest_free(Some(ip("10.0.0.2")), |_| false),
            Some(ip("10.0.0.3"))
        );
        assert_eq!(
            p.lowest_free(Some(ip("10.0.0.3")), |_| false),
            Some(ip("10.0.0.9"))
        );
        assert_eq!(p.lowest_free(Some(ip("10.0.0.9")), |_| false), None);
        for (addresses, size, taken, expected) in cases {
            let p = pool(addresses);
            assert_eq!(p.usable_size(), *size, "{addresses:?}");
            let taken: Vec<IpAddr> = taken.iter().map(|t| ip(t)).collect();
            assert_eq!(
                p.lowest_free(None, |a| taken.contains(&a)),
                expected.map(ip),
                "{addresses:?}"
            );
        }
    }

    #[test]
    fn overlaps() {
        let i = |s: &str| AddressBlock::parse(s).unwrap().interval();
        assert!(i("10.0.0.0/24").overlaps(&i("10.0.0.255-10.0.1.3")));
        assert!(!i("10.0.0.0/24").overlaps(&i("10.0.1.0/24")));
        assert!(i("10.0.0.0/8").overlaps(&i("10.200.0.0/16")));
        assert!(
            !i("0.0.0.0/0").overlaps(&i("::/0")),
            "families never overlap"
        );
        assert!(Interval::of_ip(ip("10.0.0.5")).overlaps(&i("10.0.0.0/29")));
    }
}
