//! The matrix layout against the plaintext model: the layers' algebra on plaintext slot
//! vectors (exact up to rounding, on the committed and random models), the encrypted forward
//! pass (insecure N = 2^11 parameters: one image per ciphertext; and the 128-bit preset with
//! 8 images), planned against measured op counts, the packing round trip
//! and the refusals.

use super::*;
use crate::error::HeCnnError;
use crate::tests::{committed, keys_with_rotations, Keys};
use ckks::presets;
use ml::models::cnn::CnnSpec;
use proptest::prelude::*;

/// Largest |logit| error accepted between the encrypted and the plaintext forward pass (the
/// batch and LoLa layouts' tolerance).
const LOGIT_TOLERANCE: f64 = 1e-3;

/// The plan's layers on plaintext slot vectors: the logits of the packed images.
fn plain_forward(
    plan: &MatrixPlan,
    client: &MatrixClient,
    x: ndarray::ArrayView2<'_, f64>,
) -> Array2<f64> {
    let sq = |v: Vec<f64>| v.into_iter().map(|a| a * a).collect::<Vec<f64>>();
    let z1 = plan.conv.apply_plain(&[client.pack(x).unwrap()]);
    let a1: Vec<Vec<f64>> = z1.into_iter().map(sq).collect();
    let z2 = plan.fc1.apply_plain(&a1);
    let z3 = plan.fc2.apply_plain(&[sq(z2[0].clone())]);
    let b = plan.block();
    Array2::from_shape_fn((x.nrows(), plan.geometry.spec.classes), |(n, c)| {
        z3[0][n * b + c]
    })
}

