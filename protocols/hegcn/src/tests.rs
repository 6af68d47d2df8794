//! Differential tests: every encrypted stage against its plaintext twin, whole-model logits
//! against `FoldedModel::forward`, level planning, and op counts against the formulas in
//! [`crate::model`].
//!
//! Tolerance: `max |enc − plain| ≤ TOL · max(1, max |plain|)` with `TOL = 2e-4`, the budget of
//! the channel-major packing, where general polynomial coefficients are evaluated at a reduced
//! scale (plaintext weights quantised to ~2^-20 after a scale-2^60 activation output). Under
//! AMA the coefficients are folded into the weights and the error is CKKS noise at Δ = 2^40
//! (~1e-9 relative, checked with 1e-6 in `ama_coefficient_folding_keeps_full_precision`);
//! measured errors are printed by `--nocapture`.

use ckks::{
    CkksParams, Dnum, Evaluator, KeyGenerator, Levels, LogN, PrimeBits, PublicKey, ScaleBits,
    SecretKey, SpecialPrimes,
};
use ndarray::{Array1, Array2, Array4, Array5, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use stgcn::{
    spatial_partition, ActivationKind, Architecture, FoldedActivation, FoldedModel, FoldedResidual,
    StGcn, StGcnConfig,
};

use crate::model::{counts_sum, StageReport};
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

/// `x[c, t, v, m] · s[v]`.
fn node_scaled(x: &Array4<f64>, s: &[f64]) -> Array4<f64> {
    let mut y = x.clone();
    for ((_, _, v, _), e) in y.indexed_iter_mut() {
        *e *= s[v];
    }
    y
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
        // Intermediate tensors carry the per-node factors of the coefficient folding.
        let (gs, fs) = he.stage_node_scales(i).unwrap();
        let g = he.gcn(&k.eval, i, &ct).unwrap();
        let g_ref = reference::gcn(blk, plain.view());
        assert_close(
            &format!("{tag} block{i}.gcn"),
            &he.decrypt_tensor(&k.sk, &g).unwrap(),
            &node_scaled(&g_ref, gs),
        );
        let h = he.activation(&k.eval, i, 0, &g).unwrap();
        let h_ref = reference::activation(&blk.act1, g_ref.view());
        assert_close(
            &format!("{tag} block{i}.act1"),
            &he.decrypt_tensor(&k.sk, &h).unwrap(),
            &node_scaled(&h_ref, fs),
        );
        let r = he.temporal(&k.eval, i, &h, &ct).unwrap();
        let r_ref = reference::temporal(blk, h_ref.view(), plain.view());
        assert_close(
            &format!("{tag} block{i}.tcn"),
            &he.decrypt_tensor(&k.sk, &r).unwrap(),
            &node_scaled(&r_ref, fs),
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
    // The head spends one level on the dense layer and one on the logit mask.
    assert_eq!(ct.cts[0].level(), 2, "head input at level 2");
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

fn stage<'a>(reports: &'a [StageReport], name: &str) -> &'a StageReport {
    reports.iter().find(|r| r.name == name).unwrap()
}

/// Distinct block distances `(v − w) mod B` over the nonzeros of `Σ_k A_k`, and that count.
fn distances(model: &FoldedModel, blocks: usize) -> (Vec<usize>, usize) {
    let a = &model.blocks[0].aggregation;
    let (k, v, _) = a.dim();
    let mut d = std::collections::BTreeSet::new();
    let mut nnz = 0;
    for src in 0..v {
        for dst in 0..v {
            if (0..k).any(|ki| a[[ki, src, dst]] != 0.0) {
                nnz += 1;
                d.insert((src as i64 - dst as i64).rem_euclid(blocks as i64) as usize);
            }
        }
    }
    (d.into_iter().collect(), nnz)
}

/// Formula: rotations per node of an AMA map `C_in → C_out` with `taps` in-block shifts, one
/// ciphertext per node, `C_in + C_out − 1 ≤ B`: `min(|R|·taps − 1, min_{n1} (min(n1,|R|)·taps
/// − 1 + G(n1) − 1))`, `|R| = C_in + C_out − 1`, `G(n1) = ⌊(C_in−1)/n1⌋ + ⌈(C_out−1)/n1⌉ + 1`.
fn ama_rotations(ci: usize, co: usize, taps: usize, nb: usize) -> usize {
    let r = ci + co - 1;
    assert!(r <= nb);
    let mut best = r * taps - 1;
    let mut n1 = 1;
    while n1 <= nb {
        let g = (ci - 1) / n1 + (co - 1).div_ceil(n1) + 1;
        best = best.min(n1.min(r) * taps - 1 + g - 1);
        n1 *= 2;
    }
    best
}

/// Formula: channel-major graph conv rotations `min(C_in·(|D|−1), min_{n1} C_in·(|D mod n1|−1)
/// + C_out·(|D − D mod n1| − 1))`.
fn cm_gcn_rotations(ci: usize, co: usize, d: &[usize], nb: usize) -> usize {
    let mut best = ci * (d.len() - 1);
    let mut n1 = 1;
    while n1 <= nb {
        let b: std::collections::BTreeSet<usize> = d.iter().map(|x| x % n1).collect();
        let g: std::collections::BTreeSet<usize> = d.iter().map(|x| x - x % n1).collect();
        best = best.min(ci * (b.len() - 1) + co * (g.len() - 1));
        n1 *= 2;
    }
    best
}

/// Measured rotations, products, ct×ct products and rescales per stage equal the formulas of
/// the `model` module docs (one ciphertext per node: C ≤ B), and the compiled plan's counts.
#[test]
fn op_counts_match_formulas() {
    let (v, t, m) = (5, 16, 2);
    let model = small_model(v, t, m, 8, ActivationKind::Square, &[(0, 1, vec![2])], 31);
    let x = random_input(3, t, v, m, 32);
    let depth = level_plan(&model).unwrap().depth;
    let params = test_params(11, depth);
    let kt = model.temporal_kernel;
    let q = model.num_classes;
    let chans: Vec<(usize, usize)> = model
        .blocks
        .iter()
        .map(|b| (b.in_channels, b.out_channels))
        .collect();
    for packing in [Packing::Ama, Packing::ChannelMajor] {
        let he = HeStgcn::compile(&model, packing, &params).unwrap();
        let k = keys(&he, 5);
        let ct = he.encrypt_input(&k.pk, x.view()).unwrap();
        k.eval.reset_counters();
        let (logits, reports) = he.forward(&k.eval, &ct).unwrap();
        let total = counts_sum(reports.iter().map(|r| &r.counts));
        assert_eq!(total, k.eval.counters());
        let bl = he.input_layout().blocks_per_ct();
        let bs = he.input_layout().block;
        let (dist, nnz) = distances(&model, bl);
        for (i, &(ci, co)) in chans.iter().enumerate() {
            let g = &stage(&reports, &format!("block{i}.gcn")).counts;
            let tc = &stage(&reports, &format!("block{i}.tcn")).counts;
            let conv_res = matches!(model.blocks[i].residual, FoldedResidual::Conv { .. });
            let (g_rot, g_pt, t_rot) = match packing {
                Packing::Ama => {
                    let res = if conv_res {
                        v * ama_rotations(ci, co, 1, bl)
                    } else {
                        0
                    };
                    (
                        v * ama_rotations(ci, co, 1, bl),
                        nnz * (ci + co - 1),
                        v * ama_rotations(co, co, kt, bl) + res,
                    )
                }
                Packing::ChannelMajor => (
                    cm_gcn_rotations(ci, co, &dist, bl),
                    ci * co * dist.len(),
                    co * (kt - 1),
                ),
            };
            assert_eq!(
                g.rotate as usize, g_rot,
                "{packing:?} block{i} gcn rotations"
            );
            assert_eq!(
                g.mul_plain as usize, g_pt,
                "{packing:?} block{i} gcn products"
            );
            assert_eq!(g.key_switch, g.rotate);
            assert_eq!(
                g.rescale as usize,
                he.block_output_layout(i)
                    .unwrap()
                    .with_channels(co)
                    .num_cts()
            );
            assert_eq!(
                tc.rotate as usize, t_rot,
                "{packing:?} block{i} tcn rotations"
            );
            assert_eq!(stage(&reports, &format!("block{i}.act1")).counts.rotate, 0);
        }
        if packing == Packing::Ama {
            assert!(matches!(
                he.temporal_strategy(0),
                Some(crate::Strategy::Bsgs { .. })
            ));
        }
        let head = &stage(&reports, "head").counts;
        let c_last = chans.last().unwrap().1;
        let head_rot = match packing {
            Packing::Ama => ama_rotations(c_last, q, 1, bl) + bs.trailing_zeros() as usize,
            Packing::ChannelMajor => q * (bs * v.next_power_of_two()).trailing_zeros() as usize,
        };
        assert_eq!(head.rotate as usize, head_rot, "{packing:?} head rotations");
        // Square sites: one ct×ct product (and relinearisation) per ciphertext of a site whose
        // ciphertext holds a non-pruned node.
        assert_eq!(total.mul, total.relinearize);
        assert_eq!(total.key_switch, total.rotate + total.relinearize);
        // The compiled plan predicts the measured linear-map counts.
        for p in he.planned_counts() {
            let r = &stage(&reports, &p.name).counts;
            assert_eq!(r.rotate as usize, p.rotations, "{packing:?} {}", p.name);
            assert_eq!(r.mul_plain as usize, p.products, "{packing:?} {}", p.name);
        }
        println!("{packing:?} total {total:?}");
        let want = folded_logits(&model, &x);
        let got = he.decrypt_logits(&k.sk, &logits).unwrap();
        assert_eq!(argmax(&got), argmax(want.as_slice().unwrap()));
    }
}

/// Multi-ciphertext regime: measured counts equal the compiled plan's predictions.
#[test]
fn planned_counts_match_measured_multi_ciphertext() {
    let model = small_model(4, 8, 1, 8, ActivationKind::Square, &[], 41);
    let x = random_input(3, 8, 4, 1, 42);
    let params = test_params(6, level_plan(&model).unwrap().depth);
    for packing in [Packing::Ama, Packing::ChannelMajor] {
        let he = HeStgcn::compile(&model, packing, &params).unwrap();
        let k = keys(&he, 6);
        let ct = he.encrypt_input(&k.pk, x.view()).unwrap();
        let (_, reports) = he.forward(&k.eval, &ct).unwrap();
        for p in he.planned_counts() {
            let r = &stage(&reports, &p.name).counts;
            assert_eq!(r.rotate as usize, p.rotations, "{packing:?} {}", p.name);
            assert_eq!(r.mul_plain as usize, p.products, "{packing:?} {}", p.name);
        }
        // Galois keys were generated for exactly the steps used: every key is needed.
        assert!(!he.rotation_steps().is_empty());
    }
}

fn full_model(arch: Architecture, v: usize, t: usize, m: usize) -> FoldedModel {
    let a = chain_graph(v);
    let mut cfg = StGcnConfig::new(arch, 1, 3, t, &a, 60);
    cfg.num_persons = m;
    StGcn::new(cfg, 1).unwrap().fold()
}

#[test]
fn level_planner_picks_presets_and_refuses_deep_models() {
    // STGCN-3-128 on the NTU shape: 3 blocks × (gcn, x², tcn, x²) + head (dense layer and
    // logit mask) = 14 levels.
    let ntu = full_model(Architecture::Stgcn3x128, 25, 256, 2);
    let (preset, plan) = choose_preset(&ntu, Packing::Ama).unwrap();
    assert_eq!(plan.depth, 14);
    assert_eq!(plan.stages.len(), 13);
    assert_eq!(plan.stages.last().unwrap().level_after, 0);
    assert_eq!(preset.name, "N15_L17_S40_128BIT");
    let (preset_cm, _) = choose_preset(&ntu, Packing::ChannelMajor).unwrap();
    assert_eq!(preset_cm.name, "N15_L17_S40_128BIT");
    // Pruning every activation leaves 3 × 2 + 2 = 8 levels: one more than N = 2^14 holds.
    let mut pruned = full_model(Architecture::Stgcn3x128, 25, 64, 1);
    for b in &mut pruned.blocks {
        for act in [&mut b.act1, &mut b.act2] {
            *act = FoldedActivation::Poly {
                a: Array1::zeros(25),
                b: Array1::ones(25),
                c: Array1::zeros(25),
            };
        }
    }
    let (p, plan) = choose_preset(&pruned, Packing::Ama).unwrap();
    assert_eq!((plan.depth, p.name), (8, "N15_L17_S40_128BIT"));
    // Two pruned blocks (2 × 2 + 2 = 6 levels) fit N = 2^14.
    let mut two = pruned.clone();
    two.blocks.pop();
    let (p, plan) = choose_preset(&two, Packing::Ama).unwrap();
    assert_eq!((plan.depth, p.name), (6, "N14_L7_S40_128BIT"));
    // STGCN-6-256: 26 levels → N = 2^16.
    let six = full_model(Architecture::Stgcn6x256, 25, 64, 1);
    let (p, plan) = choose_preset(&six, Packing::Ama).unwrap();
    assert_eq!((plan.depth, p.name), (26, "N16_L37_S40_128BIT"));
    // Ten 4-level blocks: 42 levels exceed the largest preset (37).
    let mut deep = six.clone();
    let extra = deep.blocks[5].clone();
    while deep.blocks.len() < 10 {
        deep.blocks.push(extra.clone());
    }
    let err = choose_preset(&deep, Packing::Ama).unwrap_err();
    assert!(
        matches!(
            err,
            HeGcnError::DepthExceeded {
                needed: 42,
                available: 37
            }
        ),
        "{err}"
    );
    // Compiling against too small a parameter set is refused the same way.
    let small = test_params(6, 4);
    let tiny = small_model(4, 8, 1, 8, ActivationKind::Square, &[], 1);
    let err = HeStgcn::compile(&tiny, Packing::Ama, &small).unwrap_err();
    assert!(
        matches!(
            err,
            HeGcnError::DepthExceeded {
                needed: 14,
                available: 4
            }
        ),
        "{err}"
    );
    // A kept ReLU has no HE evaluation.
    let mut relu = tiny.clone();
    relu.blocks[0].act1 = FoldedActivation::Relu {
        keep: vec![true; 4],
    };
    assert!(matches!(
        level_plan(&relu).unwrap_err(),
        HeGcnError::UnsupportedActivation {
            block: 0,
            site: 0,
            ..
        }
    ));
}

/// `planned_op_counts` equals the measured counts of every stage, field by field (rotations,
/// key switches, decompositions, products, additions, rescales, level drops), for x² and
/// per-node polynomial models, with pruned nodes and sites, one and several ciphertexts per
/// node, under both packings.
#[test]
fn planned_op_counts_equal_measured() {
    let cases = [
        (
            small_model(
                5,
                16,
                2,
                8,
                ActivationKind::Square,
                &[(0, 1, vec![2]), (2, 0, vec![0, 1, 2, 3, 4])],
                51,
            ),
            11,
            random_input(3, 16, 5, 2, 52),
        ),
        (
            small_model(4, 8, 1, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 53),
            6,
            random_input(3, 8, 4, 1, 54),
        ),
    ];
    for (model, log_n, x) in &cases {
        let params = test_params(*log_n, level_plan(model).unwrap().depth);
        for packing in [Packing::Ama, Packing::ChannelMajor] {
            let he = HeStgcn::compile(model, packing, &params).unwrap();
            let k = keys(&he, 9);
            let ct = he.encrypt_input(&k.pk, x.view()).unwrap();
            let (_, reports) = he.forward(&k.eval, &ct).unwrap();
            let planned = he.planned_op_counts();
            assert_eq!(planned.len(), reports.len());
            for (p, r) in planned.iter().zip(&reports) {
                assert_eq!(p.name, r.name);
                assert_eq!(p.counts, r.counts, "{packing:?} log_n {log_n} {}", p.name);
            }
            let total = counts_sum(reports.iter().map(|r| &r.counts));
            assert_eq!(
                crate::he_ops(&total),
                total.add
                    + total.mul_plain
                    + total.mul_const
                    + total.mul
                    + total.relinearize
                    + total.rotate
                    + total.rescale
                    + total.drop_level
            );
        }
    }
}

/// The plaintext cache: a second forward pass reuses the stored plaintexts (hits, no new
/// entries), gives the same logits up to fresh encryption noise, and never holds more than
/// its bound; a bound smaller than one plaintext stores nothing and changes nothing.
#[test]
fn plaintext_cache_is_bounded_and_reused() {
    let model = small_model(4, 8, 1, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 61);
    let x = random_input(3, 8, 4, 1, 62);
    let params = test_params(6, level_plan(&model).unwrap().depth);
    let want = folded_logits(&model, &x);
    let mag = want.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1.0);
    for packing in [Packing::Ama, Packing::ChannelMajor] {
        let he = HeStgcn::compile(&model, packing, &params).unwrap();
        let k = keys(&he, 4);
        let run = || {
            let ct = he.encrypt_input(&k.pk, x.view()).unwrap();
            let (l, _) = he.forward(&k.eval, &ct).unwrap();
            he.decrypt_logits(&k.sk, &l).unwrap()
        };
        he.set_plaintext_cache_budget(1 << 30);
        let first = run();
        let s1 = he.plaintext_cache_stats();
        assert!(s1.entries > 0 && s1.misses >= s1.entries as u64, "{s1:?}");
        let second = run();
        let s2 = he.plaintext_cache_stats();
        assert_eq!(s2.entries, s1.entries, "{packing:?}: nothing new to store");
        assert_eq!(s2.misses, s1.misses, "{packing:?}: every lookup hits");
        assert!(s2.hits > s1.hits && s2.bytes <= s2.budget_bytes);
        for l in [&first, &second] {
            for (a, b) in l.iter().zip(&want) {
                assert!((a - b).abs() <= TOL * mag, "{packing:?}: {a} vs {b}");
            }
        }
        // A bound below one plaintext (64 coefficients × limbs × 8 bytes) stores nothing.
        he.set_plaintext_cache_budget(0);
        assert_eq!(he.plaintext_cache_stats().entries, 0);
        he.set_plaintext_cache_budget(100);
        let third = run();
        let s3 = he.plaintext_cache_stats();
        assert_eq!((s3.entries, s3.bytes, s3.hits), (0, 0, 0), "{s3:?}");
        for (a, b) in third.iter().zip(&want) {
            assert!((a - b).abs() <= TOL * mag);
        }
    }
}

