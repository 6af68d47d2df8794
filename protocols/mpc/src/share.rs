//! Additive secret sharing over Z_2^64 and the two party roles.
//!
//! A value `x` is split as `x = x0 + x1 (mod 2^64)` with `x0` uniform; P0 holds `x0`, P1 holds `x1`.
//! A data owner may instead send P0 a 32-byte ChaCha20 [`Seed`] whose expansion is `x0` and P1 the
//! matrix `x − PRG(seed)`, halving the upload (ARCHITECTURE.md, "Data flow … (2PC)").

use crate::ring::{self, RingMatrix};
use ndarray::{Array2, ArrayView2};
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Which of the two parties this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Party 0.
    P0,
    /// Party 1.
    P1,
}

impl Role {
    /// 0 or 1.
    pub fn index(self) -> usize {
        match self {
            Role::P0 => 0,
            Role::P1 => 1,
        }
    }

    /// The other party.
    pub fn peer(self) -> Role {
        match self {
            Role::P0 => Role::P1,
            Role::P1 => Role::P0,
        }
    }

    /// The role with index `i` (0 or 1).
    pub fn from_index(i: usize) -> Option<Role> {
        match i {
            0 => Some(Role::P0),
            1 => Some(Role::P1),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "P{}", self.index())
    }
}

/// One party's additive share of a matrix over Z_2^64.
///
/// `Debug` prints the shape only: a share is secret material.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share(RingMatrix);

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share({}x{})", self.0.nrows(), self.0.ncols())
    }
}

impl Share {
    /// Wraps a ring matrix that is this party's share.
    pub fn from_ring(m: RingMatrix) -> Self {
        Self(m)
    }

    /// A share of zero.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self(Array2::zeros((rows, cols)))
    }

    /// This party's share of the public matrix `x`: P0 holds `x`, P1 holds 0.
    pub fn of_public(role: Role, x: &ArrayView2<'_, u64>) -> Self {
        match role {
            Role::P0 => Self(x.to_owned()),
            Role::P1 => Self(Array2::zeros(x.dim())),
        }
    }

    /// The share as a ring matrix view.
    pub fn view(&self) -> ArrayView2<'_, u64> {
        self.0.view()
    }

    /// The share as a ring matrix.
    pub fn into_ring(self) -> RingMatrix {
        self.0
    }

    /// Shape (rows, cols).
    pub fn dim(&self) -> (usize, usize) {
        self.0.dim()
    }

    /// Local addition of shares.
    pub fn add(&self, other: &Share) -> Share {
        Share(ring::add(&self.0.view(), &other.0.view()))
    }

    /// Local subtraction of shares.
    pub fn sub(&self, other: &Share) -> Share {
        Share(ring::sub(&self.0.view(), &other.0.view()))
    }

    /// Local negation.
    pub fn neg(&self) -> Share {
        Share(ring::neg(&self.0.view()))
    }

    /// Adds a public matrix (only P0 adds it).
    pub fn add_public(&self, role: Role, x: &ArrayView2<'_, u64>) -> Share {
        match role {
            Role::P0 => Share(ring::add(&self.0.view(), x)),
            Role::P1 => self.clone(),
        }
    }

    /// Multiplies by a public ring constant.
    pub fn mul_const(&self, c: u64) -> Share {
        Share(ring::scale(&self.0.view(), c))
    }

    /// The transpose of the share (a local operation).
    pub fn t(&self) -> Share {
        Share(self.0.t().as_standard_layout().into_owned())
    }

    /// Selects rows (a mini-batch).
    pub fn select_rows(&self, idx: &[usize]) -> Share {
        Share(ring::select_rows(&self.0.view(), idx))
    }
}

/// Adds the two shares of a value (what the owner of both shares does to reveal it).
pub fn reconstruct(a: &Share, b: &Share) -> RingMatrix {
    ring::add(&a.0.view(), &b.0.view())
}

/// Splits `x` into two fresh shares `[P0's, P1's]`, the first uniform from `rng`.
pub fn share<R: RngCore + CryptoRng>(x: &ArrayView2<'_, u64>, rng: &mut R) -> [Share; 2] {
    let (r, c) = x.dim();
    let s0 = ring::random(rng, r, c);
    let s1 = ring::sub(x, &s0.view());
    [Share(s0), Share(s1)]
}

/// A 32-byte ChaCha20 seed that stands for a whole share. Zeroized on drop; `Debug` hides it.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Seed(pub [u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(<hidden>)")
    }
}

