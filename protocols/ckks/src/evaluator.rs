//! Homomorphic operations on ciphertexts with operation counters.
//!
//! Implements the CKKS evaluation algorithms (Cheon–Kim–Kim–Song 2017 §3.4: add, constant and
//! plaintext multiplication, multiplication with relinearization, rescaling) in RNS form
//! (Cheon–Han–Kim–Kim–Song SAC 2018 §3), with rotations/conjugation and relinearization by hybrid
//! key switching (Han–Ki CT-RSA 2020) and hoisted rotations (Halevi–Shoup CRYPTO 2018 §5).
//!
//! **Scale rule.** Adding or subtracting two operands requires the same level and scales whose
//! relative difference is at most [`SCALE_TOLERANCE`] (`1e-9`, which only absorbs floating-point
//! rounding in scale bookkeeping; the result keeps the left operand's scale). Anything else is
//! refused with [`CkksError::LevelMismatch`] or [`CkksError::ScaleMismatch`]: use
//! [`Evaluator::drop_to_level`] and encode plaintexts at `ct.scale()` to line operands up.
//!
//! Every public operation increments a counter in [`OpCounters`], readable with
//! [`Evaluator::counters`] and resettable with [`Evaluator::reset_counters`] (atomics, so the
//! evaluator is `Send + Sync` and may be shared across threads).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::ciphertext::{Ciphertext, Ciphertext3};
use crate::encoder::Plaintext;
use crate::error::{CkksError, Result};
use crate::keys::{galois_element_conjugate, galois_element_for_step, GaloisKeys, RelinKey};
use crate::keyswitch;
use crate::params::CkksParams;
use crate::poly::{ntt_automorphism_perm, Ntt, RnsPoly};

/// Largest accepted relative difference between the scales of two added operands.
pub const SCALE_TOLERANCE: f64 = 1e-9;

/// A snapshot of the operation counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// Additions, subtractions, negations (ciphertext or plaintext/constant operand).
    pub add: u64,
    /// Plaintext × ciphertext products.
    pub mul_plain: u64,
    /// Constant × ciphertext products (real or integer constants).
    pub mul_const: u64,
    /// Ciphertext × ciphertext products.
    pub mul: u64,
    /// Relinearizations.
    pub relinearize: u64,
    /// Rotations (each rotation of a hoisted batch counts one) and conjugations.
    pub rotate: u64,
    /// Key switches (relinearizations and rotations/conjugations).
    pub key_switch: u64,
    /// Key-switching decompositions (one per plain rotation/relinearization, one per hoisted batch).
    pub decompose: u64,
    /// Rescalings.
    pub rescale: u64,
    /// Level drops.
    pub drop_level: u64,
    /// Divisions by the special modulus `P` (ModDown), counted per polynomial: two per plain
    /// rotation or relinearization, none per rotation kept over `Q_l ∪ P` (see
    /// [`crate::lazy`]), one per rotation of such a ciphertext and two per
    /// [`Evaluator::mod_down_ext`].
    #[serde(default)]
    pub mod_down: u64,
}

/// Thread-safe operation counters.
#[derive(Debug, Default)]
pub struct OpCounters {
    pub(crate) add: AtomicU64,
    pub(crate) mul_plain: AtomicU64,
    mul_const: AtomicU64,
    mul: AtomicU64,
    relinearize: AtomicU64,
    pub(crate) rotate: AtomicU64,
    pub(crate) key_switch: AtomicU64,
    pub(crate) decompose: AtomicU64,
    rescale: AtomicU64,
    drop_level: AtomicU64,
    pub(crate) mod_down: AtomicU64,
}

