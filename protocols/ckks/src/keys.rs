//! Key generation: ternary secret key, public key, and hybrid key-switching keys
//! (relinearization and Galois/rotation keys).
//!
//! A key-switching key from `s'` to `s` (Han–Ki, CT-RSA 2020, §3; RNS form as in
//! Kim–Polyakov–Zucca / OpenFHE) has one pair per digit `j` of the decomposition of `Q_L`
//! into `dnum` groups of `α` primes: `b_j = -a_j·s + e_j + P·[Q/Q_j]·[(Q/Q_j)^{-1}]_{Q_j}·s'`
//! modulo `Q_L·P`, i.e. modulo a prime of digit `j` the gadget term is `P·s'`, and it is zero
//! modulo every other prime. All `a_j` come from one 32-byte ChaCha20 seed (`a_j` from the
//! cipher's stream `j`), so a key can be stored as the seed and the `b_j` (seeded `a`
//! compression). Key generation draws every seed (per key, per digit's error) from the
//! generator's own OS-seeded stream in order, then makes keys and digits in parallel (rayon).
//!
//! Galois keys are generated only for the rotation steps a caller asks for
//! ([`KeyGenerator::galois_keys`]); rotation by `r` slots uses the element `5^r mod 2N`,
//! conjugation `2N - 1`.
//!
//! A key switch at level `l` reads only the first `⌈(l+1)/α⌉` digits of a key and, in each,
//! the limbs of `Q_l ∪ P`. [`GaloisKeys::restrict_to_level`] / [`RelinKey::restrict_to_level`]
//! (and [`KeyGenerator::galois_keys_at_level`], which cuts each key as it is made) keep just
//! those: the same results bit for bit at levels `≤ l`, an error above, and a fraction of the
//! memory (a server evaluating a deep circuit stage by stage holds each stage's keys at the
//! stage's level). A restriction is a subset of the key's residues, so it reveals nothing the
//! whole key does not. A restricted key serializes as the seed and its `b` halves over
//! `Q_l ∪ P`; the loader reads `l` off their length and cuts the `a` halves it regenerates, so
//! a client can upload only the levels a server will switch at.

use std::collections::BTreeMap;

use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use zeroize::Zeroize;

use crate::encoder::Plaintext;
use crate::error::{CkksError, Result};
use crate::params::CkksParams;
use crate::poly::{Ntt, RnsPoly};
use crate::sampling;

/// The secret key: a uniform ternary polynomial, kept in coefficient and NTT (mod `QP`) form.
/// Zeroized on drop; its `Debug` prints nothing secret; it is deliberately not `Clone`.
pub struct SecretKey {
    pub(crate) params: CkksParams,
    pub(crate) coeffs: Vec<i64>,
    pub(crate) ntt: RnsPoly<Ntt>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("params", &self.params.name())
            .finish_non_exhaustive()
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.coeffs.zeroize();
        self.ntt.zeroize_data();
    }
}

impl SecretKey {
    pub(crate) fn from_coeffs(params: &CkksParams, coeffs: Vec<i64>) -> Self {
        let ntt = crate::poly::RnsPoly::from_signed(
            params,
            &coeffs,
            params.max_level() + 1,
            params.p_primes().len(),
        )
        .into_ntt(params);
        Self {
            params: params.clone(),
            coeffs,
            ntt,
        }
    }

    /// The parameters this key belongs to.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    /// `s` restricted to `q_0..q_{q_len-1}`.
    pub(crate) fn at(&self, q_len: usize) -> RnsPoly<Ntt> {
        self.ntt.restrict(q_len, false)
    }

    /// Decrypts a ciphertext into a plaintext (`m = c0 + c1·s`).
    pub fn decrypt(&self, ct: &crate::ciphertext::Ciphertext) -> Result<Plaintext> {
        ct.check_params(&self.params)?;
        let mut s = self.at(ct.c0.q_len());
        let mut m = ct.c1.clone();
        m.mul_assign(&self.params, &s);
        s.zeroize_data();
        m.add_assign(&self.params, &ct.c0);
        Ok(Plaintext {
            poly: m,
            scale: ct.scale,
            params_id: ct.params_id,
        })
    }

