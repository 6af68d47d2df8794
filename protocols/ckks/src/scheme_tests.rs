//! End-to-end tests: decrypt(op(enc(x))) against op(x) in f64, with the precision in bits
//! (`-log2(max |error|)` over all slots) asserted against a stated floor.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::encoder::C64;
use crate::error::CkksError;
use crate::params::presets;
use crate::*;

pub(crate) struct Ctx {
    pub params: CkksParams,
    pub enc: Encoder,
    pub sk: SecretKey,
    pub pk: PublicKey,
    pub eval: Evaluator,
    pub rng: ChaCha20Rng,
}

pub(crate) fn setup(preset: Preset, steps: &[i64], conjugate: bool, relin: bool) -> Ctx {
    let params = preset.build().unwrap();
    let mut kg = KeyGenerator::from_seed(&params, [7u8; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let mut eval = Evaluator::new(&params);
    if relin {
        eval = eval.with_relin_key(kg.relin_key(&sk).unwrap());
    }
    if !steps.is_empty() || conjugate {
        eval = eval.with_galois_keys(kg.galois_keys(&sk, steps, conjugate).unwrap());
    }
    Ctx {
        enc: Encoder::new(&params),
        params,
        sk,
        pk,
        eval,
        rng: ChaCha20Rng::seed_from_u64(99),
    }
}

impl Ctx {
    pub fn random(&mut self, lo: f64, hi: f64) -> Vec<f64> {
        (0..self.params.slots())
            .map(|_| self.rng.gen_range(lo..hi))
            .collect()
    }
    pub fn encrypt(&mut self, x: &[f64]) -> Ciphertext {
        let pt = self
            .enc
            .encode(x, self.params.max_level(), self.params.default_scale())
            .unwrap();
        self.pk.encrypt_with_rng(&pt, &mut self.rng).unwrap()
    }
    pub fn decrypt(&self, ct: &Ciphertext) -> Vec<f64> {
        self.enc.decode(&self.sk.decrypt(ct).unwrap())
    }
}

/// Precision in bits: `-log2(max_i |a_i - b_i|)`.
pub(crate) fn precision_bits(got: &[f64], want: &[f64]) -> f64 {
    let err = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    -err.log2()
}

fn assert_bits(what: &str, preset: &str, got: &[f64], want: &[f64], floor: f64) -> f64 {
    let bits = precision_bits(got, want);
    println!("precision {preset:<32} {what:<28} {bits:6.1} bits (floor {floor})");
    assert!(
        bits >= floor,
        "{preset} {what}: {bits:.1} bits < floor {floor}"
    );
    bits
}

fn rotate_vec(x: &[f64], step: i64) -> Vec<f64> {
    let n = x.len() as i64;
    (0..n)
        .map(|i| x[(i + step).rem_euclid(n) as usize])
        .collect()
}

/// Rotation computed the textbook way: `(σ(c0), σ(c1))` then key switching of `σ(c1)`.
fn rotate_reference(c: &Ctx, ct: &Ciphertext, step: i64) -> Ciphertext {
    let p = &c.params;
    let g = galois_element_for_step(p, step);
    let key = c.eval.galois_keys().keys.get(&g).unwrap();
    let c1 = ct.c1.automorphism(p, g);
    let (k0, k1) = crate::keyswitch::key_switch(p, &c1, key);
    let mut c0 = ct.c0.automorphism(p, g);
    c0.add_assign(p, &k0);
    Ciphertext {
        c0,
        c1: k1,
        scale: ct.scale,
        seed: None,
        params_id: ct.params_id,
    }
}

/// The full operation set on one preset. Floors (bits) are stated per operation; measured
/// values are printed (run with `--nocapture`).
fn full_suite(preset: Preset, k: i64, squarings: usize, floor: f64) {
    let name = preset.name;
    let steps = [1, -1, k, -k];
    let mut c = setup(preset, &steps, true, true);
    let x = c.random(-1.0, 1.0);
    let y = c.random(-1.0, 1.0);
    let cx = c.encrypt(&x);
    let cy = c.encrypt(&y);
    let l = c.params.max_level();

    // Fresh encryption.
    assert_bits("encrypt/decrypt (pk)", name, &c.decrypt(&cx), &x, floor);
    let pt = c.enc.encode(&x, l, c.params.default_scale()).unwrap();
    let sym = c.sk.encrypt_symmetric_with_rng(&pt, &mut c.rng).unwrap();
    assert!(sym.is_seeded());
    assert_bits("encrypt/decrypt (sk)", name, &c.decrypt(&sym), &x, floor);

    // Additions.
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a + b).collect();
    assert_bits(
        "add",
        name,
        &c.decrypt(&c.eval.add(&cx, &cy).unwrap()),
        &want,
        floor,
    );
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
    assert_bits(
        "sub",
        name,
        &c.decrypt(&c.eval.sub(&cx, &cy).unwrap()),
        &want,
        floor,
    );
    let want: Vec<f64> = x.iter().map(|a| -a).collect();
    assert_bits(
        "neg",
        name,
        &c.decrypt(&c.eval.neg(&cx).unwrap()),
        &want,
        floor,
    );
    let py = c.enc.encode(&y, l, cx.scale()).unwrap();
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a + b).collect();
    assert_bits(
        "add_plain",
        name,
        &c.decrypt(&c.eval.add_plain(&cx, &py).unwrap()),
        &want,
        floor,
    );
    let want: Vec<f64> = x.iter().map(|a| a + 0.75).collect();
    assert_bits(
        "add_const",
        name,
        &c.decrypt(&c.eval.add_const(&cx, 0.75).unwrap()),
        &want,
        floor,
    );

    // Plaintext product + rescale.
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
    let m = c
        .eval
        .rescale(&c.eval.mul_plain(&cx, &py).unwrap())
        .unwrap();
    assert_eq!(m.level(), l - 1);
    assert_bits("pt x ct + rescale", name, &c.decrypt(&m), &want, floor);

    // Constant product: scale restored exactly after the rescale.
    let m = c
        .eval
        .rescale(&c.eval.mul_const(&cx, -1.25).unwrap())
        .unwrap();
    assert_eq!(m.scale(), cx.scale());
    let want: Vec<f64> = x.iter().map(|a| a * -1.25).collect();
    assert_bits("mul_const + rescale", name, &c.decrypt(&m), &want, floor);
    let want: Vec<f64> = x.iter().map(|a| a * 3.0).collect();
    assert_bits(
        "mul_int",
        name,
        &c.decrypt(&c.eval.mul_int(&cx, 3).unwrap()),
        &want,
        floor - 1.5,
    );

    // Ciphertext product + relinearization + rescale.
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
    let m = c.eval.rescale(&c.eval.mul(&cx, &cy).unwrap()).unwrap();
    assert_bits(
        "ct x ct + relin + rescale",
        name,
        &c.decrypt(&m),
        &want,
        floor,
    );

    // Rotations and conjugation.
    for s in steps {
        let r = c.eval.rotate(&cx, s).unwrap();
        assert_bits(
            &format!("rotate {s}"),
            name,
            &c.decrypt(&r),
            &rotate_vec(&x, s),
            floor,
        );
    }
    let z: Vec<C64> = x.iter().zip(&y).map(|(&a, &b)| C64::new(a, b)).collect();
    let cz =
        c.pk.encrypt_with_rng(
            &c.enc
                .encode_complex(&z, l, c.params.default_scale())
                .unwrap(),
            &mut c.rng,
        )
        .unwrap();
    let conj = c
        .enc
        .decode_complex(&c.sk.decrypt(&c.eval.conjugate(&cz).unwrap()).unwrap());
    let (re, im): (Vec<f64>, Vec<f64>) = conj.iter().map(|v| (v.re, v.im)).unzip();
    let neg_y: Vec<f64> = y.iter().map(|b| -b).collect();
    assert_bits("conjugate (real part)", name, &re, &x, floor);
    assert_bits("conjugate (imag part)", name, &im, &neg_y, floor);

    // Hoisted rotations agree with plain rotations and with an unhoisted reference that
    // applies σ to c1 before decomposing it.
    let hoisted = c.eval.rotate_hoisted(&cx, &steps).unwrap();
    for (h, &s) in hoisted.iter().zip(&steps) {
        let plain = c.eval.rotate(&cx, s).unwrap();
        assert!(
            plain.c0 == h.c0 && plain.c1 == h.c1,
            "hoisted and plain rotation differ"
        );
        let reference = c.decrypt(&rotate_reference(&c, &cx, s));
        assert_bits(
            &format!("hoisted vs reference {s}"),
            name,
            &c.decrypt(h),
            &reference,
            floor,
        );
    }

    // Depth chain of squarings (inputs near 1 keep x^(2^d) in range).
    let v = c.random(0.98, 1.02);
    let mut ct = c.encrypt(&v);
    let mut want = v.clone();
    for _ in 0..squarings {
        ct = c.eval.rescale(&c.eval.square(&ct).unwrap()).unwrap();
        want.iter_mut().for_each(|w| *w *= *w);
    }
    assert_eq!(ct.level(), l - squarings);
    // Each squaring doubles the relative error; the values grow to about 1.02^(2^d).
    let chain_floor = floor - squarings as f64 - 4.0;
    assert_bits(
        &format!("{squarings} squarings"),
        name,
        &c.decrypt(&ct),
        &want,
        chain_floor,
    );
}

