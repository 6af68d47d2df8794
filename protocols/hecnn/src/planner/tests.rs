//! The planner on the committed models: with a fixed cost table it picks the batch layout for
//! throughput and the single-image layout for latency; the op counts it prices are the compiled
//! layouts' planned (and measured) counts; the probe-driven path runs end to end.

use super::*;
use crate::layout::{CnnLayout, LayoutKind};
use crate::lola::{LolaCnn, LolaPlan};
use crate::tests::{committed, keys_with_rotations, Keys};
use ckks::cost::{self as weights, OpCosts, OpKind};

/// A fixed (non-probed) table in milliseconds per limb, from the relative weights of
/// [`ckks::cost`] (inner product = 1) and rough ratios for the rest.
fn fixed(preset: &str, threads: usize) -> OpCosts {
    OpCosts::from_table(preset, threads, &[1, 3, 5], |k, l| {
        let w = match k {
            OpKind::Add | OpKind::DropLevel => 0.02,
            OpKind::MulPlain => weights::PRODUCT_Q,
            OpKind::MulPlainExt => weights::PRODUCT_QP,
            OpKind::MulConst => 0.12,
            OpKind::Tensor => 0.5,
            OpKind::Relinearize | OpKind::Rotate => 0.05,
            OpKind::InnerProduct => weights::INNER_PRODUCT,
            OpKind::Decompose => weights::DECOMPOSE,
            OpKind::ModDown => weights::MOD_DOWN,
            OpKind::Rescale => 0.5,
            OpKind::Encode => 0.35,
            OpKind::Sanitize => 1.5,
        };
        1e-3 * w * (l + 1) as f64
    })
    .unwrap()
}

pub(super) fn fixed_tables() -> Vec<OpCosts> {
    vec![fixed("N14_L7_S40_128BIT", 1)]
}

#[test]
fn batch_for_throughput_and_single_image_for_latency_on_the_committed_models() {
    for name in ["mnist-cryptonets", "mnist-wide"] {
        let model = committed(name);
        let cands = candidates(&model).unwrap();
        assert_eq!(cands[0].layout, LayoutKind::Batch);
        assert!(cands.len() > 10, "{name}: the splits of both dense layers");
        let lat = choose(&cands, &fixed_tables(), Objective::Latency).unwrap();
        assert_eq!(lat.chosen().candidate.layout, LayoutKind::Lola, "{name}");
        let thr = choose(&cands, &fixed_tables(), Objective::Throughput).unwrap();
        assert_eq!(thr.chosen().candidate.layout, LayoutKind::Batch, "{name}");
        assert!(thr.chosen().images_per_hour() > lat.chosen().images_per_hour());
        // Ranked best first; the chosen split is no worse than the fixed-weight default.
        let r = &lat.ranked;
        assert!(r.windows(2).all(|w| w[0].total_s <= w[1].total_s));
        let default = LolaPlan::new(&model, &lat.chosen().candidate.preset.build().unwrap())
            .unwrap()
            .splits();
        let d = r
            .iter()
            .find(|e| e.candidate.splits == default.to_vec())
            .unwrap();
        assert!(lat.chosen().total_s <= d.total_s);
        let table = lat.table();
        assert!(
            table.contains("| fc1 | lola | 3 |") && table.contains("**total**"),
            "{table}"
        );
        assert!(lat.ranking().contains("| batch |"), "{}", lat.ranking());
        let ranking = thr.ranking();
        assert!(ranking.contains("| matrix |"), "{ranking}");
        println!("{name}\n{ranking}");
    }
}

#[test]
fn the_priced_counts_are_the_compiled_layouts_planned_and_measured_counts() {
    let model = committed("mnist-cryptonets");
    let cands = candidates(&model).unwrap();
    // A split other than the default, to check that the chosen splits are what runs.
    let c = cands
        .iter()
        .find(|c| c.layout == LayoutKind::Lola && c.splits == [4, 16])
        .unwrap();
    let params = c.preset.build().unwrap();
    let he = LolaCnn::with_splits(&model, &params, [4, 16]).unwrap();
    assert_eq!(he.planned_stages(), c.stages);
    assert_eq!(he.planned_op_counts(), c.op_counts());
    assert_eq!(he.dense_shapes()[0].2, 4);
    let Keys { sk, pk, eval } = keys_with_rotations(&params, &he.rotation_steps());
    let x = datasets::mnist::load_bundled(datasets::mnist::Split::Test)
        .unwrap()
        .head(1)
        .images_f64();
    let out = he
        .forward(
            &eval,
            &he.encrypt_image(&pk, x.row(0).as_slice().unwrap()).unwrap(),
        )
        .unwrap();
    assert_eq!(eval.counters(), c.op_counts());
    let got = he.decrypt_logits(&sk, &out).unwrap();
    let want = model.logits(x.view()).unwrap();
    for (a, b) in got.iter().zip(want.row(0)) {
        assert!(
            (a - b).abs() < 1e-3,
            "{a} vs {b} (same tolerance as the LoLa tests)"
        );
    }
    let m = cands
        .iter()
        .find(|c| c.layout == LayoutKind::Matrix)
        .unwrap();
    let mh = crate::MatrixCnn::new(&model, &m.preset.build().unwrap()).unwrap();
    assert_eq!((m.images, m.outputs), (mh.batch_capacity(), 1));
    assert_eq!(mh.planned_stages(), m.stages);
    let batch = &cands[0];
    let bh = crate::BatchCnn::new(&model, &batch.preset.build().unwrap()).unwrap();
    assert_eq!(batch.op_counts(), bh.planned_op_counts());
}

#[test]
fn the_probe_prices_every_candidate_and_bad_settings_are_refused() {
    let model = committed("mnist-cryptonets");
    let cands = candidates(&model).unwrap();
    let lola: Vec<Candidate> = cands
        .iter()
        .filter(|c| c.layout == LayoutKind::Lola)
        .take(3)
        .cloned()
        .collect();
    let costs = probe_costs(&lola, &[1], 1).unwrap();
    assert_eq!((costs.len(), costs[0].threads()), (1, 1));
    assert_eq!(costs[0].levels(), &[1, 3, 5]);
    let plan = choose(&lola, &costs, Objective::Latency).unwrap();
    assert!(plan
        .ranked
        .iter()
        .all(|e| e.total_s.is_finite() && e.total_s > 0.0));
    // No costs for the batch layout's preset in a table for another preset.
    let other = vec![fixed("N15_L17_S40_128BIT", 1)];
    let e = choose(&cands, &other, Objective::Latency)
        .unwrap_err()
        .to_string();
    assert!(e.contains("N14_L7_S40_128BIT"), "{e}");
    let e = probe_costs(&lola, &[0], 1).unwrap_err().to_string();
    assert!(e.contains("thread count"), "{e}");
    let e = "speed".parse::<Objective>().unwrap_err().to_string();
    assert!(e.contains("speed"), "{e}");
    let mut p = LolaPlan::new(&model, &cands[1].preset.build().unwrap()).unwrap();
    let e = p.set_splits([7, 99]).unwrap_err().to_string();
    assert!(e.contains("fc2") && e.contains("99"), "{e}");
    assert_eq!(
        p.splits()[1],
        LolaPlan::new(&model, &cands[1].preset.build().unwrap())
            .unwrap()
            .splits()[1]
    );
}
