//! A [`Channel`] wrapper that fails a receive when the peer stays silent longer than a timeout, so
//! a vanished peer (crashed host, cut network, stopped process) fails a job within the
//! configured time instead of at the transport's idle timeout.

use mpc::net::Channel;
use mpc::MpcError;
type Result<T> = std::result::Result<T, MpcError>;
use std::time::Duration;

/// `C` with a deadline on every receive.
#[derive(Debug)]
pub struct Timed<C> {
    inner: C,
    timeout: Duration,
}

impl<C> Timed<C> {
    /// Wraps `inner`; every receive fails after `timeout` without a frame.
    pub fn new(inner: C, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    /// The wrapped channel.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

fn silent(t: Duration) -> MpcError {
    MpcError::ChannelClosed {
        reason: format!("peer silent for {:.1} s (peer timeout)", t.as_secs_f64()),
    }
}

impl<C: Channel> Channel for Timed<C> {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<()> {
        let t = self.timeout;
        tokio::time::timeout(t, self.inner.send_frame(frame))
            .await
            .map_err(|_| silent(t))?
    }

    async fn recv_frame(&mut self, max_len: usize) -> Result<Vec<u8>> {
        let t = self.timeout;
        tokio::time::timeout(t, self.inner.recv_frame(max_len))
            .await
            .map_err(|_| silent(t))?
    }

    async fn flush(&mut self) -> Result<()> {
        let t = self.timeout;
        tokio::time::timeout(t, self.inner.flush())
            .await
            .map_err(|_| silent(t))?
    }

    async fn exchange_frame(&mut self, frame: Vec<u8>, max_len: usize) -> Result<Vec<u8>> {
        let t = self.timeout;
        tokio::time::timeout(t, self.inner.exchange_frame(frame, max_len))
            .await
            .map_err(|_| silent(t))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpc::net::{mem_pair, ChannelExt};

    #[tokio::test]
    async fn a_silent_peer_fails_the_receive() {
        let (a, _b) = mem_pair();
        let mut a = Timed::new(a, Duration::from_millis(50));
        let r: Result<u64> = a.recv(8).await;
        assert!(matches!(r, Err(MpcError::ChannelClosed { .. })));
    }

    #[tokio::test]
    async fn messages_pass_through() {
        let (a, b) = mem_pair();
        let (mut a, mut b) = (
            Timed::new(a, Duration::from_secs(5)),
            Timed::new(b, Duration::from_secs(5)),
        );
        a.send(&7u64).await.unwrap();
        assert_eq!(b.recv::<u64>(8).await.unwrap(), 7);
    }
}
