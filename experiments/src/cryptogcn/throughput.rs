//! Throughput mode of the `cryptogcn` task (`[task.accuracy.throughput]`): how many samples a
//! full server classifies per hour when it packs as many clips into one forward pass as the
//! slots hold, against the latency of one clip per pass, on the accuracy model and its test
//! clips.
//!
//! The model is compiled twice under AMA at the parameters of the accuracy run: once for one
//! clip ([`HeStgcn::compile`]) and once for [`HeStgcn::max_clips`] clips
//! ([`HeStgcn::compile_batched`]: clip `i` owns the channel blocks `i·w ..` of every node
//! ciphertext). One pass of each is timed at every configured thread count; the batched pass
//! carries the first `max_clips` test clips (repeated in order if the test set holds fewer),
//! and every clip's decrypted top class is compared with the plaintext model's. When one clip
//! already fills the slots (`max_clips` = 1, e.g. the NTU shape at full width) there is
//! nothing to batch: the throughput is the latency, reported as such.
//!
//! Security model: as for the latency runs (semi-honest server, client-held secret key). The
//! clips of one pass are encrypted together under one client's key, so a full pass serves one
//! client with many clips (or clients that share a key); the server sees the same ciphertext
//! count and operation sequence as for one clip and learns nothing more.

use super::accuracy::{argmax, per_clip, serving_params, test_clips, AccuracyInputs};
use super::engine::{in_pool, run_staged, ClientKeys};
use crate::config::cryptogcn::{AccuracySpec, ThroughputSpec};
use anyhow::Result;
use hegcn::{HeStgcn, Packing};
use ndarray::{Array4, Array5, Axis};
use stgcn::FoldedModel;

/// One thread count's timings.
pub(crate) struct ThroughputRun {
    /// Thread count (0 = all cores).
    pub(crate) threads: usize,
    /// Server seconds of one pass with one clip.
    pub(crate) latency_s: f64,
    /// Server seconds of one pass with `clips_per_pass` clips (the latency when that is 1).
    pub(crate) pass_s: f64,
}

/// What the throughput run measured.
pub(crate) struct ThroughputFigures {
    pub(crate) preset: String,
    /// Clips one pass holds ([`HeStgcn::max_clips`]).
    pub(crate) clips_per_pass: usize,
    /// Distinct test clips among them (fewer when the test set is smaller than a pass).
    pub(crate) distinct_clips: usize,
    /// The second of two evaluations of every stage was timed (plaintext cache warm).
    pub(crate) warm_cache: bool,
    pub(crate) runs: Vec<ThroughputRun>,
    /// Clips of the batched pass whose encrypted top-1 equals the plaintext top-1 (every run).
    pub(crate) agree: usize,
    /// Largest |encrypted − plaintext| logit over every pass, batched or not.
    pub(crate) max_logit_error: f64,
    /// Largest |batched − single-clip| logit of the first clip.
    pub(crate) max_batch_vs_single: f64,
}

impl ThroughputRun {
    /// Amortized server seconds per sample.
    pub(crate) fn s_per_sample(&self, clips_per_pass: usize) -> f64 {
        self.pass_s / clips_per_pass as f64
    }
}

/// The plaintext logits of `clips` (one row per clip).
fn plain_logits(f: &FoldedModel, clips: &[Array4<f64>]) -> Result<Vec<Vec<f64>>> {
    let views: Vec<_> = clips
        .iter()
        .map(|c| c.view().insert_axis(Axis(0)))
        .collect();
    let x: Array5<f64> = ndarray::concatenate(Axis(0), &views)?;
    Ok(f.forward(x.view())?
        .rows()
        .into_iter()
        .map(|r| r.to_vec())
        .collect())
}

