//! The data owner's commands beyond training: `party standardize`, `party evaluate` and
//! `party predict` (jobs on the parties whose results only the owner reconstructs, from both
//! parties' shares: `party::client::Client::run_for_result`).

use super::Conn;
use anyhow::{bail, Context, Result};
use clap::Args;
use party::client::{evaluate_spec, standardize_spec, JobResult, ResultKind};
use party::proto::{EntryId, JobSpec, TripleKind};
use std::path::PathBuf;

/// `party standardize`.
#[derive(Args, Debug)]
pub struct Standardize {
    #[command(flatten)]
    conn: Conn,
    /// Your dataset to standardize (its next version replaces it).
    #[arg(long)]
    dataset: String,
    /// Standardize the label column too (a regression target; the model is still reported and
    /// evaluated in the original units).
    #[arg(long)]
    label: bool,
    /// Send you the statistics (each party its shares); without it they stay shared on the
    /// parties and nobody learns them.
    #[arg(long)]
    reveal_stats: bool,
    /// With --reveal-stats: also write them as CSV (row 1 the means, row 2 the deviations).
    #[arg(long, requires = "reveal_stats")]
    stats_out: Option<PathBuf>,
    /// ot, he or dealer.
    #[arg(long, default_value = "ot")]
    triples: String,
}

/// `party evaluate` and `party predict`.
#[derive(Args, Debug)]
pub struct Evaluate {
    #[command(flatten)]
    conn: Conn,
    /// The trained model: the job id `party train` printed.
    #[arg(long)]
    model: String,
    /// Your test dataset (raw, or standardized by the job the model's training set came from).
    #[arg(long)]
    dataset: String,
    /// ot, he or dealer.
    #[arg(long, default_value = "ot")]
    triples: String,
}

/// `party predict`: [`Evaluate`] and where to write the predictions.
#[derive(Args, Debug)]
pub struct Predict {
    #[command(flatten)]
    eval: Evaluate,
    /// The CSV of predictions (one row per test row).
    #[arg(long)]
    out: PathBuf,
}

fn triples(s: &str) -> Result<TripleKind> {
    Ok(match s {
        "ot" => TripleKind::Ot,
        "dealer" => TripleKind::Dealer,
        "he" => TripleKind::He,
        s => bail!("unknown triple source {s:?} (ot, he, dealer)"),
    })
}

async fn run(conn: &Conn, spec: &JobSpec) -> Result<(EntryId, Option<JobResult>)> {
    let (mut p0, mut p1) = (conn.connect(0).await?, conn.connect(1).await?);
    let (done, result) = p0.run_for_result(&mut p1, spec).await?;
    Ok((done.job, result))
}

/// Runs `party standardize`.
pub async fn standardize(s: Standardize) -> Result<()> {
    let spec = standardize_spec(&s.dataset, s.reveal_stats, s.label, triples(&s.triples)?);
    let (job, result) = run(&s.conn, &spec).await?;
    println!(
        "dataset {} standardized on the parties: version {job}",
        s.dataset
    );
    match result {
        Some(r) if r.kind == ResultKind::Stats => {
            println!("column  mean  sd   (the standardized columns in order)");
            for (j, (m, sd)) in r.values.row(0).iter().zip(r.values.row(1)).enumerate() {
                println!("{j}  {m:.6}  {sd:.6}");
            }
            if let Some(out) = &s.stats_out {
                datasets::csv::write_csv(out, None, &r.values)?;
                println!("statistics written to {}", out.display());
            }
        }
        Some(r) => bail!("unexpected result {:?}", r.kind),
        None => println!("the statistics stay shared on the parties"),
    }
    Ok(())
}

fn model_id(s: &str) -> Result<EntryId> {
    EntryId::parse(s).context("model ids are job ids: 32 hex digits")
}

/// Runs `party evaluate`.
pub async fn evaluate(e: Evaluate) -> Result<()> {
    let spec = evaluate_spec(model_id(&e.model)?, &e.dataset, false, triples(&e.triples)?);
    let (_, result) = run(&e.conn, &spec).await?;
    let r = result.context("the parties sent no result")?;
    let v = r.values[[0, 0]];
    match r.kind {
        ResultKind::Linreg => println!("mse {v:.6}  (model {}, dataset {})", e.model, e.dataset),
        ResultKind::Logreg | ResultKind::Mlp => {
            if r.values.dim() != (1, 2) {
                bail!(
                    "expected accuracy and log-loss, got {:?} values",
                    r.values.dim()
                );
            }
            println!(
                "accuracy {v:.4}  log-loss {:.4}  (model {}, dataset {})",
                r.values[[0, 1]],
                e.model,
                e.dataset
            )
        }
        ResultKind::Stats | ResultKind::Folded => bail!("unexpected result {:?}", r.kind),
    }
    Ok(())
}

/// Runs `party predict`.
pub async fn predict(p: Predict) -> Result<()> {
    let e = &p.eval;
    let spec = evaluate_spec(model_id(&e.model)?, &e.dataset, true, triples(&e.triples)?);
    let (_, result) = run(&e.conn, &spec).await?;
    let r = result.context("the parties sent no result")?;
    datasets::csv::write_csv(&p.out, None, &r.values)?;
    println!(
        "{} predictions ({} per row) written to {}",
        r.values.nrows(),
        r.values.ncols(),
        p.out.display()
    );
    Ok(())
}