impl OpCounters {
    /// Reads all counters.
    pub fn snapshot(&self) -> OpCounts {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OpCounts {
            add: r(&self.add),
            mul_plain: r(&self.mul_plain),
            mul_const: r(&self.mul_const),
            mul: r(&self.mul),
            relinearize: r(&self.relinearize),
            rotate: r(&self.rotate),
            key_switch: r(&self.key_switch),
            decompose: r(&self.decompose),
            rescale: r(&self.rescale),
            drop_level: r(&self.drop_level),
            mod_down: r(&self.mod_down),
        }
    }
    /// Sets all counters to zero.
    pub fn reset(&self) {
        for a in [
            &self.add,
            &self.mul_plain,
            &self.mul_const,
            &self.mul,
            &self.relinearize,
            &self.rotate,
            &self.key_switch,
            &self.decompose,
            &self.rescale,
            &self.drop_level,
            &self.mod_down,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

pub(crate) fn bump(a: &AtomicU64, by: u64) {
    a.fetch_add(by, Ordering::Relaxed);
}

/// NTT-domain automorphism permutations, one per installed Galois element (computed once when
/// the keys are installed instead of once per rotation).
#[derive(Default)]
struct PermTables(BTreeMap<u64, Vec<u32>>);

impl std::fmt::Debug for PermTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PermTables")
            .field("elements", &self.0.len())
            .finish()
    }
}

/// Evaluates homomorphic operations; holds the evaluation keys and the counters.
///
/// Results are written once into buffers recycled through the crate's buffer pool (see
/// [`crate::pool`]); the `*_assign` variants work in place on their first operand.
#[derive(Debug)]
pub struct Evaluator {
    params: CkksParams,
    relin: Option<RelinKey>,
    galois: GaloisKeys,
    perms: PermTables,
    pub(crate) counters: OpCounters,
}

impl Evaluator {
    /// An evaluator without keys (add, plaintext/constant products, rescale, level drop).
    pub fn new(params: &CkksParams) -> Self {
        Self {
            params: params.clone(),
            relin: None,
            galois: GaloisKeys::default(),
            perms: PermTables::default(),
            counters: OpCounters::default(),
        }
    }
    /// Installs the relinearization key (enables [`Self::mul`]).
    pub fn with_relin_key(mut self, key: RelinKey) -> Self {
        self.relin = Some(key);
        self
    }
    /// Installs Galois keys (enables rotations/conjugation for their elements).
    pub fn with_galois_keys(mut self, keys: GaloisKeys) -> Self {
        let log_n = self.params.inner.log_n;
        for g in keys.elements() {
            self.perms
                .0
                .entry(g)
                .or_insert_with(|| ntt_automorphism_perm(log_n, g));
        }
        self.galois.extend(keys);
        self
    }
    /// The parameters.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }
    /// The installed Galois keys.
    pub fn galois_keys(&self) -> &GaloisKeys {
        &self.galois
    }
    /// A snapshot of the operation counters.
    pub fn counters(&self) -> OpCounts {
        self.counters.snapshot()
    }
    /// Resets the operation counters to zero.
    pub fn reset_counters(&self) {
        self.counters.reset()
    }

    fn check_pair(&self, a: &Ciphertext, b: &Ciphertext) -> Result<()> {
        a.check_params(&self.params)?;
        b.check_params(&self.params)?;
        if a.level() != b.level() {
            return Err(CkksError::LevelMismatch {
                left: a.level(),
                right: b.level(),
            });
        }
        check_scales(a.scale, b.scale)
    }

    /// `a + b` (same level, matching scales).
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check_pair(a, b)?;
        let p = &self.params;
        let (c0, c1) = rayon::join(|| a.c0.add(p, &b.c0), || a.c1.add(p, &b.c1));
        bump(&self.counters.add, 1);
        Ok(Ciphertext {
            c0,
            c1,
            scale: a.scale,
            seed: None,
            params_id: self.params.fingerprint(),
        })
    }

