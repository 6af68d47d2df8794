//! Keys restricted to a level (`GaloisKeys::restrict_to_level`, `RelinKey::restrict_to_level`):
//! every key switch at or below that level gives bit-for-bit the whole key's result, a switch
//! above it is refused, and a restricted key serializes and loads as itself.

use crate::error::CkksError;
use crate::params::presets;
use crate::scheme_tests::setup;
use crate::*;

fn same(u: &Ciphertext, v: &Ciphertext) -> bool {
    u.c0 == v.c0 && u.c1 == v.c1 && u.scale == v.scale
}

/// Rotations (single, hoisted, hoisted over `Q·P` and a giant step there) and a
/// relinearization of `ct`'s square (where its scale fits) under `eval`.
fn switches(eval: &Evaluator, ct: &Ciphertext) -> Result<Vec<Ciphertext>> {
    let mut out = vec![eval.rotate(ct, 1)?];
    out.extend(eval.rotate_hoisted(ct, &[1, 5])?);
    for x in eval.rotate_hoisted_ext(ct, &[1, 5])? {
        out.push(eval.mod_down_ext(eval.rotate_ext(&x, 5)?)?);
    }
    // The square's scale fits `Q_l` only at the upper levels (keys play no part in that).
    if let Ok(sq) = eval.mul_no_relin(ct, ct) {
        out.push(eval.relinearize(&sq)?);
    }
    Ok(out)
}

#[test]
fn restricted_keys_switch_bit_for_bit_up_to_their_level() {
    // α = 2 with a short last digit (N10: 5 primes, dnum 3) and α = 1 (N11: dnum 7).
    for preset in [
        presets::INSECURE_N10_L4_S40_TEST_ONLY,
        presets::INSECURE_N11_L6_S40_TEST_ONLY,
    ] {
        let params = preset.build().unwrap();
        let mut kg = KeyGenerator::from_seed(&params, [3u8; 32]);
        let sk = kg.secret_key();
        let rk = kg.relin_key(&sk).unwrap();
        let gk = kg.galois_keys(&sk, &[1, 5], false).unwrap();
        let whole = Evaluator::new(&params)
            .with_relin_key(rk.clone())
            .with_galois_keys(gk.clone());
        let mut c = setup(preset, &[], false, false);
        let x = c.random(-1.0, 1.0);
        let pt = c
            .enc
            .encode(&x, params.max_level(), params.default_scale())
            .unwrap();
        let top = kg.public_key(&sk).unwrap().encrypt(&pt).unwrap();
        for level in 0..=params.max_level() {
            let restricted = Evaluator::new(&params)
                .with_relin_key(rk.restrict_to_level(&params, level).unwrap())
                .with_galois_keys(gk.restrict_to_level(&params, level).unwrap());
            for at in 0..=params.max_level() {
                let ct = whole.drop_to_level(&top, at).unwrap();
                let got = switches(&restricted, &ct);
                if at <= level {
                    let want = switches(&whole, &ct).unwrap();
                    let got = got.unwrap();
                    assert!(
                        got.iter().zip(&want).all(|(a, b)| same(a, b)),
                        "{} key level {level}, ciphertext level {at}",
                        preset.name
                    );
                } else {
                    assert!(
                        matches!(got, Err(CkksError::InvalidLevel { .. })),
                        "{} key level {level} used at {at}",
                        preset.name
                    );
                }
            }
            // A restricted key travels as itself (the loader reads its level off its length)
            // and switches as before at its level; above it, the loaded key refuses too.
            let g = gk.restrict_to_level(&params, level).unwrap();
            let r = rk.restrict_to_level(&params, level).unwrap();
            let (gb, rb) = (g.to_bytes(&params).unwrap(), r.to_bytes(&params).unwrap());
            assert!(level == params.max_level() || gb.len() < gk.to_bytes(&params).unwrap().len());
            let loaded = Evaluator::new(&params)
                .with_relin_key(RelinKey::from_bytes(&rb, &params).unwrap())
                .with_galois_keys(GaloisKeys::from_bytes(&gb, &params).unwrap());
            let ct = whole.drop_to_level(&top, level).unwrap();
            let (got, want) = (
                switches(&loaded, &ct).unwrap(),
                switches(&whole, &ct).unwrap(),
            );
            assert!(
                got.iter().zip(&want).all(|(a, b)| same(a, b)),
                "loaded at {level}"
            );
            if level < params.max_level() {
                let above = whole.drop_to_level(&top, level + 1).unwrap();
                assert!(matches!(
                    switches(&loaded, &above),
                    Err(CkksError::InvalidLevel { .. })
                ));
            }
        }
    }
}

#[test]
fn restricted_keys_are_smaller() {
    let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
    let mut kg = KeyGenerator::from_seed(&params, [4u8; 32]);
    let sk = kg.secret_key();
    let gk = kg.galois_keys(&sk, &[1], false).unwrap();
    let key = gk.keys.values().next().unwrap();
    let r = key.restrict_to_level(&params, 2).unwrap();
    let k = params.p_primes().len();
    let limbs = |k: &KeySwitchKey| k.b.iter().chain(&k.a).map(|p| p.limbs()).sum::<usize>();
    assert_eq!(r.max_level(), 2);
    assert_eq!(r.digits(), 3usize.div_ceil(params.alpha()));
    assert_eq!(limbs(&r), 2 * r.digits() * (3 + k));
    assert_eq!(limbs(key), 2 * params.dnum() * (params.max_level() + 1 + k));
    assert!(matches!(
        key.restrict_to_level(&params, params.max_level() + 1),
        Err(CkksError::InvalidLevel { .. })
    ));
}

#[test]
fn keys_generated_at_a_level_equal_restricted_whole_keys() {
    let params = presets::INSECURE_N10_L4_S40_TEST_ONLY.build().unwrap();
    let level = 2;
    let mut kg = KeyGenerator::from_seed(&params, [5u8; 32]);
    let sk = kg.secret_key();
    let whole = kg.galois_keys(&sk, &[1, 3], true).unwrap();
    let mut kg = KeyGenerator::from_seed(&params, [5u8; 32]);
    let sk = kg.secret_key();
    let cut = kg.galois_keys_at_level(&sk, &[1, 3], true, level).unwrap();
    let want = whole.restrict_to_level(&params, level).unwrap();
    assert_eq!(cut.len(), 3);
    for ((g, a), (h, b)) in cut.keys.iter().zip(&want.keys) {
        assert_eq!(g, h);
        assert!(a.b == b.b && a.a == b.a && a.max_level() == level);
    }
}

/// A key whose digit count does not match its level (read off the polynomials' length) is
/// refused.
#[test]
fn restricted_key_wire_is_checked() {
    let params = presets::INSECURE_N10_L4_S40_TEST_ONLY.build().unwrap();
    let mut kg = KeyGenerator::from_seed(&params, [5u8; 32]);
    let sk = kg.secret_key();
    let gk = kg.galois_keys_at_level(&sk, &[1], false, 1).unwrap();
    let mut key = gk.keys.values().next().unwrap().clone();
    let good = GaloisKeys::from_bytes(&gk.to_bytes(&params).unwrap(), &params).unwrap();
    assert_eq!(good.keys.values().next().unwrap().max_level(), 1);
    // One digit too many for level 1 (α = 2: one digit).
    key.b.push(key.b[0].clone());
    let mut bad = gk.clone();
    bad.keys.insert(*gk.keys.keys().next().unwrap(), key);
    let err = GaloisKeys::from_bytes(&bad.to_bytes(&params).unwrap(), &params).unwrap_err();
    assert!(err.to_string().contains("digits"), "{err}");
}
