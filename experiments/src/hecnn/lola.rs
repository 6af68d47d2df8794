//! The `lola` design: MNIST test images one at a time under encryption in the single-image
//! layout (client packing and encryption, server forward pass and sanitizing, client
//! decryption): accuracy and agreement on `lola_images` images, the latency of one image (the
//! server's forward pass and sanitizing, median of `lola_latency_runs` images) on one thread
//! and on all cores, op counts, key and ciphertext sizes (the upload of one image encrypted
//! with the client's secret key, seeded, and with its public key). `lola.throughput_per_h` is one image
//! after the other on all cores (`3600 / latency_all_cores_s`), not a batch layout's figure;
//! `lola.accuracy_run_s` is the wall time of the accuracy run (client and server work, images
//! in parallel).

use super::keys::ClientKeys;
use super::report::Row;
use crate::config::hecnn::HecnnTask;
use crate::report::Report;
use anyhow::Result;
use ckks::CkksParams;
use ckks::{Evaluator, PublicKey, SecretKey};
use datasets::mnist::{load_bundled, Split};
use hecnn::{
    CnnLayout, EncryptedImage, EncryptedLogit, FfConvCnn, FloodConfig, LolaCnn, LOLA_DEPTH,
};
use ml::models::cnn::CnnModel;
use ndarray::Array2;
use rayon::prelude::*;
use std::time::Instant;

/// Each image of `x` through the whole protocol (client encryption under `pk` by `he`'s
/// client side, server forward pass of `layout` and sanitizing, client decryption with `sk`),
/// images in parallel: one row of logits per image.
pub(crate) fn encrypted_logits<L>(
    layout: &L,
    he: &LolaCnn,
    eval: &Evaluator,
    pk: &PublicKey,
    sk: &SecretKey,
    x: &Array2<f64>,
) -> Result<Array2<f64>>
where
    L: CnnLayout<Input = EncryptedImage, Output = EncryptedLogit> + Sync,
{
    let pk0 = pk.at_level(he.output_level())?;
    let rows: Vec<Vec<f64>> = x
        .outer_iter()
        .into_par_iter()
        .map(|row| {
            let ct = he.encrypt_image(pk, row.as_slice().expect("contiguous"))?;
            let out = layout.forward(eval, &ct)?;
            let out = he.sanitize_logits(eval, &out, &pk0, &FloodConfig::default())?;
            Ok(he.decrypt_logits(sk, &out)?)
        })
        .collect::<Result<_>>()?;
    let classes = he.model().spec.classes;
    Ok(Array2::from_shape_fn((rows.len(), classes), |(i, c)| {
        rows[i][c]
    }))
}

/// The server's time for one image (forward + sanitize), median over `images`.
pub(crate) fn median_latency<L: CnnLayout<Input = EncryptedImage, Output = EncryptedLogit>>(
    layout: &L,
    he: &LolaCnn,
    eval: &Evaluator,
    pk: &PublicKey,
    images: &Array2<f64>,
) -> Result<f64> {
    let pk0 = pk.at_level(he.output_level())?;
    let mut t = Vec::new();
    for row in images.outer_iter() {
        let ct = he.encrypt_image(pk, row.as_slice().expect("contiguous"))?;
        let start = Instant::now();
        let out = layout.forward(eval, &ct)?;
        he.sanitize_logits(eval, &out, &pk0, &FloodConfig::default())?;
        t.push(start.elapsed().as_secs_f64());
    }
    Ok(crate::common::median(&t))
}

/// The preset of the single-image designs: the task's, or the smallest with their depth.
fn params(task: &HecnnTask) -> Result<CkksParams> {
    let preset = match &task.preset {
        Some(p) => crate::config::cryptogcn::preset_by_name(p)?,
        None => hecnn::choose_preset("lola", LOLA_DEPTH)?,
    };
    Ok(preset.build()?)
}

/// Runs the `lola` design and records its metrics under `lola.`.
///
/// # Errors
/// Data, model or CKKS errors.
pub fn run(task: &HecnnTask, model: &CnnModel, report: &mut Report) -> Result<Row> {
    let params = params(task)?;
    let t = Instant::now();
    let he = LolaCnn::new(model, &params)?;
    let compile_s = t.elapsed().as_secs_f64();
    let design = "lola (single image, 1 thread)";
    single(task, (&he, &he), model, ("lola", design, compile_s), report)
}

/// Runs the `ffconv` design (an FFConv model in the single-image layout, its mixing folded
/// into the first dense layer) and records its metrics under `ffconv.`.
///
/// # Errors
/// Data, model or CKKS errors; a model without FFConv's rank.
pub fn run_ffconv(task: &HecnnTask, model: &CnnModel, report: &mut Report) -> Result<Row> {
    let params = params(task)?;
    let t = Instant::now();
    let ff = FfConvCnn::new(model, &params)?;
    let compile_s = t.elapsed().as_secs_f64();
    let design = format!(
        "ffconv r{} (single image, 1 thread)",
        model.spec.conv_maps()
    );
    let row = single(
        task,
        (&ff, ff.folded()),
        model,
        ("ffconv", &design, compile_s),
        report,
    )?;
    Ok(row)
}