    /// Symmetric (secret-key) encryption with an OS-seeded ChaCha20 generator. The ciphertext's
    /// `c1` is generated from a seed, so it serializes in compressed form until modified.
    pub fn encrypt_symmetric(&self, pt: &Plaintext) -> Result<crate::ciphertext::Ciphertext> {
        self.encrypt_symmetric_with_rng(pt, &mut sampling::os_rng())
    }

    /// [`Self::encrypt_symmetric`] with a caller-supplied CSPRNG.
    pub fn encrypt_symmetric_with_rng<R: RngCore + CryptoRng>(
        &self,
        pt: &Plaintext,
        rng: &mut R,
    ) -> Result<crate::ciphertext::Ciphertext> {
        let params = &self.params;
        pt.check_params(params)?;
        let q_len = pt.poly.q_len();
        let seed = sampling::fresh_seed(rng);
        let a = sampling::uniform_ntt(params, &mut ChaCha20Rng::from_seed(seed), q_len, 0);
        let mut e_coeffs = sampling::gaussian(rng, params.n());
        let mut e = RnsPoly::from_signed(params, &e_coeffs, q_len, 0).into_ntt(params);
        e_coeffs.zeroize();
        // c0 = -a·s + e + m
        let mut s = self.at(q_len);
        let mut c0 = a.clone();
        c0.mul_assign(params, &s);
        s.zeroize_data();
        c0.neg_assign(params);
        c0.add_assign(params, &e);
        e.zeroize_data();
        c0.add_assign(params, &pt.poly);
        Ok(crate::ciphertext::Ciphertext {
            c0,
            c1: a,
            scale: pt.scale,
            seed: Some(seed),
            params_id: pt.params_id,
        })
    }
}

/// The public key `(b, a) = (-a·s + e, a)` modulo `Q_ℓ` (`ℓ = L` as generated; a key
/// restricted with [`PublicKey::at_level`] encrypts only at levels up to `ℓ`).
#[derive(Clone)]
pub struct PublicKey {
    pub(crate) params: CkksParams,
    pub(crate) seed: [u8; 32],
    pub(crate) b: RnsPoly<Ntt>,
    pub(crate) a: RnsPoly<Ntt>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("params", &self.params.name())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// The key with `b` as given (over `q_0..q_ℓ`) and `a` regenerated from `seed` over the
    /// same primes (`a` is drawn limb by limb, so a restricted key keeps its seed).
    pub(crate) fn from_seed_and_b(params: &CkksParams, seed: [u8; 32], b: RnsPoly<Ntt>) -> Self {
        let a = sampling::uniform_ntt(params, &mut ChaCha20Rng::from_seed(seed), b.q_len(), 0);
        Self {
            params: params.clone(),
            seed,
            b,
            a,
        }
    }

    /// The parameters this key belongs to.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    /// The highest level this key encrypts at.
    pub fn level(&self) -> usize {
        self.b.q_len() - 1
    }

    /// The same key restricted to `q_0..q_level` (it keeps its seed, so it serializes as the
    /// seed plus `level + 1` limbs of `b`): enough to encrypt at `level` and below.
    ///
    /// # Errors
    /// [`CkksError::InvalidLevel`] if `level` is above [`Self::level`].
    pub fn at_level(&self, level: usize) -> Result<PublicKey> {
        if level > self.level() {
            return Err(CkksError::InvalidLevel {
                level,
                max: self.level(),
            });
        }
        Ok(PublicKey {
            params: self.params.clone(),
            seed: self.seed,
            b: self.b.restrict(level + 1, false),
            a: self.a.restrict(level + 1, false),
        })
    }

    /// Public-key encryption with an OS-seeded ChaCha20 generator:
    /// `(v·b + e_0 + m, v·a + e_1)` with ternary `v` and Gaussian `e_0, e_1`.
    pub fn encrypt(&self, pt: &Plaintext) -> Result<crate::ciphertext::Ciphertext> {
        self.encrypt_with_rng(pt, &mut sampling::os_rng())
    }

