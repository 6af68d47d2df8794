//! Differential tests: every encrypted stage against its plaintext twin, whole-model logits
//! against `FoldedModel::forward`, level planning, and op counts against the formulas in
//! [`crate::model`].
//!
//! Tolerance: `max |enc − plain| ≤ TOL · max(1, max |plain|)` with `TOL = 2e-4` (the error
//! budget is dominated by quantising plaintext weights to ~2^-20 after a scale-2^60 activation
//! output and by CKKS noise at Δ = 2^40; measured errors are printed by `--nocapture`).

use ckks::{
    CkksParams, Dnum, Evaluator, KeyGenerator, Levels, LogN, PrimeBits, PublicKey, ScaleBits,
    SecretKey, SpecialPrimes,
};
use ml::stgcn::{
    spatial_partition, ActivationKind, Architecture, FoldedActivation, FoldedModel, StGcn,
    StGcnConfig,
};
use ndarray::{Array1, Array2, Array4, Array5, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::model::counts_sum;
use crate::reference;
use crate::{choose_preset, level_plan, HeGcnError, HeStgcn, Packing};

const TOL: f64 = 2e-4;

/// **Insecure** test parameters (small N, no security check).
fn test_params(log_n: u32, levels: usize) -> CkksParams {
    CkksParams::builder()
        .name("INSECURE_HEGCN_TEST")
        .log_n(LogN(log_n))
        .scale_bits(ScaleBits(40))
        .levels(Levels(levels))
        .first_prime_bits(PrimeBits(50))
        .special_primes(SpecialPrimes(2))
        .special_prime_bits(PrimeBits(55))
        .dnum(Dnum(levels + 1))
        .insecure_skip_security_check()
        .build()
        .unwrap()
}

struct Keys {
    sk: SecretKey,
    pk: PublicKey,
    eval: Evaluator,
}

fn keys(he: &HeStgcn, seed: u8) -> Keys {
    let params = he.params();
    let mut kg = KeyGenerator::from_seed(params, [seed; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let eval = Evaluator::new(params)
        .with_relin_key(kg.relin_key(&sk).unwrap())
        .with_galois_keys(kg.galois_keys(&sk, &he.rotation_steps(), false).unwrap());
    Keys { sk, pk, eval }
}

fn chain_graph(v: usize) -> ndarray::Array3<f64> {
    let mut edges: Vec<(usize, usize)> = (0..v - 1).map(|i| (i, i + 1)).collect();
    if v > 3 {
        edges.push((1, v - 1));
    }
    spatial_partition(v, &edges, 1).unwrap()
}

/// A small STGCN-3 with random folded biases, BN-like scales and an input affine map.
fn small_model(
    v: usize,
    t: usize,
    m: usize,
    divisor: usize,
    kind: ActivationKind,
    prune: &[(usize, usize, Vec<usize>)],
    seed: u64,
) -> FoldedModel {
    let a = chain_graph(v);
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, divisor, 3, t, &a, 4);
    cfg.num_persons = m;
    cfg.activation = kind;
    for (b, s, nodes) in prune {
        cfg.prune(*b, *s, nodes).unwrap();
    }
    let model = StGcn::new(cfg, seed).unwrap();
    let mut f = model.fold();
    let mut rng = ChaCha20Rng::seed_from_u64(seed + 1);
    let mut r = |s: f64| rng.gen_range(-s..s);
    for blk in &mut f.blocks {
        blk.gcn_bias.mapv_inplace(|_| r(0.1));
        blk.tcn_bias.mapv_inplace(|_| r(0.1));
        blk.aggregation
            .mapv_inplace(|x| if x != 0.0 { x * (1.0 + r(0.3)) } else { 0.0 });
        for act in [&mut blk.act1, &mut blk.act2] {
            if let FoldedActivation::Poly { a, b, c } = act {
                if kind == ActivationKind::Poly {
                    for i in 0..a.len() {
                        if !(a[i] == 0.0 && b[i] == 1.0 && c[i] == 0.0) {
                            a[i] += r(0.1);
                            b[i] += r(0.1);
                            c[i] += r(0.1);
                        }
                    }
                }
            }
        }
    }
    f.fc_bias.mapv_inplace(|_| r(0.5));
    let scale = Array2::from_shape_fn((3, v), |_| 0.5 + r(0.2));
    let shift = Array2::from_shape_fn((3, v), |_| r(0.1));
    f.input_affine = Some((scale, shift));
    f
}

fn random_input(c: usize, t: usize, v: usize, m: usize, seed: u64) -> Array4<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Array4::from_shape_fn((c, t, v, m), |_| rng.gen_range(-1.0..1.0))
}

fn max_err(a: &Array4<f64>, b: &Array4<f64>) -> (f64, f64) {
    assert_eq!(a.dim(), b.dim());
    let err = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let mag = b.iter().map(|x| x.abs()).fold(0.0, f64::max);
    (err, mag)
}

fn assert_close(what: &str, enc: &Array4<f64>, plain: &Array4<f64>) {
    let (err, mag) = max_err(enc, plain);
    println!("{what}: max err {err:.3e}, max |plain| {mag:.3e}");
    assert!(err <= TOL * mag.max(1.0), "{what}: err {err} > {TOL}·{mag}");
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|p| p.0)
        .unwrap()
}