/// Several ciphertexts per node (32 slots, blocks of 16 frames: B = 2, 8 and 16 channels =
/// 4 and 8 ciphertexts per node): the temporal convolution's planned rotations equal the
/// multi-ciphertext formula of the `model` docs, `min(n·(B·K_t − 1), min_{n1} n·(n1·K_t − 1)
/// + n·(B/n1 − 1))` per node.
#[test]
fn multi_ciphertext_temporal_rotations_match_formula() {
    let model = small_model(4, 16, 1, 8, ActivationKind::Square, &[], 71);
    let params = test_params(6, level_plan(&model).unwrap().depth);
    let he = HeStgcn::compile(&model, Packing::Ama, &params).unwrap();
    let nb = he.input_layout().blocks_per_ct();
    assert_eq!(nb, 2);
    let kt = model.temporal_kernel;
    let formula = |c: usize| {
        let n = c / nb;
        let mut best = n * (nb * kt - 1);
        let mut n1 = 1;
        while n1 <= nb {
            best = best.min(n * (n1 * kt - 1) + n * (nb / n1 - 1));
            n1 *= 2;
        }
        best
    };
    let planned = he.planned_counts();
    for i in [0, 2] {
        let blk = &model.blocks[i];
        assert!(matches!(
            blk.residual,
            FoldedResidual::None | FoldedResidual::Identity
        ));
        let p = planned
            .iter()
            .find(|p| p.name == format!("block{i}.tcn"))
            .unwrap();
        assert_eq!(
            p.rotations,
            4 * formula(blk.out_channels),
            "block{i}: C = {}",
            blk.out_channels
        );
    }
}

