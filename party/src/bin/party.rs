//! `party` — run a Dyad party server, and the client commands for jobs.
//!
//! ```text
//! party init --id 0 --dir p0                  # identity (cert.pem, key.pem) + party.toml template
//! party serve --config p0/party.toml          # run the server
//! party hash-token TOKEN --p0-cert P --p1-cert P   # credential_sha256 to register at each party
//! party hash-token TOKEN --config p0/party.toml    # ... at the party of this configuration
//! party client-init --dir me [--p0 ADDR --p0-cert P --p1 ADDR --p1-cert P]
//!                                             # client identity (+ me/p0.toml, me/p1.toml)
//! party train --p0 ADDR --p0-cert P --p1 ADDR --p1-cert P (--token T | --cert-dir D) \
//!       --dataset cancer --model logreg [--epochs 5 --batch 64 --lr 0.125 --seed 1 --triples auto] \
//!       [--layers 784,128,128,10 --softmax relu --init-seed 1]   # for --model mlp
//!       [--no-intercept]                      # SecureML's model: no intercept / layer biases
//!       [--reveal weights.csv]                # submit a job to P0, stream progress, reveal
//! party train ... --model stgcn --dataset clips (--init model.json | --arch STGCN-3-128 \
//!       --width-divisor 4 --activation square|poly) --epochs 10 --batch-size 16 \
//!       --learning-rate 0.05 --momentum 0.9 --weight-decay 1e-4 --triples auto|dealer|ot|he
//!                                             # ST-GCN in 2PC; per-epoch loss with --p1
//! party standardize --dataset T [--label] [--reveal-stats [--stats-out s.csv]]
//!                                             # standardize on the parties (new version)
//! party evaluate --model J --dataset T        # test MSE / accuracy and log-loss, to you only
//! party predict --model J --dataset T --out p.csv   # predictions, revealed to you only
//! party list / party delete NAME              # the client's entries (same connection flags)
//! party reveal --job J --out DIR/NAME.json    # a trained model: DIR/NAME.json (+ .safetensors
//!                                             # for an ST-GCN or a large MLP), dyad-model/2 for
//!                                             # linear models and MLPs (party::linear_model;
//!                                             # standardization folded in on the parties)
//! party reveal --job J --out w.csv            # or --format csv: the weight column as CSV
//! party deploy --job J --name M [--serve p0|p1|both] [--packing ama|channel-major|planned]
//!                                             # publish a trained ST-GCN to the inference
//!                                             # service (the serving party learns the weights)
//! party join-propose --left bank/accounts --right insurer/policies --name joined --owner bank
//!                                             # two owners' keyed column uploads: one proposes
//! party join-confirm --join ID --left ... --right ... --name joined --owner bank
//!                                             # the other confirms the same terms; joined
//! ```

