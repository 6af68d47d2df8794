//! The party server (`party serve`): the peer link with two-phase commit and crash recovery,
//! the client endpoint (uploads, listings, deletes, jobs, model reveal), and the job runner that
//! trains SecureML linear/logistic regression (SecureML §IV) on the stored shares with the other
//! party, each party in its own process; optionally the encrypted-inference endpoint
//! ([`infer`]) for the models listed in `[inference]`.
//!
//! Security: the peer link accepts only the pinned peer certificate (mutual TLS); clients are
//! admitted by certificate fingerprint or by a token credential valid at this party only
//! ([`auth`]: nothing one party receives authenticates at the other); a client sees and uses only its own entries; the
//! parties exchange only protocol messages, never their shares of data or models (a model share
//! goes to its owner alone, who reconstructs). Semi-honest, non-colluding parties.
//!
//! Availability: an authenticated client may still try to exhaust a party. Client connections
//! are bounded in total (`max_connections`, counted from the TCP accept, before the handshake)
//! and per client (`max_connections_per_client`); an upload's `rows × cols` share is bounded by
//! `max_upload_bytes` in every form before any byte is received or a seed expanded
//! ([`limits::upload_size`]); refusals are `Limit` errors naming the limit ([`limits`]).

pub mod auth;
pub mod config;
pub mod infer;
pub mod job;
pub mod limits;
pub mod sessions;
pub mod timed;

use crate::proto::{
    decode, ClientHello, ClientRequest, EntryId, ErrorCode, JobStats, PeerReply, PeerRequest,
    PeerState, Reply, ShareForm, UploadHeader, UploadOptions, MAX_CONTROL_FRAME, UPLOAD_CHUNK,
};
use crate::store::{self, AppendedPart, EntryKind, Manifest, State, Store, StoreError};
use crate::transport::{self, Fingerprint, Identity, Link, PeerCert, TransportKind};
use anyhow::{anyhow, bail, Context, Result};
use config::Config;
use mpc::net::{Channel, ChannelExt, StreamChannel};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use timed::Timed;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, RwLock, Semaphore};

type ClientTls = tokio_rustls::server::TlsStream<TcpStream>;
type ClientChan = StreamChannel<ReadHalf<ClientTls>, WriteHalf<ClientTls>>;
type Ctl = Timed<transport::PeerChannel>;

/// The link to the other party and this side's request channel on it.
#[derive(Debug)]
pub struct PeerLink {
    link: Link,
    out: Mutex<Ctl>,
}

/// An upload whose header and options were accepted.
#[derive(Debug)]
struct Incoming {
    header: UploadHeader,
    /// The uploading client.
    client: String,
    /// Append rights granted with a new dataset.
    appenders: Vec<String>,
    /// The current version of the dataset the rows are appended to.
    base: Option<Manifest>,
}

/// A running party.
#[derive(Debug)]
pub struct Server {
    cfg: Config,
    store: Store,
    peer: RwLock<Option<Arc<PeerLink>>>,
    jobs: Arc<Semaphore>,
    /// Client connections (`max_connections`), taken before the TLS handshake.
    connections: Arc<Semaphore>,
    /// Connections per authenticated client (`max_connections_per_client`).
    client_connections: limits::PerClient,
    /// Connections being told that the server is busy (at most [`BUSY_REPLIES`]).
    busy: Arc<Semaphore>,
    timeout: Duration,
    kind: TransportKind,
    infer: Option<Arc<infer::InferenceService>>,
}

/// Environment variable naming a fault-injection point (tests only): `abort-after-decide` makes
/// P0 abort right after logging its commit decision; `abort-after-prepare` makes a party abort
/// after storing an upload as prepared, before replying.
pub const FAULT_ENV: &str = "DYAD_FAULT";

fn fault(point: &str) {
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == point) {
        tracing::error!("fault injection: aborting at {point}");
        std::process::abort();
    }
}

/// Connections over `max_connections` that are answered with a `Limit` error at once; beyond
/// these the connection is closed without a reply (so refusing costs a bounded effort too).
const BUSY_REPLIES: usize = 4;

fn err(code: ErrorCode, message: impl Into<String>) -> Reply {
    Reply::Error {
        code,
        message: message.into(),
    }
}

async fn reply(ch: &mut ClientChan, r: &Reply) -> Result<(), mpc::MpcError> {
    ch.send(r).await?;
    ch.flush().await
}

