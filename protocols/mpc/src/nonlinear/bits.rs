//! Bit-sliced XOR shares and GMW AND gates from boolean Beaver triples (ABY, Demmler–Schneider–
//! Zohner NDSS 2015, §III-B; Beaver's trick over GF(2)).
//!
//! 64 instances share one `u64` word per bit position, so one AND of two words evaluates 64 gates
//! and one triple word ([`crate::triples::TripleRequest::And`]) serves 64 of them.

use crate::error::{MpcError, Result};
use crate::net::{Channel, ChannelExt};
use crate::session::Session;
use crate::share::Role;
use crate::triples::AndTriples;
use ndarray::{Array2, ArrayView2};

/// Number of words needed for `n` bit-sliced instances.
pub(crate) fn words_for(n: usize) -> usize {
    n.div_ceil(64)
}

/// Transposes a 64×64 bit matrix in place: afterwards bit `k` of `a[j]` is the former bit `j` of
/// `a[k]` (Hacker's Delight §7-3, recursive block swaps).
pub(crate) fn transpose64(a: &mut [u64; 64]) {
    let mut j = 32usize;
    let mut m: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        let mut k = 0usize;
        while k < 64 {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// Bit planes of `values`: `out[j * w + i]` holds bit `j` of values `64 i .. 64 i + 63` (bit `k`
/// of the word is value `64 i + k`), `w = ⌈n / 64⌉`; padding instances are zero.
pub(crate) fn bit_planes(values: &[u64]) -> (Vec<u64>, usize) {
    let w = words_for(values.len());
    let mut out = vec![0u64; 64 * w];
    let mut block = [0u64; 64];
    for (i, chunk) in values.chunks(64).enumerate() {
        block[..chunk.len()].copy_from_slice(chunk);
        block[chunk.len()..].fill(0);
        transpose64(&mut block);
        for (j, &word) in block.iter().enumerate() {
            out[j * w + i] = word;
        }
    }
    (out, w)
}

/// Packs 0/1 values into words (bit `k` of word `i` is value `64 i + k`).
pub(crate) fn pack_bits(bits: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut out = Vec::new();
    for (i, b) in bits.into_iter().enumerate() {
        if i % 64 == 0 {
            out.push(0);
        }
        *out.last_mut().expect("pushed") |= (b & 1) << (i % 64);
    }
    out
}

/// Unpacks the first `n` bits of `words` as 0/1 values.
pub(crate) fn unpack_bits(words: &[u64], n: usize) -> Vec<u64> {
    (0..n).map(|i| (words[i / 64] >> (i % 64)) & 1).collect()
}

/// This party's message for a layer of AND gates `x ∧ y`: its shares of `d = x ⊕ a` and
/// `e = y ⊕ b`, concatenated.
pub(crate) fn and_mask(x: &[u64], y: &[u64], t: &AndTriples) -> Vec<u64> {
    let mut msg = Vec::with_capacity(2 * x.len());
    msg.extend(x.iter().zip(&t.a).map(|(x, a)| x ^ a));
    msg.extend(y.iter().zip(&t.b).map(|(y, b)| y ^ b));
    msg
}

/// This party's share of `x ∧ y` from the opened `d`, `e`:
/// `x ∧ y = (d ⊕ a)(e ⊕ b) = c ⊕ d·b ⊕ e·a ⊕ d·e`, the public term `d·e` added by P0 only.
pub(crate) fn and_finish(role: Role, d: &[u64], e: &[u64], t: &AndTriples) -> Vec<u64> {
    let mut z: Vec<u64> = (0..d.len())
        .map(|i| t.c[i] ^ (d[i] & t.b[i]) ^ (e[i] & t.a[i]))
        .collect();
    if role == Role::P0 {
        for (z, (d, e)) in z.iter_mut().zip(d.iter().zip(e)) {
            *z ^= d & e;
        }
    }
    z
}

/// One layer of bit-sliced AND gates (one round): this party's XOR shares of `x ∧ y`, consuming
/// `x.len()` words of AND triples.
pub(crate) async fn and_gates<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &[u64],
    y: &[u64],
) -> Result<Vec<u64>> {
    let role = cx.role;
    debug_assert_eq!(x.len(), y.len());
    let m = x.len();
    let t = cx.pre.next_and(m)?;
    let msg = and_mask(x, y, &t);
    let mine = ArrayView2::from_shape((1, 2 * m), &msg).expect("shape");
    let theirs = cx.ch.exchange_ring(&mine).await?;
    let theirs = theirs.as_slice().ok_or_else(|| MpcError::Malformed {
        reason: "AND-gate reply not contiguous".into(),
    })?;
    let opened: Vec<u64> = msg.iter().zip(theirs).map(|(a, b)| a ^ b).collect();
    Ok(and_finish(role, &opened[..m], &opened[m..], &t))
}

/// XOR shares of a matrix of bits, bit-sliced: 64 entries (row-major order) per word.
///
/// `Debug` prints the shape only: a share is secret material.
#[derive(Clone, PartialEq, Eq)]
pub struct BitShare {
    dim: (usize, usize),
    words: Vec<u64>,
}

impl std::fmt::Debug for BitShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BitShare({}x{})", self.dim.0, self.dim.1)
    }
}

