//! Opening an inference session: the announced key upload is checked and admitted (permits
//! and a session slot taken before any key byte moves), the evaluation keys and the public key
//! are received and validated against the model, and the session is installed.

use super::error::{InferenceError, Result};
use super::model::ServedModel;
use super::{Admitted, InferenceService, Refusal, Session};
use crate::infer::client::recv_object;
use crate::infer::max_public_key_bytes;
use crate::infer::msg::{InferReply, MAX_SESSION_KEYS};
use crate::proto::{ErrorCode, Reply};
use crate::server::limits;
use ckks::{Evaluator, GaloisKeys, PublicKey, RelinKey};
use mpc::net::{Channel, ChannelExt};
use std::sync::Arc;

/// The keys of a session as received, and the first problem found with them.
struct Keys {
    relin: Option<RelinKey>,
    galois: GaloisKeys,
    problem: Option<String>,
}

impl Keys {
    /// Adds the Galois keys of key object `i`; the problem, if an element is not one of the
    /// model's or was sent before.
    fn add_galois(
        &mut self,
        i: usize,
        g: GaloisKeys,
        m: &ServedModel,
        model: &str,
    ) -> Option<String> {
        let problem = if let Some(e) = g.elements().find(|e| !m.needed.contains_key(e)) {
            Some(format!(
                "key object {i}: Galois element {e} is not used by model {model:?}"
            ))
        } else {
            g.elements()
                .find(|&e| self.galois.contains(e))
                .map(|e| format!("key object {i}: Galois element {e} was sent twice"))
        };
        self.galois.extend(g);
        problem
    }
}

impl InferenceService {
    /// Checks the announced upload, streams and validates the keys, installs the session.
    pub(super) async fn open_session<C: Channel>(
        &self,
        ch: &mut C,
        owner: &str,
        model: &str,
        key_lens: &[u64],
        pk_len: u64,
    ) -> Result<Result<InferReply, Refusal>> {
        let m = match self.model(model) {
            Ok(m) => m,
            Err(r) => return Ok(Err(r)),
        };
        if let Err(r) = self.check_upload(&m, key_lens, pk_len) {
            return Ok(Err(r));
        }
        // Taken before any key byte moves, released (guards) however this function ends.
        let admitted = match self.admit_upload(owner) {
            Ok(x) => x,
            Err(r) => return Ok(Err(r)),
        };
        ch.send(&Reply::Inference(InferReply::Ready)).await?;
        ch.flush().await?;
        let keys = self.recv_keys(ch, owner, &m, model, key_lens).await?;
        let pk = self.recv_public_key(ch, owner, &m, pk_len).await?;
        let Keys {
            relin,
            galois,
            problem,
        } = keys;
        let pk = match (problem, pk) {
            (Some(p), _) | (None, Err(p)) => return Ok(Err(Refusal(ErrorCode::BadRequest, p))),
            (None, Ok(pk)) => pk,
        };
        if let Some(missing) = m.needed.keys().find(|&&e| !galois.contains(e)) {
            return Ok(Err(Refusal(
                ErrorCode::BadRequest,
                format!(
                    "no Galois key for element {missing}: the model needs the {} steps of its model info",
                    m.info.rotation_steps.len()
                ),
            )));
        }
        if let Some((e, need, has)) = m.needed.iter().find_map(|(&e, &need)| {
            let has = galois.key_level(e).unwrap_or(0);
            (has < need).then_some((e, need, has))
        }) {
            return Ok(Err(Refusal(
                ErrorCode::BadRequest,
                format!(
                    "the Galois key for element {e} switches at levels up to {has}, the model rotates by it at level {need} (model info: rotation_levels)"
                ),
            )));
        }
        // A key above its level (a client that sent whole keys) is cut to what the model reads.
        let galois = match galois.restrict_each(m.params(), &m.needed) {
            Ok(g) => g,
            Err(e) => {
                return Ok(Err(Refusal(
                    ErrorCode::BadRequest,
                    format!("Galois keys: {e}"),
                )))
            }
        };
        let Some(relin) = relin else {
            return Ok(Err(Refusal(
                ErrorCode::BadRequest,
                "no relinearization key".into(),
            )));
        };
        let eval = Evaluator::new(m.params())
            .with_relin_key(relin)
            .with_galois_keys(galois);
        let session = admitted.slot.install(Session {
            model: m,
            eval: Arc::new(eval),
            pk: Arc::new(pk),
        });
        let total: u64 = key_lens.iter().sum::<u64>() + pk_len;
        tracing::info!(
            "session {session} of {owner} opened for model {model:?} ({} keys, {total} bytes)",
            key_lens.len()
        );
        Ok(Ok(InferReply::SessionOpened {
            session,
            ttl_s: self.cfg.session_ttl_s,
        }))
    }

