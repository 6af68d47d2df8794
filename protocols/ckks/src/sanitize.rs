//! Output sanitization by re-randomization and noise flooding: what an evaluator does to a
//! result ciphertext before handing it to the key owner, so that the ciphertext shows the
//! encrypted values and as little as possible of how they were computed.
//!
//! **Setting.** A client owns the secret key `s`; a server evaluates a function with private
//! inputs (model weights) on the client's ciphertexts and returns the result `(c0, c1)` at
//! level `ℓ` with scale `Δ`. Without sanitization the client learns more than the result:
//!
//! * `c1` is a deterministic function of the client's own ciphertexts and evaluation keys and
//!   of the server's weights, so the client can test guesses of the weights against it;
//! * the phase `c0 + c1·s = Δ·m + e_eval` carries the evaluation noise `e_eval` (rescale and
//!   key-switch roundings, encoding errors, the input noise, all multiplied through the
//!   weights), which depends on the weights beyond the result `m`.
//!
//! [`Evaluator::sanitize`] returns `(c0 + z0 + f, c1 + z1)` where `(z0, z1) = (v·b + e0,
//! v·a + e1)` is a fresh public-key encryption of zero under the **client's** public key `(b, a)`
//! (ternary `v`, Gaussian `e0, e1`, all from an OS-seeded ChaCha20 generator) and `f` is a
//! polynomial with coefficients uniform on `[−W, W]` from the same kind of generator.
//!
//! **What the client can learn** (semi-honest server, client holding `s`). The phase becomes
//! `Δ·m + e_eval + e_fresh + f` with `e_fresh = v·e + e0 + e1·s`, `‖e_fresh‖∞ ≤ 19·(2N + 1)`
//! ([`fresh_noise_bound`]). With `B = B_eval + 19·(2N + 1)` a bound on the coefficients of
//! `e_eval + e_fresh`, adding a uniform `f` on `[−W, W]` moves each coefficient's distribution by
//! at most `B/(2W + 1)` in statistical distance, so the phase is within
//! `δ = N·B/(2W + 1)` ([`Flood::statistical_distance`]) of `Δ·m + f'` for a uniform `f'` that
//! does not depend on the weights. Once the phase no longer involves `v, e1`, `z1 = v·a + e1` is
//! an RLWE sample under the secret `v`: `c1 + z1` is computationally indistinguishable from
//! uniform (decision RLWE, the assumption the scheme's own security rests on) and hides `c1`.
//! So the client's view is simulatable from `m` alone up to `δ` plus the RLWE advantage.
//! This assumes a well-formed public key (`b = −a·s + e`, small `e`; `a` is always expanded from
//! its seed). A malicious client choosing `b` freely adds `v·(b + a·s)` to the phase, which can
//! dominate the flood and reveal `v`, and with it `c1` up to `e1`: malicious clients are outside
//! this model (defending needs a proof of well-formedness of the key).
//! Noise flooding with `W = 2^σ·B` (σ = 40 for the usual 40-bit statistical security) is the
//! standard tool (Gentry's thesis §21, "circuit privacy"; Bergerat et al., "Noise flooding for
//! FHE", 2023, for CKKS). Here `W = 2^s·B` with `s` = [`Flood::flood_bits`], so
//! `δ ≈ N·2^−(s+1)`: `s ≥ 40 + log2(N) − 1` gives 40 bits.
//!
//! **The catch (precision).** CKKS decrypts `Δ·m + noise` and the flood is noise: it adds to
//! the real part of every decoded slot an error of standard deviation
//! `√(N·W(W+1)/6)/Δ ≈ W·√(N/6)/Δ` ([`Flood::slot_error_sd`]). With `B ≈ 2·Δ·ε` (an evaluation
//! whose slots are accurate to `ε`, see the caller's derivation of `B_eval`), the flood error is
//! `≈ 2^(s+1)·ε·√(N/6)`: the hiding bits are paid one for one in precision bits, and 40 bits of
//! statistical hiding cost ~40 + log2(N) bits of precision, more than a `Δ = 2^40` ciphertext
//! has. Callers choose `s` and must state the `δ` they reach ([`Flood::hiding_bits`]).
//! [`Evaluator::sanitize`] also refuses a flood that does not fit the modulus
//! ([`CkksError::FloodTooWide`]: `Δ·max|m| + B + W < Q_ℓ/2`).
//!
//! The operation counters are not touched (sanitization is not part of the evaluated circuit).

