//! The `cryptonets` design: the MNIST test set under encryption in the batch layout, batch by
//! batch (client encryption, server forward pass, sanitizing, client decryption), with
//! accuracy, agreement with the plaintext model, latency, throughput, op counts and sizes.

use super::report::Row;
use crate::config::hecnn::HecnnTask;
use crate::report::Report;
use anyhow::Result;
use ckks::{Evaluator, KeyGenerator};
use datasets::mnist::{load_bundled, Split};
use hecnn::{BatchCnn, CnnLayout, FloodConfig, BATCH_DEPTH};
use ml::models::cnn::CnnModel;
use ndarray::{s, Axis};
use std::time::Instant;

/// Runs the design and records its metrics under `cryptonets.`.
///
/// # Errors
/// Data, model or CKKS errors.
pub fn run(task: &HecnnTask, model: &CnnModel, report: &mut Report) -> Result<Row> {
    let preset = match &task.preset {
        Some(p) => crate::config::cryptogcn::preset_by_name(p)?,
        None => hecnn::choose_preset("batch", BATCH_DEPTH)?,
    };
    let params = preset.build()?;
    let he = BatchCnn::new(model, &params)?;
    let test = load_bundled(Split::Test)?.head(task.images);
    let x = test.images_f64();
    let plain = model.logits(x.view())?;

    let t = Instant::now();
    let mut kg = KeyGenerator::new(&params);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk)?;
    let rk = kg.relin_key(&sk)?;
    let keygen_s = t.elapsed().as_secs_f64();
    let pk_bytes = pk.to_bytes()?.len();
    let rk_bytes = rk.to_bytes(&params)?.len();
    let eval = Evaluator::new(&params).with_relin_key(rk);
    let pk_out = pk.at_level(he.output_level())?;

    let cap = he.batch_capacity();
    let mut he_logits = ndarray::Array2::zeros(plain.dim());
    let (mut enc_s, mut fwd_s, mut dec_s) = (Vec::new(), Vec::new(), Vec::new());
    let (mut in_ct_bytes, mut out_ct_bytes, mut ops) = (0, 0, Default::default());
    let mut eval_err = 0.0f64;
    for (b, chunk) in x.axis_chunks_iter(Axis(0), cap).enumerate() {
        let t = Instant::now();
        let ct = he.encrypt_batch(&pk, chunk)?;
        enc_s.push(t.elapsed().as_secs_f64());
        eval.reset_counters();
        let t = Instant::now();
        let raw = he.forward(&eval, &ct)?;
        let out = he.sanitize_logits(&eval, &raw, &pk_out, &FloodConfig::default())?;
        fwd_s.push(t.elapsed().as_secs_f64());
        // The evaluation error alone (before the flood), for the report.
        let rows = b * cap..b * cap + ct.images;
        let unflooded = he.decrypt_logits(&sk, &raw)? - plain.slice(s![rows, ..]);
        eval_err = unflooded.iter().fold(eval_err, |m, v| m.max(v.abs()));
        if b == 0 {
            ops = eval.counters();
            in_ct_bytes = ct.pixels[0].to_bytes(&params)?.len();
            out_ct_bytes = out.classes[0].to_bytes(&params)?.len();
        }
        drop(ct);
        let t = Instant::now();
        let dec = he.decrypt_logits(&sk, &out)?;
        dec_s.push(t.elapsed().as_secs_f64());
        he_logits
            .slice_mut(s![b * cap..b * cap + dec.nrows(), ..])
            .assign(&dec);
        tracing::info!(
            batch = b,
            forward_s = fwd_s[b],
            "hecnn cryptonets batch done"
        );
    }
    let sc = super::report::scores(
        &he_logits,
        &plain,
        test.labels.as_slice().expect("contiguous"),
    );
    let (acc, plain_acc, agree, max_err) = (
        sc.accuracy_pct,
        sc.plaintext_accuracy_pct,
        sc.agreement_pct,
        sc.max_logit_error,
    );
    // Latency of one batch: the first (full) batch's server time, forward + sanitize.
    let latency = fwd_s[0];
    let throughput = cap.min(task.images) as f64 * 3600.0 / latency;
    let he_ops = hecnn::he_ops(&ops);
    let planned = he.planned_op_counts();
    let m = |k: &str, v: f64, r: &mut Report| r.metric(format!("cryptonets.{k}"), v);
    m("test_accuracy_pct", acc, report);
    m("plaintext_accuracy_pct", plain_acc, report);
    m("agreement_pct", agree, report);
    m("max_logit_error", max_err, report);
    m("max_logit_error_unflooded", eval_err, report);
    m("latency_s", latency, report);
    m("throughput_per_h", throughput, report);
    m("he_ops_count", he_ops as f64, report);
    m("he_ops_planned", hecnn::he_ops(&planned) as f64, report);
    m("mul_const", ops.mul_const as f64, report);
    m("ct_mul", ops.mul as f64, report);
    m("rescale", ops.rescale as f64, report);
    m("rotate", ops.rotate as f64, report);
    m("batch_images", cap as f64, report);
    m("batches", fwd_s.len() as f64, report);
    m("encrypt_s_per_batch", enc_s[0], report);
    m("decrypt_s_per_batch", dec_s[0], report);
    m("total_server_s", fwd_s.iter().sum(), report);
    m("keygen_s", keygen_s, report);
    m("public_key_bytes", pk_bytes as f64, report);
    m("relin_key_bytes", rk_bytes as f64, report);
    m("input_ct_bytes", in_ct_bytes as f64, report);
    m(
        "upload_bytes_per_batch",
        (in_ct_bytes * ct_count(model)) as f64,
        report,
    );
    m("output_ct_bytes", out_ct_bytes as f64, report);
    report.note(format!(
        "cryptonets: {} at {}, {} images per batch, depth {BATCH_DEPTH}; machine {}",
        model.spec.name,
        params.name(),
        cap,
        crate::report::machine()
    ));
    Ok(Row {
        design: "cryptonets (batch layout)".into(),
        preset: params.name().to_string(),
        accuracy_pct: acc,
        agreement_pct: agree,
        latency_s: latency,
        throughput_per_h: throughput,
        he_ops,
    })
}

fn ct_count(model: &CnnModel) -> usize {
    model.spec.pixels()
}
