//! Hoisted linear combinations with lazy ModDown ("double hoisting": Bossuat–Mouchet–
//! Troncoso-Pastoriza–Hubaux, "Efficient Bootstrapping for Approximate Homomorphic Encryption
//! with Non-Sparse Keys", EUROCRYPT 2021, §3.2; hoisting: Halevi–Shoup, CRYPTO 2018 §5).
//!
//! A rotation ends with the division of its key-switching inner products by `P` (ModDown: an
//! inverse NTT of the special limbs, a base conversion and a forward NTT of every `q` limb, per
//! component). When rotations of one ciphertext are only multiplied by plaintexts and summed
//! (`Σ_s pt_s ⊙ rot(ct, s)`), the division is linear enough to be done once on the sum: each
//! rotation is kept over `Q_l ∪ P` as an [`ExtCiphertext`] `(a0, a1) = (P·σ(c0) + u0, u1)`,
//! where `(u0, u1)` are the inner products, the products are taken over `Q_l ∪ P` with
//! plaintexts that also have residues modulo the special primes ([`crate::Encoder::encode_ext`]),
//! and [`Evaluator::mod_down_ext`] divides the sum by `P` once. A sum can also be rotated
//! before its division ([`Evaluator::rotate_ext`], the giant steps of a baby-step/giant-step
//! product): only `a1` is divided by `P` (it is decomposed), `a0` is permuted over `Q_l ∪ P`.
//!
//! **Cost.** Per rotation this saves the two ModDowns and pays for products over `q_len + k`
//! limbs instead of `q_len` for both components; it pays off when a rotation feeds few
//! products (see `hegcn::linear` for the cost model that decides).
//!
//! **Noise.** With `(u0 + u1·s) = P·σ(c1)·σ(s) + e_ks` (key switching), the sum
//! `Σ pt_s·(a0_s + a1_s·s)` equals `P·Σ pt_s·σ_s(c0 + c1·s) + Σ pt_s·e_ks,s`, and its division
//! by `P` adds one rounding error (`≤ (1 + ‖s‖₁)/2` per coefficient, the conversion of the
//! special limbs being exact and centred) instead of one per rotation multiplied by `pt_s`:
//! the result is the per-rotation path's within the key-switching noise, which the tests check
//! (`lazy_tests`: at least as precise as the per-rotation path, within one bit).
//!
//! **Security.** No new message and no new key: these are server-side evaluations under the
//! evaluation keys the client already provides (semi-honest server, CKKS's IND-CPA security);
//! the result is an ordinary [`Ciphertext`], sanitized as any other before it is returned.

use crate::ciphertext::Ciphertext;
use crate::encoder::Plaintext;
use crate::error::{CkksError, Result};
use crate::evaluator::{bump, check_product_scale, check_scales, Evaluator};
use crate::keys::galois_element_for_step;
use crate::keyswitch;
use crate::poly::{Ntt, RnsPoly};

/// A ciphertext kept over `Q_l ∪ P` before its division by `P`: decrypts, after
/// [`Evaluator::mod_down_ext`], as `(a0 + a1·s)/P`.
#[derive(Clone, Debug)]
pub struct ExtCiphertext {
    pub(crate) a0: RnsPoly<Ntt>,
    pub(crate) a1: RnsPoly<Ntt>,
    pub(crate) scale: f64,
    pub(crate) params_id: u64,
}

impl ExtCiphertext {
    /// The level of the ciphertext it divides down to.
    pub fn level(&self) -> usize {
        self.a0.q_len() - 1
    }
    /// The scale of the encrypted values.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

impl Evaluator {
    fn check_ext(&self, x: &ExtCiphertext) -> Result<()> {
        if x.params_id != self.params().fingerprint() {
            return Err(CkksError::ForeignObject {
                object: "extended ciphertext",
                expected: self.params().fingerprint(),
                found: x.params_id,
            });
        }
        self.params().check_level(x.level())
    }

