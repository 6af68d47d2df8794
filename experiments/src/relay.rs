//! A userspace delay relay for WAN emulation where the kernel has no `sch_netem` (the `tc netem`
//! qdisc), and a UDP round-trip probe (`ping` is not installed everywhere either).
//!
//! `experiments/netem/run.sh` shapes the rate of the link between the two party namespaces with
//! `tbf` and, when netem is missing, puts this relay on the path of the peer link to add the
//! propagation delay: every UDP datagram (QUIC) or every chunk of a TCP byte stream (TLS over
//! TCP) is held for the one-way delay in each direction, so the round trip grows by twice the
//! delay. The SecureML WAN profile (§V: 72 ms round trip, 9 MB/s) is 36 ms each way.
//!
//! Caveats (the relay is not netem):
//! * **Timer granularity.** Tokio's timer has millisecond resolution: each hold is rounded up to
//!   the next millisecond tick, adding up to ~1 ms per direction; delays below a few
//!   milliseconds (a LAN) are not emulated — the LAN profile uses the bare veth link instead.
//! * **Scheduling jitter.** The relay is a process like any other: on a loaded host a datagram
//!   may leave late by the scheduler's latency. The probe ([`ping`]) shows the spread.
//! * **UDP is faithful, TCP is split.** A UDP datagram (and so every QUIC packet and
//!   acknowledgement) crosses the relay as it is, so QUIC's congestion control sees the emulated
//!   round trip. A TCP connection is terminated at the relay and re-opened towards the target
//!   (a "split TCP" proxy): the application's messages are delayed correctly, but TCP's own
//!   handshake, acknowledgements and windows run over two short hops; the relay holds at most
//!   [`TCP_QUEUE_CHUNKS`] chunks per direction, then pushes back on the sender.
//! * **Queueing.** The UDP queue of each direction holds at most `limit` datagrams (tail drop
//!   beyond, like netem's `limit`); rate limiting and its queue are the qdisc's (`tbf`).
//! * **Sessions.** One upstream socket per UDP source address, kept for the relay's lifetime.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Largest UDP datagram the relay forwards.
const MAX_DATAGRAM: usize = 65_535;
/// Chunks of a TCP stream held per direction before the relay stops reading (each at most
/// `TCP_CHUNK` bytes).
pub const TCP_QUEUE_CHUNKS: usize = 256;
/// Largest chunk read from a TCP stream at once.
const TCP_CHUNK: usize = 64 << 10;

/// One datagram or chunk and the time it may leave.
struct Held {
    due: Instant,
    data: Vec<u8>,
}

/// Errors a UDP socket reports for an earlier datagram (an ICMP "port unreachable" while the
/// target is not up yet), which must not stop the relay.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

/// The unspecified address of `addr`'s family, port 0.
fn any_of(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// Waits until `due`; returns at once when it has passed (a zero delay, or a backlog), without
/// a round through the timer wheel, whose millisecond ticks would add up to 1 ms.
async fn hold(due: Instant) {
    if due > Instant::now() {
        tokio::time::sleep_until(due).await;
    }
}

/// A delay line: datagrams pushed with [`DelayLine::push`] are handed to `send` once their hold
/// time is over, in order; beyond `limit` waiting datagrams, new ones are dropped.
struct DelayLine {
    tx: mpsc::Sender<Held>,
    delay: Duration,
}

impl DelayLine {
    fn spawn<F, Fut>(delay: Duration, limit: usize, mut send: F) -> Self
    where
        F: FnMut(Vec<u8>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = io::Result<()>> + Send,
    {
        let (tx, mut rx) = mpsc::channel::<Held>(limit.max(1));
        tokio::spawn(async move {
            while let Some(h) = rx.recv().await {
                hold(h.due).await;
                if let Err(e) = send(h.data).await {
                    if !transient(&e) {
                        tracing::debug!("relay send failed: {e}");
                    }
                }
            }
        });
        Self { tx, delay }
    }

    /// Queues `data` to leave after the delay; `false` when the queue was full (dropped).
    fn push(&self, data: Vec<u8>) -> bool {
        self.tx
            .try_send(Held {
                due: Instant::now() + self.delay,
                data,
            })
            .is_ok()
    }
}

/// Relays UDP datagrams arriving on `front` to `to` and the answers back to their sender,
/// holding each for `delay` in each direction (at most `limit` datagrams queued per direction
/// and source). Runs until `front` fails.
///
/// # Errors
/// A receive error of `front` other than a stale ICMP report.
pub async fn udp(
    front: UdpSocket,
    to: SocketAddr,
    delay: Duration,
    limit: usize,
) -> io::Result<()> {
    let front = Arc::new(front);
    let mut sessions: HashMap<SocketAddr, DelayLine> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match front.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) if transient(&e) => continue,
            Err(e) => return Err(e),
        };
        if let Entry::Vacant(slot) = sessions.entry(from) {
            let up = Arc::new(UdpSocket::bind(any_of(to)).await?);
            up.connect(to).await?;
            // Target → source.
            let back = {
                let front = front.clone();
                DelayLine::spawn(delay, limit, move |d| {
                    let front = front.clone();
                    async move { front.send_to(&d, from).await.map(drop) }
                })
            };
            let reader = up.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                loop {
                    match reader.recv(&mut buf).await {
                        Ok(n) => {
                            back.push(buf[..n].to_vec());
                        }
                        Err(e) if transient(&e) => continue,
                        Err(e) => {
                            tracing::warn!("relay upstream of {from} failed: {e}");
                            return;
                        }
                    }
                }
            });
            // Source → target.
            let fwd = DelayLine::spawn(delay, limit, move |d| {
                let up = up.clone();
                async move { up.send(&d).await.map(drop) }
            });
            slot.insert(fwd);
        }
        sessions[&from].push(buf[..n].to_vec());
    }
}

