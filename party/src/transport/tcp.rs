//! The TCP transports: TLS 1.3 over TCP (tokio-rustls, RFC 8446) with pinned certificates, and
//! plain TCP (insecure — no authentication, no encryption; for benchmarks only).
//!
//! One TCP connection per channel. The first connection of a link carries a fresh random link id;
//! additional channels are new connections that name the same id (and, with TLS, must present the
//! same pinned certificate), so a listener shared by several peers routes each connection to the
//! right link and a peer cannot attach channels to another peer's link.

use super::channel::PeerChannel;
use super::error::{Result, TransportError};
use super::identity::{Fingerprint, Identity, PeerCert};
use super::link::{self, LinkId, Router};
use super::tls;
use super::TransportOptions;
use rand::RngCore;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Bytes read from the socket at once under TLS. rustls asks its transport for 4 KiB per read,
/// so a 16 KiB record took four system calls; this buffer serves those reads from memory and
/// reads the socket in large pieces.
pub(crate) const TLS_READ_BUFFER: usize = 256 << 10;

/// What TLS runs over: the TCP socket behind a read buffer (writes pass straight through).
pub(crate) type TlsIo = tokio::io::BufReader<TcpStream>;

/// One connection's byte stream.
#[derive(Debug)]
pub(crate) enum ByteStream {
    Tls(Box<tokio_rustls::TlsStream<TlsIo>>),
    Tcp(TcpStream),
}

impl ByteStream {
    fn into_channel(self, index: u32) -> PeerChannel {
        match self {
            ByteStream::Tls(s) => PeerChannel::tls(*s, index),
            ByteStream::Tcp(s) => PeerChannel::tcp(s, index),
        }
    }
}

/// Low latency (no Nagle) and keep-alive probes so a vanished peer is noticed. The kernel's
/// buffer auto-tuning is left on: setting SO_SNDBUF/SO_RCVBUF on Linux would disable it.
fn tune(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    let ka = socket2::TcpKeepalive::new()
        .with_time(std::time::Duration::from_secs(10))
        .with_interval(std::time::Duration::from_secs(5));
    let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&ka);
}

async fn write_flush<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// Credentials of the connecting side (`None` for plain TCP).
#[derive(Debug)]
pub(crate) struct ClientAuth {
    pub(crate) me: Arc<Identity>,
    pub(crate) peer: PeerCert,
}

/// Opens one connection of link `id` as channel `index`.
async fn connect_stream(
    addr: SocketAddr,
    id: &LinkId,
    index: u32,
    auth: Option<&ClientAuth>,
) -> Result<(ByteStream, Option<PeerCert>)> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|source| TransportError::Io {
            op: "connect TCP",
            addr,
            source,
        })?;
    tune(&tcp);
    let (mut stream, peer) = match auth {
        None => (ByteStream::Tcp(tcp), None),
        Some(auth) => {
            let (cfg, pins) = tls::client_config(&auth.me, &auth.peer)?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
            let name = ServerName::try_from(tls::SERVER_NAME).expect("valid DNS name");
            let io = TlsIo::with_capacity(TLS_READ_BUFFER, tcp);
            let s = connector.connect(name, io).await.map_err(|e| {
                pins.explain(addr, || TransportError::Handshake {
                    addr,
                    reason: e.to_string(),
                })
            })?;
            let session = s.get_ref().1;
            tls::check_alpn(addr, session.alpn_protocol())?;
            let peer = tls::presented(addr, session.peer_certificates())?;
            (ByteStream::Tls(Box::new(s.into())), Some(peer))
        }
    };
    let header = link::tcp_header(id, index);
    // With TLS 1.3 the client is done before the listener checked its certificate; a refusal
    // shows up as an alert when reading the listener's answer.
    let status = match &mut stream {
        ByteStream::Tls(s) => exchange_header(&mut **s, &header).await,
        ByteStream::Tcp(s) => exchange_header(s, &header).await,
    }
    .map_err(|e| TransportError::PeerRejected {
        addr,
        reason: e.to_string(),
    })?;
    if status != link::STATUS_OK {
        return Err(TransportError::BadLinkHeader {
            addr,
            reason: format!(
                "listener does not know link {} (status {status})",
                hex::encode(id)
            ),
        });
    }
    Ok((stream, peer))
}

async fn exchange_header<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    header: &[u8],
) -> std::io::Result<u8> {
    write_flush(s, header).await?;
    link::read_answer(s).await
}

