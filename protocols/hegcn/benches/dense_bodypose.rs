//! One BodyPose pose through the dense single-pose layout (`hegcn::dense`), timed stage by
//! stage: seconds, the level each stage runs at, its key switches, plaintext products, rescales
//! and plaintext-cache misses (encodings), on one thread and on all cores. The model is the
//! committed `experiments/models/bodypose-stgcn3x128-d4-poly`, the parameters those the party
//! serves it with (N = 2^15, 14 levels, 40-bit scale, 50-bit first and special primes, 5
//! special primes, dnum 3: `N15_L14_S40_Q50_P5x50_D3_128BIT`).
//!
//! Each thread count runs the pose `1 + DENSE_RUNS` times (default 2) with a plaintext cache
//! large enough to hold every weight (the first run encodes them; the table is the fastest of
//! the others, the header their median wall and CPU seconds — CPU from `/proc/self/stat`, the
//! work of a one-thread pool on a machine shared with other jobs) and once with the cache off
//! (every product encodes its diagonal).
//!
//! With `DENSE_PROBE=1` the uncached pass is also priced by operation kind with this
//! machine's probed costs per level (`ckks::cost::probe`, in the same pool): key switches,
//! plaintext products, encodings and the rest, stage by stage.
//!
//! Run: `cargo bench -p hegcn --bench dense_bodypose` (`DENSE_THREADS=1,2` picks the pools).

use std::path::Path;
use std::time::Instant;

use ckks::cost::{OpCosts, OpKind};
use ckks::{CkksParams, Evaluator, KeyGenerator, OpCounts};
use hegcn::dense::{DenseStgcn, Stage};
use hegcn::{counts_diff, ParamSpec};

/// The set the party tailors to the committed BodyPose model (`N15_L14_S40_Q50_P5x50_D3`).
fn params() -> CkksParams {
    ParamSpec {
        log_n: 15,
        scale_bits: 40,
        levels: 14,
        first_prime_bits: 50,
        special_primes: 5,
        special_prime_bits: 50,
        dnum: 3,
    }
    .build()
    .expect("BodyPose parameters build")
}

fn model() -> stgcn::FoldedModel {
    let stem = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/models/bodypose-stgcn3x128-d4-poly");
    let json = std::fs::read_to_string(stem.with_extension("json")).expect("model json");
    let w = std::fs::read(stem.with_extension("safetensors")).expect("model weights");
    stgcn::StGcn::from_json_and_safetensors(&json, &w)
        .expect("model parses")
        .fold()
}

/// One stage's row: name, input level, seconds, counters, cache misses.
struct Row {
    stage: Stage,
    level_in: usize,
    secs: f64,
    ops: OpCounts,
    misses: u64,
}

/// The stages' operations priced with this machine's probed costs ([`ckks::cost::probe`]) by
/// kind: key switches (rotations and relinearizations with their decompositions, inner
/// products and ModDowns), plaintext products, encodings (the cache misses), the rest.
fn print_priced(rows: &[Row], costs: &OpCosts) {
    println!("  priced (probe): stage  level  key_sw_s  products_s  encodes_s  other_s");
    let mut sum = [0.0; 4];
    for r in rows {
        let (o, l) = (&r.ops, r.level_in);
        let c = |k: OpKind, n: u64| n as f64 * costs.at(k, l);
        let ks = c(OpKind::InnerProduct, o.key_switch)
            + c(OpKind::Decompose, o.decompose)
            + c(OpKind::ModDown, o.mod_down)
            + c(OpKind::Rotate, o.rotate)
            + c(OpKind::Relinearize, o.relinearize);
        let pr = c(OpKind::MulPlain, o.mul_plain);
        let en = c(OpKind::Encode, r.misses);
        let rest = costs.price(o, 0, l) - ks - pr;
        for (s, v) in sum.iter_mut().zip([ks, pr, en, rest]) {
            *s += v;
        }
        let st = format!("{:?}", r.stage);
        println!("  {st:<12} {l:>5}  {ks:>8.3}  {pr:>10.3}  {en:>9.3}  {rest:>7.3}");
    }
    let [ks, pr, en, rest] = sum;
    println!("  priced total: key switches {ks:.3} s, products {pr:.3} s, encodes {en:.3} s, rest {rest:.3} s");
}

