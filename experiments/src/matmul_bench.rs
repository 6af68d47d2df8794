//! Task `matmul-bench`: online time of secure matrix products (matrix Beaver triples, one round)
//! as a ratio to the plaintext product over Z_2^64 measured in the same run, and bytes per party.

use crate::common::median;
use crate::config::{MatmulBenchTask, MpcConfig};
use crate::link;
use crate::report::{fmt_bytes, Report};
use anyhow::Result;
use mpc::net::Metered;
use mpc::online;
use mpc::triples::{Lhs, TripleRequest};
use mpc::trunc::truncate;
use mpc::{ring, Role};
use std::fmt::Write as _;
use std::time::Instant;

/// Runs the task and adds its results to `report`.
pub async fn run(
    task: &MatmulBenchTask,
    mpc_cfg: &MpcConfig,
    transport: &str,
    report: &mut Report,
) -> Result<()> {
    let f = mpc_cfg.frac_bits;
    let (c0, c1) = link::pair(transport).await?;
    let (mut c0, mut c1) = (Metered::new(c0), Metered::new(c1));
    let mut table = String::from(
        "| product | plaintext u64 (median) | secure online P0 / P1 (median) | ratio P0 / P1 | bytes sent per party |\n|---|---|---|---|---|\n",
    );
    let reps = task.repetitions.max(1);
    let mut rng = mpc::share::os_rng();
    for &[n, k, m] in &task.shapes {
        let x = ring::random(&mut rng, n, k);
        let y = ring::random(&mut rng, k, m);
        let mut plain = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            std::hint::black_box(ring::matmul(&x.view(), &y.view()));
            plain.push(t.elapsed().as_secs_f64());
        }
        let [x0, x1] = mpc::share::share(&x.view(), &mut rng);
        let [y0, y1] = mpc::share::share(&y.view(), &mut rng);
        let reqs: Vec<TripleRequest> = (0..reps)
            .map(|_| TripleRequest::Matmul {
                lhs: Lhs::Fresh { rows: n, inner: k },
                cols: m,
            })
            .collect();
        let off = crate::offline::run(&mpc_cfg.triples, transport, &reqs).await?;
        if let Some(fl) = &off.flooding {
            fl.report(report, &format!("secure.matmul_{n}x{k}x{m}"));
        }
        let [mut p0, mut p1] = off.pre;
        let (mut t0, mut t1) = (Vec::new(), Vec::new());
        let before = (c0.stats(), c1.stats());
        let lhs = Lhs::Fresh { rows: n, inner: k };
        for _ in 0..reps {
            let (a, b) = (p0.next_matmul(&lhs, m)?, p1.next_matmul(&lhs, m)?);
            let (r0, r1) = tokio::join!(
                async {
                    let t = Instant::now();
                    let z = online::matmul(&mut c0, Role::P0, &x0, &y0, a).await?;
                    let z = truncate(Role::P0, &z, f)?;
                    anyhow::Ok((t.elapsed().as_secs_f64(), z))
                },
                async {
                    let t = Instant::now();
                    let z = online::matmul(&mut c1, Role::P1, &x1, &y1, b).await?;
                    let z = truncate(Role::P1, &z, f)?;
                    anyhow::Ok((t.elapsed().as_secs_f64(), z))
                }
            );
            t0.push(r0?.0);
            t1.push(r1?.0);
        }
        let sent0 = (c0.stats().bytes_sent - before.0.bytes_sent) as f64 / reps as f64;
        let sent1 = (c1.stats().bytes_sent - before.1.bytes_sent) as f64 / reps as f64;
        let (mp, m0, m1) = (median(&plain), median(&t0), median(&t1));
        let key = format!("matmul_{n}x{k}x{m}");
        report.metric(format!("plain.{key}_s"), mp);
        report.metric(format!("secure.{key}_p0_s"), m0);
        report.metric(format!("secure.{key}_p1_s"), m1);
        report.metric(format!("secure.{key}_ratio_p0"), m0 / mp);
        report.metric(format!("secure.{key}_ratio_p1"), m1 / mp);
        report.metric(format!("secure.{key}_bytes_sent_p0_bytes"), sent0);
        report.metric(format!("secure.{key}_bytes_sent_p1_bytes"), sent1);
        let _ = writeln!(
            table,
            "| {n}×{k} · {k}×{m} | {:.3} ms | {:.3} / {:.3} ms | {:.1}× / {:.1}× | {} / {} |",
            mp * 1e3,
            m0 * 1e3,
            m1 * 1e3,
            m0 / mp,
            m1 / mp,
            fmt_bytes(sent0),
            fmt_bytes(sent1)
        );
    }
    report.section(
        "Secure matrix products (online phase)",
        format!(
            "Each product opens X − U and Y − V in one exchange and truncates locally; triples from the dealer, made before timing. \
             {reps} repetitions per shape, medians; transport `{transport}`; the plaintext product is `mpc::ring::matmul` over Z_2^64 on the same machine in the same run.\n\n{table}"
        ),
    );
    Ok(())
}
