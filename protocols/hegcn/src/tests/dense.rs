//! The dense single-pose layout ([`crate::dense`]) against the plaintext model: logits of a
//! small random model and of the committed BodyPose model, the key set (exactly the rotation
//! steps the plan uses), the per-map baby steps and the refusal of multi-frame models.
//!
//! Tolerance: `max |enc − plain| ≤ TOL · max(1, max |plain|)` with the crate's `TOL = 2e-4`
//! (general polynomial coefficients at the reduced scale, as the channel-major packing).

use std::path::Path;

use ckks::{Evaluator, KeyGenerator};
use datasets::skeleton::{BodyPoseNormalization, BodyPoseSet};
use ndarray::{s, Axis};
use stgcn::ActivationKind;

use super::{argmax, folded_logits, random_input, small_model, test_params, TOL};
use crate::dense::{DenseLayout, DenseStgcn};
use crate::HeGcnError;

/// Keys for exactly `steps` and the dense logits of `x` (`None` when evaluation fails).
fn dense_logits(
    he: &DenseStgcn,
    steps: &[i64],
    x: &ndarray::Array4<f64>,
    seed: u8,
) -> Option<Vec<f64>> {
    let params = he.params();
    let mut kg = KeyGenerator::from_seed(params, [seed; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let eval = Evaluator::new(params)
        .with_relin_key(kg.relin_key(&sk).unwrap())
        .with_galois_keys(kg.galois_keys(&sk, steps, false).unwrap());
    let ct = he.encrypt_input(&pk, x.view()).unwrap();
    let logits = he.forward(&eval, &ct).ok()?;
    Some(he.decrypt_logits(&sk, &logits).unwrap())
}

fn check_logits(what: &str, got: &[f64], want: &[f64]) {
    let err = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let mag = want.iter().map(|x| x.abs()).fold(0.0, f64::max);
    println!("{what}: max |logit error| {err:.3e}, max |logit| {mag:.3e}");
    assert!(err <= TOL * mag.max(1.0), "{what}: err {err} > {TOL}·{mag}");
    assert_eq!(argmax(got), argmax(want), "{what}: top-1");
}

/// The small random poly model `seed` (5 nodes, one frame) compiled for the dense layout with
/// `2^extra` replicas of its period.
fn small_dense(seed: u64, extra: u32) -> (stgcn::FoldedModel, DenseStgcn) {
    let model = small_model(5, 1, 1, 16, ActivationKind::Poly, &[], seed);
    let period = DenseLayout::period_for(&model);
    let depth = crate::level_plan(&model).unwrap().depth;
    let params = test_params(period.trailing_zeros() + extra, depth);
    let he = DenseStgcn::compile(&model, &params).unwrap();
    (model, he)
}

#[test]
fn dense_logits_match_plaintext_on_a_small_model() {
    let (model, he) = small_dense(31, 2);
    assert_eq!(he.layout().slots / he.layout().period, 2, "two replicas");
    for seed in [3u64, 4] {
        let x = random_input(3, 1, 5, 1, seed);
        let want = folded_logits(&model, &x);
        let got = dense_logits(&he, &he.rotation_steps(), &x, seed as u8).unwrap();
        check_logits("dense small model", &got, want.as_slice().unwrap());
    }
}

#[test]
fn dense_keys_are_exactly_the_planned_steps() {
    let (model, he) = small_dense(32, 1);
    let (p, n) = (he.layout().node_stride as i64, he.layout().period as i64);
    let steps = he.rotation_steps();
    let mut allowed: Vec<i64> = [1, 2, p, -p, p / 2, -p / 2, p / 4, -p / 4].into();
    allowed.extend((0..).map(|i| p << i).take_while(|&s| s < n));
    assert!(
        steps.contains(&1) && steps.contains(&2) && steps.iter().all(|s| allowed.contains(s)),
        "the key rule: 1, 2 (hoisted baby steps), ±B for B in P, P/2, P/4 and the node sum's \
         P·2^i; got {steps:?}"
    );
    let x = random_input(3, 1, 5, 1, 9);
    let want = folded_logits(&model, &x);
    let got = dense_logits(&he, &steps, &x, 1).expect("the planned keys suffice");
    check_logits("dense, planned keys", &got, want.as_slice().unwrap());
    // Every requested key is used: without any one of them the forward pass fails.
    for drop in &steps {
        let fewer: Vec<i64> = steps.iter().copied().filter(|s| s != drop).collect();
        assert!(
            dense_logits(&he, &fewer, &x, 1).is_none(),
            "step {drop} requested but not needed"
        );
    }
    let (products, switches) = he.planned_linear_ops();
    println!("dense small model: {products} products, {switches} key switches");
    assert!(products > 0 && switches > 0);
}

/// Keys made at the announced levels (`rotation_levels`, each step's key restricted to the
/// highest level the pass rotates by it at) serve the pass; any one key a level lower fails it.
#[test]
fn dense_keys_at_their_levels_suffice() {
    let (model, he) = small_dense(36, 1);
    let params = he.params().clone();
    let depth = he.plan().depth;
    let levels = he.rotation_levels();
    assert!(
        levels.iter().any(|&(_, l)| l < depth),
        "some key is used low: {levels:?}"
    );
    let mut kg = KeyGenerator::from_seed(&params, [7; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let rk = kg.relin_key(&sk).unwrap();
    let x = random_input(3, 1, 5, 1, 3);
    let ct = he.encrypt_input(&pk, x.view()).unwrap();
    let mut run = |cut: Option<i64>| {
        let mut keys = ckks::GaloisKeys::default();
        for &(step, level) in &levels {
            let level = if cut == Some(step) { level - 1 } else { level };
            keys.extend(kg.galois_keys_at_level(&sk, &[step], false, level).unwrap());
        }
        let eval = Evaluator::new(&params)
            .with_relin_key(rk.clone())
            .with_galois_keys(keys);
        he.forward(&eval, &ct).ok()
    };
    let got = run(None).expect("keys at their levels suffice");
    let got = he.decrypt_logits(&sk, &got).unwrap();
    check_logits(
        "dense, keys at their levels",
        &got,
        folded_logits(&model, &x).as_slice().unwrap(),
    );
    for &(step, level) in levels.iter().filter(|&&(_, l)| l > 0) {
        assert!(
            run(Some(step)).is_none(),
            "step {step} is rotated at level {level}"
        );
    }
}

/// The small random model `seed` compiled for the dense layout at the smallest test degree,
/// an evaluator with exactly its planned keys (key seed `key_seed`) and the public key.
fn compiled_small_model(seed: u64, key_seed: u8) -> (DenseStgcn, Evaluator, ckks::PublicKey) {
    let (_, he) = small_dense(seed, 1);
    let params = he.params().clone();
    let mut kg = KeyGenerator::from_seed(&params, [key_seed; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let eval = Evaluator::new(&params)
        .with_relin_key(kg.relin_key(&sk).unwrap())
        .with_galois_keys(kg.galois_keys(&sk, &he.rotation_steps(), false).unwrap());
    (he, eval, pk)
}

/// The forward pass takes exactly the planned key switches and products (plus one
/// relinearization and two products per activation site and the logit mask's product), on a
/// model with a convolutional residual (which reuses its block's baby steps).
#[test]
fn dense_forward_takes_the_planned_operations() {
    let (he, eval, pk) = compiled_small_model(34, 5);
    let ct = he
        .encrypt_input(&pk, random_input(3, 1, 5, 1, 2).view())
        .unwrap();
    eval.reset_counters();
    he.forward(&eval, &ct).unwrap();
    let ops = eval.counters();
    let (products, switches) = he.planned_linear_ops();
    let sites = ops.relinearize as usize;
    assert_eq!(ops.key_switch as usize - sites, switches);
    // Per site `a⊙x` and `b⊙x`; the planned products count the mask's.
    assert_eq!(ops.mul_plain as usize, products + 2 * sites);
}

/// With the plaintext cache on, the first pass encodes every plaintext it needs once (weight
/// diagonals, biases, activation coefficients, the logit mask: each looked up by its compiled
/// identity) and a second pass on another input encodes nothing; the logits are those of a
/// pass with the cache off, bit for bit. (Before, biases, activation coefficients and the mask
/// were encoded on every request outside the cache.)
#[test]
fn dense_second_pass_encodes_nothing() {
    let (he, eval, pk) = compiled_small_model(35, 6);
    let cts: Vec<_> = [7u64, 8]
        .iter()
        .map(|&seed| {
            he.encrypt_input(&pk, random_input(3, 1, 5, 1, seed).view())
                .unwrap()
        })
        .collect();
    let uncached: Vec<_> = cts.iter().map(|c| he.forward(&eval, c).unwrap()).collect();
    let off = he.plaintext_cache_stats();
    assert_eq!((off.entries, off.hits), (0, 0), "cache off: {off:?}");
    assert_eq!(
        off.misses % 2,
        0,
        "each pass encodes the same plaintexts: {off:?}"
    );
    let per_pass = off.misses / 2;
    he.set_plaintext_cache_budget(1 << 30);
    let first = he.forward(&eval, &cts[0]).unwrap();
    let s1 = he.plaintext_cache_stats();
    let misses = s1.misses - off.misses;
    assert!(
        s1.entries as u64 == misses && misses + s1.hits == per_pass,
        "the first pass stores each distinct plaintext once: {s1:?}"
    );
    eval.reset_counters();
    let second = he.forward(&eval, &cts[1]).unwrap();
    let s2 = he.plaintext_cache_stats();
    // Every plaintext product's operand (diagonals, activation coefficients, the mask) and
    // every bias comes through the cache.
    let products = eval.counters().mul_plain;
    assert!(
        per_pass > products,
        "{per_pass} lookups, {products} products"
    );
    assert_eq!(
        s2.misses, s1.misses,
        "the second pass encodes nothing: {s2:?}"
    );
    assert_eq!(s2.hits - s1.hits, per_pass, "every lookup hits: {s2:?}");
    for (got, want) in [(&first, &uncached[0]), (&second, &uncached[1])] {
        assert_eq!(got.positions, want.positions);
        assert!(
            got.cts[0].parts() == want.cts[0].parts(),
            "cached = encoded afresh"
        );
    }
}

#[test]
fn dense_refuses_multi_frame_models_and_wrong_inputs() {
    let model = small_model(5, 4, 1, 16, ActivationKind::Square, &[], 33);
    assert!(!DenseLayout::applies(&model));
    let params = test_params(10, 14);
    assert!(matches!(
        DenseStgcn::compile(&model, &params),
        Err(HeGcnError::Shape { found: 4, .. })
    ));
    let one = small_model(5, 1, 1, 16, ActivationKind::Square, &[], 33);
    let he = DenseStgcn::compile(&one, &params).unwrap();
    assert!(he.pack_input(random_input(3, 2, 5, 1, 1).view()).is_err());
    let small = test_params(5, 14);
    assert!(matches!(
        DenseStgcn::compile(&one, &small),
        Err(HeGcnError::LayoutTooLarge { .. })
    ));
}

#[test]
fn dense_matches_the_committed_bodypose_model() {
    let stem = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/models/bodypose-stgcn3x128-d4-poly");
    let json = std::fs::read_to_string(stem.with_extension("json")).unwrap();
    let w = std::fs::read(stem.with_extension("safetensors")).unwrap();
    let folded = stgcn::StGcn::from_json_and_safetensors(&json, &w)
        .unwrap()
        .fold();
    assert!(DenseLayout::applies(&folded));
    let period = DenseLayout::period_for(&folded);
    assert_eq!(period, 1024, "25 nodes × 32 slots");
    // The node order cuts the distinct node offsets of the graph convolution.
    let order = crate::dense::node_order(&folded);
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..25).collect::<Vec<_>>(), "a permutation");
    let (_, edges) = crate::dense::graph_edges(&folded);
    let identity: Vec<usize> = (0..25).collect();
    let (before, after) = (
        crate::dense::order_cost(&edges, &identity),
        crate::dense::order_cost(&edges, &order),
    );
    let (wide, narrow) = (
        crate::dense::bandwidth(&edges, &identity),
        crate::dense::bandwidth(&edges, &order),
    );
    println!(
        "BodyPose node offsets: {before} distinct up to ±{wide} in index order, \
         {after} up to ±{narrow} in the chosen order"
    );
    // BODY25's least bandwidth is 3 (its centre has degree 4, so 2 cannot hold, and the
    // search finds 3): offsets −3..3.
    assert_eq!(narrow, 3);
    assert!(after < before);
    let depth = crate::level_plan(&folded).unwrap().depth;
    // Insecure small ring (one replica) to keep the test fast; the layout is the same.
    let params = test_params(period.trailing_zeros() + 1, depth);
    let he = DenseStgcn::compile(&folded, &params).unwrap();
    let (products, switches) = he.planned_linear_ops();
    println!("BodyPose dense: {products} products, {switches} key switches per pose");
    let test = BodyPoseSet::load_bundled(BodyPoseNormalization::AsProvided)
        .unwrap()
        .set
        .split_stratified(0.2, 42)
        .unwrap()
        .1;
    let data = test.data.slice(s![..3, .., .., .., ..]).mapv(f64::from);
    let want = folded.forward(data.view()).unwrap();
    for i in 0..3 {
        let x = data.index_axis(Axis(0), i).to_owned();
        let got = dense_logits(&he, &he.rotation_steps(), &x, i as u8).unwrap();
        check_logits("dense BodyPose", &got, want.row(i).as_slice().unwrap());
    }
}

proptest::proptest! {
    /// The client's input repeats every channel every `input_repeat` slots of its node, and
    /// the slot the first stage reads channel `c` of node `v` from for output channel `o`
    /// holds that entry, within one repeat of slot `o` of the node.
    #[test]
    fn packed_input_holds_every_channel_where_the_first_stage_reads_it(
        channels in 1usize..6,
        seed in 0u64..1000,
        o in 0usize..16,
    ) {
        let model = small_model(5, 1, 1, 16, ActivationKind::Poly, &[], 40 + seed % 3);
        let mut l = DenseLayout::new(&model, 1 << 10).unwrap();
        let (channels, o) = (1 + (channels - 1) % l.node_stride, o % l.node_stride);
        l.channels = channels;
        l.input_repeat = channels.next_power_of_two();
        let x: Vec<f64> = (0..channels * l.nodes).map(|i| i as f64 + 0.5).collect();
        let packed = l.pack(&x).unwrap();
        for v in 0..l.nodes {
            let base = l.node_order[v] * l.node_stride;
            for j in 0..l.node_stride {
                let c = j % l.input_repeat;
                let want = if c < channels { x[c * l.nodes + v] } else { 0.0 };
                proptest::prop_assert_eq!(packed[base + j], want);
            }
            for c in 0..channels {
                let s = l.input_slot(c, v, o);
                proptest::prop_assert_eq!(packed[s], x[c * l.nodes + v]);
                proptest::prop_assert!(s >= base && s < base + l.node_stride);
                let off = s as i64 - (base + o) as i64;
                proptest::prop_assert!(off.unsigned_abs() < l.input_repeat as u64);
            }
        }
    }
}