    fn check_pair_ext(&self, a: &ExtCiphertext, b: &ExtCiphertext) -> Result<()> {
        self.check_ext(a)?;
        self.check_ext(b)?;
        if a.level() != b.level() {
            return Err(CkksError::LevelMismatch {
                left: a.level(),
                right: b.level(),
            });
        }
        Ok(())
    }

    /// An extended plaintext ([`crate::Encoder::encode_ext`]) at `x`'s level or above.
    fn check_plain_ext(&self, x: &ExtCiphertext, pt: &Plaintext) -> Result<()> {
        self.check_ext(x)?;
        pt.check_params(self.params())?;
        let k = self.params().p_primes().len();
        if pt.poly.p_len() != k {
            return Err(CkksError::ParamsMismatch {
                object: "plaintext for a product over Q_l ∪ P (encode it with encode_ext)",
                field: "special limbs",
                expected: k as u64,
                found: pt.poly.p_len() as u64,
            });
        }
        if pt.level() < x.level() {
            return Err(CkksError::LevelMismatch {
                left: x.level(),
                right: pt.level(),
            });
        }
        check_product_scale(self.params(), x.scale * pt.scale, x.level())
    }

    /// `ct` lifted to `Q_l ∪ P` as `(P·c0, P·c1)`, which [`Self::mod_down_ext`] turns back
    /// into `ct` exactly (the unrotated term of a hoisted sum). Not counted: no homomorphic
    /// operation, one pass over `ct`.
    pub fn lift_ext(&self, ct: &Ciphertext) -> Result<ExtCiphertext> {
        ct.check_params(self.params())?;
        let p = self.params();
        let (q_len, k) = (ct.c0.q_len(), p.p_primes().len());
        let lift = |c: &RnsPoly<Ntt>| {
            let mut a = RnsPoly::<Ntt>::zero(p, q_len, k);
            a.add_p_multiple(p, c, None);
            a
        };
        let (a0, a1) = rayon::join(|| lift(&ct.c0), || lift(&ct.c1));
        Ok(ExtCiphertext {
            a0,
            a1,
            scale: ct.scale,
            params_id: ct.params_id,
        })
    }