/// A partial budget: the cache fills up to its bound and no further (bytes held ≤ budget,
/// fewer entries than an unbounded cache), later lookups of unstored diagonals encode on the
/// fly, and the logits are unchanged.
#[test]
fn plaintext_cache_respects_a_partial_budget() {
    let model = small_model(4, 8, 1, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 63);
    let x = random_input(3, 8, 4, 1, 64);
    let params = test_params(6, level_plan(&model).unwrap().depth);
    let want = folded_logits(&model, &x);
    let mag = want.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1.0);
    let he = HeStgcn::compile(&model, Packing::Ama, &params).unwrap();
    let k = keys(&he, 5);
    let run = || {
        let ct = he.encrypt_input(&k.pk, x.view()).unwrap();
        let (l, _) = he.forward(&k.eval, &ct).unwrap();
        he.decrypt_logits(&k.sk, &l).unwrap()
    };
    he.set_plaintext_cache_budget(1 << 30);
    run();
    let full = he.plaintext_cache_stats();
    assert!(full.entries > 3, "{full:?}");
    for budget in [full.bytes / 3, full.bytes / 2, full.bytes - 1] {
        he.set_plaintext_cache_budget(0);
        he.set_plaintext_cache_budget(budget);
        for _ in 0..2 {
            let l = run();
            let s = he.plaintext_cache_stats();
            println!("budget {budget}: {s:?}");
            assert!(s.bytes <= budget, "{s:?}");
            assert!(s.entries > 0 && s.entries < full.entries, "{s:?}");
            for (a, b) in l.iter().zip(&want) {
                assert!((a - b).abs() <= TOL * mag, "{a} vs {b}");
            }
        }
    }
}

