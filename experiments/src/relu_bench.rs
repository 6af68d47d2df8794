//! Task `relu-bench`: a layer of ReLUs (e.g. the SecureML MLP's 128 × 128) with the comparison by
//! the GMW adder (`mpc::nonlinear::msb`, AND triples) and by the millionaires' protocol
//! (`mpc::nonlinear::msb_millionaire`, leaf OTs and fewer AND triples) for each configured leaf
//! width, and the select `[x ≥ 0]·x` by two Beaver products (`mpc::nonlinear::select_beaver`,
//! elementwise triples) or by the OT multiplexer (`mpc::nonlinear::select`, random OTs), side by
//! side in one run: offline and online bytes sent per party and time, per ReLU. Every variant's
//! output is checked against the plaintext ReLU.

use crate::common::median;
use crate::config::ReluBenchTask;
use crate::link;
use crate::report::Report;
use anyhow::{ensure, Result};
use mpc::net::{Channel, Metered};
use mpc::nonlinear::{
    msb, msb_millionaire, msb_millionaire_requests, msb_requests, select, select_beaver,
    select_beaver_requests, select_requests,
};
use mpc::triples::{Preprocessing, TripleRequest};
use mpc::{FixedPoint, Role, Session, Share};
use std::fmt::Write as _;
use std::time::Instant;

/// A ReLU: the comparison — the adder (`None`) or the millionaires' protocol with `m`-bit
/// leaves — and whether the select is the OT multiplexer (else two Beaver products).
#[derive(Debug, Clone, Copy)]
struct Variant {
    leaf: Option<u8>,
    mux: bool,
}

fn name(v: Variant) -> String {
    let cmp = v
        .leaf
        .map_or("adder".into(), |m| format!("millionaire_m{m}"));
    if v.mux {
        format!("{cmp}_mux")
    } else {
        cmp
    }
}

fn requests(v: Variant, dim: (usize, usize)) -> Vec<TripleRequest> {
    let mut r = match v.leaf {
        None => msb_requests(dim),
        Some(m) => msb_millionaire_requests(dim, m),
    };
    r.extend(match v.mux {
        true => select_requests(dim),
        false => select_beaver_requests(dim),
    });
    r
}

/// One party's ReLU with the variant's comparison: `[x ≥ 0]·x`.
async fn relu<C: Channel>(
    ch: &mut C,
    role: Role,
    pre: &mut Preprocessing,
    x: &Share,
    v: Variant,
) -> Result<Share> {
    let cx = &mut Session::new(ch, role, FixedPoint::default(), pre);
    let m = match v.leaf {
        None => msb(cx, x).await?,
        Some(m) => msb_millionaire(cx, x, m).await?,
    };
    let d = m.not(role);
    Ok(match v.mux {
        true => select(cx, &d, x).await?,
        false => select_beaver(cx, &d, x).await?,
    })
}

/// Per-ReLU figures of one variant.
struct Figures {
    offline_bytes: f64,
    offline_s: f64,
    online_bytes: f64,
    online_s: f64,
    rounds: u64,
}

async fn measure(task: &ReluBenchTask, transport: &str, v: Variant) -> Result<Figures> {
    let dim = (task.rows, task.cols);
    let reps = task.repetitions.max(1);
    let reqs: Vec<TripleRequest> = (0..reps).flat_map(|_| requests(v, dim)).collect();
    let off = crate::offline::run(&task.triples, transport, &reqs).await?;
    let [mut p0, mut p1] = off.pre;
    let mut rng = mpc::share::os_rng();
    let x = mpc::ring::random(&mut rng, dim.0, dim.1);
    let [x0, x1] = mpc::share::share(&x.view(), &mut rng);
    let (c0, c1) = link::pair(transport).await?;
    let (mut c0, mut c1) = (Metered::new(c0), Metered::new(c1));
    let mut times = Vec::new();
    for rep in 0..reps {
        let t = Instant::now();
        let (r0, r1) = tokio::join!(
            relu(&mut c0, Role::P0, &mut p0, &x0, v),
            relu(&mut c1, Role::P1, &mut p1, &x1, v)
        );
        times.push(t.elapsed().as_secs_f64());
        if rep == 0 {
            let r = mpc::share::reconstruct(&r0?, &r1?);
            let want = x.mapv(|e| if (e as i64) < 0 { 0 } else { e });
            ensure!(
                r == want,
                "{}: secure ReLU differs from the plaintext",
                name(v)
            );
        }
    }
    let n = (dim.0 * dim.1 * reps) as f64;
    let s = c0.stats();
    Ok(Figures {
        offline_bytes: off.stats[0].bytes_sent as f64 / n,
        offline_s: off.seconds / n,
        online_bytes: s.bytes_sent as f64 / n,
        online_s: median(&times) / (dim.0 * dim.1) as f64,
        rounds: s.rounds / reps as u64,
    })
}

/// Runs the task and adds its results to `report`.
pub async fn run(task: &ReluBenchTask, transport: &str, report: &mut Report) -> Result<()> {
    let mut table = String::from(
        "| comparison, select | offline bytes / ReLU | offline µs / ReLU | online bytes / ReLU | online µs / ReLU (median) | rounds |\n|---|---|---|---|---|---|\n",
    );
    let beaver = |leaf| Variant { leaf, mux: false };
    let variants = std::iter::once(beaver(None))
        .chain(task.leaf_bits.iter().map(|&m| beaver(Some(m))))
        .chain(task.leaf_bits.iter().map(|&m| Variant {
            leaf: Some(m),
            mux: true,
        }));
    for v in variants {
        let f = measure(task, transport, v).await?;
        let key = format!("relu.{}", name(v));
        report.metric(format!("{key}.offline_bytes_per_relu"), f.offline_bytes);
        report.metric(format!("{key}.offline_us_per_relu"), 1e6 * f.offline_s);
        report.metric(format!("{key}.online_bytes_per_relu"), f.online_bytes);
        report.metric(format!("{key}.online_us_per_relu"), 1e6 * f.online_s);
        report.metric(format!("{key}.rounds_count"), f.rounds as f64);
        let _ = writeln!(
            table,
            "| {} | {:.1} | {:.3} | {:.1} | {:.3} | {} |",
            name(v),
            f.offline_bytes,
            1e6 * f.offline_s,
            f.online_bytes,
            1e6 * f.online_s,
            f.rounds
        );
    }
    report.section(
        "ReLU: GMW adder vs millionaires' comparison, Beaver select vs OT multiplexer",
        format!(
            "{} × {} ReLUs per run, {} runs; triples `{}` over `{transport}`; bytes sent by P0 (P1 alike), offline time both parties concurrently.\n\n{table}",
            task.rows, task.cols, task.repetitions.max(1), task.triples
        ),
    );
    Ok(())
}
