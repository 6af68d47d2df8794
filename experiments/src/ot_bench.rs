//! Task `ot-bench`: IKNP/ALSZ OT extension throughput over the configured transport — correlated
//! OT over Z_2^64 and random OT, `count` instances, P0 as sender and P1 as receiver (base OTs by
//! Chou–Orlandi first, not timed; each party a task of its own, as two processes would run) —
//! and beside it the silent extension (`mpc::offline::silent`,
//! Ferret's parameters): random-choice COTs in both directions at once, one steady iteration per
//! run after the bootstrap (not timed), keys `silent.cot_per_s` (COTs of both directions per
//! second) and `silent.bytes_per_cot` (bytes sent by both parties per COT).

use crate::common::median;
use crate::config::OtBenchTask;
use crate::link::{self, AnyChannel};
use crate::report::{fmt_bytes, Report};
use anyhow::Result;
use mpc::net::{Channel, Metered};
use mpc::offline::cot::{random_both, Cots, OtExtension};
use mpc::offline::iknp::{
    receive_cot, receive_rot, send_cot, send_rot, setup_receiver, setup_sender,
};
use mpc::offline::silent::FERRET;
use rand::RngCore;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Runs the task and adds its results to `report`.
pub async fn run(task: &OtBenchTask, transport: &str, report: &mut Report) -> Result<()> {
    let count = task.count.div_ceil(64) * 64;
    let words = count / 64;
    let (c0, c1) = link::pair(transport).await?;
    let (mut c0, mut c1) = (Metered::new(c0), Metered::new(c1));
    let (mut r0, mut r1) = (mpc::share::os_rng(), mpc::share::os_rng());
    let (s, r) = tokio::join!(
        setup_sender(&mut c0, &mut r0),
        setup_receiver(&mut c1, &mut r1)
    );
    let (mut sender, mut receiver) = (s?, r?);
    let mut correlations = vec![0u64; count];
    r0.fill_bytes(bytemuck::cast_slice_mut(&mut correlations));
    let mut choices = vec![0u64; words];
    r1.fill_bytes(bytemuck::cast_slice_mut(&mut choices));
    let (correlations, choices) = (Arc::new(correlations), Arc::new(choices));
    let (mut cot, mut rot) = (Vec::new(), Vec::new());
    let (mut cot_bytes, mut rot_bytes) = (0.0, 0.0);
    let sent = |c0: &Metered<AnyChannel>, c1: &Metered<AnyChannel>| {
        (c1.stats().bytes_sent + c0.stats().bytes_sent) as f64
    };
    for _ in 0..task.repetitions.max(1) {
        let (before, t) = (sent(&c0, &c1), Instant::now());
        let (corr, ch) = (correlations.clone(), choices.clone());
        ((c0, sender), (c1, receiver)) = parties(
            (c0, sender),
            (c1, receiver),
            |(mut c, mut s)| async move { send_cot(&mut c, &mut s, &corr).await.map(|_| (c, s)) },
            |(mut c, mut r)| async move { receive_cot(&mut c, &mut r, &ch).await.map(|_| (c, r)) },
        )
        .await?;
        cot.push(t.elapsed().as_secs_f64());
        cot_bytes = sent(&c0, &c1) - before;
        let (before, t) = (sent(&c0, &c1), Instant::now());
        let ch = choices.clone();
        ((c0, sender), (c1, receiver)) = parties(
            (c0, sender),
            (c1, receiver),
            |(mut c, mut s)| async move { send_rot(&mut c, &mut s, words).await.map(|_| (c, s)) },
            |(mut c, mut r)| async move { receive_rot(&mut c, &mut r, &ch).await.map(|_| (c, r)) },
        )
        .await?;
        rot.push(t.elapsed().as_secs_f64());
        rot_bytes = sent(&c0, &c1) - before;
    }
    let (tc, tr) = (median(&cot), median(&rot));
    report.metric("ot.cot_per_s", count as f64 / tc);
    report.metric("ot.rot_per_s", count as f64 / tr);
    report.metric("ot.cot_s", tc);
    report.metric("ot.rot_s", tr);
    report.metric("ot.cot_bytes", cot_bytes);
    report.metric("ot.rot_bytes", rot_bytes);
    report.section(
        "OT extension throughput",
        format!(
            "{count} instances per run, {} runs, medians; transport `{transport}`; P0 sender, P1 receiver (IKNP with ALSZ correlated OT, fixed-key AES hash).\n\n\
             | kind | time | instances/s | bytes (both directions) |\n|---|---|---|---|\n\
             | COT over Z_2^64 | {tc:.3} s | {:.3e} | {} |\n| ROT | {tr:.3} s | {:.3e} | {} |\n",
            task.repetitions.max(1),
            count as f64 / tc,
            fmt_bytes(cot_bytes),
            count as f64 / tr,
            fmt_bytes(rot_bytes),
        ),
    );
    report.note("OT extension: semi-honest IKNP (no KOS consistency check); base OTs by Chou–Orlandi on Ristretto.");
    silent(task, &mut c0, &mut c1, report).await
}

