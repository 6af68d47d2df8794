//! Every encrypted stage against its plaintext twin (both packings, x² and per-node polynomial
//! models, pruned nodes and sites, one and several ciphertexts per node), the plaintext chain
//! against `FoldedModel::forward`, and the precision kept by AMA coefficient folding.

use super::*;

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
