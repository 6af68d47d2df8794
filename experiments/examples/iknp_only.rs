//! Development harness: the IKNP part of the `ot-bench` task alone (COT over Z_2^64 and ROT,
//! P0 sender, P1 receiver, over the given transport on loopback), `reps` runs each, every time
//! printed with the process's CPU time over the run, for profiling (`perf record`).
//!
//! `cargo run --release -p experiments --example iknp_only -- [transport] [count] [reps] [spawn]`
//! (`spawn`: each party's COT run as its own task, as two processes would run them).

use mpc::offline::iknp::{
    receive_cot, receive_rot, send_cot, send_rot, setup_receiver, setup_sender,
};
use rand::RngCore;
use std::time::Instant;

async fn run(transport: &str, count: usize, reps: usize, spawn: bool) -> anyhow::Result<()> {
    let words = count / 64;
    let (mut c0, mut c1) = experiments::link::pair(transport).await?;
    let (mut r0, mut r1) = (mpc::share::os_rng(), mpc::share::os_rng());
    let (s, r) = tokio::join!(
        setup_sender(&mut c0, &mut r0),
        setup_receiver(&mut c1, &mut r1)
    );
    let (mut sender, mut receiver) = (s?, r?);
    let mut corr = vec![0u64; words * 64];
    r0.fill_bytes(bytemuck::cast_slice_mut(&mut corr));
    let mut choices = vec![0u64; words];
    r1.fill_bytes(bytemuck::cast_slice_mut(&mut choices));
    for _ in 0..reps {
        let (t, c) = (Instant::now(), procstat::cpu_seconds().unwrap_or(0.0));
        let (x, y);
        if spawn {
            let (cr, ch) = (std::sync::Arc::new(corr), std::sync::Arc::new(choices));
            let (cr2, ch2) = (cr.clone(), ch.clone());
            let hs = tokio::spawn(async move {
                let x = send_cot(&mut c0, &mut sender, &cr2).await;
                (c0, sender, x)
            });
            let hr = tokio::spawn(async move {
                let y = receive_cot(&mut c1, &mut receiver, &ch2).await;
                (c1, receiver, y)
            });
            let ((a0, s0, a), (a1, r1, b)) = (hs.await?, hr.await?);
            (c0, sender, c1, receiver) = (a0, s0, a1, r1);
            (corr, choices) = (
                std::sync::Arc::try_unwrap(cr).unwrap(),
                std::sync::Arc::try_unwrap(ch).unwrap(),
            );
            (x, y) = (a?, b?);
        } else {
            let (a, b) = tokio::join!(
                send_cot(&mut c0, &mut sender, &corr),
                receive_cot(&mut c1, &mut receiver, &choices)
            );
            (x, y) = (a?, b?);
        }
        let (dt, dc) = (
            t.elapsed().as_secs_f64(),
            procstat::cpu_seconds().unwrap_or(0.0) - c,
        );
        let ok = (0..words * 64).all(|j| {
            let r = (choices[j / 64] >> (j % 64)) & 1;
            y[j] == x[j].wrapping_add(r.wrapping_neg() & corr[j])
        });
        println!(
            "cot {dt:.4} s {:.3e}/s cpu {dc:.2} s correct {ok}",
            count as f64 / dt
        );
        let (t, c) = (Instant::now(), procstat::cpu_seconds().unwrap_or(0.0));
        let (a, b) = tokio::join!(
            send_rot(&mut c0, &mut sender, words),
            receive_rot(&mut c1, &mut receiver, &choices)
        );
        let (x, y) = (a?, b?);
        let (dt, dc) = (
            t.elapsed().as_secs_f64(),
            procstat::cpu_seconds().unwrap_or(0.0) - c,
        );
        let ok =
            (0..words * 64).all(|j| y[j] == x[j][((choices[j / 64] >> (j % 64)) & 1) as usize]);
        println!(
            "rot {dt:.4} s {:.3e}/s cpu {dc:.2} s correct {ok}",
            count as f64 / dt
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let transport = a.get(1).map_or("tls-tcp", |s| s.as_str()).to_string();
    let count = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(1 << 22);
    let reps = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let spawn = a.get(4).is_some_and(|s| s == "spawn");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(&transport, count, reps, spawn))
}