/// Runs the two parties as separate tasks, as two processes would (each party's transport and
/// protocol steps on its own executor thread, not interleaved in one task), each taking its state
/// and handing it back.
async fn parties<A, B, FA, FB, GA, GB>(a: A, b: B, fa: GA, fb: GB) -> Result<(A, B)>
where
    A: Send + 'static,
    B: Send + 'static,
    FA: Future<Output = mpc::error::Result<A>> + Send + 'static,
    FB: Future<Output = mpc::error::Result<B>> + Send + 'static,
    GA: FnOnce(A) -> FA,
    GB: FnOnce(B) -> FB,
{
    let (ha, hb) = (tokio::spawn(fa(a)), tokio::spawn(fb(b)));
    let (ra, rb) = (ha.await?, hb.await?);
    Ok((ra?, rb?))
}

/// The silent extension over the same link: the bootstrap (base OTs, IKNP seeds, the first
/// iteration) untimed, then `repetitions` steady iterations, each taking exactly the COTs one
/// iteration adds.
async fn silent<C: Channel>(
    task: &OtBenchTask,
    c0: &mut Metered<C>,
    c1: &mut Metered<C>,
    report: &mut Report,
) -> Result<()> {
    let bytes = |c0: &Metered<C>, c1: &Metered<C>| c0.stats().bytes_sent + c1.stats().bytes_sent;
    let start = bytes(c0, c1);
    let (mut r0, mut r1) = (mpc::share::os_rng(), mpc::share::os_rng());
    let (a, b) = tokio::join!(
        Cots::setup(c0, &mut r0, OtExtension::Silent),
        Cots::setup(c1, &mut r1, OtExtension::Silent)
    );
    let (mut s0, mut s1) = (a?, b?);
    let boot = FERRET.kept_bootstrap() / 64;
    let (a, b) = tokio::join!(
        random_both(c0, &mut s0, boot, &mut r0),
        random_both(c1, &mut s1, boot, &mut r1)
    );
    a?;
    b?;
    let boot_bytes = (bytes(c0, c1) - start) as f64;
    let words = FERRET.kept() / 64;
    let (mut times, mut sent) = (Vec::new(), 0.0);
    for _ in 0..task.repetitions.max(1) {
        let before = bytes(c0, c1);
        let t = Instant::now();
        let (a, b) = tokio::join!(
            random_both(c0, &mut s0, words, &mut r0),
            random_both(c1, &mut s1, words, &mut r1)
        );
        a?;
        b?;
        times.push(t.elapsed().as_secs_f64());
        sent = (bytes(c0, c1) - before) as f64;
    }
    let cots = (2 * 64 * words) as f64;
    let t = median(&times);
    report.metric("silent.cot_per_s", cots / t);
    report.metric("silent.bytes_per_cot", sent / cots);
    report.metric("silent.iteration_s", t);
    report.metric("silent.bootstrap_bytes", boot_bytes);
    report.section(
        "Silent OT (Ferret-style, primal LPN)",
        format!(
            "One steady iteration per run (n = {}, k = {}, t = {}, h = {}; {} runs, median), \
             random-choice COTs in both directions at once, after an untimed bootstrap (base OTs, \
             IKNP seeds, the n = {} iteration: {} sent by both parties).\n\n\
             | COTs (both directions) | time | COTs/s | bytes sent (both parties) | bytes / COT |\n\
             |---|---|---|---|---|\n| {} | {t:.3} s | {:.3e} | {} | {:.4} |\n",
            FERRET.steady.n,
            FERRET.steady.k,
            FERRET.steady.t,
            FERRET.steady.h,
            task.repetitions.max(1),
            FERRET.bootstrap.n,
            fmt_bytes(boot_bytes),
            cots,
            cots / t,
            fmt_bytes(sent),
            sent / cots,
        ),
    );
    report.note("Silent OT: semi-honest Ferret-style COT (GGM single-point COTs, regular-noise LPN with a d = 10 local code, no consistency check), seeded by IKNP; its choices are pseudorandom under the LPN assumption.");
    Ok(())
}
