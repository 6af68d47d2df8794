//! `packing = "planned"`: the planner's per-stage plan served end to end through the client's
//! own input packing and logit reading.

use super::tests::{tiny_limits, tiny_model};
use super::*;
use crate::infer::{encrypt_input, params_for};
use crate::server::config::ServedModelConfig;
use ckks::KeyGenerator;
use ndarray::Array4;
use rand::{Rng, SeedableRng};

fn served(packing: &str) -> Result<ServedModel> {
    let sc = ServedModelConfig {
        name: "tiny".into(),
        path: "unused.json".into(),
        packing: packing.into(),
        layout: None,
        preset: None,
    };
    ServedModel::new(&sc, &tiny_model(4), &tiny_limits())
}

/// The planned model announces the plan's input packing, its rotations only, and a request
/// packed by the client (as `he-infer` packs it) decrypts to the plaintext logits within the
/// announced flood.
#[test]
fn a_planned_model_answers_like_the_plaintext_model() {
    let m = served("planned").unwrap();
    let (plan, secs) = m.plan.clone().expect("a planned model records its plan");
    assert!(secs > 0.0, "estimate {secs}");
    assert_eq!(plan.blocks.len(), 2);
    assert_eq!(
        m.info.input_layout.packing,
        plan.input,
        "announced input packing vs plan {}",
        plan.label()
    );
    let again =
        hegcn::HeStgcn::compile_plan(&tiny_model(4).fold(), &plan, m.stgcn().params()).unwrap();
    assert_eq!(again.planned_op_counts(), m.stgcn().planned_op_counts());
    assert_eq!(m.info.rotation_steps, m.stgcn().rotation_steps());

    let params = params_for(&m.info).unwrap();
    let mut kg = KeyGenerator::new(&params);
    let sk = kg.secret_key();
    let pk_out = kg
        .public_key(&sk)
        .unwrap()
        .at_level(m.info.output_level as usize)
        .unwrap();
    let eval = Evaluator::new(&params)
        .with_relin_key(kg.relin_key(&sk).unwrap())
        .with_galois_keys(kg.galois_keys(&sk, &m.info.rotation_steps, false).unwrap());
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let x = Array4::from_shape_fn((3, 4, 5, 1), |_| rng.gen_range(-1.0..1.0));
    let bytes = encrypt_input(&m.info, &params, &sk, x.view()).unwrap();
    assert_eq!(bytes.len(), m.input_cts());
    let cts = bytes
        .iter()
        .map(|b| Ciphertext::from_bytes(b, &params).unwrap())
        .collect();
    let r = m.evaluate(&eval, &pk_out, cts).unwrap();
    let positions: Vec<(u32, u32)> = r
        .positions
        .iter()
        .map(|&(c, s)| (c as u32, s as u32))
        .collect();
    let got = crate::infer::decrypt_logits(&params, &sk, &r.bytes, &positions).unwrap();
    let want = tiny_model(4)
        .fold()
        .forward(x.view().insert_axis(ndarray::Axis(0)))
        .unwrap();
    let sd = m.info.flood_sd;
    assert_eq!(got.len(), want.ncols());
    for (g, w) in got.iter().zip(want.row(0)) {
        assert!(
            (g - w).abs() <= 8.0 * sd + 1e-4,
            "{g} vs {w} (flood sd {sd})"
        );
    }
}

/// A uniform packing records no plan, and an unknown packing is refused naming the three.
#[test]
fn packings_other_than_planned_record_no_plan_and_unknown_ones_are_refused() {
    assert!(served("ama").unwrap().plan.is_none());
    assert!(served("channel-major").unwrap().plan.is_none());
    let e = served("mixed").unwrap_err().to_string();
    assert!(e.contains("\"mixed\"") && e.contains("planned"), "{e}");
}
