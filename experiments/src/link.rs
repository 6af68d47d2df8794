//! The link between the two in-process parties: real sockets on loopback by default (the same
//! transports the `party` servers use: QUIC, TLS over TCP, or plain TCP for benchmarks), or
//! in-memory channels when a config asks for `memory`.

use anyhow::{bail, Result};
use mpc::net::{mem_pair, Channel, MemChannel};
use mpc::MpcError;
use party::transport::{loopback_pair, PeerChannel, TransportKind};

/// A channel of any configured kind.
#[derive(Debug)]
pub enum AnyChannel {
    /// In-memory.
    Mem(MemChannel),
    /// A real transport on loopback.
    Peer(PeerChannel),
}

/// Connects two parties with the transport `kind` (`quic`, `tls-tcp`, `tcp-insecure`, `memory`).
pub async fn pair(kind: &str) -> Result<(AnyChannel, AnyChannel)> {
    let k = match kind {
        "memory" => {
            let (a, b) = mem_pair();
            return Ok((AnyChannel::Mem(a), AnyChannel::Mem(b)));
        }
        "quic" => TransportKind::Quic,
        "tls-tcp" => TransportKind::TlsTcp,
        "tcp-insecure" => TransportKind::Tcp,
        other => bail!("unknown transport {other:?} (quic, tls-tcp, tcp-insecure, memory)"),
    };
    let (a, b) = loopback_pair(k).await?;
    Ok((AnyChannel::Peer(a), AnyChannel::Peer(b)))
}

macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            AnyChannel::Mem($c) => $e,
            AnyChannel::Peer($c) => $e,
        }
    };
}

impl Channel for AnyChannel {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), MpcError> {
        each!(self, c => c.send_frame(frame).await)
    }

    async fn recv_frame(&mut self, max_len: usize) -> Result<Vec<u8>, MpcError> {
        each!(self, c => c.recv_frame(max_len).await)
    }

    async fn flush(&mut self) -> Result<(), MpcError> {
        each!(self, c => c.flush().await)
    }

    async fn exchange_frame(
        &mut self,
        frame: Vec<u8>,
        max_len: usize,
    ) -> Result<Vec<u8>, MpcError> {
        each!(self, c => c.exchange_frame(frame, max_len).await)
    }
}
