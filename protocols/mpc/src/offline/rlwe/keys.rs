//! Keys, queries and responses of the RLWE triple source: the querier's ternary secret key,
//! its public key, encryption of a query under the `t = 2^64` encoding, decryption of a
//! modulus-switched response, and the wire formats of all three (validated on parsing).

use lattice::sample;
use rand::RngCore;

use super::bits::{BitReader, BitWriter};
use super::poly::{Coeff, Ntt, Poly};
use super::{RlweParams, PRIMES, PRIME_BITS, SEED_BYTES};
use crate::error::{MpcError, Result};

/// A ternary secret key (in NTT form). Zeroized on drop; `Debug` hides it.
pub struct SecretKey {
    s_ntt: Poly<Ntt>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<hidden>)")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.s_ntt.zeroize();
    }
}

/// A public key `(b, a) = (−a·s + e, a)` with `a` expanded from `seed`.
#[derive(Clone)]
pub struct PublicKey {
    seed: [u8; SEED_BYTES],
    pub(super) b: Poly<Ntt>,
    pub(super) a: Poly<Ntt>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey(RLWE)")
    }
}

/// A fresh encryption under the secret key: `c_0` in NTT form and the seed of `c_1 = a`.
#[derive(Clone)]
pub struct Query {
    seed: [u8; SEED_BYTES],
    c0: Poly<Ntt>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Query(RLWE ciphertext)")
    }
}

/// A query as the responder uses it: `c_0` and the expanded `c_1`, both in NTT form.
#[derive(Debug, Clone)]
pub struct ExpandedQuery {
    pub(super) c0: Poly<Ntt>,
    pub(super) c1: Poly<Ntt>,
}

/// A response: all of `c_1` modulo `2^w` and `c_0` at the output coefficients only, modulo
/// `2^(w−d)` (its low `d` bits dropped; [`RlweParams::c0_bits`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub(super) c1: Vec<u128>,
    pub(super) c0: Vec<u128>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Response({} outputs)", self.c0.len())
    }
}

impl SecretKey {
    /// A uniform ternary secret.
    pub fn generate(p: &RlweParams, rng: &mut impl RngCore) -> Self {
        let s = sample::ternary(rng, p.degree());
        let s_ntt = Poly::from_signed(p, &s, PRIMES).into_ntt(p);
        // `s` (zeroized when dropped here) is only needed in NTT form.
        Self { s_ntt }
    }

    /// A public key for this secret.
    pub fn public_key(&self, p: &RlweParams, rng: &mut impl RngCore) -> PublicKey {
        let mut seed = [0u8; SEED_BYTES];
        rng.fill_bytes(&mut seed);
        let q = self.encrypt_with_seed(p, &vec![0; p.degree()], seed, rng);
        PublicKey {
            seed,
            a: p.expand_uniform(&seed),
            b: q.c0,
        }
    }

    /// Encrypts the coefficient vector `m` (length at most `N`, entries in `Z_2^64`).
    pub fn encrypt(&self, p: &RlweParams, m: &[u64], rng: &mut impl RngCore) -> Query {
        let mut seed = [0u8; SEED_BYTES];
        rng.fill_bytes(&mut seed);
        self.encrypt_with_seed(p, m, seed, rng)
    }

    fn encrypt_with_seed(
        &self,
        p: &RlweParams,
        m: &[u64],
        seed: [u8; SEED_BYTES],
        rng: &mut impl RngCore,
    ) -> Query {
        assert!(m.len() <= p.degree(), "message longer than the ring degree");
        let n = p.degree();
        let e = sample::gaussian(rng, n);
        let mut phase = Poly::<Coeff>::zero(p, PRIMES);
        for i in 0..PRIMES {
            let q = p.modulus(i);
            let l = phase.limb_mut(i);
            for j in 0..n {
                let enc = m.get(j).map_or(0, |&v| p.encode_scaled(i, v));
                l[j] = q.add(enc, q.reduce_i64(e[j]));
            }
        }
        let mut c0 = phase.into_ntt(p);
        let a = p.expand_uniform(&seed);
        // c0 = phase − a·s
        let mut as_ = Poly::<Ntt>::zero(p, PRIMES);
        as_.mul_acc(p, &a, &self.s_ntt);
        c0.sub_assign(p, &as_);
        Query { seed, c0 }
    }

