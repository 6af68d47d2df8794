//! Tests of [`crate::lazy`]: hoisted linear combinations with one ModDown per sum against the
//! per-rotation path (same decrypted values within the key-switching noise), the giant-step
//! rotation of a sum before its ModDown, exact lifts, counters and refusals.
//!
//! Noise bound checked: at the insecure N = 2^10 preset (Δ = 2^40) a sum of up to 8 rotations
//! times plaintexts of magnitude ≤ 1, rescaled, is decrypted with at least 18 bits of precision
//! against the f64 reference by both paths, and the lazy path's precision is within 1 bit of the
//! per-rotation path's (its error is one ModDown rounding instead of one per rotation).

use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::error::CkksError;
use crate::params::presets;
use crate::scheme_tests::{precision_bits, setup, Ctx};
use crate::*;

const STEPS: [i64; 8] = [1, 2, 3, 5, 8, 13, -1, -7];

fn ctx() -> Ctx {
    setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &STEPS, false, true)
}

fn rotate_vec(x: &[f64], step: i64) -> Vec<f64> {
    let n = x.len() as i64;
    (0..n)
        .map(|i| x[(i + step).rem_euclid(n) as usize])
        .collect()
}

/// `Σ_s pt_s ⊙ rot(ct, s)` both ways (`0` in `steps`: the unrotated input), rescaled, and the
/// f64 reference.
fn both_paths(c: &mut Ctx, steps: &[i64], level: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let x = c.random(-1.0, 1.0);
    let fresh = c.encrypt(&x);
    let ct = c.eval.drop_to_level(&fresh, level).unwrap();
    let ws: Vec<Vec<f64>> = steps.iter().map(|_| c.random(-1.0, 1.0)).collect();
    let scale = c.params.q_primes()[level] as f64;
    let nonzero: Vec<i64> = steps.iter().copied().filter(|&s| s != 0).collect();
    let old_rot = c.eval.rotate_hoisted(&ct, &nonzero).unwrap();
    let new_rot = c.eval.rotate_hoisted_ext(&ct, &nonzero).unwrap();
    let lifted = c.eval.lift_ext(&ct).unwrap();
    let mut old: Option<Ciphertext> = None;
    let mut new: Option<ExtCiphertext> = None;
    let mut want = vec![0.0; x.len()];
    for (s, w) in steps.iter().zip(&ws) {
        let i = nonzero.iter().position(|v| v == s);
        let pt = c.enc.encode(w, level, scale).unwrap();
        let pt_ext = c.enc.encode_ext(w, level, scale).unwrap();
        let o = c
            .eval
            .mul_plain(i.map_or(&ct, |i| &old_rot[i]), &pt)
            .unwrap();
        match &mut old {
            None => old = Some(o),
            Some(a) => c.eval.add_assign(a, &o).unwrap(),
        }
        let r = i.map_or(&lifted, |i| &new_rot[i]);
        match &mut new {
            None => new = Some(c.eval.mul_plain_ext(r, &pt_ext).unwrap()),
            Some(a) => c.eval.mul_plain_add_assign_ext(a, r, &pt_ext).unwrap(),
        }
        for (k, v) in rotate_vec(&x, *s).iter().enumerate() {
            want[k] += w[k] * v;
        }
    }
    let old = c.eval.rescale(&old.unwrap()).unwrap();
    let new = c
        .eval
        .rescale(&c.eval.mod_down_ext(new.unwrap()).unwrap())
        .unwrap();
    (c.decrypt(&old), c.decrypt(&new), want)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    #[test]
    fn lazy_sum_matches_per_rotation_path(seed in any::<u64>(), count in 1usize..=8,
                                          with_zero in any::<bool>(), level in 1usize..=4) {
        let mut c = ctx();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        c.rng = ChaCha20Rng::seed_from_u64(seed ^ 1);
        let mut steps: Vec<i64> = STEPS.choose_multiple(&mut rng, count).copied().collect();
        if with_zero {
            steps.push(0);
        }
        let (old, new, want) = both_paths(&mut c, &steps, level);
        let (bo, bn) = (precision_bits(&old, &want), precision_bits(&new, &want));
        prop_assert!(bo >= 18.0 && bn >= 18.0, "old {bo:.1} new {bn:.1} bits");
        prop_assert!(bn >= bo - 1.0, "lazy {bn:.1} bits vs per-rotation {bo:.1} bits");
    }
}

#[test]
fn giant_step_rotation_before_mod_down_matches() {
    // rot(Σ pt ⊙ rot(ct, b), g) with the sum kept over Q·P against the per-rotation path.
    let mut c = ctx();
    let level = 3;
    let x = c.random(-1.0, 1.0);
    let fresh = c.encrypt(&x);
    let ct = c.eval.drop_to_level(&fresh, level).unwrap();
    let w = c.random(-1.0, 1.0);
    let scale = c.params.q_primes()[level] as f64;
    let pt = c.enc.encode(&w, level, scale).unwrap();
    let pt_ext = c.enc.encode_ext(&w, level, scale).unwrap();
    let old = c
        .eval
        .mul_plain(&c.eval.rotate(&ct, 2).unwrap(), &pt)
        .unwrap();
    let old = c.eval.rescale(&c.eval.rotate(&old, 5).unwrap()).unwrap();
    let r = c.eval.rotate_hoisted_ext(&ct, &[2]).unwrap();
    let sum = c.eval.mul_plain_ext(&r[0], &pt_ext).unwrap();
    let g = c.eval.rotate_ext(&sum, 5).unwrap();
    let new = c.eval.rescale(&c.eval.mod_down_ext(g).unwrap()).unwrap();
    let want: Vec<f64> = rotate_vec(
        &w.iter()
            .zip(rotate_vec(&x, 2))
            .map(|(a, b)| a * b)
            .collect::<Vec<_>>(),
        5,
    );
    let (bo, bn) = (
        precision_bits(&c.decrypt(&old), &want),
        precision_bits(&c.decrypt(&new), &want),
    );
    assert!(bo >= 18.0 && bn >= bo - 1.0, "old {bo:.1} new {bn:.1} bits");
}

