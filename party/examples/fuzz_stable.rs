//! A bounded fuzz driver on the stable toolchain, for machines without `cargo fuzz`: NOT
//! coverage-guided. It mutates the seeds of [`party::fuzzing::seeds`] (bit flips, byte
//! insertions and deletions, splices, overwritten lengths, truncation) and random bytes, runs
//! every decoder of [`party::fuzzing::TARGETS`] for a time budget each, and reports executions
//! and panics (each panicking input is written to `<out>/<target>-<n>.bin`). The
//! coverage-guided fuzzing of the same entry points is `party/fuzz/run.sh` (libFuzzer).
//!
//! ```text
//! cargo run -p party --release --example fuzz_stable -- [SECONDS_PER_TARGET] [SEED] [OUT_DIR]
//! cargo run -p party --release --example fuzz_stable -- write-seeds DIR   # DIR/<target>/seed-<n>
//! ```
//! The seed (printed) makes a run reproducible; by default it comes from the OS. `write-seeds`
//! writes the seed corpus for `cargo fuzz` (used by `party/fuzz/run.sh`).

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::{Duration, Instant};

fn mutate(rng: &mut ChaCha20Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut b = if corpus.is_empty() || rng.gen_ratio(1, 16) {
        let mut v = vec![0u8; rng.gen_range(0..256)];
        rng.fill_bytes(&mut v);
        v
    } else {
        corpus[rng.gen_range(0..corpus.len())].clone()
    };
    for _ in 0..rng.gen_range(1..6) {
        match rng.gen_range(0..7) {
            0 if !b.is_empty() => {
                let i = rng.gen_range(0..b.len());
                b[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if !b.is_empty() => {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.gen();
            }
            2 => {
                let i = rng.gen_range(0..=b.len());
                b.insert(i, rng.gen());
            }
            3 if !b.is_empty() => {
                let i = rng.gen_range(0..b.len());
                b.remove(i);
            }
            4 if !b.is_empty() => {
                b.truncate(rng.gen_range(0..b.len()));
            }
            5 if b.len() >= 8 => {
                // An interesting length or count where a u32/u64 prefix may sit.
                let i = rng.gen_range(0..=b.len() - 8);
                let v: u64 = match rng.gen_range(0..4) {
                    0 => 0,
                    1 => u64::MAX,
                    2 => 1 << rng.gen_range(0..64),
                    _ => rng.gen_range(0..4096),
                };
                b[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
            6 if !corpus.is_empty() => {
                let other = &corpus[rng.gen_range(0..corpus.len())];
                let cut = rng.gen_range(0..=b.len());
                let from = rng.gen_range(0..=other.len());
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    b
}

fn write_seeds(dir: &std::path::Path) {
    for (name, _) in party::fuzzing::TARGETS {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("corpus directory");
        for (i, s) in party::fuzzing::seeds(name).iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i}")), s).expect("write seed");
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("write-seeds") {
        let dir = args.nth(1).expect("write-seeds DIR");
        write_seeds(std::path::Path::new(&dir));
        return;
    }
    let secs: u64 = args.next().map_or(10, |a| a.parse().expect("seconds"));
    let seed: u64 = args.next().map_or_else(
        || rand::rngs::OsRng.next_u64(),
        |a| a.parse().expect("seed"),
    );
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| "fuzz-stable-crashes".into()));
    println!("fuzz_stable (not coverage-guided), {secs} s per target, seed {seed}");
    println!(
        "{:<16} {:>12} {:>10} {:>8}",
        "target", "executions", "exec/s", "panics"
    );
    // Panics are reported below with their input; keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let mut total_panics = 0;
    for (i, (name, target)) in party::fuzzing::TARGETS.iter().enumerate() {
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ i as u64);
        let corpus = party::fuzzing::seeds(name);
        let t = Instant::now();
        let (mut execs, mut panics) = (0u64, 0u32);
        while t.elapsed() < Duration::from_secs(secs) {
            for _ in 0..64 {
                let input = mutate(&mut rng, &corpus);
                execs += 1;
                if std::panic::catch_unwind(|| target(&input)).is_err() {
                    panics += 1;
                    std::fs::create_dir_all(&out).expect("crash directory");
                    let p = out.join(format!("{name}-{panics}.bin"));
                    std::fs::write(&p, &input).expect("write crash input");
                    eprintln!("{name}: panic on input saved to {}", p.display());
                }
            }
        }
        let rate = execs as f64 / t.elapsed().as_secs_f64();
        println!("{name:<16} {execs:>12} {rate:>10.0} {panics:>8}");
        total_panics += panics;
    }
    if total_panics > 0 {
        std::process::exit(1);
    }
}
