//! A hoisted linear combination `Σ_{i<k} pt_i ⊙ rot(ct, s_i)` (the inner loop of a linear map's
//! hoisted strategy) by the per-rotation path (`rotate_hoisted`, then `mul_plain` and `add` per
//! term: one ModDown per rotation) against the lazy path (`rotate_hoisted_ext`, products over
//! `Q·P`, one `mod_down_ext`), and the parts the `hegcn` cost model weighs: a product over `Q`
//! against one over `Q·P`, and a ModDown.
//!
//! Parameters: those `hegcn::choose_params` gives the quickstart's ST-GCN (N = 2^15, 14 levels,
//! 40-bit scale, 50-bit first and special primes, 5 special primes, dnum 3), at level 8 (the
//! middle of the model) and, for the ModDown, also at levels 12 and 4.
//!
//! Run: `cargo bench -p ckks --bench hoisted_sum`. Rayon is pinned to one thread, the calling
//! one (as in `ckks_ops`).

use ckks::{
    Ciphertext, CkksParams, Dnum, Encoder, Evaluator, KeyGenerator, Levels, LogN, Plaintext,
    PrimeBits, ScaleBits, SpecialPrimes,
};
use criterion::{black_box, Criterion};
use std::time::Duration;

fn params() -> CkksParams {
    CkksParams::builder()
        .name("quickstart-tailored")
        .log_n(LogN(15))
        .scale_bits(ScaleBits(40))
        .levels(Levels(14))
        .first_prime_bits(PrimeBits(50))
        .special_primes(SpecialPrimes(5))
        .special_prime_bits(PrimeBits(50))
        .dnum(Dnum(3))
        .build()
        .expect("quickstart parameters build")
}

fn old_path(eval: &Evaluator, ct: &Ciphertext, steps: &[i64], pts: &[Plaintext]) -> Ciphertext {
    let rots = eval.rotate_hoisted(ct, steps).expect("rotate");
    let mut acc = eval.mul_plain(&rots[0], &pts[0]).expect("mul");
    for (r, pt) in rots.iter().zip(pts).skip(1) {
        eval.add_assign(&mut acc, &eval.mul_plain(r, pt).expect("mul"))
            .expect("add");
    }
    acc
}

fn lazy_path(eval: &Evaluator, ct: &Ciphertext, steps: &[i64], pts: &[Plaintext]) -> Ciphertext {
    let rots = eval.rotate_hoisted_ext(ct, steps).expect("rotate");
    let mut acc = eval.mul_plain_ext(&rots[0], &pts[0]).expect("mul");
    for (r, pt) in rots.iter().zip(pts).skip(1) {
        eval.mul_plain_add_assign_ext(&mut acc, r, pt).expect("mul");
    }
    eval.mod_down_ext(acc).expect("mod down")
}

fn main() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build_global()
        .expect("rayon pool");
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let params = params();
    let mut kg = KeyGenerator::from_seed(&params, [1u8; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).expect("pk");
    let steps: Vec<i64> = (1..=8).collect();
    let eval =
        Evaluator::new(&params).with_galois_keys(kg.galois_keys(&sk, &steps, false).expect("gk"));
    let enc = Encoder::new(&params);
    let x: Vec<f64> = (0..params.slots())
        .map(|i| ((i * 37 % 1000) as f64) / 1000.0 - 0.5)
        .collect();
    let top = params.max_level();
    let fresh = pk
        .encrypt(&enc.encode(&x, top, params.default_scale()).expect("encode"))
        .expect("encrypt");
    let mut g = c.benchmark_group("hoisted_sum");
    for level in [12, 8, 4] {
        let ct = eval.drop_to_level(&fresh, level).expect("drop");
        let scale = params.q_primes()[level] as f64;
        let pts: Vec<Plaintext> = (0..8)
            .map(|i| enc.encode(&x[i..], level, scale).expect("encode"))
            .collect();
        let pts_ext: Vec<Plaintext> = (0..8)
            .map(|i| enc.encode_ext(&x[i..], level, scale).expect("encode"))
            .collect();
        if level == 8 {
            g.bench_function("k8_per_rotation_l8", |b| {
                b.iter(|| old_path(&eval, black_box(&ct), &steps, &pts))
            });
            g.bench_function("k8_lazy_l8", |b| {
                b.iter(|| lazy_path(&eval, black_box(&ct), &steps, &pts_ext))
            });
            g.bench_function("rotate_hoisted_k8_l8", |b| {
                b.iter(|| eval.rotate_hoisted(black_box(&ct), &steps))
            });
            g.bench_function("rotate_hoisted_ext_k8_l8", |b| {
                b.iter(|| eval.rotate_hoisted_ext(black_box(&ct), &steps))
            });
            g.bench_function("rotate_hoisted_ext_k1_l8", |b| {
                b.iter(|| eval.rotate_hoisted_ext(black_box(&ct), &steps[..1]))
            });
            g.bench_function("rotate_1_l8", |b| b.iter(|| eval.rotate(black_box(&ct), 1)));
            let rot = eval.rotate_hoisted_ext(&ct, &steps[..1]).expect("rotate");
            let mut acc = eval.mul_plain_ext(&rot[0], &pts_ext[0]).expect("mul");
            g.bench_function("mul_plain_add_ext_l8", |b| {
                b.iter(|| eval.mul_plain_add_assign_ext(&mut acc, black_box(&rot[0]), &pts_ext[1]))
            });
            let mut acc = eval.mul_plain(&ct, &pts[0]).expect("mul");
            g.bench_function("mul_plain_add_l8", |b| {
                b.iter(|| {
                    let p = eval.mul_plain(black_box(&ct), &pts[1]).expect("mul");
                    eval.add_assign(&mut acc, &p)
                })
            });
            g.bench_function("encode_l8", |b| {
                b.iter(|| enc.encode(black_box(&x), level, scale))
            });
            g.bench_function("encode_ext_l8", |b| {
                b.iter(|| enc.encode_ext(black_box(&x), level, scale))
            });
        }
        let lifted = eval.lift_ext(&ct).expect("lift");
        g.bench_function(format!("mod_down_ext_l{level}"), |b| {
            b.iter(|| eval.mod_down_ext(black_box(lifted.clone())))
        });
    }
    g.finish();
    c.final_summary();
}
