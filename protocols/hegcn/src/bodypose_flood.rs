//! Ignored measurement (`cargo test --release -p hegcn --lib bodypose_flood -- --ignored
//! --nocapture`): the committed BodyPose poly model at its 128-bit preset on the first test
//! poses, batched in one forward pass. Prints the logit error of the unmasked head (the old
//! reply), of the masked head, and of the sanitized reply at several `flood_bits`, with top-1
//! agreement, the smallest top-1 margin and the time of the mask and of the sanitization.

use std::path::Path;
use std::time::Instant;

use ckks::{Ciphertext, Encoder, Evaluator, KeyGenerator, PublicKey, SecretKey};
use datasets::skeleton::{BodyPoseNormalization, BodyPoseSet};
use ndarray::{s, Array2, Axis};

use crate::{choose_preset, EncryptedLogits, FloodConfig, HeStgcn, Packing};

const POSES: usize = 8;

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

/// Max |error|, poses whose top-1 agrees with the plaintext model.
fn compare(got: &[f64], want: &Array2<f64>) -> (f64, usize) {
    let q = want.ncols();
    let mut err = 0.0f64;
    let mut agree = 0;
    for (i, row) in want.outer_iter().enumerate() {
        let g = &got[i * q..(i + 1) * q];
        err = g
            .iter()
            .zip(row)
            .map(|(a, b)| (a - b).abs())
            .fold(err, f64::max);
        agree += usize::from(argmax(g) == argmax(row.as_slice().unwrap()));
    }
    (err, agree)
}

#[test]
#[ignore = "N = 2^15: ~0.6 GiB of Galois keys and minutes of CPU"]
fn bodypose_flood() {
    let stem = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/models/bodypose-stgcn3x128-d4-poly");
    let json = std::fs::read_to_string(stem.with_extension("json")).unwrap();
    let w = std::fs::read(stem.with_extension("safetensors")).unwrap();
    let folded = stgcn::StGcn::from_json_and_safetensors(&json, &w)
        .unwrap()
        .fold();
    let (preset, plan) = choose_preset(&folded, Packing::Ama).unwrap();
    let params = preset.build().unwrap();
    let he = HeStgcn::compile_batched(&folded, Packing::Ama, &params, POSES).unwrap();
    let test = BodyPoseSet::load_bundled(BodyPoseNormalization::AsProvided)
        .unwrap()
        .set
        .split_stratified(0.2, 42)
        .unwrap()
        .1;
    let data = test.data.slice(s![..POSES, .., .., .., ..]).mapv(f64::from);
    let want = folded.forward(data.view()).unwrap();
    let margin = want
        .outer_iter()
        .map(|r| {
            let mut v = r.to_vec();
            v.sort_by(|a, b| b.total_cmp(a));
            v[0] - v[1]
        })
        .fold(f64::INFINITY, f64::min);
    let max_logit = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
    println!("{} (depth {}), {POSES} poses, max |logit| {max_logit:.2}, smallest top-1 margin {margin:.3}", preset.name, plan.depth);
    let t = Instant::now();
    let mut kg = KeyGenerator::new(&params);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let eval = Evaluator::new(&params)
        .with_relin_key(kg.relin_key(&sk).unwrap())
        .with_galois_keys(kg.galois_keys(&sk, &he.rotation_steps(), false).unwrap());
    println!("keys {:.1}s", t.elapsed().as_secs_f64());
    let xs: Vec<_> = (0..POSES).map(|i| data.index_axis(Axis(0), i)).collect();
    let mut cur = he.encrypt_clips(&pk, &xs).unwrap();
    let t = Instant::now();
    for i in 0..he.num_blocks() {
        cur = he.block(&eval, i, &cur).unwrap();
    }
    let old = he.head_unmasked(&eval, &cur).unwrap();
    println!("forward without the mask {:.1}s", t.elapsed().as_secs_f64());
    let positions = he.head(&eval, &cur).unwrap().positions;
    let dec = |cts: Vec<Ciphertext>| {
        let l = EncryptedLogits {
            cts,
            positions: positions.clone(),
        };
        he.decrypt_logits(&sk, &l).unwrap()
    };
    let (err, agree) = compare(&dec(old.clone()), &want);
    println!("unmasked head (old reply): max |logit error| {err:.3e}, top-1 {agree}/{POSES}");
    let mut masked = old.clone();
    let t = Instant::now();
    he.mask_logits(&eval, &mut masked).unwrap();
    let mask_s = t.elapsed().as_secs_f64();
    let (err, agree) = compare(&dec(masked.clone()), &want);
    println!("masked: max |logit error| {err:.3e}, top-1 {agree}/{POSES}; mask {:.1} ms for {} ciphertexts", mask_s * 1e3, masked.len());
    let pk0 = pk.at_level(he.output_level()).unwrap();
    let logits = EncryptedLogits {
        cts: masked,
        positions,
    };
    print_floods(&he, &eval, &sk, &pk0, &logits, &want);
}

/// Sanitizes the masked logits at several `flood_bits` and prints error, agreement and time.
fn print_floods(
    he: &HeStgcn,
    eval: &Evaluator,
    sk: &SecretKey,
    pk0: &PublicKey,
    logits: &EncryptedLogits,
    want: &Array2<f64>,
) {
    let params = he.params();
    let positions = &logits.positions;
    let enc = Encoder::new(params);
    let n = params.n();
    for bits in [0u32, 2, 4, 6, 8, 54] {
        let cfg = FloodConfig {
            flood_bits: bits,
            ..FloodConfig::default()
        };
        let f = he.logit_flood(&cfg);
        let t = Instant::now();
        match he.sanitize_logits(eval, logits, pk0, &cfg) {
            Ok(r) => {
                let secs = t.elapsed().as_secs_f64();
                let (err, agree) = compare(&he.decrypt_logits(sk, &r).unwrap(), want);
                let slots = enc.decode(&sk.decrypt(&r.cts[0]).unwrap());
                let rest: Vec<f64> = (0..slots.len())
                    .filter(|&s| !positions.contains(&(0, s)))
                    .map(|s| slots[s])
                    .collect();
                let rms =
                    (rest.iter().map(|v| v * v).sum::<f64>() / rest.len().max(1) as f64).sqrt();
                println!(
                    "flood_bits {bits}: W = 2^{:.1}, hiding {:.1} bits, flood sd {:.3e}, max |logit error| {err:.3e}, top-1 {agree}/{POSES}; sanitize {:.1} ms; rms of the {} other slots {rms:.3e}",
                    f.width(n).log2(),
                    f.hiding_bits(n),
                    f.slot_error_sd(n, params.default_scale()),
                    secs * 1e3,
                    rest.len()
                );
            }
            Err(e) => println!("flood_bits {bits}: refused: {e}"),
        }
    }
}