use rand::{CryptoRng, Rng, RngCore};
use zeroize::Zeroizing;

use crate::ciphertext::Ciphertext;
use crate::encoder::Plaintext;
use crate::error::{CkksError, Result};
use crate::evaluator::Evaluator;
use crate::keys::PublicKey;
use crate::poly::RnsPoly;
use crate::sampling::{self, ERROR_BOUND};

/// Largest flood width accepted (the coefficients are sampled as `i64`).
pub const MAX_FLOOD_WIDTH_BITS: u32 = 62;

/// `19·(2N + 1)`: bound on the coefficients of `v·e + e0 + e1·s`, the noise of a public-key
/// encryption of zero (ternary `v`, `s`; Gaussian errors truncated at ±19).
pub fn fresh_noise_bound(n: usize) -> f64 {
    ERROR_BOUND as f64 * (2 * n + 1) as f64
}

/// How much to flood: the flood is uniform on `[−W, W]` with `W = 2^flood_bits · B`,
/// `B = noise_bound + fresh_noise_bound(N)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flood {
    /// `B_eval`: bound on the coefficients (integers modulo `Q_ℓ`, ∞-norm) of the evaluation
    /// noise that depends on the evaluator's private inputs.
    pub noise_bound: f64,
    /// `s`: the flood width is `2^s` times the noise bound.
    pub flood_bits: u32,
    /// Bound on `|m|` over all slots of the result (for the modulus check).
    pub message_bound: f64,
}

impl Flood {
    /// `B = noise_bound + 19·(2N + 1)`: everything the flood must hide.
    pub fn hidden_bound(&self, n: usize) -> f64 {
        self.noise_bound.max(0.0) + fresh_noise_bound(n)
    }

    /// The flood width `W = ⌈2^s · B⌉`.
    pub fn width(&self, n: usize) -> f64 {
        (self.hidden_bound(n) * 2f64.powi(self.flood_bits as i32)).ceil()
    }

    /// `δ = min(1, N·B/(2W + 1))`: statistical distance between the flooded phase and one that
    /// does not depend on the hidden noise (summed over the `N` coefficients).
    pub fn statistical_distance(&self, n: usize) -> f64 {
        (n as f64 * self.hidden_bound(n) / (2.0 * self.width(n) + 1.0)).min(1.0)
    }

    /// `−log2 δ`: the bits of statistical hiding reached (`≈ s + 1 − log2 N`; 0 means no
    /// statistical guarantee at all).
    pub fn hiding_bits(&self, n: usize) -> f64 {
        (-self.statistical_distance(n).log2()).max(0.0)
    }

    /// Standard deviation of the error the flood adds to each decoded slot (real part) at scale
    /// `scale`: `√(N·W(W+1)/6) / Δ` (each slot is a sum of the `N` coefficients times unit
    /// roots, whose real parts have mean square 1/2; a uniform integer on `[−W, W]` has
    /// variance `W(W+1)/3`).
    pub fn slot_error_sd(&self, n: usize, scale: f64) -> f64 {
        let w = self.width(n);
        (n as f64 * w * (w + 1.0) / 6.0).sqrt() / scale
    }

    /// Checks that `W < 2^62` and `Δ·max|m| + B + W < Q_ℓ/2` (`log_q` = `log2 Q_ℓ`).
    fn check_room(&self, n: usize, scale: f64, log_q: f64, level: usize) -> Result<()> {
        let w = self.width(n);
        let message = scale * self.message_bound.abs() + self.hidden_bound(n);
        let too_wide = |room_bits| CkksError::FloodTooWide {
            flood_bits: w.log2(),
            message_bits: message.log2(),
            room_bits,
            level,
        };
        if !(w.is_finite() && w < 2f64.powi(MAX_FLOOD_WIDTH_BITS as i32)) {
            return Err(too_wide(MAX_FLOOD_WIDTH_BITS as f64));
        }
        let room = log_q - 1.0;
        if !message.is_finite() || (message + w).log2() >= room {
            return Err(too_wide(room));
        }
        Ok(())
    }
}