/// With the quadratic coefficients folded into the weights (AMA), a poly model keeps the full
/// Δ = 2^40 precision: the logit error is far below the `TOL` that the reduced-scale
/// evaluation of general coefficients needs (channel-major, printed for comparison).
#[test]
fn ama_coefficient_folding_keeps_full_precision() {
    let model = small_model(5, 8, 1, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 71);
    let x = random_input(3, 8, 5, 1, 72);
    let params = test_params(11, level_plan(&model).unwrap().depth);
    let want = folded_logits(&model, &x);
    let mag = want.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1.0);
    let mut errs = Vec::new();
    for packing in [Packing::Ama, Packing::ChannelMajor] {
        let he = HeStgcn::compile(&model, packing, &params).unwrap();
        let k = keys(&he, 8);
        let ct = he.encrypt_input(&k.pk, x.view()).unwrap();
        let (l, _) = he.forward(&k.eval, &ct).unwrap();
        let l = he.decrypt_logits(&k.sk, &l).unwrap();
        let err = l
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("{packing:?}: max logit error {err:.3e} (max |logit| {mag:.3e})");
        errs.push(err);
    }
    let he = HeStgcn::compile(&model, Packing::Ama, &params).unwrap();
    let (g, f) = he.stage_node_scales(0).unwrap();
    assert!(
        g.iter().chain(f).any(|&s| s != 1.0),
        "poly coefficients are folded"
    );
    assert!(errs[0] <= 1e-6 * mag, "AMA error {} > 1e-6·{mag}", errs[0]);
}

