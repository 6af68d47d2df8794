//! The party's encrypted-inference endpoint (CryptoGCN, Ran et al., NeurIPS 2022, served): it
//! compiles the configured ST-GCN models for CKKS at start-up ([`hegcn::HeStgcn`], level planner
//! choosing the 128-bit preset), accepts a client's evaluation keys once per session, evaluates
//! the network on the client's ciphertexts and returns encrypted logits.
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
//! what [`ModelInfo`] announces (architecture-derived layout, parameters, rotation steps,
//! classes). The head masks its output to the logit slots (the rotate-and-sum left partial sums
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

use super::config::{InferenceConfig, ServedModelConfig};
use super::limits::{self, PerClient};
use super::sessions::SessionTable;
use crate::infer::client::{recv_object, send_object};
use crate::infer::msg::{InferReply, InferRequest, ModelInfo, MAX_REQUEST_CTS, MAX_SESSION_KEYS};
use crate::infer::{max_ciphertext_bytes, max_public_key_bytes};
use crate::proto::{EntryId, ErrorCode, Reply};
use anyhow::{anyhow, Context, Result};
use ckks::{Ciphertext, Evaluator, GaloisKeys, PublicKey, RelinKey};
use hegcn::{HeStgcn, PackedTensor, Packing};
use mpc::net::{Channel, ChannelExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// A model compiled for encrypted evaluation.
#[derive(Debug)]
pub struct ServedModel {
    he: HeStgcn,
    info: ModelInfo,
    /// The flood of every reply.
    flood: hegcn::FloodConfig,
    /// Galois elements of the rotations the model uses.
    needed: BTreeSet<u64>,
    /// Bytes of the keys a session of this model uploads ([`required_key_bytes`]).
    key_bytes: u64,
}

/// Bytes of the evaluation keys a client uploads for a model under `params` whose rotations
/// need `galois` Galois elements: the relinearization key and one `GaloisKeys` object per
/// element, as `crate::infer::generate_keys` sends them (sizes from `ckks`'s serialization).
pub fn required_key_bytes(params: &ckks::CkksParams, galois: usize) -> u64 {
    let each = GaloisKeys::serialized_len(params, 1);
    RelinKey::serialized_len(params).saturating_add(each.saturating_mul(galois as u64))
}

/// The default `max_key_bytes`: the largest requirement of the served models plus 1/64.
fn default_max_key_bytes(needs: impl Iterator<Item = u64>) -> u64 {
    let most = needs.max().unwrap_or(0);
    most.saturating_add(most / 64)
}

impl ServedModel {
    /// Loads `<path>.json` + `.safetensors`, folds it, plans its levels and compiles it.
    ///
    /// # Errors
    /// Unreadable or invalid model files, an unknown packing or preset, a model deeper than the
    /// largest preset.
    pub fn load(cfg: &ServedModelConfig, limits: &InferenceConfig) -> Result<Self> {
        let json = std::fs::read_to_string(&cfg.path)
            .with_context(|| format!("reading {}", cfg.path.display()))?;
        let wpath = cfg.path.with_extension("safetensors");
        let weights =
            std::fs::read(&wpath).with_context(|| format!("reading {}", wpath.display()))?;
        let model = stgcn::StGcn::from_json_and_safetensors(&json, &weights)
            .with_context(|| format!("loading model {}", cfg.path.display()))?;
        Self::new(cfg, &model, limits)
    }

    /// Compiles an in-memory model under the settings of `cfg` (its `path` is not read).
    ///
    /// # Errors
    /// An unknown packing or preset, a model deeper than the largest preset.
    pub fn new(
        cfg: &ServedModelConfig,
        model: &stgcn::StGcn,
        limits: &InferenceConfig,
    ) -> Result<Self> {
        let packing = match cfg.packing.as_str() {
            "ama" => Packing::Ama,
            "channel-major" => Packing::ChannelMajor,
            p => anyhow::bail!(
                "model {:?}: unknown packing {p:?} (ama, channel-major)",
                cfg.name
            ),
        };
        let folded = model.fold();
        let preset = match &cfg.preset {
            None => hegcn::choose_preset(&folded, packing)?.0,
            Some(name) => *ckks::presets::ALL_128BIT
                .iter()
                .find(|p| p.name == name.as_str())
                .ok_or_else(|| {
                    anyhow!(
                        "model {:?}: {name:?} is not a 128-bit preset ({})",
                        cfg.name,
                        ckks::presets::ALL_128BIT.map(|p| p.name).join(", ")
                    )
                })?,
        };
        let params = preset.build()?;
        let he = HeStgcn::compile(&folded, packing, &params)
            .with_context(|| format!("compiling model {:?} for {}", cfg.name, preset.name))?;
        he.set_plaintext_cache_budget(limits.plaintext_cache_mib << 20);
        he.set_lockstep_budget((limits.lockstep_mib << 20).max(1));
        let n = folded.num_classes;
        let mut class_names = model.config().class_names.clone();
        if class_names.len() != n {
            class_names = (0..n).map(|i| format!("class{i}")).collect();
        }
        let steps = he.rotation_steps();
        let needed: BTreeSet<u64> = steps
            .iter()
            .map(|&s| ckks::galois_element_for_step(&params, s))
            .filter(|&g| g != 1)
            .collect();
        let flood = limits.flood();
        let eps = flood.eval_error_bound;
        anyhow::ensure!(
            eps.is_finite() && eps > 0.0 && eps < 1.0,
            "[inference] eval_error_bound = {eps}: must be finite, above 0 and below 1"
        );
        let max_bits = ckks::sanitize::MAX_FLOOD_WIDTH_BITS;
        anyhow::ensure!(
            flood.flood_bits <= max_bits,
            "[inference] flood_bits = {}: at most {max_bits}",
            flood.flood_bits
        );
        let flood_sd = he
            .logit_flood(&flood)
            .slot_error_sd(params.n(), params.default_scale());
        // The relinearization and Galois keys, and the public key at the logits' level.
        let key_bytes = required_key_bytes(&params, needed.len())
            .saturating_add(max_public_key_bytes(&params, he.output_level()));
        let info = ModelInfo {
            name: cfg.name.clone(),
            preset: preset.name.to_string(),
            log_n: params.log_n().0,
            q_primes: params.q_primes().to_vec(),
            p_primes: params.p_primes().to_vec(),
            input_level: he.plan().depth as u32,
            output_level: he.output_level() as u32,
            flood_sd,
            input_layout: he.input_layout().clone(),
            input_affine: folded
                .input_affine
                .as_ref()
                .map(|(s, t)| (s.iter().copied().collect(), t.iter().copied().collect())),
            rotation_steps: steps,
            class_names,
            // The service's bound, set when the service is made from all its models.
            max_key_bytes: limits
                .max_key_bytes
                .unwrap_or_else(|| default_max_key_bytes(std::iter::once(key_bytes))),
            session_ttl_s: limits.session_ttl_s,
        };
        Ok(Self {
            he,
            info,
            flood,
            needed,
            key_bytes,
        })
    }

    /// What clients are told about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Galois keys a session needs.
    pub fn galois_key_count(&self) -> usize {
        self.needed.len()
    }

    /// Bytes of the keys a session of this model uploads.
    pub fn key_bytes(&self) -> u64 {
        self.key_bytes
    }
}

/// The serialized reply of one forward pass.
struct Evaluated {
    bytes: Vec<Vec<u8>>,
    positions: Vec<(usize, usize)>,
    /// Seconds of the forward pass and the sanitization together.
    secs: f64,
    /// Seconds of the sanitization alone.
    sanitize: f64,
    counts: ckks::OpCounts,
}

impl ServedModel {
    /// Runs the model (the head masks its output to the logit slots), sanitizes the logits with
    /// the client's public key (fresh `c1`, flooded noise) and serializes them.
    fn evaluate(
        &self,
        eval: &Evaluator,
        pk: &PublicKey,
        x: PackedTensor,
    ) -> hegcn::Result<Evaluated> {
        let c0 = eval.counters();
        let t0 = Instant::now();
        let (logits, _) = self.he.forward(eval, &x)?;
        let counts = hegcn::counts_diff(&c0, &eval.counters());
        let t1 = Instant::now();
        let logits = self.he.sanitize_logits(eval, &logits, pk, &self.flood)?;
        let sanitize = t1.elapsed().as_secs_f64();
        let bytes = logits
            .cts
            .iter()
            .map(|c| c.to_bytes(self.he.params()))
            .collect::<ckks::Result<Vec<_>>>()?;
        Ok(Evaluated {
            bytes,
            positions: logits.positions,
            secs: t0.elapsed().as_secs_f64(),
            sanitize,
            counts,
        })
    }
}

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
    models: BTreeMap<String, Arc<ServedModel>>,
    sessions: SessionTable<Session>,
    /// The bound on one session's key upload in force (configured, or what the models need).
    max_key_bytes: u64,
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
            tracing::info!(
                "serving model {:?} ({}): preset {}, input level {}, {} input ciphertexts, {} Galois keys, compiled in {:.1}s",
                m.name,
                m.packing,
                sm.info.preset,
                sm.info.input_level,
                sm.info.input_layout.num_cts(),
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
        let max_key_bytes = Self::key_bound(cfg, &served);
        for mut sm in served {
            sm.info.max_key_bytes = max_key_bytes;
            sm.he.set_plaintext_cache_budget(share);
            let name = sm.info.name.clone();
            anyhow::ensure!(
                models.insert(name.clone(), Arc::new(sm)).is_none(),
                "model name {name:?} is configured twice"
            );
        }
        let ttl = Duration::from_secs(cfg.session_ttl_s);
        Ok(Self {
            running: Arc::new(Semaphore::new(cfg.max_concurrent_inferences.max(1))),
            sessions: SessionTable::new(cfg.max_sessions, cfg.max_sessions_per_client, ttl),
            max_key_bytes,
            uploads: Arc::new(Semaphore::new(
                cfg.max_key_uploads.min(Semaphore::MAX_PERMITS),
            )),
            client_uploads: PerClient::new(
                "key uploads",
                "max_key_uploads_per_client",
                cfg.max_key_uploads_per_client,
            ),
            cfg: cfg.clone(),
            models,
            timeout,
        })
    }

    /// The `max_key_bytes` in force: the operator's value, else what the models need; logged.
    fn key_bound(cfg: &InferenceConfig, served: &[ServedModel]) -> u64 {
        let need = default_max_key_bytes(served.iter().map(|m| m.key_bytes));
        for m in served {
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
                if let Some(m) = served.iter().find(|m| m.key_bytes > set) {
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

    /// The served models by name.
    pub fn models(&self) -> &BTreeMap<String, Arc<ServedModel>> {
        &self.models
    }

    /// Number of open (unexpired) sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.counts().0
    }

    /// The bound on one session's key upload in force.
    pub fn max_key_bytes(&self) -> u64 {
        self.max_key_bytes
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
            InferRequest::ListModels => {
                Ok(InferReply::Models(self.models.keys().cloned().collect()))
            }
            InferRequest::ModelInfo { model } => self
                .model(&model)
                .map(|m| InferReply::ModelInfo(Box::new(m.info.clone()))),
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

    fn model(&self, name: &str) -> Result<&Arc<ServedModel>, Refusal> {
        self.models.get(name).ok_or_else(|| {
            Refusal(
                ErrorCode::NotFound,
                format!(
                    "no model {name:?} (served: {})",
                    self.models.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// Checks the announced upload, streams and validates the keys, installs the session.
    async fn open_session<C: Channel>(
        &self,
        ch: &mut C,
        owner: &str,
        model: &str,
        key_lens: &[u64],
        pk_len: u64,
    ) -> Result<Result<InferReply, Refusal>> {
        let m = match self.model(model) {
            Ok(m) => m.clone(),
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
        // Every announced byte is read even when an object fails validation, so that the
        // stream stays in sync and the refusal can be replied.
        let params = m.he.params().clone();
        let mut relin = None;
        let mut galois = GaloisKeys::default();
        let mut problem: Option<String> = None;
        for (i, &len) in key_lens.iter().enumerate() {
            let bytes = tokio::time::timeout(self.timeout, recv_object(ch, len))
                .await
                .map_err(|_| anyhow!("key upload of {owner} stalled"))??;
            if problem.is_some() {
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
            match decoded {
                Ok((Some(k), _)) => relin = Some(k),
                Ok((_, Some(g))) => {
                    if let Some(e) = g.elements().find(|e| !m.needed.contains(e)) {
                        problem = Some(format!(
                            "key object {i}: Galois element {e} is not used by model {model:?}"
                        ));
                    } else if let Some(e) = g.elements().find(|&e| galois.contains(e)) {
                        problem =
                            Some(format!("key object {i}: Galois element {e} was sent twice"));
                    }
                    galois.extend(g);
                }
                Ok(_) => unreachable!("one of the two keys is decoded"),
                Err(e) => {
                    let what = if i == 0 {
                        "relinearization key"
                    } else {
                        "Galois key"
                    };
                    problem = Some(format!("key object {i} ({what}): {e}"));
                }
            }
        }
        let pk = self.recv_public_key(ch, owner, &m, pk_len).await?;
        let pk = match (problem, pk) {
            (Some(p), _) | (None, Err(p)) => return Ok(Err(Refusal(ErrorCode::BadRequest, p))),
            (None, Ok(pk)) => pk,
        };
        if let Some(missing) = m.needed.iter().find(|&&e| !galois.contains(e)) {
            return Ok(Err(Refusal(
                ErrorCode::BadRequest,
                format!(
                    "no Galois key for element {missing}: the model needs the {} steps of its model info",
                    m.info.rotation_steps.len()
                ),
            )));
        }
        let Some(relin) = relin else {
            return Ok(Err(Refusal(
                ErrorCode::BadRequest,
                "no relinearization key".into(),
            )));
        };
        let eval = Evaluator::new(&params)
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
            .map_err(|_| anyhow!("public key upload of {owner} stalled"))??;
        let params = m.he.params().clone();
        let want = m.he.output_level();
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

    fn check_upload(&self, m: &ServedModel, key_lens: &[u64], pk_len: u64) -> Result<(), Refusal> {
        let pk_limit = max_public_key_bytes(m.he.params(), m.he.output_level());
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
        if total > self.max_key_bytes {
            return Err(Refusal(
                ErrorCode::Limit,
                format!(
                    "key upload of {total} bytes exceeds max_key_bytes = {}",
                    self.max_key_bytes
                ),
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
        let params = m.he.params().clone();
        let layout = m.he.input_layout().clone();
        let want = layout.num_cts();
        if ct_lens.len() != want || want > MAX_REQUEST_CTS {
            return Ok(Err(Refusal(
                ErrorCode::BadRequest,
                format!(
                    "{} input ciphertexts announced, model {:?} takes {want}",
                    ct_lens.len(),
                    m.info.name
                ),
            )));
        }
        let limit = max_ciphertext_bytes(&params);
        if let Some((i, &l)) = ct_lens
            .iter()
            .enumerate()
            .find(|(_, &l)| l > limit || l == 0)
        {
            return Ok(Err(Refusal(
                ErrorCode::Limit,
                format!("input ciphertext {i}: {l} bytes, a ciphertext has 1 to {limit}"),
            )));
        }
        // The permit first: only running requests buffer their inputs.
        let permit = self.running.clone().acquire_owned().await?;
        ch.send(&Reply::Inference(InferReply::Ready)).await?;
        ch.flush().await?;
        let mut raw = Vec::with_capacity(want);
        for &len in ct_lens {
            let b = tokio::time::timeout(self.timeout, recv_object(ch, len))
                .await
                .map_err(|_| anyhow!("input upload of {owner} stalled"))??;
            raw.push(b);
        }
        let level = m.info.input_level as usize;
        let p = params.clone();
        let cts = tokio::task::spawn_blocking(move || -> Result<Vec<Ciphertext>, String> {
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
        .await?;
        let cts = match cts {
            Ok(c) => c,
            Err(e) => return Ok(Err(Refusal(ErrorCode::BadRequest, e))),
        };
        let m2 = m.clone();
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            m2.evaluate(&eval, &pk, PackedTensor { cts, layout })
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
        let cache = m.he.plaintext_cache_stats();
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

    fn close(&self, owner: &str, id: EntryId) -> Result<InferReply, Refusal> {
        self.sessions
            .close(owner, id)
            .map_err(|(code, message)| Refusal(code, message))?;
        tracing::info!("session {id} of {owner} closed");
        Ok(InferReply::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::{encrypt_input, params_for, InferError};
    use crate::proto::{decode, ClientRequest, MAX_CONTROL_FRAME};
    use ckks::KeyGenerator;
    use ndarray::Array4;
    use rand::{Rng, SeedableRng};
    use stgcn::{spatial_partition, Architecture, InputNorm, StGcn, StGcnConfig};

    /// Two blocks of widths 1, 2, V = 5, T = 4, C = 3, all activations pruned: depth 6,
    /// `N14_L7`.
    fn tiny() -> (ServedModel, InferenceConfig) {
        let (c, t, v) = (3, 4, 5);
        let edges: Vec<(usize, usize)> = (0..v - 1).map(|i| (i, i + 1)).collect();
        let a = spatial_partition(v, &edges, 1).unwrap();
        let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 64, c, t, &a, 3);
        // Two blocks: depth 2·2 + 2 (dense layer and logit mask) = 6 fits N = 2^14.
        cfg.architecture = None;
        cfg.blocks.truncate(2);
        cfg.activation_mask.truncate(2);
        let all: Vec<usize> = (0..v).collect();
        for b in 0..2 {
            for s in 0..2 {
                cfg.prune(b, s, &all).unwrap();
            }
        }
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        cfg.input_norm = Some(InputNorm {
            mean: vec![(0..v).map(|_| rng.gen_range(-0.5..0.5)).collect(); c],
            std: vec![(0..v).map(|_| rng.gen_range(0.5..2.0)).collect(); c],
        });
        let model = StGcn::new(cfg, 3).unwrap();
        let limits = InferenceConfig {
            models: vec![],
            max_key_bytes: Some(1 << 30),
            max_key_uploads: 2,
            max_key_uploads_per_client: 1,
            max_sessions_per_client: 1,
            max_sessions: 2,
            session_ttl_s: 60,
            max_concurrent_inferences: 1,
            plaintext_cache_mib: 1,
            lockstep_mib: 64,
            flood_bits: 0,
            eval_error_bound: hegcn::DEFAULT_EVAL_ERROR_BOUND,
        };
        let sc = ServedModelConfig {
            name: "tiny".into(),
            path: "unused.json".into(),
            packing: "ama".into(),
            preset: None,
        };
        (ServedModel::new(&sc, &model, &limits).unwrap(), limits)
    }

    #[test]
    fn client_packing_equals_hegcn_input_encryption() {
        let (m, _) = tiny();
        assert_eq!(m.info.preset, "N14_L7_S40_128BIT");
        assert_eq!((m.info.input_level, m.info.output_level), (6, 0));
        assert!(m.galois_key_count() > 0);
        let params = params_for(&m.info).unwrap();
        let sk = KeyGenerator::new(&params).secret_key();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let x = Array4::from_shape_fn((3, 4, 5, 1), |_| rng.gen_range(-1.0..1.0));
        let bytes = encrypt_input(&m.info, &params, &sk, x.view()).unwrap();
        let cts = bytes
            .iter()
            .map(|b| {
                let c = Ciphertext::from_bytes(b, &params).unwrap();
                assert!(c.is_seeded(), "symmetric encryption keeps the seeded form");
                c
            })
            .collect();
        let packed = PackedTensor {
            cts,
            layout: m.he.input_layout().clone(),
        };
        let dec = m.he.decrypt_tensor(&sk, &packed).unwrap();
        let (scale, shift) = m.info.input_affine.clone().unwrap();
        let err = dec
            .indexed_iter()
            .map(|((c, t, v, p), &d)| {
                let want = scale[c * 5 + v] * x[[c, t, v, p]] + shift[c * 5 + v];
                (d - want).abs()
            })
            .fold(0.0, f64::max);
        assert!(err < 1e-6, "packing error {err}");
        // A sample of the wrong shape is refused.
        let y = Array4::zeros((3, 4, 6, 1));
        assert!(matches!(
            encrypt_input(&m.info, &params, &sk, y.view()),
            Err(InferError::Shape {
                what: "joints V",
                expected: 5,
                found: 6
            })
        ));
    }

    #[test]
    fn clients_refuse_announced_parameters_that_do_not_match_their_preset() {
        let (m, _) = tiny();
        let mut i = m.info.clone();
        i.preset = "INSECURE_N10_L4_S40_TEST_ONLY".into();
        assert!(matches!(
            params_for(&i),
            Err(InferError::UnknownPreset { .. })
        ));
        let mut i = m.info.clone();
        i.q_primes[2] += 2;
        assert!(matches!(params_for(&i), Err(InferError::BadInfo { .. })));
        let mut i = m.info.clone();
        i.input_layout.slots *= 2;
        assert!(matches!(
            params_for(&i),
            Err(InferError::BadInfo {
                what: "layout slots",
                ..
            })
        ));
        let mut i = m.info.clone();
        i.input_layout.block = 0;
        assert!(params_for(&i).is_err());
        let mut i = m.info.clone();
        i.input_layout.frames = 1 << 20;
        assert!(params_for(&i).is_err());
        let mut i = m.info.clone();
        i.input_affine = Some((vec![1.0; 3], vec![0.0; 3]));
        assert!(params_for(&i).is_err());
    }

    async fn ask<C: Channel>(ch: &mut C, r: InferRequest) -> Reply {
        ch.send(&ClientRequest::Inference(r)).await.unwrap();
        ch.flush().await.unwrap();
        ch.recv::<Reply>(MAX_CONTROL_FRAME).await.unwrap()
    }

    fn refusal(r: Reply) -> (ErrorCode, String) {
        match r {
            Reply::Error { code, message } => (code, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// The session's Galois keys must be exactly the model's: extra or missing elements are
    /// refused after the announced bytes are read, and the connection stays usable. A complete
    /// upload opens a session, which expires once idle longer than `session_ttl_s` (0 here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn galois_keys_must_match_the_model_and_idle_sessions_expire() {
        let (m, mut limits) = tiny();
        limits.session_ttl_s = 0;
        let params = m.he.params().clone();
        let steps = m.info.rotation_steps.clone();
        let svc = Arc::new(
            InferenceService::with_models(&limits, vec![m], Duration::from_secs(30)).unwrap(),
        );
        let (mut client, mut server) = mpc::net::mem_pair();
        let s2 = svc.clone();
        let srv = tokio::spawn(async move {
            loop {
                let Ok(f) = server.recv_frame(MAX_CONTROL_FRAME).await else {
                    return;
                };
                match decode::<ClientRequest>(&f, MAX_CONTROL_FRAME).unwrap() {
                    ClientRequest::Inference(r) => {
                        s2.handle(&mut server, "alice", r).await.unwrap()
                    }
                    other => panic!("{other:?}"),
                }
            }
        });
        let mut kg = KeyGenerator::new(&params);
        let sk = kg.secret_key();
        let relin = kg.relin_key(&sk).unwrap().to_bytes(&params).unwrap();
        // A step the model does not rotate by.
        let unused = (1..params.slots() as i64)
            .find(|s| !steps.contains(s))
            .unwrap();
        let extra = kg
            .galois_keys(&sk, &[unused], false)
            .unwrap()
            .to_bytes(&params)
            .unwrap();
        // The public key at the output level (level 0), and one at the top level (refused).
        let pk_top = kg.public_key(&sk).unwrap();
        let pk0 = pk_top.at_level(0).unwrap().to_bytes().unwrap();
        let pk_top = pk_top.to_bytes().unwrap();
        for (objects, pk, want) in [
            (vec![relin.clone(), extra], &pk0, "is not used by model"),
            (vec![relin.clone()], &pk0, "no Galois key for element"),
            (vec![extra_garbage()], &pk0, "relinearization key"),
            (vec![relin.clone()], &extra_garbage(), "public key: "),
        ] {
            let key_lens = objects.iter().map(|o| o.len() as u64).collect();
            let r = ask(
                &mut client,
                InferRequest::OpenSession {
                    model: "tiny".into(),
                    key_lens,
                    public_key_len: pk.len() as u64,
                },
            )
            .await;
            assert_eq!(r, Reply::Inference(InferReply::Ready));
            for o in &objects {
                send_object(&mut client, o).await.unwrap();
            }
            send_object(&mut client, pk).await.unwrap();
            client.flush().await.unwrap();
            let (code, msg) = refusal(client.recv::<Reply>(MAX_CONTROL_FRAME).await.unwrap());
            assert_eq!(code, ErrorCode::BadRequest, "{msg}");
            assert!(msg.contains(want), "{msg:?} lacks {want:?}");
        }
        // Announcements the model cannot take are refused before any byte moves.
        let (code, msg) = refusal(
            ask(
                &mut client,
                InferRequest::OpenSession {
                    model: "tiny".into(),
                    key_lens: vec![10; steps.len() + 5],
                    public_key_len: 10,
                },
            )
            .await,
        );
        assert_eq!(code, ErrorCode::BadRequest, "{msg}");
        let (code, msg) = refusal(
            ask(
                &mut client,
                InferRequest::OpenSession {
                    model: "tiny".into(),
                    key_lens: vec![10],
                    public_key_len: pk_top.len() as u64,
                },
            )
            .await,
        );
        // A key above the output level is larger than the limit (one limb at N = 2^14).
        assert_eq!(code, ErrorCode::BadRequest, "{msg}");
        let want = format!(
            "public key of {} bytes announced, one takes 1 to 135168",
            pk_top.len()
        );
        assert!(msg.contains(&want), "{msg}");
        let (code, _) = refusal(
            ask(
                &mut client,
                InferRequest::Infer {
                    session: EntryId::random(),
                    ct_lens: vec![1],
                },
            )
            .await,
        );
        assert_eq!(code, ErrorCode::NotFound);
        assert_eq!(svc.session_count(), 0);
        // The complete, correct key set opens a session; with a zero TTL it is gone right after.
        let keys = crate::infer::generate_keys(&params, Arc::new(sk), &steps, 0).unwrap();
        let key_lens = keys.lens.clone();
        let mut rx = keys.rx;
        let r = ask(
            &mut client,
            InferRequest::OpenSession {
                model: "tiny".into(),
                key_lens: key_lens.clone(),
                public_key_len: keys.public_key.len() as u64,
            },
        )
        .await;
        assert_eq!(r, Reply::Inference(InferReply::Ready));
        for _ in &key_lens {
            let k = rx.recv().await.unwrap().unwrap();
            send_object(&mut client, &k).await.unwrap();
        }
        send_object(&mut client, &keys.public_key).await.unwrap();
        client.flush().await.unwrap();
        let session = match client.recv::<Reply>(MAX_CONTROL_FRAME).await.unwrap() {
            Reply::Inference(InferReply::SessionOpened { session, ttl_s: 0 }) => session,
            other => panic!("{other:?}"),
        };
        std::thread::sleep(Duration::from_millis(5));
        let (code, msg) = refusal(
            ask(
                &mut client,
                InferRequest::Infer {
                    session,
                    ct_lens: vec![1; 5],
                },
            )
            .await,
        );
        assert_eq!(code, ErrorCode::NotFound, "{msg}");
        assert!(msg.contains("closed or expired"), "{msg}");
        let r = ask(&mut client, InferRequest::ListModels).await;
        assert_eq!(r, Reply::Inference(InferReply::Models(vec!["tiny".into()])));
        drop(client);
        srv.await.unwrap();
    }

    /// `plaintext_cache_mib` bounds the encoded weights of all served models together: each
    /// of two models gets half, a forward pass stores no more than that, and repeats reuse it.
    #[test]
    fn plaintext_cache_budget_is_split_between_models_and_respected() {
        let (a, mut limits) = tiny();
        let (mut b, _) = tiny();
        b.info.name = "tiny2".into();
        limits.plaintext_cache_mib = 8;
        let svc =
            InferenceService::with_models(&limits, vec![a, b], Duration::from_secs(5)).unwrap();
        let share = 4 << 20;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let x = Array4::from_shape_fn((3, 4, 5, 1), |_| rng.gen_range(-1.0..1.0));
        for m in svc.models().values() {
            let params = m.he.params().clone();
            let mut kg = KeyGenerator::new(&params);
            let sk = kg.secret_key();
            let pk = kg.public_key(&sk).unwrap();
            let eval = Evaluator::new(&params)
                .with_relin_key(kg.relin_key(&sk).unwrap())
                .with_galois_keys(kg.galois_keys(&sk, &m.info.rotation_steps, false).unwrap());
            let mut first = None;
            for _ in 0..2 {
                let ct = m.he.encrypt_input(&pk, x.view()).unwrap();
                let (l, _) = m.he.forward(&eval, &ct).unwrap();
                let l = m.he.decrypt_logits(&sk, &l).unwrap();
                let s = m.he.plaintext_cache_stats();
                assert_eq!(s.budget_bytes, share, "{s:?}");
                assert!(s.bytes <= share && s.entries > 0, "{s:?}");
                assert!(s.misses > s.entries as u64, "the bound is binding: {s:?}");
                let f = *first.get_or_insert(s.entries);
                assert_eq!(s.entries, f, "nothing is added once full");
                assert!(l.iter().all(|v| v.is_finite()));
            }
        }
    }

    /// A server reply is masked and sanitized with the session's public key: it decrypts to the
    /// logits within the announced flood (`flood_sd`, default settings), every other slot holds
    /// flood noise of that spread, and two replies to the same ciphertexts differ in `c1`.
    #[test]
    fn server_replies_are_sanitized_with_the_session_public_key() {
        let (m, _) = tiny();
        let params = m.he.params().clone();
        let mut kg = KeyGenerator::new(&params);
        let sk = kg.secret_key();
        let pk = kg.public_key(&sk).unwrap();
        let pk_out = pk.at_level(m.info.output_level as usize).unwrap();
        let eval = Evaluator::new(&params)
            .with_relin_key(kg.relin_key(&sk).unwrap())
            .with_galois_keys(kg.galois_keys(&sk, &m.info.rotation_steps, false).unwrap());
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let x = Array4::from_shape_fn((3, 4, 5, 1), |_| rng.gen_range(-1.0..1.0));
        let ct = m.he.encrypt_input(&pk, x.view()).unwrap();
        let (plain, _) = m.he.forward(&eval, &ct).unwrap();
        let want = m.he.decrypt_logits(&sk, &plain).unwrap();
        let a = m.evaluate(&eval, &pk_out, ct.clone()).unwrap();
        let b = m.evaluate(&eval, &pk_out, ct).unwrap();
        let load = |r: &Evaluated| Ciphertext::from_bytes(&r.bytes[0], &params).unwrap();
        let (ca, cb) = (load(&a), load(&b));
        assert_ne!(ca.parts().1, cb.parts().1, "c1 must be fresh per reply");
        assert_ne!(ca.parts().1, plain.cts[0].parts().1);
        let sd = m.info.flood_sd;
        assert!(sd > 0.0 && sd < 0.05, "flood sd {sd}");
        let positions: Vec<(u32, u32)> = a
            .positions
            .iter()
            .map(|&(c, s)| (c as u32, s as u32))
            .collect();
        let got = crate::infer::decrypt_logits(&params, &sk, &a.bytes, &positions).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 8.0 * sd, "{g} vs {w} (flood sd {sd})");
        }
        let slots = ckks::Encoder::new(&params).decode(&sk.decrypt(&ca).unwrap());
        let rest: Vec<f64> = (0..slots.len())
            .filter(|&s| !a.positions.contains(&(0, s)))
            .map(|s| slots[s])
            .collect();
        let rms = (rest.iter().map(|v| v * v).sum::<f64>() / rest.len() as f64).sqrt();
        assert!(
            (0.8..1.2).contains(&(rms / sd)),
            "rms {rms} vs flood sd {sd}"
        );
        assert!(rest.iter().all(|v| v.abs() <= 8.0 * sd));
    }

    fn extra_garbage() -> Vec<u8> {
        vec![0xAB; 64]
    }
}
