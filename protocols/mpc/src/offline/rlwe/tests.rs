//! Tests of the RLWE triple source: the algebra against schoolbook and 128-bit references,
//! the bit packing, the parameter bounds and the end-to-end noise and privacy properties.

use super::bits::{BitReader, BitWriter};
use super::responder::respond_inner;
use super::*;
use crate::error::MpcError;
use crate::offline::flood::{self, FloodLedger, FloodNoise};
use proptest::prelude::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Schoolbook negacyclic product modulo `q`.
#[allow(clippy::needless_range_loop)]
fn schoolbook(a: &[u64], b: &[u64], q: u64) -> Vec<u64> {
    let n = a.len();
    let mut out = vec![0u128; n];
    for i in 0..n {
        for j in 0..n {
            let prod = a[i] as u128 * b[j] as u128 % q as u128;
            let k = i + j;
            if k < n {
                out[k] = (out[k] + prod) % q as u128;
            } else {
                out[k - n] = (out[k - n] + q as u128 - prod) % q as u128;
            }
        }
    }
    out.into_iter().map(|x| x as u64).collect()
}

/// Negacyclic product over `Z_2^64`.
#[allow(clippy::needless_range_loop)]
pub(crate) fn ring_product(a: &[u64], b: &[u64]) -> Vec<u64> {
    let n = a.len();
    let mut out = vec![0u64; n];
    for i in 0..n {
        if a[i] == 0 {
            continue;
        }
        for j in 0..n {
            let prod = a[i].wrapping_mul(b[j]);
            let k = i + j;
            if k < n {
                out[k] = out[k].wrapping_add(prod);
            } else {
                out[k - n] = out[k - n].wrapping_sub(prod);
            }
        }
    }
    out
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn plaintext(p: &RlweParams, w: &[u64]) -> Poly<Ntt> {
    let v: Vec<i64> = w.iter().map(|&x| x as i64).collect();
    Poly::from_signed(p, &v, PRIMES).into_ntt(p)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// NTT multiplication equals the schoolbook negacyclic product, on every prime.
    #[test]
    fn ntt_product_is_negacyclic(seed in any::<u64>()) {
        let p = RlweParams::new(6).unwrap();
        let n = p.degree();
        let mut g = rng(seed);
        for i in 0..PRIMES {
            let q = p.primes()[i];
            let a: Vec<u64> = (0..n).map(|_| g.next_u64() % q).collect();
            let b: Vec<u64> = (0..n).map(|_| g.next_u64() % q).collect();
            let mut pa = Poly::<Coeff>::zero(&p, 1);
            let mut pb = Poly::<Coeff>::zero(&p, 1);
            pa.data_mut().copy_from_slice(&a);
            pb.data_mut().copy_from_slice(&b);
            let (fa, fb) = (pa.ntt_on(&p, i), pb.ntt_on(&p, i));
            let mut acc = vec![0u64; n];
            let plan = &p.as_ref().plans()[i];
            plan.mul_accumulate(&mut acc, &fa, &fb);
            plan.inv(&mut acc);
            plan.normalize(&mut acc);
            prop_assert_eq!(acc, schoolbook(&a, &b, q));
        }
    }

    /// A sparse plaintext equals the dense one with the same coefficients, zeros elsewhere.
    #[test]
    fn sparse_plaintext_equals_dense(seed in any::<u64>(), count in 0usize..64) {
        let p = RlweParams::new(6).unwrap();
        let n = p.degree();
        let mut g = rng(seed);
        let mut dense = vec![0i64; n];
        let mut entries = Vec::new();
        for _ in 0..count {
            let j = g.next_u64() as usize % n;
            if dense[j] == 0 {
                dense[j] = g.next_u64() as i64;
                entries.push((j, dense[j]));
            }
        }
        let sparse = Poly::from_sparse_signed(&p, &entries, PRIMES);
        prop_assert!(sparse == Poly::from_signed(&p, &dense, PRIMES));
    }

    /// The limb-major pair of sums equals one `mul_acc` per term, on a prefix of the limbs.
    #[test]
    fn dot_pair_equals_mul_acc_per_term(seed in any::<u64>(), count in 0usize..4) {
        let p = RlweParams::new(6).unwrap();
        let n = p.degree();
        let mut g = rng(seed);
        let mut poly = || {
            let v: Vec<i64> = (0..n).map(|_| g.next_u64() as i64).collect();
            Poly::from_signed(&p, &v, PRIMES).into_ntt(&p)
        };
        let polys: Vec<[Poly<Ntt>; 3]> = (0..count).map(|_| [poly(), poly(), poly()]).collect();
        let terms: Vec<_> = polys.iter().map(|[x, y, w]| (x, y, w)).collect();
        for limbs in [1, PRIMES] {
            let (mut w0, mut w1) = (Poly::<Ntt>::zero(&p, limbs), Poly::<Ntt>::zero(&p, limbs));
            for (x, y, w) in &terms {
                w0.mul_acc(&p, x, w);
                w1.mul_acc(&p, y, w);
            }
            let (c0, c1) = Poly::dot_pair(&p, &terms, limbs);
            prop_assert!(c0 == w0 && c1 == w1);
        }
    }

    /// Signed reduction and the rounded scaling agree with 128-bit arithmetic.
    #[test]
    fn reductions_match_wide_arithmetic(x in any::<i64>(), f in any::<i128>(), m in any::<u64>()) {
        let p0 = RlweParams::new(6).unwrap();
        for i in 0..PRIMES {
            let q = p0.primes()[i] as u128;
            let want = (p0.delta[i] as u128 * (m as u128 % q)
                + ((p0.q_mod_t as u128 * m as u128 + (1 << 63)) >> 64))
                % q;
            prop_assert_eq!(p0.encode_scaled(i, m) as u128, want);
        }
        let p = RlweParams::new(6).unwrap();
        for i in 0..PRIMES {
            let q = p.primes()[i] as i128;
            prop_assert_eq!(p.reduce_i64(i, x) as i128, (x as i128).rem_euclid(q));
            // Flooding noise hi·2^128 + lo, reduced by shifting 64 bits at a time.
            let (hi, lo) = ((f >> 64) as i64, f as u128);
            let mut want = (hi as i128).rem_euclid(q) as u128;
            want = (want << 64) % q as u128;
            want = (want << 64) % q as u128;
            want = (want + lo % q as u128) % q as u128;
            prop_assert_eq!(p.reduce_flood(i, FloodNoise { hi, lo }) as u128, want);
        }
        // Δ = ⌊Q/t⌋ satisfies Δ·t + r_t = Q ≡ 0 (mod q_i).
        for i in 0..PRIMES {
            let q = p.primes()[i] as u128;
            let t = (1u128 << 64) % q;
            let lhs = (p.delta[i] as u128 * t + p.q_mod_t as u128 % q) % q;
            prop_assert_eq!(lhs, 0);
        }
    }
}

impl Poly<Coeff> {
    fn ntt_on(&self, p: &RlweParams, i: usize) -> Vec<u64> {
        let mut v = self.data().to_vec();
        p.as_ref().plans()[i].fwd(&mut v);
        v
    }
}

proptest! {
    /// Bit packing round-trips values of mixed widths.
    #[test]
    fn bit_packing_round_trips(v in proptest::collection::vec((any::<u128>(), 1u32..=128), 0..40)) {
        let mut w = BitWriter::with_capacity(0);
        for &(x, b) in &v {
            w.put(x & (u128::MAX >> (128 - b)), b);
        }
        let bytes = w.finish();
        let total: u32 = v.iter().map(|x| x.1).sum();
        prop_assert_eq!(bytes.len(), total.div_ceil(8) as usize);
        let mut r = BitReader::new(&bytes);
        for &(x, b) in &v {
            prop_assert_eq!(r.get(b), x & (u128::MAX >> (128 - b)));
        }
    }
}

#[test]
fn standard_parameters_meet_the_bounds() {
    let p = RlweParams::standard();
    assert_eq!(p.degree(), 16384);
    assert!(p.log_q() <= 438.0 && p.log_q() > 249.9, "{}", p.log_q());
    assert!(p.noise_margin_bits() > 0.1, "{}", p.noise_margin_bits());
    assert_eq!(p.max_flood_bits(), 167);
    let worst = flood::coefficient_distance_log2(p.degree(), MAX_RESPONSE_NNZ);
    let run = worst + RUN_FLOOD_BUDGET_LOG2 as f64;
    assert!(run <= -(FLOOD_STAT_BITS as f64), "{run}");
    for &q in p.primes() {
        assert_eq!(q % (2 * 16384), 1);
        assert!(q < 1 << PRIME_BITS && q > 1 << (PRIME_BITS - 1));
    }
    assert_eq!((p.response_bits(), p.c0_bits()), (75, 66));
    // 16384 · 75 bits of c_1 and 66 per output (before: 79 for both).
    assert_eq!(p.response_bytes(320), 156_240);
}

/// The primes of `Q` (on which the wire format's residues depend) are those of the search the
/// triple source used before it moved to the lattice crate (tfhe-ntt's).
#[test]
fn standard_primes_are_the_recorded_ones() {
    let p = RlweParams::standard();
    let want = [
        1125899904679937,
        1125899903991809,
        1125899903827969,
        1125899903795201,
        1125899903500289,
    ];
    assert_eq!(p.primes(), want);
    assert!(p.is_128_bit_secure());
    assert_eq!(N14_Q250_128BIT.build().unwrap().primes(), want);
}

/// The preset refuses what it cannot support, and the test degrees claim no security.
#[test]
fn presets_are_validated() {
    let wrong_shape = RlwePreset {
        primes: 4,
        ..N14_Q250_128BIT
    };
    assert!(wrong_shape.build().is_err());
    let small = RlwePreset {
        name: "test",
        log_n: 9,
        ..N14_Q250_128BIT
    };
    assert!(matches!(
        small.build(),
        Err(MpcError::InvalidHeParams { max: 0, .. })
    ));
    assert!(!RlweParams::new(9).unwrap().is_128_bit_secure());
}

/// Encrypt, multiply by the constant 1, subtract R, decrypt every coefficient.
#[test]
fn encrypt_respond_decrypt_round_trip() {
    let p = RlweParams::standard();
    let n = p.degree();
    let mut g = rng(1);
    let sk = SecretKey::generate(&p, &mut g);
    let pk = sk.public_key(&p, &mut g);
    let pk = PublicKey::from_bytes(&p, &pk.to_bytes(&p)).unwrap();
    let mut m: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
    m[0] = u64::MAX;
    m[1] = 0;
    let q = sk.encrypt(&p, &m, &mut g);
    let bytes = q.to_bytes(&p);
    assert_eq!(bytes.len(), p.query_bytes());
    let q = Query::from_bytes(&p, &bytes).unwrap().expand(&p);
    let mut one = vec![0u64; n];
    one[0] = 1;
    let w = plaintext(&p, &one);
    let outputs: Vec<usize> = (0..n).collect();
    let (resp, r) = respond(
        &p,
        &pk,
        &[(&q, &w)],
        1,
        &outputs,
        &FloodLedger::default(),
        &mut g,
    )
    .unwrap();
    let bytes = resp.to_bytes(&p);
    assert_eq!(bytes.len(), p.response_bytes(n));
    let resp2 = Response::from_bytes(&p, &bytes, n).unwrap();
    assert_eq!(resp, resp2);
    let d = sk.decrypt(&p, &resp2, &outputs).unwrap();
    for j in 0..n {
        assert_eq!(d[j].wrapping_add(r[j]), m[j], "coefficient {j}");
    }
}

/// A product with a random plaintext equals the negacyclic product over Z_2^64.
#[test]
fn plaintext_product_is_the_ring_product() {
    let p = RlweParams::new(9).unwrap();
    let n = p.degree();
    let mut g = rng(2);
    let sk = SecretKey::generate(&p, &mut g);
    let pk = sk.public_key(&p, &mut g);
    let m: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
    let w: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
    let q = sk.encrypt(&p, &m, &mut g).expand(&p);
    let outputs: Vec<usize> = (0..n).step_by(3).collect();
    let (resp, r) = respond(
        &p,
        &pk,
        &[(&q, &plaintext(&p, &w))],
        n,
        &outputs,
        &FloodLedger::default(),
        &mut g,
    )
    .unwrap();
    let d = sk.decrypt(&p, &resp, &outputs).unwrap();
    let want = ring_product(&m, &w);
    for (k, &j) in outputs.iter().enumerate() {
        assert_eq!(d[k].wrapping_add(r[k]), want[j]);
    }
}

/// Worst-case magnitudes: every plaintext coefficient −2^63, every message coefficient
/// 2^64 − 1, the largest number of summed products a response allows, full flooding. The
/// decryption is exact and the measured noise stays below the analysed worst case, which is
/// below the decryption threshold 2^(w−65).
#[test]
fn worst_case_noise_stays_below_the_bound() {
    let p = RlweParams::standard();
    let n = p.degree();
    let mut g = rng(3);
    let sk = SecretKey::generate(&p, &mut g);
    let pk = sk.public_key(&p, &mut g);
    let m = vec![u64::MAX; n];
    let w = vec![1u64 << 63; n];
    let wp = plaintext(&p, &w);
    let count = MAX_RESPONSE_NNZ / n;
    let qs: Vec<ExpandedQuery> = (0..count)
        .map(|_| sk.encrypt(&p, &m, &mut g).expand(&p))
        .collect();
    let products: Vec<_> = qs.iter().map(|q| (q, &wp)).collect();
    let outputs: Vec<usize> = (0..n).collect();
    let (resp, r) = respond(
        &p,
        &pk,
        &products,
        count * n,
        &outputs,
        &FloodLedger::default(),
        &mut g,
    )
    .unwrap();
    let d = sk.decrypt_with_noise(&p, &resp, &outputs).unwrap();
    let one = ring_product(&m, &w);
    let bound = p.response_error_bound();
    assert!(bound < 2f64.powi(p.response_bits() as i32 - 65));
    let mut worst = 0i64;
    for j in 0..n {
        let want = one[j].wrapping_mul(count as u64);
        assert_eq!(d[j].0.wrapping_add(r[j]), want, "coefficient {j}");
        worst = worst.max(d[j].1.abs());
    }
    assert!(
        (worst as f64) < bound,
        "noise {worst} above the bound {bound}"
    );
    // Above the cap, the responder refuses.
    let ledger = FloodLedger::default();
    assert!(respond(
        &p,
        &pk,
        &products,
        MAX_RESPONSE_NNZ + 1,
        &outputs,
        &ledger,
        &mut g
    )
    .is_err());
}

/// The responder charges every flooded output coefficient to the run's ledger and refuses a
/// response that would exceed the budget (the refused one is not charged).
#[test]
fn responses_beyond_the_run_budget_are_refused() {
    let p = RlweParams::new(6).unwrap();
    let mut g = rng(6);
    let sk = SecretKey::generate(&p, &mut g);
    let pk = sk.public_key(&p, &mut g);
    let q = sk.encrypt(&p, &[1, 2, 3], &mut g).expand(&p);
    let w = plaintext(&p, &[1]);
    let ledger = FloodLedger::with_budget(20);
    let outputs: Vec<usize> = (0..8).collect();
    for _ in 0..2 {
        respond(&p, &pk, &[(&q, &w)], 1, &outputs, &ledger, &mut g).unwrap();
    }
    assert_eq!(ledger.used(), 16);
    let e = respond(&p, &pk, &[(&q, &w)], 1, &outputs, &ledger, &mut g).unwrap_err();
    assert!(
        matches!(
            e,
            MpcError::InvalidHeParams {
                value: 24,
                max: 20,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(ledger.used(), 16);
    respond(&p, &pk, &[(&q, &w)], 1, &outputs[..4], &ledger, &mut g).unwrap();
}

/// The response's c1 is not the bare product a·ŵ (which would reveal ŵ to the key owner):
/// re-randomization changes nearly every coefficient by a full-size amount, and the plaintext's
/// words appear nowhere in the response bytes.
#[test]
fn response_is_rerandomized_and_hides_the_plaintext() {
    let p = RlweParams::standard();
    let n = p.degree();
    let mut g = rng(4);
    let sk = SecretKey::generate(&p, &mut g);
    let pk = sk.public_key(&p, &mut g);
    let m: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
    let w: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
    let wp = plaintext(&p, &w);
    let q = sk.encrypt(&p, &m, &mut g).expand(&p);
    let outputs = vec![0usize, 7, 100];
    let (bare, _) = respond_inner(
        &p,
        &pk,
        &[(&q, &wp)],
        n,
        &outputs,
        &FloodLedger::default(),
        &mut g,
        false,
    )
    .unwrap();
    let (resp, _) = respond(
        &p,
        &pk,
        &[(&q, &wp)],
        n,
        &outputs,
        &FloodLedger::default(),
        &mut g,
    )
    .unwrap();
    let mask = p.response_mask();
    let far = bare
        .c1()
        .iter()
        .zip(resp.c1())
        .filter(|(a, b)| {
            let d = a.wrapping_sub(**b) & mask;
            d.min(mask + 1 - d) > 1 << 40
        })
        .count();
    assert!(far > n - 8, "only {far} of {n} coefficients re-randomized");
    let bytes = resp.to_bytes(&p);
    for &x in &w {
        let pat = x.to_le_bytes();
        assert!(!bytes.windows(8).any(|b| b == pat));
    }
    // Decryption still works on the re-randomized response.
    assert_eq!(sk.decrypt(&p, &resp, &outputs).unwrap().len(), 3);
}

#[test]
fn malformed_ciphertexts_are_refused() {
    let p = RlweParams::new(6).unwrap();
    let mut g = rng(5);
    let sk = SecretKey::generate(&p, &mut g);
    let q = sk.encrypt(&p, &[1, 2, 3], &mut g);
    let mut b = q.to_bytes(&p);
    assert!(Query::from_bytes(&p, &b[1..]).is_err());
    for x in &mut b[SEED_BYTES..SEED_BYTES + 7] {
        *x = 0xff;
    }
    assert!(matches!(
        Query::from_bytes(&p, &b),
        Err(MpcError::Malformed { reason }) if reason.contains("not below the prime")
    ));
    assert!(Response::from_bytes(&p, &[0u8; 3], 1).is_err());
    assert!(RlweParams::new(15).is_err());
    assert_eq!(format!("{sk:?}"), "SecretKey(<hidden>)");
}

/// Encrypts `m` once per query (`count` queries), multiplies each by the plaintext `w`, responds
/// at every coefficient flooded at the widest width, and checks the decryption and its noise
/// against the bound of the switched widths. Returns the largest noise seen.
fn switched_response_decrypts(
    p: &RlweParams,
    m: &[u64],
    w: &[u64],
    count: usize,
    seed: u64,
) -> i64 {
    let n = p.degree();
    let mut g = rng(seed);
    let sk = SecretKey::generate(p, &mut g);
    let pk = sk.public_key(p, &mut g);
    let wp = plaintext(p, w);
    let qs: Vec<ExpandedQuery> = (0..count)
        .map(|_| {
            let q = sk.encrypt(p, m, &mut g);
            Query::from_bytes(p, &q.to_bytes(p)).unwrap().expand(p)
        })
        .collect();
    let products: Vec<_> = qs.iter().map(|q| (q, &wp)).collect();
    let outputs: Vec<usize> = (0..n).collect();
    let ledger = FloodLedger::default();
    let (resp, r) = respond(
        p,
        &pk,
        &products,
        MAX_RESPONSE_NNZ,
        &outputs,
        &ledger,
        &mut g,
    )
    .unwrap();
    let resp = Response::from_bytes(p, &resp.to_bytes(p), n).unwrap();
    let d = sk.decrypt_with_noise(p, &resp, &outputs).unwrap();
    let one = ring_product(m, w);
    let bound = p.response_error_bound();
    let mut worst = 0i64;
    for j in 0..n {
        let want = one[j].wrapping_mul(count as u64);
        assert_eq!(d[j].0.wrapping_add(r[j]), want, "coefficient {j}");
        worst = worst.max(d[j].1.abs());
    }
    assert!(
        (worst as f64) < bound,
        "noise {worst} above the bound {bound}"
    );
    worst
}

/// Operand words at the extremes of `Z_2^64` (as centered values: 0, ±1, ±2^63, 2^63 − 1) or
/// uniform.
fn extreme_word() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(u64::MAX),
        Just(1u64 << 63),
        Just((1u64 << 63) - 1),
        any::<u64>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// At the switched widths (c_1 at `w` bits, c_0 with `d` low bits dropped) a response
    /// flooded at the widest width decrypts to the right share, for operands at the extremes
    /// of `Z_2^64` and several products summed.
    #[test]
    fn switched_responses_decrypt_at_extreme_operands(
        m in extreme_word(),
        w in extreme_word(),
        fill in any::<u64>(),
        count in 1usize..6,
        seed in any::<u64>(),
    ) {
        let p = RlweParams::new(9).unwrap();
        prop_assert!(p.c0_bits() < p.response_bits());
        let n = p.degree();
        let mut g = rng(fill);
        // Half the words at the chosen extreme, the rest uniform.
        let ms: Vec<u64> = (0..n).map(|j| if j % 2 == 0 { m } else { g.next_u64() }).collect();
        let ws: Vec<u64> = (0..n).map(|j| if j % 3 != 2 { w } else { g.next_u64() }).collect();
        switched_response_decrypts(&p, &ms, &ws, count, seed);
    }
}

/// The standard parameters' switched widths at the largest magnitudes (every query word
/// `2^64 − 1`, every plaintext word `−2^63`), every coefficient an output: the noise stays below
/// the bound, and in fact below half of it.
#[test]
fn standard_switched_response_decrypts_at_worst_case_magnitudes() {
    let p = RlweParams::standard();
    let n = p.degree();
    let worst = switched_response_decrypts(&p, &vec![u64::MAX; n], &vec![1u64 << 63; n], 2, 11);
    assert!((worst as f64) < p.response_error_bound() / 2.0, "{worst}");
}

/// Every query carries its own seed of `c_1` (two encryptions of one message share neither the
/// seed nor `c_0`), and the seeded query, expanded by the responder, is the ciphertext the
/// querier made: it decrypts (through a response with the plaintext 1) to the message.
#[test]
fn query_seeds_are_fresh() {
    let p = RlweParams::new(8).unwrap();
    let mut g = rng(12);
    let sk = SecretKey::generate(&p, &mut g);
    let m: Vec<u64> = (0..p.degree()).map(|_| g.next_u64()).collect();
    let a = sk.encrypt(&p, &m, &mut g).to_bytes(&p);
    let b = sk.encrypt(&p, &m, &mut g).to_bytes(&p);
    assert_ne!(a[..SEED_BYTES], b[..SEED_BYTES]);
    assert_ne!(a[SEED_BYTES..], b[SEED_BYTES..]);
    let mut one = vec![0u64; p.degree()];
    one[0] = 1;
    switched_response_decrypts(&p, &m, &one, 1, 13);
}
