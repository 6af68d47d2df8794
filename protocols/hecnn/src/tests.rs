//! Differential tests of the batch layout against the plaintext model (the committed
//! CryptoNets model on real MNIST test images, insecure N = 2^11 parameters for speed), its
//! operation counts, and its refusals.

use crate::batch::BatchCnn;
use crate::error::HeCnnError;
use crate::layout::CnnLayout;
use crate::sanitize::FloodConfig;
use ckks::{presets, Evaluator, KeyGenerator, PublicKey, SecretKey};
use ml::models::cnn::{CnnModel, CnnSpec};
use ndarray::Array2;
use std::path::PathBuf;

/// Largest |logit| error accepted between the encrypted and the plaintext forward pass.
const LOGIT_TOLERANCE: f64 = 1e-3;

pub(crate) fn committed(name: &str) -> CnnModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../experiments/models/cnn");
    let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    let st = std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap();
    CnnModel::from_json_and_safetensors(&json, &st).unwrap()
}

fn mnist_test(n: usize) -> (Array2<f64>, Vec<u8>) {
    let m = datasets::mnist::load_bundled(datasets::mnist::Split::Test)
        .unwrap()
        .head(n);
    (m.images_f64(), m.labels.to_vec())
}

/// A fresh key set and the evaluator a server would hold.
pub(crate) struct Keys {
    pub(crate) sk: SecretKey,
    pub(crate) pk: PublicKey,
    pub(crate) eval: Evaluator,
}

fn keys(params: &ckks::CkksParams) -> Keys {
    keys_with_rotations(params, &[])
}

/// Keys with the relinearization key and, when `steps` is not empty, the Galois keys of
/// `steps` installed in the evaluator.
pub(crate) fn keys_with_rotations(params: &ckks::CkksParams, steps: &[i64]) -> Keys {
    let mut kg = KeyGenerator::new(params);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let mut eval = Evaluator::new(params).with_relin_key(kg.relin_key(&sk).unwrap());
    if !steps.is_empty() {
        eval = eval.with_galois_keys(kg.galois_keys(&sk, steps, false).unwrap());
    }
    Keys { sk, pk, eval }
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

#[test]
fn batch_logits_match_the_plaintext_model_with_planned_op_counts() {
    let model = committed("mnist-cryptonets");
    let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
    let he = BatchCnn::new(&model, &params).unwrap();
    let (x, _) = mnist_test(he.batch_capacity().min(300));
    let k = keys(&params);
    let ct = he.encrypt_batch(&k.pk, x.view()).unwrap();
    k.eval.reset_counters();
    let out = he.forward(&k.eval, &ct).unwrap();
    let counts = k.eval.counters();
    assert_eq!(counts, he.planned_op_counts());
    assert_eq!(counts.rotate, 0, "the batch layout needs no rotations");
    let he_logits = he.decrypt_logits(&k.sk, &out).unwrap();
    let plain = model.logits(x.view()).unwrap();
    let err = max_abs_diff(&he_logits, &plain);
    assert!(
        err < LOGIT_TOLERANCE,
        "max |Δlogit| {err} over {} images",
        x.nrows()
    );
    assert_eq!(
        CnnModel::predictions(he_logits.view()),
        CnnModel::predictions(plain.view())
    );
    // Sanitized logits still decrypt to the same values within the flood's error.
    let pk0 = k.pk.at_level(he.output_level()).unwrap();
    let clean = he
        .sanitize_logits(&k.eval, &out, &pk0, &FloodConfig::default())
        .unwrap();
    let after = he.decrypt_logits(&k.sk, &clean).unwrap();
    let sd = he
        .logit_flood(&FloodConfig::default())
        .slot_error_sd(params.n(), clean.classes[0].scale());
    let err = max_abs_diff(&after, &plain);
    assert!(
        err < LOGIT_TOLERANCE + 6.0 * sd,
        "flooded max |Δlogit| {err}, flood sd {sd}"
    );
    assert_ne!(after, he_logits, "the flood changed the noise");
}

#[test]
fn shallow_parameters_big_batches_and_bad_pixels_are_refused() {
    let model = CnnModel::init(CnnSpec::cryptonets(), 1).unwrap();
    let shallow = presets::INSECURE_N10_L4_S40_TEST_ONLY.build().unwrap();
    assert!(matches!(
        BatchCnn::new(&model, &shallow),
        Err(HeCnnError::DepthExceeded {
            needed: 5,
            available: 4,
            ..
        })
    ));
    let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
    let he = BatchCnn::new(&model, &params).unwrap();
    let k = keys(&params);
    let too_many = Array2::zeros((he.batch_capacity() + 1, 784));
    assert!(matches!(
        he.encrypt_batch(&k.pk, too_many.view()),
        Err(HeCnnError::BatchTooLarge { .. })
    ));
    let mut bad = Array2::zeros((3, 784));
    bad[[2, 17]] = 255.0;
    let err = he.encrypt_batch(&k.pk, bad.view()).unwrap_err().to_string();
    assert!(
        err.contains("image 2 pixel 17") && err.contains("255"),
        "{err}"
    );
}

/// The weightless batch packing equals the model's: pixel ciphertext `i` decrypts to pixel `i`
/// of every image, in image order.
#[test]
fn the_weightless_batch_packing_puts_image_j_in_slot_j() {
    let model = committed("mnist-cryptonets");
    let params = crate::plan::choose_preset("batch", crate::BATCH_DEPTH)
        .unwrap()
        .build()
        .unwrap();
    let sk = KeyGenerator::new(&params).secret_key();
    let x = ndarray::Array2::from_shape_fn((3, model.spec.pixels()), |(j, i)| {
        ((i + 5 * j) % 11) as f64 / 11.0
    });
    let b = crate::batch::encrypt_batch_symmetric(&model.spec, &params, &sk, x.view()).unwrap();
    assert_eq!((b.pixels.len(), b.images), (model.spec.pixels(), 3));
    let enc = ckks::Encoder::new(&params);
    for i in [0, 300, 783] {
        let v = enc.decode(&sk.decrypt(&b.pixels[i]).unwrap());
        for j in 0..3 {
            assert!((v[j] - x[[j, i]]).abs() < 1e-6, "pixel {i} image {j}");
        }
    }
    let e = crate::batch::encrypt_batch_symmetric(
        &model.spec,
        &params,
        &sk,
        x.slice(ndarray::s![.., ..10]),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            HeCnnError::Shape {
                expected: 784,
                found: 10,
                ..
            }
        ),
        "{e}"
    );
}