impl BitShare {
    /// All-zero shares of a `dim`-shaped bit matrix.
    pub(crate) fn zeros(dim: (usize, usize)) -> Self {
        Self::from_words(dim, vec![0; words_for(dim.0 * dim.1)])
    }

    pub(crate) fn from_words(dim: (usize, usize), words: Vec<u64>) -> Self {
        debug_assert_eq!(words.len(), words_for(dim.0 * dim.1));
        Self { dim, words }
    }

    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    /// This party's share from one 0/1 entry per bit (entries above 1 are refused).
    pub fn from_bits(bits: &ArrayView2<'_, u64>) -> Result<Self> {
        if let Some(&v) = bits.iter().find(|&&v| v > 1) {
            return Err(MpcError::Malformed {
                reason: format!("bit share entry {v} is not 0 or 1"),
            });
        }
        Ok(Self {
            dim: bits.dim(),
            words: pack_bits(bits.iter().copied()),
        })
    }

    /// This party's share of a public bit matrix: P0 holds the bits, P1 zeros.
    pub fn of_public(role: Role, bits: &ArrayView2<'_, u64>) -> Result<Self> {
        let s = Self::from_bits(bits)?;
        Ok(match role {
            Role::P0 => s,
            Role::P1 => Self {
                dim: s.dim,
                words: vec![0; s.words.len()],
            },
        })
    }

    /// This party's share bits, one 0/1 entry per bit.
    pub fn bits(&self) -> Array2<u64> {
        let n = self.dim.0 * self.dim.1;
        Array2::from_shape_vec(self.dim, unpack_bits(&self.words, n)).expect("shape")
    }

    /// Shape of the bit matrix.
    pub fn dim(&self) -> (usize, usize) {
        self.dim
    }

    /// Local negation: P0 flips its share, P1 keeps it.
    pub fn not(&self, role: Role) -> BitShare {
        let mut out = self.clone();
        if role == Role::P0 {
            let n = self.dim.0 * self.dim.1;
            for (i, w) in out.words.iter_mut().enumerate() {
                let live = (n - 64 * i).min(64);
                *w ^= if live == 64 {
                    u64::MAX
                } else {
                    (1u64 << live) - 1
                };
            }
        }
        out
    }

    /// Local XOR of two shared bit matrices of the same shape.
    pub fn xor(&self, other: &BitShare) -> Result<BitShare> {
        if self.dim != other.dim {
            return Err(MpcError::ShapeMismatch {
                op: "bit xor",
                left: self.dim,
                right: other.dim,
            });
        }
        Ok(BitShare {
            dim: self.dim,
            words: self
                .words
                .iter()
                .zip(&other.words)
                .map(|(a, b)| a ^ b)
                .collect(),
        })
    }
}

