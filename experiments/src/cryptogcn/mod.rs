//! The `cryptogcn` task: encrypted ST-GCN inference with CKKS (crate [`hegcn`]), CryptoGCN's AMA
//! packing (Ran et al., NeurIPS 2022, §3) against the channel-major baseline packing, on the NTU
//! RGB+D shape (V = 25 joints, T frames, M persons, C = 3) with random weights and a random
//! input, and accuracy under encryption of a trained model on the Mocap-15 test set.
//!
//! What a run measures, per packing (`ama`, `baseline`):
//! - **counts** of every evaluator operation per stage and in total, from the compiled
//!   program ([`HeStgcn::planned_op_counts`](hegcn::HeStgcn::planned_op_counts), equal to what a forward pass counts — a latency
//!   run re-checks it): `<run>.he_ops_count` (all operations, [`hegcn::he_ops`]),
//!   `.rotations_count`, `.keyswitch_count`, `.pt_ct_mul_count`, `.ct_ct_mul_count`,
//!   `.rescale_count`, `.add_count`, per stage `<run>.<stage>_rotations_count` /
//!   `_he_ops_count`, and the ratios `ratio.<quantity>_baseline_over_ama`,
//!   `ama.he_ops_reduction_pct` (CryptoGCN reports 77.4 % fewer operations);
//! - **sizes**: input ciphertexts (`<run>.input_ciphertexts_count`, `.input_bytes`), one
//!   ciphertext at the top level and at level 0, Galois keys (`<run>.galois_keys_count`,
//!   `.galois_keys_bytes`: keys for exactly the steps the packing uses), public and
//!   relinearization keys (`keys.*_bytes`); byte sizes are the serialized sizes (seed-compressed
//!   key halves);
//! - **latency** of one sample, measured, for each configured packing and thread count
//!   (`latency_threads`, 0 = all cores): `<run>.latency_s` (all cores), `<run>.latency_1t_s`
//!   (one thread), per stage `<run>.<stage>_s[_1t]`, the client's `encrypt_s` / `decrypt_s`,
//!   the thread-time spent encoding weight plaintexts (`encode_thread_s`), the plaintext cache
//!   (`plaintext_cache_bytes`, `plaintext_cache_hit_pct`) and the max |logit error| against
//!   the plaintext model (`ntu_max_logit_error`; the logits' scale is
//!   `plain.ntu_max_abs_logit`). Galois keys are generated per stage (only that stage's
//!   steps) and dropped after it, so a full-width model runs in bounded memory; key
//!   generation is not part of the latency;
//! - **memory** of every latency run: `<run>.peak_rss_bytes` (the process's peak resident
//!   memory during the run), `<run>.start_rss_bytes` (resident when it started: compiled
//!   models, client keys) and per stage `<run>.<stage>_peak_rss_bytes`; the report's stage
//!   table adds the Galois keys each stage held and the resident memory after it. What is
//!   resident at a stage's peak (module `engine`): that stage's Galois keys and the
//!   relinearization key, each restricted to the stage's input level
//!   (`ckks::GaloisKeys::restrict_to_level`: ⌈(l+1)/3⌉·(l+4) of 6·21 limbs per half at
//!   `N15_L17_S40_128BIT`, 40 MiB at level 12 and 18 MiB at level 8 instead of 63 MiB); the
//!   plaintext cache (`plaintext_cache_mib`, released after every stage since no two stages
//!   encode at the same level); the baby-step rotations of a lockstep temporal convolution
//!   (`lockstep_mib`, default `hegcn::DEFAULT_LOCKSTEP_BYTES`); the block input, the stage's
//!   input and its output accumulators (linear in the width); the compiled programs (both
//!   packings; quadratic in the width, small); freed heap the allocator keeps (the stage
//!   table's "RSS after" rarely drops);
//! - **estimates** (only if `estimate = true`; never presented as measurements): the cost of
//!   each operation is probed at every level the model runs at (one thread), and
//!   `<run>.latency_1t_estimated_s` = Σ counts × per-op costs (with pre-encoded weights),
//!   `<run>.encode_1t_estimated_s` = plaintext products × encode cost (the extra time of
//!   encoding every weight on the fly, an upper bound);
//! - **packing planner** (only if `planner = true`, module `planned`): `hegcn::planner` prices
//!   every per-stage packing plan (AMA, channel-major, mixes with fused conversions) with costs
//!   probed in the pool of the first `latency_threads` entry and compiles the cheapest as the
//!   run `planned` (all the count and size metrics above with prefix `planned.`; its latency
//!   when `latency_packings` names `"planned"`): `planned.estimated_s`,
//!   `{ama,baseline}.planner_estimated_s`, `planned.best_mixed_estimated_s`,
//!   `planned.conversions_count`, `planned.plans_count`, `planned.estimate_error_pct` (estimate
//!   vs measured), `<run>.planner_estimate_error_pct`, `planned.max_logit_error`;
//! - **accuracy** (`[task.accuracy]`): a trained model (JSON + safetensors) on the first
//!   `samples` clips of the Mocap-15 cross-view test set (`dataset = "mocap15"`) or of the
//!   BodyPose test split (`"bodypose"`) under AMA at the model's 128-bit preset, as many clips
//!   per forward pass as the slots hold (`HeStgcn::compile_batched`):
//!   `ama.agreement_pct` (encrypted top-1 = plaintext top-1), `ama.max_logit_error`,
//!   `ama.encrypted_accuracy_pct`, `plain.accuracy_pct` on the same clips, `ama.samples_count`,
//!   the smallest plaintext top-1 margin `plain.min_logit_margin` (what the logit error must
//!   stay below), and the server latency per pass and per clip (`ama.<data>_pass_latency_s`,
//!   median over the passes after the first, when the plaintext cache is warm;
//!   `ama.<data>_latency_per_clip_s`, `<data>` = `mocap` or `bodypose`); with
//!   `stage_errors = true` the first clip is decrypted after every stage and compared with the
//!   plaintext twin (`ama.<stage>_max_error`, `ama.<stage>_max_abs`);
//! - **one sample through the party's service** (`[task.single]`, needs `accuracy`): test
//!   sample `index` in one session of `requests` requests through
//!   `party::server::infer::InferenceService` and `party::infer::client::InferClient` (the code
//!   of `party serve` and `he-infer`, over an in-memory channel), under the parameters the party
//!   tailors to the model (`<data>_single.*`) and, with `compare_preset`, under that named
//!   preset (`<data>_single_preset.*`): `.server_s` (the last request's server seconds),
//!   `.first_server_s`, `.key_bytes` (the whole key upload), `.galois_keys_count`,
//!   `.ring_degree_log2`, `.levels_count`, `.max_logit_error`, `.agreement_pct`, `.keys_s`,
//!   `.cache_hits_count` / `.cache_misses_count` (last request), `.plaintext_need_bytes` (the
//!   first request's misses × bytes per cache entry: what keeping every weight would take),
//!   `.flood_sd`. With `only = true` the whole-test-set accuracy run is skipped (the single
//!   part alone, e.g. `cryptogcn-single-bodypose.toml`). A one-frame, one-person model is
//!   served in the dense single-pose layout (`party::server::infer`'s layout rule).
//! - **learned-linearisation frontier** (`[task.accuracy.frontier]`, on the accuracy model, an
//!   `x²` or polynomial model): for each budget k, gates learned and the model fine-tuned
//!   (`ml::models::stgcn_gates`), then `frontier.<k>.test_accuracy_pct` (plaintext, whole test
//!   set), `frontier.<k>.latency_s` (**measured** server seconds per sample, AMA, tailored
//!   parameters, median of warm one-clip passes), `.agreement_pct`, `.max_logit_error`,
//!   `.depth_count`, `.nonlinear_nodes_count`; the same for the unpruned model
//!   (`frontier.x2.*`) and `frontier.relu.test_accuracy_pct` for a ReLU twin; plot
//!   `frontier.svg`. With `only = true` the whole-test-set accuracy run is skipped.
//! - **throughput** (`[task.accuracy.throughput]`, module `throughput`): the accuracy model
//!   under AMA at the accuracy run's parameters, one pass of as many test clips as the slots
//!   hold ([`HeStgcn::max_clips`](hegcn::HeStgcn::max_clips), the test clips repeated if
//!   fewer) against one pass of one clip, timed at every thread count of `threads` (default
//!   1 and all cores; suffix `_1t` for one thread): `ama.latency_s[_1t]` (one clip),
//!   `ama.pass_s[_1t]`, `ama.throughput_s_per_sample[_1t]` (pass ÷ clips),
//!   `ama.throughput_per_h[_1t]`, `ama.clips_per_pass`, `ama.throughput_agreement_pct` (every
//!   clip's encrypted top-1 against the plaintext model's), `ama.throughput_max_logit_error`
//!   and `ama.batch_vs_single_max_logit_diff` (the first clip batched against alone). A shape
//!   whose one clip fills the slots (`max_clips` = 1) is reported with throughput = latency.
//!   With `only = true` the whole-test-set accuracy run is skipped.