#[path = "party/owner.rs"]
mod owner;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ml::backend::SoftmaxKind;
use party::client::{Client, JobUpdate};
use party::deploy::Revealed;
use party::proto::{
    ClientRequest, EntryId, InitModel, JobSpec, MlpSpec, ModelKind, OtExtension, Reply, ServeAt,
    StgcnSpec, TripleKind,
};
use party::server::{config, Server};
use party::transport::{Identity, PeerCert};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "party", about = "Dyad party server and job client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an identity and a commented configuration template.
    Init {
        /// 0 for P0 (coordinator), 1 for P1.
        #[arg(long)]
        id: u8,
        /// Directory to create.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run the server.
    Serve {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the value that registers a token client at each party (`credential_sha256` in
    /// `[[clients.allow]]`), one line per party: each party registers its own line, derived
    /// from its certificate, so what one party receives from the client is refused at the other.
    HashToken {
        /// The token (random and long, e.g. `openssl rand -hex 32`).
        token: String,
        /// P0's certificate (PEM), as the client pins it.
        #[arg(long)]
        p0_cert: Option<PathBuf>,
        /// P1's certificate (PEM), as the client pins it.
        #[arg(long)]
        p1_cert: Option<PathBuf>,
        /// A party's configuration: the value for that party (its own certificate).
        #[arg(long, conflicts_with_all = ["p0_cert", "p1_cert"])]
        config: Option<PathBuf>,
    },
    /// Create a client identity (for registration by fingerprint); prints the fingerprint. With
    /// --p0/--p0-cert (and --p1/--p1-cert) also writes DIR/p0.toml (DIR/p1.toml): the client
    /// configurations `experiment run --remote DIR/p0.toml,DIR/p1.toml` uses. An existing
    /// identity in DIR is kept.
    ClientInit {
        /// Directory to create.
        #[arg(long)]
        dir: PathBuf,
        /// P0's client address.
        #[arg(long, requires = "p0_cert")]
        p0: Option<SocketAddr>,
        /// P0's certificate (PEM; copied into DIR and pinned).
        #[arg(long, requires = "p0")]
        p0_cert: Option<PathBuf>,
        /// P1's client address.
        #[arg(long, requires = "p1_cert")]
        p1: Option<SocketAddr>,
        /// P1's certificate (PEM; copied into DIR and pinned).
        #[arg(long, requires = "p1")]
        p1_cert: Option<PathBuf>,
    },
    /// Submit a training job to P0, follow it, optionally reveal the model to yourself.
    Train(Box<Train>),
    /// List your datasets and models (at P0).
    List(Conn),
    /// Delete one of your datasets on both parties.
    Delete {
        #[command(flatten)]
        conn: Conn,
        /// Dataset name.
        name: String,
    },
    /// Reveal a model trained earlier (both parties send you their shares): an ST-GCN as
    /// OUT.json + OUT.safetensors (the format `[inference]` loads); a linear model or MLP as the
    /// `dyad-model/2` file OUT.json (weights inline, or in OUT.safetensors when large), or its
    /// weight column as CSV with `--format csv` or an OUT ending in .csv. A model trained on
    /// standardized data comes with the standardization folded in on the parties (raw inputs,
    /// original units; the standardized weights are never sent).
    Reveal {
        #[command(flatten)]
        conn: Conn,
        /// Job id printed by `train` (or give --job).
        #[arg(required_unless_present = "job_flag", conflicts_with = "job_flag")]
        job: Option<String>,
        /// Job id printed by `train`.
        #[arg(long = "job", id = "job_flag")]
        job_flag: Option<String>,
        /// Where to write the model (DIR/NAME.json, or a .csv file).
        #[arg(long)]
        out: PathBuf,
        /// json (the model file) or csv (the weight column); default: csv for an OUT ending in
        /// .csv, json otherwise.
        #[arg(long)]
        format: Option<String>,
    },
    /// Standardize one of your datasets on the parties (column means and deviations in 2PC; the
    /// dataset's next version is standardized): the statistics stay shared unless
    /// --reveal-stats sends them to you.
    Standardize(owner::Standardize),
    /// A trained model's test metrics on one of your datasets, computed on the parties and
    /// revealed to you only: MSE (linear regression) or accuracy and log-loss (logistic
    /// regression: of the true logistic function; MLP: of the exp softmax of its logits).
    Evaluate(owner::Evaluate),
    /// A trained model's predictions on one of your datasets, revealed to you only, as CSV.
    Predict(owner::Predict),
    /// Publish a trained ST-GCN to the parties' encrypted-inference service: you authorize it at
    /// both parties; the serving party receives the other's share, compiles the model and serves
    /// it as NAME without a restart (`he-infer --model NAME`). The serving party learns the
    /// weights.
    Deploy {
        #[command(flatten)]
        conn: Conn,
        /// Job id of the trained model.
        #[arg(long)]
        job: String,
        /// Name under which the model is served.
        #[arg(long)]
        name: String,
        /// Which party serves it (and learns the weights): p0, p1 or both.
        #[arg(long, default_value = "p0")]
        serve: ServeAt,
        /// ama (default), channel-major, or planned (the packing planner's per-stage mix of
        /// the two, priced with the serving party's probed operation costs).
        #[arg(long)]
        packing: Option<String>,
    },
    /// Vertical partitioning, step 1 (either owner): consent at both parties to joining two
    /// keyed column uploads (share-upload --key-column) into one table; prints the join id and
    /// the command the other owner runs.
    #[command(after_help = JOIN_HELP)]
    JoinPropose {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        terms: JoinTerms,
    },
    /// Vertical partitioning, step 2 (the other owner): consent to the same terms at both
    /// parties and run the join; prints the joined dataset's id.
    #[command(after_help = JOIN_HELP)]
    JoinConfirm {
        #[command(flatten)]
        conn: Conn,
        /// The join id printed by join-propose.
        #[arg(long)]
        join: String,
        #[command(flatten)]
        terms: JoinTerms,
        /// Only consent; start it later with `join-confirm --start-only` (by either owner).
        #[arg(long, conflicts_with = "start_only")]
        no_start: bool,
        /// Only start a join both owners consented to.
        #[arg(long)]
        start_only: bool,
    },
}

const JOIN_HELP: &str = "\
Two owners hold different columns of the same individuals. Beforehand they agree on the rows
(the same keys, in the same order) and on a fresh secret (`openssl rand -hex 32 > join.key`,
never given to the parties). Each uploads a CSV with its key column:
  share-upload ... --name accounts --key-column id --key-secret join.key bank.csv
  share-upload ... --name policies --key-column id --key-secret join.key --no-label ins.csv
Then one owner proposes and the other confirms the same terms:
  party join-propose ... --left bank/accounts --right insurer/policies --name joined --owner bank
  party join-confirm ... --join ID --left bank/accounts --right insurer/policies --name joined --owner bank
The joined table holds the left's features, the right's, then the label; it belongs to --owner,
who trains on it like on any dataset. The parties compare per-row HMAC tags of the keys: they
learn the row count and, if the lists differ, the first differing row, never a key.";

/// The terms of a join, as both owners state them.
#[derive(Args, Debug, Clone)]
struct JoinTerms {
    /// The dataset whose columns come first, OWNER/NAME.
    #[arg(long, value_parser = party::client::join::dataset_ref)]
    left: party::proto::DatasetRef,
    /// The dataset whose columns follow, OWNER/NAME.
    #[arg(long, value_parser = party::client::join::dataset_ref)]
    right: party::proto::DatasetRef,
    /// The joined dataset's name.
    #[arg(long)]
    name: String,
    /// The client who owns the joined dataset (trains on it and owns its models).
    #[arg(long)]
    owner: String,
}

/// How a client reaches and authenticates to the parties.
#[derive(Args, Debug, Clone)]
struct Conn {
    /// P0's client address.
    #[arg(long)]
    p0: SocketAddr,
    /// P0's certificate (PEM).
    #[arg(long)]
    p0_cert: PathBuf,
    /// P1's client address.
    #[arg(long)]
    p1: Option<SocketAddr>,
    /// P1's certificate (PEM).
    #[arg(long)]
    p1_cert: Option<PathBuf>,
    /// Bearer token.
    #[arg(long)]
    token: Option<String>,
    /// Client identity directory (cert.pem, key.pem) registered by fingerprint.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
}

/// `party train`: submit a job to P0 and follow it. The model stays secret-shared between the
/// parties: the job id printed at the end reveals it (`party reveal`) or deploys it.
#[derive(Args, Debug)]
#[command(after_help = "\
ST-GCN (--model stgcn) on a skeleton dataset uploaded with its (C, T, V, M) shape and graph:
  from a public initial model:  --init model.json   (model.safetensors beside it)
  from scratch:                 --arch STGCN-3-128 --width-divisor 4 --activation square|poly
                                [--classes K when the dataset has no class names]
  optimizer:                    --learning-rate 0.01 --momentum 0.9 --weight-decay 1e-4
  batch norms:                  --calibrate-clips 64 (re-normalized on private clips in 2PC)
With --p1 and --p1-cert the per-epoch loss is shown (`epoch 3/10  loss 0.412`):
each party sends you its shares of every sample's probability of the true class, P0 in the
job's stream and P1 on a second connection that only you (the job's owner) may open; you add
them and compute the loss. Neither party learns it. Triples: dealer (the parties' configured
dealer), ot or he (two-server, no third party).")]
struct Train {
    #[command(flatten)]
    conn: Conn,
    /// Dataset name.
    #[arg(long)]
    dataset: String,
    /// linreg, logreg, mlp or stgcn.
    #[arg(long, default_value = "logreg")]
    model: String,
    /// MLP layer widths, input first (e.g. 784,128,128,10).
    #[arg(long, value_delimiter = ',')]
    layers: Vec<u32>,
    /// MLP output normalization: relu (SecureML) or exp.
    #[arg(long, default_value = "relu")]
    softmax: String,
    /// Seed of the public initial weights (MLP; ST-GCN from scratch).
    #[arg(long, default_value_t = 1)]
    init_seed: u64,
    /// ST-GCN: the public initial model's JSON configuration (its safetensors weights next to
    /// it, same name with .safetensors).
    #[arg(long, conflicts_with = "arch")]
    init: Option<PathBuf>,
    /// ST-GCN from scratch: the architecture (STGCN-3-128, STGCN-3-256, STGCN-6-256).
    #[arg(long)]
    arch: Option<String>,
    /// ST-GCN from scratch: every channel width divided by this.
    #[arg(long, default_value_t = 1)]
    width_divisor: u32,
    /// ST-GCN from scratch: square (x²) or poly (a·x² + b·x + c per node); relu is refused.
    #[arg(long)]
    activation: Option<String>,
    /// ST-GCN from scratch: number of classes (default: the dataset's class names).
    #[arg(long)]
    classes: Option<u32>,
    /// ST-GCN: SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// ST-GCN: re-calibrate every batch norm on this many training clips in 2PC before the
    /// first step (their per-channel mean and variance on shares; 0 = keep the starting
    /// model's statistics). Fine-tuning a model trained on other data needs it.
    #[arg(long, default_value_t = 64)]
    calibrate_clips: u32,
    /// ST-GCN: weight decay on convolution and dense weights.
    #[arg(long, default_value_t = 1e-4)]
    weight_decay: f64,
    /// Epochs.
    #[arg(long, default_value_t = 5)]
    epochs: u64,
    /// Mini-batch size.
    #[arg(long, visible_alias = "batch-size", default_value_t = 64)]
    batch: u64,
    /// Learning rate.
    #[arg(long, visible_alias = "learning-rate", default_value_t = 0.125)]
    lr: f64,
    /// Seed of the public batch schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Triple source: auto (the cheaper of ot and he for the job, chosen by P0 from the job's
    /// plan and printed when the job starts), ot, he or dealer.
    #[arg(long, default_value = "auto")]
    triples: String,
    /// OT extension behind the ot and he sources' correlated OTs: silent (Ferret-style, about
    /// 0.06 bytes per OT, semi-honest under the LPN assumption) or iknp (IKNP, 16 bytes per OT
    /// and direction, no LPN). Part of the job, so both parties use the same. Ignored by dealer.
    #[arg(long, default_value = "silent")]
    ot_extension: OtExtension,
    /// Reveal the trained model to yourself and write it here (as `party reveal --out`: a
    /// .csv file gets the weight column, another name the model file).
    #[arg(long)]
    reveal: Option<PathBuf>,
    /// Fit no intercept (linreg, logreg) and no layer biases (mlp): SecureML's model. By default
    /// the model has them, as scikit-learn's `fit_intercept`.
    #[arg(long)]
    no_intercept: bool,
}

impl Conn {
    fn identity(&self) -> Result<Identity> {
        Ok(match &self.cert_dir {
            Some(d) => Identity::load(d)?,
            None => Identity::generate("dyad-client")?,
        })
    }

    async fn connect(&self, role: u8) -> Result<Client> {
        let (addr, cert) = match role {
            0 => (self.p0, self.p0_cert.clone()),
            _ => (
                self.p1.context("--p1 is needed")?,
                self.p1_cert.clone().context("--p1-cert is needed")?,
            ),
        };
        let cert = PeerCert::load(&cert)?;
        Client::connect(addr, &cert, &self.identity()?, self.token.as_deref())
            .await
            .with_context(|| format!("connecting to P{role} at {addr}"))
    }
}

/// `party hash-token`: one `credential_sha256 = "…"` line per party, with the party and the
/// certificate in a trailing comment.
fn hash_token(
    token: &str,
    p0_cert: Option<PathBuf>,
    p1_cert: Option<PathBuf>,
    config: Option<PathBuf>,
) -> Result<Vec<String>> {
    let certs: Vec<(u8, PathBuf)> = match config {
        Some(path) => vec![config::own_certificate(&path)?],
        None => [(0u8, p0_cert), (1, p1_cert)]
            .into_iter()
            .filter_map(|(role, c)| Some((role, c?)))
            .collect(),
    };
    anyhow::ensure!(
        !certs.is_empty(),
        "give --p0-cert and/or --p1-cert (the parties' certificates), or --config PARTY_TOML"
    );
    certs
        .into_iter()
        .map(|(role, path)| {
            let cert = PeerCert::load(&path)?;
            let value = party::server::auth::credential_sha256(token, &cert.fingerprint());
            Ok(format!(
                "credential_sha256 = \"{value}\"   # at P{role} ({})",
                path.display()
            ))
        })
        .collect()
}

/// Whether `party reveal` writes CSV: `--format csv`, or no format and an OUT ending in .csv.
fn csv_format(format: Option<&str>, out: &std::path::Path) -> Result<bool> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(f) => bail!("--format {f:?}: json or csv"),
        None => Ok(out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))),
    }
}