impl Server {
    /// Opens the store (cleaning up after a crash) and prepares the server.
    ///
    /// # Errors
    /// Store or configuration errors.
    pub fn new(cfg: Config) -> Result<Arc<Self>> {
        let store = Store::open(&cfg.data_dir)?;
        if cfg.role == 0 {
            // P0 restarted: prepared uploads without a decision are aborted (their clients'
            // connections are gone); P1 learns it when it asks for their status.
            for m in store.all()? {
                if m.state == State::Prepared {
                    tracing::info!("recovery: aborting undecided upload {} ({})", m.id, m.name);
                    store.remove(&m.id)?;
                }
            }
        }
        let kind: TransportKind = cfg.peer.transport.parse()?;
        anyhow::ensure!(kind.is_secure(), "the peer link must be authenticated");
        let timeout = Duration::from_secs(cfg.peer.timeout_s.max(1));
        let infer = match &cfg.inference {
            Some(ic) => Some(Arc::new(infer::InferenceService::load(ic, timeout)?)),
            None => None,
        };
        Ok(Arc::new(Self {
            infer,
            timeout,
            jobs: Arc::new(Semaphore::new(cfg.limits.max_concurrent_jobs.max(1))),
            connections: Arc::new(Semaphore::new(
                cfg.limits.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            client_connections: limits::PerClient::new(
                "connections",
                "max_connections_per_client",
                cfg.limits.max_connections_per_client,
            ),
            busy: Arc::new(Semaphore::new(BUSY_REPLIES)),
            store,
            peer: RwLock::new(None),
            kind,
            cfg,
        }))
    }

    fn identity(&self) -> Result<Identity> {
        Identity::load(&self.cfg.identity_dir)
            .with_context(|| format!("loading identity from {}", self.cfg.identity_dir.display()))
    }

    fn role(&self) -> mpc::Role {
        if self.cfg.role == 0 {
            mpc::Role::P0
        } else {
            mpc::Role::P1
        }
    }

    /// Runs the server until the process ends: the peer link (listening as P0, connecting as P1,
    /// reconnecting when it drops) and the client endpoint. Prints `party <role> listening for
    /// clients on ADDR` on stdout once the client endpoint is bound.
    ///
    /// # Errors
    /// Binding or identity errors.
    pub async fn run(self: Arc<Self>) -> Result<()> {
        let me = self.identity()?;
        let peer_cert = PeerCert::load(&self.cfg.peer.certificate)?;
        let tls = Arc::new(auth::server_config(&me)?);
        let clients = TcpListener::bind(self.cfg.clients.listen)
            .await
            .with_context(|| format!("binding {}", self.cfg.clients.listen))?;
        let caddr = clients.local_addr()?;
        let peer_task = if self.cfg.role == 0 {
            let addr = self.cfg.peer.listen.expect("checked by Config::load");
            let l = transport::listen(
                self.kind,
                addr,
                me,
                &[peer_cert],
                &transport::TransportOptions::default(),
            )
            .await?;
            println!(
                "party 0 listening for the peer on {} ({})",
                l.local_addr(),
                self.kind
            );
            tokio::spawn(self.clone().accept_peers(l))
        } else {
            drop(me);
            tokio::spawn(self.clone().connect_peer(peer_cert))
        };
        println!("party {} listening for clients on {caddr}", self.cfg.role);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let (tcp, addr) = match clients.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("client accept failed: {e}");
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (srv, acc) = (self.clone(), acceptor.clone());
            let max = self.cfg.limits.max_connections;
            let permit =
                match limits::try_total(&self.connections, "connections", "max_connections", max) {
                    Ok(p) => p,
                    Err((_, message)) => {
                        tracing::warn!("refused client {addr}: {message}");
                        srv.refuse_busy(acc, tcp, message);
                        continue;
                    }
                };
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(e) = srv.client_session(acc, tcp, addr).await {
                    tracing::info!("client {addr}: session ended: {e:#}");
                }
            });
            if peer_task.is_finished() {
                bail!("the peer task ended");
            }
        }
    }

    async fn install(self: &Arc<Self>, link: Link) -> Result<()> {
        let (c0, c1) = (link.next_channel().await?, link.next_channel().await?);
        let (out, inc) = if self.cfg.role == 0 {
            (c0, c1)
        } else {
            (c1, c0)
        };
        let pl = Arc::new(PeerLink {
            link,
            out: Mutex::new(Timed::new(out, self.timeout)),
        });
        *self.peer.write().await = Some(pl.clone());
        let srv = self.clone();
        tokio::spawn(async move {
            if let Err(e) = srv.serve_peer(pl, inc).await {
                tracing::warn!("peer link ended: {e:#}");
            }
        });
        Ok(())
    }

    async fn accept_peers(self: Arc<Self>, l: transport::Listener) {
        loop {
            match l.accept().await {
                Ok(link) => {
                    let from = link.remote_addr();
                    if let Err(e) = self.install(link).await {
                        tracing::warn!("peer link setup failed: {e:#}");
                        continue;
                    }
                    // Logged once the link is installed: jobs and requests may use it now.
                    tracing::info!("peer connected from {from}");
                    let srv = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = srv.finish_decided().await {
                            tracing::warn!("recovery: {e:#}");
                        }
                    });
                }
                Err(e) => tracing::warn!("refused peer connection: {e}"),
            }
        }
    }

    async fn connect_peer(self: Arc<Self>, peer: PeerCert) {
        let addr = self.cfg.peer.address.expect("checked by Config::load");
        let opts = transport::TransportOptions::default();
        loop {
            let me = match Identity::load(&self.cfg.identity_dir) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!("identity: {e}");
                    return;
                }
            };
            match transport::connect(self.kind, addr, me, &peer, &opts).await {
                Ok(link) => {
                    tracing::info!("connected to the peer at {addr}");
                    // Every (re)connection: P0 may have restarted (aborting its undecided
                    // uploads) or decided while the link was down.
                    let mut pending: Vec<EntryId> = self
                        .store
                        .all()
                        .map(|v| {
                            v.into_iter()
                                .filter(|m| m.state == State::Prepared)
                                .map(|m| m.id)
                                .collect()
                        })
                        .unwrap_or_default();
                    if let Err(e) = self.install(link).await {
                        tracing::warn!("peer link setup failed: {e:#}");
                    } else if let Err(e) = self.resolve_prepared(&mut pending).await {
                        tracing::warn!("recovery: {e:#}");
                    }
                    // Wait for the link to drop.
                    loop {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if self.peer.read().await.is_none() {
                            break;
                        }
                    }
                }
                Err(e) => tracing::warn!("cannot reach the peer at {addr}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// P1 after (re)connecting: asks P0 about the entries prepared here, commits those P0
    /// decided to commit, discards those P0 does not know (it restarted, or aborted them while
    /// the link was down).
    async fn resolve_prepared(&self, pending: &mut Vec<EntryId>) -> Result<()> {
        let mut left = Vec::new();
        for id in pending.drain(..) {
            match self.peer_request(&PeerRequest::Status { id }).await? {
                PeerReply::State(PeerState::Committed) => {
                    self.store.commit(&id)?;
                    tracing::info!("recovery: committed {id} (P0 had decided)");
                }
                PeerReply::State(PeerState::Absent) => {
                    self.store.remove(&id)?;
                    tracing::info!("recovery: discarded {id} (P0 does not have it)");
                }
                _ => left.push(id),
            }
        }
        *pending = left;
        Ok(())
    }

    /// P0 on a new link: completes commits decided before a crash or a lost link.
    async fn finish_decided(&self) -> Result<()> {
        for m in self.store.all()? {
            if m.state == State::Decided {
                match self.peer_request(&PeerRequest::Commit { id: m.id }).await? {
                    PeerReply::Ack => {
                        self.store.commit(&m.id)?;
                        tracing::info!("recovery: finished commit of {} ({})", m.id, m.name);
                    }
                    other => bail!("P1 answered {other:?} to a commit"),
                }
            }
        }
        Ok(())
    }

    async fn current_peer(&self) -> Result<Arc<PeerLink>> {
        self.peer
            .read()
            .await
            .clone()
            .ok_or_else(|| anyhow!("the peer party is not connected"))
    }

    async fn drop_peer(&self, pl: &Arc<PeerLink>) {
        let mut g = self.peer.write().await;
        if g.as_ref().is_some_and(|c| Arc::ptr_eq(c, pl)) {
            *g = None;
        }
    }

    /// Sends a request to the peer and waits for its reply (with the peer timeout).
    async fn peer_request(&self, req: &PeerRequest) -> Result<PeerReply> {
        let pl = self.current_peer().await?;
        let mut out = pl.out.lock().await;
        let r = async {
            out.send(req).await?;
            out.flush().await?;
            out.recv::<PeerReply>(MAX_CONTROL_FRAME).await
        }
        .await;
        drop(out);
        if r.is_err() {
            self.drop_peer(&pl).await;
        }
        Ok(r?)
    }

    /// Serves the peer's requests on `inc` until the link drops.
    async fn serve_peer(
        self: Arc<Self>,
        pl: Arc<PeerLink>,
        mut inc: transport::PeerChannel,
    ) -> Result<()> {
        let r: Result<()> = async {
            loop {
                let frame = inc.recv_frame(MAX_CONTROL_FRAME).await?;
                let req: PeerRequest = decode(&frame, MAX_CONTROL_FRAME)?;
                let rep = match req {
                    PeerRequest::Job {
                        job,
                        owner,
                        dataset,
                        spec,
                    } => {
                        // Both sides open the job's two channels right after this request.
                        let off = pl.link.next_channel().await?;
                        let on = pl.link.next_channel().await?;
                        match self.check_job_dataset(&owner, &dataset) {
                            Ok(m) => {
                                let srv = self.clone();
                                tokio::spawn(async move {
                                    let r = srv.run_job_p1(job, owner, m, spec, off, on).await;
                                    if let Err(e) = r {
                                        tracing::warn!("job {job} failed: {e:#}");
                                    }
                                });
                                PeerReply::Ack
                            }
                            Err(e) => {
                                tracing::warn!("refused job {job} of {owner}: {e:#}");
                                PeerReply::Refused(format!("{e:#}"))
                            }
                        }
                    }
                    other => self.handle_peer(other).unwrap_or_else(|e| {
                        tracing::warn!("peer request failed: {e:#}");
                        PeerReply::Refused(format!("{e:#}"))
                    }),
                };
                inc.send(&rep).await?;
                inc.flush().await?;
            }
        }
        .await;
        self.drop_peer(&pl).await;
        r
    }

    fn check_job_dataset(&self, owner: &str, id: &EntryId) -> Result<Manifest> {
        let m = self.store.get(id)?;
        anyhow::ensure!(
            m.kind == EntryKind::Dataset && m.owner == owner && m.state == State::Committed,
            "dataset {id} is not a committed dataset of {owner}"
        );
        Ok(m)
    }

    /// Whether `base` is the current committed version of `m`'s dataset (an appended version
    /// may be committed only on top of the version it extends).
    fn is_current_version(&self, m: &Manifest, base: EntryId) -> bool {
        self.store
            .find_committed(EntryKind::Dataset, &m.owner, &m.name)
            .ok()
            .flatten()
            .is_some_and(|c| c.id == base)
    }

    fn handle_peer(&self, req: PeerRequest) -> Result<PeerReply> {
        Ok(match req {
            PeerRequest::Vote {
                id,
                owner,
                name,
                rows,
                cols,
            } => {
                let ok = self.store.get(&id).is_ok_and(|m| {
                    m.state == State::Prepared
                        && m.owner == owner
                        && m.name == name
                        && m.rows == rows
                        && m.cols == cols
                        && m.supersedes
                            .is_none_or(|base| self.is_current_version(&m, base))
                });
                PeerReply::Vote(ok)
            }
            PeerRequest::Commit { id } => {
                self.store.commit(&id)?;
                tracing::info!("committed {id}");
                PeerReply::Ack
            }
            PeerRequest::Abort { id } => {
                if let Ok(m) = self.store.get(&id) {
                    if m.state != State::Committed {
                        self.store.remove(&id)?;
                    }
                }
                PeerReply::Ack
            }
            PeerRequest::Status { id } => PeerReply::State(match self.store.get(&id) {
                Ok(m) if m.state == State::Prepared => PeerState::Prepared,
                Ok(_) => PeerState::Committed,
                Err(_) => PeerState::Absent,
            }),
            PeerRequest::Delete { id, owner } => {
                if let Ok(m) = self.store.get(&id) {
                    anyhow::ensure!(m.owner == owner, "entry {id} is not {owner}'s");
                    self.store.remove(&id)?;
                }
                PeerReply::Ack
            }
            PeerRequest::Job { .. } => unreachable!("handled by serve_peer"),
        })
    }

    /// Answers a connection over `max_connections` with a `Limit` error after its handshake
    /// and hello (bounded by the peer timeout), or closes it when [`BUSY_REPLIES`] such answers
    /// are under way already.
    fn refuse_busy(
        self: Arc<Self>,
        acc: tokio_rustls::TlsAcceptor,
        tcp: TcpStream,
        message: String,
    ) {
        let Ok(permit) = self.busy.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let answer = async {
                let (r, w) = tokio::io::split(acc.accept(tcp).await?);
                let mut ch: ClientChan = StreamChannel::new(r, w);
                ch.recv_frame(MAX_CONTROL_FRAME).await?;
                reply(&mut ch, &err(ErrorCode::Limit, message)).await?;
                anyhow::Ok(())
            };
            let _ = tokio::time::timeout(self.timeout, answer).await;
        });
    }

    async fn client_session(
        self: Arc<Self>,
        acc: tokio_rustls::TlsAcceptor,
        tcp: TcpStream,
        addr: SocketAddr,
    ) -> Result<()> {
        let tls = match tokio::time::timeout(self.timeout, acc.accept(tcp)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::warn!("refused client {addr}: TLS handshake failed: {e}");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!("refused client {addr}: TLS handshake timed out");
                return Ok(());
            }
        };
        let fp = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            Some(c) => Fingerprint::of(c),
            None => {
                tracing::warn!("refused client {addr}: no certificate");
                return Ok(());
            }
        };
        let (r, w) = tokio::io::split(tls);
        let mut ch: ClientChan = StreamChannel::new(r, w);
        let hello = match tokio::time::timeout(self.timeout, ch.recv_frame(MAX_CONTROL_FRAME)).await
        {
            Ok(Ok(f)) => decode::<ClientHello>(&zeroize::Zeroizing::new(f), MAX_CONTROL_FRAME),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                tracing::warn!("refused client {addr}: no hello");
                return Ok(());
            }
        };
        let hello = match hello {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("refused client {addr}: malformed hello: {e}");
                return Ok(());
            }
        };
        let Some(client) = auth::admit(&self.cfg.clients.allow, &fp, hello.credential.as_ref())
        else {
            tracing::warn!(
                "refused client {addr}: certificate {fp} is not registered and {}",
                if hello.credential.is_some() {
                    "the token credential is unknown"
                } else {
                    "no token credential was given"
                }
            );
            let _ = reply(&mut ch, &err(ErrorCode::Unauthorized, "unknown client")).await;
            return Ok(());
        };
        let owner = client.name.clone();
        let _connection = match self.client_connections.try_acquire(&owner) {
            Ok(g) => g,
            Err((code, message)) => {
                tracing::warn!("refused client {owner} at {addr}: {message}");
                let _ = reply(&mut ch, &err(code, message)).await;
                return Ok(());
            }
        };
        tracing::info!("client {owner} connected from {addr}");
        reply(
            &mut ch,
            &Reply::Welcome {
                role: self.cfg.role,
            },
        )
        .await?;
        let mut prepared = Vec::new();
        let r = self.client_loop(&mut ch, &owner, addr, &mut prepared).await;
        // An upload lives as prepared only while its client's session at P0 does: uploads the
        // client did not commit are aborted on both parties.
        if self.cfg.role == 0 {
            for id in prepared {
                if self
                    .store
                    .get(&id)
                    .is_ok_and(|m| m.state == State::Prepared)
                {
                    tracing::info!(
                        "aborting upload {id} of {owner}: the session ended uncommitted"
                    );
                    self.store.remove(&id)?;
                    let _ = self.peer_request(&PeerRequest::Abort { id }).await;
                }
            }
        }
        r
    }

    async fn client_loop(
        &self,
        ch: &mut ClientChan,
        owner: &str,
        addr: SocketAddr,
        prepared: &mut Vec<EntryId>,
    ) -> Result<()> {
        let owner = owner.to_string();
        let ch = &mut *ch;
        loop {
            let frame = match ch.recv_frame(MAX_CONTROL_FRAME).await {
                Ok(f) => f,
                Err(mpc::MpcError::ChannelClosed { .. }) => return Ok(()),
                Err(e) => {
                    tracing::warn!("client {owner} at {addr}: {e}; closing the connection");
                    return Ok(());
                }
            };
            let req: ClientRequest = match decode(&frame, MAX_CONTROL_FRAME) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("client {owner} at {addr}: malformed request: {e}");
                    reply(ch, &err(ErrorCode::BadRequest, e.to_string())).await?;
                    continue;
                }
            };
            match req {
                ClientRequest::UploadWith(h, opts) => {
                    prepared.push(h.id);
                    let inc = match self.check_upload(&owner, h, &opts) {
                        Ok(inc) => inc,
                        Err((code, message)) => {
                            // Refused before any share byte: the stream stays in step.
                            tracing::warn!("client {owner}: upload refused: {message}");
                            reply(ch, &err(code, message)).await?;
                            continue;
                        }
                    };
                    reply(ch, &Reply::SendShare { id: inc.header.id }).await?;
                    let r = self.receive_share(ch, inc).await;
                    let fatal = r.is_err();
                    let rep = r.unwrap_or_else(|e| {
                        tracing::warn!("client {owner}: upload failed: {e:#}");
                        err(ErrorCode::BadRequest, format!("{e:#}"))
                    });
                    reply(ch, &rep).await?;
                    if fatal {
                        return Ok(());
                    }
                }
                ClientRequest::Upload(h) => {
                    prepared.push(h.id);
                    let inc = match self.check_upload(&owner, h, &UploadOptions::default()) {
                        Ok(inc) => inc,
                        Err((code, message)) => {
                            // The share bytes follow the header unasked: the stream cannot be
                            // resynchronized, the connection ends after the refusal.
                            tracing::warn!("client {owner}: upload refused: {message}");
                            reply(ch, &err(code, message)).await?;
                            return Ok(());
                        }
                    };
                    let r = self.receive_share(ch, inc).await;
                    let fatal = r.is_err();
                    let rep = r.unwrap_or_else(|e| {
                        tracing::warn!("client {owner}: upload failed: {e:#}");
                        err(ErrorCode::BadRequest, format!("{e:#}"))
                    });
                    reply(ch, &rep).await?;
                    if fatal {
                        // The rest of the stream cannot be resynchronized.
                        return Ok(());
                    }
                }
                ClientRequest::Submit(spec) => {
                    if let Err(e) = self.submit(ch, &owner, spec).await {
                        tracing::warn!("client {owner}: job failed: {e:#}");
                        reply(ch, &err(ErrorCode::Peer, format!("{e:#}"))).await?;
                    }
                }
                ClientRequest::Inference(r) => match &self.infer {
                    Some(svc) => svc.handle(ch, &owner, r).await?,
                    None => {
                        tracing::warn!(
                            "refused {owner}: inference request, no [inference] section"
                        );
                        reply(ch, &err(ErrorCode::NotFound, "this party serves no models")).await?;
                    }
                },
                ClientRequest::Reveal { job } => match self.store.get(&job) {
                    Ok(m)
                        if m.owner == owner
                            && m.kind == EntryKind::Model
                            && m.state == State::Committed =>
                    {
                        let s = self.store.load_share(&m)?;
                        reply(
                            ch,
                            &Reply::ModelShare {
                                rows: m.rows,
                                cols: m.cols,
                                frac_bits: m.frac_bits,
                            },
                        )
                        .await?;
                        ch.send_ring(&s.view()).await?;
                        ch.flush().await?;
                        tracing::info!("revealed model share {job} to its owner {owner}");
                    }
                    Ok(_) => {
                        tracing::warn!("refused {owner}: model {job} is not theirs");
                        reply(ch, &err(ErrorCode::Forbidden, "not your model")).await?;
                    }
                    Err(_) => reply(ch, &err(ErrorCode::NotFound, "no such model")).await?,
                },
                other => {
                    let rep = self.simple(&owner, other).await.unwrap_or_else(|e| {
                        tracing::warn!("client {owner}: {e:#}");
                        err(ErrorCode::BadRequest, format!("{e:#}"))
                    });
                    reply(ch, &rep).await?;
                }
            }
        }
    }

    /// Checks an upload's header and options before any share byte is received: limits,
    /// shape, and for an append the grant and the match with the dataset it extends. A refusal
    /// names what is wrong; a dataset that does not exist and one the client may not append to
    /// are refused alike (the refusal does not reveal other owners' dataset names).
    fn check_upload(
        &self,
        client: &str,
        h: UploadHeader,
        o: &UploadOptions,
    ) -> std::result::Result<Incoming, (ErrorCode, String)> {
        let bad = |m: String| (ErrorCode::BadRequest, m);
        let limit = self.cfg.limits.max_upload_bytes;
        let stored = limits::upload_size(h.rows, h.cols, limit)?;
        if h.len > limit {
            return Err((
                ErrorCode::Limit,
                format!(
                    "upload of {} bytes exceeds max_upload_bytes = {limit}",
                    h.len
                ),
            ));
        }
        let want = match h.form {
            ShareForm::Seed => 32u64,
            ShareForm::Matrix => stored,
        };
        if h.len != want {
            return Err(bad(format!("declared {} bytes, shape needs {want}", h.len)));
        }
        if h.name.is_empty() || h.name.len() > 128 || h.rows == 0 || h.cols < 2 {
            return Err(bad("bad name or shape".into()));
        }
        if h.label_column >= h.cols {
            return Err(bad("label column out of range".into()));
        }
        mpc::FracBits::new(h.frac_bits).map_err(|e| bad(e.to_string()))?;
        if o.appenders.len() > 64 || o.appenders.iter().any(|a| a.is_empty() || a.len() > 128) {
            return Err(bad("at most 64 appenders, names of 1 to 128 bytes".into()));
        }
        let Some(to) = &o.append_to else {
            return Ok(Incoming {
                header: h,
                client: client.into(),
                appenders: o.appenders.clone(),
                base: None,
            });
        };
        if !o.appenders.is_empty() {
            return Err(bad(
                "append rights are granted by the dataset's owner when uploading it".into(),
            ));
        }
        let refused = || {
            (
                ErrorCode::Forbidden,
                format!(
                    "no dataset {}/{} that {client} may append to",
                    to.owner, to.name
                ),
            )
        };
        let base = self
            .store
            .find_committed(EntryKind::Dataset, &to.owner, &to.name)
            .map_err(|e| (ErrorCode::Internal, e.to_string()))?
            .ok_or_else(refused)?;
        if base.owner != client && !base.appenders.iter().any(|a| a == client) {
            return Err(refused());
        }
        if (h.cols, h.label_column, h.frac_bits) != (base.cols, base.label_column, base.frac_bits) {
            return Err(bad(format!(
                "the rows to append have {} columns, label column {} and {} fractional bits; \
                 dataset {}/{} has {} columns, label column {} and {} fractional bits: they must match",
                h.cols,
                h.label_column,
                h.frac_bits,
                base.owner,
                base.name,
                base.cols,
                base.label_column,
                base.frac_bits
            )));
        }
        Ok(Incoming {
            header: h,
            client: client.into(),
            appenders: Vec::new(),
            base: Some(base),
        })
    }

    /// Receives the share bytes of an accepted upload into the store as prepared. For an
    /// append, the new version's share is this party's share of the current version followed
    /// by the received rows (a seed is expanded): appending is local to each party.
    async fn receive_share(&self, ch: &mut ClientChan, inc: Incoming) -> Result<Reply> {
        use sha2::Digest;
        let Incoming {
            header: h,
            client,
            appenders,
            base,
        } = inc;
        tracing::info!(
            "receiving upload {} ({}) of {client}: {} bytes",
            h.id,
            h.name,
            h.len
        );
        let mut w = match self.store.begin(&h.id) {
            Ok(w) => w,
            Err(e) => return Ok(err(ErrorCode::BadRequest, e.to_string())),
        };
        if let Some(b) = &base {
            let s = self.store.load_share(b)?;
            tokio::task::block_in_place(|| w.write(&store::matrix_bytes(&s)))?;
        }
        let mut part = sha2::Sha256::new();
        let mut seed = zeroize::Zeroizing::new(Vec::new());
        let mut got = 0u64;
        while got < h.len {
            let left = (h.len - got).min(UPLOAD_CHUNK as u64) as usize;
            let f = tokio::time::timeout(self.timeout, ch.recv_frame(left))
                .await
                .map_err(|_| anyhow!("upload stalled"))??;
            part.update(&f);
            got += f.len() as u64;
            if base.is_some() && h.form == ShareForm::Seed {
                seed.extend_from_slice(&f);
            } else {
                tokio::task::block_in_place(|| w.write(&f))?;
            }
        }
        if <[u8; 32]>::from(part.finalize()) != h.digest {
            return Ok(err(
                ErrorCode::BadRequest,
                format!(
                    "share of upload {}: SHA-256 digest does not match the header",
                    h.id
                ),
            ));
        }
        if base.is_some() && h.form == ShareForm::Seed {
            let mut s = [0u8; 32];
            s.copy_from_slice(&seed);
            let share = mpc::share::Seed(s).expand(h.rows as usize, h.cols as usize);
            zeroize::Zeroize::zeroize(&mut s);
            tokio::task::block_in_place(|| w.write(&store::matrix_bytes(&share)))?;
        }
        let m = match &base {
            None => Manifest {
                id: h.id,
                kind: EntryKind::Dataset,
                name: h.name,
                owner: client.clone(),
                rows: h.rows,
                cols: h.cols,
                label_column: h.label_column,
                frac_bits: h.frac_bits,
                form: h.form,
                sha256: w.digest_hex(),
                created: store::now(),
                state: State::Prepared,
                appenders,
                supersedes: None,
                appended: Vec::new(),
            },
            Some(b) => {
                let mut appended = b.appended.clone();
                appended.push(AppendedPart {
                    client: client.clone(),
                    rows: h.rows,
                });
                Manifest {
                    id: h.id,
                    rows: b.rows + h.rows,
                    form: ShareForm::Matrix,
                    sha256: w.digest_hex(),
                    created: store::now(),
                    state: State::Prepared,
                    supersedes: Some(b.id),
                    appended,
                    ..b.clone()
                }
            }
        };
        let r = tokio::task::block_in_place(|| self.store.finish(w, &m));
        if let Err(e) = r {
            return Ok(err(ErrorCode::BadRequest, e.to_string()));
        }
        match &base {
            None => tracing::info!("prepared {} ({}) of {client}", m.id, m.name),
            Some(b) => tracing::info!(
                "prepared {} ({}/{}: {} rows of {client} appended to version {})",
                m.id,
                m.owner,
                m.name,
                h.rows,
                b.id
            ),
        }
        fault("abort-after-prepare");
        Ok(Reply::Prepared { id: m.id })
    }

    async fn simple(&self, owner: &str, req: ClientRequest) -> Result<Reply> {
        Ok(match req {
            ClientRequest::List => {
                Reply::Entries(self.store.list(owner)?.iter().map(Manifest::info).collect())
            }
            ClientRequest::Commit { id } => {
                anyhow::ensure!(self.cfg.role == 0, "commit at P0");
                self.commit(owner, id).await?
            }
            ClientRequest::Delete { name } => {
                anyhow::ensure!(self.cfg.role == 0, "delete at P0");
                let Some(m) = self
                    .store
                    .find_committed(EntryKind::Dataset, owner, &name)?
                else {
                    return Ok(err(
                        ErrorCode::NotFound,
                        format!("no dataset {name:?} of yours"),
                    ));
                };
                match self
                    .peer_request(&PeerRequest::Delete {
                        id: m.id,
                        owner: owner.into(),
                    })
                    .await?
                {
                    PeerReply::Ack => self.store.remove(&m.id)?,
                    other => bail!("P1 answered {other:?}"),
                }
                tracing::info!("deleted {} ({name}) of {owner}", m.id);
                Reply::Done
            }
            _ => bail!("unexpected request"),
        })
    }

    /// Two-phase commit of an upload (or of an appended version), coordinated by P0. Only
    /// the client that uploaded the entry's newest rows may commit it.
    async fn commit(&self, client: &str, id: EntryId) -> Result<Reply> {
        let m = match self.store.get(&id) {
            Ok(m) if m.uploader() == client && m.kind == EntryKind::Dataset => m,
            _ => return Ok(err(ErrorCode::NotFound, format!("no upload {id} of yours"))),
        };
        let owner = m.owner.as_str();
        match m.state {
            State::Committed => return Ok(Reply::Committed { id }),
            State::Decided => {}
            State::Prepared => {
                if m.supersedes.is_none()
                    && self
                        .store
                        .find_committed(EntryKind::Dataset, owner, &m.name)?
                        .is_some()
                {
                    self.store.remove(&id)?;
                    let _ = self.peer_request(&PeerRequest::Abort { id }).await;
                    return Ok(err(
                        ErrorCode::BadRequest,
                        format!("you have a dataset named {:?} already", m.name),
                    ));
                }
                let vote = self
                    .peer_request(&PeerRequest::Vote {
                        id,
                        owner: owner.into(),
                        name: m.name.clone(),
                        rows: m.rows,
                        cols: m.cols,
                    })
                    .await;
                if !matches!(vote, Ok(PeerReply::Vote(true))) {
                    self.store.remove(&id)?;
                    let _ = self.peer_request(&PeerRequest::Abort { id }).await;
                    tracing::warn!("aborted upload {id}: P1 voted {vote:?}");
                    return Ok(err(ErrorCode::Peer, "P1 does not hold the upload; aborted"));
                }
                match self.store.decide(&id) {
                    Ok(_) => {}
                    Err(StoreError::Conflict { reason, .. }) => {
                        self.store.remove(&id)?;
                        let _ = self.peer_request(&PeerRequest::Abort { id }).await;
                        tracing::warn!("aborted upload {id}: {reason}");
                        return Ok(err(ErrorCode::BadRequest, reason));
                    }
                    Err(e) => return Err(e.into()),
                }
                fault("abort-after-decide");
            }
        }
        match self.peer_request(&PeerRequest::Commit { id }).await {
            Ok(PeerReply::Ack) => {
                self.store.commit(&id)?;
                tracing::info!("committed {id} ({}) of {owner}", m.name);
                Ok(Reply::Committed { id })
            }
            other => Ok(err(
                ErrorCode::Peer,
                format!("commit decided; it completes when P1 is reachable again ({other:?})"),
            )),
        }
    }

    async fn submit(
        &self,
        ch: &mut ClientChan,
        owner: &str,
        spec: crate::proto::JobSpec,
    ) -> Result<()> {
        if self.cfg.role != 0 {
            reply(ch, &err(ErrorCode::BadRequest, "submit jobs to P0")).await?;
            return Ok(());
        }
        let Some(m) = self
            .store
            .find_committed(EntryKind::Dataset, owner, &spec.dataset)?
        else {
            tracing::warn!(
                "refused job of {owner}: no dataset {:?} of theirs",
                spec.dataset
            );
            reply(
                ch,
                &err(
                    ErrorCode::NotFound,
                    format!("no dataset {:?} of yours", spec.dataset),
                ),
            )
            .await?;
            return Ok(());
        };
        if let Err(e) = job::validate(&spec, m.rows as usize) {
            reply(ch, &err(ErrorCode::BadRequest, format!("{e:#}"))).await?;
            return Ok(());
        }
        let Ok(permit) = self.jobs.clone().try_acquire_owned() else {
            reply(ch, &err(ErrorCode::Limit, "too many jobs running")).await?;
            return Ok(());
        };
        let job = EntryId::random();
        let pl = self.current_peer().await?;
        let (off, on) = {
            let mut out = pl.out.lock().await;
            out.send(&PeerRequest::Job {
                job,
                owner: owner.into(),
                dataset: m.id,
                spec: spec.clone(),
            })
            .await?;
            out.flush().await?;
            let t = self.timeout;
            let open = async {
                let off = pl.link.next_channel().await?;
                let on = pl.link.next_channel().await?;
                anyhow::Ok((off, on))
            };
            let (off, on) = match tokio::time::timeout(t, open).await {
                Ok(r) => r?,
                Err(_) => {
                    self.drop_peer(&pl).await;
                    bail!("P1 did not open the job's channels within the peer timeout")
                }
            };
            match out.recv::<PeerReply>(MAX_CONTROL_FRAME).await? {
                PeerReply::Ack => {}
                other => {
                    reply(
                        ch,
                        &err(ErrorCode::Peer, format!("P1 refused the job: {other:?}")),
                    )
                    .await?;
                    return Ok(());
                }
            }
            (off, on)
        };
        tracing::info!("job {job} of {owner} started on {}", m.name);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let share = self.store.load_share(&m)?;
        let ctx = job::JobContext {
            role: self.role(),
            timeout: self.timeout,
            dealer: self.dealer_link_params(),
        };
        let task = tokio::spawn(job::run(ctx, spec, m.clone(), share, off, on, tx));
        while let Some((step, steps)) = rx.recv().await {
            reply(ch, &Reply::Progress { job, step, steps }).await?;
        }
        let mut out = task
            .await?
            .with_context(|| format!("job {job} failed (peer timeout {:?})", self.timeout))?;
        self.store_model(job, owner, &m, &out.model)?;
        let p1 = self.commit_model(job, &mut out.channel).await?;
        drop(permit);
        let p0 = out.stats;
        tracing::info!(
            "job {job} of {owner} done: offline {:.3} s, online {:.3} s, online bytes sent \
             P0 {} P1 {}, rounds P0 {} P1 {}",
            p0.offline_s,
            p0.online_s,
            p0.online.bytes_sent,
            p1.online.bytes_sent,
            p0.online.rounds,
            p1.online.rounds
        );
        reply(
            ch,
            &Reply::JobDone {
                job,
                stats: [p0, p1],
            },
        )
        .await?;
        Ok(())
    }

    /// Commits a model both parties stored as prepared (two-phase commit: P1's `JobStored` is
    /// its vote); if P1 does not vote, P0's half is discarded and P1's is discarded when it
    /// next asks about its prepared entries. Returns P1's measurements of the job.
    async fn commit_model(
        &self,
        job: EntryId,
        on: &mut timed::Timed<transport::PeerChannel>,
    ) -> Result<JobStats> {
        let p1 = match on.recv::<PeerReply>(MAX_CONTROL_FRAME).await {
            Ok(PeerReply::JobStored(stats)) => stats,
            other => {
                self.store.remove(&job)?;
                bail!("job {job}: P1 did not store its model share ({other:?}); nothing was kept");
            }
        };
        self.store.decide(&job)?;
        match self.peer_request(&PeerRequest::Commit { id: job }).await {
            Ok(PeerReply::Ack) => {
                self.store.commit(&job)?;
                Ok(p1)
            }
            other => bail!(
                "job {job}: model decided; it becomes visible when P1 is reachable again ({other:?})"
            ),
        }
    }

    fn dealer_link_params(&self) -> Option<job::DealerParams> {
        let d = self.cfg.dealer.as_ref()?;
        Some(job::DealerParams {
            address: d.address,
            certificate: d.certificate.clone(),
            identity_dir: self.cfg.identity_dir.clone(),
            kind: self.kind,
        })
    }

    fn store_model(
        &self,
        job: EntryId,
        owner: &str,
        data: &Manifest,
        w: &mpc::Share,
    ) -> Result<()> {
        let bytes = store::matrix_bytes(w);
        let (rows, cols) = w.dim();
        let m = Manifest {
            id: job,
            kind: EntryKind::Model,
            name: format!("model-{job}"),
            owner: owner.into(),
            rows: rows as u64,
            cols: cols as u64,
            label_column: 0,
            frac_bits: data.frac_bits,
            form: ShareForm::Matrix,
            sha256: hex::encode(store::sha256(&bytes)),
            created: store::now(),
            // Committed by two-phase commit once both parties stored their halves.
            state: State::Prepared,
            appenders: Vec::new(),
            supersedes: None,
            appended: Vec::new(),
        };
        self.store.put(&m, &bytes)?;
        Ok(())
    }

    async fn run_job_p1(
        self: Arc<Self>,
        job: EntryId,
        owner: String,
        m: Manifest,
        spec: crate::proto::JobSpec,
        off: transport::PeerChannel,
        on: transport::PeerChannel,
    ) -> Result<()> {
        tracing::info!("job {job} of {owner} started on {}", m.name);
        let share = self.store.load_share(&m)?;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let ctx = job::JobContext {
            role: self.role(),
            timeout: self.timeout,
            dealer: self.dealer_link_params(),
        };
        let mut out = job::run(ctx, spec, m.clone(), share, off, on, tx).await?;
        self.store_model(job, &owner, &m, &out.model)?;
        out.channel.send(&PeerReply::JobStored(out.stats)).await?;
        out.channel.flush().await?;
        tracing::info!("job {job} of {owner} done");
        Ok(())
    }
}
