//! The two representations of a linear map's evaluation (ModDown per rotation, lazy ModDown
//! per output) against the plaintext map and each other, for a hoisted and a BSGS plan, with
//! their operation counts against `planned_ops`; and the plan's choice between them.
//!
//! Tolerance: inputs and weights in [−1, 1], at most 32 terms per output, insecure N = 2^11
//! test parameters (Δ = 2^40): both evaluations within 1e-6 of the plaintext map (CKKS noise
//! after one rescale is near 2^-25 here).

use std::collections::BTreeSet;

use ckks::{
    CkksParams, Dnum, Encoder, Evaluator, KeyGenerator, Levels, LogN, PrimeBits, ScaleBits,
    SpecialPrimes,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::{LinearMap, PlaintextCache, Strategy, Term, DEFAULT_LOCKSTEP_BYTES};

fn params() -> CkksParams {
    CkksParams::builder()
        .name("INSECURE_LINEAR_TEST")
        .log_n(LogN(11))
        .scale_bits(ScaleBits(40))
        .levels(Levels(2))
        .first_prime_bits(PrimeBits(50))
        .special_primes(SpecialPrimes(2))
        .special_prime_bits(PrimeBits(55))
        .dnum(Dnum(3))
        .insecure_skip_security_check()
        .build()
        .unwrap()
}

/// A map over `slots` slots in blocks of `bs` with random weights: every output block reads
/// the input blocks at the given distances with the given in-block shifts.
fn random_map(slots: usize, bs: usize, distances: &[u32], shifts: &[i32], seed: u64) -> LinearMap {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let nb = (slots / bs) as u32;
    let mask: Vec<f64> = (0..bs)
        .map(|u| if u % 5 == 4 { 0.0 } else { 1.0 })
        .collect();
    let mut terms = Vec::new();
    for q in 0..2 {
        for j in 0..2 {
            for out_block in 0..4 {
                for &r in distances {
                    for &delta in shifts {
                        terms.push(Term {
                            q,
                            j,
                            in_block: (out_block + r) % nb,
                            out_block,
                            delta,
                            weight: rng.gen_range(-1.0..1.0),
                            mask: 0,
                        });
                    }
                }
            }
        }
    }
    LinearMap::new(slots, bs, 2, 2, vec![mask], terms)
}

/// The map in f64: output slot `p·bs + u` gets `w·mask[u]·in_j[p'·bs + u + δ]`.
fn plain(map: &LinearMap, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut out = vec![vec![0.0; map.slots]; map.n_out];
    for t in &map.terms {
        let mask = &map.masks[t.mask as usize];
        for (u, &m) in mask.iter().enumerate() {
            let src = (t.in_block as i64 * map.block as i64 + u as i64 + t.delta as i64)
                .rem_euclid(map.slots as i64) as usize;
            out[t.q as usize][t.out_block as usize * map.block + u] +=
                t.weight * m * inputs[t.j as usize][src];
        }
    }
    out
}

/// The test parameters, their secret key, an evaluator with the Galois keys of every step of
/// `maps`, the encoder, two random inputs in [−1, 1] (seeded) and their encryptions at the top
/// level.
type Setup = (
    CkksParams,
    ckks::SecretKey,
    Evaluator,
    Encoder,
    Vec<Vec<f64>>,
    Vec<ckks::Ciphertext>,
);

fn setup(maps: &[&LinearMap], key_seed: u8, seed: u64) -> Setup {
    let params = params();
    let mut kg = KeyGenerator::from_seed(&params, [key_seed; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let mut steps = BTreeSet::new();
    for m in maps {
        m.steps(&mut steps);
    }
    let steps: Vec<i64> = steps.into_iter().map(|s| s as i64).collect();
    let eval =
        Evaluator::new(&params).with_galois_keys(kg.galois_keys(&sk, &steps, false).unwrap());
    let enc = Encoder::new(&params);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let xs: Vec<Vec<f64>> = (0..2)
        .map(|_| {
            (0..params.slots())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect()
        })
        .collect();
    let cts: Vec<_> = xs
        .iter()
        .map(|x| {
            let pt = enc
                .encode(x, params.max_level(), params.default_scale())
                .unwrap();
            pk.encrypt(&pt).unwrap()
        })
        .collect();
    (params, sk, eval, enc, xs, cts)
}

/// The largest slot error of the decrypted `out` against `want`.
fn max_error(
    sk: &ckks::SecretKey,
    enc: &Encoder,
    out: &[ckks::Ciphertext],
    want: &[Vec<f64>],
) -> f64 {
    out.iter()
        .zip(want)
        .flat_map(|(ct, w)| {
            let got = enc.decode(&sk.decrypt(ct).unwrap());
            got.iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max)
}

fn check_both_lanes(map: LinearMap, want_strategy: fn(Strategy) -> bool) {
    assert!(want_strategy(map.strategy()), "{:?}", map.strategy());
    let (params, sk, eval, enc, xs, cts) = setup(&[&map], 3, 11);
    let want = plain(&map, &xs);
    let store = PlaintextCache::default();
    let mut map = map;
    for lazy in [true, false] {
        map.lazy = lazy;
        eval.reset_counters();
        let out = map
            .apply(&eval, &enc, &store, &cts, params.default_scale())
            .unwrap();
        assert_eq!(eval.counters(), map.planned_ops(), "lazy {lazy}");
        let err = max_error(&sk, &enc, &out, &want);
        assert!(err < 1e-6, "lazy {lazy}: error {err}");
    }
}

#[test]
fn hoisted_map_agrees_in_both_representations() {
    // One block distance, three shifts: 3 steps per input, no fewer with BSGS (hoisted on ties).
    let map = random_map(1024, 64, &[1], &[-1, 0, 2], 1);
    // 6 rotations save 12 ModDowns; 2 outputs cost 4 and the products over Q·P little more.
    assert!(map.lazy, "a map with rotations plans the lazy ModDown");
    check_both_lanes(map, |s| s == Strategy::Hoisted);
}

#[test]
fn bsgs_map_agrees_in_both_representations() {
    // Every block distance 0..16 with two shifts: BSGS splits them into baby and giant steps.
    let distances: Vec<u32> = (0..16).collect();
    let map = random_map(1024, 64, &distances, &[0, 1], 2);
    check_both_lanes(map, |s| matches!(s, Strategy::Bsgs { .. }));
}

#[test]
fn representation_at_a_level_weighs_the_special_limbs() {
    // Many products per rotation (every block distance 0..16, two shifts: 128 products, 20
    // rotations). Near the top of a deep chain with one special prime the products over Q·P
    // cost little more than over Q and the lazy form saves 30 ModDowns; at level 0 with three
    // special primes each product and encoding over Q·P carries four times the limbs, more
    // than the ModDowns saved.
    let distances: Vec<u32> = (0..16).collect();
    let mut map = random_map(1024, 64, &distances, &[0, 1], 2);
    assert_eq!((map.products(), map.rotations()), (128, 20));
    map.plan_representation(20, 1, DEFAULT_LOCKSTEP_BYTES, 2);
    assert!(map.lazy);
    assert_eq!(map.planned_over_qp(), 128);
    map.plan_representation(0, 3, DEFAULT_LOCKSTEP_BYTES, 2);
    assert!(!map.lazy);
    assert_eq!(map.planned_over_qp(), 0);
    assert_eq!(map.planned_ops().mod_down, 2 * 20);
    // Few products per rotation (one distance, three shifts: 12 products, 6 rotations) keep
    // the lazy form at a low level too.
    let mut few = random_map(1024, 64, &[1], &[-1, 0, 2], 1);
    few.plan_representation(4, 3, DEFAULT_LOCKSTEP_BYTES, 2);
    assert!(few.lazy);
}

#[test]
fn rotation_free_map_keeps_the_per_rotation_representation() {
    // Only distance 0 without shift: no rotation, so a lazy ModDown per output is pure cost.
    let map = random_map(1024, 64, &[0], &[0], 3);
    assert_eq!(map.rotations(), 0);
    assert!(!map.lazy);
}

/// An open map (no rescale, diagonals at `ρ·√q_ℓ`) closed by the next map (one rescale): the
/// pair spends one level, its counts are the planned ones, and the result is the composed
/// plaintext map within the precision of two ~20-bit weight encodings (each slot of a
/// diagonal off by about `√(N/12)/2^20 ≈ 1.3e-5` at `N = 2^11`; with 6 and 8 terms per output
/// slot and weights and inputs in [−1, 1] the error measured 1.3e-4 on outputs up to 4.7;
/// tolerance 1e-3). Each map refuses to be evaluated the other way.
#[test]
fn open_map_and_its_closer_spend_one_level() {
    let mut first = random_map(1024, 64, &[1], &[-1, 0, 2], 21).opened();
    let second = random_map(1024, 64, &[0, 2], &[0, 1], 22);
    first.balance_with(&second);
    assert!(first.is_open() && !second.is_open());
    let (params, sk, eval, enc, xs, cts) = setup(&[&first, &second], 5, 23);
    let top = params.max_level();
    let store = PlaintextCache::default();
    let delta = params.default_scale();
    assert!(first.apply(&eval, &enc, &store, &cts, delta).is_err());
    let s = first.open_split() * super::open_scale(&params, top).unwrap();
    eval.reset_counters();
    let mid = first.apply_open(&eval, &enc, &store, &cts, s).unwrap();
    assert_eq!(eval.counters(), first.planned_ops());
    assert_eq!(first.planned_ops().rescale, 0);
    assert_eq!(mid[0].level(), top);
    assert!(second.apply_open(&eval, &enc, &store, &mid, s).is_err());
    let out = second.apply(&eval, &enc, &store, &mid, delta).unwrap();
    assert_eq!(out[0].level(), top - 1);
    assert!((out[0].scale() / delta - 1.0).abs() < 1e-9);
    let want = plain(&second, &plain(&first, &xs));
    let err = max_error(&sk, &enc, &out, &want);
    assert!(err < 1e-3, "error {err}");
}