fn mnist(n: usize) -> Array2<f64> {
    datasets::mnist::load_bundled(datasets::mnist::Split::Test)
        .unwrap()
        .head(n)
        .images_f64()
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

#[test]
fn the_plaintext_twin_of_the_plan_is_the_model_on_the_committed_models() {
    let params = crate::choose_preset("matrix", MATRIX_DEPTH)
        .unwrap()
        .build()
        .unwrap();
    let x = mnist(8);
    for name in [
        "mnist-cryptonets-aug",
        "mnist-wide-aug-p55",
        "mnist-ffconv-r8-p50",
    ] {
        let model = committed(name).folded();
        let plan = MatrixPlan::new(&model, &params).unwrap();
        assert_eq!(plan.images(), 8, "{name}");
        let client = MatrixClient::new(&model.spec, &params).unwrap();
        let err = max_abs_diff(
            &plain_forward(&plan, &client, x.view()),
            &model.logits(x.view()).unwrap(),
        );
        assert!(err < 1e-9, "{name}: {err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Random weights (some zero: pruned diagonals and taps drop out), random maps, hidden
    /// units and images: the plan's algebra is the model's forward pass.
    #[test]
    fn the_plaintext_twin_is_the_model_for_random_shapes(
        maps in 1usize..9, hidden in 5usize..70, seed in 0u64..1000, zero in 0.0f64..0.6,
    ) {
        let spec = CnnSpec { maps, hidden, ..CnnSpec::cryptonets() };
        let mut model = ml::models::cnn::CnnModel::init(spec, seed).unwrap();
        let mut k = seed;
        for w in model.fc1_w.iter_mut().chain(model.conv_w.iter_mut()) {
            k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if ((k >> 33) as f64 / (1u64 << 31) as f64) < zero {
                *w = 0.0;
            }
        }
        let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
        let plan = MatrixPlan::new(&model, &params).unwrap();
        let client = MatrixClient::new(&model.spec, &params).unwrap();
        let x = Array2::from_shape_fn((1, 784), |(_, i)| ((i as u64 * 31 + seed) % 17) as f64 / 17.0);
        let err = max_abs_diff(&plain_forward(&plan, &client, x.view()), &model.logits(x.view()).unwrap());
        prop_assert!(err < 1e-9, "{}", err);
    }

    /// Packing then unpacking gives the images back; every other slot is zero.
    #[test]
    fn packing_round_trips(n in 1usize..9, seed in 0u64..1000) {
        let params = crate::choose_preset("matrix", MATRIX_DEPTH).unwrap().build().unwrap();
        let client = MatrixClient::new(&CnnSpec::cryptonets(), &params).unwrap();
        let x = Array2::from_shape_fn((n, 784), |(j, i)| ((i as u64 * 7 + j as u64 * 13 + seed) % 23) as f64 / 23.0);
        let v = client.pack(x.view()).unwrap();
        prop_assert_eq!(client.unpack(&v, n), x.clone());
        prop_assert!((v.iter().map(|a| a.abs()).sum::<f64>() - x.sum()).abs() < 1e-9);
    }
}

/// One encrypted pass against the model: logits within [`LOGIT_TOLERANCE`], measured op
/// counts = planned, and the sanitized logits within the flood's error.
fn encrypted_pass(model: &CnnModel, params: &CkksParams, x: &Array2<f64>) {
    let he = MatrixCnn::new(model, params).unwrap();
    let Keys { sk, pk, eval } = keys_with_rotations(params, &he.rotation_steps());
    let ct = he.encrypt_batch(&pk, x.view()).unwrap();
    eval.reset_counters();
    let out = he.forward(&eval, &ct).unwrap();
    assert_eq!(eval.counters(), he.planned_op_counts());
    let got = he.decrypt_logits(&sk, &out).unwrap();
    let want = model.logits(x.view()).unwrap();
    let err = max_abs_diff(&got, &want);
    assert!(err < LOGIT_TOLERANCE, "max |Δlogit| {err}");
    assert_eq!(
        CnnModel::predictions(got.view()),
        CnnModel::predictions(want.view())
    );
    // Every slot but the class slots of the images decrypts to ~0.
    let slots = ckks::Encoder::new(params).decode(&sk.decrypt(&out.ct).unwrap());
    let b = he.plan().block();
    let classes = model.spec.classes;
    let stray = slots
        .iter()
        .enumerate()
        .filter(|(s, _)| s % b >= classes)
        .fold(0.0f64, |m, (_, v)| m.max(v.abs()));
    assert!(stray < LOGIT_TOLERANCE, "a non-class slot holds {stray}");
    let pk0 = pk.at_level(he.output_level()).unwrap();
    let clean = he
        .sanitize_logits(&eval, &out, &pk0, &FloodConfig::default())
        .unwrap();
    let after = he.decrypt_logits(&sk, &clean).unwrap();
    let sd = he
        .logit_flood(&FloodConfig::default())
        .slot_error_sd(params.n(), clean.ct.scale());
    let err = max_abs_diff(&after, &want);
    assert!(err < LOGIT_TOLERANCE + 6.0 * sd, "flooded {err}, sd {sd}");
}

#[test]
fn encrypted_logits_match_the_model_with_planned_op_counts() {
    let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
    let x = mnist(2);
    for name in ["mnist-cryptonets-aug", "mnist-wide-aug-p55"] {
        let model = committed(name);
        for row in 0..x.nrows() {
            encrypted_pass(
                &model,
                &params,
                &x.slice(ndarray::s![row..=row, ..]).to_owned(),
            );
        }
    }
}

/// The 128-bit preset the layout is sized for: 8 images in one ciphertext (65 Galois keys at
/// N = 2^14: ~3 s in release, 1.1 GB).
#[test]
fn eight_images_in_one_ciphertext_at_the_128_bit_preset() {
    let params = crate::choose_preset("matrix", MATRIX_DEPTH)
        .unwrap()
        .build()
        .unwrap();
    encrypted_pass(&committed("mnist-cryptonets-aug"), &params, &mnist(8));
}

#[test]
fn shallow_parameters_big_batches_and_bad_pixels_are_refused() {
    let model = ml::models::cnn::CnnModel::init(CnnSpec::cryptonets(), 1).unwrap();
    let shallow = presets::INSECURE_N10_L4_S40_TEST_ONLY.build().unwrap();
    assert!(matches!(
        MatrixPlan::new(&model, &shallow),
        Err(HeCnnError::DepthExceeded {
            needed: 5,
            available: 4,
            ..
        })
    ));
    let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
    let client = MatrixClient::new(&model.spec, &params).unwrap();
    assert_eq!(client.capacity(), 1);
    let e = client.pack(Array2::zeros((2, 784)).view()).unwrap_err();
    assert!(
        matches!(
            e,
            HeCnnError::BatchTooLarge {
                images: 2,
                slots: 1
            }
        ),
        "{e}"
    );
    let mut bad = Array2::zeros((1, 784));
    bad[[0, 17]] = 2.0;
    let e = client.pack(bad.view()).unwrap_err().to_string();
    assert!(e.contains("image 0 pixel 17"), "{e}");
    let ff = committed("mnist-ffconv-r8");
    assert!(matches!(
        MatrixPlan::new(&ff, &params),
        Err(HeCnnError::Model(_))
    ));
}

#[test]
fn the_cryptonets_plan_has_the_documented_shape() {
    let params = crate::choose_preset("matrix", MATRIX_DEPTH)
        .unwrap()
        .build()
        .unwrap();
    let plan = MatrixPlan::new(&committed("mnist-cryptonets-aug"), &params).unwrap();
    assert_eq!((plan.block(), plan.images()), (1024, 8));
    assert_eq!(
        plan.products()[0],
        61,
        "conv: 36 shifts for 4 maps + 25 for the fifth"
    );
    assert_eq!(
        plan.products()[1],
        256,
        "fc1: 128 shifts on each of 2 ciphertexts"
    );
    let c = sum_stages(&plan.stages());
    assert_eq!(
        (c.mul, c.rescale),
        (3, 2 + 3 + 1 + 1),
        "2 conv outputs, 3 squares, fc1, fc2"
    );
    let rot: Vec<(String, u64)> = plan
        .stages()
        .into_iter()
        .filter(|s| s.ops.rotate > 0)
        .map(|s| (s.layer, s.ops.rotate))
        .collect();
    let want = [
        ("conv", 35),
        ("fc1", 30),
        ("fc1 rotate-and-add", 3),
        ("fc2", 20),
    ];
    let want: Vec<(String, u64)> = want.iter().map(|(l, n)| (l.to_string(), *n)).collect();
    assert_eq!(rot, want, "the rotations the module doc states");
    assert_eq!(plan.rotation_steps().len(), 65, "Galois keys");
}