    /// [`Self::encrypt`] with a caller-supplied CSPRNG.
    pub fn encrypt_with_rng<R: RngCore + CryptoRng>(
        &self,
        pt: &Plaintext,
        rng: &mut R,
    ) -> Result<crate::ciphertext::Ciphertext> {
        let params = &self.params;
        pt.check_params(params)?;
        let n = params.n();
        let q_len = pt.poly.q_len();
        if q_len > self.b.q_len() {
            return Err(CkksError::LevelMismatch {
                left: pt.level(),
                right: self.level(),
            });
        }
        let mut v_coeffs = sampling::ternary(rng, n);
        let mut v = RnsPoly::from_signed(params, &v_coeffs, q_len, 0).into_ntt(params);
        v_coeffs.zeroize();
        let mut e0 =
            RnsPoly::from_signed(params, &sampling::gaussian(rng, n), q_len, 0).into_ntt(params);
        let mut e1 =
            RnsPoly::from_signed(params, &sampling::gaussian(rng, n), q_len, 0).into_ntt(params);
        let mut c0 = self.b.restrict(q_len, false);
        c0.mul_assign(params, &v);
        c0.add_assign(params, &e0);
        c0.add_assign(params, &pt.poly);
        let mut c1 = self.a.restrict(q_len, false);
        c1.mul_assign(params, &v);
        c1.add_assign(params, &e1);
        // The mask and errors would reveal the message together with the ciphertext.
        v.zeroize_data();
        e0.zeroize_data();
        e1.zeroize_data();
        Ok(crate::ciphertext::Ciphertext {
            c0,
            c1,
            scale: pt.scale,
            seed: None,
            params_id: pt.params_id,
        })
    }
}

/// A hybrid key-switching key (one `(b_j, a_j)` pair per digit, modulo `Q_L·P`).
#[derive(Clone)]
pub struct KeySwitchKey {
    pub(crate) seed: [u8; 32],
    pub(crate) b: Vec<RnsPoly<Ntt>>,
    pub(crate) a: Vec<RnsPoly<Ntt>>,
}

impl std::fmt::Debug for KeySwitchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySwitchKey")
            .field("digits", &self.b.len())
            .finish_non_exhaustive()
    }
}

impl KeySwitchKey {
    /// Regenerates the `a_j` from the seed: `a_j` from the ChaCha20 stream `j` of the seed, so
    /// the digits expand in parallel.
    pub(crate) fn expand_a(params: &CkksParams, seed: [u8; 32]) -> Vec<RnsPoly<Ntt>> {
        (0..params.dnum())
            .into_par_iter()
            .map(|j| {
                let mut rng = ChaCha20Rng::from_seed(seed);
                rng.set_stream(j as u64);
                sampling::uniform_ntt(
                    params,
                    &mut rng,
                    params.max_level() + 1,
                    params.p_primes().len(),
                )
            })
            .collect()
    }

    /// Number of decomposition digits.
    pub fn digits(&self) -> usize {
        self.b.len()
    }

    /// The highest level this key switches at (the chain's top unless restricted).
    pub fn max_level(&self) -> usize {
        self.b[0].q_len() - 1
    }

    /// Fails unless this key switches at `level`.
    pub(crate) fn check_level(&self, level: usize) -> Result<()> {
        if level > self.max_level() {
            return Err(CkksError::InvalidLevel {
                level,
                max: self.max_level(),
            });
        }
        Ok(())
    }

    /// The same key for switching at levels `≤ level` only: the digits of `Q_level`
    /// (`⌈(level+1)/α⌉` of them) and, in each, the limbs of `Q_level ∪ P`. Key switching at those
    /// levels reads nothing else, so the results are bit-for-bit those of the whole key, and
    /// the key holds `digits·(level + 1 + k)` instead of `dnum·(L + 1 + k)` limbs per half.
    /// A restriction reveals nothing the whole key does not. Exact-size buffers (not pooled).
    pub fn restrict_to_level(&self, params: &CkksParams, level: usize) -> Result<Self> {
        self.check_level(level)?;
        let digits = Self::digits_at(params, level).min(self.b.len());
        Ok(Self {
            seed: self.seed,
            b: cut_to_level(params, &self.b, level, digits),
            a: cut_to_level(params, &self.a, level, digits),
        })
    }

    /// Digits of a key restricted to `level`: those of `Q_level`, `⌈(level+1)/α⌉`.
    pub(crate) fn digits_at(params: &CkksParams, level: usize) -> usize {
        (level + 1).div_ceil(params.alpha()).min(params.dnum())
    }
}

