//! The link between the two in-process parties: real sockets on loopback by default (the same
//! transport the `party` servers use), or in-memory channels when a config asks for `memory`.

use anyhow::{bail, Result};
use mpc::net::{mem_pair, Channel, MemChannel};
use mpc::MpcError;
use std::future::Future;

/// A channel of any configured kind.
#[derive(Debug)]
pub enum AnyChannel {
    /// In-memory.
    Mem(MemChannel),
}

/// Connects two parties with the transport `kind`.
pub async fn pair(kind: &str) -> Result<(AnyChannel, AnyChannel)> {
    match kind {
        "memory" => {
            let (a, b) = mem_pair();
            Ok((AnyChannel::Mem(a), AnyChannel::Mem(b)))
        }
        other => bail!("transport {other:?} is not available in this build"),
    }
}

impl Channel for AnyChannel {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), MpcError> {
        match self {
            AnyChannel::Mem(c) => c.send_frame(frame).await,
        }
    }

    async fn recv_frame(&mut self, max_len: usize) -> Result<Vec<u8>, MpcError> {
        match self {
            AnyChannel::Mem(c) => c.recv_frame(max_len).await,
        }
    }

    async fn flush(&mut self) -> Result<(), MpcError> {
        match self {
            AnyChannel::Mem(c) => c.flush().await,
        }
    }

    fn exchange_frame(
        &mut self,
        frame: Vec<u8>,
        max_len: usize,
    ) -> impl Future<Output = Result<Vec<u8>, MpcError>> + Send {
        async move {
            match self {
                AnyChannel::Mem(c) => c.exchange_frame(frame, max_len).await,
            }
        }
    }
}
