//! Serialization of every CKKS object (bincode, fixed-width integers), validated against the
//! parameters on load and bounded by a size limit.
//!
//! Each object carries the parameter fingerprint it was made under — `log2(N)` and the full
//! prime chain `q_0..q_L, p_0..p_{k-1}` — and loading refuses any mismatch, any level above the
//! chain, any limb of the wrong length and any residue not reduced modulo its prime (errors name
//! the field, value and limit). Seeded objects (fresh secret-key ciphertexts, public keys,
//! key-switching keys) store the 32-byte seed of their uniform `a` part instead of `a`, halving
//! their size; `a` is regenerated on load.
//!
//! Secret keys serialize too (for a client that persists its key): the bytes are as secret as
//! the key and are returned in a [`zeroize::Zeroizing`] buffer.

use bincode::Options;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ciphertext::Ciphertext;
use crate::encoder::Plaintext;
use crate::error::{CkksError, Result};
use crate::keys::{cut_to_level, GaloisKeys, KeySwitchKey, PublicKey, RelinKey, SecretKey};
use crate::params::CkksParams;
use crate::poly::{Ntt, RnsPoly};

/// Default upper bound on serialized input, 2 GiB (an N = 2^16 Galois key is ~0.2 GiB seeded).
pub const DEFAULT_SIZE_LIMIT: u64 = 2 << 30;

fn options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
        .with_limit(limit)
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    Ok(options(u64::MAX).serialize(v)?)
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], limit: u64) -> Result<T> {
    if bytes.len() as u64 > limit {
        return Err(CkksError::SizeLimit {
            len: bytes.len() as u64,
            limit,
        });
    }
    options(limit).deserialize(bytes).map_err(|e| match *e {
        bincode::ErrorKind::SizeLimit => CkksError::SizeLimit {
            len: bytes.len() as u64,
            limit,
        },
        _ => CkksError::Bincode(e),
    })
}

#[derive(Serialize, Deserialize)]
struct ParamsTag {
    log_n: u32,
    q: Vec<u64>,
    p: Vec<u64>,
}

impl ParamsTag {
    fn of(params: &CkksParams) -> Self {
        Self {
            log_n: params.log_n().0,
            q: params.q_primes().to_vec(),
            p: params.p_primes().to_vec(),
        }
    }
    fn check(&self, params: &CkksParams, object: &'static str) -> Result<()> {
        let mismatch = |field, expected: u64, found: u64| CkksError::ParamsMismatch {
            object,
            field,
            expected,
            found,
        };
        if self.log_n != params.log_n().0 {
            return Err(mismatch(
                "log2(N)",
                params.log_n().0 as u64,
                self.log_n as u64,
            ));
        }
        if self.q.len() != params.q_primes().len() {
            return Err(mismatch(
                "number of q primes",
                params.q_primes().len() as u64,
                self.q.len() as u64,
            ));
        }
        if self.p.len() != params.p_primes().len() {
            return Err(mismatch(
                "number of special primes",
                params.p_primes().len() as u64,
                self.p.len() as u64,
            ));
        }
        for (&a, &b) in params.q_primes().iter().zip(&self.q) {
            if a != b {
                return Err(mismatch("q prime", a, b));
            }
        }
        for (&a, &b) in params.p_primes().iter().zip(&self.p) {
            if a != b {
                return Err(mismatch("special prime", a, b));
            }
        }
        Ok(())
    }
}

/// Checks shape and reduction of a serialized polynomial and rebuilds it.
fn load_poly(
    params: &CkksParams,
    object: &'static str,
    data: Vec<u64>,
    q_len: usize,
    p_len: usize,
) -> Result<RnsPoly<Ntt>> {
    let n = params.n();
    let want = n * (q_len + p_len);
    if data.len() != want {
        return Err(CkksError::ParamsMismatch {
            object,
            field: "polynomial length",
            expected: want as u64,
            found: data.len() as u64,
        });
    }
    let poly = RnsPoly::<Ntt>::from_data(n, q_len, p_len, data);
    for t in 0..poly.limbs() {
        let m = params.inner.basis.moduli()[poly.modulus_index(params, t)].value();
        if let Some((index, &value)) = poly.limb(t).iter().enumerate().find(|(_, &v)| v >= m) {
            return Err(CkksError::CoefficientOutOfRange {
                object,
                limb: t,
                index,
                value,
                modulus: m,
            });
        }
    }
    Ok(poly)
}