/// The first `digits` key polynomials cut to the limbs of `Q_level ∪ P` (exact-size buffers).
pub(crate) fn cut_to_level(
    params: &CkksParams,
    v: &[RnsPoly<Ntt>],
    level: usize,
    digits: usize,
) -> Vec<RnsPoly<Ntt>> {
    let n = params.n();
    v[..digits]
        .iter()
        .map(|p| {
            let q = p.q_len();
            let mut data = Vec::with_capacity(n * (level + 1 + p.p_len()));
            data.extend_from_slice(&p.data()[..(level + 1) * n]);
            data.extend_from_slice(&p.data()[q * n..]);
            RnsPoly::from_data(n, level + 1, p.p_len(), data)
        })
        .collect()
}

/// The relinearization key (key switching from `s²` to `s`).
#[derive(Clone, Debug)]
pub struct RelinKey(pub(crate) KeySwitchKey);

impl RelinKey {
    /// The key for relinearizing at levels `≤ level` only
    /// ([`KeySwitchKey::restrict_to_level`]); it serializes in its restricted size.
    pub fn restrict_to_level(&self, params: &CkksParams, level: usize) -> Result<Self> {
        Ok(Self(self.0.restrict_to_level(params, level)?))
    }
}

/// Galois keys for a chosen set of Galois elements (rotations and/or conjugation).
#[derive(Clone, Debug, Default)]
pub struct GaloisKeys {
    pub(crate) keys: BTreeMap<u64, KeySwitchKey>,
}

impl GaloisKeys {
    /// The Galois elements for which a key exists.
    pub fn elements(&self) -> impl Iterator<Item = u64> + '_ {
        self.keys.keys().copied()
    }
    /// Whether a key for the Galois element exists.
    pub fn contains(&self, galois_element: u64) -> bool {
        self.keys.contains_key(&galois_element)
    }
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// Adds all keys of `other` (e.g. keys generated later for more steps).
    pub fn extend(&mut self, other: GaloisKeys) {
        self.keys.extend(other.keys);
    }

    /// The highest level the key of `galois_element` switches at (`None` without that key).
    pub fn key_level(&self, galois_element: u64) -> Option<usize> {
        self.keys.get(&galois_element).map(KeySwitchKey::max_level)
    }

    /// Each key whose element `levels` names cut to that level when it holds more
    /// ([`KeySwitchKey::restrict_to_level`]); the others as they are. A server that knows the
    /// highest level it rotates by each step at holds no more of a key than that.
    pub fn restrict_each(self, params: &CkksParams, levels: &BTreeMap<u64, usize>) -> Result<Self> {
        let keys = self
            .keys
            .into_iter()
            .map(|(g, k)| match levels.get(&g) {
                Some(&l) if l < k.max_level() => Ok((g, k.restrict_to_level(params, l)?)),
                _ => Ok((g, k)),
            })
            .collect::<Result<_>>()?;
        Ok(Self { keys })
    }

    /// Every key restricted to levels `≤ level` ([`KeySwitchKey::restrict_to_level`]): what a
    /// server needs for a stage that switches keys at `level` or below, in a fraction of the
    /// memory (at `N15_L17_S40_128BIT`, level 8: 72 of 252 limbs per key); they serialize in
    /// their restricted size.
    pub fn restrict_to_level(&self, params: &CkksParams, level: usize) -> Result<Self> {
        let keys = self
            .keys
            .iter()
            .map(|(&g, k)| Ok((g, k.restrict_to_level(params, level)?)))
            .collect::<Result<_>>()?;
        Ok(Self { keys })
    }
}

/// The Galois element `5^step mod 2N` for a left rotation by `step` slots (negative = right).
pub fn galois_element_for_step(params: &CkksParams, step: i64) -> u64 {
    let slots = params.slots() as i64;
    let r = step.rem_euclid(slots) as u64;
    let m = 2 * params.n() as u64;
    let mut g = 1u64;
    let mut b = 5u64;
    let mut e = r;
    while e > 0 {
        if e & 1 == 1 {
            g = g * b % m;
        }
        b = b * b % m;
        e >>= 1;
    }
    g
}

/// The Galois element `2N - 1` of complex conjugation.
pub fn galois_element_conjugate(params: &CkksParams) -> u64 {
    2 * params.n() as u64 - 1
}