#[test]
fn insecure_n10_full_suite() {
    full_suite(presets::INSECURE_N10_L4_S40_TEST_ONLY, 5, 4, 23.0);
}

#[test]
fn insecure_n11_full_suite_dnum_max() {
    full_suite(presets::INSECURE_N11_L6_S40_TEST_ONLY, 37, 6, 22.0);
}

#[test]
fn n12_full_suite() {
    // Scale 2^30 at N = 2^12: fresh public-key noise leaves about 14 bits.
    full_suite(presets::N12_L1_S30_128BIT, 100, 1, 12.0);
}

#[test]
fn n13_full_suite() {
    full_suite(presets::N13_L3_S40_128BIT, 64, 3, 20.0);
}

#[test]
fn n14_full_suite() {
    full_suite(presets::N14_L7_S40_128BIT, 300, 7, 19.5);
}

#[test]
fn n15_mul_relin_rotate() {
    let mut c = setup(presets::N15_L17_S40_128BIT, &[3], false, true);
    let name = "N15_L17_S40_128BIT";
    let x = c.random(-1.0, 1.0);
    let y = c.random(-1.0, 1.0);
    let (cx, cy) = (c.encrypt(&x), c.encrypt(&y));
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
    let m = c.eval.rescale(&c.eval.mul(&cx, &cy).unwrap()).unwrap();
    assert_bits(
        "ct x ct + relin + rescale",
        name,
        &c.decrypt(&m),
        &want,
        18.0,
    );
    let r = c.eval.rotate(&m, 3).unwrap();
    assert_bits(
        "rotate 3 after mul",
        name,
        &c.decrypt(&r),
        &rotate_vec(&want, 3),
        18.0,
    );
}

