//! The level planner: preset choice by depth, and refusal of models deeper than every preset,
//! of too small a parameter set and of kept ReLU nodes.

use super::*;

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
    // Pruning every activation leaves six linear maps, fused in pairs (`open_maps`): 3 + 2 = 5
    // levels (8 unfused, one more than N = 2^14 holds), so N = 2^14.
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
    assert_eq!((plan.depth, p.name), (5, "N14_L7_S40_128BIT"));
    assert_eq!(crate::level_plan_unfused(&pruned).unwrap().depth, 8);
    // Two pruned blocks: 2 + 2 = 4 levels.
    let mut two = pruned.clone();
    two.blocks.pop();
    let (p, plan) = choose_preset(&two, Packing::Ama).unwrap();
    assert_eq!((plan.depth, p.name), (4, "N14_L7_S40_128BIT"));
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
