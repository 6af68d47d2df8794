//! Single-thread latency of the main CKKS operations for the N = 2^14 and N = 2^15 presets.
//!
//! Run: `cargo bench -p ckks --bench ckks_ops` (add `-- --quick` style filters as needed).
//! Rayon is pinned to one thread, the calling one, so the figures compare with single-threaded
//! SEAL/OpenFHE runs;
//! the SEAL counterpart is `experiments/baselines/ckks_seal.py`, which times the same operations
//! on the same inputs.
//!
//! What is measured, per iteration (matching the SEAL script):
//! - every operation is the out-of-place call users make (`eval.add(&a, &b)`, …) and returns a
//!   new ciphertext, which is dropped inside the timed loop; its buffers come from the crate's
//!   buffer pool (`ckks::pool`), as SEAL's results come from SEAL's memory pool (the script
//!   constructs a fresh `seal.Ciphertext()` per call and lets it go out of scope);
//! - `add`, `mul_relin`: two distinct ciphertexts at the top level (`ct + ct2`, `ct · ct2`
//!   with relinearization; no squaring shortcut on either side);
//! - `mul_plain`: ciphertext × plaintext at the same level; `rescale`: a relinearized product;
//! - `rotate_1`: one rotation with key switching; `rotate_plain_16`: 16 independent rotations
//!   by 1..=16, each result dropped at once (SEAL has no hoisting); `rotate_hoisted_16`: the
//!   same 16 rotations sharing one decomposition (Dyad only; compare it with SEAL's 16);
//! - `keygen_galois_key`: one Galois key (`5^1`), including its sampling;
//! - `encode`, `encrypt_pk` (public key), `decrypt_decode` (decryption and decoding to reals).
//!
//! Last measured (2026-11-27, shared 2-core machine, load average 23–35, interleaved with the SEAL
//! script): every operation at or below SEAL's latency at both N; at N = 2^14, e.g., add 1.2–1.8 ms
//! vs 2.4 ms, ct×ct+relin 41–44 ms vs 99 ms, rotation 44–47 ms vs 93 ms (all inflated by the
//! load). Per-operation ratios and a load-independent estimate are in the crate docs
//! (`ckks` § Performance).

use ckks::{presets, Ciphertext, Encoder, Evaluator, KeyGenerator, Preset};
use criterion::{black_box, Criterion};
use std::time::Duration;

fn bench_preset(c: &mut Criterion, preset: Preset) {
    let params = preset.build().expect("preset builds");
    let name = preset.name;
    let mut kg = KeyGenerator::from_seed(&params, [1u8; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).expect("pk");
    let hoist_steps: Vec<i64> = (1..=16).collect();
    let eval = Evaluator::new(&params)
        .with_relin_key(kg.relin_key(&sk).expect("rk"))
        .with_galois_keys(kg.galois_keys(&sk, &hoist_steps, false).expect("gk"));
    let enc = Encoder::new(&params);
    let l = params.max_level();
    let x: Vec<f64> = (0..params.slots())
        .map(|i| ((i * 37 % 1000) as f64) / 1000.0 - 0.5)
        .collect();
    let pt = enc.encode(&x, l, params.default_scale()).expect("encode");
    let ct: Ciphertext = pk.encrypt(&pt).expect("encrypt");
    let ct2: Ciphertext = pk.encrypt(&pt).expect("encrypt");
    let prod = eval.mul(&ct, &ct2).expect("mul");

    let mut g = c.benchmark_group(name);
    g.bench_function("encode", |b| {
        b.iter(|| enc.encode(black_box(&x), l, params.default_scale()))
    });
    g.bench_function("encrypt_pk", |b| {
        b.iter(|| pk.encrypt(black_box(&pt)).expect("encrypt"))
    });
    g.bench_function("decrypt_decode", |b| {
        b.iter(|| enc.decode(&sk.decrypt(black_box(&ct)).expect("dec")))
    });
    g.bench_function("add", |b| b.iter(|| eval.add(black_box(&ct), &ct2)));
    g.bench_function("mul_plain", |b| {
        b.iter(|| eval.mul_plain(black_box(&ct), &pt))
    });
    g.bench_function("mul_relin", |b| b.iter(|| eval.mul(black_box(&ct), &ct2)));
    g.bench_function("rescale", |b| b.iter(|| eval.rescale(black_box(&prod))));
    g.bench_function("rotate_1", |b| b.iter(|| eval.rotate(black_box(&ct), 1)));
    g.bench_function("rotate_hoisted_16", |b| {
        b.iter(|| eval.rotate_hoisted(black_box(&ct), &hoist_steps))
    });
    g.bench_function("rotate_plain_16", |b| {
        b.iter(|| {
            for &s in &hoist_steps {
                black_box(eval.rotate(black_box(&ct), s).expect("rotate"));
            }
        })
    });
    g.bench_function("keygen_galois_key", |b| {
        let g5 = ckks::galois_element_for_step(&params, 1);
        b.iter(|| kg.galois_key(&sk, black_box(g5)))
    });
    g.finish();
}

fn main() {
    // One rayon worker, and it is the calling thread: every operation runs on the thread that
    // calls it, as SEAL's do (a separate worker would add two thread hand-offs per call).
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build_global()
        .expect("rayon pool");
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_preset(&mut c, presets::N14_L7_S40_128BIT);
    bench_preset(&mut c, presets::N15_L17_S40_128BIT);
    c.final_summary();
}