fn check_level(params: &CkksParams, object: &'static str, level: u32) -> Result<usize> {
    let max = params.max_level();
    if level as usize > max {
        return Err(CkksError::ParamsMismatch {
            object,
            field: "level",
            expected: max as u64,
            found: level as u64,
        });
    }
    Ok(level as usize)
}

fn check_scale(scale: f64) -> Result<f64> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(CkksError::InvalidScale {
            scale,
            reason: "serialized scale must be finite and positive",
        });
    }
    Ok(scale)
}

#[derive(Serialize, Deserialize)]
enum C1Wire {
    Seed([u8; 32]),
    Poly(Vec<u64>),
}

#[derive(Serialize, Deserialize)]
struct CiphertextWire {
    tag: ParamsTag,
    level: u32,
    scale: f64,
    c0: Vec<u64>,
    c1: C1Wire,
}

impl Ciphertext {
    /// Serializes the ciphertext (seeded form when `c1` is still seed-generated).
    pub fn to_bytes(&self, params: &CkksParams) -> Result<Vec<u8>> {
        self.check_params(params)?;
        encode(&CiphertextWire {
            tag: ParamsTag::of(params),
            level: self.level() as u32,
            scale: self.scale,
            c0: self.c0.data().to_vec(),
            c1: match self.seed {
                Some(s) => C1Wire::Seed(s),
                None => C1Wire::Poly(self.c1.data().to_vec()),
            },
        })
    }

    /// Loads a ciphertext made under `params` (input at most [`DEFAULT_SIZE_LIMIT`] bytes).
    pub fn from_bytes(bytes: &[u8], params: &CkksParams) -> Result<Self> {
        Self::from_bytes_with_limit(bytes, params, DEFAULT_SIZE_LIMIT)
    }

