//! Which Flux shard reconciles a tenant: rendezvous (highest random weight)
//! hashing of the tenant's name over the shards' names.
//!
//! Why rendezvous and not a record in `kmetal.lock`: the assignment is a pure
//! function of names, so two branches that each add a tenant merge without a
//! conflict, and nothing can go stale. Going from N to N+1 shards moves exactly
//! the tenants whose highest weight is the new shard's, about 1/(N+1) of them,
//! and no others; going back moves them back.

use sha2::{Digest, Sha256};

/// The label value of shard `i`: `shard0`, `shard1`, …
pub fn name(i: u32) -> String {
    format!("shard{i}")
}

/// The shard of `tenant` among `shards`; none when there are no shards.
pub fn of(tenant: &str, shards: u32) -> Option<String> {
    (0..shards)
        .max_by_key(|&i| (weight(tenant, &name(i)), i))
        .map(name)
}

/// The tenant's weight on one shard: the first 8 bytes of SHA-256 of both names.
fn weight(tenant: &str, shard: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(tenant.as_bytes());
    hasher.update([0]);
    hasher.update(shard.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_more_shard_moves_about_its_share_and_no_others() {
        let tenants: Vec<String> = (0..10_000).map(|i| format!("t{i:05}")).collect();
        let four: Vec<String> = tenants.iter().map(|t| of(t, 4).unwrap()).collect();
        let five: Vec<String> = tenants.iter().map(|t| of(t, 5).unwrap()).collect();
        let mut moved = 0;
        for (a, b) in four.iter().zip(&five) {
            if a != b {
                moved += 1;
                // Only to the new shard.
                assert_eq!(b, "shard4");
            }
        }
        // A fifth, give or take the spread of a hash: 2,000 ± 5%.
        assert!((1900..=2100).contains(&moved), "{moved} moved");
        // Every shard gets its share.
        for i in 0..5 {
            let n = five.iter().filter(|s| **s == name(i)).count();
            assert!((1900..=2100).contains(&n), "shard{i}: {n}");
        }
        assert_eq!(of("acme", 0), None);
        assert_eq!(of("acme", 1).as_deref(), Some("shard0"));
        assert_eq!(of("acme", 7), of("acme", 7));
    }
}