/// Generates keys from a ChaCha20 CSPRNG (OS-seeded by [`KeyGenerator::new`]).
pub struct KeyGenerator {
    params: CkksParams,
    rng: ChaCha20Rng,
}

impl std::fmt::Debug for KeyGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyGenerator")
            .field("params", &self.params.name())
            .finish_non_exhaustive()
    }
}

impl KeyGenerator {
    /// A generator seeded from the operating system.
    pub fn new(params: &CkksParams) -> Self {
        Self {
            params: params.clone(),
            rng: sampling::os_rng(),
        }
    }

    /// A generator with a caller-chosen seed — **for reproducible tests only**; keys made this way
    /// are as secret as the seed.
    pub fn from_seed(params: &CkksParams, seed: [u8; 32]) -> Self {
        Self {
            params: params.clone(),
            rng: ChaCha20Rng::from_seed(seed),
        }
    }

    /// A fresh uniform ternary secret key.
    pub fn secret_key(&mut self) -> SecretKey {
        let coeffs = sampling::ternary(&mut self.rng, self.params.n());
        SecretKey::from_coeffs(&self.params, coeffs.to_vec())
    }

    /// The public key for `sk`.
    pub fn public_key(&mut self, sk: &SecretKey) -> Result<PublicKey> {
        sk.params.ensure_same(&self.params, "secret key")?;
        let params = &self.params;
        let q_len = params.max_level() + 1;
        let seed = sampling::fresh_seed(&mut self.rng);
        let a = sampling::uniform_ntt(params, &mut ChaCha20Rng::from_seed(seed), q_len, 0);
        let e = RnsPoly::from_signed(
            params,
            &sampling::gaussian(&mut self.rng, params.n()),
            q_len,
            0,
        )
        .into_ntt(params);
        let mut b = a.clone();
        b.mul_assign(params, &sk.at(q_len));
        b.neg_assign(params);
        b.add_assign(params, &e);
        Ok(PublicKey {
            params: params.clone(),
            seed,
            b,
            a,
        })
    }

    /// A key switching from `s_from` (NTT over `Q_L·P`) to `sk`, drawn from this generator.
    fn key_switch_key(&mut self, sk: &SecretKey, s_from: &RnsPoly<Ntt>) -> KeySwitchKey {
        key_switch_key(&self.params, &mut self.rng, sk, s_from)
    }

    /// The relinearization key (switching from `s²` to `s`).
    pub fn relin_key(&mut self, sk: &SecretKey) -> Result<RelinKey> {
        sk.params.ensure_same(&self.params, "secret key")?;
        let mut s2 = sk.ntt.clone();
        s2.mul_assign(&self.params, &sk.ntt);
        let key = self.key_switch_key(sk, &s2);
        s2.zeroize_data();
        Ok(RelinKey(key))
    }

    /// The key for one Galois element `g` (switching from `σ_g(s)` to `s`).
    pub fn galois_key(&mut self, sk: &SecretKey, galois_element: u64) -> Result<KeySwitchKey> {
        sk.params.ensure_same(&self.params, "secret key")?;
        Ok(galois_key_from(
            &self.params,
            &mut self.rng,
            sk,
            galois_element,
        ))
    }

    /// Galois keys for exactly the requested rotation `steps` (left rotations by `step` slots;
    /// negative steps rotate right; steps congruent modulo `N/2` share one key; step 0 needs
    /// none) plus conjugation if `conjugate`.
    pub fn galois_keys(
        &mut self,
        sk: &SecretKey,
        steps: &[i64],
        conjugate: bool,
    ) -> Result<GaloisKeys> {
        self.galois_keys_at_level(sk, steps, conjugate, self.params.max_level())
    }