/// Copies `r` to `w`, each chunk leaving `delay` after it was read; shuts `w` down after `r`'s
/// end has been held as long.
async fn delayed_copy<R, W>(mut r: R, mut w: W, delay: Duration) -> io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Held>(TCP_QUEUE_CHUNKS);
    let reader = tokio::spawn(async move {
        loop {
            let mut buf = vec![0u8; TCP_CHUNK];
            let n = r.read(&mut buf).await?;
            buf.truncate(n);
            let due = Instant::now() + delay;
            // An empty chunk marks the end of the stream.
            if tx.send(Held { due, data: buf }).await.is_err() || n == 0 {
                return io::Result::Ok(());
            }
        }
    });
    while let Some(h) = rx.recv().await {
        hold(h.due).await;
        if h.data.is_empty() {
            break;
        }
        w.write_all(&h.data).await?;
    }
    w.shutdown().await?;
    reader.await.map_err(io::Error::other)?
}

/// Relays every TCP connection accepted on `listener` to a new connection to `to`, holding the
/// bytes of both directions for `delay` (split TCP: see the module caveats). Runs until
/// `listener` fails.
///
/// # Errors
/// An accept error of `listener`.
pub async fn tcp(listener: TcpListener, to: SocketAddr, delay: Duration) -> io::Result<()> {
    loop {
        let (a, from) = listener.accept().await?;
        tokio::spawn(async move {
            let b = match TcpStream::connect(to).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("relay: {from} → {to}: {e}");
                    return;
                }
            };
            let _ = a.set_nodelay(true);
            let _ = b.set_nodelay(true);
            let (ar, aw) = a.into_split();
            let (br, bw) = b.into_split();
            let (x, y) = tokio::join!(delayed_copy(ar, bw, delay), delayed_copy(br, aw, delay));
            if let Err(e) = x.and(y) {
                tracing::debug!("relay: {from} → {to} ended: {e}");
            }
        });
    }
}