/// Default `s` of a model's logit flood ([`FloodConfig`]).
pub const DEFAULT_FLOOD_BITS: u32 = 0;

/// Default `ε` of a model's logit flood: bound on the evaluation error of any slot of its
/// result ciphertexts (an empirical bound with margin, see the model crates' docs).
pub const DEFAULT_EVAL_ERROR_BOUND: f64 = 1.0 / 4096.0;

/// Largest `|logit|` a model's flood leaves room for (at `Δ = 2^40` and a 50-bit `q_0`, values
/// beyond `q_0/(2Δ) = 512` wrap around anyway).
pub const LOGIT_BOUND: f64 = 256.0;

/// How a served model's result ciphertexts (its logits) are flooded — the one rule of the model
/// crates (`hegcn`'s layouts, `hecnn`): `W = 2^s·(B_eval + fresh-encryption noise)` with
/// `B_eval = 2·Δ·ε`, because a polynomial whose slots (real and imaginary parts below `ε`) are
/// bounded by `Δ·ε·√2` has coefficients at most that large (inverse canonical embedding).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FloodConfig {
    /// `s`: the flood is uniform on `[−W, W]`, `W = 2^s·(B_eval + fresh-encryption noise)`.
    pub flood_bits: u32,
    /// `ε`: bound on the slot error of the result ciphertexts before the flood.
    pub eval_error_bound: f64,
}

impl Default for FloodConfig {
    fn default() -> Self {
        Self {
            flood_bits: DEFAULT_FLOOD_BITS,
            eval_error_bound: DEFAULT_EVAL_ERROR_BOUND,
        }
    }
}

impl FloodConfig {
    /// The flood of result ciphertexts at scale `scale` (`Δ`): `B_eval = 2·Δ·ε`, messages up
    /// to [`LOGIT_BOUND`].
    pub fn flood(&self, scale: f64) -> Flood {
        Flood {
            noise_bound: 2.0 * scale * self.eval_error_bound.abs(),
            flood_bits: self.flood_bits,
            message_bound: LOGIT_BOUND,
        }
    }
}

impl Evaluator {
    /// [`Self::sanitize`] on every ciphertext of `cts` (in parallel), each with fresh randomness.
    ///
    /// # Errors
    /// As [`Self::sanitize`], for the first ciphertext that fails.
    pub fn sanitize_all(
        &self,
        cts: &[Ciphertext],
        pk: &PublicKey,
        flood: &Flood,
    ) -> Result<Vec<Ciphertext>> {
        use rayon::prelude::*;
        cts.par_iter()
            .map(|ct| self.sanitize(ct, pk, flood))
            .collect()
    }
}

/// `N` coefficients uniform on `[−w, w]` (zeroized when dropped: they would reveal `e_eval`).
fn flood_coeffs<R: RngCore + CryptoRng>(rng: &mut R, n: usize, w: i64) -> Zeroizing<Vec<i64>> {
    Zeroizing::new((0..n).map(|_| rng.gen_range(-w..=w)).collect())
}

impl Evaluator {
    /// Re-randomizes `ct` with an encryption of zero under the key owner's public key `pk` and
    /// floods its phase with uniform noise of width [`Flood::width`], from an OS-seeded
    /// ChaCha20 generator (see the module docs for what this hides and what it costs).
    ///
    /// # Errors
    /// A ciphertext or key of other parameters; [`CkksError::LevelMismatch`] if `pk` does not
    /// reach `ct`'s level; [`CkksError::FloodTooWide`] if the flood does not fit the modulus.
    pub fn sanitize(&self, ct: &Ciphertext, pk: &PublicKey, flood: &Flood) -> Result<Ciphertext> {
        self.sanitize_with_rng(ct, pk, flood, &mut sampling::os_rng())
    }