    /// Receives the announced key objects. Every announced byte is read even when an object
    /// fails validation, so that the stream stays in sync and the refusal can be replied.
    async fn recv_keys<C: Channel>(
        &self,
        ch: &mut C,
        owner: &str,
        m: &ServedModel,
        model: &str,
        key_lens: &[u64],
    ) -> Result<Keys> {
        let params = m.params().clone();
        let mut keys = Keys {
            relin: None,
            galois: GaloisKeys::default(),
            problem: None,
        };
        for (i, &len) in key_lens.iter().enumerate() {
            let bytes = tokio::time::timeout(self.timeout, recv_object(ch, len))
                .await
                .map_err(|_| InferenceError::Stalled(format!("key upload of {owner} stalled")))??;
            if keys.problem.is_some() {
                continue;
            }
            let p = params.clone();
            let decoded = tokio::task::spawn_blocking(move || {
                if i == 0 {
                    RelinKey::from_bytes_with_limit(&bytes, &p, len).map(|k| (Some(k), None))
                } else {
                    GaloisKeys::from_bytes_with_limit(&bytes, &p, len).map(|g| (None, Some(g)))
                }
            })
            .await?;
            keys.problem = match decoded {
                Ok((Some(k), _)) => {
                    keys.relin = Some(k);
                    None
                }
                Ok((_, Some(g))) => keys.add_galois(i, g, m, model),
                Ok(_) => unreachable!("one of the two keys is decoded"),
                Err(e) => {
                    let what = if i == 0 {
                        "relinearization key"
                    } else {
                        "Galois key"
                    };
                    Some(format!("key object {i} ({what}): {e}"))
                }
            };
        }
        Ok(keys)
    }

    /// The upload permits (in total and of `owner`) and `owner`'s session slot, or the refusal
    /// naming the limit that is reached.
    fn admit_upload(&self, owner: &str) -> Result<Admitted<'_>, Refusal> {
        let refusal = |(code, message)| Refusal(code, message);
        let mine = self.client_uploads.try_acquire(owner).map_err(refusal)?;
        let total = limits::try_total(
            &self.uploads,
            "key uploads",
            "max_key_uploads",
            self.cfg.max_key_uploads,
        )
        .map_err(refusal)?;
        let slot = self.sessions.reserve(owner).map_err(refusal)?;
        Ok(Admitted {
            _total: total,
            _mine: mine,
            slot,
        })
    }

    /// Receives the client's public key (every announced byte, so the stream stays in sync) and
    /// validates it: the model's parameters, the declared length as size limit, the output level.
    async fn recv_public_key<C: Channel>(
        &self,
        ch: &mut C,
        owner: &str,
        m: &ServedModel,
        len: u64,
    ) -> Result<Result<PublicKey, String>> {
        let bytes = tokio::time::timeout(self.timeout, recv_object(ch, len))
            .await
            .map_err(|_| {
                InferenceError::Stalled(format!("public key upload of {owner} stalled"))
            })??;
        let params = m.params().clone();
        let want = m.output_level();
        Ok(tokio::task::spawn_blocking(move || {
            let pk = PublicKey::from_bytes_with_limit(&bytes, &params, len)
                .map_err(|e| format!("public key: {e}"))?;
            if pk.level() != want {
                return Err(format!(
                    "public key at level {}, the logits are returned at level {want}",
                    pk.level()
                ));
            }
            Ok(pk)
        })
        .await?)
    }

    /// Checks the announced sizes of a key upload against the model and the limits.
    fn check_upload(&self, m: &ServedModel, key_lens: &[u64], pk_len: u64) -> Result<(), Refusal> {
        let pk_limit = max_public_key_bytes(m.params(), m.output_level());
        if pk_len == 0 || pk_len > pk_limit {
            return Err(Refusal(
                ErrorCode::BadRequest,
                format!("public key of {pk_len} bytes announced, one takes 1 to {pk_limit}"),
            ));
        }
        let most = (m.needed.len() + 1).min(MAX_SESSION_KEYS);
        if key_lens.is_empty() || key_lens.len() > most {
            return Err(Refusal(
                ErrorCode::BadRequest,
                format!(
                    "{} key objects announced, the model takes 1 to {most} (relinearization key, then Galois keys)",
                    key_lens.len()
                ),
            ));
        }
        let total = key_lens
            .iter()
            .try_fold(pk_len, |a, &l| a.checked_add(l))
            .unwrap_or(u64::MAX);
        let bound = self.max_key_bytes();
        if total > bound {
            return Err(Refusal(
                ErrorCode::Limit,
                format!("key upload of {total} bytes exceeds max_key_bytes = {bound}"),
            ));
        }
        if let Some((i, _)) = key_lens.iter().enumerate().find(|(_, &l)| l == 0) {
            return Err(Refusal(
                ErrorCode::BadRequest,
                format!("key object {i} is announced empty"),
            ));
        }
        Ok(())
    }
}
