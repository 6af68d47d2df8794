//! Deploying a 2PC-trained ST-GCN to the encrypted-inference service: the owner authorizes the
//! deployment at each party, the non-serving party sends its share to the serving party over
//! the peer link, and the serving party reconstructs the model, compiles it for CKKS and serves
//! it without a restart (and again after one: [`persist`]).
//!
//! ```text
//! owner → P0, P1   Deploy(spec)              each records the authorization (grants), replies
//!                                            DeployAuthorized; a serving party without an
//!                                            [inference] section, or whose name is taken, refuses
//! owner → S        DeployStart { deploy }    at each serving party S (spec.serve: P0, P1, both)
//! S → other        PeerRequest::DeployShare(spec)
//! other → S        PeerReply::DeployShare { rows, cols, frac_bits }, the words
//!                                            only under the owner's authorization of exactly
//!                                            spec at `other`, naming S as serving, once
//! S → owner        Deployed(info)            S reconstructed, decoded (every value finite, the
//!                                            model loads), compiled, registered, persisted
//! ```
//!
//! Security (semi-honest, non-colluding parties; curious clients): a party sends its share only
//! on the owner's own authorization at that party ([`grants`]), never on the peer's word alone:
//! a curious P0 cannot forge a deployment to learn P1's share, replay the peer message to get
//! it again, or use an authorization for another name, model, packing or serving choice. A
//! client can deploy only its own committed ST-GCN models. What deploying reveals: the serving
//! party learns the model's weights in the clear (serving a plaintext model under CKKS needs
//! them) and keeps them in its data directory; the other party and the owner learn nothing new;
//! clients of the service learn what any served model announces
//! ([`crate::infer::msg::ModelInfo`]) and its logits up to the flood.

mod grants;
mod persist;

pub(crate) use grants::{Grants, GRANT_TTL};

use super::config::ServedModelConfig;
use super::infer::{InferenceService, ServedModel, PACKINGS};
use super::{Result, Server, ServerError};
use crate::proto::{
    DeploySpec, DeployedInfo, EntryId, ModelMeta, PeerReply, PeerRequest, Reply, MAX_CONTROL_FRAME,
};
use crate::store::{EntryKind, Manifest, State};
use mpc::net::{Channel, ChannelExt};
use mpc::Share;
use std::sync::Arc;

impl Server {
    /// The inference service, or the refusal of a party that serves no models.
    fn service(&self) -> Result<&Arc<InferenceService>> {
        self.infer.as_ref().ok_or_else(|| {
            ServerError::BadRequest(format!(
                "P{} has no [inference] section: it cannot serve a deployed model",
                self.cfg.role
            ))
        })
    }

    /// `owner`'s committed ST-GCN model `job` and its configuration JSON.
    fn deployable(&self, owner: &str, job: EntryId) -> Result<(Manifest, String)> {
        let m = match self.store.get(&job) {
            Ok(m) if m.kind == EntryKind::Model && m.state == State::Committed => m,
            _ => return Err(ServerError::NotFound(format!("no model {job}"))),
        };
        if m.owner != owner {
            tracing::warn!(
                "refused deployment by {owner}: model {job} is {}'s",
                m.owner
            );
            return Err(ServerError::Forbidden(format!("model {job} is not yours")));
        }
        match &m.model {
            Some(ModelMeta::Stgcn { config_json }) if m.cols == 1 => {
                let json = config_json.clone();
                Ok((m, json))
            }
            _ => Err(ServerError::BadRequest(format!(
                "model {job} is not a trained ST-GCN ({} x {} weights): only ST-GCN models can be \
                 served",
                m.rows, m.cols
            ))),
        }
    }

    /// `ClientRequest::Deploy`: checks and records `owner`'s authorization of `spec` here.
    pub(super) fn authorize_deploy(&self, owner: &str, spec: DeploySpec) -> Result<Reply> {
        persist::check_name(&spec.name).map_err(ServerError::BadRequest)?;
        if let Some(p) = spec.packing.as_deref().filter(|p| !PACKINGS.contains(p)) {
            return Err(ServerError::BadRequest(format!(
                "packing {p:?}: {}",
                PACKINGS.join(" or ")
            )));
        }
        self.deployable(owner, spec.job)?;
        if spec.serve.serves(self.cfg.role) {
            let svc = self.service()?;
            svc.check_free(&spec.name)
                .map_err(ServerError::BadRequest)?;
        }
        let deploy = spec.deploy;
        tracing::info!(
            "{owner} authorized deployment {deploy}: model {} as {:?}, served by {}",
            spec.job,
            spec.name,
            spec.serve
        );
        self.grants
            .authorize(owner, spec)
            .map_err(ServerError::BadRequest)?;
        Ok(Reply::DeployAuthorized { deploy })
    }

