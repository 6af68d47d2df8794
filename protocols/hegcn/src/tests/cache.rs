//! Evaluation memory bounds: the plaintext cache (reuse across passes, full and partial
//! budgets) and lockstep BSGS over the nodes (each diagonal encoded once per chunk).

use super::*;
use crate::PlaintextCacheStats;

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

/// A stage-major pass as the experiments run it: each stage with keys restricted to its input
/// level (`GaloisKeys::restrict_to_level`) and the plaintext cache released after it gives
/// bit-for-bit the logits of `forward` with whole keys and a kept cache; the release frees
/// every entry and keeps the statistics.
#[test]
fn released_cache_and_level_keys_give_the_same_logits() {
    let model = small_model(4, 8, 1, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 65);
    let x = random_input(3, 8, 4, 1, 66);
    let params = test_params(6, level_plan(&model).unwrap().depth);
    for packing in [Packing::Ama, Packing::ChannelMajor] {
        let he = HeStgcn::compile(&model, packing, &params).unwrap();
        let mut kg = KeyGenerator::from_seed(&params, [9; 32]);
        let sk = kg.secret_key();
        let pk = kg.public_key(&sk).unwrap();
        let rk = kg.relin_key(&sk).unwrap();
        let gk = kg.galois_keys(&sk, &he.rotation_steps(), false).unwrap();
        let whole = Evaluator::new(&params)
            .with_relin_key(rk.clone())
            .with_galois_keys(gk.clone());
        let ct = he.encrypt_input(&pk, x.view()).unwrap();
        he.set_plaintext_cache_budget(1 << 30);
        let (want, _) = he.forward(&whole, &ct).unwrap();
        he.set_plaintext_cache_budget(0);
        he.set_plaintext_cache_budget(1 << 30);
        let mut level = he.plan().depth;
        let mut stage = he.plan().stages.iter();
        let mut eval_at = || {
            let l = level;
            level = stage.next().unwrap().level_after;
            Evaluator::new(&params)
                .with_relin_key(rk.restrict_to_level(&params, l).unwrap())
                .with_galois_keys(gk.restrict_to_level(&params, l).unwrap())
        };
        let release = |before: &PlaintextCacheStats| {
            let s = he.plaintext_cache_stats();
            he.release_plaintext_cache();
            let r = he.plaintext_cache_stats();
            assert_eq!((r.entries, r.bytes), (0, 0), "{packing:?}");
            assert_eq!((r.hits, r.misses), (s.hits, s.misses), "{packing:?}");
            assert!(s.misses >= before.misses);
            r
        };
        let mut stats = he.plaintext_cache_stats();
        let mut cur = ct.clone();
        for i in 0..he.num_blocks() {
            let g = he.gcn(&eval_at(), i, &cur).unwrap();
            stats = release(&stats);
            let h = he.activation(&eval_at(), i, 0, &g).unwrap();
            stats = release(&stats);
            let r = he.temporal(&eval_at(), i, &h, &cur).unwrap();
            stats = release(&stats);
            cur = he.activation(&eval_at(), i, 1, &r).unwrap();
            stats = release(&stats);
        }
        let got = he.head(&eval_at(), &cur).unwrap();
        release(&stats);
        assert_eq!(got.positions, want.positions);
        for (a, b) in got.cts.iter().zip(&want.cts) {
            assert_eq!(a.to_bytes(&params).unwrap(), b.to_bytes(&params).unwrap());
        }
        // A key restricted below a stage's input level is refused, not misused.
        let low = Evaluator::new(&params)
            .with_relin_key(rk.clone())
            .with_galois_keys(gk.restrict_to_level(&params, 0).unwrap());
        assert!(he.gcn(&low, 0, &ct).is_err() || he.block_rotation_steps(0, 0).is_empty());
    }
}