#[test]
fn n16_encrypt_mul_plain_rescale() {
    // No evaluation keys: N = 2^16 keys are large; this checks the chain, encoder and rescale.
    let mut c = setup(presets::N16_L37_S40_128BIT, &[], false, false);
    let name = "N16_L37_S40_128BIT";
    let x = c.random(-1.0, 1.0);
    let y = c.random(-1.0, 1.0);
    let cx = c.encrypt(&x);
    assert_bits("encrypt/decrypt (pk)", name, &c.decrypt(&cx), &x, 18.0);
    let py = c.enc.encode(&y, c.params.max_level(), cx.scale()).unwrap();
    let m = c
        .eval
        .rescale(&c.eval.mul_plain(&cx, &py).unwrap())
        .unwrap();
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
    assert_bits("pt x ct + rescale", name, &c.decrypt(&m), &want, 18.0);
}

#[test]
fn mismatched_operands_are_refused() {
    let mut c = setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &[1], false, true);
    let x = c.random(-1.0, 1.0);
    let a = c.encrypt(&x);
    let b = c.eval.drop_level(&a).unwrap();
    assert!(matches!(
        c.eval.add(&a, &b),
        Err(CkksError::LevelMismatch { left: 4, right: 3 })
    ));
    let pt = c.enc.encode(&x, 4, 2f64.powi(30)).unwrap();
    let d = c.pk.encrypt(&pt).unwrap();
    assert!(matches!(
        c.eval.add(&a, &d),
        Err(CkksError::ScaleMismatch { .. })
    ));
    assert!(matches!(
        c.eval.mul(&a, &b),
        Err(CkksError::LevelMismatch { .. })
    ));
    assert!(matches!(
        c.eval.rotate(&a, 2),
        Err(CkksError::MissingGaloisKey { step: 2, .. })
    ));
    assert!(matches!(
        c.eval.conjugate(&a),
        Err(CkksError::MissingGaloisKey { .. })
    ));
    let low = c.eval.drop_to_level(&a, 0).unwrap();
    assert!(matches!(
        c.eval.rescale(&low),
        Err(CkksError::LevelExhausted { .. })
    ));
    let no_keys = Evaluator::new(&c.params);
    assert!(matches!(
        no_keys.mul(&a, &a),
        Err(CkksError::MissingRelinKey)
    ));
    // A ciphertext made under another chain with the same N is refused, not misread.
    let mut other = setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &[], false, false);
    other.params = crate::CkksParams::builder()
        .log_n(crate::LogN(10))
        .levels(crate::Levels(4))
        .scale_bits(crate::ScaleBits(36))
        .insecure_skip_security_check()
        .build()
        .unwrap();
    let foreign = KeyGenerator::new(&other.params).secret_key();
    let fpt = Encoder::new(&other.params)
        .encode(&x, 4, 2f64.powi(36))
        .unwrap();
    let fct = foreign.encrypt_symmetric(&fpt).unwrap();
    assert!(matches!(
        c.eval.add(&a, &fct),
        Err(CkksError::ForeignObject { .. })
    ));
    assert!(matches!(
        c.sk.decrypt(&fct),
        Err(CkksError::ForeignObject { .. })
    ));
    assert!(matches!(
        c.eval.mul_plain(&a, &fpt),
        Err(CkksError::ForeignObject { .. })
    ));
    assert!(matches!(
        c.pk.encrypt(&fpt),
        Err(CkksError::ForeignObject { .. })
    ));
    // Dropping levels keeps the message.
    assert!(precision_bits(&c.decrypt(&low), &x) > 19.0);
    // Rotation by a multiple of the slot count is the identity and needs no key.
    let r = c.eval.rotate(&a, c.params.slots() as i64).unwrap();
    assert!(precision_bits(&c.decrypt(&r), &x) > 19.0);
}