    /// Decrypts the output coefficients `outputs` of a response: `[x − R]_t` at each.
    pub fn decrypt(&self, p: &RlweParams, r: &Response, outputs: &[usize]) -> Result<Vec<u64>> {
        Ok(self
            .decrypt_with_noise(p, r, outputs)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// As [`SecretKey::decrypt`], with each coefficient's noise `phase − 2^(w−64)·m` (centered).
    pub fn decrypt_with_noise(
        &self,
        p: &RlweParams,
        r: &Response,
        outputs: &[usize],
    ) -> Result<Vec<(u64, i64)>> {
        let n = p.degree();
        if r.c1.len() != n || r.c0.len() != outputs.len() {
            return Err(MpcError::Malformed {
                reason: format!(
                    "HE response with {} c1 and {} c0 coefficients, expected {n} and {}",
                    r.c1.len(),
                    r.c0.len(),
                    outputs.len()
                ),
            });
        }
        let prod = self.c1_times_s(p, &r.c1);
        let mask = p.response_mask();
        let shift = p.response_bits() - 64;
        let drop = p.c0_drop();
        let mut out = Vec::with_capacity(outputs.len());
        for (&j, &c0) in outputs.iter().zip(&r.c0) {
            if j >= n {
                return Err(MpcError::Malformed {
                    reason: format!("HE output coefficient {j} beyond the degree {n}"),
                });
            }
            let phase = (c0 << drop).wrapping_add(prod[j]) & mask;
            let m = ((phase + (1u128 << (shift - 1))) >> shift) as u64;
            let back = ((m as u128) << shift) & mask;
            let noise = phase.wrapping_sub(back) & mask;
            let noise = if noise > mask / 2 {
                -((mask + 1 - noise) as i64)
            } else {
                noise as i64
            };
            out.push((m, noise));
        }
        Ok(out)
    }

    /// `c_1'·s` over the integers (centered, as a two's-complement `u128`), by NTT modulo
    /// `q_0·q_1` and the CRT lift (`|c_1'·s| ≤ N·2^w ≤ 2^89 < q_0·q_1/2`).
    fn c1_times_s(&self, p: &RlweParams, c1: &[u128]) -> Vec<u128> {
        let n = p.degree();
        let mut c1p = Poly::<Coeff>::zero(p, 2);
        for i in 0..2 {
            let m = p.modulus(i);
            for (o, &x) in c1p.limb_mut(i).iter_mut().zip(c1) {
                *o = m.reduce_u128(x);
            }
        }
        let c1p = c1p.into_ntt(p);
        let mut prod = Poly::<Ntt>::zero(p, 2);
        prod.mul_acc(p, &c1p, &self.s_ntt);
        let prod = prod.into_coeff(p);
        let (q0, q1) = (p.primes()[0] as u128, p.primes()[1] as u128);
        let big = q0 * q1;
        let m1 = p.modulus(1);
        (0..n)
            .map(|j| {
                let (a0, a1) = (prod.data()[j] as u128, prod.data()[n + j] as u128);
                let diff = (a1 + q1 - a0 % q1) % q1;
                let k = m1.mul(diff as u64, p.q0_inv_q1()) as u128;
                let x = a0 + q0 * k; // in [0, q0·q1)
                if x > big / 2 {
                    (x as i128 - big as i128) as u128
                } else {
                    x
                }
            })
            .collect()
    }
}

impl PublicKey {
    /// Serializes: seed, then `b` in NTT form.
    pub fn to_bytes(&self, p: &RlweParams) -> Vec<u8> {
        ntt_to_bytes(p, &self.seed, &self.b)
    }

    /// Parses and validates a public key.
    pub fn from_bytes(p: &RlweParams, bytes: &[u8]) -> Result<Self> {
        let (seed, b) = ntt_from_bytes(p, bytes, "public key")?;
        Ok(Self {
            a: p.expand_uniform(&seed),
            seed,
            b,
        })
    }
}

impl Query {
    /// Serializes: seed, then `c_0` in NTT form, `PRIME_BITS` bits per residue.
    pub fn to_bytes(&self, p: &RlweParams) -> Vec<u8> {
        ntt_to_bytes(p, &self.seed, &self.c0)
    }

    /// Parses and validates a query.
    pub fn from_bytes(p: &RlweParams, bytes: &[u8]) -> Result<Self> {
        let (seed, c0) = ntt_from_bytes(p, bytes, "query")?;
        Ok(Self { seed, c0 })
    }

    /// Expands `c_1` from the seed.
    pub fn expand(self, p: &RlweParams) -> ExpandedQuery {
        ExpandedQuery {
            c1: p.expand_uniform(&self.seed),
            c0: self.c0,
        }
    }
}

fn ntt_to_bytes(p: &RlweParams, seed: &[u8; SEED_BYTES], c: &Poly<Ntt>) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(p.query_bytes());
    w.out.extend_from_slice(seed);
    for &x in c.data() {
        w.put(x as u128, PRIME_BITS);
    }
    w.finish()
}

fn ntt_from_bytes(
    p: &RlweParams,
    bytes: &[u8],
    what: &str,
) -> Result<([u8; SEED_BYTES], Poly<Ntt>)> {
    if bytes.len() != p.query_bytes() {
        return Err(MpcError::Malformed {
            reason: format!(
                "HE {what} of {} bytes, expected {}",
                bytes.len(),
                p.query_bytes()
            ),
        });
    }
    let seed: [u8; SEED_BYTES] = bytes[..SEED_BYTES].try_into().expect("length checked");
    let mut r = BitReader::new(&bytes[SEED_BYTES..]);
    let mut c = Poly::<Ntt>::zero(p, PRIMES);
    for i in 0..PRIMES {
        let q = p.primes()[i];
        for (j, o) in c.limb_mut(i).iter_mut().enumerate() {
            let x = r.get(PRIME_BITS) as u64;
            if x >= q {
                return Err(MpcError::Malformed {
                    reason: format!(
                        "HE {what}: residue {x} at limb {i}, index {j} is not below the prime {q}"
                    ),
                });
            }
            *o = x;
        }
    }
    Ok((seed, c))
}

impl Response {
    /// Serializes: `c_1` at `w` bits per coefficient, then `c_0` at `w − d`.
    pub fn to_bytes(&self, p: &RlweParams) -> Vec<u8> {
        let mut w = BitWriter::with_capacity(p.response_bytes(self.c0.len()));
        for &x in &self.c1 {
            w.put(x, p.response_bits());
        }
        for &x in &self.c0 {
            w.put(x, p.c0_bits());
        }
        w.finish()
    }

    /// Parses a response with `outputs` output coefficients.
    pub fn from_bytes(p: &RlweParams, bytes: &[u8], outputs: usize) -> Result<Self> {
        let want = p.response_bytes(outputs);
        if bytes.len() != want {
            return Err(MpcError::Malformed {
                reason: format!("HE response of {} bytes, expected {want}", bytes.len()),
            });
        }
        let mut r = BitReader::new(bytes);
        let c1 = (0..p.degree()).map(|_| r.get(p.response_bits())).collect();
        let c0 = (0..outputs).map(|_| r.get(p.c0_bits())).collect();
        Ok(Self { c1, c0 })
    }

    /// `c_1` modulo `2^w`.
    pub fn c1(&self) -> &[u128] {
        &self.c1
    }
}