impl Seed {
    /// A fresh seed from `rng`.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut s = [0u8; 32];
        rng.fill_bytes(&mut s);
        Seed(s)
    }

    /// A fresh seed from the operating system's CSPRNG.
    pub fn from_os() -> Self {
        Self::random(&mut rand::rngs::OsRng)
    }

    /// The ChaCha20 generator keyed by this seed.
    pub fn rng(&self) -> ChaCha20Rng {
        ChaCha20Rng::from_seed(self.0)
    }

    /// The share this seed stands for: `rows × cols` words of ChaCha20(seed).
    pub fn expand(&self, rows: usize, cols: usize) -> Share {
        Share(ring::random(&mut self.rng(), rows, cols))
    }
}

/// Seed-compressed sharing: P0 receives a seed, P1 receives `x − PRG(seed)`.
pub fn share_seeded<R: RngCore + CryptoRng>(x: &ArrayView2<'_, u64>, rng: &mut R) -> (Seed, Share) {
    let seed = Seed::random(rng);
    let (r, c) = x.dim();
    let s0 = seed.expand(r, c);
    (seed, Share(ring::sub(x, &s0.0.view())))
}

/// A CSPRNG seeded by the operating system, the source of every key, mask and share.
pub fn os_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_entropy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sharing_reconstructs(v in proptest::collection::vec(any::<u64>(), 6), seed in any::<[u8; 32]>()) {
            let x = Array2::from_shape_vec((2, 3), v).unwrap();
            let mut rng = ChaCha20Rng::from_seed(seed);
            let [a, b] = share(&x.view(), &mut rng);
            prop_assert_eq!(reconstruct(&a, &b), x.clone());
            let (s, b2) = share_seeded(&x.view(), &mut rng);
            prop_assert_eq!(reconstruct(&s.expand(2, 3), &b2), x);
        }

        #[test]
        fn share_ops_are_homomorphic(v in proptest::collection::vec(any::<u64>(), 4), w in proptest::collection::vec(any::<u64>(), 4), c in any::<u64>()) {
            let mut rng = ChaCha20Rng::seed_from_u64(7);
            let x = Array2::from_shape_vec((2, 2), v).unwrap();
            let y = Array2::from_shape_vec((2, 2), w).unwrap();
            let [x0, x1] = share(&x.view(), &mut rng);
            let [y0, y1] = share(&y.view(), &mut rng);
            prop_assert_eq!(reconstruct(&x0.add(&y0), &x1.add(&y1)), ring::add(&x.view(), &y.view()));
            prop_assert_eq!(reconstruct(&x0.sub(&y0), &x1.sub(&y1)), ring::sub(&x.view(), &y.view()));
            prop_assert_eq!(reconstruct(&x0.mul_const(c), &x1.mul_const(c)), ring::scale(&x.view(), c));
            prop_assert_eq!(
                reconstruct(&x0.add_public(Role::P0, &y.view()), &x1.add_public(Role::P1, &y.view())),
                ring::add(&x.view(), &y.view())
            );
        }
    }

    /// Shares of a constant must look uniform: a chi-square test on the top byte of 2^16 shares
    /// (255 degrees of freedom; the 0.9999 quantile is about 330, so this fails by chance with
    /// probability 1e-4 per run — and the test draws from a fixed seed, so it is deterministic).
    #[test]
    fn shares_of_a_constant_look_uniform() {
        let x = Array2::from_elem((1 << 16, 1), 42u64);
        let mut rng = ChaCha20Rng::seed_from_u64(2024);
        for s in share(&x.view(), &mut rng) {
            let mut counts = [0f64; 256];
            for &v in s.view().iter() {
                counts[(v >> 56) as usize] += 1.0;
            }
            let expected = (1u64 << 16) as f64 / 256.0;
            let chi2: f64 = counts
                .iter()
                .map(|c| (c - expected).powi(2) / expected)
                .sum();
            assert!(chi2 < 330.0, "chi-square {chi2} too large for 255 dof");
        }
        // A constant itself is maximally non-uniform: the statistic must catch it.
        let mut counts = [0f64; 256];
        counts[0] = (1u64 << 16) as f64;
        let expected = (1u64 << 16) as f64 / 256.0;
        let chi2: f64 = counts
            .iter()
            .map(|c| (c - expected).powi(2) / expected)
            .sum();
        assert!(chi2 > 330.0);
    }

    #[test]
    fn debug_hides_secrets() {
        let s = Share::from_ring(Array2::from_elem((2, 3), 123456789u64));
        assert_eq!(format!("{s:?}"), "Share(2x3)");
        let seed = Seed([7u8; 32]);
        assert!(!format!("{seed:?}").contains('7'));
    }

    #[test]
    fn roles() {
        assert_eq!(Role::P0.peer(), Role::P1);
        assert_eq!(Role::from_index(1), Some(Role::P1));
        assert_eq!(Role::from_index(2), None);
        assert_eq!(Role::P1.to_string(), "P1");
    }
}
