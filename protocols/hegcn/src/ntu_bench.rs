//! NTU-shaped measurements (ignored by default; run with `--ignored --nocapture`):
//! planned op counts of STGCN-3-128 on the NTU RGB+D graph (V = 25, T = 256) under both
//! packings, and the latency of one graph-convolution stage at the 128-bit preset
//! `N15_L17_S40_128BIT`.

use std::time::Instant;

use ckks::{presets, Evaluator, KeyGenerator};
use datasets::skeleton::Graph;
use ndarray::Array4;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use stgcn::{spatial_partition, Architecture, FoldedModel, StGcn, StGcnConfig};

use crate::{choose_preset, HeStgcn, Packing};

/// The NTU RGB+D 25-joint skeleton (ST-GCN's `ntu-rgb+d` layout, 0-based), centre joint 20.
fn ntu_graph() -> ndarray::Array3<f64> {
    let g = Graph::ntu25();
    spatial_partition(g.num_nodes, &g.edges, g.center).unwrap()
}

fn ntu_model(divisor: usize) -> FoldedModel {
    let cfg = StGcnConfig::new(Architecture::Stgcn3x128, divisor, 3, 256, &ntu_graph(), 60);
    StGcn::new(cfg, 7).unwrap().fold()
}

#[test]
#[ignore = "compiles the full-width NTU model (~1 min); prints planned op counts"]
fn ntu_stgcn3_planned_counts() {
    let model = ntu_model(1);
    let (preset, plan) = choose_preset(&model, Packing::Ama).unwrap();
    println!("preset {} depth {}", preset.name, plan.depth);
    for s in &plan.stages {
        println!(
            "  {:12} levels {} level_after {}",
            s.name, s.levels, s.level_after
        );
    }
    let params = preset.build().unwrap();
    let ama = HeStgcn::compile(&model, Packing::Ama, &params).unwrap();
    let cm = HeStgcn::compile(&model, Packing::ChannelMajor, &params).unwrap();
    println!("stage        | AMA rot | AMA pt×ct | CM rot | CM pt×ct");
    let (pa, pc) = (ama.planned_counts(), cm.planned_counts());
    let (mut ta, mut tc) = ((0, 0), (0, 0));
    for (a, c) in pa.iter().zip(&pc) {
        println!(
            "{:12} | {:7} | {:9} | {:6} | {:8}",
            a.name, a.rotations, a.products, c.rotations, c.products
        );
        ta = (ta.0 + a.rotations, ta.1 + a.products);
        tc = (tc.0 + c.rotations, tc.1 + c.products);
    }
    println!(
        "total        | {:7} | {:9} | {:6} | {:8}",
        ta.0, ta.1, tc.0, tc.1
    );
    println!(
        "galois keys: AMA {}, CM {}",
        ama.rotation_steps().len(),
        cm.rotation_steps().len()
    );
    println!("AMA:");
    print_planned_ops(&ama);
}

/// Planned per-stage operations (rotations, key switches, decompositions, ModDowns,
/// products) of a compiled model, and their totals.
fn print_planned_ops(he: &HeStgcn) {
    println!("stage        | rotate | key_switch | decompose | mod_down | mul_plain | strategy");
    let planned = he.planned_op_counts();
    for p in &planned {
        let c = &p.counts;
        let block = p
            .name
            .get(5..)
            .unwrap_or("")
            .split('.')
            .next()
            .and_then(|b| b.parse::<usize>().ok());
        let strategy = match (block, p.name.ends_with(".tcn")) {
            (Some(i), true) => format!("{:?}", he.temporal_strategy(i)),
            _ => String::new(),
        };
        println!(
            "{:12} | {:6} | {:10} | {:9} | {:8} | {:9} | {strategy}",
            p.name, c.rotate, c.key_switch, c.decompose, c.mod_down, c.mul_plain
        );
    }
    let t = crate::counts_sum(planned.iter().map(|p| &p.counts));
    println!(
        "total        | {:6} | {:10} | {:9} | {:8} | {:9}",
        t.rotate, t.key_switch, t.decompose, t.mod_down, t.mul_plain
    );
}

/// The quickstart's served ST-GCN (`experiments/models/mocap15-otherviews-stgcn3x128-d8-t16-poly`,
/// 30 clips in one pass under `choose_params`): its planned operations per stage, without
/// running it.
#[test]
#[ignore = "reads the committed quickstart model; prints planned op counts"]
fn quickstart_planned_ops() {
    let base = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../experiments/models/mocap15-otherviews-stgcn3x128-d8-t16-poly"
    );
    let json = std::fs::read_to_string(format!("{base}.json")).unwrap();
    let weights = std::fs::read(format!("{base}.safetensors")).unwrap();
    let model = StGcn::from_json_and_safetensors(&json, &weights)
        .unwrap()
        .fold();
    let choice = crate::choose_params(&model, Packing::Ama).unwrap();
    let clips = HeStgcn::max_clips(&model, choice.params.slots()).min(30);
    let he = HeStgcn::compile_batched(&model, Packing::Ama, &choice.params, clips).unwrap();
    println!("{} clips per pass under {}", clips, choice.spec.name());
    print_planned_ops(&he);
}