    /// Loads a ciphertext, refusing input larger than `limit` bytes.
    pub fn from_bytes_with_limit(bytes: &[u8], params: &CkksParams, limit: u64) -> Result<Self> {
        const OBJ: &str = "ciphertext";
        let w: CiphertextWire = decode(bytes, limit)?;
        w.tag.check(params, OBJ)?;
        let level = check_level(params, OBJ, w.level)?;
        let scale = check_scale(w.scale)?;
        let c0 = load_poly(params, OBJ, w.c0, level + 1, 0)?;
        let (c1, seed) = match w.c1 {
            C1Wire::Seed(s) => (
                crate::sampling::uniform_ntt(
                    params,
                    &mut <rand_chacha::ChaCha20Rng as rand::SeedableRng>::from_seed(s),
                    level + 1,
                    0,
                ),
                Some(s),
            ),
            C1Wire::Poly(d) => (load_poly(params, OBJ, d, level + 1, 0)?, None),
        };
        Ok(Ciphertext {
            c0,
            c1,
            scale,
            seed,
            params_id: params.fingerprint(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct PlaintextWire {
    tag: ParamsTag,
    level: u32,
    scale: f64,
    poly: Vec<u64>,
}

impl Plaintext {
    /// Serializes the plaintext.
    /// An extended plaintext ([`crate::Encoder::encode_ext`]) is refused: it is a server-side
    /// operand, re-encoded where it is used.
    pub fn to_bytes(&self, params: &CkksParams) -> Result<Vec<u8>> {
        self.check_params(params)?;
        self.refuse_extended("plaintext to serialize")?;
        encode(&PlaintextWire {
            tag: ParamsTag::of(params),
            level: self.level() as u32,
            scale: self.scale,
            poly: self.poly.data().to_vec(),
        })
    }

    /// Loads a plaintext made under `params` (input at most `limit` bytes).
    pub fn from_bytes_with_limit(bytes: &[u8], params: &CkksParams, limit: u64) -> Result<Self> {
        const OBJ: &str = "plaintext";
        let w: PlaintextWire = decode(bytes, limit)?;
        w.tag.check(params, OBJ)?;
        let level = check_level(params, OBJ, w.level)?;
        Ok(Plaintext {
            poly: load_poly(params, OBJ, w.poly, level + 1, 0)?,
            scale: check_scale(w.scale)?,
            params_id: params.fingerprint(),
        })
    }

    /// Loads a plaintext with the default size limit.
    pub fn from_bytes(bytes: &[u8], params: &CkksParams) -> Result<Self> {
        Self::from_bytes_with_limit(bytes, params, DEFAULT_SIZE_LIMIT)
    }
}

#[derive(Serialize, Deserialize)]
struct PublicKeyWire {
    tag: ParamsTag,
    level: u32,
    seed: [u8; 32],
    b: Vec<u64>,
}

impl PublicKey {
    /// Serializes the public key (its level, the seed of `a` and `b` over `q_0..q_level`).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        encode(&PublicKeyWire {
            tag: ParamsTag::of(&self.params),
            level: self.level() as u32,
            seed: self.seed,
            b: self.b.data().to_vec(),
        })
    }

    /// Loads a public key made under `params` (input at most `limit` bytes).
    pub fn from_bytes_with_limit(bytes: &[u8], params: &CkksParams, limit: u64) -> Result<Self> {
        const OBJ: &str = "public key";
        let w: PublicKeyWire = decode(bytes, limit)?;
        w.tag.check(params, OBJ)?;
        let level = check_level(params, OBJ, w.level)?;
        let b = load_poly(params, OBJ, w.b, level + 1, 0)?;
        Ok(PublicKey::from_seed_and_b(params, w.seed, b))
    }

    /// Loads a public key with the default size limit.
    pub fn from_bytes(bytes: &[u8], params: &CkksParams) -> Result<Self> {
        Self::from_bytes_with_limit(bytes, params, DEFAULT_SIZE_LIMIT)
    }
}

#[derive(Serialize, Deserialize)]
struct KeySwitchKeyWire {
    seed: [u8; 32],
    b: Vec<Vec<u64>>,
}

impl KeySwitchKeyWire {
    /// The wire form of a key, whole or restricted to a lower level
    /// ([`KeySwitchKey::restrict_to_level`]): the seed and the `b` halves of its digits, each over
    /// `Q_level ∪ P`. The level is not sent: the loader reads it off the polynomials' length.
    fn of(k: &KeySwitchKey) -> Self {
        Self {
            seed: k.seed,
            b: k.b.iter().map(|p| p.data().to_vec()).collect(),
        }
    }

    /// Loads a key: whole (`dnum` digits over `Q_L ∪ P`) or restricted to a level `ℓ < L`
    /// (`⌈(ℓ+1)/α⌉` digits over `Q_ℓ ∪ P`, all of one length). The `a` halves are expanded
    /// from the seed and cut as the restriction cut them.
    fn load(self, params: &CkksParams, object: &'static str) -> Result<KeySwitchKey> {
        let (n, k) = (params.n(), params.p_primes().len());
        let limbs = self.b.first().map_or(0, |d| d.len() / n);
        let level = match limbs.checked_sub(k + 1) {
            Some(l) if l <= params.max_level() && limbs * n == self.b[0].len() => l,
            _ => {
                return Err(CkksError::ParamsMismatch {
                    object,
                    field: "key polynomial length (limbs of Q_level and P)",
                    expected: ((params.max_level() + 1 + k) * n) as u64,
                    found: self.b.first().map_or(0, Vec::len) as u64,
                })
            }
        };
        let digits = KeySwitchKey::digits_at(params, level);
        if self.b.len() != digits {
            return Err(CkksError::ParamsMismatch {
                object,
                field: "key-switching digits",
                expected: digits as u64,
                found: self.b.len() as u64,
            });
        }
        let b = self
            .b
            .into_iter()
            .map(|d| load_poly(params, object, d, level + 1, k))
            .collect::<Result<Vec<_>>>()?;
        let a = KeySwitchKey::expand_a(params, self.seed);
        Ok(KeySwitchKey {
            seed: self.seed,
            a: cut_to_level(params, &a, level, digits),
            b,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct RelinKeyWire {
    tag: ParamsTag,
    key: KeySwitchKeyWire,
}

impl RelinKey {
    /// Serializes the relinearization key (seeded form).
    pub fn to_bytes(&self, params: &CkksParams) -> Result<Vec<u8>> {
        encode(&RelinKeyWire {
            tag: ParamsTag::of(params),
            key: KeySwitchKeyWire::of(&self.0),
        })
    }

    /// Loads a relinearization key made under `params` (input at most `limit` bytes).
    pub fn from_bytes_with_limit(bytes: &[u8], params: &CkksParams, limit: u64) -> Result<Self> {
        const OBJ: &str = "relinearization key";
        let w: RelinKeyWire = decode(bytes, limit)?;
        w.tag.check(params, OBJ)?;
        Ok(RelinKey(w.key.load(params, OBJ)?))
    }

    /// Loads a relinearization key with the default size limit.
    pub fn from_bytes(bytes: &[u8], params: &CkksParams) -> Result<Self> {
        Self::from_bytes_with_limit(bytes, params, DEFAULT_SIZE_LIMIT)
    }
}

#[derive(Serialize, Deserialize)]
struct GaloisKeysWire {
    tag: ParamsTag,
    keys: Vec<(u64, KeySwitchKeyWire)>,
}

impl GaloisKeys {
    /// Serializes all Galois keys (seeded form).
    pub fn to_bytes(&self, params: &CkksParams) -> Result<Vec<u8>> {
        encode(&GaloisKeysWire {
            tag: ParamsTag::of(params),
            keys: self
                .keys
                .iter()
                .map(|(&g, k)| (g, KeySwitchKeyWire::of(k)))
                .collect(),
        })
    }

    /// Loads Galois keys made under `params` (input at most `limit` bytes).
    pub fn from_bytes_with_limit(bytes: &[u8], params: &CkksParams, limit: u64) -> Result<Self> {
        const OBJ: &str = "Galois keys";
        let w: GaloisKeysWire = decode(bytes, limit)?;
        w.tag.check(params, OBJ)?;
        let two_n = 2 * params.n() as u64;
        let mut keys = std::collections::BTreeMap::new();
        for (g, k) in w.keys {
            if g % 2 == 0 || g >= two_n || g == 1 {
                return Err(CkksError::ParamsMismatch {
                    object: OBJ,
                    field: "Galois element (odd, 1 < g < 2N)",
                    expected: two_n,
                    found: g,
                });
            }
            keys.insert(g, k.load(params, OBJ)?);
        }
        Ok(GaloisKeys { keys })
    }

    /// Loads Galois keys with the default size limit.
    pub fn from_bytes(bytes: &[u8], params: &CkksParams) -> Result<Self> {
        Self::from_bytes_with_limit(bytes, params, DEFAULT_SIZE_LIMIT)
    }
}

#[derive(Serialize, Deserialize)]
struct SecretKeyWire {
    tag: ParamsTag,
    coeffs: Vec<i8>,
}

impl SecretKey {
    /// Serializes the secret key. The returned bytes are secret and zeroized on drop.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut w = SecretKeyWire {
            tag: ParamsTag::of(&self.params),
            coeffs: self.coeffs.iter().map(|&c| c as i8).collect(),
        };
        let out = encode(&w).map(Zeroizing::new);
        zeroize::Zeroize::zeroize(&mut w.coeffs);
        out
    }

    /// Loads a secret key made under `params` (input at most `limit` bytes).
    pub fn from_bytes_with_limit(bytes: &[u8], params: &CkksParams, limit: u64) -> Result<Self> {
        const OBJ: &str = "secret key";
        let mut w: SecretKeyWire = decode(bytes, limit)?;
        let checked = (|| {
            w.tag.check(params, OBJ)?;
            if w.coeffs.len() != params.n() {
                return Err(CkksError::ParamsMismatch {
                    object: OBJ,
                    field: "coefficient count",
                    expected: params.n() as u64,
                    found: w.coeffs.len() as u64,
                });
            }
            if let Some(index) = w.coeffs.iter().position(|c| !(-1..=1).contains(c)) {
                return Err(CkksError::ValueOutOfRange {
                    index,
                    value: w.coeffs[index] as f64,
                    limit_bits: 1,
                });
            }
            Ok(())
        })();
        let out = checked
            .map(|()| SecretKey::from_coeffs(params, w.coeffs.iter().map(|&c| c as i64).collect()));
        zeroize::Zeroize::zeroize(&mut w.coeffs);
        out
    }

    /// Loads a secret key with the default size limit.
    pub fn from_bytes(bytes: &[u8], params: &CkksParams) -> Result<Self> {
        Self::from_bytes_with_limit(bytes, params, DEFAULT_SIZE_LIMIT)
    }
}

/// Serialized sizes of the evaluation keys, from the wire layout above (bincode, fixed-width
/// integers: a `Vec` is a `u64` length and its elements, an array its elements): a server
/// bounds key uploads by what its parameters need without generating any key.
mod sizes {
    use super::{CkksParams, GaloisKeys, KeySwitchKey, RelinKey};

    /// `ParamsTag`: `log2(N)` (`u32`) and the two prime lists.
    fn tag(params: &CkksParams) -> u64 {
        4 + 8 * (1 + params.q_primes().len() as u64) + 8 * (1 + params.p_primes().len() as u64)
    }

    /// `KeySwitchKeyWire`: the seed and `dnum` polynomials over `Q_L · P`.
    fn key_switch_key(params: &CkksParams) -> u64 {
        key_switch_key_at(params, params.max_level())
    }

    /// `KeySwitchKeyWire` of a key restricted to `level`: the seed and its digits' polynomials
    /// over `Q_level · P`.
    fn key_switch_key_at(params: &CkksParams, level: usize) -> u64 {
        let limbs = (level + 1 + params.p_primes().len()) as u64;
        let poly = 8 + 8 * params.n() as u64 * limbs;
        32 + 8 + KeySwitchKey::digits_at(params, level) as u64 * poly
    }

    impl RelinKey {
        /// Bytes of [`RelinKey::to_bytes`] under `params`.
        pub fn serialized_len(params: &CkksParams) -> u64 {
            tag(params) + key_switch_key(params)
        }
    }

    impl GaloisKeys {
        /// Bytes of [`GaloisKeys::to_bytes`] under `params` for `count` Galois elements.
        pub fn serialized_len(params: &CkksParams, count: usize) -> u64 {
            tag(params) + 8 + count as u64 * (8 + key_switch_key(params))
        }

        /// Bytes of [`GaloisKeys::to_bytes`] under `params` for one Galois element whose key
        /// is restricted to `level` (at most the top level).
        pub fn serialized_len_at_level(params: &CkksParams, level: usize) -> u64 {
            tag(params) + 8 + 8 + key_switch_key_at(params, level.min(params.max_level()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::presets;
    use crate::scheme_tests::{precision_bits, setup};
    use crate::{Encoder, Evaluator, KeyGenerator};

    #[test]
    fn round_trips_preserve_objects() {
        let mut c = setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &[], false, false);
        let p = c.params.clone();
        let x = c.random(-1.0, 1.0);
        let pt = c.enc.encode(&x, 3, p.default_scale()).unwrap();

        // Seeded secret-key ciphertext: about half the size of a full one.
        let sym = c.sk.encrypt_symmetric(&pt).unwrap();
        let bytes = sym.to_bytes(&p).unwrap();
        let back = Ciphertext::from_bytes(&bytes, &p).unwrap();
        assert!(back.is_seeded());
        assert_eq!(back.c1, sym.c1);
        assert_eq!(back.c0, sym.c0);
        let full = c.pk.encrypt(&pt).unwrap();
        let full_bytes = full.to_bytes(&p).unwrap();
        assert!(bytes.len() * 2 < full_bytes.len() + 1000);
        let back = Ciphertext::from_bytes(&full_bytes, &p).unwrap();
        assert!(precision_bits(&c.decrypt(&back), &x) > 20.0);

        let pt_back = Plaintext::from_bytes(&pt.to_bytes(&p).unwrap(), &p).unwrap();
        assert_eq!(pt_back.poly, pt.poly);

        // Keys: serialize, reload, and use.
        let mut kg = KeyGenerator::new(&p);
        let rk = kg.relin_key(&c.sk).unwrap();
        let gk = kg.galois_keys(&c.sk, &[3], true).unwrap();
        let rk2 = RelinKey::from_bytes(&rk.to_bytes(&p).unwrap(), &p).unwrap();
        let gk2 = GaloisKeys::from_bytes(&gk.to_bytes(&p).unwrap(), &p).unwrap();
        assert_eq!(rk2.0.a, rk.0.a);
        let pk2 = PublicKey::from_bytes(&c.pk.to_bytes().unwrap(), &p).unwrap();
        assert_eq!(pk2.a, c.pk.a);
        let sk2 = SecretKey::from_bytes(&c.sk.to_bytes().unwrap(), &p).unwrap();
        assert_eq!(sk2.ntt, c.sk.ntt);

        let eval = Evaluator::new(&p).with_relin_key(rk2).with_galois_keys(gk2);
        let ct = pk2.encrypt(&pt).unwrap();
        let sq = eval.rescale(&eval.mul(&ct, &ct).unwrap()).unwrap();
        let rot = eval.rotate(&sq, 3).unwrap();
        let want: Vec<f64> = (0..x.len()).map(|i| x[(i + 3) % x.len()].powi(2)).collect();
        let got = Encoder::new(&p).decode(&sk2.decrypt(&rot).unwrap());
        assert!(precision_bits(&got, &want) > 20.0);
    }

    /// The computed key sizes are the serialized ones, for several parameter sets and counts.
    #[test]
    fn key_serialized_len_matches_to_bytes() {
        for preset in [
            presets::INSECURE_N10_L4_S40_TEST_ONLY,
            presets::INSECURE_N11_L6_S40_TEST_ONLY,
        ] {
            let p = preset.build().unwrap();
            let mut kg = KeyGenerator::new(&p);
            let sk = kg.secret_key();
            let rk = kg.relin_key(&sk).unwrap().to_bytes(&p).unwrap();
            assert_eq!(
                RelinKey::serialized_len(&p),
                rk.len() as u64,
                "{}",
                preset.name
            );
            for steps in [&[][..], &[1], &[1, 2, 5]] {
                let gk = kg.galois_keys(&sk, steps, false).unwrap();
                let n = gk.elements().count();
                let bytes = gk.to_bytes(&p).unwrap();
                assert_eq!(
                    GaloisKeys::serialized_len(&p, n),
                    bytes.len() as u64,
                    "{} with {n} keys",
                    preset.name
                );
            }
            for level in 0..=p.max_level() {
                let gk = kg.galois_keys_at_level(&sk, &[3], false, level).unwrap();
                assert_eq!(
                    GaloisKeys::serialized_len_at_level(&p, level),
                    gk.to_bytes(&p).unwrap().len() as u64,
                    "{} at level {level}",
                    preset.name
                );
            }
        }
    }

    #[test]
    fn loading_under_wrong_parameters_fails() {
        let mut c = setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &[], false, false);
        let x = c.random(-1.0, 1.0);
        let ct = c.encrypt(&x);
        let bytes = ct.to_bytes(&c.params).unwrap();
        let other_n = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
        assert!(matches!(
            Ciphertext::from_bytes(&bytes, &other_n),
            Err(CkksError::ParamsMismatch {
                field: "log2(N)",
                expected: 11,
                found: 10,
                ..
            })
        ));
        // Same N, different chain (one level fewer).
        let other_chain = crate::CkksParams::builder()
            .log_n(crate::LogN(10))
            .levels(crate::Levels(3))
            .special_primes(crate::SpecialPrimes(2))
            .insecure_skip_security_check()
            .build()
            .unwrap();
        assert!(matches!(
            Ciphertext::from_bytes(&bytes, &other_chain),
            Err(CkksError::ParamsMismatch { .. })
        ));
        assert!(matches!(
            PublicKey::from_bytes(&c.pk.to_bytes().unwrap(), &other_chain),
            Err(CkksError::ParamsMismatch { .. })
        ));
    }

    #[test]
    fn malformed_input_is_refused() {
        let mut c = setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &[], false, false);
        let x = c.random(-1.0, 1.0);
        let ct = c.encrypt(&x);
        let bytes = ct.to_bytes(&c.params).unwrap();
        // Size limit.
        assert!(matches!(
            Ciphertext::from_bytes_with_limit(&bytes, &c.params, 1000),
            Err(CkksError::SizeLimit { limit: 1000, .. })
        ));
        // Truncated data.
        assert!(Ciphertext::from_bytes(&bytes[..bytes.len() - 8], &c.params).is_err());
        // Trailing data.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Ciphertext::from_bytes(&longer, &c.params).is_err());
        // An unreduced residue: set the first c0 coefficient to u64::MAX.
        let mut w: CiphertextWire = decode(&bytes, u64::MAX).unwrap();
        w.c0[0] = u64::MAX;
        let bad = encode(&w).unwrap();
        assert!(matches!(
            Ciphertext::from_bytes(&bad, &c.params),
            Err(CkksError::CoefficientOutOfRange {
                limb: 0,
                index: 0,
                ..
            })
        ));
        // A level above the chain.
        let mut w: CiphertextWire = decode(&bytes, u64::MAX).unwrap();
        w.level = 9;
        assert!(matches!(
            Ciphertext::from_bytes(&encode(&w).unwrap(), &c.params),
            Err(CkksError::ParamsMismatch { field: "level", .. })
        ));
        // A non-ternary secret coefficient.
        let mut w: SecretKeyWire = decode(&c.sk.to_bytes().unwrap(), u64::MAX).unwrap();
        w.coeffs[5] = 2;
        assert!(matches!(
            SecretKey::from_bytes(&encode(&w).unwrap(), &c.params),
            Err(CkksError::ValueOutOfRange { index: 5, .. })
        ));
    }
}
