//! The party's encrypted-inference endpoint (CryptoGCN, Ran et al., NeurIPS 2022, served): it
//! compiles the configured ST-GCN models for CKKS at start-up ([`hegcn::HeStgcn`], level planner
//! choosing the 128-bit preset) and deployed ones while serving
//! ([`InferenceService::register`]: the registry is live, no restart), accepts a client's
//! evaluation keys once per session, evaluates the network on the client's ciphertexts and
//! returns encrypted logits. It serves MNIST CNNs the same way (`ml::models::cnn` in
//! `hecnn`'s LoLa layout, see `cnn`): the model file's kind is detected ([`ModelKind`]); the
//! sessions, key checks, input checks and the sanitized reply are shared.
//!
//! Security: the party never receives a secret key (only the relinearization key and the Galois
//! keys the model's rotations need, each validated against the parameters with its declared
//! length as size limit); a session belongs to the authenticated client that opened it, and any
//! other client is refused (`Forbidden`, logged). Semi-honest server: it learns the input shape
//! and the timing, nothing of the values.
//!
//! Availability against authenticated clients that try to exhaust the party (every bound is
//! taken before the memory it protects is used, and refused, not queued, when exhausted):
//! - a key upload is bounded by `max_key_bytes` before any byte moves; by default that is what
//!   the served models' keys need (computed from the parameters at start, see
//!   [`required_key_bytes`]), not an arbitrary large constant;
//! - at most `max_key_uploads` uploads (`max_key_uploads_per_client` per client) are in progress,
//!   so buffered and decoded keys stay within about `2 · max_key_uploads · max_key_bytes`;
//! - the session slot is reserved atomically before the upload ([`super::sessions`]): concurrent
//!   opens cannot exceed `max_sessions` / `max_sessions_per_client`, and a failed or abandoned
//!   upload frees its slot;
//! - an inference takes its permit (`max_concurrent_inferences`) before the input ciphertexts
//!   are received, so only running requests buffer inputs.
//!
//! What the client learns of the model: the logits at the logit positions, up to the flood, and
//! what [`ModelInfo`](crate::infer::msg::ModelInfo) announces (architecture-derived layout,
//! parameters, rotation steps, classes). The head masks its output to the logit slots (the rotate-and-sum left partial sums
//! of the dense layer in the others) and every reply is sanitized with the public key the client
//! sent when opening the session (`hegcn::HeStgcn::sanitize_logits`): a fresh encryption of zero
//! makes `c1` a new RLWE sample, and a uniform flood `2^flood_bits` times the evaluation-noise
//! bound covers the weight-dependent noise. At the default `flood_bits = 0` this is no
//! statistical guarantee (distance bound ≈ `N/2`, vacuous; per coefficient `1/2`), it only
//! drowns the noise's low-order bits and costs a logit error of standard deviation
//! `ModelInfo::flood_sd` (0.036 at N = 2^15); 40-bit hiding would need `flood_bits ≈ 54` and
//! destroy the logits (see the README).
//!
//! The forward pass runs on the blocking pool (and rayon inside `hegcn`), never on the async
//! executor's threads.

mod cnn;
mod error;
mod keys;
mod model;
mod planned;

pub use error::InferenceError;
pub use model::{required_key_bytes, ModelKind, ServedModel, PACKINGS};

use super::config::InferenceConfig;
use super::limits::{self, PerClient};
use super::sessions::SessionTable;
use crate::infer::client::{recv_object, send_object};
use crate::infer::max_ciphertext_bytes;
use crate::infer::msg::{InferReply, InferRequest, MAX_REQUEST_CTS};
use crate::proto::{EntryId, ErrorCode, Reply};
use ckks::{Ciphertext, Evaluator, PublicKey};
use error::Result;
use model::{default_max_key_bytes, Evaluated};
use mpc::net::{Channel, ChannelExt};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// What a request needs of its session: the model, the evaluation keys, the public key.
type SessionParts = (Arc<ServedModel>, Arc<Evaluator>, Arc<PublicKey>);