/// Runs a pruned model (plain, after folding) in the single-image layout and records its
/// metrics under `pruned.<level>.`.
///
/// # Errors
/// As [`run`].
pub fn run_pruned(
    task: &HecnnTask,
    level: &str,
    model: &CnnModel,
    report: &mut Report,
) -> Result<Row> {
    let params = params(task)?;
    let t = Instant::now();
    let he = LolaCnn::new(model, &params)?;
    let compile_s = t.elapsed().as_secs_f64();
    let (prefix, design) = (format!("pruned.{level}"), format!("pruned {level}"));
    let taps = he.live_taps().len();
    report.metric(format!("{prefix}.live_taps"), taps as f64);
    single(
        task,
        (&he, &he),
        model,
        (&prefix, &design, compile_s),
        report,
    )
}

/// The images of `task` one at a time through `layout` (the client's side by `he`, the
/// compiled network it runs), compared with `model`'s plaintext logits; metrics under
/// `names.0`, table row named `names.1`, `names.2` the compile time.
fn single<L>(
    task: &HecnnTask,
    (layout, he): (&L, &LolaCnn),
    model: &CnnModel,
    (prefix, design, compile_s): (&str, &str, f64),
    report: &mut Report,
) -> Result<Row>
where
    L: CnnLayout<Input = EncryptedImage, Output = EncryptedLogit> + Sync,
{
    let params = he.params().clone();
    let test = load_bundled(Split::Test)?.head(task.lola_images);
    let x = test.images_f64();
    let plain = model.logits(x.view())?;

    let keys = ClientKeys::generate(&params, &he.rotation_steps())?;
    let (sk, pk, eval) = (&keys.sk, &keys.pk, &keys.eval);

    // Accuracy: every image through the whole protocol, images in parallel.
    let t = Instant::now();
    let he_logits = encrypted_logits(layout, he, eval, pk, sk, &x)?;
    let all_s = t.elapsed().as_secs_f64();

    // Latency and op counts of one image, then sizes.
    let runs = x
        .slice(ndarray::s![..task.lola_latency_runs.min(x.nrows()), ..])
        .to_owned();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let latency_1 = one.install(|| median_latency(layout, he, eval, pk, &runs))?;
    let latency_all = median_latency(layout, he, eval, pk, &runs)?;
    let ct = he.encrypt_image(pk, x.row(0).as_slice().expect("contiguous"))?;
    eval.reset_counters();
    let out = layout.forward(eval, &ct)?;
    let ops = eval.counters();
    let planned = layout.planned_op_counts();
    anyhow::ensure!(
        ops == planned,
        "{prefix} op counts {ops:?} differ from the plan {planned:?}"
    );
    let in_ct = ct.taps[0].to_bytes(&params)?.len();
    let seeded = he.encrypt_image_symmetric(sk, x.row(0).as_slice().expect("contiguous"))?;
    let in_ct_seeded = seeded.taps[0].to_bytes(&params)?.len();
    let out_ct = out.ct.to_bytes(&params)?.len();

    let sc = super::report::scores(
        &he_logits,
        &plain,
        test.labels.as_slice().expect("contiguous"),
    );
    let (acc, agree, n) = (sc.accuracy_pct, sc.agreement_pct, x.nrows() as f64);
    let he_ops = hecnn::he_ops(&ops);
    let m = |k: &str, v: f64, r: &mut Report| r.metric(format!("{prefix}.{k}"), v);
    m("test_accuracy_pct", acc, report);
    m("plaintext_accuracy_pct", sc.plaintext_accuracy_pct, report);
    m("agreement_pct", agree, report);
    m("images", n, report);
    m("max_logit_error", sc.max_logit_error, report);
    m("latency_s", latency_1, report);
    m("latency_all_cores_s", latency_all, report);
    m("throughput_per_h", 3600.0 / latency_all, report);
    m("accuracy_run_s", all_s, report);
    m("he_ops_count", he_ops as f64, report);
    m("rotate", ops.rotate as f64, report);
    m("key_switch", ops.key_switch as f64, report);
    m("mul_plain", ops.mul_plain as f64, report);
    m("ct_mul", ops.mul as f64, report);
    m("rescale", ops.rescale as f64, report);
    m("compile_s", compile_s, report);
    keys.report(prefix, report);
    m("input_ct_bytes", in_ct as f64, report);
    m(
        "upload_bytes_per_image",
        (in_ct_seeded * ct.taps.len()) as f64,
        report,
    );
    m(
        "upload_bytes_per_image_public_key",
        (in_ct * ct.taps.len()) as f64,
        report,
    );
    m("output_ct_bytes", out_ct as f64, report);
    let [(r1, k1, n1), (r2, k2, n2)] = he.dense_shapes();
    report.note(format!(
        "{prefix}: {} at {}, depth {LOLA_DEPTH}, {} tap ciphertexts per image; fc1 row block {r1}, \
         {k1} shifts ({n1} baby steps per giant); fc2 row block {r2}, {k2} shifts ({n2}); \
         latency = server forward + sanitize of one image, median of {} images, 1 thread \
         (`{prefix}.latency_s`) and all cores; machine {}",
        model.spec.name,
        params.name(),
        ct.taps.len(),
        runs.nrows(),
        crate::report::machine()
    ));
    Ok(Row {
        design: design.to_string(),
        preset: params.name().to_string(),
        accuracy_pct: acc,
        agreement_pct: agree,
        latency_s: latency_1,
        throughput_per_h: 3600.0 / latency_all,
        he_ops,
    })
}