#[test]
fn lift_then_mod_down_is_exact() {
    let mut c = ctx();
    let x = c.random(-1.0, 1.0);
    let fresh = c.encrypt(&x);
    let ct = c.eval.drop_to_level(&fresh, 2).unwrap();
    let back = c.eval.mod_down_ext(c.eval.lift_ext(&ct).unwrap()).unwrap();
    assert!(back.c0 == ct.c0 && back.c1 == ct.c1 && back.scale == ct.scale);
}

#[test]
fn lazy_counters_count_mod_downs() {
    let mut c = ctx();
    let x = c.random(-1.0, 1.0);
    let ct = c.encrypt(&x);
    let pt = c.enc.encode_ext(&x, 4, ct.scale()).unwrap();
    c.eval.reset_counters();
    let r = c.eval.rotate_hoisted_ext(&ct, &[1, 2, 3]).unwrap();
    let mut acc = c.eval.mul_plain_ext(&r[0], &pt).unwrap();
    c.eval
        .mul_plain_add_assign_ext(&mut acc, &r[1], &pt)
        .unwrap();
    let r2 = c.eval.rotate_ext(&acc, 1).unwrap();
    c.eval.add_assign_ext(&mut acc, &r2).unwrap();
    let _ = c.eval.mod_down_ext(acc).unwrap();
    let _ = c.eval.rotate(&ct, 1).unwrap();
    assert_eq!(
        c.eval.counters(),
        OpCounts {
            add: 2,
            mul_plain: 2,
            rotate: 5,
            key_switch: 5,
            decompose: 3,
            mod_down: 1 + 2 + 2,
            ..OpCounts::default()
        }
    );
}

#[test]
fn lazy_operands_are_checked() {
    let mut c = ctx();
    let x = c.random(-1.0, 1.0);
    let ct = c.encrypt(&x);
    let pt = c.enc.encode(&x, 4, ct.scale()).unwrap();
    let pt_ext = c.enc.encode_ext(&x, 4, ct.scale()).unwrap();
    assert!(pt_ext.is_extended() && !pt.is_extended());
    let r = c.eval.rotate_hoisted_ext(&ct, &[1]).unwrap();
    assert!(matches!(
        c.eval.mul_plain_ext(&r[0], &pt),
        Err(CkksError::ParamsMismatch { .. })
    ));
    assert!(matches!(
        c.eval.mul_plain(&ct, &pt_ext),
        Err(CkksError::ParamsMismatch { .. })
    ));
    assert!(pt_ext.to_bytes(&c.params).is_err());
    assert!(matches!(
        c.eval.rotate_hoisted_ext(&ct, &[0]),
        Err(CkksError::InvalidCount { .. })
    ));
    assert!(matches!(
        c.eval.rotate_hoisted_ext(&ct, &[4]),
        Err(CkksError::MissingGaloisKey { step: 4, .. })
    ));
    let low = c.eval.drop_to_level(&ct, 2).unwrap();
    let r_low = c.eval.rotate_hoisted_ext(&low, &[1]).unwrap();
    let low_pt = c.enc.encode_ext(&x, 1, ct.scale()).unwrap();
    assert!(matches!(
        c.eval.mul_plain_ext(&r_low[0], &low_pt),
        Err(CkksError::LevelMismatch { .. })
    ));
    let mut acc = c.eval.mul_plain_ext(&r[0], &pt_ext).unwrap();
    assert!(matches!(
        c.eval.add_assign_ext(&mut acc, &r_low[0]),
        Err(CkksError::LevelMismatch { .. })
    ));
}

#[test]
fn higher_level_extended_plaintext_uses_its_prefix() {
    // The same integer polynomial encoded at level 4 and at the ciphertext's level 2: its
    // first q limbs and its special limbs give the same product, bit for bit.
    let mut c = ctx();
    let x = c.random(-1.0, 1.0);
    let fresh = c.encrypt(&x);
    let ct = c.eval.drop_to_level(&fresh, 2).unwrap();
    let r = c.eval.rotate_hoisted_ext(&ct, &[3]).unwrap();
    let scale = c.params.q_primes()[2] as f64;
    let high = c.enc.encode_ext(&x, 4, scale).unwrap();
    let same = c.enc.encode_ext(&x, 2, scale).unwrap();
    let a = c.eval.mul_plain_ext(&r[0], &high).unwrap();
    let b = c.eval.mul_plain_ext(&r[0], &same).unwrap();
    assert!(a.a0 == b.a0 && a.a1 == b.a1);
}
