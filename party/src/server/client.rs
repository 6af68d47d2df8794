//! The client endpoint of a party: the TLS handshake and admission of a client connection
//! (certificate or token credential, per-client connection bound), the busy answer beyond
//! `max_connections`, and the request loop that dispatches each request and replies a refusal
//! with the [`ServerError`]'s code.

use super::upload::Then;
use super::{auth, err, reply, ClientChan, Result, Server, ServerError};
use crate::proto::{
    decode, ClientHello, ClientRequest, EntryId, ErrorCode, PeerReply, PeerRequest, Reply,
    MAX_CONTROL_FRAME,
};
use crate::store::{EntryKind, Manifest};
use crate::transport::Fingerprint;
use mpc::net::{Channel, StreamChannel};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

impl Server {
    /// Answers a connection over `max_connections` with a `Limit` error after its handshake
    /// and hello (bounded by the peer timeout), or closes it when [`super::BUSY_REPLIES`] such
    /// answers are under way already.
    pub(super) fn refuse_busy(
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
                let Ok(tls) = acc.accept(tcp).await else {
                    return;
                };
                let (r, w) = tokio::io::split(tls);
                let mut ch: ClientChan = StreamChannel::new(r, w);
                if ch.recv_frame(MAX_CONTROL_FRAME).await.is_ok() {
                    let _ = reply(&mut ch, &err(ErrorCode::Limit, message)).await;
                }
            };
            let _ = tokio::time::timeout(self.timeout, answer).await;
        });
    }

    /// Serves one client connection: handshake, admission, then its requests until it closes.
    pub(super) async fn client_session(
        self: Arc<Self>,
        acc: tokio_rustls::TlsAcceptor,
        tcp: TcpStream,
        addr: SocketAddr,
    ) -> Result<()> {
        let Some((mut ch, fp)) = self.handshake(acc, tcp, addr).await else {
            return Ok(());
        };
        let Some(hello) = self.hello(&mut ch, addr).await else {
            return Ok(());
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
        let welcome = Reply::Welcome {
            role: self.cfg.role,
        };
        reply(&mut ch, &welcome).await?;
        let mut prepared = Vec::new();
        let r = self.client_loop(&mut ch, &owner, addr, &mut prepared).await;
        if self.cfg.role == 0 {
            self.abort_uncommitted(&owner, prepared).await?;
        }
        r
    }

    /// The TLS handshake (bounded by the peer timeout) and the client certificate's
    /// fingerprint; `None` (logged) when the client is refused.
    async fn handshake(
        &self,
        acc: tokio_rustls::TlsAcceptor,
        tcp: TcpStream,
        addr: SocketAddr,
    ) -> Option<(ClientChan, Fingerprint)> {
        let tls = match tokio::time::timeout(self.timeout, acc.accept(tcp)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::warn!("refused client {addr}: TLS handshake failed: {e}");
                return None;
            }
            Err(_) => {
                tracing::warn!("refused client {addr}: TLS handshake timed out");
                return None;
            }
        };
        let Some(fp) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
            tracing::warn!("refused client {addr}: no certificate");
            return None;
        };
        let fp = Fingerprint::of(fp);
        let (r, w) = tokio::io::split(tls);
        Some((StreamChannel::new(r, w), fp))
    }

    /// The client's hello (bounded by the peer timeout); `None` (logged) when it is missing or
    /// malformed.
    async fn hello(&self, ch: &mut ClientChan, addr: SocketAddr) -> Option<ClientHello> {
        let hello = match tokio::time::timeout(self.timeout, ch.recv_frame(MAX_CONTROL_FRAME)).await
        {
            Ok(Ok(f)) => decode::<ClientHello>(&zeroize::Zeroizing::new(f), MAX_CONTROL_FRAME),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                tracing::warn!("refused client {addr}: no hello");
                return None;
            }
        };
        match hello {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("refused client {addr}: malformed hello: {e}");
                None
            }
        }
    }

    /// Serves `owner`'s requests until the connection closes or cannot be resynchronized.
    async fn client_loop(
        &self,
        ch: &mut ClientChan,
        owner: &str,
        addr: SocketAddr,
        prepared: &mut Vec<EntryId>,
    ) -> Result<()> {
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
            if self.dispatch(ch, owner, req, prepared).await? == Then::Close {
                return Ok(());
            }
        }
    }

    /// Serves one request; a refusal or failure is replied with its code and message.
    async fn dispatch(
        &self,
        ch: &mut ClientChan,
        owner: &str,
        req: ClientRequest,
        prepared: &mut Vec<EntryId>,
    ) -> Result<Then> {
        let r = match req {
            ClientRequest::UploadWith(h, opts) => {
                return Ok(self.upload(ch, owner, h, Some(&opts), prepared).await?);
            }
            ClientRequest::Upload(h) => {
                return Ok(self.upload(ch, owner, h, None, prepared).await?);
            }
            ClientRequest::Submit(spec) => self.submit(ch, owner, spec).await.inspect_err(|e| {
                tracing::warn!("client {owner}: job failed: {}", e.message());
            }),
            ClientRequest::Inference(r) => match &self.infer {
                // An `Err` of the endpoint means the stream is out of step: fatal.
                Some(svc) => Ok(svc.handle(ch, owner, r).await?),
                None => {
                    tracing::warn!("refused {owner}: inference request, no [inference] section");
                    Err(ServerError::NotFound("this party serves no models".into()))
                }
            },
            ClientRequest::Reveal { job } => Ok(self.reveal(ch, owner, job, false).await?),
            ClientRequest::RevealModel { job } => Ok(self.reveal(ch, owner, job, true).await?),
            ClientRequest::SubmitFollows { bytes } => {
                return self.submit_follows(ch, owner, bytes).await;
            }
            ClientRequest::Watch { job } => self.watch(ch, owner, job).await,
            other => match self.simple(owner, other).await {
                Ok(rep) => reply(ch, &rep).await.map_err(ServerError::from),
                Err(e) => {
                    tracing::warn!("client {owner}: {}", e.message());
                    Err(e)
                }
            },
        };
        if let Err(e) = r {
            reply(ch, &e.reply()).await?;
        }
        Ok(Then::Continue)
    }

    /// The requests answered by one reply: listing, commit, delete and deployment.
    async fn simple(&self, owner: &str, req: ClientRequest) -> Result<Reply> {
        match req {
            ClientRequest::List => Ok(Reply::Entries(
                self.store.list(owner)?.iter().map(Manifest::info).collect(),
            )),
            ClientRequest::Commit { id } => {
                self.require_p0("commit at P0")?;
                self.commit(owner, id).await
            }
            ClientRequest::Delete { name } => {
                self.require_p0("delete at P0")?;
                self.delete(owner, &name).await
            }
            ClientRequest::Deploy(spec) => self.authorize_deploy(owner, spec),
            ClientRequest::DeployStart { deploy } => self.start_deploy(owner, deploy).await,
            ClientRequest::DeployCancel { deploy } => self.cancel_deploy(owner, deploy),
            ClientRequest::JoinConsent(spec) => self.consent_join(owner, spec),
            ClientRequest::JoinStart { join } => self.start_join(owner, join).await,
            _ => Err(ServerError::BadRequest("unexpected request".into())),
        }
    }

    fn require_p0(&self, what: &str) -> Result<()> {
        if self.cfg.role == 0 {
            return Ok(());
        }
        Err(ServerError::BadRequest(what.into()))
    }

    /// Deletes `owner`'s dataset `name` on both parties (P0).
    async fn delete(&self, owner: &str, name: &str) -> Result<Reply> {
        let Some(m) = self.store.find_committed(EntryKind::Dataset, owner, name)? else {
            return Err(ServerError::NotFound(format!(
                "no dataset {name:?} of yours"
            )));
        };
        let req = PeerRequest::Delete {
            id: m.id,
            owner: owner.into(),
        };
        match self.peer_request(&req).await? {
            PeerReply::Ack => self.store.remove(&m.id)?,
            other => return Err(ServerError::Peer(format!("P1 answered {other:?}"))),
        }
        tracing::info!("deleted {} ({name}) of {owner}", m.id);
        Ok(Reply::Done)
    }
}
