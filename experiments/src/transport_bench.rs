//! Task `transport-bench`: throughput and round-trip time of the party transports — plain TCP
//! (the insecure baseline), TLS 1.3 over TCP and QUIC — measured in one run on loopback with the
//! same code the `party` servers use ([`party::transport::loopback_pair`], default options).
//!
//! Per repetition and kind (the kinds interleaved, so a noisy neighbour hits all of them alike):
//! `total_kib` KiB sent one way in `message_kib` KiB frames, timed from the first send until the
//! receiver's 1-byte acknowledgement arrives, then `pings` round trips of `ping_bytes`-byte
//! frames. The sender and the receiver are separate tokio tasks, as the two parties are on two
//! machines. Reported: medians over the repetitions, throughput as a fraction of plain TCP's in
//! the same run, and the CPU time (user + system, whole process, Linux only) per GiB moved.
//!
//! Security model: none needed — the bench sends public filler bytes between two identities it
//! makes for itself; the TLS and QUIC links still pin each other's certificate as in production.

use crate::common::median;
use crate::config::TransportBenchTask;
use crate::report::Report;
use anyhow::{ensure, Context, Result};
use mpc::net::Channel;
use party::transport::{loopback_pair, PeerChannel, TransportKind};
use std::fmt::Write as _;
use std::time::Instant;

/// The metric prefix of a kind (`tcp`, `tls_tcp`, `quic`).
pub fn prefix(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Tcp => "tcp",
        TransportKind::TlsTcp => "tls_tcp",
        TransportKind::Quic => "quic",
    }
}

/// One kind's measurements over all repetitions.
#[derive(Debug, Default, Clone)]
pub struct KindResult {
    /// Throughput per repetition (MiB/s).
    pub throughput_mib_s: Vec<f64>,
    /// Mean round trip per repetition (µs).
    pub rtt_us: Vec<f64>,
    /// Process CPU seconds per GiB moved, per repetition (empty off Linux).
    pub cpu_s_per_gib: Vec<f64>,
}

/// The frame sizes of one one-way transfer: full messages, then a shorter last one if needed.
pub fn message_sizes(total: usize, message: usize) -> Vec<usize> {
    let mut v = vec![message; total / message];
    if !total.is_multiple_of(message) {
        v.push(total % message);
    }
    v
}

/// Sends `total` bytes from `a` to `b` in frames of `message` bytes (separate tasks) and returns
/// the seconds until `b`'s acknowledgement reached `a`. The receiver checks every frame's length
/// and its tag bytes (first and last byte = the frame's index mod 256).
async fn one_way(
    mut a: PeerChannel,
    mut b: PeerChannel,
    total: usize,
    message: usize,
) -> Result<(PeerChannel, PeerChannel, f64)> {
    let sizes = message_sizes(total, message);
    let expect = sizes.clone();
    let filler = vec![0x5au8; message];
    let recv = tokio::spawn(async move {
        for (i, &len) in expect.iter().enumerate() {
            let f = b.recv_frame(len).await?;
            let tag = i as u8;
            ensure!(
                f.len() == len && f.first() == Some(&tag) && f.last() == Some(&tag),
                "frame {i}: {} bytes (expected {len}) or wrong tag",
                f.len()
            );
        }
        b.send_frame(vec![1]).await?;
        b.flush().await?;
        anyhow::Ok(b)
    });
    let send = tokio::spawn(async move {
        let t = Instant::now();
        for (i, &len) in sizes.iter().enumerate() {
            let mut f = filler[..len].to_vec();
            f[0] = i as u8;
            f[len - 1] = i as u8;
            a.send_frame(f).await?;
        }
        a.flush().await?;
        let ack = a.recv_frame(1).await?;
        ensure!(ack == [1], "bad acknowledgement {ack:?}");
        anyhow::Ok((a, t.elapsed().as_secs_f64()))
    });
    let (s, r) = tokio::join!(send, recv);
    let (a, secs) = s.context("sender task")??;
    let b = r.context("receiver task")??;
    Ok((a, b, secs))
}

/// `n` round trips of `bytes`-byte frames (`a` pings, `b` echoes); the mean in microseconds.
async fn ping_pong(
    mut a: PeerChannel,
    mut b: PeerChannel,
    n: usize,
    bytes: usize,
) -> Result<(PeerChannel, PeerChannel, f64)> {
    let echo = tokio::spawn(async move {
        for _ in 0..n {
            let f = b.recv_frame(bytes).await?;
            b.send_frame(f).await?;
        }
        anyhow::Ok(b)
    });
    let ping = tokio::spawn(async move {
        let t = Instant::now();
        for i in 0..n {
            let mut f = vec![0u8; bytes];
            let tag = (i as u64).to_le_bytes();
            let k = bytes.min(8);
            f[..k].copy_from_slice(&tag[..k]);
            a.send_frame(f.clone()).await?;
            let back = a.recv_frame(bytes).await?;
            ensure!(back == f, "round trip {i}: the echo differs from the ping");
        }
        anyhow::Ok((a, t.elapsed().as_secs_f64()))
    });
    let (p, e) = tokio::join!(ping, echo);
    let (a, secs) = p.context("ping task")??;
    let b = e.context("echo task")??;
    Ok((a, b, secs * 1e6 / n.max(1) as f64))
}