#[test]
fn counters_count_every_call_and_reset() {
    let mut c = setup(
        presets::INSECURE_N10_L4_S40_TEST_ONLY,
        &[1, 2, 3],
        true,
        true,
    );
    let x = c.random(-1.0, 1.0);
    let a = c.encrypt(&x);
    let pt = c.enc.encode(&x, 4, a.scale()).unwrap();
    let s = c.eval.add(&a, &a).unwrap();
    let _ = c.eval.sub(&s, &a).unwrap();
    let p = c.eval.mul_plain(&a, &pt).unwrap();
    let _ = c.eval.rescale(&p).unwrap();
    let m = c.eval.mul(&a, &a).unwrap();
    let _ = c.eval.rotate(&m, 1).unwrap();
    let _ = c.eval.rotate_hoisted(&a, &[1, 2, 3]).unwrap();
    let _ = c.eval.conjugate(&a).unwrap();
    let _ = c.eval.mul_const(&a, 0.5).unwrap();
    let _ = c.eval.drop_level(&a).unwrap();
    let n = c.eval.counters();
    assert_eq!(
        n,
        OpCounts {
            add: 2,
            mul_plain: 1,
            mul_const: 1,
            mul: 1,
            relinearize: 1,
            rotate: 5,
            key_switch: 6,
            decompose: 4,
            rescale: 1,
            drop_level: 1,
            mod_down: 12,
        }
    );
    c.eval.reset_counters();
    assert_eq!(c.eval.counters(), OpCounts::default());
}

#[test]
fn shared_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Evaluator>();
    check::<CkksParams>();
    check::<Ciphertext>();
    check::<Encoder>();
    check::<SecretKey>();
    check::<PublicKey>();
}