//!
//! The runner measures, then reports: `measure` (the NTU-shaped part), `accuracy`, `single`,
//! `pruning`, `frontier` (learned linearisation) and `throughput` return typed figures, built
//! on the stage-major evaluation of `engine` and the cost probes of `costs`; `report` (with
//! `frontier_report` and `throughput_report`) renders the figures into markdown tables,
//! results.json metrics and plots. The task's settings live in [`crate::config::cryptogcn`].

pub(crate) mod accuracy;
mod costs;
mod engine;
mod frontier;
mod frontier_report;
mod measure;
mod planned;
mod pruning;
pub(crate) mod report;
mod single;
#[cfg(test)]
mod tests;
mod throughput;
mod throughput_report;

pub use crate::config::cryptogcn::{
    AccuracyData, AccuracySpec, CryptogcnTask, PackingName, SingleSpec, ThroughputSpec,
};

use crate::config::Config;
use crate::report::Report;
use anyhow::Result;
use engine::ClientKeys;

/// Runs a `cryptogcn` task: measures the NTU-shaped model (counts, sizes, estimates, latency),
/// reports it, then the accuracy under encryption and the pruning sweep if configured.
pub fn run(t: &CryptogcnTask, cfg: &Config, report: &mut Report) -> Result<()> {
    let seed = cfg.experiment.seed;
    let mut ntu = measure::compile(t, seed)?;
    let counts = measure::counts(&ntu);
    let mut keys = ClientKeys::new(&ntu.params)?;
    let x = measure::ntu_input(t, seed);
    let sizes = measure::sizes(&ntu, &mut keys, &x)?;
    let estimates = if t.estimate {
        Some(measure::estimates(&ntu, &counts, &mut keys)?)
    } else {
        None
    };
    let latency = measure::latency(t, &mut ntu, &counts, &mut keys, &x)?;
    let figures = measure::NtuFigures {
        preset: ntu.preset,
        depth: ntu.depth,
        compile_s: ntu.compile_s.iter().map(|(p, s)| (p.run(), *s)).collect(),
        counts,
        sizes,
        estimates,
        latency,
        planner: ntu.planner.take(),
    };
    drop(ntu);
    report::ntu(report, t, seed, &figures);
    if let Some(acc) = &t.accuracy {
        let inputs = accuracy::load(acc)?;
        if let Some(s) = &t.single {
            run_single(acc, s, &inputs, t.plaintext_cache_mib, report)?;
        }
        let frontier_only = acc.frontier.as_ref().is_some_and(|f| f.only);
        let throughput_only = acc.throughput.as_ref().is_some_and(|tp| tp.only);
        if !t.single.as_ref().is_some_and(|s| s.only) && !frontier_only && !throughput_only {
            run_accuracy(acc, &inputs, t.plaintext_cache_mib, report)?;
        }
        if let Some(tp) = &acc.throughput {
            let cache = t.plaintext_cache_mib;
            let f = throughput::measure(acc, tp, &inputs, cache, t.warm_cache)?;
            throughput_report::throughput(report, acc, &inputs.data_desc, &f);
        }
        if let Some(f) = &acc.frontier {
            let fr = frontier::run(acc, f, &inputs, t.plaintext_cache_mib)?;
            let clips = (inputs.train.len(), inputs.test.len());
            frontier_report::frontier(report, (acc, f), &fr, clips)?;
        }
    }
    report::notes(report);
    Ok(())
}

