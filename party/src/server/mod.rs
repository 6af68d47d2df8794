//! The party server (`party serve`): the peer link with two-phase commit and crash recovery,
//! the client endpoint (uploads, listings, deletes, jobs, model reveal), and the job runner that
//! trains SecureML linear/logistic regression and MLPs (SecureML §IV) and ST-GCNs on the stored
//! shares with the other party, each party in its own process; optionally the
//! encrypted-inference endpoint ([`infer`]) for the models listed in `[inference]`.
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
//!
//! Layout: this module wires the server together and runs it ([`Server::run`]); the peer link
//! is in `peer`, two-phase commit and recovery in `commit`, the client endpoint and request
//! dispatch in `client`, uploads in `upload`, model storage and reveal in `models`, deploying a
//! trained ST-GCN to the inference service in `deploy`, the
//! server side of training jobs in `training` (the training itself in [`job`], P1's buffers of
//! per-epoch statistics for the owner in [`feeds`]), encrypted
//! inference in [`infer`]. Every failure is a [`ServerError`], whose
//! [`code`](ServerError::code) is the wire [`ErrorCode`] a client is told.

pub mod auth;
mod client;
mod commit;
pub mod config;
mod deploy;
pub mod error;
pub mod feeds;
pub mod infer;
pub mod job;
mod join;
pub mod limits;
mod models;
mod outputs;
mod peer;
pub mod sessions;
pub mod timed;
mod training;
mod upload;

pub use error::{Result, ServerError};

use crate::proto::{ErrorCode, Reply};
use crate::store::{State, Store};
use crate::transport::{self, Identity, PeerCert, TransportKind};
use config::Config;
use mpc::net::{Channel, ChannelExt, StreamChannel};
use peer::PeerLink;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{RwLock, Semaphore};

type ClientTls = tokio_rustls::server::TlsStream<TcpStream>;
type ClientChan = StreamChannel<ReadHalf<ClientTls>, WriteHalf<ClientTls>>;

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
    /// The owner's deploy authorizations at this party.
    grants: deploy::Grants,
    /// P1: per-epoch statistics shares of running jobs, for their owners' watches.
    feeds: Arc<feeds::Feeds>,
    /// The owners' consents to joins of their keyed datasets (vertical partitioning).
    joins: join::consent::Consents,
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
        if !kind.is_secure() {
            return Err(ServerError::Config(
                "the peer link must be authenticated".into(),
            ));
        }
        let timeout = Duration::from_secs(cfg.peer.timeout_s.max(1));
        let infer = match &cfg.inference {
            Some(ic) => Some(Arc::new(infer::InferenceService::load(ic, timeout)?)),
            None => None,
        };
        let srv = Arc::new(Self {
            grants: deploy::Grants::new(cfg.role, deploy::GRANT_TTL),
            joins: join::consent::Consents::open(&cfg.data_dir, join::consent::CONSENT_TTL)?,
            infer,
            feeds: Arc::default(),
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
        });
        srv.reload_deployed();
        Ok(srv)
    }

    fn identity(&self) -> Result<Identity> {
        let dir = &self.cfg.identity_dir;
        Identity::load(dir).map_err(|e| {
            ServerError::startup(format!("loading identity from {}", dir.display()), e)
        })
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
        let listen = self.cfg.clients.listen;
        let clients = TcpListener::bind(listen)
            .await
            .map_err(|e| ServerError::startup(format!("binding {listen}"), e))?;
        let caddr = clients
            .local_addr()
            .map_err(|e| ServerError::startup(format!("binding {listen}"), e))?;
        let peer_task = self.clone().start_peer(me, peer_cert).await?;
        println!("party {} listening for clients on {caddr}", self.cfg.role);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            self.clone().accept_client(&clients, &acceptor).await;
            if peer_task.is_finished() {
                return Err(ServerError::Peer("the peer task ended".into()));
            }
        }
    }

    /// Starts the peer link's task: listening as P0, connecting as P1.
    async fn start_peer(
        self: Arc<Self>,
        me: Identity,
        peer_cert: PeerCert,
    ) -> Result<tokio::task::JoinHandle<()>> {
        if self.cfg.role != 0 {
            drop(me);
            return Ok(tokio::spawn(self.connect_peer(peer_cert)));
        }
        let addr = self.cfg.peer.listen.expect("checked by Config::load");
        let opts = transport::TransportOptions::default();
        let l = transport::listen(self.kind, addr, me, &[peer_cert], &opts).await?;
        println!(
            "party 0 listening for the peer on {} ({})",
            l.local_addr(),
            self.kind
        );
        Ok(tokio::spawn(self.accept_peers(l)))
    }

    /// Accepts one client connection and serves it on its own task, or refuses it when
    /// `max_connections` are open.
    async fn accept_client(
        self: Arc<Self>,
        clients: &TcpListener,
        acceptor: &tokio_rustls::TlsAcceptor,
    ) {
        let (tcp, addr) = match clients.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("client accept failed: {e}");
                return;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acc = acceptor.clone();
        let max = self.cfg.limits.max_connections;
        let permit =
            match limits::try_total(&self.connections, "connections", "max_connections", max) {
                Ok(p) => p,
                Err((_, message)) => {
                    tracing::warn!("refused client {addr}: {message}");
                    self.refuse_busy(acc, tcp, message);
                    return;
                }
            };
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = self.client_session(acc, tcp, addr).await {
                tracing::info!("client {addr}: session ended: {}", e.message());
            }
        });
    }
}
