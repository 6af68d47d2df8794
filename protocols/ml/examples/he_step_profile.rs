//! The cost of one SGD step's preprocessing for SecureML's network (784-128-128-10, exp softmax,
//! batch 128) by the `he` source, request by request: each request of the step's plan generated
//! on its own over an in-memory channel (both parties in this process), with its wall time, the
//! CPU time of the process (both parties; Linux, from `/proc/self/stat`, 10 ms ticks) and the
//! bytes P0 sent. The printed table is the cost model of `mpc::offline::he`.
//!
//! `cargo run --release -p ml --example he_step_profile [steps]`

use ml::backend::SoftmaxKind;
use ml::models::linreg::LinRegHyper;
use ml::models::mlp;
use ml::Schedule;
use mpc::net::{mem_pair, Metered};
use mpc::triples::{HeSource, Lhs, TripleRequest, TripleSource};
use mpc::Role;
use std::collections::BTreeMap;
use std::time::Instant;

type Res = Result<(), Box<dyn std::error::Error>>;

fn kind(r: &TripleRequest) -> String {
    match r {
        TripleRequest::Mask { rows, cols, .. } => format!("mask {rows}x{cols}"),
        TripleRequest::Matmul { lhs, cols } => match lhs {
            Lhs::Fresh { rows, inner } => format!("matmul {rows}x{inner}·{inner}x{cols}"),
            Lhs::Mask {
                rows, transpose, ..
            } => format!(
                "matmul U[B]{}({} rows)·V x{cols}",
                if *transpose { "ᵀ" } else { "" },
                rows.len()
            ),
        },
        TripleRequest::Elementwise { rows, cols } => format!("elementwise {rows}x{cols}"),
        TripleRequest::And { words } => format!("and {words} words"),
        TripleRequest::LeafOt { count, bits } => format!("leaf-ot {count}x{bits}b"),
        TripleRequest::Rot { count } => format!("random-ot {count}"),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Res {
    let steps: usize = std::env::args().nth(1).map_or(Ok(1), |s| s.parse())?;
    let (batch, n) = (128, 128 * steps);
    let sched = Schedule::shuffled(n, batch, 1, 1)?;
    let hyper = LinRegHyper::new(0.25, batch)?;
    let reqs = mlp::plan(&[784, 128, 128, 10], n, &sched, &hyper, SoftmaxKind::Exp).await?;
    let (a, b) = mem_pair();
    let (s0, s1) = tokio::join!(
        HeSource::setup(Metered::new(a), Role::P0),
        HeSource::setup(Metered::new(b), Role::P1)
    );
    let (mut s0, mut s1) = (s0?, s1?);
    // (count, wall seconds, CPU seconds, bytes sent by P0) per request kind.
    let mut rows: BTreeMap<String, (usize, f64, f64, u64)> = BTreeMap::new();
    let (mut total_s, mut total_cpu, mut total_b) = (0.0, 0.0, 0u64);
    for r in &reqs {
        let one = std::slice::from_ref(r);
        let before = s0.channel().stats().bytes_sent;
        let (t, cpu) = (Instant::now(), procstat::cpu_seconds().unwrap_or(0.0));
        let (p0, p1) = tokio::join!(s0.generate(one), s1.generate(one));
        let (s, c) = (
            t.elapsed().as_secs_f64(),
            procstat::cpu_seconds().unwrap_or(0.0) - cpu,
        );
        p0?;
        p1?;
        let sent = s0.channel().stats().bytes_sent - before;
        let e = rows.entry(kind(r)).or_default();
        e.0 += 1;
        e.1 += s;
        e.2 += c;
        e.3 += sent;
        if !matches!(r, TripleRequest::Mask { .. }) {
            total_s += s;
            total_cpu += c;
            total_b += sent;
        }
    }
    println!("{steps} step(s), {} requests", reqs.len());
    println!(
        "{:<40} {:>6} {:>10} {:>10} {:>14}",
        "request", "count", "wall s", "CPU s", "P0 sent (B)"
    );
    for (k, (n, s, c, b)) in &rows {
        println!("{k:<40} {n:>6} {s:>10.3} {c:>10.2} {b:>14}");
    }
    println!(
        "per step: {:.3} s wall, {:.2} CPU s, {:.1} MB sent by P0",
        total_s / steps as f64,
        total_cpu / steps as f64,
        total_b as f64 / steps as f64 / 1e6
    );
    Ok(())
}
