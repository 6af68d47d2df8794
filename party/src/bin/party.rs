//! `party` — run a Dyad party server, and the client commands for jobs.
//!
//! ```text
//! party init --id 0 --dir p0                  # identity (cert.pem, key.pem) + party.toml template
//! party serve --config p0/party.toml          # run the server
//! party hash-token TOKEN                      # the token_sha256 to register a client
//! party train --p0 ADDR --p0-cert P --p1 ADDR --p1-cert P (--token T | --cert-dir D) \
//!       --dataset cancer --model logreg [--epochs 5 --batch 64 --lr 0.125 --seed 1 --triples ot] \
//!       [--reveal weights.csv]                # submit a job to P0, stream progress, reveal
//! party list / party delete NAME              # the client's entries (same connection flags)
//! ```

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use party::client::Client;
use party::proto::{ClientRequest, EntryId, JobSpec, ModelKind, Reply, TripleKind};
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
    /// Print the SHA-256 of a token (for `token_sha256` in `[[clients.allow]]`).
    HashToken {
        /// The token.
        token: String,
    },
    /// Create a client identity (for registration by fingerprint); prints the fingerprint.
    ClientInit {
        /// Directory to create.
        #[arg(long)]
        dir: PathBuf,
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
    /// Reveal a model trained earlier (both parties send you their shares).
    Reveal {
        #[command(flatten)]
        conn: Conn,
        /// Job id printed by `train`.
        job: String,
        /// Write the weights here as CSV.
        #[arg(long)]
        out: PathBuf,
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
    /// linreg or logreg.
    #[arg(long, default_value = "logreg")]
    model: String,
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
        Client::connect(addr, &cert, &self.identity()?, self.token.clone())
            .await
            .with_context(|| format!("connecting to P{role} at {addr}"))
    }
}

async fn reveal(conn: &Conn, job: EntryId, out: &std::path::Path) -> Result<()> {
    let (s0, f) = conn.connect(0).await?.model_share(job).await?;
    let (s1, _) = conn.connect(1).await?.model_share(job).await?;
    let fp = mpc::FixedPoint::new(mpc::FracBits::new(f)?);
    let w = fp.decode_matrix(&mpc::share::reconstruct(&s0, &s1).view());
    datasets::csv::write_csv(out, None, &w)?;
    println!("model written to {}", out.display());
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
        Command::HashToken { token } => println!("{}", party::server::auth::hash_token(&token)),
        Command::ClientInit { dir } => {
            let me = Identity::generate("dyad-client")?;
            me.save(&dir)?;
            println!("{}", me.fingerprint());
        }
        Command::List(conn) => {
            let mut c = conn.connect(0).await?;
            match c.request(&ClientRequest::List).await? {
                Reply::Entries(es) => {
                    for e in es {
                        println!("{}  {}  {} x {}", e.id, e.name, e.rows, e.cols);
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
        Command::Reveal { conn, job, out } => {
            let job = EntryId::parse(&job).context("job ids are 32 hex digits")?;
            reveal(&conn, job, &out).await?;
        }
        Command::Train(t) => {
            let model = match t.model.as_str() {
                "linreg" => ModelKind::Linreg,
                "logreg" => ModelKind::Logreg,
                m => bail!("unknown model {m:?} (linreg, logreg)"),
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
            let job = loop {
                match c.recv().await? {
                    Reply::Progress { step, steps, .. } => {
                        pb.set_length(steps);
                        pb.set_position(step);
                    }
                    Reply::JobDone { job } => break job,
                    other => bail!("unexpected reply {other:?}"),
                }
            };
            pb.finish_and_clear();
            println!("job {job} done");
            if let Some(out) = &t.reveal {
                reveal(&t.conn, job, out).await?;
            }
        }
    }
    Ok(())
}