/// Several samples in one pass (`compile_batched`): each sample's logits equal its own
/// plaintext forward pass, at the rotations and products of a single sample.
#[test]
fn batched_clips_match_per_clip_logits() {
    let model = small_model(4, 8, 1, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 81);
    let params = test_params(10, level_plan(&model).unwrap().depth);
    let max = HeStgcn::max_clips(&model, params.slots());
    assert!(max >= 3, "{max}");
    let clips = 3;
    let he = HeStgcn::compile_batched(&model, Packing::Ama, &params, clips).unwrap();
    let single = HeStgcn::compile(&model, Packing::Ama, &params).unwrap();
    assert_eq!(he.clips(), clips);
    assert_eq!(he.planned_op_counts(), single.planned_op_counts());
    assert_eq!(he.rotation_steps(), single.rotation_steps());
    let xs: Vec<Array4<f64>> = (0..clips)
        .map(|i| random_input(3, 8, 4, 1, 90 + i as u64))
        .collect();
    let k = keys(&he, 3);
    let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
    let ct = he.encrypt_clips(&k.pk, &views).unwrap();
    let (l, _) = he.forward(&k.eval, &ct).unwrap();
    let l = he.decrypt_logits(&k.sk, &l).unwrap();
    let nq = model.num_classes;
    assert_eq!(l.len(), clips * nq);
    for (i, x) in xs.iter().enumerate() {
        let want = folded_logits(&model, x);
        let mag = want.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1.0);
        for (a, b) in l[i * nq..(i + 1) * nq].iter().zip(&want) {
            assert!((a - b).abs() <= TOL * mag, "clip {i}: {a} vs {b}");
        }
    }
    // Too many samples for the slots, or for the compiled pass, are refused.
    assert!(matches!(
        HeStgcn::compile_batched(&model, Packing::Ama, &params, max + 1),
        Err(HeGcnError::LayoutTooLarge { .. })
    ));
    assert!(HeStgcn::compile_batched(&model, Packing::ChannelMajor, &params, 2).is_err());
    let four: Vec<_> = (0..clips + 1).map(|_| xs[0].view()).collect();
    assert!(matches!(
        he.encrypt_clips(&k.pk, &four),
        Err(HeGcnError::Shape { .. })
    ));
}

