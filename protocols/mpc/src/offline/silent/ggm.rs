//! GGM trees (Goldreich–Goldwasser–Micali): the sender expands a random root into `2^h` leaves
//! and the XOR of the left (resp. right) children of every level; a receiver who learns, for each
//! level, the XOR on the side off its path rebuilds every leaf but the one at the end of the path
//! (a *punctured* tree; Boyle et al., CCS 2019; Ferret, CCS 2020, §3).
//!
//! Length-doubling PRG: `G(s) = (π_0(s) ⊕ s, π_1(s) ⊕ s)` with π_0, π_1 AES-128 under two fixed
//! public keys (the two-key PRP construction of emp-ot; Davies–Meyer feed-forward, a PRG in the
//! ideal-permutation model). Node `p` of a level has children `2p` (left) and `2p + 1` (right);
//! leaf `α`'s path takes, at level `i = 1 … h`, the side given by bit `h − i` of `α` (MSB first).

use crate::offline::hash::{aes_batch, Block128};
use aes::cipher::KeyInit;
use aes::Aes128;
use std::sync::OnceLock;

/// Parents expanded per AES batch.
const BATCH: usize = 64;

fn key(label: &str) -> Aes128 {
    let h = blake3::hash(label.as_bytes());
    let k: [u8; 16] = h.as_bytes()[..16].try_into().expect("16 bytes");
    Aes128::new(&k.into())
}

fn keys() -> &'static [Aes128; 2] {
    static KEYS: OnceLock<[Aes128; 2]> = OnceLock::new();
    KEYS.get_or_init(|| [key("Dyad GGM PRG left"), key("Dyad GGM PRG right")])
}

/// Replaces the `m` nodes in `nodes[..m]` by their `2m` children in `nodes[..2m]`, in place
/// (parents from the end, so none is overwritten before it is read).
fn expand_level(nodes: &mut [Block128], m: usize) {
    let [k0, k1] = keys();
    let mut end = m;
    while end > 0 {
        let start = end.saturating_sub(BATCH);
        let n = end - start;
        let mut l = [0u128; BATCH];
        l[..n].copy_from_slice(&nodes[start..end]);
        let mut r = l;
        aes_batch(k0, &mut l[..n]);
        aes_batch(k1, &mut r[..n]);
        for c in (0..n).rev() {
            let s = nodes[start + c];
            nodes[2 * (start + c)] = l[c] ^ s;
            nodes[2 * (start + c) + 1] = r[c] ^ s;
        }
        end = start;
    }
}

/// XOR of the even (left) and odd (right) nodes of a level.
fn side_sums(nodes: &[Block128]) -> [Block128; 2] {
    nodes
        .chunks_exact(2)
        .fold([0, 0], |[a, b], p| [a ^ p[0], b ^ p[1]])
}

/// Sender: expands `root` into `leaves` (`2^h` of them, `h = sums.len()`); `sums[i]` gets the XOR
/// of the left and right children of level `i + 1`.
pub fn expand(root: Block128, leaves: &mut [Block128], sums: &mut [[Block128; 2]]) {
    let h = sums.len();
    assert_eq!(leaves.len(), 1 << h, "GGM leaves for depth {h}");
    leaves[0] = root;
    for (i, s) in sums.iter_mut().enumerate() {
        expand_level(leaves, 1 << i);
        *s = side_sums(&leaves[..2 << i]);
    }
}

/// Receiver: rebuilds every leaf but `alpha` (set to 0) from `known[i]`, the XOR of the level
/// `i + 1` children on the side off the path to `alpha` (`h = known.len()`).
pub fn puncture(alpha: usize, known: &[Block128], leaves: &mut [Block128]) {
    let h = known.len();
    assert_eq!(leaves.len(), 1 << h, "GGM leaves for depth {h}");
    assert!(alpha < 1 << h, "punctured leaf {alpha} of a depth-{h} tree");
    leaves[0] = 0;
    let mut path = 0;
    for (i, k) in known.iter().enumerate() {
        expand_level(leaves, 1 << i);
        let bit = (alpha >> (h - 1 - i)) & 1;
        let off = 1 - bit;
        leaves[2 * path] = 0;
        leaves[2 * path + 1] = 0;
        let sum = side_sums(&leaves[..2 << i])[off];
        leaves[2 * path + off] = k ^ sum;
        path = 2 * path + bit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every leaf but α agrees with the sender's tree, and α is zero.
        #[test]
        fn punctured_tree_matches_all_but_alpha(root in any::<u128>(), h in 1usize..=9, a in any::<usize>()) {
            let alpha = a % (1 << h);
            let mut full = vec![0u128; 1 << h];
            let mut sums = vec![[0u128; 2]; h];
            expand(root, &mut full, &mut sums);
            let known: Vec<u128> = (0..h)
                .map(|i| sums[i][1 - ((alpha >> (h - 1 - i)) & 1)])
                .collect();
            let mut got = vec![1u128; 1 << h];
            puncture(alpha, &known, &mut got);
            for j in 0..1usize << h {
                if j == alpha {
                    prop_assert_eq!(got[j], 0);
                } else {
                    prop_assert_eq!(got[j], full[j], "leaf {}", j);
                }
            }
        }
    }

    /// The leaves are distinct and depend on the root; the two children differ from the parent.
    #[test]
    fn leaves_are_distinct_and_root_dependent() {
        let mut a = vec![0u128; 1 << 10];
        let mut b = vec![0u128; 1 << 10];
        let mut s = vec![[0u128; 2]; 10];
        expand(5, &mut a, &mut s);
        let sums = s.clone();
        expand(6, &mut b, &mut s);
        let set: std::collections::HashSet<u128> = a.iter().copied().collect();
        assert_eq!(set.len(), a.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        assert_ne!(sums, s);
        // The level sums are those of the leaves at the last level.
        assert_eq!(sums[9], side_sums(&a));
    }
}
