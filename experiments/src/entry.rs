//! Blocking entry points for the `experiment` binary: each runs one async job of this crate on
//! its own multi-threaded tokio runtime and returns its result.
//!
//! They live in the library, not in the binary, for build time: `block_on` is generic over the
//! future, so calling it in the binary would make the binary's crate instantiate — and
//! optimise — the whole async call tree of every task (the state machines of `run` and all it
//! awaits), which no other crate shares. Here those instantiations are compiled once, with the
//! library, and the binary stays a thin argument parser.

use crate::config::{Config, TrainTask};
use crate::mlp_trace::{StepRecord, Trace};
use crate::report::Report;
use anyhow::Result;
use party::client::ClientConfig;

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// [`crate::run`]: a whole config, both parties in this process.
pub fn run_local(cfg: &Config) -> Result<Report> {
    runtime()?.block_on(crate::run(cfg))
}

/// [`crate::remote::run`]: a config's training tasks as jobs on two live parties.
pub fn run_remote(cfg: &Config, parties: &[ClientConfig; 2]) -> Result<Report> {
    runtime()?.block_on(crate::remote::run(cfg, parties))
}

/// [`crate::mlp_trace::trace`]: the secure MLP and its twin in lockstep, step by step.
pub fn trace_mlp(
    task: &TrainTask,
    cfg: &Config,
    steps: usize,
    on_step: &mut dyn FnMut(&StepRecord),
) -> Result<Trace> {
    runtime()?.block_on(crate::mlp_trace::trace(task, cfg, steps, on_step))
}

/// [`crate::mlp_trace::perturb`]: test accuracy and final max |ΔW| of perturbed runs.
pub fn perturb_mlp(
    task: &TrainTask,
    cfg: &Config,
    steps: usize,
    amplitude: f64,
    runs: usize,
) -> Result<Vec<(f64, f64)>> {
    runtime()?.block_on(crate::mlp_trace::perturb(task, cfg, steps, amplitude, runs))
}