/// XORs the two shares of a bit matrix (what the holder of both shares does to reveal it).
pub fn reconstruct_bits(a: &BitShare, b: &BitShare) -> Array2<u64> {
    let n = a.dim.0 * a.dim.1;
    let words: Vec<u64> = a.words.iter().zip(&b.words).map(|(x, y)| x ^ y).collect();
    Array2::from_shape_vec(a.dim, unpack_bits(&words, n)).expect("shape")
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn transpose_matches_naive(v in proptest::collection::vec(any::<u64>(), 64)) {
            let mut a = [0u64; 64];
            a.copy_from_slice(&v);
            transpose64(&mut a);
            for j in 0..64 {
                for k in 0..64 {
                    prop_assert_eq!((a[j] >> k) & 1, (v[k] >> j) & 1);
                }
            }
            transpose64(&mut a);
            prop_assert_eq!(a.to_vec(), v);
        }

        #[test]
        fn planes_hold_every_bit(v in proptest::collection::vec(any::<u64>(), 0..200)) {
            let (p, w) = bit_planes(&v);
            prop_assert_eq!(w, v.len().div_ceil(64));
            for (i, x) in v.iter().enumerate() {
                for j in 0..64 {
                    prop_assert_eq!((p[j * w + i / 64] >> (i % 64)) & 1, (x >> j) & 1);
                }
            }
            // Padding instances are zero.
            for j in 0..64 {
                for i in v.len()..64 * w {
                    prop_assert_eq!((p[j * w + i / 64] >> (i % 64)) & 1, 0);
                }
            }
        }

        #[test]
        fn and_gates_local_math_is_correct(
            x in proptest::collection::vec(any::<u64>(), 5),
            y in proptest::collection::vec(any::<u64>(), 5),
            r in proptest::collection::vec(any::<u64>(), 40),
        ) {
            // Shares of x, y and of a triple (a, b, c = a ∧ b).
            let x0 = r[0..5].to_vec();
            let y0 = r[5..10].to_vec();
            let x1: Vec<u64> = x.iter().zip(&x0).map(|(a, b)| a ^ b).collect();
            let y1: Vec<u64> = y.iter().zip(&y0).map(|(a, b)| a ^ b).collect();
            let (a0, a1, b0, b1, c0) = (&r[10..15], &r[15..20], &r[20..25], &r[25..30], &r[30..35]);
            let c1: Vec<u64> = (0..5).map(|i| ((a0[i] ^ a1[i]) & (b0[i] ^ b1[i])) ^ c0[i]).collect();
            let t0 = AndTriples { a: a0.to_vec(), b: b0.to_vec(), c: c0.to_vec() };
            let t1 = AndTriples { a: a1.to_vec(), b: b1.to_vec(), c: c1 };
            let m0 = and_mask(&x0, &y0, &t0);
            let m1 = and_mask(&x1, &y1, &t1);
            let o: Vec<u64> = m0.iter().zip(&m1).map(|(a, b)| a ^ b).collect();
            let z0 = and_finish(Role::P0, &o[..5], &o[5..], &t0);
            let z1 = and_finish(Role::P1, &o[..5], &o[5..], &t1);
            for i in 0..5 {
                prop_assert_eq!(z0[i] ^ z1[i], x[i] & y[i]);
            }
        }
    }

    #[test]
    fn bit_shares_pack_negate_and_xor() {
        let bits = Array2::from_shape_fn((3, 50), |(i, j)| ((i * 7 + j * 3) % 5 == 0) as u64);
        let s = BitShare::from_bits(&bits.view()).unwrap();
        assert_eq!(s.bits(), bits);
        let z = BitShare::of_public(Role::P1, &bits.view()).unwrap();
        assert_eq!(reconstruct_bits(&s, &z), bits);
        let n0 = s.not(Role::P0);
        let n1 = z.not(Role::P1);
        assert_eq!(reconstruct_bits(&n0, &n1), bits.mapv(|b| 1 - b));
        // Padding bits stay zero after negation.
        assert_eq!(n0.words().last().unwrap() >> (150 % 64), 0);
        let x = s.xor(&s).unwrap();
        assert!(x.bits().iter().all(|&b| b == 0));
        assert!(s.xor(&BitShare::from_bits(&bits.t()).unwrap()).is_err());
        assert!(BitShare::from_bits(&Array2::from_elem((1, 1), 2u64).view()).is_err());
        assert_eq!(format!("{s:?}"), "BitShare(3x50)");
    }
}