/// An open session's model and keys (its owner and idle time are kept by the table).
#[derive(Debug, Clone)]
struct Session {
    model: Arc<ServedModel>,
    eval: Arc<Evaluator>,
    /// The client's public key at the output level (sanitizes the replies).
    pk: Arc<PublicKey>,
}

/// The inference endpoint of one party: served models and open sessions.
#[derive(Debug)]
pub struct InferenceService {
    cfg: InferenceConfig,
    /// The live registry: configured models, and deployed ones added while serving
    /// ([`InferenceService::register`]).
    models: RwLock<BTreeMap<String, Arc<ServedModel>>>,
    sessions: SessionTable<Session>,
    /// The bound on one session's key upload in force (configured, or what the models need;
    /// it grows when a deployed model needs more).
    max_key_bytes: AtomicU64,
    /// Key uploads in progress (`max_key_uploads`).
    uploads: Arc<Semaphore>,
    /// Key uploads in progress per client (`max_key_uploads_per_client`).
    client_uploads: PerClient,
    running: Arc<Semaphore>,
    timeout: Duration,
}

/// A key upload let in: its permits (in total and of its client) and its session slot, all
/// given back when dropped unless the slot became a session.
struct Admitted<'a> {
    _total: tokio::sync::OwnedSemaphorePermit,
    _mine: limits::PerClientGuard,
    slot: super::sessions::Reservation<'a, Session>,
}

/// A request the service turned down (the stream stays in sync; the reply says why).
struct Refusal(ErrorCode, String);

impl InferenceService {
    /// Loads and compiles every configured model. `timeout` bounds every wait for a client frame.
    ///
    /// # Errors
    /// As [`ServedModel::load`]; duplicate model names.
    pub fn load(cfg: &InferenceConfig, timeout: Duration) -> Result<Self> {
        let mut models = Vec::new();
        for m in &cfg.models {
            let t0 = Instant::now();
            let sm = ServedModel::load(m, cfg)?;
            let layout = match (&sm.info.cnn, &sm.plan) {
                (Some(c), _) => format!("CNN, layout {}", c.layout.name()),
                (None, Some((plan, secs))) => {
                    let plan = plan.label();
                    format!("planned {plan}, estimated {secs:.1} s per sample here")
                }
                (None, None) => m.packing.clone(),
            };
            tracing::info!(
                "serving model {:?} ({layout}): preset {}, input level {}, {} input ciphertexts, {} Galois keys, compiled in {:.1}s",
                m.name,
                sm.info.preset,
                sm.info.input_level,
                sm.input_cts(),
                sm.needed.len(),
                t0.elapsed().as_secs_f64()
            );
            models.push(sm);
        }
        Self::with_models(cfg, models, timeout)
    }

    /// A service for already compiled models (the `models` list of `cfg` is not read).
    ///
    /// # Errors
    /// Duplicate model names.
    pub fn with_models(
        cfg: &InferenceConfig,
        served: Vec<ServedModel>,
        timeout: Duration,
    ) -> Result<Self> {
        let mut models = BTreeMap::new();
        // One memory bound for the encoded weights of all models, split evenly.
        let share = (cfg.plaintext_cache_mib << 20) / served.len().max(1);
        let max_key_bytes = Self::key_bound(cfg, served.iter());
        for mut sm in served {
            sm.info.max_key_bytes = max_key_bytes;
            sm.set_plaintext_cache_budget(share);
            let name = sm.info.name.clone();
            if models.insert(name.clone(), Arc::new(sm)).is_some() {
                return Err(InferenceError::Config(format!(
                    "model name {name:?} is configured twice"
                )));
            }
        }
        let ttl = Duration::from_secs(cfg.session_ttl_s);
        Ok(Self {
            running: Arc::new(Semaphore::new(cfg.max_concurrent_inferences.max(1))),
            sessions: SessionTable::new(cfg.max_sessions, cfg.max_sessions_per_client, ttl),
            max_key_bytes: AtomicU64::new(max_key_bytes),
            uploads: Arc::new(Semaphore::new(
                cfg.max_key_uploads.min(Semaphore::MAX_PERMITS),
            )),
            client_uploads: PerClient::new(
                "key uploads",
                "max_key_uploads_per_client",
                cfg.max_key_uploads_per_client,
            ),
            cfg: cfg.clone(),
            models: RwLock::new(models),
            timeout,
        })
    }

