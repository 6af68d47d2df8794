//! The async client of the inference endpoint: model description, session opening with the
//! evaluation keys streamed as they are generated, encrypted inference, closing. The protocol
//! is in [`super::msg`]; the math in [`super`].

use super::msg::{InferReply, InferRequest, ModelInfo};
use super::{InferError, KeyStream, Result};
use crate::client::{Client, ClientError};
use crate::proto::{ClientRequest, EntryId, Reply, UPLOAD_CHUNK};
use mpc::net::{Channel, ChannelExt};

/// Encrypted logits as received, with the party's timing and operation counts.
#[derive(Debug, Clone)]
pub struct EncryptedResult {
    /// Serialized logit ciphertexts.
    pub cts: Vec<Vec<u8>>,
    /// `(ciphertext, slot)` of each class score.
    pub positions: Vec<(u32, u32)>,
    /// Seconds the party spent evaluating.
    pub eval_seconds: f64,
    /// The party's homomorphic operation counts for this request.
    pub counts: ckks::OpCounts,
}

/// What carries the client's requests to an inference endpoint: a party connection
/// ([`Client`]) or, in process, a [`Local`] channel to an
/// [`InferenceService`](crate::server::infer::InferenceService) (the experiments measure the
/// service that way; the messages are the same).
pub trait Endpoint {
    /// The channel the frames travel on.
    type Ch: Channel;
    /// The channel.
    fn channel(&mut self) -> &mut Self::Ch;
}

impl Endpoint for Client {
    type Ch = crate::client::ClientChannel;
    fn channel(&mut self) -> &mut Self::Ch {
        Client::channel(self)
    }
}

/// Any channel whose other end an `InferenceService` answers (`mpc::net::mem_pair`).
#[derive(Debug)]
pub struct Local<C>(pub C);

impl<C: Channel> Endpoint for Local<C> {
    type Ch = C;
    fn channel(&mut self) -> &mut C {
        &mut self.0
    }
}

/// A connection to a party's inference endpoint.
#[derive(Debug)]
pub struct InferClient<E = Client> {
    client: E,
}

fn unexpected(r: &impl std::fmt::Debug) -> InferError {
    InferError::Client(ClientError::Unexpected {
        got: format!("{r:?}"),
    })
}

/// Sends `bytes` as raw frames of at most [`UPLOAD_CHUNK`] bytes.
pub(crate) async fn send_object<C: Channel>(ch: &mut C, bytes: &[u8]) -> Result<(), mpc::MpcError> {
    for chunk in bytes.chunks(UPLOAD_CHUNK) {
        ch.send_frame(chunk.to_vec()).await?;
    }
    Ok(())
}

/// Receives exactly `len` bytes sent by [`send_object`]; no frame may exceed what is left.
pub(crate) async fn recv_object<C: Channel>(
    ch: &mut C,
    len: u64,
) -> Result<Vec<u8>, mpc::MpcError> {
    let mut out = Vec::with_capacity(len.min(UPLOAD_CHUNK as u64) as usize);
    while (out.len() as u64) < len {
        let left = (len - out.len() as u64).min(UPLOAD_CHUNK as u64) as usize;
        let f = ch.recv_frame(left).await?;
        if f.is_empty() {
            return Err(mpc::MpcError::Malformed {
                reason: "empty data frame".into(),
            });
        }
        out.extend_from_slice(&f);
    }
    Ok(out)
}

impl<E: Endpoint> InferClient<E> {
    /// Wraps an authenticated connection (or a [`Local`] channel).
    pub fn new(client: E) -> Self {
        Self { client }
    }

    /// The next reply; an `Error` reply is [`ClientError::Refused`].
    async fn recv(&mut self) -> Result<Reply> {
        let ch = self.client.channel();
        match ch.recv::<Reply>(crate::proto::MAX_CONTROL_FRAME).await? {
            e @ Reply::Error { .. } => Err(crate::client::refused(e).into()),
            r => Ok(r),
        }
    }