#[test]
fn galois_keys_only_for_requested_steps() {
    let c = setup(
        presets::INSECURE_N10_L4_S40_TEST_ONLY,
        &[1, -1, 1, 0, 512],
        false,
        false,
    );
    // 1 and 513 ≡ 1 (mod 512 slots) share a key; 0 and 512 need none; -1 is its own key.
    let g: Vec<u64> = c.eval.galois_keys().elements().collect();
    assert_eq!(g.len(), 2);
    assert!(c
        .eval
        .galois_keys()
        .contains(galois_element_for_step(&c.params, 1)));
    assert!(c
        .eval
        .galois_keys()
        .contains(galois_element_for_step(&c.params, -1)));
}

#[test]
fn parallel_key_generation_is_reproducible_and_digits_independent() {
    let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
    let make = || {
        let mut kg = KeyGenerator::from_seed(&params, [7; 32]);
        let sk = kg.secret_key();
        kg.galois_keys(&sk, &[1, 2, 3, -1, 5], true).unwrap()
    };
    let (a, b) = (make(), make());
    assert_eq!(
        a.to_bytes(&params).unwrap(),
        b.to_bytes(&params).unwrap(),
        "same seed, same keys, whatever the thread schedule"
    );
    let key = a.keys.values().next().unwrap();
    assert!(key.digits() >= 2);
    assert_ne!(
        key.a[0].limb(0),
        key.a[1].limb(0),
        "each digit's a_j has its own stream"
    );
    let keys: Vec<_> = a.keys.values().collect();
    assert_ne!(keys[0].seed, keys[1].seed, "each key has its own seed");
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn ctx() -> &'static std::sync::Mutex<Ctx> {
        static CTX: OnceLock<std::sync::Mutex<Ctx>> = OnceLock::new();
        CTX.get_or_init(|| {
            std::sync::Mutex::new(setup(
                presets::INSECURE_N10_L4_S40_TEST_ONLY,
                &[1, 2, 4, 8, 16, 32, 64, 128, 256],
                false,
                true,
            ))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn rotation_composes(a in 0i64..512, b in 0i64..512) {
            // Rotate by a via its binary expansion, then by b; compare with rotation by a+b.
            let mut c = ctx().lock().unwrap();
            let x = c.random(-1.0, 1.0);
            let mut ct = c.encrypt(&x);
            for s in [a, b] {
                for bit in 0..9 {
                    if s >> bit & 1 == 1 {
                        ct = c.eval.rotate(&ct, 1 << bit).unwrap();
                    }
                }
            }
            let bits = precision_bits(&c.decrypt(&ct), &rotate_vec(&x, a + b));
            prop_assert!(bits > 17.0, "{bits}");
        }

        #[test]
        fn homomorphic_add_mul_distribute(seed in any::<u64>()) {
            // x·(y + z) vs x·y + x·z, both decrypted, compared in f64.
            let mut c = ctx().lock().unwrap();
            c.rng = ChaCha20Rng::seed_from_u64(seed);
            let (x, y, z) = (c.random(-1.0, 1.0), c.random(-1.0, 1.0), c.random(-1.0, 1.0));
            let (cx, cy, cz) = (c.encrypt(&x), c.encrypt(&y), c.encrypt(&z));
            let lhs = c.eval.rescale(&c.eval.mul(&cx, &c.eval.add(&cy, &cz).unwrap()).unwrap()).unwrap();
            let xy = c.eval.mul(&cx, &cy).unwrap();
            let xz = c.eval.mul(&cx, &cz).unwrap();
            let rhs = c.eval.rescale(&c.eval.add(&xy, &xz).unwrap()).unwrap();
            let want: Vec<f64> = (0..x.len()).map(|i| x[i] * (y[i] + z[i])).collect();
            prop_assert!(precision_bits(&c.decrypt(&lhs), &want) > 18.0);
            prop_assert!(precision_bits(&c.decrypt(&rhs), &want) > 18.0);
        }
    }
}

fn same_ct(u: &Ciphertext, v: &Ciphertext) -> bool {
    u.c0 == v.c0 && u.c1 == v.c1 && u.scale == v.scale && u.params_id == v.params_id
}

#[test]
fn in_place_operations_equal_out_of_place() {
    let mut c = setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &[1], false, true);
    let x = c.random(-1.0, 1.0);
    let y = c.random(-1.0, 1.0);
    let a = c.encrypt(&x);
    let b = c.encrypt(&y);
    let l = c.params.max_level();
    let pt = c.enc.encode(&y, l, c.params.default_scale()).unwrap();

    let mut t = a.clone();
    c.eval.add_assign(&mut t, &b).unwrap();
    assert!(same_ct(&t, &c.eval.add(&a, &b).unwrap()), "add_assign");

    let mut t = a.clone();
    c.eval.sub_assign(&mut t, &b).unwrap();
    assert!(same_ct(&t, &c.eval.sub(&a, &b).unwrap()), "sub_assign");

    let mut t = a.clone();
    c.eval.mul_plain_assign(&mut t, &pt).unwrap();
    let prod = c.eval.mul_plain(&a, &pt).unwrap();
    assert!(same_ct(&t, &prod), "mul_plain_assign");
    // A plaintext at a higher level than the ciphertext (its prefix is used).
    let low = c.eval.drop_level(&a).unwrap();
    let mut t = low.clone();
    c.eval.mul_plain_assign(&mut t, &pt).unwrap();
    assert!(
        same_ct(&t, &c.eval.mul_plain(&low, &pt).unwrap()),
        "mul_plain_assign below the plaintext's level"
    );

    let mut t = prod.clone();
    c.eval.rescale_assign(&mut t).unwrap();
    let r = c.eval.rescale(&prod).unwrap();
    assert!(same_ct(&t, &r), "rescale_assign");
    let want: Vec<f64> = x.iter().zip(&y).map(|(u, v)| u * v).collect();
    assert_bits(
        "mul_plain_assign+rescale_assign",
        "N10",
        &c.decrypt(&t),
        &want,
        20.0,
    );

    // Squaring (same operand twice) takes the one-product shortcut; it must equal the general
    // product of two distinct (equal) ciphertexts.
    let a2 = a.clone();
    let sq = c.eval.mul(&a, &a).unwrap();
    assert!(
        same_ct(&sq, &c.eval.mul(&a, &a2).unwrap()),
        "square shortcut"
    );
    let want: Vec<f64> = x.iter().map(|u| u * u).collect();
    let got = c.decrypt(&c.eval.rescale(&sq).unwrap());
    assert_bits("square shortcut", "N10", &got, &want, 20.0);

    // The fused multiply-accumulate equals the product then the sum, to the bit; it refuses an
    // accumulator at another scale (`a` is at Δ, not at the product scale).
    let mut t = c.eval.mul_const(&a, 0.75).unwrap();
    c.eval.mul_const_add_assign(&mut t, &b, -1.5).unwrap();
    let mut want_ct = c.eval.mul_const(&a, 0.75).unwrap();
    c.eval
        .add_assign(&mut want_ct, &c.eval.mul_const(&b, -1.5).unwrap())
        .unwrap();
    assert!(same_ct(&t, &want_ct), "mul_const_add_assign");
    let mut t = a.clone();
    assert!(c.eval.mul_const_add_assign(&mut t, &b, 2.0).is_err());

    // The fused plaintext multiply-accumulate likewise, also with the plaintext above the
    // ciphertexts' level; it refuses an accumulator at another scale or level.
    let mut t = c.eval.mul_plain(&a, &pt).unwrap();
    c.eval.mul_plain_add_assign(&mut t, &b, &pt).unwrap();
    let mut want_ct = c.eval.mul_plain(&a, &pt).unwrap();
    c.eval
        .add_assign(&mut want_ct, &c.eval.mul_plain(&b, &pt).unwrap())
        .unwrap();
    assert!(same_ct(&t, &want_ct), "mul_plain_add_assign");
    let low_b = c.eval.drop_level(&b).unwrap();
    let mut t = c.eval.mul_plain(&low, &pt).unwrap();
    c.eval.mul_plain_add_assign(&mut t, &low_b, &pt).unwrap();
    let mut want_ct = c.eval.mul_plain(&low, &pt).unwrap();
    c.eval
        .add_assign(&mut want_ct, &c.eval.mul_plain(&low_b, &pt).unwrap())
        .unwrap();
    assert!(
        same_ct(&t, &want_ct),
        "mul_plain_add_assign below the plaintext's level"
    );
    let mut t = a.clone();
    assert!(c.eval.mul_plain_add_assign(&mut t, &b, &pt).is_err());
    let mut t = c.eval.mul_plain(&a, &pt).unwrap();
    assert!(matches!(
        c.eval.mul_plain_add_assign(&mut t, &low_b, &pt),
        Err(CkksError::LevelMismatch { .. })
    ));

    // Error paths are unchanged by the in-place forms.
    let mut t = a.clone();
    assert!(matches!(
        c.eval.add_assign(&mut t, &low),
        Err(CkksError::LevelMismatch { .. })
    ));
    let mut z = c.eval.drop_to_level(&a, 0).unwrap();
    assert!(matches!(
        c.eval.rescale_assign(&mut z),
        Err(CkksError::LevelExhausted { .. })
    ));
}

