//! `delay-relay` — WAN emulation without `sch_netem`: a delay relay for UDP (QUIC) and TCP
//! (TLS over TCP), and a UDP round-trip probe. See [`experiments::relay`] for what it emulates
//! and its caveats; `experiments/netem/run.sh` starts it when `tc netem` is missing.
//!
//! ```text
//! delay-relay relay --listen 10.77.1.1:7100 --to 10.77.0.1:7100 --delay-ms 36   # UDP and TCP
//! delay-relay echo --listen 10.77.0.1:7300
//! delay-relay ping --to 10.77.1.1:7300 --count 20     # prints min/median/max round trip (ms)
//! ```

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use experiments::relay;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "delay-relay",
    about = "Delay relay and UDP probe for WAN emulation"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Forward UDP datagrams and TCP connections from LISTEN to TO, each direction held for the
    /// one-way delay.
    Relay {
        /// Address to accept on (UDP and TCP).
        #[arg(long)]
        listen: SocketAddr,
        /// Where to forward.
        #[arg(long)]
        to: SocketAddr,
        /// One-way delay in milliseconds (the round trip grows by twice this).
        #[arg(long)]
        delay_ms: f64,
        /// UDP datagrams queued per direction before tail drop.
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
        /// Relay UDP only.
        #[arg(long, conflicts_with = "tcp_only")]
        udp_only: bool,
        /// Relay TCP only.
        #[arg(long)]
        tcp_only: bool,
    },
    /// Answer UDP probes.
    Echo {
        /// Address to answer on.
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Send UDP probes to an echo and print the round trips.
    Ping {
        /// The echo (or a relay in front of it).
        #[arg(long)]
        to: SocketAddr,
        /// Number of probes.
        #[arg(long, default_value_t = 20)]
        count: u32,
        /// Milliseconds between probes.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    party::logging::init("warn");
    match Cli::parse().command {
        Cmd::Relay {
            listen,
            to,
            delay_ms,
            limit,
            udp_only,
            tcp_only,
        } => {
            anyhow::ensure!(
                delay_ms.is_finite() && (0.0..=10_000.0).contains(&delay_ms),
                "--delay-ms {delay_ms} is outside 0..=10000"
            );
            let delay = Duration::from_secs_f64(delay_ms / 1e3);
            let u = async {
                if tcp_only {
                    return std::future::pending().await;
                }
                let s = tokio::net::UdpSocket::bind(listen)
                    .await
                    .with_context(|| format!("binding UDP {listen}"))?;
                relay::udp(s, to, delay, limit).await.context("UDP relay")
            };
            let t = async {
                if udp_only {
                    return std::future::pending().await;
                }
                let l = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("binding TCP {listen}"))?;
                relay::tcp(l, to, delay).await.context("TCP relay")
            };
            println!("relaying {listen} → {to}, {delay_ms} ms each way");
            tokio::try_join!(u, t)?;
            Ok(())
        }
        Cmd::Echo { listen } => {
            let s = tokio::net::UdpSocket::bind(listen)
                .await
                .with_context(|| format!("binding UDP {listen}"))?;
            println!("echo on {listen}");
            Ok(relay::echo(s).await?)
        }
        Cmd::Ping {
            to,
            count,
            interval_ms,
        } => {
            let rtts = relay::ping(
                to,
                count,
                Duration::from_millis(interval_ms),
                Duration::from_secs(2),
            )
            .await?;
            let lost = rtts.iter().filter(|r| r.is_none()).count();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            match relay::summary(&rtts) {
                Some((med, min, max)) => println!(
                    "{to}: {count} probes, {lost} lost, rtt min/median/max = {:.3}/{:.3}/{:.3} ms",
                    ms(min),
                    ms(med),
                    ms(max)
                ),
                None => anyhow::bail!("{to}: no answer to {count} probes"),
            }
            Ok(())
        }
    }
}