    async fn request(&mut self, r: InferRequest) -> Result<InferReply> {
        let ch = self.client.channel();
        ch.send(&ClientRequest::Inference(r)).await?;
        ch.flush().await?;
        match self.recv().await? {
            Reply::Inference(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// Names of the models the party serves.
    ///
    /// # Errors
    /// Connection errors, refusals.
    pub async fn list_models(&mut self) -> Result<Vec<String>> {
        match self.request(InferRequest::ListModels).await? {
            InferReply::Models(m) => Ok(m),
            other => Err(unexpected(&other)),
        }
    }

    /// The description of `model`.
    ///
    /// # Errors
    /// Connection errors, refusals (`NotFound` for an unknown model).
    pub async fn model_info(&mut self, model: &str) -> Result<ModelInfo> {
        match self
            .request(InferRequest::ModelInfo {
                model: model.into(),
            })
            .await?
        {
            InferReply::ModelInfo(i) => Ok(*i),
            other => Err(unexpected(&other)),
        }
    }

    /// Opens a session: announces the key sizes, and once the party accepts them streams every
    /// key object as the generator produces it, then the public key. Returns the session and its idle expiry.
    ///
    /// # Errors
    /// Refusals (limits, validation), connection errors, key generation errors.
    pub async fn open_session(
        &mut self,
        model: &str,
        mut keys: KeyStream,
    ) -> Result<(EntryId, u64)> {
        match self
            .request(InferRequest::OpenSession {
                model: model.into(),
                key_lens: keys.lens.clone(),
                public_key_len: keys.public_key.len() as u64,
            })
            .await?
        {
            InferReply::Ready => {}
            other => return Err(unexpected(&other)),
        }
        for (i, &len) in keys.lens.iter().enumerate() {
            let k = keys
                .rx
                .recv()
                .await
                .ok_or_else(|| InferError::KeyGeneration {
                    reason: format!("generator ended after {i} of {} keys", keys.lens.len()),
                })??;
            if k.len() as u64 != len {
                return Err(InferError::KeyGeneration {
                    reason: format!("key {i} has {} bytes, {len} were announced", k.len()),
                });
            }
            send_object(self.client.channel(), &k).await?;
        }
        send_object(self.client.channel(), &keys.public_key).await?;
        self.client.channel().flush().await?;
        match self.recv().await? {
            Reply::Inference(InferReply::SessionOpened { session, ttl_s }) => Ok((session, ttl_s)),
            other => Err(unexpected(&other)),
        }
    }

    /// Sends the serialized input ciphertexts and receives the encrypted logits.
    ///
    /// # Errors
    /// Refusals (`Forbidden` for a session of another client, `NotFound` for an expired one),
    /// connection errors.
    pub async fn infer(
        &mut self,
        session: EntryId,
        cts: &[Vec<u8>],
        max_ct_bytes: u64,
    ) -> Result<EncryptedResult> {
        let ct_lens = cts.iter().map(|c| c.len() as u64).collect();
        match self
            .request(InferRequest::Infer { session, ct_lens })
            .await?
        {
            InferReply::Ready => {}
            other => return Err(unexpected(&other)),
        }
        for c in cts {
            send_object(self.client.channel(), c).await?;
        }
        self.client.channel().flush().await?;
        match self.recv().await? {
            Reply::Inference(InferReply::Logits {
                ct_lens,
                positions,
                eval_seconds,
                counts,
            }) => {
                let mut out = Vec::with_capacity(ct_lens.len());
                for len in ct_lens {
                    if len > max_ct_bytes {
                        return Err(InferError::BadInfo {
                            what: "logit ciphertext bytes (at most)",
                            expected: max_ct_bytes,
                            found: len,
                        });
                    }
                    out.push(recv_object(self.client.channel(), len).await?);
                }
                Ok(EncryptedResult {
                    cts: out,
                    positions,
                    eval_seconds,
                    counts,
                })
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Closes a session (its keys are dropped by the party).
    ///
    /// # Errors
    /// Refusals, connection errors.
    pub async fn close_session(&mut self, session: EntryId) -> Result<()> {
        match self.request(InferRequest::CloseSession { session }).await? {
            InferReply::Closed => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// The underlying connection (tests send malformed requests through it).
    pub fn client(&mut self) -> &mut E {
        &mut self.client
    }
}