/// Evaluates one pass of `clips` on `he` with `threads` threads (0 = all cores), `passes`
/// evaluations of every stage; returns the server seconds (the last evaluation of every stage)
/// and each clip's decrypted logits.
pub(crate) fn timed_pass(
    he: &HeStgcn,
    keys: &mut ClientKeys,
    clips: &[Array4<f64>],
    threads: usize,
    passes: usize,
) -> Result<(f64, Vec<Vec<f64>>)> {
    let label = format!("throughput {} clip(s)", clips.len());
    let inputs = [clips.to_vec()];
    let r = in_pool(threads, || {
        run_staged(he, keys, &inputs, passes, &label, None)
    })??;
    let secs = r.stages.iter().map(|s| s.1[0]).sum();
    let classes = r.logits[0].len() / he.clips();
    Ok((secs, per_clip(&r.logits, clips.len(), clips.len(), classes)))
}

/// Largest |a − b| over matching entries.
fn max_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// What [`time_all`] measured on one compiled model.
struct Timings {
    /// Server seconds per thread count.
    secs: Vec<f64>,
    /// Each clip's logits of the last pass.
    last: Vec<Vec<f64>>,
    /// Largest logit error against the plaintext model, every pass.
    max_err: f64,
    /// Clips whose encrypted top-1 equals the plaintext top-1 in every pass.
    agreed: usize,
}

/// Times one pass of `clips` on `he` per thread count and compares every pass's logits with
/// `plain`.
fn time_all(
    he: &HeStgcn,
    keys: &mut ClientKeys,
    clips: &[Array4<f64>],
    plain: &[Vec<f64>],
    (threads, passes): (&[usize], usize),
) -> Result<Timings> {
    let (mut secs, mut last, mut max_err) = (Vec::new(), Vec::new(), 0.0f64);
    let mut agree = vec![true; clips.len()];
    for &t in threads {
        let (s, logits) = timed_pass(he, keys, clips, t, passes)?;
        max_err = max_err.max(max_diff(&logits, plain));
        for (i, l) in logits.iter().enumerate() {
            agree[i] &= argmax(l) == argmax(&plain[i]);
        }
        secs.push(s);
        last = logits;
    }
    let agreed = agree.iter().filter(|&&a| a).count();
    Ok(Timings {
        secs,
        last,
        max_err,
        agreed,
    })
}

/// Measures the one-clip latency and the full pass of [`HeStgcn::max_clips`] clips of the
/// accuracy model at every thread count of `spec`.
pub(crate) fn measure(
    acc: &AccuracySpec,
    spec: &ThroughputSpec,
    inputs: &AccuracyInputs,
    cache_mib: usize,
    warm_cache: bool,
) -> Result<ThroughputFigures> {
    let folded = inputs.model.fold();
    let (preset, params, _) = serving_params(acc, &folded)?;
    let per_ct = HeStgcn::max_clips(&folded, params.slots());
    let clips = test_clips(&inputs.test, per_ct);
    let plain = plain_logits(&folded, &clips)?;
    let mut keys = ClientKeys::new(&params)?;
    let tp = (spec.threads.as_slice(), if warm_cache { 2 } else { 1 });
    let single = HeStgcn::compile(&folded, Packing::Ama, &params)?;
    single.set_plaintext_cache_budget(cache_mib << 20);
    let one = time_all(&single, &mut keys, &clips[..1], &plain, tp)?;
    drop(single);
    let full = if per_ct > 1 {
        let he = HeStgcn::compile_batched(&folded, Packing::Ama, &params, per_ct)?;
        he.set_plaintext_cache_budget(cache_mib << 20);
        Some(time_all(&he, &mut keys, &clips, &plain, tp)?)
    } else {
        None
    };
    let batch = full.as_ref().unwrap_or(&one);
    Ok(ThroughputFigures {
        preset,
        clips_per_pass: per_ct,
        distinct_clips: per_ct.min(inputs.test.len()),
        warm_cache,
        runs: (spec.threads.iter().zip(&one.secs).zip(&batch.secs))
            .map(|((&threads, &latency_s), &pass_s)| ThroughputRun {
                threads,
                latency_s,
                pass_s,
            })
            .collect(),
        agree: batch.agreed,
        max_logit_error: one.max_err.max(batch.max_err),
        max_batch_vs_single: max_diff(&batch.last[..1], &one.last),
    })
}