/// One repetition of one kind over a fresh link: throughput (MiB/s), CPU-s per GiB, RTT (µs).
async fn measure(
    kind: TransportKind,
    task: &TransportBenchTask,
) -> Result<(f64, Option<f64>, f64)> {
    let (total, message) = (task.total_kib << 10, task.message_kib << 10);
    let (a, b) = loopback_pair(kind)
        .await
        .with_context(|| format!("connecting {kind} on loopback"))?;
    // A short warm-up: TCP slow start, QUIC's congestion window and MTU probing.
    let (a, b, _) = one_way(a, b, message.min(total), message).await?;
    let cpu0 = procstat::live_threads_cpu_seconds();
    let (a, b, secs) = one_way(a, b, total, message).await?;
    let cpu = procstat::live_threads_cpu_seconds()
        .zip(cpu0)
        .map(|(c1, c0)| c1 - c0);
    let mib = total as f64 / (1u64 << 20) as f64;
    let cpu_per_gib = cpu.map(|c| c / (mib / 1024.0));
    let (_, _, rtt) = ping_pong(a, b, task.pings, task.ping_bytes).await?;
    Ok((mib / secs, cpu_per_gib, rtt))
}

/// Runs every kind `repetitions` times, interleaved.
pub async fn measure_all(task: &TransportBenchTask) -> Result<Vec<(TransportKind, KindResult)>> {
    let kinds = task.transport_kinds()?;
    let mut out: Vec<(TransportKind, KindResult)> =
        kinds.iter().map(|&k| (k, KindResult::default())).collect();
    for _ in 0..task.repetitions.max(1) {
        for (kind, r) in out.iter_mut() {
            let (tp, cpu, rtt) = measure(*kind, task).await?;
            r.throughput_mib_s.push(tp);
            r.rtt_us.push(rtt);
            r.cpu_s_per_gib.extend(cpu);
        }
    }
    Ok(out)
}

/// Runs the task and adds its results to `report`.
pub async fn run(task: &TransportBenchTask, report: &mut Report) -> Result<()> {
    let results = measure_all(task).await?;
    let tcp = results
        .iter()
        .find(|(k, _)| *k == TransportKind::Tcp)
        .map(|(_, r)| median(&r.throughput_mib_s));
    let mut table = String::from(
        "| transport | throughput (median) | min – max | vs plain TCP | round trip (median) | CPU per GiB (median) |\n|---|---|---|---|---|---|\n",
    );
    for (kind, r) in &results {
        let p = prefix(*kind);
        let tp = median(&r.throughput_mib_s);
        let rtt = median(&r.rtt_us);
        report.metric(format!("{p}.throughput_mib_s"), tp);
        report.metric(format!("{p}.rtt_us"), rtt);
        let cpu = (!r.cpu_s_per_gib.is_empty()).then(|| median(&r.cpu_s_per_gib));
        if let Some(c) = cpu {
            report.metric(format!("{p}.cpu_per_gib_s"), c);
        }
        let ratio = tcp.filter(|_| *kind != TransportKind::Tcp).map(|t| tp / t);
        if let Some(v) = ratio {
            report.metric(format!("{p}.vs_tcp"), v);
        }
        let (lo, hi) = r
            .throughput_mib_s
            .iter()
            .fold((f64::INFINITY, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let _ = writeln!(
            table,
            "| `{kind}` | {tp:.0} MiB/s | {lo:.0} – {hi:.0} | {} | {rtt:.1} µs | {} |",
            ratio.map_or("—".into(), |v| format!("{:.0} %", v * 100.0)),
            cpu.map_or("—".into(), |c| format!("{c:.2} CPU-s")),
        );
    }
    report.section(
        "Transports on loopback",
        format!(
            "{} KiB one way in {} KiB frames (timed until the receiver's acknowledgement), then {} round trips of {}-byte frames; \
             sender and receiver are separate tokio tasks; {} repetitions per transport, interleaved, medians. \
             A fresh link per repetition with the servers' default options. On a shared machine the wall-clock numbers \
             mostly measure how much CPU the run got: compare the kinds within this run only.\n\n{table}",
            task.total_kib,
            task.message_kib,
            task.pings,
            task.ping_bytes,
            task.repetitions.max(1)
        ),
    );
    report.note(
        "transport-bench: `tcp-insecure` has no authentication or encryption; it is the baseline, never a deployment option.",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_sizes_cover_the_total() {
        assert_eq!(message_sizes(0, 4), Vec::<usize>::new());
        assert_eq!(message_sizes(4, 4), vec![4]);
        assert_eq!(message_sizes(9, 4), vec![4, 4, 1]);
        assert_eq!(message_sizes(3, 4), vec![3]);
    }

    #[test]
    fn a_tiny_run_measures_all_three_kinds() {
        let task = TransportBenchTask {
            total_kib: 64,
            message_kib: 16,
            pings: 5,
            ping_bytes: 8,
            repetitions: 1,
            kinds: None,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut report = Report::default();
        rt.block_on(run(&task, &mut report)).unwrap();
        for p in ["tcp", "tls_tcp", "quic"] {
            for q in ["throughput_mib_s", "rtt_us"] {
                let v = report.metrics[&format!("{p}.{q}")];
                assert!(v.is_finite() && v > 0.0, "{p}.{q} = {v}");
            }
        }
        assert!(report.metrics.contains_key("tls_tcp.vs_tcp"));
        assert!(report.metrics.contains_key("quic.vs_tcp"));
        assert!(!report.metrics.contains_key("tcp.vs_tcp"));
        assert!(report.sections[0].contains("`tls-tcp`"));
    }
}
