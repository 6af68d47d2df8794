//! The `matrix` design: MNIST test images under encryption in the matrix layout
//! ([`hecnn::MatrixCnn`]: a batch of `slots / 1024` images as one data matrix in one
//! ciphertext), batch by batch through the whole protocol (client encryption, server forward
//! pass and sanitizing, client decryption; batches in parallel): accuracy and agreement on
//! `matrix_images` images, the latency of one batch (server forward + sanitize, median of
//! `lola_latency_runs` passes on all cores, one on one thread), throughput (one batch after
//! the other, and the parallel accuracy run's), op counts (checked against the plan), the
//! upload of one batch (one ciphertext, seeded with the client's secret key, and under its
//! public key) and the keys, the planner's estimate of one batch against the measured latency
//! (`estimate_error_pct` on one thread, `estimate_error_all_cores_pct` on all cores), beside
//! the published matrix-encoding figure (32 images in ~287 s on 40 vCPUs, one 19.8 MB
//! upload).

use super::keys::ClientKeys;
use super::report::Row;
use crate::config::hecnn::HecnnTask;
use crate::report::Report;
use anyhow::Result;
use ckks::{Evaluator, PublicKey, SecretKey};
use datasets::mnist::{load_bundled, Split};
use hecnn::{CnnLayout, FloodConfig, MatrixCnn, MATRIX_DEPTH};
use ml::models::cnn::CnnModel;
use ndarray::{s, Array2, Axis};
use rayon::prelude::*;
use std::time::Instant;

/// Every batch of `x` through the whole protocol (client encryption under `pk`, server
/// forward pass and sanitizing, client decryption), batches in parallel over the cores: the
/// logits, one row per image.
fn encrypted_logits(
    he: &MatrixCnn,
    eval: &Evaluator,
    (pk, sk): (&PublicKey, &SecretKey),
    x: &Array2<f64>,
) -> Result<Array2<f64>> {
    let pk0 = pk.at_level(he.output_level())?;
    let chunks: Vec<_> = x.axis_chunks_iter(Axis(0), he.batch_capacity()).collect();
    let parts: Vec<Array2<f64>> = chunks
        .into_par_iter()
        .map(|chunk| {
            let ct = he.encrypt_batch(pk, chunk)?;
            let (out, _) = server_pass(he, eval, &pk0, &ct)?;
            Ok(he.decrypt_logits(sk, &out)?)
        })
        .collect::<Result<_>>()?;
    let views: Vec<_> = parts.iter().map(Array2::view).collect();
    Ok(ndarray::concatenate(Axis(0), &views)?)
}

/// The server's time for one batch: forward pass and sanitizing.
fn server_pass(
    he: &MatrixCnn,
    eval: &Evaluator,
    pk0: &PublicKey,
    ct: &hecnn::matrix::EncryptedMatrix,
) -> Result<(hecnn::matrix::EncryptedMatrixLogits, f64)> {
    let t = Instant::now();
    let out = he.forward(eval, ct)?;
    let out = he.sanitize_logits(eval, &out, pk0, &FloodConfig::default())?;
    Ok((out, t.elapsed().as_secs_f64()))
}

/// The planner's estimate of one batch (forward + sanitize) on one thread and on all cores,
/// priced with a probe of this machine's op costs (`probe_reps` runs per kind).
fn estimates(task: &HecnnTask, he: &MatrixCnn, preset: ckks::Preset) -> Result<[f64; 2]> {
    use hecnn::planner::{estimate, probe_costs, Candidate};
    let c = Candidate::of_layout(he, preset, he.batch_capacity(), 1);
    let all = rayon::current_num_threads();
    let costs = probe_costs(std::slice::from_ref(&c), &[1, all], task.probe_reps)?;
    Ok([
        estimate(&c, &costs[0]).total_s,
        estimate(&c, &costs[1]).total_s,
    ])
}