/// The connecting side of a TCP link.
#[derive(Debug)]
pub(crate) struct Connector {
    id: LinkId,
    auth: Option<ClientAuth>,
    first: Mutex<Option<ByteStream>>,
}

type Registry = Mutex<HashMap<LinkId, (Option<Fingerprint>, Weak<Router<ByteStream>>)>>;

/// The accepting side of a TCP link.
#[derive(Debug)]
pub(crate) struct Acceptor {
    id: LinkId,
    router: Arc<Router<ByteStream>>,
    accept_loop: Arc<AcceptLoop>,
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.accept_loop
            .registry
            .lock()
            .expect("registry lock")
            .remove(&self.id);
    }
}

/// A TLS-over-TCP or plain TCP link.
#[derive(Debug)]
pub(crate) struct StreamLink {
    pub(crate) remote: SocketAddr,
    pub(crate) peer: Option<PeerCert>,
    side: Side,
}

#[derive(Debug)]
enum Side {
    Connector(Connector),
    Acceptor(Acceptor),
}

impl StreamLink {
    /// Connects the first channel of a new link (no retries).
    pub(crate) async fn connect(addr: SocketAddr, auth: Option<ClientAuth>) -> Result<Self> {
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let (first, peer) = connect_stream(addr, &id, 0, auth.as_ref()).await?;
        Ok(Self {
            remote: addr,
            peer,
            side: Side::Connector(Connector {
                id,
                auth,
                first: Mutex::new(Some(first)),
            }),
        })
    }

    /// Channel `index`: the connecting side opens a connection, the listening side waits for it.
    pub(crate) async fn channel(&self, index: u32) -> Result<PeerChannel> {
        let stream = match &self.side {
            Side::Connector(c) => {
                let first = if index == 0 {
                    c.first.lock().expect("first lock").take()
                } else {
                    None
                };
                match first {
                    Some(s) => s,
                    None => {
                        let (s, peer) =
                            connect_stream(self.remote, &c.id, index, c.auth.as_ref()).await?;
                        if peer != self.peer {
                            return Err(TransportError::Handshake {
                                addr: self.remote,
                                reason: "the listener presented another certificate than on \
                                         the link's first connection"
                                    .into(),
                            });
                        }
                        s
                    }
                }
            }
            Side::Acceptor(a) => {
                a.router
                    .take(index)
                    .await
                    .map_err(|reason| TransportError::LinkClosed {
                        addr: self.remote,
                        reason,
                    })?
            }
        };
        Ok(stream.into_channel(index))
    }
}

/// The accept task of a listener; lives while the listener or any link accepted by it lives.
#[derive(Debug)]
struct AcceptLoop {
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    registry: Arc<Registry>,
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().expect("task lock").take() {
            t.abort();
        }
        for (_, (_, r)) in self.registry.lock().expect("registry lock").drain() {
            if let Some(r) = r.upgrade() {
                r.close("listener closed".into());
            }
        }
    }
}

/// Server credentials (`None` for plain TCP).
#[derive(Debug, Clone)]
pub(crate) struct ServerAuth {
    pub(crate) me: Arc<Identity>,
    pub(crate) peers: Vec<PeerCert>,
}

type NewLink = (
    LinkId,
    SocketAddr,
    Option<PeerCert>,
    Arc<Router<ByteStream>>,
);

/// A bound TCP listener for either TCP transport.
#[derive(Debug)]
pub(crate) struct StreamListener {
    local: SocketAddr,
    new_links: tokio::sync::Mutex<mpsc::Receiver<Result<NewLink>>>,
    accept_loop: Arc<AcceptLoop>,
}