    /// The `max_key_bytes` in force: the operator's value, else what the models need; logged.
    fn key_bound<'a>(
        cfg: &InferenceConfig,
        served: impl Iterator<Item = &'a ServedModel> + Clone,
    ) -> u64 {
        let need = default_max_key_bytes(served.clone().map(|m| m.key_bytes));
        for m in served.clone() {
            tracing::info!(
                "model {:?} needs {} bytes of evaluation keys per session",
                m.info.name,
                m.key_bytes
            );
        }
        match cfg.max_key_bytes {
            None => {
                tracing::info!("max_key_bytes = {need} (what the served models need, + 1/64)");
                need
            }
            Some(set) => {
                tracing::info!("max_key_bytes = {set} (configured)");
                if let Some(m) = served.clone().find(|m| m.key_bytes > set) {
                    tracing::warn!(
                        "max_key_bytes = {set} is below the {} bytes of keys model {:?} needs: \
                         its sessions cannot open",
                        m.key_bytes,
                        m.info.name
                    );
                }
                set
            }
        }
    }

    /// The served models by name (a snapshot of the live registry).
    pub fn models(&self) -> BTreeMap<String, Arc<ServedModel>> {
        self.models.read().expect("model registry lock").clone()
    }

    /// The configuration the service was started with.
    pub fn config(&self) -> &InferenceConfig {
        &self.cfg
    }

    /// `Err` naming the served models when `name` is served already.
    pub fn check_free(&self, name: &str) -> Result<(), String> {
        let models = self.models.read().expect("model registry lock");
        if models.contains_key(name) {
            return Err(format!(
                "a model named {name:?} is served already (served: {})",
                models.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(())
    }

    /// Adds a compiled model to the live registry while serving (a deployed model): the name
    /// must be free; the plaintext-cache budget is split again over all models; an unset
    /// `max_key_bytes` grows to what the new model needs (+1/64), so its sessions can open.
    ///
    /// # Errors
    /// [`InferenceError::Config`] when the name is served already.
    pub fn register(&self, mut sm: ServedModel) -> Result<Arc<ServedModel>> {
        let mut models = self.models.write().expect("model registry lock");
        let name = sm.info.name.clone();
        if models.contains_key(&name) {
            return Err(InferenceError::Config(format!(
                "a model named {name:?} is served already"
            )));
        }
        let bound = match self.cfg.max_key_bytes {
            Some(set) => set,
            None => default_max_key_bytes(
                models
                    .values()
                    .map(|m| m.key_bytes)
                    .chain(std::iter::once(sm.key_bytes)),
            ),
        };
        self.max_key_bytes.fetch_max(bound, Ordering::SeqCst);
        sm.info.max_key_bytes = self.max_key_bytes();
        let sm = Arc::new(sm);
        models.insert(name.clone(), sm.clone());
        let share = (self.cfg.plaintext_cache_mib << 20) / models.len();
        for m in models.values() {
            m.set_plaintext_cache_budget(share);
        }
        tracing::info!(
            "serving model {name:?} (deployed): preset {}, {} bytes of evaluation keys per \
             session; max_key_bytes = {}",
            sm.info.preset,
            sm.key_bytes,
            self.max_key_bytes()
        );
        Ok(sm)
    }

    /// Number of open (unexpired) sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.counts().0
    }

    /// The bound on one session's key upload in force.
    pub fn max_key_bytes(&self) -> u64 {
        self.max_key_bytes.load(Ordering::SeqCst)
    }

    /// Serves one request of the authenticated client `owner` on `ch`. Refusals are replied and
    /// logged; an `Err` means the connection cannot continue (I/O failure or a client that
    /// broke the framing).
    ///
    /// # Errors
    /// Channel errors.
    pub async fn handle<C: Channel>(
        &self,
        ch: &mut C,
        owner: &str,
        req: InferRequest,
    ) -> Result<()> {
        let what = match &req {
            InferRequest::ListModels => "list models",
            InferRequest::ModelInfo { .. } => "model info",
            InferRequest::OpenSession { .. } => "open session",
            InferRequest::Infer { .. } => "inference",
            InferRequest::CloseSession { .. } => "close session",
        };
        let r = match req {
            InferRequest::ListModels => Ok(InferReply::Models(
                self.models
                    .read()
                    .expect("model registry lock")
                    .keys()
                    .cloned()
                    .collect(),
            )),
            InferRequest::ModelInfo { model } => self.model(&model).map(|m| {
                // The bound in force now (a deployed model may have raised it).
                let mut info = m.info.clone();
                info.max_key_bytes = self.max_key_bytes();
                InferReply::ModelInfo(Box::new(info))
            }),
            InferRequest::OpenSession {
                model,
                key_lens,
                public_key_len,
            } => {
                self.open_session(ch, owner, &model, &key_lens, public_key_len)
                    .await?
            }
            InferRequest::Infer { session, ct_lens } => {
                match self.infer(ch, owner, session, &ct_lens).await? {
                    Ok(()) => return Ok(()),
                    Err(r) => Err(r),
                }
            }
            InferRequest::CloseSession { session } => self.close(owner, session),
        };
        let rep = match r {
            Ok(r) => Reply::Inference(r),
            Err(Refusal(code, message)) => {
                tracing::warn!("refused {what} of {owner}: {message}");
                Reply::Error { code, message }
            }
        };
        ch.send(&rep).await?;
        ch.flush().await?;
        Ok(())
    }

    fn model(&self, name: &str) -> Result<Arc<ServedModel>, Refusal> {
        let models = self.models.read().expect("model registry lock");
        models.get(name).cloned().ok_or_else(|| {
            Refusal(
                ErrorCode::NotFound,
                format!(
                    "no model {name:?} (served: {})",
                    models.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// The session `id` if `owner` opened it.
    fn session(&self, owner: &str, id: EntryId) -> Result<SessionParts, Refusal> {
        let s = self
            .sessions
            .get(owner, id)
            .map_err(|(code, message)| Refusal(code, message))?;
        Ok((s.model, s.eval, s.pk))
    }

    fn touch(&self, id: EntryId) {
        self.sessions.touch(id);
    }

    /// Receives the input ciphertexts, runs the model, sends the logits. `Ok(Ok(()))` when the
    /// logits went out; `Ok(Err(_))` for a refusal still to be replied.
    async fn infer<C: Channel>(
        &self,
        ch: &mut C,
        owner: &str,
        id: EntryId,
        ct_lens: &[u64],
    ) -> Result<Result<(), Refusal>> {
        let (m, eval, pk) = match self.session(owner, id) {
            Ok(x) => x,
            Err(r) => return Ok(Err(r)),
        };
        if let Err(r) = check_inputs(&m, ct_lens) {
            return Ok(Err(r));
        }
        // The permit first: only running requests buffer their inputs.
        let permit = self.running.clone().acquire_owned().await?;
        ch.send(&Reply::Inference(InferReply::Ready)).await?;
        ch.flush().await?;
        let cts = match self.recv_inputs(ch, owner, &m, ct_lens).await? {
            Ok(c) => c,
            Err(e) => return Ok(Err(Refusal(ErrorCode::BadRequest, e))),
        };
        let m2 = m.clone();
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            m2.evaluate(&eval, &pk, cts)
        })
        .await?;
        self.touch(id);
        let Evaluated {
            bytes,
            positions,
            secs,
            sanitize,
            counts,
        } = match out {
            Ok(x) => x,
            Err(e) => {
                tracing::error!("session {id} of {owner}: evaluation failed: {e}");
                return Ok(Err(Refusal(
                    ErrorCode::Internal,
                    format!("evaluation failed: {e}"),
                )));
            }
        };
        log_inference(id, owner, &m, secs, sanitize, &counts);
        ch.send(&Reply::Inference(InferReply::Logits {
            ct_lens: bytes.iter().map(|b| b.len() as u64).collect(),
            positions: positions
                .iter()
                .map(|&(c, s)| (c as u32, s as u32))
                .collect(),
            eval_seconds: secs,
            counts,
        }))
        .await?;
        for b in &bytes {
            send_object(ch, b).await?;
        }
        ch.flush().await?;
        Ok(Ok(()))
    }

    /// Receives the announced input ciphertexts and decodes them at the model's input level
    /// and scale; the inner `Err` is the refusal's message.
    async fn recv_inputs<C: Channel>(
        &self,
        ch: &mut C,
        owner: &str,
        m: &ServedModel,
        ct_lens: &[u64],
    ) -> Result<Result<Vec<Ciphertext>, String>> {
        let mut raw = Vec::with_capacity(ct_lens.len());
        for &len in ct_lens {
            let b = tokio::time::timeout(self.timeout, recv_object(ch, len))
                .await
                .map_err(|_| {
                    InferenceError::Stalled(format!("input upload of {owner} stalled"))
                })??;
            raw.push(b);
        }
        let level = m.info.input_level as usize;
        let p = m.params().clone();
        Ok(tokio::task::spawn_blocking(move || -> Result<Vec<Ciphertext>, String> {
            raw.iter()
                .enumerate()
                .map(|(i, b)| {
                    let ct = Ciphertext::from_bytes_with_limit(b, &p, b.len() as u64)
                        .map_err(|e| format!("input ciphertext {i}: {e}"))?;
                    let rel = (ct.scale() / p.default_scale() - 1.0).abs();
                    if ct.level() != level || rel > ckks::SCALE_TOLERANCE {
                        return Err(format!(
                            "input ciphertext {i}: level {} scale 2^{:.3}, the model takes level {level} scale 2^{:.3}",
                            ct.level(),
                            ct.scale().log2(),
                            p.default_scale().log2()
                        ));
                    }
                    Ok(ct)
                })
                .collect()
        })
        .await?)
    }

    fn close(&self, owner: &str, id: EntryId) -> Result<InferReply, Refusal> {
        self.sessions
            .close(owner, id)
            .map_err(|(code, message)| Refusal(code, message))?;
        tracing::info!("session {id} of {owner} closed");
        Ok(InferReply::Closed)
    }
}

/// Checks the announced input ciphertexts: as many as the model takes, each of a size a
/// ciphertext can have.
fn check_inputs(m: &ServedModel, ct_lens: &[u64]) -> Result<(), Refusal> {
    let want = m.input_cts();
    if ct_lens.len() != want || want > MAX_REQUEST_CTS {
        return Err(Refusal(
            ErrorCode::BadRequest,
            format!(
                "{} input ciphertexts announced, model {:?} takes {want}",
                ct_lens.len(),
                m.info.name
            ),
        ));
    }
    let limit = max_ciphertext_bytes(m.params());
    if let Some((i, &l)) = ct_lens
        .iter()
        .enumerate()
        .find(|(_, &l)| l > limit || l == 0)
    {
        return Err(Refusal(
            ErrorCode::Limit,
            format!("input ciphertext {i}: {l} bytes, a ciphertext has 1 to {limit}"),
        ));
    }
    Ok(())
}

/// Logs a finished inference: its time, the key switches and the plaintext cache.
fn log_inference(
    id: EntryId,
    owner: &str,
    m: &ServedModel,
    secs: f64,
    sanitize: f64,
    counts: &ckks::OpCounts,
) {
    let cache = m.plaintext_cache_stats();
    tracing::info!(
            "session {id} of {owner}: inference on {:?} in {secs:.2}s (sanitizing {:.1} ms; {} rotations, {} key switches; plaintext cache {} of {} MiB, {} hits, {} misses)",
            m.info.name,
            sanitize * 1e3,
            counts.rotate,
            counts.key_switch,
            cache.bytes >> 20,
            cache.budget_bytes >> 20,
            cache.hits,
            cache.misses
        );
}

#[cfg(test)]
mod cnn_matrix_tests;
#[cfg(test)]
mod cnn_tests;
#[cfg(test)]
mod planned_tests;
#[cfg(test)]
mod tests;