/// Runs the design and records its metrics under `matrix.`.
///
/// # Errors
/// Data, model or CKKS errors; op counts that differ from the plan.
pub fn run(task: &HecnnTask, model: &CnnModel, report: &mut Report) -> Result<Row> {
    let preset = match &task.preset {
        Some(p) => crate::config::cryptogcn::preset_by_name(p)?,
        None => hecnn::choose_preset("matrix", MATRIX_DEPTH)?,
    };
    let params = preset.build()?;
    let t = Instant::now();
    let he = MatrixCnn::new(model, &params)?;
    let compile_s = t.elapsed().as_secs_f64();
    let test = load_bundled(Split::Test)?.head(task.matrix_images);
    let x = test.images_f64();
    let plain = model.logits(x.view())?;

    let keys = ClientKeys::generate(&params, &he.rotation_steps())?;
    let (sk, pk, eval) = (&keys.sk, &keys.pk, &keys.eval);
    let pk0 = pk.at_level(he.output_level())?;

    let cap = he.batch_capacity();
    // Accuracy: every batch through the whole protocol, batches in parallel.
    let t = Instant::now();
    let he_logits = encrypted_logits(&he, eval, (pk, sk), &x)?;
    let all_s = t.elapsed().as_secs_f64();

    // One batch alone: its op counts against the plan, the error before the flood, the
    // client's times and the upload (seeded, and under the public key).
    let first = x.slice(s![..cap.min(x.nrows()), ..]);
    let t = Instant::now();
    let ct = he.encrypt_batch(pk, first)?;
    let encrypt_s = t.elapsed().as_secs_f64();
    eval.reset_counters();
    let raw = he.forward(eval, &ct)?;
    let ops = eval.counters();
    let planned = he.planned_op_counts();
    anyhow::ensure!(
        ops == planned,
        "matrix op counts {ops:?} differ from the plan {planned:?}"
    );
    let unflooded = he.decrypt_logits(sk, &raw)? - plain.slice(s![..ct.images, ..]);
    let eval_err = unflooded.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let upload_pk = ct.ct.to_bytes(&params)?.len();
    let upload = he
        .encrypt_batch_symmetric(sk, first)?
        .ct
        .to_bytes(&params)?
        .len();

    // Latency of one batch: median of `lola_latency_runs` passes on all cores, one on 1 thread.
    let mut server = Vec::new();
    for _ in 0..task.lola_latency_runs {
        server.push(server_pass(&he, eval, &pk0, &ct)?.1);
    }
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let (out, latency_1) = one.install(|| server_pass(&he, eval, &pk0, &ct))?;
    let t = Instant::now();
    he.decrypt_logits(sk, &out)?;
    let decrypt_s = t.elapsed().as_secs_f64();
    let out_ct = out.ct.to_bytes(&params)?.len();

    let [est_1, est_all] = estimates(task, &he, preset)?;

    let sc = super::report::scores(
        &he_logits,
        &plain,
        test.labels.as_slice().expect("contiguous"),
    );
    let latency = crate::common::median(&server);
    let throughput = cap as f64 * 3600.0 / latency;
    let batches = x.nrows().div_ceil(cap);
    let he_ops = hecnn::he_ops(&ops);
    let m = |k: &str, v: f64, r: &mut Report| r.metric(format!("matrix.{k}"), v);
    m("test_accuracy_pct", sc.accuracy_pct, report);
    m("plaintext_accuracy_pct", sc.plaintext_accuracy_pct, report);
    m("agreement_pct", sc.agreement_pct, report);
    m("images", x.nrows() as f64, report);
    m("max_logit_error", sc.max_logit_error, report);
    m("max_logit_error_unflooded", eval_err, report);
    m("latency_s", latency, report);
    m("latency_1_thread_s", latency_1, report);
    m("throughput_per_h", throughput, report);
    m("estimate_s", est_1, report);
    m(
        "estimate_error_pct",
        100.0 * (est_1 - latency_1) / latency_1,
        report,
    );
    m("estimate_all_cores_s", est_all, report);
    m(
        "estimate_error_all_cores_pct",
        100.0 * (est_all - latency) / latency,
        report,
    );
    m(
        "throughput_parallel_per_h",
        x.nrows() as f64 * 3600.0 / all_s,
        report,
    );
    m("accuracy_run_s", all_s, report);
    m("he_ops_count", he_ops as f64, report);
    m("rotate", ops.rotate as f64, report);
    m("key_switch", ops.key_switch as f64, report);
    m("mul_plain", ops.mul_plain as f64, report);
    m("ct_mul", ops.mul as f64, report);
    m("rescale", ops.rescale as f64, report);
    m("batch_images", cap as f64, report);
    m("batches", batches as f64, report);
    m("encrypt_s_per_batch", encrypt_s, report);
    m("decrypt_s_per_batch", decrypt_s, report);
    m("compile_s", compile_s, report);
    keys.report("matrix", report);
    m("upload_bytes", upload as f64, report);
    m("upload_bytes_public_key", upload_pk as f64, report);
    m("output_ct_bytes", out_ct as f64, report);
    let [pc, p1, p2] = he.plan().products();
    report.note(format!(
        "matrix: {} at {}, depth {MATRIX_DEPTH}, {cap} images per ciphertext (blocks of {} \
         slots); plaintext products conv {pc}, fc1 {p1}, fc2 {p2}; latency = server forward + \
         sanitize of one batch, median of {} passes on all cores (`matrix.latency_s`), one \
         on 1 thread; `throughput_per_h` one batch after the other, \
         `throughput_parallel_per_h` the accuracy run's {batches} batches in parallel over the \
         cores, client work included; published (matrix encoding, Chiang 2022): 32 images in ~287 s on \
         40 vCPUs, one 19.8 MB upload; machine {}",
        model.spec.name,
        params.name(),
        he.plan().block(),
        server.len(),
        crate::report::machine()
    ));
    Ok(Row {
        design: format!("matrix ({cap} images per ciphertext)"),
        preset: params.name().to_string(),
        accuracy_pct: sc.accuracy_pct,
        agreement_pct: sc.agreement_pct,
        latency_s: latency,
        throughput_per_h: throughput,
        he_ops,
    })
}
