//! `packing = "planned"`: the planner's per-stage plan served end to end through the client's
//! own input packing and logit reading.

use super::tests::{assert_reply_matches_plaintext, tiny_limits, tiny_model};
use super::*;
use crate::server::config::ServedModelConfig;
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

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let x = Array4::from_shape_fn((3, 4, 5, 1), |_| rng.gen_range(-1.0..1.0));
    assert_reply_matches_plaintext(&m, &tiny_model(4), &x);
}

/// A uniform packing records no plan, and an unknown packing is refused naming the three.
#[test]
fn packings_other_than_planned_record_no_plan_and_unknown_ones_are_refused() {
    assert!(served("ama").unwrap().plan.is_none());
    assert!(served("channel-major").unwrap().plan.is_none());
    let e = served("mixed").unwrap_err().to_string();
    assert!(e.contains("\"mixed\"") && e.contains("planned"), "{e}");
}