async fn reveal(
    conn: &Conn,
    job: EntryId,
    out: &std::path::Path,
    format: Option<&str>,
) -> Result<()> {
    let csv = csv_format(format, out)?;
    let (mut p0, mut p1) = (conn.connect(0).await?, conn.connect(1).await?);
    match party::deploy::reveal(&mut p0, &mut p1, job).await? {
        Revealed::Linear(_, w) | Revealed::Weights(w) if csv => {
            datasets::csv::write_csv(out, None, &w)?;
            println!("model weights written to {} (CSV)", out.display());
        }
        Revealed::Linear(m, _) => {
            let files = m.write(out)?;
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            println!("{} model written to {}", m.meta.kind, names.join(" and "));
        }
        Revealed::Weights(_) => bail!(
            "model {job} was trained before models carried their description: reveal it with \
             --format csv (or an --out ending in .csv)"
        ),
        Revealed::Stgcn(m) => {
            let (json, weights) = party::model_file::write_files(&m, out)?;
            println!(
                "ST-GCN model written to {} and {}",
                json.display(),
                weights.display()
            );
        }
    }
    Ok(())
}

async fn deploy(
    conn: &Conn,
    job: EntryId,
    name: &str,
    serve: ServeAt,
    packing: Option<&str>,
) -> Result<()> {
    let (mut p0, mut p1) = (conn.connect(0).await?, conn.connect(1).await?);
    let served = party::deploy::deploy(&mut p0, &mut p1, job, name, serve, packing).await?;
    for d in served {
        println!(
            "P{} serves {:?}: preset {}, packing {}, {} bytes of evaluation keys per session",
            d.role, d.name, d.preset, d.packing, d.key_bytes
        );
    }
    Ok(())
}

