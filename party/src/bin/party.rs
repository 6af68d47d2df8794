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
//!       --dataset cancer --model logreg [--epochs 5 --batch 64 --lr 0.125 --seed 1 --triples ot] \
//!       [--layers 784,128,128,10 --softmax relu --init-seed 1]   # for --model mlp
//!       [--reveal weights.csv]                # submit a job to P0, stream progress, reveal
//! party list / party delete NAME              # the client's entries (same connection flags)
//! party reveal --job J --out DIR/NAME         # a trained model: DIR/NAME.json + .safetensors
//!                                             # for an ST-GCN, the weights as CSV otherwise
//! party deploy --job J --name M [--serve p0|p1|both] [--packing ama|channel-major]
//!                                             # publish a trained ST-GCN to the inference
//!                                             # service (the serving party learns the weights)
//! ```

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ml::backend::SoftmaxKind;
use party::client::Client;
use party::deploy::Revealed;
use party::proto::{
    ClientRequest, EntryId, JobSpec, MlpSpec, ModelKind, Reply, ServeAt, TripleKind,
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
    Train(Train),
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
    /// OUT.json + OUT.safetensors (the format `[inference]` loads), other models as CSV at OUT.
    Reveal {
        #[command(flatten)]
        conn: Conn,
        /// Job id printed by `train` (or give --job).
        #[arg(required_unless_present = "job_flag", conflicts_with = "job_flag")]
        job: Option<String>,
        /// Job id printed by `train`.
        #[arg(long = "job", id = "job_flag")]
        job_flag: Option<String>,
        /// Where to write the model (DIR/NAME for an ST-GCN, a CSV file otherwise).
        #[arg(long)]
        out: PathBuf,
    },
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
        /// ama (default) or channel-major.
        #[arg(long)]
        packing: Option<String>,
    },
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

#[derive(Args, Debug)]
struct Train {
    #[command(flatten)]
    conn: Conn,
    /// Dataset name.
    #[arg(long)]
    dataset: String,
    /// linreg, logreg or mlp.
    #[arg(long, default_value = "logreg")]
    model: String,
    /// MLP layer widths, input first (e.g. 784,128,128,10).
    #[arg(long, value_delimiter = ',')]
    layers: Vec<u32>,
    /// MLP output normalization: relu (SecureML) or exp.
    #[arg(long, default_value = "relu")]
    softmax: String,
    /// Seed of the MLP's public initial weights.
    #[arg(long, default_value_t = 1)]
    init_seed: u64,
    /// Epochs.
    #[arg(long, default_value_t = 5)]
    epochs: u64,
    /// Mini-batch size.
    #[arg(long, default_value_t = 64)]
    batch: u64,
    /// Learning rate.
    #[arg(long, default_value_t = 0.125)]
    lr: f64,
    /// Seed of the public batch schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// ot or dealer.
    #[arg(long, default_value = "ot")]
    triples: String,
    /// Reveal the trained model to yourself and write it here as CSV.
    #[arg(long)]
    reveal: Option<PathBuf>,
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

async fn reveal(conn: &Conn, job: EntryId, out: &std::path::Path) -> Result<()> {
    let (mut p0, mut p1) = (conn.connect(0).await?, conn.connect(1).await?);
    match party::deploy::reveal(&mut p0, &mut p1, job).await? {
        Revealed::Weights(w) => {
            datasets::csv::write_csv(out, None, &w)?;
            println!("model written to {}", out.display());
        }
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
        } => {
            let job = job.or(job_flag).context("give the job id")?;
            let job = EntryId::parse(&job).context("job ids are 32 hex digits")?;
            reveal(&conn, job, &out).await?;
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
        Command::Train(t) => {
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
                m => bail!("unknown model {m:?} (linreg, logreg, mlp)"),
            };
            let triples = match t.triples.as_str() {
                "ot" => TripleKind::Ot,
                "dealer" => TripleKind::Dealer,
                s => bail!("unknown triple source {s:?} (ot, dealer)"),
            };
            let mut c = t.conn.connect(0).await?;
            c.send(&ClientRequest::Submit(JobSpec {
                model,
                dataset: t.dataset,
                learning_rate: t.lr,
                batch_size: t.batch,
                epochs: t.epochs,
                schedule_seed: t.seed,
                triples,
            }))
            .await?;
            let pb = indicatif::ProgressBar::new(0);
            let (job, stats) = loop {
                match c.recv().await? {
                    Reply::Progress { step, steps, .. } => {
                        pb.set_length(steps);
                        pb.set_position(step);
                    }
                    Reply::JobDone { job, stats } => break (job, stats),
                    other => bail!("unexpected reply {other:?}"),
                }
            };
            pb.finish_and_clear();
            println!("job {job} done");
            for (i, s) in stats.iter().enumerate() {
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
            if let Some(out) = &t.reveal {
                reveal(&t.conn, job, out).await?;
            }
        }
    }
    Ok(())
}
