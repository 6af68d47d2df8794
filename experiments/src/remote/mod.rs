//! `experiment run --remote p0.toml,p1.toml CONFIG`: the training tasks of a config as jobs on two
//! live `party serve` servers (SecureML §II's two non-colluding servers), and `experiment export`,
//! which writes the training data those jobs expect.
//!
//! For each `linreg`, `logreg` or `mlp` task, this client (the data owner and job owner):
//!
//! 1. finds the stored dataset the task's `remote.dataset` names (`party list`: name or id) and
//!    checks its shape against the task's data;
//! 2. submits the job to P0 (model, hyper-parameters, the public batch-schedule seed
//!    `seed ^ 0x5eed` and initial-weight seed, as the in-process run uses; the configured triple
//!    source: `ot` or the parties' `dealer`), drawing a progress bar from the streamed progress;
//! 3. reveals the trained model to itself (each party sends its share to the owner only);
//! 4. evaluates it on the local test set and, where the config gives the owner's plaintext copy
//!    of the training data, trains the plaintext twin locally (same data, batches and initial
//!    weights) and compares.
//!
//! The stored data must be the task's training data after the task's preprocessing (standardized
//! features; for linreg the centred and scaled target), exactly what `experiment export` writes.
//!
//! # Workflow (see `experiments/configs/remote-logreg.toml`)
//!
//! ```text
//! party client-init --dir me --p0 HOST0:7200 --p0-cert p0.pem --p1 HOST1:7201 --p1-cert p1.pem
//!                       # prints the fingerprint to register on both parties; writes me/p0.toml, me/p1.toml
//! experiment export experiments/configs/remote-logreg.toml --out owner-data
//! share-upload --parties HOST0:7200,HOST1:7201 --p0-cert me/p0-cert.pem --p1-cert me/p1-cert.pem \
//!     --cert-dir me --name cancer owner-data/remote-logreg-task1-train.csv
//! experiment run --remote me/p0.toml,me/p1.toml experiments/configs/remote-logreg.toml
//! ```
//!
//! A task names its stored dataset with `remote = { dataset = "cancer" }`; its `data` is the
//! owner's local copy (bundled, MNIST, or `csv = { train = "…", test = "…" }`, where `train` may be
//! left out: then there is no twin). MLP tasks run the same way (`layers`, `softmax`, `init_seed`
//! are sent with the job). Timings are measured at the client: `secure.job_s` (submission to the
//! end of the job on both parties: offline and online phases) and `secure.reveal_s`; at the end
//! of the job both parties report their own time, bytes and rounds of each phase, recorded as the
//! in-process runs record theirs (`secure.online_s`, `secure.offline_s`,
//! `secure.bytes_sent_p0_bytes`, `secure.rounds_p1_count`, …).

use crate::config::supervised::Kind;
use crate::config::{Config, TrainTask};
use crate::report::Report;
use anyhow::{bail, Context, Result};
use party::client::{Client, ClientConfig, ClientError};
use party::proto::{EntryInfo, OtExtension, TripleKind};
use std::path::PathBuf;

pub mod data;
pub mod measure;
pub mod report;
pub mod skeleton;
#[cfg(test)]
mod tests;

pub use data::{export, prepare, Prepared};

/// The training tasks of a config, with their index (1-based) and kind.
fn training_tasks(cfg: &Config) -> Vec<(usize, Kind, &TrainTask)> {
    cfg.tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.training().map(|(kind, t)| (i + 1, kind, t)))
        .collect()
}

/// Reads the two client configurations `p0.toml,p1.toml` (as `party client-init` writes them).
///
/// # Errors
/// Not two paths, or a file that cannot be read or parsed.
pub fn load_parties(paths: &[PathBuf]) -> Result<[ClientConfig; 2]> {
    let [p0, p1] = paths else {
        bail!(
            "--remote needs two client configurations, P0's then P1's: p0.toml,p1.toml (got {})",
            paths.len()
        );
    };
    Ok([ClientConfig::load(p0)?, ClientConfig::load(p1)?])
}

async fn connect(c: &ClientConfig, role: u8) -> Result<Client> {
    let client = c
        .connect()
        .await
        .with_context(|| format!("connecting to P{role} at {}", c.address))?;
    if client.role() != role {
        return Err(ClientError::WrongRole {
            addr: c.address,
            got: client.role(),
            want: role,
        }
        .into());
    }
    Ok(client)
}

/// Runs every training task of `cfg` as a job on the two parties and returns the report.
///
/// # Errors
/// A task that cannot run remotely (benchmarks, ST-GCN; the `client-aided` triple source), a
/// missing or misshapen stored dataset, a refused or failed job, connection errors.
pub async fn run(cfg: &Config, parties: &[ClientConfig; 2]) -> Result<Report> {
    let mut config = serde_json::to_value(cfg)?;
    if let Some(o) = config.as_object_mut() {
        o.insert(
            "remote".into(),
            serde_json::json!({
                "p0": parties[0].address.to_string(),
                "p1": parties[1].address.to_string(),
            }),
        );
    }
    let mut report = Report {
        name: cfg.experiment.name.clone(),
        config,
        ..Default::default()
    };
    let trainable = training_tasks(cfg);
    if trainable.len() != cfg.tasks.len() {
        bail!("--remote runs linreg, logreg and mlp tasks only; this config has other tasks (run it without --remote)");
    }
    for (i, kind, task) in trainable {
        run_task(kind, task, cfg, parties, &mut report)
            .await
            .with_context(|| format!("task #{i} ({})", kind.name()))?;
    }
    Ok(report)
}