fn init_tracing() {
    party::logging::init("info");
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Init { id, dir } => {
            anyhow::ensure!(id <= 1, "--id must be 0 or 1");
            let cfg = dir.join("party.toml");
            if cfg.exists() {
                bail!("{} exists already", cfg.display());
            }
            let me = Identity::generate(&format!("dyad-p{id}"))?;
            me.save(&dir)?;
            std::fs::write(&cfg, config::template(id))?;
            println!(
                "identity: {}/cert.pem (fingerprint {})",
                dir.display(),
                me.fingerprint()
            );
            println!("config:   {} — give cert.pem to the other party's operator, put theirs at peer-cert.pem, register clients", cfg.display());
        }
        Command::Serve { config } => {
            let cfg = config::Config::load(&config)?;
            Server::new(cfg)?.run().await?;
        }
        Command::HashToken {
            token,
            p0_cert,
            p1_cert,
            config,
        } => {
            let token = zeroize::Zeroizing::new(token);
            for line in hash_token(&token, p0_cert, p1_cert, config)? {
                println!("{line}");
            }
        }
        Command::ClientInit {
            dir,
            p0,
            p0_cert,
            p1,
            p1_cert,
        } => {
            let me = if dir.join("cert.pem").exists() {
                Identity::load(&dir)?
            } else {
                let me = Identity::generate("dyad-client")?;
                me.save(&dir)?;
                me
            };
            for (role, addr, cert) in [(0u8, p0, p0_cert), (1, p1, p1_cert)] {
                let (Some(address), Some(cert)) = (addr, cert) else {
                    continue;
                };
                PeerCert::load(&cert)?;
                let pinned = format!("p{role}-cert.pem");
                std::fs::copy(&cert, dir.join(&pinned))
                    .with_context(|| format!("copying {}", cert.display()))?;
                let c = party::client::ClientConfig {
                    address,
                    party_certificate: pinned.into(),
                    identity_dir: Some(".".into()),
                    token: None,
                };
                let path = dir.join(format!("p{role}.toml"));
                std::fs::write(&path, c.to_toml(role))
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            println!("{}", me.fingerprint());
        }
        Command::List(conn) => {
            let mut c = conn.connect(0).await?;
            match c.request(&ClientRequest::List).await? {
                Reply::Entries(es) => {
                    for e in es {
                        let clips = match e.tensor_dims {
                            Some([c, t, v, m]) => {
                                format!("  clips (C, T, V, M) = ({c}, {t}, {v}, {m})")
                            }
                            None => String::new(),
                        };
                        println!("{}  {}  {} x {}{clips}", e.id, e.name, e.rows, e.cols);
                    }
                }
                other => bail!("unexpected reply {other:?}"),
            }
        }
        Command::Delete { conn, name } => {
            let mut c = conn.connect(0).await?;
            c.request(&ClientRequest::Delete { name: name.clone() })
                .await?;
            println!("deleted {name}");
        }
        Command::Reveal {
            conn,
            job,
            job_flag,
            out,
            format,
        } => {
            let job = job.or(job_flag).context("give the job id")?;
            let job = EntryId::parse(&job).context("job ids are 32 hex digits")?;
            reveal(&conn, job, &out, format.as_deref()).await?;
        }
        Command::Deploy {
            conn,
            job,
            name,
            serve,
            packing,
        } => {
            let job = EntryId::parse(&job).context("job ids are 32 hex digits")?;
            deploy(&conn, job, &name, serve, packing.as_deref()).await?;
        }
        Command::Train(t) => train(*t).await?,
        Command::Standardize(s) => owner::standardize(s).await?,
        Command::Evaluate(e) => owner::evaluate(e).await?,
        Command::Predict(p) => owner::predict(p).await?,
        Command::JoinPropose { conn, terms } => join(&conn, None, terms, true, false).await?,
        Command::JoinConfirm {
            conn,
            join: id,
            terms,
            no_start,
            start_only,
        } => {
            let id = EntryId::parse(&id).context("join ids are 32 hex digits")?;
            join(&conn, Some(id), terms, !start_only, !no_start).await?;
        }
    }
    Ok(())
}