fn folded_logits(model: &FoldedModel, x: &Array4<f64>) -> Array1<f64> {
    let x5: Array5<f64> = x.clone().insert_axis(Axis(0));
    model.forward(x5.view()).unwrap().row(0).to_owned()
}

#[test]
fn reference_chain_equals_folded_forward() {
    let model = small_model(5, 12, 2, 8, ActivationKind::Poly, &[(1, 0, vec![0, 3])], 3);
    let x = random_input(3, 12, 5, 2, 9);
    let r = reference::forward(&model, x.view());
    let f = folded_logits(&model, &x);
    for (a, b) in r.iter().zip(&f) {
        assert!((a - b).abs() < 1e-9 * b.abs().max(1.0), "{a} vs {b}");
    }
}

/// Runs every stage encrypted and compares each with its plaintext twin fed the same
/// (plaintext) input; then the whole model against `FoldedModel::forward`.
fn stagewise(model: &FoldedModel, packing: Packing, log_n: u32, x: &Array4<f64>) {
    let plan = level_plan(model).unwrap();
    let params = test_params(log_n, plan.depth);
    let he = HeStgcn::compile(model, packing, &params).unwrap();
    let k = keys(&he, 7);
    let tag = packing.name();
    let mut ct = he.encrypt_input(&k.pk, x.view()).unwrap();
    let mut plain = reference::input_affine(model, x.view());
    assert_close(
        &format!("{tag} input"),
        &he.decrypt_tensor(&k.sk, &ct).unwrap(),
        &plain,
    );
    for (i, blk) in model.blocks.iter().enumerate() {
        let g = he.gcn(&k.eval, i, &ct).unwrap();
        let g_ref = reference::gcn(blk, plain.view());
        assert_close(
            &format!("{tag} block{i}.gcn"),
            &he.decrypt_tensor(&k.sk, &g).unwrap(),
            &g_ref,
        );
        let h = he.activation(&k.eval, i, 0, &g).unwrap();
        let h_ref = reference::activation(&blk.act1, g_ref.view());
        assert_close(
            &format!("{tag} block{i}.act1"),
            &he.decrypt_tensor(&k.sk, &h).unwrap(),
            &h_ref,
        );
        let r = he.temporal(&k.eval, i, &h, &ct).unwrap();
        let r_ref = reference::temporal(blk, h_ref.view(), plain.view());
        assert_close(
            &format!("{tag} block{i}.tcn"),
            &he.decrypt_tensor(&k.sk, &r).unwrap(),
            &r_ref,
        );
        ct = he.activation(&k.eval, i, 1, &r).unwrap();
        plain = reference::activation(&blk.act2, r_ref.view());
        assert_close(
            &format!("{tag} block{i}.act2"),
            &he.decrypt_tensor(&k.sk, &ct).unwrap(),
            &plain,
        );
    }
    let logits = he
        .decrypt_logits(&k.sk, &he.head(&k.eval, &ct).unwrap())
        .unwrap();
    let want = folded_logits(model, x);
    println!("{tag} logits {logits:?}\n{tag} folded {want:?}");
    let mag = want.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1.0);
    for (a, b) in logits.iter().zip(&want) {
        assert!((a - b).abs() <= TOL * mag, "{tag}: logit {a} vs {b}");
    }
    assert_eq!(argmax(&logits), argmax(want.as_slice().unwrap()));
    assert_eq!(ct.cts[0].level(), 1, "head input at level 1");
}

#[test]
fn ama_stages_match_plaintext_square_pruned() {
    let model = small_model(
        5,
        16,
        2,
        8,
        ActivationKind::Square,
        &[(0, 1, vec![2]), (2, 0, vec![0, 1, 2, 3, 4])],
        11,
    );
    let x = random_input(3, 16, 5, 2, 12);
    stagewise(&model, Packing::Ama, 11, &x);
}

#[test]
fn channel_major_stages_match_plaintext_square_pruned() {
    let model = small_model(
        5,
        16,
        2,
        8,
        ActivationKind::Square,
        &[(0, 1, vec![2]), (2, 0, vec![0, 1, 2, 3, 4])],
        11,
    );
    let x = random_input(3, 16, 5, 2, 12);
    stagewise(&model, Packing::ChannelMajor, 11, &x);
}

#[test]
fn ama_stages_match_plaintext_poly_multi_ciphertext() {
    // 32 slots, block 8 → 4 channels per ciphertext: 8- and 16-channel blocks span 2 and 4
    // ciphertexts per node.
    let model = small_model(4, 8, 1, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 21);
    let x = random_input(3, 8, 4, 1, 22);
    stagewise(&model, Packing::Ama, 6, &x);
}

#[test]
fn channel_major_stages_match_plaintext_poly_small_slots() {
    let model = small_model(4, 8, 1, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 21);
    let x = random_input(3, 8, 4, 1, 22);
    stagewise(&model, Packing::ChannelMajor, 6, &x);
}