    /// `ClientRequest::DeployCancel`: withdraws `owner`'s authorization `deploy` here.
    pub(super) fn cancel_deploy(&self, owner: &str, deploy: EntryId) -> Result<Reply> {
        if self.grants.cancel(owner, deploy) {
            tracing::info!("{owner} withdrew deployment {deploy}");
            Ok(Reply::Done)
        } else {
            Err(ServerError::NotFound(format!(
                "no open authorization of deployment {deploy} by you"
            )))
        }
    }

    /// `ClientRequest::DeployStart`: fetches the peer's share, reconstructs, compiles, persists
    /// and registers the model under the authorized name.
    pub(super) async fn start_deploy(&self, owner: &str, deploy: EntryId) -> Result<Reply> {
        let svc = self.service()?.clone();
        let spec = self
            .grants
            .take_start(owner, deploy)
            .map_err(ServerError::Forbidden)?;
        let (m, json) = self.deployable(owner, spec.job)?;
        svc.check_free(&spec.name)
            .map_err(ServerError::BadRequest)?;
        let theirs = self.fetch_peer_share(&spec, &m).await?;
        let mine = self.store.load_share(&m)?;
        let model = reconstruct(&m, &json, &mine, &theirs)?;
        let packing = spec.packing.clone().unwrap_or_else(|| PACKINGS[0].into());
        let sm = compile(&svc, &spec.name, &packing, model.clone()).await?;
        let rec = persist::Record {
            name: spec.name.clone(),
            job: spec.job,
            owner: owner.into(),
            deploy,
            packing: packing.clone(),
            created: crate::store::now(),
        };
        persist::save(&self.cfg.data_dir, &rec, &model).map_err(ServerError::Internal)?;
        let sm = match svc.register(sm) {
            Ok(sm) => sm,
            Err(e) => {
                let _ = persist::remove(&self.cfg.data_dir, &spec.name);
                return Err(ServerError::BadRequest(e.to_string()));
            }
        };
        tracing::info!(
            "deployment {deploy}: serving model {} of {owner} as {:?}",
            spec.job,
            spec.name
        );
        Ok(Reply::Deployed(DeployedInfo {
            name: spec.name,
            role: self.cfg.role,
            preset: sm.info().preset.clone(),
            packing,
            key_bytes: sm.key_bytes(),
        }))
    }

