//! Operation counts: measured rotations and products against the formulas of the
//! `model::counts` docs (one and several ciphertexts per node), and the compiled plan's
//! predictions (`planned_counts`, `planned_op_counts`) against measured forward passes.

use super::*;

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

/// The formulas' `(graph-conv rotations, graph-conv products, temporal rotations)` of block `i`
/// of `model` (`v` nodes, `bl` blocks per ciphertext) under `packing`.
fn block_formula(
    model: &FoldedModel,
    packing: Packing,
    i: usize,
    v: usize,
    bl: usize,
) -> (usize, usize, usize) {
    let kt = model.temporal_kernel;
    let (ci, co) = (model.blocks[i].in_channels, model.blocks[i].out_channels);
    let (dist, nnz) = distances(model, bl);
    let conv_res = matches!(model.blocks[i].residual, FoldedResidual::Conv { .. });
    match packing {
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
    }
}

/// Measured rotations, products, ct×ct products and rescales per stage equal the formulas of
/// the `model::counts` docs (one ciphertext per node: C ≤ B), and the compiled plan's counts.
#[test]
fn op_counts_match_formulas() {
    let (v, t, m) = (5, 16, 2);
    let model = small_model(v, t, m, 8, ActivationKind::Square, &[(0, 1, vec![2])], 31);
    let x = random_input(3, t, v, m, 32);
    let depth = level_plan(&model).unwrap().depth;
    let params = test_params(11, depth);
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
        for (i, &(_, co)) in chans.iter().enumerate() {
            let g = &stage(&reports, &format!("block{i}.gcn")).counts;
            let tc = &stage(&reports, &format!("block{i}.tcn")).counts;
            let (g_rot, g_pt, t_rot) = block_formula(&model, packing, i, v, bl);
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

/// Several ciphertexts per node (32 slots, blocks of 16 frames: B = 2, 8 and 16 channels =
/// 4 and 8 ciphertexts per node): the temporal convolution's planned rotations equal the
/// multi-ciphertext formula of the `model::counts` docs, `min(n·(B·K_t − 1), min_{n1} n·(n1·K_t − 1)
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

/// A site-structured linearisation (the shape `ml::models::stgcn_gates::project` returns: a few
/// sites keep some of their nodes, every other site is the identity on all nodes) under AMA:
/// each linear site gives back its level, the maps around a linear site share one
/// (`open_maps`: the temporal map of block 0 and the graph map of block 2 are open, two more
/// levels), each activation stage relinearises only the ciphertexts of its kept nodes, and the
/// encrypted logits match the plaintext ones.
#[test]
fn site_structured_linearisation_drops_levels_and_squarings() {
    let v = 5;
    let all: Vec<usize> = (0..v).collect();
    // Sites kept: block 0 site 0 (nodes 0, 1, 3) and block 1 site 1 (node 4); 4 sites linear.
    let prune = [
        (0, 0, vec![2, 4]),
        (0, 1, all.clone()),
        (1, 0, all.clone()),
        (1, 1, vec![0, 1, 2, 3]),
        (2, 0, all.clone()),
        (2, 1, all.clone()),
    ];
    let full = small_model(v, 16, 1, 8, ActivationKind::Square, &[], 81);
    let gated = small_model(v, 16, 1, 8, ActivationKind::Square, &prune, 81);
    let (d_full, d_gated) = (
        level_plan(&full).unwrap().depth,
        level_plan(&gated).unwrap().depth,
    );
    assert_eq!(d_full - d_gated, 6);
    assert_eq!(
        crate::open_maps(&gated),
        vec![[false, true], [false, false], [true, false]]
    );
    assert_eq!(
        crate::level_plan_unfused(&gated).unwrap().depth,
        d_gated + 2
    );
    let x = random_input(3, 16, v, 1, 82);
    let mut relin = Vec::new();
    for (model, depth) in [(&full, d_full), (&gated, d_gated)] {
        let he = HeStgcn::compile(model, Packing::Ama, &test_params(11, depth)).unwrap();
        let k = keys(&he, 3);
        let ct = he.encrypt_input(&k.pk, x.view()).unwrap();
        let (logits, reports) = he.forward(&k.eval, &ct).unwrap();
        let got = he.decrypt_logits(&k.sk, &logits).unwrap();
        let want = folded_logits(model, &x);
        let mag = want.iter().fold(1.0_f64, |m, w| m.max(w.abs()));
        for (a, b) in got.iter().zip(want.iter()) {
            assert!((a - b).abs() <= TOL * mag, "logit {a} vs {b} (scale {mag})");
        }
        relin.push(
            reports
                .iter()
                .map(|r| (r.name.clone(), r.counts.relinearize))
                .collect::<Vec<_>>(),
        );
    }
    let kept = |name: &str| match name {
        "block0.act1" => 3,
        "block1.act2" => 1,
        _ => 0,
    };
    for (f, g) in relin[0].iter().zip(&relin[1]) {
        if f.0.contains(".act") {
            // Kept nodes' ciphertexts only: |K| / V of the unpruned stage's squarings.
            assert_eq!(g.1 * v as u64, f.1 * kept(&f.0), "{}", f.0);
        } else {
            assert_eq!(g.1, f.1, "{}", f.0);
        }
    }
    let total = |r: &Vec<(String, u64)>| r.iter().map(|x| x.1).sum::<u64>();
    assert!(total(&relin[1]) * 5 < total(&relin[0]));
}