impl StreamListener {
    pub(crate) async fn bind(
        addr: SocketAddr,
        auth: Option<ServerAuth>,
        opts: TransportOptions,
    ) -> Result<Self> {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| TransportError::Io {
                op: "bind TCP",
                addr,
                source,
            })?;
        let local = l.local_addr().map_err(|source| TransportError::Io {
            op: "local address",
            addr,
            source,
        })?;
        let registry: Arc<Registry> = Arc::default();
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(l, auth, opts, registry.clone(), tx));
        Ok(Self {
            local,
            new_links: tokio::sync::Mutex::new(rx),
            accept_loop: Arc::new(AcceptLoop {
                task: Mutex::new(Some(task)),
                registry,
            }),
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next new link (or the error of a failed attempt).
    pub(crate) async fn accept(&self) -> Result<StreamLink> {
        let next = self.new_links.lock().await.recv().await;
        let (id, remote, peer, router) = next.ok_or_else(|| TransportError::LinkClosed {
            addr: self.local,
            reason: "listener stopped".into(),
        })??;
        Ok(StreamLink {
            remote,
            peer,
            side: Side::Acceptor(Acceptor {
                id,
                router,
                accept_loop: self.accept_loop.clone(),
            }),
        })
    }
}

async fn accept_loop(
    l: TcpListener,
    auth: Option<ServerAuth>,
    opts: TransportOptions,
    registry: Arc<Registry>,
    tx: mpsc::Sender<Result<NewLink>>,
) {
    loop {
        match l.accept().await {
            Ok((tcp, addr)) => {
                let (auth, registry, tx) = (auth.clone(), registry.clone(), tx.clone());
                let limit = opts.handshake_timeout;
                tokio::spawn(async move {
                    let r = tokio::time::timeout(
                        limit,
                        admit(tcp, addr, auth.as_ref(), &registry, &tx),
                    )
                    .await
                    .unwrap_or(Err(TransportError::Timeout {
                        addr,
                        after: limit,
                        during: "TCP/TLS handshake",
                    }));
                    if let Err(e) = r {
                        tracing::warn!("refused a connection: {e}");
                        let _ = tx.try_send(Err(e));
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: report, back off, go on.
                let _ = tx.try_send(Err(TransportError::Io {
                    op: "accept TCP",
                    addr: l.local_addr().unwrap_or(([0, 0, 0, 0], 0).into()),
                    source: e,
                }));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Authenticates one incoming connection, reads its header and routes it.
async fn admit(
    tcp: TcpStream,
    addr: SocketAddr,
    auth: Option<&ServerAuth>,
    registry: &Registry,
    tx: &mpsc::Sender<Result<NewLink>>,
) -> Result<()> {
    tune(&tcp);
    let (mut stream, peer) = match auth {
        None => (ByteStream::Tcp(tcp), None),
        Some(auth) => {
            let (cfg, pins) = tls::server_config(&auth.me, &auth.peers)?;
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
            let io = TlsIo::with_capacity(TLS_READ_BUFFER, tcp);
            let s = acceptor.accept(io).await.map_err(|e| {
                pins.explain(addr, || TransportError::Handshake {
                    addr,
                    reason: e.to_string(),
                })
            })?;
            let session = s.get_ref().1;
            tls::check_alpn(addr, session.alpn_protocol())?;
            let peer = tls::presented(addr, session.peer_certificates())?;
            (ByteStream::Tls(Box::new(s.into())), Some(peer))
        }
    };
    let header = match &mut stream {
        ByteStream::Tls(s) => link::read_tcp_header(&mut **s).await,
        ByteStream::Tcp(s) => link::read_tcp_header(s).await,
    }
    .map_err(|reason| TransportError::BadLinkHeader { addr, reason })?;
    let (id, index) = header;
    let fp = peer.as_ref().map(PeerCert::fingerprint);
    let answer = |status| link::answer(status);
    let io = |source| TransportError::Io {
        op: "answer",
        addr,
        source,
    };
    // Decide under the lock, answer and deliver outside it.
    enum Route {
        New(Arc<Router<ByteStream>>),
        Existing(Arc<Router<ByteStream>>),
        Unknown,
    }
    let route = {
        let mut reg = registry.lock().expect("registry lock");
        match reg.get(&id) {
            Some((owner, r)) => match r.upgrade() {
                Some(r) if *owner == fp && index != 0 => Route::Existing(r),
                _ => Route::Unknown,
            },
            None if index == 0 => {
                let r = Arc::new(Router::new());
                reg.insert(id, (fp, Arc::downgrade(&r)));
                Route::New(r)
            }
            None => Route::Unknown,
        }
    };
    let status = match route {
        Route::Unknown => link::STATUS_UNKNOWN_LINK,
        _ => link::STATUS_OK,
    };
    match &mut stream {
        ByteStream::Tls(s) => write_flush(&mut **s, &answer(status)).await,
        ByteStream::Tcp(s) => write_flush(s, &answer(status)).await,
    }
    .map_err(io)?;
    match route {
        Route::New(r) => {
            r.deliver(0, stream);
            if tx.send(Ok((id, addr, peer, r))).await.is_err() {
                registry.lock().expect("registry lock").remove(&id);
            }
        }
        Route::Existing(r) => r.deliver(index, stream),
        Route::Unknown => {
            return Err(TransportError::BadLinkHeader {
                addr,
                reason: format!("channel {index} names unknown link {}", hex::encode(id)),
            })
        }
    }
    Ok(())
}
