//! `dealer` — the trusted third party that makes Beaver triples for P0 and P1
//! (`mpc::triples::dealer`, SecureML §V client-aided setting) over an authenticated transport.
//!
//! ```text
//! dealer init --dir DIR                 # writes DIR/cert.pem and DIR/key.pem
//! dealer --listen 127.0.0.1:7000 --cert-dir DIR --p0-cert p0.pem --p1-cert p1.pem \
//!        --transport tls-tcp|quic [--sessions N]
//! ```
//!
//! Each party connects with its own identity and pins the dealer's `cert.pem`; the dealer accepts
//! only the two pinned party certificates, and the certificate a connection presented decides
//! whether it is P0 or P1. Once both are connected a session runs (`run_dealer`); sessions run
//! concurrently and the dealer keeps listening (or exits after `--sessions N`). The first line on
//! stdout is `dealer listening on ADDR (KIND)`.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use party::transport::{listen, Identity, Link, PeerCert, TransportKind, TransportOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "dealer", about = "Trusted dealer for Dyad's 2PC offline phase")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Option<Serve>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generates the dealer's identity (key pair and self-signed certificate).
    Init {
        /// Directory for cert.pem and key.pem.
        #[arg(long)]
        dir: PathBuf,
        /// Certificate subject name.
        #[arg(long, default_value = "dyad-dealer")]
        name: String,
    },
}

#[derive(clap::Args, Debug)]
struct Serve {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long)]
    listen: SocketAddr,
    /// Directory holding the dealer's cert.pem and key.pem (from `dealer init`).
    #[arg(long)]
    cert_dir: PathBuf,
    /// P0's certificate (PEM).
    #[arg(long)]
    p0_cert: PathBuf,
    /// P1's certificate (PEM).
    #[arg(long)]
    p1_cert: PathBuf,
    /// Transport: "tls-tcp" or "quic".
    #[arg(long, default_value = "tls-tcp")]
    transport: String,
    /// Exit after this many sessions (default: serve forever).
    #[arg(long)]
    sessions: Option<u64>,
}

fn main() -> Result<()> {
    party::logging::init("info");
    let cli = Cli::parse();
    match (cli.command, cli.serve) {
        (Some(Command::Init { dir, name }), _) => {
            let id = Identity::generate(&name)?;
            id.save(&dir)
                .with_context(|| format!("writing the identity to {}", dir.display()))?;
            println!(
                "wrote {}/cert.pem and key.pem (fingerprint {})",
                dir.display(),
                id.fingerprint()
            );
            Ok(())
        }
        (None, Some(serve)) => tokio::runtime::Runtime::new()?.block_on(run(serve)),
        (None, None) => bail!("give --listen … (see --help) or `dealer init --dir DIR`"),
    }
}

async fn run(s: Serve) -> Result<()> {
    let kind: TransportKind = s.transport.parse()?;
    if !kind.is_secure() {
        bail!("the dealer identifies parties by certificate: use \"tls-tcp\" or \"quic\"");
    }
    let me = Identity::load(&s.cert_dir)
        .with_context(|| format!("loading the dealer identity from {}", s.cert_dir.display()))?;
    let certs = [PeerCert::load(&s.p0_cert)?, PeerCert::load(&s.p1_cert)?];
    if certs[0] == certs[1] {
        bail!("P0 and P1 must have different certificates");
    }
    let listener = listen(kind, s.listen, me, &certs, &TransportOptions::default()).await?;
    println!("dealer listening on {} ({kind})", listener.local_addr());
    std::io::stdout().flush()?;

    let mut waiting: [Option<Link>; 2] = [None, None];
    let mut sessions = tokio::task::JoinSet::new();
    let mut started = 0u64;
    while s.sessions.is_none_or(|n| started < n) {
        let link = match listener.accept().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("refused a connection: {e}");
                continue;
            }
        };
        let fp = link.peer().map(PeerCert::fingerprint);
        let role = certs
            .iter()
            .position(|c| Some(c.fingerprint()) == fp)
            .expect("the listener accepts only the pinned certificates");
        tracing::info!("P{role} connected from {}", link.remote_addr());
        if waiting[role].replace(link).is_some() {
            tracing::warn!("P{role} reconnected; dropping its earlier connection");
        }
        if let [Some(_), Some(_)] = &waiting {
            let (l0, l1) = (
                waiting[0].take().expect("P0"),
                waiting[1].take().expect("P1"),
            );
            started += 1;
            let n = started;
            sessions.spawn(async move {
                let (c0, c1) = tokio::join!(l0.next_channel(), l1.next_channel());
                let r = match (c0, c1) {
                    (Ok(c0), Ok(c1)) => mpc::triples::dealer::run_dealer(c0, c1)
                        .await
                        .map_err(anyhow::Error::from),
                    (Err(e), _) | (_, Err(e)) => Err(e.into()),
                };
                match &r {
                    Ok(()) => tracing::info!("session {n} finished"),
                    Err(e) => tracing::warn!("session {n} failed: {e}"),
                }
                // Keep the links until the channels are done.
                drop((l0, l1));
                r
            });
        }
    }
    let mut failed = 0;
    while let Some(r) = sessions.join_next().await {
        if !matches!(r, Ok(Ok(()))) {
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} dealer session(s) failed");
    }
    Ok(())
}