/// One test sample through the party's inference service under the parameters it tailors to
/// the model and, if configured, under a named preset for comparison.
fn run_single(
    acc: &AccuracySpec,
    s: &SingleSpec,
    inputs: &accuracy::AccuracyInputs,
    cache_mib: usize,
    report: &mut Report,
) -> Result<()> {
    let data = inputs.test.data_f64();
    anyhow::ensure!(
        s.index < data.dim().0,
        "single.index = {} but the test set has {} samples",
        s.index,
        data.dim().0
    );
    let x = data.index_axis(ndarray::Axis(0), s.index);
    let name = format!("{}_single", acc.dataset.name());
    let mut runs = vec![single::measure(
        &name,
        &inputs.model,
        x,
        s,
        None,
        cache_mib,
    )?];
    if let Some(p) = &s.compare_preset {
        let run = format!("{name}_preset");
        runs.push(single::measure(
            &run,
            &inputs.model,
            x,
            s,
            Some(p),
            cache_mib,
        )?);
    }
    report::single(report, acc.dataset.name(), s.index, &runs);
    Ok(())
}

/// Accuracy under encryption on the configured test set, then the pruning sweep if any.
fn run_accuracy(
    acc: &AccuracySpec,
    inputs: &accuracy::AccuracyInputs,
    cache_mib: usize,
    report: &mut Report,
) -> Result<()> {
    let figures = accuracy::measure(acc, inputs, cache_mib)?;
    report::accuracy(report, acc, &figures);
    if !acc.pruning_levels.is_empty() {
        let points = pruning::sweep(acc, &inputs.model, &inputs.train, &inputs.test)?;
        let clips = (inputs.train.len(), inputs.test.len());
        report::sweep(report, acc, &points, clips)?;
    }
    Ok(())
}