/// `join-propose` (a new id, consent) and `join-confirm` (consent and/or start).
async fn join(
    conn: &Conn,
    id: Option<EntryId>,
    t: JoinTerms,
    consent: bool,
    start: bool,
) -> Result<()> {
    let spec = party::proto::JoinSpec {
        join: id.unwrap_or_else(EntryId::random),
        left: t.left,
        right: t.right,
        name: t.name,
        owner: t.owner,
    };
    let mut p0 = conn.connect(0).await?;
    if consent {
        let mut p1 = conn.connect(1).await?;
        party::client::join::consent(&mut p0, &mut p1, &spec).await?;
    }
    if id.is_none() {
        println!("{}", spec.join);
        let (l, r) = (&spec.left, &spec.right);
        eprintln!(
            "consented at both parties; the other owner runs:\n  party join-confirm --join {} \
             --left {}/{} --right {}/{} --name {} --owner {} (with its connection options)",
            spec.join, l.owner, l.name, r.owner, r.name, spec.name, spec.owner
        );
    } else if start {
        let joined = party::client::join::start(&mut p0, spec.join).await?;
        println!("{joined}");
    } else {
        println!("consented to join {} at both parties", spec.join);
    }
    Ok(())
}

/// The job `party train` submits.
fn job_spec(t: &Train) -> Result<JobSpec> {
    let model = match t.model.as_str() {
        "linreg" => ModelKind::Linreg,
        "logreg" => ModelKind::Logreg,
        "mlp" => ModelKind::Mlp(MlpSpec {
            layers: t.layers.clone(),
            softmax: match t.softmax.as_str() {
                "relu" => SoftmaxKind::Relu,
                "exp" => SoftmaxKind::Exp,
                s => bail!("unknown softmax {s:?} (relu, exp)"),
            },
            init_seed: t.init_seed,
        }),
        "stgcn" => ModelKind::Stgcn(stgcn_spec(t)?),
        m => bail!("unknown model {m:?} (linreg, logreg, mlp, stgcn)"),
    };
    let triples = TripleKind::parse(&t.triples).map_err(anyhow::Error::msg)?;
    Ok(JobSpec {
        model,
        dataset: t.dataset.clone(),
        learning_rate: t.lr,
        batch_size: t.batch,
        epochs: t.epochs,
        schedule_seed: t.seed,
        triples,
        intercept: !t.no_intercept,
        ot_extension: t.ot_extension,
    })
}

