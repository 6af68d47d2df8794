//! Differential tests of the single-image layout against the plaintext model: the committed
//! models on real MNIST test images at the 128-bit preset the layout chooses (N = 2^14: the
//! 845 and 2,704 features need 8,192 slots), with only the planned Galois keys; operation
//! counts planned = measured; sanitized logits; refusals.

use super::{LolaCnn, LOLA_DEPTH};
use crate::error::HeCnnError;
use crate::layout::CnnLayout;
use crate::plan::choose_preset;
use crate::sanitize::FloodConfig;
use crate::tests::{committed, keys_with_rotations, Keys};
use ckks::{presets, Evaluator, KeyGenerator};
use ml::models::cnn::{CnnModel, CnnSpec};

/// Largest |logit| error accepted between the encrypted and the plaintext forward pass
/// (measured below 1e-4 on these images; the batch layout's tolerance).
const LOGIT_TOLERANCE: f64 = 1e-3;

fn differential(name: &str, images: usize) {
    let model = committed(name);
    let params = choose_preset("lola", LOLA_DEPTH).unwrap().build().unwrap();
    assert_eq!(params.name(), "N14_L7_S40_128BIT");
    let he = LolaCnn::new(&model, &params).unwrap();
    let Keys { sk, pk, eval } = keys_with_rotations(&params, &he.rotation_steps());
    let m = datasets::mnist::load_bundled(datasets::mnist::Split::Test)
        .unwrap()
        .head(images);
    let x = m.images_f64();
    let plain = model.logits(x.view()).unwrap();
    let pk0 = pk.at_level(he.output_level()).unwrap();
    let cfg = FloodConfig::default();
    let sd = he
        .logit_flood(&cfg)
        .slot_error_sd(params.n(), params.default_scale());
    for (i, row) in x.outer_iter().enumerate() {
        let ct = he.encrypt_image(&pk, row.as_slice().unwrap()).unwrap();
        eval.reset_counters();
        let out = he.forward(&eval, &ct).unwrap();
        assert_eq!(eval.counters(), he.planned_op_counts(), "image {i}");
        let got = he.decrypt_logits(&sk, &out).unwrap();
        let want = plain.row(i);
        let err = got
            .iter()
            .zip(want)
            .fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
        assert!(
            err < LOGIT_TOLERANCE,
            "{name} image {i}: max |Δlogit| {err}"
        );
        let argmax = |v: &[f64]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
        assert_eq!(argmax(&got), argmax(want.as_slice().unwrap()), "image {i}");
        let clean = he.sanitize_logits(&eval, &out, &pk0, &cfg).unwrap();
        let after = he.decrypt_logits(&sk, &clean).unwrap();
        let err = after
            .iter()
            .zip(want)
            .fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
        assert!(err < LOGIT_TOLERANCE + 6.0 * sd, "flooded {err}, sd {sd}");
        assert_ne!(after, got, "the flood changed the noise");
    }
}

#[test]
fn cryptonets_single_image_logits_match_the_plaintext_model() {
    differential("mnist-cryptonets", 6);
}

#[test]
fn wide_single_image_logits_match_the_plaintext_model() {
    differential("mnist-wide", 2);
}

#[test]
fn every_returned_slot_is_a_logit_or_zero() {
    // The second dense layer's output repeats with period 16: nothing but logits leaves.
    let model = committed("mnist-cryptonets");
    let params = presets::N14_L7_S40_128BIT.build().unwrap();
    let he = LolaCnn::new(&model, &params).unwrap();
    let [(r1, k1, _), (r2, k2, _)] = he.dense_shapes();
    assert_eq!((r1, k1, r2, k2), (128, 14, 16, 16));
    let Keys { sk, pk, eval } = keys_with_rotations(&params, &he.rotation_steps());
    let image = vec![0.5; 784];
    let out = he
        .forward(&eval, &he.encrypt_image(&pk, &image).unwrap())
        .unwrap();
    let slots = ckks::Encoder::new(&params).decode(&sk.decrypt(&out.ct).unwrap());
    for (s, v) in slots.iter().enumerate() {
        let want = if s % 16 < 10 { slots[s % 16] } else { 0.0 };
        assert!((v - want).abs() < 1e-3, "slot {s}: {v} vs {want}");
    }
}