    /// [`Self::sanitize`] with a caller-supplied CSPRNG.
    pub fn sanitize_with_rng<R: RngCore + CryptoRng>(
        &self,
        ct: &Ciphertext,
        pk: &PublicKey,
        flood: &Flood,
        rng: &mut R,
    ) -> Result<Ciphertext> {
        let params = self.params();
        ct.check_params(params)?;
        pk.params().ensure_same(params, "public key")?;
        let level = ct.level();
        let q_len = level + 1;
        let log_q: f64 = params.q_primes()[..q_len]
            .iter()
            .map(|&q| (q as f64).log2())
            .sum();
        let n = params.n();
        flood.check_room(n, ct.scale, log_q, level)?;
        let zero = Plaintext {
            poly: RnsPoly::zero(params, q_len, 0),
            scale: ct.scale,
            params_id: params.fingerprint(),
        };
        let z = pk.encrypt_with_rng(&zero, rng)?;
        let f = flood_coeffs(rng, n, flood.width(n) as i64);
        let mut f_poly = RnsPoly::from_signed(params, &f, q_len, 0).into_ntt(params);
        drop(f);
        let mut c0 = ct.c0.add(params, &z.c0);
        c0.add_assign(params, &f_poly);
        f_poly.zeroize_data();
        Ok(Ciphertext {
            c0,
            c1: ct.c1.add(params, &z.c1),
            scale: ct.scale,
            seed: None,
            params_id: ct.params_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::presets;
    use crate::scheme_tests::setup;
    use crate::Encoder;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// A flood for slot values of magnitude ≤ 2 with `B_eval = 2^20`.
    fn flood(bits: u32) -> Flood {
        Flood {
            noise_bound: 2f64.powi(20),
            flood_bits: bits,
            message_bound: 2.0,
        }
    }

    /// The phase `c0 + c1·s` minus `Δ·m`, centred coefficients of limb 0 (level-0 ciphertexts,
    /// so limb 0 is the whole modulus).
    fn phase_noise(c: &crate::scheme_tests::Ctx, ct: &Ciphertext, pt: &Plaintext) -> Vec<i64> {
        let mut d = c.sk.decrypt(ct).unwrap().poly;
        d.sub_assign(&c.params, &pt.poly);
        let q = c.params.q_primes()[0];
        let coeff = d.into_coeff(&c.params);
        coeff
            .limb(0)
            .iter()
            .map(|&x| {
                if x > q / 2 {
                    x as i64 - q as i64
                } else {
                    x as i64
                }
            })
            .collect()
    }

    #[test]
    fn sanitized_ciphertext_decrypts_within_the_flood_and_has_a_fresh_c1() {
        let mut c = setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &[], false, false);
        let p = c.params.clone();
        let x = c.random(-2.0, 2.0);
        let enc = Encoder::new(&p);
        let pt = enc.encode(&x, 0, p.default_scale()).unwrap();
        let ct = c.pk.encrypt(&pt).unwrap();
        let pk0 = c.pk.at_level(0).unwrap();
        let eval = Evaluator::new(&p);
        let f = flood(4);
        let n = p.n();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let s = eval.sanitize_with_rng(&ct, &pk0, &f, &mut rng).unwrap();
        // c1 is fresh: it differs from the input's almost everywhere.
        let (c1_old, c1_new) = (ct.parts().1, s.parts().1);
        let same = c1_old
            .limb(0)
            .iter()
            .zip(c1_new.limb(0))
            .filter(|(a, b)| a == b)
            .count();
        assert!(same < 4, "{same} of {n} coefficients of c1 unchanged");
        // The phase noise is the flood: within W (+ the fresh and input noise), and wide.
        let w = f.width(n);
        let noise = phase_noise(&c, &s, &pt);
        let bound = w + f.hidden_bound(n);
        let max = noise.iter().map(|v| v.abs()).max().unwrap() as f64;
        assert!(max <= bound, "noise {max:e} above W + B = {bound:e}");
        assert!(
            max > 0.9 * w,
            "noise {max:e} does not reach the flood width {w:e}"
        );
        let mean_sq = noise.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n as f64;
        let var = w * (w + 1.0) / 3.0;
        assert!((mean_sq / var - 1.0).abs() < 0.2, "{mean_sq:e} vs {var:e}");
        // Decryption is still correct within the flood's slot error (7 standard deviations).
        let got = enc.decode(&c.sk.decrypt(&s).unwrap());
        let tol = 7.0 * f.slot_error_sd(n, p.default_scale());
        let err = got
            .iter()
            .zip(&x)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err <= tol, "slot error {err:e} above {tol:e}");
        assert!(err > 1e-3 * tol, "slot error {err:e}: the flood is missing");
        // Unsanitized, the same ciphertext is far more precise.
        let plain_err = enc
            .decode(&c.sk.decrypt(&ct).unwrap())
            .iter()
            .zip(&x)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(plain_err < err, "{plain_err:e} vs {err:e}");
    }

    #[test]
    fn flood_math_and_limits() {
        let f = flood(30);
        let n = 1 << 15;
        let b = 2f64.powi(20) + 19.0 * (2 * n + 1) as f64;
        assert_eq!(f.width(n), (b * 2f64.powi(30)).ceil());
        // δ = N·B/(2W+1) ≈ N·2^−(s+1): s = 30 at N = 2^15 gives ~16 bits.
        assert!(
            (f.hiding_bits(n) - 16.0).abs() < 0.01,
            "{}",
            f.hiding_bits(n)
        );
        assert_eq!(flood(0).statistical_distance(n), 1.0);
        let sd = f.slot_error_sd(n, 2f64.powi(40));
        let want = f.width(n) * (n as f64 / 6.0).sqrt() / 2f64.powi(40);
        assert!((sd / want - 1.0).abs() < 1e-6);

        let mut c = setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &[], false, false);
        let p = c.params.clone();
        let x = c.random(-1.0, 1.0);
        let pt = Encoder::new(&p).encode(&x, 0, p.default_scale()).unwrap();
        let ct = c.pk.encrypt(&pt).unwrap();
        let eval = Evaluator::new(&p);
        // Level 0 has a 50-bit modulus and Δ = 2^40: a 2^49 flood does not fit beside Δ·2.
        assert!(matches!(
            eval.sanitize(&ct, &c.pk, &flood(29)),
            Err(CkksError::FloodTooWide { level: 0, .. })
        ));
        assert!(matches!(
            eval.sanitize(&ct, &c.pk, &flood(50)),
            Err(CkksError::FloodTooWide { room_bits, .. }) if room_bits == 62.0
        ));
        // A key restricted below the ciphertext's level cannot encrypt the zero.
        let ct3 =
            c.pk.encrypt(&Encoder::new(&p).encode(&x, 3, p.default_scale()).unwrap());
        assert!(matches!(
            eval.sanitize(&ct3.unwrap(), &c.pk.at_level(0).unwrap(), &flood(2)),
            Err(CkksError::LevelMismatch { left: 3, right: 0 })
        ));
    }

    #[test]
    fn restricted_public_keys_serialize_small_and_encrypt() {
        let mut c = setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &[], false, false);
        let p = c.params.clone();
        let pk0 = c.pk.at_level(0).unwrap();
        let bytes = pk0.to_bytes().unwrap();
        assert!(bytes.len() < 8 * p.n() + 200, "{} bytes", bytes.len());
        let back = PublicKey::from_bytes(&bytes, &p).unwrap();
        assert_eq!(back.level(), 0);
        assert_eq!(back.a, c.pk.a.restrict(1, false));
        let x = c.random(-1.0, 1.0);
        let pt = Encoder::new(&p).encode(&x, 0, p.default_scale()).unwrap();
        let got = c.decrypt(&back.encrypt(&pt).unwrap());
        let err = got
            .iter()
            .zip(&x)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-6, "{err}");
        assert!(matches!(
            c.pk.at_level(9),
            Err(CkksError::InvalidLevel { level: 9, max: 4 })
        ));
    }
}