/// The ST-GCN part of `party train`'s job: an initial model file, or an architecture.
fn stgcn_spec(t: &Train) -> Result<StgcnSpec> {
    let init = match &t.init {
        Some(json) => Some(load_init(json)?),
        None if t.arch.is_none() => {
            bail!("--model stgcn needs --init model.json or --arch (e.g. STGCN-3-128)")
        }
        None => None,
    };
    let activation = match (&t.activation, &init) {
        (Some(a), _) => a.clone(),
        (None, Some(_)) => String::new(),
        (None, None) => "square".into(),
    };
    Ok(StgcnSpec {
        init,
        architecture: t.arch.clone().unwrap_or_default(),
        width_divisor: t.width_divisor,
        activation,
        init_seed: t.init_seed,
        momentum: t.momentum,
        weight_decay: t.weight_decay,
        classes: t.classes,
        calibration_clips: t.calibrate_clips,
    })
}

/// A model file pair: `json` and the safetensors beside it.
fn load_init(json: &std::path::Path) -> Result<InitModel> {
    let weights = json.with_extension("safetensors");
    let config_json = std::fs::read_to_string(json)
        .with_context(|| format!("reading the initial model {}", json.display()))?;
    let safetensors = std::fs::read(&weights)
        .with_context(|| format!("reading the initial weights {}", weights.display()))?;
    stgcn::StGcn::from_json_and_safetensors(&config_json, &safetensors)
        .with_context(|| format!("loading the initial model {}", json.display()))?;
    Ok(InitModel {
        config_json,
        safetensors,
    })
}