    /// Rotations of `ct` by each of `steps` (non-zero: a zero step is [`Self::lift_ext`]),
    /// sharing one key-switching decomposition and kept over `Q_l ∪ P` (no ModDown). Counts a
    /// rotation and a key switch per step and one decomposition, as
    /// [`Self::rotate_hoisted`] does, and no ModDown.
    pub fn rotate_hoisted_ext(&self, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<ExtCiphertext>> {
        ct.check_params(self.params())?;
        let p = self.params();
        let elems: Vec<u64> = steps
            .iter()
            .map(|&s| galois_element_for_step(p, s))
            .collect();
        for (&g, &s) in elems.iter().zip(steps) {
            if g == 1 {
                return Err(CkksError::InvalidCount {
                    what: "hoisted extended rotation step (use lift_ext for 0)",
                    value: s.unsigned_abs() as usize,
                    min: 1,
                    max: p.slots() - 1,
                });
            }
            self.key_for(g, s, ct.level())?;
        }
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        bump(&self.counters.decompose, 1);
        let digits = keyswitch::decompose(p, &ct.c1);
        let mut out = Vec::with_capacity(steps.len());
        for (&g, &s) in elems.iter().zip(steps) {
            let key = self.key_for(g, s, ct.level())?;
            let perm = self.perm_for(g);
            let (mut a0, a1) = keyswitch::inner_product(p, &digits, key, Some(&*perm));
            a0.add_p_multiple(p, &ct.c0, Some(&perm));
            bump(&self.counters.rotate, 1);
            bump(&self.counters.key_switch, 1);
            out.push(ExtCiphertext {
                a0,
                a1,
                scale: ct.scale,
                params_id: ct.params_id,
            });
        }
        Ok(out)
    }

    /// Rotation of an extended ciphertext by `step`, kept over `Q_l ∪ P`: `a1` is divided by
    /// `P` and key-switched, `a0` is permuted (the giant step of a doubly hoisted
    /// baby-step/giant-step sum). Counts one rotation, key switch, decomposition and ModDown.
    pub fn rotate_ext(&self, x: &ExtCiphertext, step: i64) -> Result<ExtCiphertext> {
        self.check_ext(x)?;
        let p = self.params();
        let g = galois_element_for_step(p, step);
        if g == 1 {
            bump(&self.counters.rotate, 1);
            return Ok(x.clone());
        }
        let key = self.key_for(g, step, x.level())?;
        let perm = self.perm_for(g);
        let c1_g = x.a1.clone().mod_down(p).automorphism_with(&perm);
        let digits = keyswitch::decompose(p, &c1_g);
        drop(c1_g);
        let (mut a0, a1) = keyswitch::inner_product(p, &digits, key, None);
        drop(digits);
        a0.add_assign(p, &x.a0.automorphism_with(&perm));
        bump(&self.counters.mod_down, 1);
        bump(&self.counters.decompose, 1);
        bump(&self.counters.key_switch, 1);
        bump(&self.counters.rotate, 1);
        Ok(ExtCiphertext {
            a0,
            a1,
            scale: x.scale,
            params_id: x.params_id,
        })
    }

    /// `x ⊙ pt` over `Q_l ∪ P` (`pt` extended, at `x`'s level or above; scales multiply).
    pub fn mul_plain_ext(&self, x: &ExtCiphertext, pt: &Plaintext) -> Result<ExtCiphertext> {
        self.check_plain_ext(x, pt)?;
        let p = self.params();
        let (q_len, k) = (x.a0.q_len(), x.a0.p_len());
        let n = p.n();
        let prod = |a: &RnsPoly<Ntt>| {
            let mut o = RnsPoly::<Ntt>::dirty(n, q_len, k);
            o.mul_ext_into(p, a, &pt.poly, false);
            o
        };
        let (a0, a1) = rayon::join(|| prod(&x.a0), || prod(&x.a1));
        bump(&self.counters.mul_plain, 1);
        Ok(ExtCiphertext {
            a0,
            a1,
            scale: x.scale * pt.scale,
            params_id: x.params_id,
        })
    }

    /// `acc += x ⊙ pt` over `Q_l ∪ P`, fused (no temporary); `acc` at `x`'s level with the
    /// product's scale. Counts one plaintext product and one addition.
    pub fn mul_plain_add_assign_ext(
        &self,
        acc: &mut ExtCiphertext,
        x: &ExtCiphertext,
        pt: &Plaintext,
    ) -> Result<()> {
        self.check_pair_ext(acc, x)?;
        self.check_plain_ext(x, pt)?;
        check_scales(acc.scale, x.scale * pt.scale)?;
        let p = self.params();
        let (a0, a1) = (&mut acc.a0, &mut acc.a1);
        rayon::join(
            || a0.mul_ext_into(p, &x.a0, &pt.poly, true),
            || a1.mul_ext_into(p, &x.a1, &pt.poly, true),
        );
        bump(&self.counters.mul_plain, 1);
        bump(&self.counters.add, 1);
        Ok(())
    }

    /// `acc += x` over `Q_l ∪ P` (same level, matching scales).
    pub fn add_assign_ext(&self, acc: &mut ExtCiphertext, x: &ExtCiphertext) -> Result<()> {
        self.check_pair_ext(acc, x)?;
        check_scales(acc.scale, x.scale)?;
        let p = self.params();
        acc.a0.add_assign(p, &x.a0);
        acc.a1.add_assign(p, &x.a1);
        bump(&self.counters.add, 1);
        Ok(())
    }

    /// Divides both components by `P` (rounding): the ordinary ciphertext over `Q_l`. Counts two
    /// ModDowns.
    pub fn mod_down_ext(&self, x: ExtCiphertext) -> Result<Ciphertext> {
        self.check_ext(&x)?;
        let p = self.params();
        let ExtCiphertext {
            a0,
            a1,
            scale,
            params_id,
        } = x;
        let (c0, c1) = rayon::join(|| a0.mod_down(p), || a1.mod_down(p));
        bump(&self.counters.mod_down, 2);
        Ok(Ciphertext {
            c0,
            c1,
            scale,
            seed: None,
            params_id,
        })
    }
}