/// Times the graph convolution (`HEGCN_STAGE=gcn`, default) or the temporal convolution with
/// its identity residual (`HEGCN_STAGE=tcn`) of block 2 (C → C, dilation 2) of an NTU-shaped
/// STGCN-3-128 with width divisor `HEGCN_DIVISOR` (default 8: 16 channels) at
/// `N15_L17_S40_128BIT` (128-bit), for both packings; checks the result against the plaintext
/// stage and prints latency, op counts and the channel-major / AMA ratios.
#[test]
#[ignore = "N = 2^15 at a 128-bit preset: minutes; prints latency and op counts"]
fn ntu_stage_latency() {
    let divisor: usize = std::env::var("HEGCN_DIVISOR")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let tcn = std::env::var("HEGCN_STAGE").is_ok_and(|s| s == "tcn");
    let model = ntu_model(divisor);
    let params = presets::N15_L17_S40_128BIT.build().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut results = Vec::new();
    let block = 2;
    let blk = &model.blocks[block];
    for packing in [Packing::Ama, Packing::ChannelMajor] {
        let he = HeStgcn::compile(&model, packing, &params).unwrap();
        let lin = he.block_input_layout(block).unwrap().clone();
        let lmid = he.block_mid_layout(block).unwrap().clone();
        let in_level = he.plan().stages[4 * block].level_after + 1;
        let mid_level = he.plan().stages[4 * block + 1].level_after;
        let mut kg = KeyGenerator::new(&params);
        let sk = kg.secret_key();
        let pk = kg.public_key(&sk).unwrap();
        let steps = he.block_rotation_steps(block, usize::from(tcn));
        let eval =
            Evaluator::new(&params).with_galois_keys(kg.galois_keys(&sk, &steps, false).unwrap());
        let mut random = |l: &crate::Layout| {
            Array4::from_shape_fn((l.channels, l.frames, l.nodes, l.persons), |_| {
                rng.gen_range(-1.0..1.0)
            })
        };
        let x = random(&lin);
        let h = random(&lmid);
        let ct_x = he.encrypt_packed(&pk, &lin, x.view(), in_level).unwrap();
        let ct_h = he.encrypt_packed(&pk, &lmid, h.view(), mid_level).unwrap();
        eval.reset_counters();
        let t0 = Instant::now();
        let out = if tcn {
            he.temporal(&eval, block, &ct_h, &ct_x).unwrap()
        } else {
            he.gcn(&eval, block, &ct_x).unwrap()
        };
        let secs = t0.elapsed().as_secs_f64();
        let counts = eval.counters();
        let dec = he.decrypt_tensor(&sk, &out).unwrap();
        let want = if tcn {
            crate::reference::temporal(blk, h.view(), x.view())
        } else {
            crate::reference::gcn(blk, x.view())
        };
        let err = dec
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let mag = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
        assert!(
            err <= 1e-4 * mag.max(1.0),
            "{packing:?}: err {err} vs max {mag}"
        );
        println!(
            "{packing:?} {}: C={} keys {} time {secs:.2}s err {err:.2e} counts {counts:?}",
            if tcn { "tcn" } else { "gcn" },
            lin.channels,
            steps.len(),
        );
        results.push((secs, counts));
    }
    let (a, c) = (&results[0], &results[1]);
    println!(
        "CM/AMA: time {:.2}x rotations {:.2}x key switches {:.2}x pt×ct {:.2}x",
        c.0 / a.0,
        c.1.rotate as f64 / a.1.rotate.max(1) as f64,
        c.1.key_switch as f64 / a.1.key_switch.max(1) as f64,
        c.1.mul_plain as f64 / a.1.mul_plain.max(1) as f64
    );
}

/// Magnitude of the plaintext logits of the randomly initialised full-width NTU model (M = 2)
/// on inputs in [−1, 1): the scale against which an absolute logit error is read.
#[test]
#[ignore = "full-width plaintext forward; prints the logit magnitude"]
fn ntu_logit_scale() {
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 1, 3, 256, &ntu_graph(), 60);
    cfg.num_persons = 2;
    let model = StGcn::new(cfg, 42).unwrap().fold();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for _ in 0..3 {
        let x = Array4::from_shape_fn((3, 256, 25, 2), |_| rng.gen_range(-1.0..1.0));
        let y = crate::reference::forward(&model, x.view());
        let max = y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut s: Vec<f64> = y.to_vec();
        s.sort_by(|a, b| b.partial_cmp(a).unwrap());
        println!("max |logit| {max:.3e}, top-2 margin {:.3e}", s[0] - s[1]);
    }
}