/// The stored dataset named by `wanted` (a name or an id) among the client's entries.
fn find_dataset<'a>(entries: &'a [EntryInfo], wanted: &str) -> Result<&'a EntryInfo> {
    entries
        .iter()
        .find(|e| e.name == wanted || e.id.to_string() == wanted)
        .with_context(|| {
            let names: Vec<&str> = entries
                .iter()
                .filter(|e| !e.name.starts_with("model-"))
                .map(|e| e.name.as_str())
                .collect();
            format!("no stored dataset {wanted:?} of yours at P0 (you have: {names:?}); upload it with share-upload")
        })
}

/// The job's triple source and OT extension for the configured `source` (the parties serve
/// `auto`, `ot`, `he` and `dealer`; P0 resolves `auto`). A two-server source may name its OT
/// extension as in-process configs do (`ot-iknp`, `he-silent`, `auto-iknp`); without a suffix
/// the job asks for the default (silent).
fn triple_kind(source: &str) -> Result<(TripleKind, OtExtension)> {
    let (base, ext) = match source.split_once('-') {
        Some((base, ext)) => (base, Some(ext)),
        None => (source, None),
    };
    let Ok(kind) = TripleKind::parse(base) else {
        bail!("triples = {source:?} cannot run on remote parties (auto, ot, he, or dealer: the parties' configured dealer; ot, he and auto may end in -iknp or -silent)")
    };
    let ext = match (kind, ext) {
        (_, None) => OtExtension::default(),
        (TripleKind::Dealer, Some(_)) => {
            bail!("triples = {source:?}: the dealer makes no OTs (use \"dealer\")")
        }
        (_, Some(e)) => e.parse().with_context(|| format!("triples = {source:?}"))?,
    };
    Ok((kind, ext))
}

/// P0's stored dataset for the task, checked against the shape of the local data.
async fn stored_dataset(c0: &mut Client, wanted: &str, data: &Prepared) -> Result<EntryInfo> {
    let d = data.test_x.ncols();
    let entry = find_dataset(&c0.list().await?, wanted)?.clone();
    anyhow::ensure!(
        entry.cols as usize == d + 1,
        "stored dataset {:?} has {} columns but the task's data has {d} features and a label",
        entry.name,
        entry.cols
    );
    let n = entry.rows as usize;
    if let Some((x, _)) = &data.train {
        anyhow::ensure!(
            x.nrows() == n,
            "stored dataset {:?} has {n} rows but the task's training data has {}: upload what \
             `experiment export` writes for this config",
            entry.name,
            x.nrows()
        );
    }
    Ok(entry)
}

/// One task, start to finish: check the settings and the stored data, run the job, reveal the
/// model, train the twin, then render the typed results into `report`.
async fn run_task(
    kind: Kind,
    task: &TrainTask,
    cfg: &Config,
    parties: &[ClientConfig; 2],
    report: &mut Report,
) -> Result<()> {
    let remote = task.remote.as_ref().context(
        "no [task.remote] dataset = \"NAME\": which stored dataset should the job train on?",
    )?;
    let seed = cfg.experiment.seed;
    let source = task.triples.as_deref().unwrap_or(&cfg.mpc.triples);
    let truncation = task.truncation.unwrap_or(cfg.mpc.truncation);
    anyhow::ensure!(
        truncation == mpc::trunc::Truncation::Local,
        "truncation = {:?} cannot run on remote parties: their jobs truncate locally (run the task in-process with `experiment run` for exact truncation)",
        truncation.name()
    );
    anyhow::ensure!(
        task.steps.is_none() && task.twin_label.is_none(),
        "steps and twin_label are for in-process runs only (remote jobs train whole epochs and \
         label the twin as the task): leave them out of the task or run without --remote"
    );
    let (triples, ext) = triple_kind(source)?;
    let data = prepare(kind, task, seed)?;
    let mut c0 = connect(&parties[0], 0).await?;
    let entry = stored_dataset(&mut c0, &remote.dataset, &data).await?;
    let shape = (
        entry.name.as_str(),
        entry.rows as usize,
        data.test_x.ncols(),
    );
    let plan = measure::job_plan(kind, task, seed, shape, (triples, ext))?;

    let c1 = connect(&parties[1], 1);
    let (done, ws, job_s, reveal_s) = measure::run_job(&mut c0, c1, kind, &plan).await?;
    // The plaintext twin, where the owner's training copy is at hand.
    let twin = match &data.train {
        Some((x, y)) => Some(measure::twin(kind, &plan, (x, y)).await?),
        None => None,
    };
    let (secure_test, secure_train, twin) = measure::quality(kind, &data, &ws, twin);
    let measured = measure::Measured {
        job: done.job,
        job_s,
        reveal_s,
        stats: done.stats,
        steps: plan.sched.steps(),
        secure_test,
        secure_train,
        twin,
    };
    let info = report::RunInfo {
        kind,
        title: plan.title,
        label: task.label.clone(),
        parties: parties.each_ref().map(|p| p.address.to_string()),
        entry,
        data: data.description,
        epochs: task.epochs,
        batch_size: task.batch_size,
        learning_rate: task.learning_rate,
        // `auto` as P0 resolved it.
        source: match triples {
            TripleKind::Auto => format!("auto → {}", done.triples.name()),
            _ => source.to_string(),
        },
        triples: done.triples,
    };
    report::render(report, &info, &measured);
    Ok(())
}
