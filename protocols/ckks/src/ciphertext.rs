//! Ciphertexts: pairs `(c0, c1)` in NTT form with `c0 + c1·s ≈ Δ·m` modulo `Q_level`
//! (CKKS, Cheon–Kim–Kim–Song 2017 §3.4), carrying their scale `Δ`.

use crate::error::Result;
use crate::params::CkksParams;
use crate::poly::{Ntt, RnsPoly};

/// A CKKS ciphertext at some level with its scale.
///
/// A fresh secret-key ciphertext remembers the 32-byte seed its `c1` was generated from; it is
/// serialized as that seed plus `c0` (half the size) until an operation produces a new `c1`.
#[derive(Clone, Debug)]
pub struct Ciphertext {
    pub(crate) c0: RnsPoly<Ntt>,
    pub(crate) c1: RnsPoly<Ntt>,
    pub(crate) scale: f64,
    pub(crate) seed: Option<[u8; 32]>,
    pub(crate) params_id: u64,
}

impl Ciphertext {
    /// The level: the number of rescalings still possible.
    pub fn level(&self) -> usize {
        self.c0.q_len() - 1
    }
    /// The scale `Δ` of the encrypted values.
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// Whether `c1` is still the seed-generated one (compressed serialization).
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
    }
    /// The two components `(c0, c1)`.
    pub fn parts(&self) -> (&RnsPoly<Ntt>, &RnsPoly<Ntt>) {
        (&self.c0, &self.c1)
    }
    pub(crate) fn check_params(&self, params: &CkksParams) -> Result<()> {
        if self.params_id != params.fingerprint() {
            return Err(crate::error::CkksError::ForeignObject {
                object: "ciphertext",
                expected: params.fingerprint(),
                found: self.params_id,
            });
        }
        let n = self.c0.limb(0).len();
        if n != params.n() {
            return Err(crate::error::CkksError::ParamsMismatch {
                object: "ciphertext",
                field: "N",
                expected: params.n() as u64,
                found: n as u64,
            });
        }
        params.check_level(self.level())
    }
}

/// The three-component result `(d0, d1, d2)` of a ciphertext product before relinearization
/// (decrypts as `d0 + d1·s + d2·s²`).
#[derive(Clone, Debug)]
pub struct Ciphertext3 {
    pub(crate) d0: RnsPoly<Ntt>,
    pub(crate) d1: RnsPoly<Ntt>,
    pub(crate) d2: RnsPoly<Ntt>,
    pub(crate) scale: f64,
    pub(crate) params_id: u64,
}

impl Ciphertext3 {
    /// The level.
    pub fn level(&self) -> usize {
        self.d0.q_len() - 1
    }
    /// The scale (product of the factors' scales).
    pub fn scale(&self) -> f64 {
        self.scale
    }
}
