//! One 2PC training step of the Mocap-15 ST-GCN (STGCN-3-128 / 4, poly): the plaintext twin's
//! step time beside the shared step's (both parties in this process, in-memory channel, dealer
//! triples), and the size of one step's preprocessing per party.
//!
//! `cargo run --release -p ml --example stgcn_step [batch] [frac_bits] [local|exact]`

use ml::backend::{preprocessing_words, Plain, Shared};
use ml::models::stgcn::{self, StgcnHyper, StgcnShape, StgcnState};
use mpc::net::mem_pair;
use mpc::share::{os_rng, reconstruct, share};
use mpc::triples::{dealer, TripleRequest, TripleSource};
use mpc::trunc::Truncation;
use mpc::{FixedPoint, FracBits, Role, Share};
use ndarray::Array2;
use rand::Rng;
use std::time::Instant;

type Res = Result<(), Box<dyn std::error::Error>>;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Res {
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = args.get(1).map_or(Ok(16), |s| s.parse())?;
    let frac: u32 = args.get(2).map_or(Ok(16), |s| s.parse())?;
    let mode = match args.get(3).map(String::as_str) {
        Some("exact") => Truncation::Exact,
        _ => Truncation::Local,
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../experiments/models/");
    let stem = format!("{dir}mocap15-stgcn3x128-d4-poly");
    let json = std::fs::read_to_string(format!("{stem}.json"))?;
    let weights = std::fs::read(format!("{stem}.safetensors"))?;
    let model = ::stgcn::StGcn::from_json_and_safetensors(&json, &weights)?;
    let shape = StgcnShape::from_model(&model)?;
    let init = stgcn::initial_params(&shape, &model);
    let mut rng = os_rng();
    // Random clips in the range the model was trained for: mean ± 1.5 std per (c, v) of its
    // input normalisation (columns c·T·V + t·V + v).
    let cfg = model.config();
    let (t, v) = (cfg.num_frames, cfg.num_nodes());
    let norm = cfg
        .input_norm
        .clone()
        .ok_or("the model has an input normalisation")?;
    let x = Array2::from_shape_fn((batch, shape.input_cols()), |(_, j)| {
        let (c, node) = (j / (t * v), j % v);
        norm.mean[c][node] + norm.std[c][node] * rng.gen_range(-1.5..1.5)
    });
    let q = shape.num_classes();
    let y = Array2::from_shape_fn((batch, q), |(i, j)| f64::from(u8::from(i % q == j)));
    let hyper = StgcnHyper {
        learning_rate: 0.01,
        momentum: 0.9,
        weight_decay: 1e-4,
        batch_size: batch,
    };
    let rows: Vec<usize> = (0..batch).collect();
    // Plaintext twin.
    let b = &mut Plain::new();
    let xp = stgcn::prepare_inputs(b, &shape, &x).await?;
    let velocity = init.iter().map(|p| Array2::zeros(p.dim())).collect();
    let mut st = StgcnState {
        params: init.clone(),
        velocity,
    };
    let t = Instant::now();
    stgcn::step(b, &shape, &xp, &y, &mut st, &rows, &hyper).await?;
    let plain_s = t.elapsed().as_secs_f64();
    // Preprocessing of one step (plus the one-off input normalisation).
    let mut reqs = stgcn::plan_prepare_with(&shape, batch, mode).await?;
    let prep_words = preprocessing_words(&reqs);
    let step_reqs =
        stgcn::plan_steps_with(&shape, batch, std::slice::from_ref(&rows), &hyper, mode).await?;
    let step_words = preprocessing_words(&step_reqs);
    let cal_words =
        preprocessing_words(&stgcn::plan_calibrate_with(&shape, batch, &rows, mode).await?);
    let kind = |k: fn(&TripleRequest) -> bool| {
        let sel: Vec<TripleRequest> = step_reqs.iter().filter(|r| k(r)).cloned().collect();
        preprocessing_words(&sel) as f64 * 8e-6
    };
    let (mm, ew) = (
        kind(|r| matches!(r, TripleRequest::Matmul { .. })),
        kind(|r| matches!(r, TripleRequest::Elementwise { .. })),
    );
    reqs.extend(step_reqs);
    let fp = FixedPoint::new(FracBits::new(frac)?);
    let t = Instant::now();
    let (mut s0, mut s1, _h) = dealer::spawn_in_process().await?;
    let (p0, p1) = tokio::join!(s0.generate(&reqs), s1.generate(&reqs));
    let offline_s = t.elapsed().as_secs_f64();
    let (c0, c1) = mem_pair();
    let mut b0 = Shared::new(c0, Role::P0, fp, p0?).with_truncation(mode);
    let mut b1 = Shared::new(c1, Role::P1, fp, p1?).with_truncation(mode);
    let enc =
        |m: &Array2<f64>, rng: &mut _| share(&fp.encode_matrix(&m.view()).unwrap().view(), rng);
    let [x0, x1] = enc(&x, &mut rng);
    let [y0, y1] = enc(&y, &mut rng);
    let (mut w0, mut w1) = (Vec::new(), Vec::new());
    for p in &init {
        let [a, b] = enc(p, &mut rng);
        w0.push(a);
        w1.push(b);
    }
    let zeros = |w: &[Share]| {
        w.iter()
            .map(|s| Share::zeros(s.dim().0, s.dim().1))
            .collect()
    };
    let mut st0 = StgcnState {
        velocity: zeros(&w0),
        params: w0,
    };
    let mut st1 = StgcnState {
        velocity: zeros(&w1),
        params: w1,
    };
    let (xp0, xp1) = tokio::join!(
        stgcn::prepare_inputs(&mut b0, &shape, &x0),
        stgcn::prepare_inputs(&mut b1, &shape, &x1)
    );
    let (xp0, xp1) = (xp0?, xp1?);
    let t = Instant::now();
    let (o0, o1) = tokio::join!(
        stgcn::step(&mut b0, &shape, &xp0, &y0, &mut st0, &rows, &hyper),
        stgcn::step(&mut b1, &shape, &xp1, &y1, &mut st1, &rows, &hyper)
    );
    let shared_s = t.elapsed().as_secs_f64();
    let (o0, o1) = (o0?, o1?);
    assert!(b0.preprocessing_drained());
    let logits = fp.decode_matrix(&reconstruct(&o0.logits, &o1.logits).view());
    let diff = st
        .params
        .iter()
        .zip(st0.params.iter().zip(&st1.params))
        .flat_map(|(p, (a, b))| {
            let s = fp.decode_matrix(&reconstruct(a, b).view());
            p.iter()
                .zip(s)
                .map(|(x, y)| (x - y).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max);
    println!(
        "mocap15 poly, batch {batch}, f = {frac}, {} truncation",
        mode.name()
    );
    println!(
        "calibration on the {batch} clips: {:.1} MB of triples per party",
        cal_words as f64 * 8e-6
    );
    println!("plain step        {plain_s:.3} s");
    println!("shared step       {shared_s:.3} s (online, both parties, mem channel)");
    println!("dealer offline    {offline_s:.3} s (prepare + one step)");
    println!(
        "preprocessing     {:.1} MB per party per step (+{:.1} MB once for the input norm)",
        step_words as f64 * 8e-6,
        prep_words as f64 * 8e-6
    );
    println!("  of which        {mm:.1} MB matrix triples, {ew:.1} MB elementwise triples");
    println!("truncations/step  {}", b0.truncations());
    println!("logits[0]         {:?}", logits.row(0));
    println!("max |param secure − twin| after one step: {diff:.2e}");
    Ok(())
}