    /// [`Self::galois_keys`] restricted to levels `≤ level`
    /// ([`GaloisKeys::restrict_to_level`]): each key is cut right after it is made, so at
    /// most one whole key per worker thread exists at a time. The same keys (from the same
    /// generator state) as `galois_keys(…).restrict_to_level(level)`.
    pub fn galois_keys_at_level(
        &mut self,
        sk: &SecretKey,
        steps: &[i64],
        conjugate: bool,
        level: usize,
    ) -> Result<GaloisKeys> {
        sk.params.ensure_same(&self.params, "secret key")?;
        if level > self.params.max_level() {
            return Err(CkksError::InvalidLevel {
                level,
                max: self.params.max_level(),
            });
        }
        let mut elements: Vec<u64> = steps
            .iter()
            .map(|&s| galois_element_for_step(&self.params, s))
            .filter(|&g| g != 1)
            .collect();
        if conjugate {
            elements.push(galois_element_conjugate(&self.params));
        }
        elements.sort_unstable();
        elements.dedup();
        // One seed per key from this generator, in order; the keys themselves are made in
        // parallel, each from its own ChaCha20 stream.
        let seeded: Vec<(u64, [u8; 32])> = elements
            .into_iter()
            .map(|g| (g, sampling::fresh_seed(&mut self.rng)))
            .collect();
        let params = &self.params;
        let whole = level == params.max_level();
        let keys = seeded
            .into_par_iter()
            .map(|(g, seed)| {
                let mut rng = ChaCha20Rng::from_seed(seed);
                let key = galois_key_from(params, &mut rng, sk, g);
                Ok((
                    g,
                    if whole {
                        key
                    } else {
                        key.restrict_to_level(params, level)?
                    },
                ))
            })
            .collect::<Result<_>>()?;
        Ok(GaloisKeys { keys })
    }
}

/// The key switching from `σ_g(s)` to `s` for Galois element `g`, drawn from `rng`.
fn galois_key_from(
    params: &CkksParams,
    rng: &mut ChaCha20Rng,
    sk: &SecretKey,
    galois_element: u64,
) -> KeySwitchKey {
    let mut s_g = sk.ntt.automorphism(params, galois_element);
    let key = key_switch_key(params, rng, sk, &s_g);
    s_g.zeroize_data();
    key
}

/// A key switching from `s_from` (NTT over `Q_L·P`) to `sk`: the seed of every `a_j` and one
/// error seed per digit are drawn from `rng` in order, then the digits are made in parallel.
fn key_switch_key(
    params: &CkksParams,
    rng: &mut ChaCha20Rng,
    sk: &SecretKey,
    s_from: &RnsPoly<Ntt>,
) -> KeySwitchKey {
    let q_len = params.max_level() + 1;
    let k = params.p_primes().len();
    let alpha = params.alpha();
    let seed = sampling::fresh_seed(rng);
    let a = KeySwitchKey::expand_a(params, seed);
    let error_seeds: Vec<[u8; 32]> = a.iter().map(|_| sampling::fresh_seed(rng)).collect();
    let b = a
        .par_iter()
        .zip(error_seeds)
        .enumerate()
        .map(|(j, (aj, error_seed))| {
            let mut error_rng = ChaCha20Rng::from_seed(error_seed);
            let e = RnsPoly::from_signed(
                params,
                &sampling::gaussian(&mut error_rng, params.n()),
                q_len,
                k,
            )
            .into_ntt(params);
            let mut bj = aj.clone();
            bj.mul_assign(params, &sk.ntt);
            bj.neg_assign(params);
            bj.add_assign(params, &e);
            add_gadget_term(
                params,
                &mut bj,
                s_from,
                j * alpha..((j + 1) * alpha).min(q_len),
            );
            bj
        })
        .collect();
    KeySwitchKey { seed, b, a }
}

/// Adds `P·s'` modulo the primes `limbs` of digit `j` (the gadget term is zero elsewhere).
fn add_gadget_term(
    params: &CkksParams,
    bj: &mut RnsPoly<Ntt>,
    s_from: &RnsPoly<Ntt>,
    limbs: std::ops::Range<usize>,
) {
    for i in limbs {
        let m = params.inner.basis.moduli()[i];
        let p_mod = params
            .p_primes()
            .iter()
            .fold(1u64, |acc, &p| m.mul(acc, m.reduce(p)));
        let ps = m.shoup(p_mod);
        for (x, &s) in bj.limb_mut(i).iter_mut().zip(s_from.limb(i)) {
            *x = m.add(*x, m.mul_shoup(s, p_mod, ps));
        }
    }
}

impl CkksParams {
    pub(crate) fn ensure_same(&self, other: &CkksParams, object: &'static str) -> Result<()> {
        if self != other {
            return Err(CkksError::WrongParams {
                object,
                expected: other.name(),
                found: self.name(),
            });
        }
        Ok(())
    }
}