/// Answers every UDP datagram on `sock` with the same bytes (the far end of [`ping`]).
///
/// # Errors
/// A receive error other than a stale ICMP report.
pub async fn echo(sock: UdpSocket) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let _ = sock.send_to(&buf[..n], from).await;
            }
            Err(e) if transient(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Round trips of `count` numbered UDP probes to an [`echo`] at `to`, one every `interval`;
/// a probe unanswered within `wait` counts as lost (`None`).
///
/// # Errors
/// Socket errors.
pub async fn ping(
    to: SocketAddr,
    count: u32,
    interval: Duration,
    wait: Duration,
) -> io::Result<Vec<Option<Duration>>> {
    let sock = UdpSocket::bind(any_of(to)).await?;
    sock.connect(to).await?;
    let mut out = Vec::with_capacity(count as usize);
    let mut buf = [0u8; 64];
    for seq in 0..count {
        let t = Instant::now();
        let mut probe = [0u8; 32];
        probe[..4].copy_from_slice(&seq.to_le_bytes());
        sock.send(&probe).await?;
        let deadline = t + wait;
        let rtt = loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break None,
                Ok(Ok(n)) if n >= 4 && buf[..4] == seq.to_le_bytes() => break Some(t.elapsed()),
                // A late answer to an earlier probe, or a stale ICMP report.
                Ok(Ok(_)) => {}
                Ok(Err(e)) if transient(&e) => {}
                Ok(Err(e)) => return Err(e),
            }
        };
        out.push(rtt);
        tokio::time::sleep_until(t + interval).await;
    }
    Ok(out)
}

/// Median, minimum and maximum of the answered probes (`None` when none was answered).
pub fn summary(rtts: &[Option<Duration>]) -> Option<(Duration, Duration, Duration)> {
    let mut v: Vec<Duration> = rtts.iter().flatten().copied().collect();
    v.sort();
    Some((v[v.len().checked_sub(1)? / 2], *v.first()?, *v.last()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn udp_relay_to_echo(delay: Duration) -> SocketAddr {
        let e = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = e.local_addr().unwrap();
        tokio::spawn(echo(e));
        let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = front.local_addr().unwrap();
        tokio::spawn(udp(front, target, delay, 1000));
        addr
    }

    /// A probe crosses the relay once each way: its round trip is at least twice the one-way
    /// delay (a lower bound, which no load can break), and nothing is lost.
    #[tokio::test]
    async fn udp_datagrams_are_held_in_both_directions() {
        let delay = Duration::from_millis(20);
        let addr = udp_relay_to_echo(delay).await;
        let rtts = ping(addr, 3, Duration::from_millis(1), Duration::from_secs(20))
            .await
            .unwrap();
        assert!(rtts.iter().all(Option::is_some), "{rtts:?}");
        let (med, min, _) = summary(&rtts).unwrap();
        assert!(min >= 2 * delay, "{rtts:?}");
        assert!(med >= min);
    }

    #[tokio::test]
    async fn udp_sessions_are_kept_apart_and_order_is_kept() {
        let addr = udp_relay_to_echo(Duration::from_millis(2)).await;
        let (a, b) = (
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        );
        a.connect(addr).await.unwrap();
        b.connect(addr).await.unwrap();
        for i in 0..20u8 {
            a.send(&[b'a', i]).await.unwrap();
            b.send(&[b'b', i]).await.unwrap();
        }
        let mut buf = [0u8; 8];
        for (s, tag) in [(&a, b'a'), (&b, b'b')] {
            for i in 0..20u8 {
                let n = tokio::time::timeout(Duration::from_secs(20), s.recv(&mut buf))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(&buf[..n], &[tag, i]);
            }
        }
    }

    #[tokio::test]
    async fn tcp_streams_pass_intact_both_ways_with_their_end() {
        let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let taddr = target.local_addr().unwrap();
        // The target echoes everything, then closes when the client half-closes.
        tokio::spawn(async move {
            let (mut s, _) = target.accept().await.unwrap();
            let mut v = Vec::new();
            s.read_to_end(&mut v).await.unwrap();
            s.write_all(&v).await.unwrap();
            s.shutdown().await.unwrap();
        });
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let faddr = front.local_addr().unwrap();
        let delay = Duration::from_millis(10);
        tokio::spawn(tcp(front, taddr, delay));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let t = Instant::now();
        let mut c = TcpStream::connect(faddr).await.unwrap();
        c.write_all(&data).await.unwrap();
        c.shutdown().await.unwrap();
        let mut back = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), c.read_to_end(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, data);
        assert!(t.elapsed() >= 2 * delay);
    }

    #[test]
    fn summary_of_probes() {
        let ms = |m| Some(Duration::from_millis(m));
        let s = summary(&[ms(5), None, ms(1), ms(9)]).unwrap();
        assert_eq!(
            s,
            (
                Duration::from_millis(5),
                Duration::from_millis(1),
                Duration::from_millis(9)
            )
        );
        assert!(summary(&[None]).is_none());
        assert!(summary(&[]).is_none());
    }
}