    /// Asks the peer for its share of `m` under `spec`; checks the announced shape against
    /// this party's own share before any word is received.
    async fn fetch_peer_share(&self, spec: &DeploySpec, m: &Manifest) -> Result<Share> {
        let pl = self.current_peer().await?;
        let mut out = pl.out.lock().await;
        let r = async {
            out.send(&PeerRequest::DeployShare(spec.clone())).await?;
            out.flush().await?;
            match out.recv::<PeerReply>(MAX_CONTROL_FRAME).await? {
                PeerReply::DeployShare {
                    rows,
                    cols,
                    frac_bits,
                } if (rows, cols, frac_bits) == (m.rows, m.cols, m.frac_bits) => {
                    let w = out.recv_ring(rows as usize, cols as usize).await?;
                    Ok(Ok(Share::from_ring(w)))
                }
                PeerReply::Refused(why) => {
                    Ok(Err(format!("the peer refused to send its share: {why}")))
                }
                other => Err(mpc::MpcError::Malformed {
                    reason: format!(
                        "the peer answered {other:?} for a share of {} x {} at {} fractional bits",
                        m.rows,
                        m.cols,
                        m.frac_bits.get()
                    ),
                }),
            }
        }
        .await;
        drop(out);
        match r {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(why)) => Err(ServerError::Peer(why)),
            Err(e) => {
                // Out of step (or failed): the link is dropped and re-established.
                self.drop_peer(&pl).await;
                Err(ServerError::PeerLink(e))
            }
        }
    }

    /// `PeerRequest::DeployShare` on the peer channel `inc`: sends this party's share of the
    /// model (reply, then the words) if the owner authorized exactly `spec` here, else a
    /// refusal. An `Err` means the peer link failed.
    pub(super) async fn release_share<C: Channel>(
        &self,
        inc: &mut C,
        spec: DeploySpec,
    ) -> Result<()> {
        let checked = self.grants.take_release(&spec).and_then(|owner| {
            let (m, _) = self.deployable(&owner, spec.job).map_err(|e| e.message())?;
            let s = self.store.load_share(&m).map_err(|e| e.to_string())?;
            Ok((owner, m, s))
        });
        let (owner, m, s) = match checked {
            Ok(x) => x,
            Err(why) => {
                tracing::warn!("refused the peer's request for a deployment share: {why}");
                inc.send(&PeerReply::Refused(why)).await?;
                return Ok(inc.flush().await?);
            }
        };
        inc.send(&PeerReply::DeployShare {
            rows: m.rows,
            cols: m.cols,
            frac_bits: m.frac_bits,
        })
        .await?;
        inc.send_ring(&s.view()).await?;
        inc.flush().await?;
        tracing::info!(
            "deployment {}: sent this party's share of model {} of {owner} to the peer, which \
             serves it as {:?}",
            spec.deploy,
            spec.job,
            spec.name
        );
        Ok(())
    }

    /// At start: serves the models deployed to this party before (`data_dir/deployed`).
    pub(super) fn reload_deployed(&self) {
        let loaded = persist::load_all(&self.cfg.data_dir);
        if loaded.is_empty() {
            return;
        }
        let Some(svc) = &self.infer else {
            tracing::warn!(
                "{} deployed models in {} are not served: no [inference] section",
                loaded.len(),
                self.cfg.data_dir.join("deployed").display()
            );
            return;
        };
        for r in loaded {
            let served = r.map_err(|e| e.to_string()).and_then(|(rec, model)| {
                let cfg = served_config(&rec.name, &rec.packing);
                let sm = ServedModel::new(&cfg, &model, svc.config()).map_err(|e| e.to_string())?;
                svc.register(sm).map_err(|e| e.to_string())?;
                Ok(rec)
            });
            match served {
                Ok(rec) => tracing::info!(
                    "serving deployed model {:?} (model {} of {}) again",
                    rec.name,
                    rec.job,
                    rec.owner
                ),
                Err(e) => tracing::warn!("a deployed model is not served: {e}"),
            }
        }
    }
}

/// The settings a deployed model is compiled under: the named packing, the smallest preset
/// that holds it (as for a configured model without `preset`).
fn served_config(name: &str, packing: &str) -> ServedModelConfig {
    ServedModelConfig {
        name: name.into(),
        path: Default::default(),
        packing: packing.into(),
        layout: None,
        preset: None,
    }
}

/// The model from both shares of entry `m`: reconstructed, decoded at the entry's fractional
/// bits and loaded under its configuration (every value finite, the length right).
fn reconstruct(m: &Manifest, json: &str, mine: &Share, theirs: &Share) -> Result<stgcn::StGcn> {
    if mine.dim() != theirs.dim() {
        return Err(ServerError::Peer(format!(
            "the peer's share is {:?}, this party's {:?}",
            theirs.dim(),
            mine.dim()
        )));
    }
    let fp = mpc::FixedPoint::new(m.frac_bits);
    let w = fp.decode_matrix(&mpc::share::reconstruct(mine, theirs).view());
    let column: Vec<f64> = w.iter().copied().collect();
    crate::model_file::stgcn_from_column(json, &column).map_err(|e| {
        ServerError::BadRequest(format!("model {}: {}", m.id, super::error::chain(&e)))
    })
}

/// Folds, plans and compiles `model` for the service (on the blocking pool).
async fn compile(
    svc: &InferenceService,
    name: &str,
    packing: &str,
    model: stgcn::StGcn,
) -> Result<ServedModel> {
    let cfg = served_config(name, packing);
    let limits = svc.config().clone();
    let sm = tokio::task::spawn_blocking(move || ServedModel::new(&cfg, &model, &limits))
        .await
        .map_err(|e| ServerError::Internal(format!("compiling the model: {e}")))??;
    Ok(sm)
}
