//! The model owner's side of deploying a 2PC-trained ST-GCN to the parties' inference service
//! ([`deploy`]) and of revealing a trained model in its file format ([`reveal`]); the server
//! side is `server::deploy` and the reveal in `server::models`.
//!
//! Security: the owner authorizes a deployment at each party over its own authenticated
//! connection (a party never releases its share on the other party's word), with a fresh
//! random deployment id binding the model entry, the served name, the serving party and the
//! packing; each authorization is used once. Deploying reveals the weights to the serving
//! party (P0, P1 or both) and nothing to the owner beyond the public compile results
//! ([`DeployedInfo`]). Revealing sends each party's share to the owner alone, who
//! reconstructs (semi-honest, non-colluding parties); a linear model or MLP trained on
//! standardized data is revealed only with its standardization folded in (the `Fold` job), so
//! the owner receives a model for raw inputs and never the standardized weights.

use crate::client::{refused, Client, ClientError, Result};
use crate::linear_model::LinearModel;
use crate::proto::{ClientRequest, DeploySpec, DeployedInfo, EntryId, ModelMeta, Reply, ServeAt};
use ndarray::Array2;

/// A revealed model: a linear model or MLP with its description, the bare weights of one
/// trained before descriptions were stored, or an ST-GCN.
#[derive(Debug)]
pub enum Revealed {
    /// A linear model or MLP with what it is (`linear_model::LinearModel::write` writes it)
    /// and its stored column (what the CSV form holds).
    Linear(Box<crate::linear_model::LinearModel>, Array2<f64>),
    /// The stored weight matrix of an entry without a description (linear models; an MLP's
    /// layers flattened into one column).
    Weights(Array2<f64>),
    /// An ST-GCN, ready for `model_file::write_files`.
    Stgcn(Box<stgcn::StGcn>),
}

fn check_roles(p0: &Client, p1: &Client) -> Result<()> {
    for (c, want) in [(p0, 0u8), (p1, 1)] {
        if c.role() != want {
            return Err(ClientError::WrongRole {
                addr: c.addr(),
                got: c.role(),
                want,
            });
        }
    }
    Ok(())
}

/// The weights of the model trained by `job` with its standardization folded in, from the
/// `Fold` job on the parties (each sends its shares to the owner only).
async fn fold(p0: &mut Client, p1: &mut Client, job: EntryId) -> Result<Array2<f64>> {
    let (_, result) = p0
        .run_for_result(p1, &crate::client::fold_spec(job))
        .await?;
    match result {
        Some(r) if r.kind == crate::client::ResultKind::Folded && r.values.ncols() == 1 => {
            Ok(r.values)
        }
        other => Err(ClientError::Unexpected {
            got: format!("the fold of model {job} returned {other:?}"),
        }),
    }
}

/// Deploys the ST-GCN trained by `job` as `name`, served by `serve` with `packing` (`None`:
/// `ama`): authorizes it at P0 and P1 under a fresh deployment id (the serving parties first,
/// so a party that cannot serve refuses before the other is authorized to release its share),
/// then starts it at each serving party, which fetches the other's share, compiles and serves
/// it. If any step fails, the authorizations given are withdrawn (best effort; they expire
/// anyway). Returns what each serving party reports, P0 first.
///
/// # Errors
/// Connection errors, [`ClientError::WrongRole`], [`ClientError::Refused`] (not the owner, not
/// an ST-GCN, no `[inference]` at a serving party, the name is taken, the peer refused).
pub async fn deploy(
    p0: &mut Client,
    p1: &mut Client,
    job: EntryId,
    name: &str,
    serve: ServeAt,
    packing: Option<&str>,
) -> Result<Vec<DeployedInfo>> {
    check_roles(p0, p1)?;
    let spec = DeploySpec {
        deploy: EntryId::random(),
        job,
        name: name.into(),
        serve,
        packing: packing.map(Into::into),
    };
    let mut parties = [p0, p1];
    // Serving parties first (a stable sort keeps P0 before P1).
    let mut order = [0usize, 1];
    order.sort_by_key(|&i| !serve.serves(i as u8));
    let mut authorized = Vec::new();
    let r = async {
        for &i in &order {
            let c = &mut *parties[i];
            match c.request(&ClientRequest::Deploy(spec.clone())).await? {
                Reply::DeployAuthorized { deploy } if deploy == spec.deploy => authorized.push(i),
                other => return Err(refused(other)),
            }
        }
        let mut out = Vec::new();
        for c in parties.iter_mut().filter(|c| serve.serves(c.role())) {
            let start = ClientRequest::DeployStart {
                deploy: spec.deploy,
            };
            match c.request(&start).await? {
                Reply::Deployed(info) => out.push(info),
                other => return Err(refused(other)),
            }
        }
        Ok(out)
    }
    .await;
    if r.is_err() {
        for i in authorized {
            let cancel = ClientRequest::DeployCancel {
                deploy: spec.deploy,
            };
            // A spent or already withdrawn authorization is refused: nothing to undo.
            let _ = parties[i].request(&cancel).await;
        }
    }
    r
}

/// Reveals the model trained by `job` to its owner: each party sends its share (to the owner
/// only) with what the column holds; the owner reconstructs and decodes it. An ST-GCN entry
/// becomes the model (every value finite, the column as long as the configuration's tensors).
///
/// # Errors
/// Connection errors, [`ClientError::Refused`], [`ClientError::WrongRole`],
/// [`ClientError::ModelMismatch`] (shares or metadata that differ), [`ClientError::ModelFile`].
pub async fn reveal(p0: &mut Client, p1: &mut Client, job: EntryId) -> Result<Revealed> {
    check_roles(p0, p1)?;
    let a = p0.model_share_meta(job).await?;
    let b = p1.model_share_meta(job).await?;
    let (s0, s1, f0) = (&a.share, &b.share, a.frac_bits);
    let same = (&a.model, &a.standardization) == (&b.model, &b.standardization);
    if s0.dim() != s1.dim() || f0 != b.frac_bits || !same {
        return Err(ClientError::ModelMismatch {
            p0: (s0.dim().0, s0.dim().1, f0.get()),
            p1: (s1.dim().0, s1.dim().1, b.frac_bits.get()),
            expected: "the same shape, fractional bits, model configuration and preprocessing"
                .into(),
        });
    }
    let fp = mpc::FixedPoint::new(f0);
    let w = fp.decode_matrix(&mpc::share::reconstruct(s0, s1).view());
    match a.model {
        None => Ok(Revealed::Weights(w)),
        Some(ModelMeta::Linear(meta)) => match a.standardization {
            None => {
                let m = LinearModel::from_column(job, meta, f0.get(), w.view())?;
                Ok(Revealed::Linear(Box::new(m), w))
            }
            Some(st) => {
                let folded = fold(p0, p1, job).await?;
                let m = LinearModel::folded(job, meta, f0.get(), &st, folded.view())?;
                Ok(Revealed::Linear(Box::new(m), folded))
            }
        },
        Some(ModelMeta::Stgcn { config_json }) => {
            let column: Vec<f64> = w.iter().copied().collect();
            let m = crate::model_file::stgcn_from_column(&config_json, &column)?;
            Ok(Revealed::Stgcn(Box::new(m)))
        }
    }
}