/// Lockstep BSGS: the AMA temporal convolution of a multi-ciphertext model (nodes share the
/// kernel) encodes each diagonal once per chunk of nodes. With every node in one chunk the
/// logits equal the plaintext model's and those of the one-chunk-per-thread evaluation, the
/// operation counts equal the plan either way, and fewer weight plaintexts are encoded.
#[test]
fn lockstep_nodes_share_encoded_diagonals() {
    let model = small_model(6, 16, 1, 8, ActivationKind::Square, &[], 81);
    let x = random_input(3, 16, 6, 1, 82);
    let params = test_params(6, level_plan(&model).unwrap().depth);
    let he = HeStgcn::compile(&model, Packing::Ama, &params).unwrap();
    assert!(
        (0..model.blocks.len())
            .any(|i| matches!(he.temporal_strategy(i), Some(crate::Strategy::Bsgs { .. }))),
        "the test needs a BSGS temporal map"
    );
    let k = keys(&he, 8);
    let want = folded_logits(&model, &x);
    let mag = want.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1.0);
    let mut runs = Vec::new();
    for budget in [1, 0] {
        he.set_lockstep_budget(budget);
        he.set_plaintext_cache_budget(0);
        let ct = he.encrypt_input(&k.pk, x.view()).unwrap();
        let (l, reports) = he.forward(&k.eval, &ct).unwrap();
        for (p, r) in he.planned_op_counts().iter().zip(&reports) {
            assert_eq!(p.counts, r.counts, "budget {budget}: {}", p.name);
        }
        let logits = he.decrypt_logits(&k.sk, &l).unwrap();
        for (a, b) in logits.iter().zip(&want) {
            assert!((a - b).abs() <= TOL * mag, "budget {budget}: {a} vs {b}");
        }
        runs.push((logits, he.plaintext_cache_stats().misses));
    }
    let threads = rayon::current_num_threads();
    if threads < 6 {
        assert!(
            runs[1].1 < runs[0].1,
            "one chunk of 6 nodes encodes less than chunks of {threads}: {} vs {}",
            runs[1].1,
            runs[0].1
        );
    }
    for (a, b) in runs[0].0.iter().zip(&runs[1].0) {
        assert!((a - b).abs() <= TOL * mag);
    }
}

