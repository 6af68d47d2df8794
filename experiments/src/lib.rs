//! # experiments — the `experiment` runner
//!
//! `experiment run <config.toml>` runs every task of a config with both parties in this process
//! (over the same transport the `party` servers use, on loopback), the dealer beside them, and the
//! plaintext twin of every secure run; it writes `report.md` and `results.json` (ARCHITECTURE.md,
//! "Experiments and reports") to `results/<name>/<timestamp>/`.
//!
//! `experiment run --remote p0.toml,p1.toml <config.toml>` runs the config's training tasks as
//! jobs on two live `party serve` servers instead ([`remote`]); `experiment export` writes the
//! training data those jobs expect (to upload with `share-upload`). `delay-relay` ([`relay`])
//! emulates a WAN between two party hosts where `tc netem` is missing (`experiments/netem/`).

pub mod common;
pub mod config;
pub mod cryptogcn;
pub mod entry;
pub mod hecnn;
pub mod link;
pub mod matmul_bench;
pub mod mlp_trace;
pub mod offline;
pub mod ot_bench;
pub mod relay;
pub mod relu_bench;
pub mod remote;
pub mod report;
pub mod secure_stgcn;
pub mod sigmoid;
pub mod stgcn;
pub mod supervised;
pub mod transport_bench;

use anyhow::Result;
use config::{Config, Task};
use report::Report;

/// Runs a whole config and returns its report (not yet written).
pub async fn run(cfg: &Config) -> Result<Report> {
    let mut report = Report {
        name: cfg.experiment.name.clone(),
        config: serde_json::to_value(cfg)?,
        ..Default::default()
    };
    for task in &cfg.tasks {
        match task {
            Task::Linreg(t) => {
                supervised::run(supervised::Kind::Linreg, t, cfg, &mut report).await?
            }
            Task::Logreg(t) => {
                supervised::run(supervised::Kind::Logreg, t, cfg, &mut report).await?
            }
            Task::Mlp(t) => supervised::run(supervised::Kind::Mlp, t, cfg, &mut report).await?,
            Task::OtBench(t) => ot_bench::run(t, &cfg.transport.kind, &mut report).await?,
            Task::ReluBench(t) => relu_bench::run(t, &cfg.transport.kind, &mut report).await?,
            Task::MatmulBench(t) => {
                matmul_bench::run(t, &cfg.mpc, &cfg.transport.kind, &mut report).await?
            }
            Task::TransportBench(t) => transport_bench::run(t, &mut report).await?,
            Task::Stgcn(t) => stgcn::run(t, cfg, &mut report)?,
            Task::Cryptogcn(t) => cryptogcn::run(t, cfg, &mut report)?,
            Task::SecureStgcn(t) => secure_stgcn::run(t, cfg, &mut report).await?,
            Task::Hecnn(t) => hecnn::run(t, &mut report)?,
        }
    }
    Ok(report)
}