#[test]
fn recycled_buffers_never_leak_into_results() {
    // Results are written into recycled (dirty) buffers: fill the pool with buffers of every
    // size the operations use, holding an invalid residue, and check that every operation
    // still gives bit-for-bit the same result as before.
    let mut c = setup(presets::INSECURE_N10_L4_S40_TEST_ONLY, &[1, 3], true, true);
    let x = c.random(-1.0, 1.0);
    let a = c.encrypt(&x);
    let y = c.random(-1.0, 1.0);
    let b = c.encrypt(&y);
    let pt = c
        .enc
        .encode(&x, c.params.max_level(), c.params.default_scale())
        .unwrap();
    let n = c.params.n();
    let limbs = c.params.max_level() + 1 + c.params.p_primes().len();
    let run = |c: &Ctx| {
        let m = c.eval.mul(&a, &b).unwrap();
        let mut v = vec![
            c.eval.add(&a, &b).unwrap(),
            c.eval.sub(&a, &b).unwrap(),
            c.eval.mul_plain(&a, &pt).unwrap(),
            c.eval.rescale(&m).unwrap(),
            c.eval.rotate(&a, 1).unwrap(),
            c.eval.conjugate(&a).unwrap(),
            c.eval.square(&a).unwrap(),
            m,
        ];
        v.extend(c.eval.rotate_hoisted(&a, &[1, 3]).unwrap());
        v
    };
    let before = run(&c);
    for _ in 0..2 {
        for t in 1..=limbs {
            crate::pool::give(vec![u64::MAX; t * n]);
        }
        crate::pool::give(vec![u64::MAX; n]);
    }
    let after = run(&c);
    for (i, (u, v)) in before.iter().zip(&after).enumerate() {
        assert!(
            same_ct(u, v),
            "operation {i} changed with dirty pooled buffers"
        );
    }
    crate::pool::trim_buffer_pool();
    let trimmed = run(&c);
    assert!(before.iter().zip(&trimmed).all(|(u, v)| same_ct(u, v)));
}

