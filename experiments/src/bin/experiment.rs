//! `experiment` — run an experiment config and write its report.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Runs Dyad experiment configs: secure runs beside their plaintext twins, with tables and
/// machine-readable results.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a config (e.g. experiments/configs/quickstart.toml); both parties run in this process
    /// over the configured transport on loopback.
    Run {
        /// The TOML config.
        config: PathBuf,
        /// Where results go: OUT/NAME/TIMESTAMP/{report.md,results.json}, NAME being the config's name.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Override the config's transport (quic, tls-tcp, tcp-insecure, memory).
        #[arg(long)]
        transport: Option<String>,
        /// Stop every training task (linreg, logreg, mlp) after this many SGD steps in all: sets
        /// each one's `steps`, for a quick check of a long config.
        #[arg(long)]
        steps: Option<usize>,
        /// Run the training tasks as jobs on two live parties: the client configurations of P0
        /// and P1 (`party client-init ... --p0 ... --p1 ...` writes them), comma separated. Each
        /// task names its stored dataset in `remote = { dataset = "NAME" }`.
        #[arg(long, value_delimiter = ',', value_name = "P0.toml,P1.toml")]
        remote: Vec<PathBuf>,
    },
    /// Write the training data of each linreg/logreg/mlp task, preprocessed as the run does, to
    /// CSV files for `share-upload` (and the test sets beside them); for each stgcn task, its
    /// skeleton clips as (N, C, T, V, M) .npy files with label files and a JSON file naming the
    /// graph and class names (`share-upload --graph ... --labels ... --class-names ...`).
    Export {
        /// The TOML config.
        config: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Per-step differential trace of a config's `mlp` task: the secure run (in-memory channel,
    /// dealer triples) and its plaintext twin in lockstep; one CSV line per step on stdout.
    TraceMlp {
        /// The TOML config.
        config: PathBuf,
        /// The task's label (empty: the unlabelled task).
        #[arg(long, default_value = "")]
        label: String,
        /// Steps to trace (default: the whole schedule).
        #[arg(long, default_value_t = usize::MAX)]
        steps: usize,
        /// Instead of the secure run: train the twin from initial weights moved by uniform noise
        /// of this amplitude, `--runs` times, and print each run's test accuracy.
        #[arg(long)]
        perturb: Option<f64>,
        /// Perturbed runs (with `--perturb`).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Check a config without running it.
    Check {
        /// The TOML config.
        config: PathBuf,
    },
}

fn main() -> Result<()> {
    party::logging::init("error");
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { config } => {
            let cfg = experiments::config::Config::load(&config)?;
            println!("{}: ok ({} task(s))", config.display(), cfg.tasks.len());
            Ok(())
        }
        Cmd::Export { config, out } => {
            let cfg = experiments::config::Config::load(&config)?;
            for f in experiments::remote::export(&cfg, &out)? {
                println!("{}", f.display());
            }
            Ok(())
        }
        Cmd::TraceMlp {
            config,
            label,
            steps,
            perturb,
            runs,
        } => {
            let cfg = experiments::config::Config::load(&config)?;
            let task = experiments::mlp_trace::find_task(&cfg, &label)?;
            if let Some(a) = perturb {
                let r = experiments::entry::perturb_mlp(task, &cfg, steps, a, runs)?;
                println!("run,test_accuracy_pct,max_weight_diff");
                for (i, (acc, dw)) in r.iter().enumerate() {
                    println!("{i},{acc:.2},{dw:.3e}");
                }
                return Ok(());
            }
            println!(
                "{}",
                experiments::mlp_trace::StepRecord::csv_header(task.layers.len() - 1)
            );
            let t =
                experiments::entry::trace_mlp(task, &cfg, steps, &mut |r| println!("{}", r.csv()))?;
            println!(
                "# test accuracy after {} steps: secure {:.2} %, plain {:.2} %",
                t.steps.len(),
                t.accuracy[0],
                t.accuracy[1]
            );
            Ok(())
        }
        Cmd::Run {
            config,
            out,
            transport,
            steps,
            remote,
        } => {
            let mut cfg = experiments::config::Config::load(&config)?;
            if transport.is_some() || steps.is_some() {
                cfg.transport.kind = transport.unwrap_or(cfg.transport.kind);
                if let Some(n) = steps {
                    cfg.set_steps(n);
                }
                // Checked as a config file would be.
                cfg = experiments::config::Config::parse(
                    &toml::to_string(&cfg)?,
                    &config.display().to_string(),
                )?;
            }
            let report = if remote.is_empty() {
                experiments::entry::run_local(&cfg)?
            } else {
                let parties = experiments::remote::load_parties(&remote)?;
                experiments::entry::run_remote(&cfg, &parties)?
            };
            let dir = report.write(&out).context("writing the report")?;
            print!("{}", summary(&report));
            println!("report: {}", dir.join("report.md").display());
            Ok(())
        }
    }
}

/// The headline metrics printed to the terminal.
fn summary(r: &experiments::report::Report) -> String {
    let mut s = String::new();
    for (k, v) in &r.metrics {
        if k.ends_with("test_mse")
            || k.ends_with("accuracy_pct")
            || k.ends_with("online_s")
            || k.ends_with("job_s")
            || k.contains("_ratio_")
        {
            s.push_str(&format!("{k:<40} {}\n", experiments::report::fmt_num(*v)));
        }
    }
    s
}