#[test]
fn shallow_or_narrow_parameters_and_bad_images_are_refused() {
    let model = CnnModel::init(CnnSpec::cryptonets(), 1).unwrap();
    let shallow = presets::INSECURE_N10_L4_S40_TEST_ONLY.build().unwrap();
    assert!(matches!(
        LolaCnn::new(&model, &shallow),
        Err(HeCnnError::DepthExceeded {
            needed: 5,
            available: 4,
            ..
        })
    ));
    // The wide network's 2,704 features do not fit 1,024 slots.
    let wide = CnnModel::init(CnnSpec::wide(), 1).unwrap();
    let narrow = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
    let err = LolaCnn::new(&wide, &narrow).unwrap_err().to_string();
    assert!(
        err.contains("fc1") && err.contains("2704") && err.contains("1024"),
        "{err}"
    );
    let params = presets::N14_L7_S40_128BIT.build().unwrap();
    let he = LolaCnn::new(&model, &params).unwrap();
    let mut kg = KeyGenerator::new(&params);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let mut bad = vec![0.0; 784];
    bad[17] = 255.0;
    let err = he.encrypt_image(&pk, &bad).unwrap_err().to_string();
    assert!(err.contains("pixel 17") && err.contains("255"), "{err}");
    assert!(matches!(
        he.encrypt_image(&pk, &[0.0; 783]),
        Err(HeCnnError::Shape {
            expected: 784,
            found: 783,
            ..
        })
    ));
    // A forward pass without the Galois keys is refused by the evaluator.
    let eval = Evaluator::new(&params).with_relin_key(kg.relin_key(&sk).unwrap());
    let ct = he.encrypt_image(&pk, &[0.0; 784]).unwrap();
    assert!(he.forward(&eval, &ct).is_err());
}

#[test]
fn secret_key_encryption_halves_the_upload_and_gives_the_same_logits() {
    let model = committed("mnist-cryptonets");
    let params = presets::N14_L7_S40_128BIT.build().unwrap();
    let he = LolaCnn::new(&model, &params).unwrap();
    let Keys { sk, pk, eval } = keys_with_rotations(&params, &he.rotation_steps());
    let x = datasets::mnist::load_bundled(datasets::mnist::Split::Test)
        .unwrap()
        .head(1)
        .images_f64();
    let image = x.row(0).to_vec();
    let by_pk = he.encrypt_image(&pk, &image).unwrap();
    let by_sk = he.encrypt_image_symmetric(&sk, &image).unwrap();
    let bytes = |ct: &ckks::Ciphertext| ct.to_bytes(&params).unwrap().len() as f64;
    let ratio = bytes(&by_sk.taps[0]) / bytes(&by_pk.taps[0]);
    assert!(ratio < 0.55, "seeded / public-key ciphertext size {ratio}");
    let a = he
        .decrypt_logits(&sk, &he.forward(&eval, &by_pk).unwrap())
        .unwrap();
    let b = he
        .decrypt_logits(&sk, &he.forward(&eval, &by_sk).unwrap())
        .unwrap();
    let plain = model.logits(x.view()).unwrap();
    for c in 0..10 {
        assert!((a[c] - plain[[0, c]]).abs() < LOGIT_TOLERANCE);
        assert!((b[c] - plain[[0, c]]).abs() < LOGIT_TOLERANCE);
    }
}

/// A client that knows the architecture only (no weights) encrypts what the compiled model
/// evaluates: its tap ciphertexts decrypt to the model's own unfolding, and a preset too
/// shallow for the layout is refused.
#[test]
fn the_weightless_client_unfolds_as_the_model_does() {
    let model = committed("mnist-cryptonets");
    let params = choose_preset("lola", LOLA_DEPTH).unwrap().build().unwrap();
    let he = LolaCnn::new(&model, &params).unwrap();
    let client = super::LolaClient::new(&model.spec, &params).unwrap();
    assert_eq!(client.input_cts(), model.spec.taps());
    let sk = KeyGenerator::new(&params).secret_key();
    let image: Vec<f64> = (0..model.spec.pixels())
        .map(|i| (i % 7) as f64 / 7.0)
        .collect();
    let a = client.encrypt_image_symmetric(&sk, &image).unwrap();
    let b = he.encrypt_image_symmetric(&sk, &image).unwrap();
    let enc = ckks::Encoder::new(&params);
    for (k, (x, y)) in a.taps.iter().zip(&b.taps).enumerate() {
        assert_eq!(x.level(), y.level());
        let (x, y) = (
            enc.decode(&sk.decrypt(x).unwrap()),
            enc.decode(&sk.decrypt(y).unwrap()),
        );
        let err = x
            .iter()
            .zip(&y)
            .fold(0.0f64, |e, (p, q)| e.max((p - q).abs()));
        assert!(err < 1e-6, "tap {k}: {err}");
    }
    let shallow = presets::ALL_128BIT
        .iter()
        .find(|p| p.levels < LOLA_DEPTH)
        .unwrap()
        .build()
        .unwrap();
    assert!(matches!(
        super::LolaClient::new(&model.spec, &shallow),
        Err(HeCnnError::DepthExceeded { .. })
    ));
}