/// A polynomial with uniform residues over the first `q_len` primes and `p_len` special primes.
fn random_poly(
    params: &CkksParams,
    seed: u64,
    q_len: usize,
    p_len: usize,
) -> poly::RnsPoly<poly::Coeff> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut p = poly::RnsPoly::<poly::Coeff>::zero(params, q_len, p_len);
    for t in 0..p.limbs() {
        let m = params.inner.basis.moduli()[p.modulus_index(params, t)];
        for x in p.limb_mut(t) {
            *x = rng.gen_range(0..m.value());
        }
    }
    p
}

#[test]
fn ntt_order_holds_for_all_preset_primes() {
    // The NTT-domain automorphism relies on tfhe-ntt's output order; check it for every
    // prime of two real presets by comparing with the coefficient-domain automorphism.
    for preset in [presets::N12_L1_S30_128BIT, presets::N14_L7_S40_128BIT] {
        let params = preset.build().unwrap();
        let a = random_poly(&params, 7, params.max_level() + 1, params.p_primes().len());
        for g in [5u64, 25, 2 * params.n() as u64 - 1] {
            let via_coeff = a.automorphism(&params, g).into_ntt(&params);
            let via_ntt = a.clone().into_ntt(&params).automorphism(&params, g);
            assert!(via_coeff == via_ntt, "{} g={g}", preset.name);
        }
    }
}