    /// `a += b` in place (same rules as [`Self::add`]).
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        self.check_pair(a, b)?;
        a.c0.add_assign(&self.params, &b.c0);
        a.c1.add_assign(&self.params, &b.c1);
        a.seed = None;
        bump(&self.counters.add, 1);
        Ok(())
    }

    /// `a -= b` in place (same rules as [`Self::sub`]).
    pub fn sub_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        self.check_pair(a, b)?;
        a.c0.sub_assign(&self.params, &b.c0);
        a.c1.sub_assign(&self.params, &b.c1);
        a.seed = None;
        bump(&self.counters.add, 1);
        Ok(())
    }

    /// `a - b` (same level, matching scales).
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check_pair(a, b)?;
        let p = &self.params;
        let (c0, c1) = rayon::join(|| a.c0.sub(p, &b.c0), || a.c1.sub(p, &b.c1));
        bump(&self.counters.add, 1);
        Ok(Ciphertext {
            c0,
            c1,
            scale: a.scale,
            seed: None,
            params_id: self.params.fingerprint(),
        })
    }

    /// `-a`.
    pub fn neg(&self, a: &Ciphertext) -> Result<Ciphertext> {
        a.check_params(&self.params)?;
        let mut out = a.clone();
        out.c0.neg_assign(&self.params);
        out.c1.neg_assign(&self.params);
        out.seed = None;
        bump(&self.counters.add, 1);
        Ok(out)
    }

    /// Checks that a plaintext can act on the ciphertext: plaintexts at a higher level are
    /// accepted (only their first `level + 1` limbs are used, which is exact for an encoded value
    /// below `Q_level/2`).
    fn check_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<()> {
        ct.check_params(&self.params)?;
        pt.check_params(&self.params)?;
        // An extended plaintext's special limbs are for products over Q_l ∪ P (`mul_plain_ext`).
        pt.refuse_extended("plaintext for a product over Q_l")?;
        if pt.level() < ct.level() || pt.poly.limb(0).len() != self.params.n() {
            return Err(CkksError::LevelMismatch {
                left: ct.level(),
                right: pt.level(),
            });
        }
        Ok(())
    }

    /// `ct + pt` (plaintext at the same or a higher level, matching scale).
    pub fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.check_plain(ct, pt)?;
        check_scales(ct.scale, pt.scale)?;
        bump(&self.counters.add, 1);
        Ok(Ciphertext {
            c0: ct.c0.add(&self.params, &pt.poly),
            c1: ct.c1.clone(),
            scale: ct.scale,
            seed: ct.seed,
            params_id: ct.params_id,
        })
    }

    /// `ct - pt` (plaintext at the same or a higher level, matching scale).
    pub fn sub_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.check_plain(ct, pt)?;
        check_scales(ct.scale, pt.scale)?;
        bump(&self.counters.add, 1);
        Ok(Ciphertext {
            c0: ct.c0.sub(&self.params, &pt.poly),
            c1: ct.c1.clone(),
            scale: ct.scale,
            seed: ct.seed,
            params_id: ct.params_id,
        })
    }

    /// Adds the real constant `c` to every slot (encoded as `round(c·scale)`).
    pub fn add_const(&self, ct: &Ciphertext, c: f64) -> Result<Ciphertext> {
        ct.check_params(&self.params)?;
        let v = scaled_int(c, ct.scale)?;
        let mut out = ct.clone();
        out.c0.add_scalar_assign(&self.params, v);
        bump(&self.counters.add, 1);
        Ok(out)
    }

    /// `ct · pt` slot-wise; the result's scale is the product of the scales (rescale after).
    pub fn mul_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.check_plain(ct, pt)?;
        check_product_scale(&self.params, ct.scale * pt.scale, ct.level())?;
        let p = &self.params;
        let (c0, c1) = rayon::join(|| ct.c0.mul(p, &pt.poly), || ct.c1.mul(p, &pt.poly));
        bump(&self.counters.mul_plain, 1);
        Ok(Ciphertext {
            c0,
            c1,
            scale: ct.scale * pt.scale,
            seed: None,
            params_id: self.params.fingerprint(),
        })
    }

    /// `acc += ct · pt`, fused: what `add_assign(acc, &mul_plain(ct, pt))` computes, in one
    /// pass and without the temporary ciphertext (`acc` at `ct`'s level with the product's
    /// scale; the plaintext at that level or above). Counted as one plaintext product and one
    /// addition.
    ///
    /// # Errors
    /// Objects of other parameters, levels that do not match, scales that do not match.
    pub fn mul_plain_add_assign(
        &self,
        acc: &mut Ciphertext,
        ct: &Ciphertext,
        pt: &Plaintext,
    ) -> Result<()> {
        self.check_plain(ct, pt)?;
        acc.check_params(&self.params)?;
        if acc.level() != ct.level() {
            return Err(CkksError::LevelMismatch {
                left: acc.level(),
                right: ct.level(),
            });
        }
        check_scales(acc.scale, ct.scale * pt.scale)?;
        let p = &self.params;
        let (c0, c1) = (&mut acc.c0, &mut acc.c1);
        rayon::join(
            || c0.mul_add_prefix_assign(p, &ct.c0, &pt.poly),
            || c1.mul_add_prefix_assign(p, &ct.c1, &pt.poly),
        );
        acc.seed = None;
        bump(&self.counters.mul_plain, 1);
        bump(&self.counters.add, 1);
        Ok(())
    }

    /// `ct *= pt` in place (same rules as [`Self::mul_plain`]).
    pub fn mul_plain_assign(&self, ct: &mut Ciphertext, pt: &Plaintext) -> Result<()> {
        self.check_plain(ct, pt)?;
        check_product_scale(&self.params, ct.scale * pt.scale, ct.level())?;
        let p = &self.params;
        let (c0, c1) = (&mut ct.c0, &mut ct.c1);
        rayon::join(
            || c0.mul_prefix_assign(p, &pt.poly),
            || c1.mul_prefix_assign(p, &pt.poly),
        );
        ct.scale *= pt.scale;
        ct.seed = None;
        bump(&self.counters.mul_plain, 1);
        Ok(())
    }

    /// Multiplies every slot by the real constant `c`, encoded as `round(c·q_level)` with scale
    /// `q_level` (the prime the next rescale removes), so that after [`Self::rescale`] the
    /// ciphertext's scale is exactly what it was before the product.
    pub fn mul_const(&self, ct: &Ciphertext, c: f64) -> Result<Ciphertext> {
        ct.check_params(&self.params)?;
        let q = self.params.inner.q[ct.level()] as f64;
        check_product_scale(&self.params, ct.scale * q, ct.level())?;
        let v = scaled_int(c, q)?;
        let mut out = ct.clone();
        out.c0.mul_scalar_assign(&self.params, v);
        out.c1.mul_scalar_assign(&self.params, v);
        out.scale = ct.scale * q;
        out.seed = None;
        bump(&self.counters.mul_const, 1);
        Ok(out)
    }

    /// `acc += c·ct`, fused: what `add_assign(acc, &mul_const(ct, c))` computes, in one pass
    /// over both ciphertexts and without the temporary (`acc` at `ct`'s level with the scale of
    /// [`Self::mul_const`]'s result, `ct.scale · q_ℓ`). Counted as one constant product and one
    /// addition.
    ///
    /// # Errors
    /// Ciphertexts of other parameters, levels or scales that do not match, a constant out of
    /// range.
    pub fn mul_const_add_assign(
        &self,
        acc: &mut Ciphertext,
        ct: &Ciphertext,
        c: f64,
    ) -> Result<()> {
        ct.check_params(&self.params)?;
        acc.check_params(&self.params)?;
        if acc.level() != ct.level() {
            return Err(CkksError::LevelMismatch {
                left: acc.level(),
                right: ct.level(),
            });
        }
        let q = self.params.inner.q[ct.level()] as f64;
        check_scales(acc.scale, ct.scale * q)?;
        let v = scaled_int(c, q)?;
        acc.c0.mul_scalar_add_assign(&self.params, &ct.c0, v);
        acc.c1.mul_scalar_add_assign(&self.params, &ct.c1, v);
        acc.seed = None;
        bump(&self.counters.mul_const, 1);
        bump(&self.counters.add, 1);
        Ok(())
    }

    /// Multiplies every slot by the integer `k` (no scale change, no rescale needed).
    pub fn mul_int(&self, ct: &Ciphertext, k: i64) -> Result<Ciphertext> {
        ct.check_params(&self.params)?;
        let mut out = ct.clone();
        out.c0.mul_scalar_assign(&self.params, k as i128);
        out.c1.mul_scalar_assign(&self.params, k as i128);
        out.seed = None;
        bump(&self.counters.mul_const, 1);
        Ok(out)
    }

    /// `a · b` without relinearization (same level; scales multiply).
    pub fn mul_no_relin(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext3> {
        a.check_params(&self.params)?;
        b.check_params(&self.params)?;
        if a.level() != b.level() {
            return Err(CkksError::LevelMismatch {
                left: a.level(),
                right: b.level(),
            });
        }
        check_product_scale(&self.params, a.scale * b.scale, a.level())?;
        let p = &self.params;
        let ((d0, d1), d2) = if std::ptr::eq(a, b) {
            // Squaring (the same ciphertext twice): d1 = 2·c0·c1 needs one product, not two.
            rayon::join(
                || a.c0.square_and_double_product(p, &a.c1),
                || a.c1.mul(p, &a.c1),
            )
        } else {
            rayon::join(
                || {
                    let d0 = a.c0.mul(p, &b.c0);
                    let mut d1 = a.c0.mul(p, &b.c1);
                    d1.mul_add_assign(p, &a.c1, &b.c0);
                    (d0, d1)
                },
                || a.c1.mul(p, &b.c1),
            )
        };
        bump(&self.counters.mul, 1);
        Ok(Ciphertext3 {
            d0,
            d1,
            d2,
            scale: a.scale * b.scale,
            params_id: self.params.fingerprint(),
        })
    }

    /// Relinearizes `(d0, d1, d2)` to a two-component ciphertext with the relinearization key.
    pub fn relinearize(&self, ct: &Ciphertext3) -> Result<Ciphertext> {
        let key = self.relin.as_ref().ok_or(CkksError::MissingRelinKey)?;
        key.0.check_level(ct.level())?;
        if ct.params_id != self.params.fingerprint() {
            return Err(CkksError::ForeignObject {
                object: "ciphertext",
                expected: self.params.fingerprint(),
                found: ct.params_id,
            });
        }
        self.params.check_level(ct.level())?;
        // (d0, d1) + KeySwitch(d2), the additions fused into the ModDown passes.
        let (c0, c1) =
            keyswitch::key_switch_add(&self.params, &ct.d2, &key.0, &ct.d0, Some(&ct.d1));
        bump(&self.counters.relinearize, 1);
        bump(&self.counters.key_switch, 1);
        bump(&self.counters.mod_down, 2);
        bump(&self.counters.decompose, 1);
        Ok(Ciphertext {
            c0,
            c1,
            scale: ct.scale,
            seed: None,
            params_id: self.params.fingerprint(),
        })
    }

    /// `a · b` followed by relinearization (counts one product and one relinearization).
    pub fn mul(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        if self.relin.is_none() {
            return Err(CkksError::MissingRelinKey);
        }
        let t = self.mul_no_relin(a, b)?;
        self.relinearize(&t)
    }

    /// `a²` with relinearization (one product fewer than a general [`Self::mul`]).
    pub fn square(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.mul(a, a)
    }

    /// Divides by the last prime `q_level` (rounding) and moves down one level; the scale is
    /// divided by `q_level`.
    pub fn rescale(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        ct.check_params(&self.params)?;
        let level = ct.level();
        if level == 0 {
            return Err(CkksError::LevelExhausted {
                op: "rescale",
                level,
            });
        }
        let q = self.params.inner.q[level] as f64;
        let p = &self.params;
        let (c0, c1) = rayon::join(|| ct.c0.rescaled_by_last(p), || ct.c1.rescaled_by_last(p));
        bump(&self.counters.rescale, 1);
        Ok(Ciphertext {
            c0,
            c1,
            scale: ct.scale / q,
            seed: None,
            params_id: ct.params_id,
        })
    }

    /// [`Self::rescale`] in place.
    pub fn rescale_assign(&self, ct: &mut Ciphertext) -> Result<()> {
        ct.check_params(&self.params)?;
        let level = ct.level();
        if level == 0 {
            return Err(CkksError::LevelExhausted {
                op: "rescale",
                level,
            });
        }
        let q = self.params.inner.q[level] as f64;
        let p = &self.params;
        let (c0, c1) = (&mut ct.c0, &mut ct.c1);
        rayon::join(|| c0.rescale_by_last(p), || c1.rescale_by_last(p));
        ct.scale /= q;
        ct.seed = None;
        bump(&self.counters.rescale, 1);
        Ok(())
    }

    /// Drops the ciphertext to `level` (no scale change; exact for the message).
    pub fn drop_to_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        ct.check_params(&self.params)?;
        if level > ct.level() {
            return Err(CkksError::InvalidLevel {
                level,
                max: ct.level(),
            });
        }
        bump(&self.counters.drop_level, 1);
        Ok(Ciphertext {
            c0: ct.c0.restrict(level + 1, false),
            c1: ct.c1.restrict(level + 1, false),
            scale: ct.scale,
            seed: None,
            params_id: ct.params_id,
        })
    }

    /// Drops the ciphertext by one level.
    pub fn drop_level(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        if ct.level() == 0 {
            return Err(CkksError::LevelExhausted {
                op: "drop a level of",
                level: 0,
            });
        }
        self.drop_to_level(ct, ct.level() - 1)
    }

    /// The key of Galois element `g` (rotation `step`), checked to switch at `level` (a key
    /// restricted with [`GaloisKeys::restrict_to_level`] serves only levels up to its own).
    pub(crate) fn key_for(
        &self,
        g: u64,
        step: i64,
        level: usize,
    ) -> Result<&crate::keys::KeySwitchKey> {
        let key = self
            .galois
            .keys
            .get(&g)
            .ok_or(CkksError::MissingGaloisKey {
                step,
                galois_element: g,
            })?;
        key.check_level(level)?;
        Ok(key)
    }

    pub(crate) fn perm_for(&self, g: u64) -> std::borrow::Cow<'_, [u32]> {
        match self.perms.0.get(&g) {
            Some(p) => std::borrow::Cow::Borrowed(p),
            None => std::borrow::Cow::Owned(ntt_automorphism_perm(self.params.inner.log_n, g)),
        }
    }

    fn apply_galois(&self, ct: &Ciphertext, g: u64, step: i64) -> Result<Ciphertext> {
        ct.check_params(&self.params)?;
        let key = self.key_for(g, step, ct.level())?;
        let perm = self.perm_for(g);
        // σ_g(c1) in the NTT domain is a permutation; decomposing it gives the same digits as
        // reading the digits of c1 through σ_g (see `keyswitch`), with 1/β of the permuting.
        let c1_g = ct.c1.automorphism_with(&perm);
        let digits = keyswitch::decompose(&self.params, &c1_g);
        drop(c1_g);
        bump(&self.counters.decompose, 1);
        let (acc0, acc1) = keyswitch::inner_product(&self.params, &digits, key, None);
        drop(digits);
        Ok(self.finish_rotation(ct, acc0, acc1, &perm))
    }

    /// `(σ_g(c0) + acc0/P, acc1/P)`: the ModDown of a rotation's inner products with σ_g(c0)
    /// added in the same pass.
    fn finish_rotation(
        &self,
        ct: &Ciphertext,
        acc0: RnsPoly<Ntt>,
        acc1: RnsPoly<Ntt>,
        perm: &[u32],
    ) -> Ciphertext {
        let p = &self.params;
        let (c0, c1) = rayon::join(
            || acc0.mod_down_add(p, Some(&ct.c0), Some(perm)),
            || acc1.mod_down(p),
        );
        bump(&self.counters.key_switch, 1);
        bump(&self.counters.rotate, 1);
        bump(&self.counters.mod_down, 2);
        Ciphertext {
            c0,
            c1,
            scale: ct.scale,
            seed: None,
            params_id: ct.params_id,
        }
    }

    /// Rotates the slots left by `step` (negative: right), needing the Galois key for `step`.
    pub fn rotate(&self, ct: &Ciphertext, step: i64) -> Result<Ciphertext> {
        let g = galois_element_for_step(&self.params, step);
        if g == 1 {
            ct.check_params(&self.params)?;
            bump(&self.counters.rotate, 1);
            return Ok(ct.clone());
        }
        self.apply_galois(ct, g, step)
    }

    /// Complex-conjugates every slot (needs the conjugation key).
    pub fn conjugate(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        let g = galois_element_conjugate(&self.params);
        self.apply_galois(ct, g, 0)
    }

    /// Rotations of one ciphertext by each of `steps`, sharing one key-switching decomposition
    /// (hoisting). Returns the rotated ciphertexts in the order of `steps`.
    pub fn rotate_hoisted(&self, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Ciphertext>> {
        ct.check_params(&self.params)?;
        let elems: Vec<u64> = steps
            .iter()
            .map(|&s| galois_element_for_step(&self.params, s))
            .collect();
        for (&g, &s) in elems.iter().zip(steps) {
            if g != 1 {
                self.key_for(g, s, ct.level())?;
            }
        }
        let needs_ks = elems.iter().any(|&g| g != 1);
        let digits = if needs_ks {
            bump(&self.counters.decompose, 1);
            keyswitch::decompose(&self.params, &ct.c1)
        } else {
            Vec::new()
        };
        let mut out = Vec::with_capacity(steps.len());
        for (&g, &s) in elems.iter().zip(steps) {
            if g == 1 {
                bump(&self.counters.rotate, 1);
                out.push(ct.clone());
                continue;
            }
            let key = self.key_for(g, s, ct.level())?;
            let perm = self.perm_for(g);
            let (acc0, acc1) = keyswitch::inner_product(&self.params, &digits, key, Some(&*perm));
            out.push(self.finish_rotation(ct, acc0, acc1, &perm));
        }
        Ok(out)
    }
}

pub(crate) fn check_product_scale(params: &CkksParams, scale: f64, level: usize) -> Result<()> {
    let log_q: f64 = params.inner.q[..=level]
        .iter()
        .map(|&q| (q as f64).log2())
        .sum();
    if !scale.is_finite() || scale.log2() >= log_q - 1.0 {
        return Err(CkksError::InvalidScale {
            scale,
            reason: "product scale must stay below Q_level / 2; rescale the operands first",
        });
    }
    Ok(())
}

pub(crate) fn check_scales(left: f64, right: f64) -> Result<()> {
    if ((left - right) / left).abs() > SCALE_TOLERANCE {
        return Err(CkksError::ScaleMismatch {
            left,
            right,
            tolerance: SCALE_TOLERANCE,
        });
    }
    Ok(())
}

fn scaled_int(c: f64, scale: f64) -> Result<i128> {
    let v = (c * scale).round();
    if !(v.is_finite() && v.abs() < 2f64.powi(120)) {
        return Err(CkksError::ValueOutOfRange {
            index: 0,
            value: c,
            limit_bits: 120,
        });
    }
    Ok(v as i128)
}