fn run(he: &DenseStgcn, eval: &Evaluator, ct: &ckks::Ciphertext) -> (f64, Vec<Row>) {
    let mut rows = Vec::new();
    let mut level = ct.level();
    let start = Instant::now();
    let mut t = Instant::now();
    let mut ops = eval.counters();
    let mut misses = he.plaintext_cache_stats().misses;
    he.forward_traced(eval, ct, &mut |stage, out| {
        let (now, m) = (eval.counters(), he.plaintext_cache_stats().misses);
        rows.push(Row {
            stage,
            level_in: level,
            secs: t.elapsed().as_secs_f64(),
            ops: counts_diff(&ops, &now),
            misses: m - misses,
        });
        (level, ops, misses, t) = (out.level(), now, m, Instant::now());
    })
    .expect("forward");
    (start.elapsed().as_secs_f64(), rows)
}

fn print(rows: &[Row], total: f64) {
    println!("  stage        level  seconds  key_sw  products  rescales  encodes");
    for r in rows {
        let s = format!("{:?}", r.stage);
        println!(
            "  {s:<12} {:>5}  {:>7.3}  {:>6}  {:>8}  {:>8}  {:>7}",
            r.level_in, r.secs, r.ops.key_switch, r.ops.mul_plain, r.ops.rescale, r.misses
        );
    }
    let ks: u64 = rows.iter().map(|r| r.ops.key_switch).sum();
    let pr: u64 = rows.iter().map(|r| r.ops.mul_plain).sum();
    println!("  total {total:.3} s, {ks} key switches, {pr} products");
}

fn main() {
    let threads: Vec<usize> = std::env::var("DENSE_THREADS")
        .unwrap_or_else(|_| format!("1,{}", num_cpus()))
        .split(',')
        .map(|t| t.trim().parse().expect("thread count"))
        .collect();
    let params = params();
    let he = DenseStgcn::compile(&model(), &params).expect("dense compile");
    let mut kg = KeyGenerator::from_seed(&params, [7; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).expect("pk");
    let eval = Evaluator::new(&params)
        .with_relin_key(kg.relin_key(&sk).expect("rlk"))
        .with_galois_keys(
            kg.galois_keys(&sk, &he.rotation_steps(), false)
                .expect("gks"),
        );
    let x = ndarray::Array4::from_shape_fn((2, 1, 25, 1), |(c, _, v, _)| {
        0.3 * ((c * 25 + v) as f64 * 0.7).sin()
    });
    let ct = he.encrypt_input(&pk, x.view()).expect("encrypt");
    println!(
        "steps {:?}, planned {:?}",
        he.rotation_steps(),
        he.planned_linear_ops()
    );
    for t in threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("pool");
        pool.install(|| {
            he.set_plaintext_cache_budget(8 << 30);
            let (first, _) = run(&he, &eval, &ct);
            let (mut runs, mut cpu) = (Vec::new(), Vec::new());
            for _ in 0..cached_runs() {
                let c = procstat::cpu_seconds().unwrap_or(f64::NAN);
                runs.push(run(&he, &eval, &ct));
                cpu.push(procstat::cpu_seconds().unwrap_or(f64::NAN) - c);
            }
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            cpu.sort_by(f64::total_cmp);
            println!(
                "{t} thread(s), cached (first run {first:.3} s; {} runs: median {:.3} s wall, \
                 {:.3} s CPU):",
                runs.len(),
                runs[runs.len() / 2].0,
                cpu[cpu.len() / 2]
            );
            print(&runs[0].1, runs[0].0);
            he.set_plaintext_cache_budget(0);
            let (total, rows) = run(&he, &eval, &ct);
            println!("{t} thread(s), no cache:");
            print(&rows, total);
            if std::env::var("DENSE_PROBE").is_ok_and(|v| v == "1") {
                let costs =
                    ckks::cost::probe::probe(&params, &[1, 4, 8, 11, 14], 3).expect("probe");
                print_priced(&rows, &costs);
            }
        });
    }
}

/// Cached runs per pool after the first (`DENSE_RUNS`, default 2).
fn cached_runs() -> usize {
    std::env::var("DENSE_RUNS").map_or(2, |v| v.parse().expect("DENSE_RUNS"))
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