/// `party train`: submits the job, shows progress (and the per-epoch loss when P1 is given),
/// prints the job id and both parties' measurements.
async fn train(t: Train) -> Result<()> {
    let spec = job_spec(&t)?;
    let mut c = t.conn.connect(0).await?;
    let pb = indicatif::ProgressBar::new(0);
    let mut announced = false;
    let mut on = |u: JobUpdate| match u {
        JobUpdate::Progress(p) => {
            if !std::mem::replace(&mut announced, true) {
                let asked = spec.triples.name();
                let ext = match p.triples {
                    TripleKind::Dealer => String::new(),
                    _ => format!(", OT extension {}", spec.ot_extension),
                };
                pb.suspend(|| println!("triples: {} (asked: {asked}){ext}", p.triples.name()));
            }
            pb.set_length(p.steps);
            pb.set_position(p.step);
        }
        // `suspend` prints above a visible bar and also when the bar is hidden (no terminal),
        // where `println` of the bar would drop the line.
        JobUpdate::Epoch(e) => pb.suspend(|| {
            println!(
                "epoch {}/{}  loss {:.3}  (p_true > 0.5 for {:.1}% of {} clips)",
                e.epoch,
                e.epochs,
                e.loss,
                100.0 * e.confident,
                e.samples
            )
        }),
    };
    let done = match (&spec.model, t.conn.p1.is_some()) {
        (ModelKind::Stgcn(_), true) => {
            let mut p1 = t.conn.connect(1).await?;
            c.submit_watched(&mut p1, &spec, &mut on).await?
        }
        _ => {
            let mut progress = |p: party::client::JobProgress| on(JobUpdate::Progress(p));
            c.submit(&spec, &mut progress).await?
        }
    };
    pb.finish_and_clear();
    for (i, s) in done.stats.iter().enumerate() {
        println!(
            "  P{i}: offline {:.3} s ({} B sent), online {:.3} s ({} B sent, {} B received, {} rounds)",
            s.offline_s,
            s.offline.bytes_sent,
            s.online_s,
            s.online.bytes_sent,
            s.online.bytes_received,
            s.online.rounds
        );
    }
    println!(
        "job {} done ({} triples); the model stays secret-shared (reveal or deploy it with this id)",
        done.job,
        done.triples.name()
    );
    if let Some(out) = &t.reveal {
        reveal(&t.conn, done.job, out, None).await?;
    }
    Ok(())
}
