//! Several samples in one forward pass (`compile_batched`): per-sample logits at the cost of
//! one sample, and refusal of too many samples.

use super::*;

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