/// The returned logits show the logits and nothing else: a sanitized reply (masked head,
/// re-randomized with the client's level-0 public key, flooded) decrypts to the plaintext
/// logits at the logit slots within the flood's stated error, and to flood noise in every other
/// slot: within the flood's width and uncorrelated with the dense layer's partial sums, which the
/// unmasked head (the old reply) held in those slots.
#[test]
fn returned_logits_hide_other_slots() {
    let model = small_model(4, 8, 1, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 61);
    let params = test_params(10, level_plan(&model).unwrap().depth);
    let he = HeStgcn::compile(&model, Packing::Ama, &params).unwrap();
    let k = keys(&he, 6);
    let x = random_input(3, 8, 4, 1, 62);
    let mut cur = he.encrypt_input(&k.pk, x.view()).unwrap();
    for i in 0..he.num_blocks() {
        cur = he.block(&k.eval, i, &cur).unwrap();
    }
    let old = he.head_unmasked(&k.eval, &cur).unwrap();
    let masked = he.head(&k.eval, &cur).unwrap();
    assert_eq!(masked.cts[0].level(), he.output_level());
    // The client sends its public key at the output level only.
    let pk_out = k.pk.at_level(he.output_level()).unwrap();
    let cfg = crate::FloodConfig {
        flood_bits: 8,
        eval_error_bound: 2f64.powi(-20),
    };
    let reply = he.sanitize_logits(&k.eval, &masked, &pk_out, &cfg).unwrap();
    let enc = ckks::Encoder::new(&params);
    let dec = |c: &ckks::Ciphertext| enc.decode(&k.sk.decrypt(c).unwrap());
    let sd = he
        .logit_flood(&cfg)
        .slot_error_sd(params.n(), params.default_scale());
    let want = folded_logits(&model, &x);
    let logit_tol = 8.0 * sd + 1e-6;
    let (mut partial, mut flooded, mut unflooded) = (Vec::new(), Vec::new(), Vec::new());
    for (i, ct) in reply.cts.iter().enumerate() {
        let (o, m, r) = (dec(&old[i]), dec(&masked.cts[i]), dec(ct));
        for slot in 0..params.slots() {
            match reply.positions.iter().position(|&p| p == (i, slot)) {
                Some(q) => {
                    assert!(
                        (r[slot] - want[q]).abs() <= logit_tol,
                        "logit {q}: {} vs {}",
                        r[slot],
                        want[q]
                    );
                    assert!((o[slot] - want[q]).abs() <= 1e-6, "unmasked logit {q}");
                }
                None => {
                    partial.push(o[slot]);
                    unflooded.push(m[slot]);
                    flooded.push(r[slot]);
                }
            }
        }
    }
    let max_abs = |v: &[f64]| v.iter().map(|x| x.abs()).fold(0.0, f64::max);
    // The old reply leaked partial sums of the dense layer in the other slots.
    // (every slot of a class block but its first; the unused blocks hold zeros).
    let nonzero = partial.iter().filter(|p| p.abs() > 1e-3).count();
    let classes = model.num_classes;
    assert!(nonzero >= classes * 4, "{nonzero} nonzero partial sums");
    assert!(max_abs(&partial) > 1e-2, "{}", max_abs(&partial));
    // The mask alone leaves noise far below them; the flood then dominates.
    assert!(
        max_abs(&partial) > 1e3 * max_abs(&unflooded),
        "the mask keeps partial sums"
    );
    assert!(
        max_abs(&unflooded) < 1e-2 * sd,
        "{} vs flood sd {sd}",
        max_abs(&unflooded)
    );
    // Masked and flooded: within the flood's width, spread like it, uncorrelated with them.
    assert!(
        max_abs(&flooded) <= 8.0 * sd,
        "{} > 8·{sd}",
        max_abs(&flooded)
    );
    let rms = (flooded.iter().map(|v| v * v).sum::<f64>() / flooded.len() as f64).sqrt();
    assert!(
        (0.7..1.3).contains(&(rms / sd)),
        "rms {rms} vs flood sd {sd}"
    );
    let corr = correlation(&partial, &flooded);
    assert!(corr.abs() < 0.2, "correlation {corr} with the partial sums");
    println!(
        "flood sd {sd:.3e}, max |partial sum| {:.3e}, max |masked| {:.3e}, correlation {corr:.3}",
        max_abs(&partial),
        max_abs(&unflooded)
    );
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}
