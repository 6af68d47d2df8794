//! Mixed packing plans (`HeStgcn::compile_plan`): a plan that converts between AMA and
//! channel-major inside its linear maps matches the plaintext model (tolerance `TOL`, the
//! channel-major budget: its general activation coefficients), its measured counts equal its
//! planned counts, and the planner's priced stages equal the compiled plan's.

use super::*;
use crate::planner::{ranking_table, Planner};
use crate::{BlockPacking, PackingPlan};
use ckks::cost::{OpCosts, OpKind};

const A: Packing = Packing::Ama;
const C: Packing = Packing::ChannelMajor;

/// AMA input; block 0: graph conv to AMA, temporal conv to channel-major; block 1: graph conv
/// back to AMA, temporal conv AMA; block 2: graph conv to channel-major, temporal back to AMA:
/// four fused conversions, every kind of crossing (input, middle, output of a block).
fn mixed_plan() -> PackingPlan {
    let bp = |mid, out| BlockPacking { mid, out };
    PackingPlan {
        input: A,
        blocks: vec![bp(A, C), bp(A, A), bp(C, A)],
    }
}

/// A fixed table: milliseconds proportional to the limbs, rotations' parts dearer than
/// products (the shape of a probe).
fn fixed(params: &str) -> OpCosts {
    OpCosts::from_table(params, 1, &[1, 4], |k, l| {
        let w = match k {
            OpKind::InnerProduct | OpKind::Decompose | OpKind::ModDown => 1.0,
            OpKind::Tensor | OpKind::Encode => 0.4,
            OpKind::MulPlain | OpKind::MulPlainExt => 0.15,
            OpKind::Sanitize => 2.0,
            _ => 0.05,
        };
        1e-3 * w * (l + 1) as f64
    })
    .unwrap()
}

#[test]
fn mixed_plan_matches_plaintext_and_its_planned_counts() {
    // Poly activations (AMA folding and channel-major general sites in one model), a pruned
    // node, two persons.
    let model = small_model(5, 8, 2, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 71);
    let params = test_params(10, level_plan(&model).unwrap().depth);
    let plan = mixed_plan();
    assert_eq!(
        (plan.label().as_str(), plan.conversions()),
        ("A|AC|AA|CA", 4)
    );
    let he = HeStgcn::compile_plan(&model, &plan, &params).unwrap();
    assert_eq!(he.packing_plan(), &plan);
    assert_eq!(he.block_mid_layout(2).unwrap().packing, C);
    assert_eq!(he.block_output_layout(0).unwrap().packing, C);
    let k = keys(&he, 7);
    let x = random_input(3, 8, 5, 2, 72);
    let ct = he.encrypt_input(&k.pk, x.view()).unwrap();
    let (logits, reports) = he.forward(&k.eval, &ct).unwrap();
    let got = he.decrypt_logits(&k.sk, &logits).unwrap();
    let want = folded_logits(&model, &x);
    let err = got
        .iter()
        .zip(want.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let mag = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    println!("mixed plan: max logit err {err:.3e}, max |logit| {mag:.3e}");
    assert!(err <= TOL * mag.max(1.0), "{err} vs {mag}");
    // Measured counts = planned counts = the planner's priced stages.
    let planned = he.planned_op_counts();
    let options = HeStgcn::stage_options(&model, &params).unwrap();
    let costs = fixed(params.name());
    let est = Planner::new(&options, &costs).estimate(&plan).unwrap();
    assert_eq!(
        (planned.len(), est.stages.len()),
        (reports.len(), reports.len())
    );
    let levels = level_plan(&model).unwrap();
    for (k, (p, r)) in planned.iter().zip(&reports).enumerate() {
        assert_eq!(p.counts, r.counts, "{}", p.name);
        assert_eq!(
            (&est.stages[k].layer, est.stages[k].ops),
            (&p.name, p.counts)
        );
        let level_in = if k == 0 {
            levels.depth
        } else {
            levels.stages[k - 1].level_after
        };
        assert_eq!(est.stages[k].level, level_in, "{}", p.name);
    }
    // The conversions cost rotations: this plan has more than all-AMA.
    let ama = HeStgcn::compile(&model, A, &params).unwrap();
    let rot = |v: &[crate::PlannedStage]| counts_sum(v.iter().map(|s| &s.counts)).rotate;
    assert!(rot(&planned) > rot(&ama.planned_op_counts()));
}

#[test]
fn planner_prices_every_plan_and_its_uniform_plans_are_the_compiled_packings() {
    let model = small_model(5, 8, 1, 8, ActivationKind::Square, &[], 73);
    let params = test_params(10, level_plan(&model).unwrap().depth);
    let options = HeStgcn::stage_options(&model, &params).unwrap();
    assert!(options.blocks.iter().all(|b| b.len() == 8) && options.head.len() == 2);
    let costs = fixed(params.name());
    let planner = Planner::new(&options, &costs);
    let ranked = planner.rank().unwrap();
    assert_eq!(ranked.len(), 1 << 7);
    assert!(ranked.windows(2).all(|w| w[0].1 <= w[1].1));
    for p in [A, C] {
        let uni = PackingPlan::uniform(p, 3);
        let est = planner.estimate(&uni).unwrap();
        let he = HeStgcn::compile(&model, p, &params).unwrap();
        let planned = he.planned_op_counts();
        for (s, q) in est.stages.iter().zip(&planned) {
            assert_eq!(s.ops, q.counts, "{p:?} {}", q.name);
        }
        assert!((est.total_s - planner.total(&uni).unwrap()).abs() < 1e-12);
        // The chosen plan is never dearer than a uniform one.
        assert!(ranked[0].1 <= est.total_s);
    }
    let (he, est, ranked2) = HeStgcn::compile_planned(&model, &params, &costs).unwrap();
    assert_eq!(he.packing_plan(), &ranked[0].0);
    assert_eq!(
        (est.plan.clone(), ranked2.len()),
        (ranked[0].0.clone(), 128)
    );
    let table = est.table();
    assert!(
        table.contains("| block0.gcn |") && table.contains("**total**"),
        "{table}"
    );
    let r = ranking_table(&ranked, 3);
    assert!(
        r.contains("| ama |") && r.contains("| channel-major |"),
        "{r}"
    );
    println!("{table}\n{r}");
    // A plan of another length is refused.
    let e = planner.estimate(&PackingPlan::uniform(A, 2)).unwrap_err();
    assert!(e.to_string().contains("packing plan blocks"), "{e}");
    let e = HeStgcn::compile_plan(&model, &PackingPlan::uniform(A, 4), &params).unwrap_err();
    assert!(e.to_string().contains("packing plan blocks"), "{e}");
}

#[test]
fn probed_costs_price_the_options() {
    let model = small_model(4, 8, 1, 8, ActivationKind::Square, &[], 75);
    let params = test_params(10, level_plan(&model).unwrap().depth);
    let options = HeStgcn::stage_options(&model, &params).unwrap();
    let costs = crate::planner::probe_costs(&params, &options, 1).unwrap();
    assert_eq!(costs.levels().len(), 3);
    let planner = Planner::new(&options, &costs);
    let ranked = planner.rank().unwrap();
    assert!(ranked.iter().all(|r| r.1.is_finite() && r.1 > 0.0));
}
