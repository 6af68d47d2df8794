//! Messages between clients and parties and between the two parties (typed, bincode-encoded,
//! size-limited frames on an [`mpc::net::Channel`]).
//!
//! Every message a party receives from the network is decoded with [`decode`], which refuses
//! frames above the given limit before allocating, refuses trailing bytes and never panics on
//! arbitrary input (property-tested below and fuzzed in `party/fuzz`).
//!
//! # Client connection (TLS 1.3, party certificate pinned by the client)
//!
//! ```text
//! client → party  ClientHello { credential }          (the client certificate or the credential authenticates)
//! party  → client Reply::Welcome { role } | Reply::Error
//! client → party  ClientRequest ...                   (one request, its replies, the next request)
//! ```
//!
//! An upload is `ClientRequest::Upload` followed by raw frames of share bytes (each at most
//! [`UPLOAD_CHUNK`]) until the declared length, answered by `Reply::Prepared`; the client then
//! asks P0 to `Commit`, which runs two-phase commit with P1 over the peer link.
//! `ClientRequest::UploadWith` carries [`UploadOptions`] (append rights, appending to another
//! owner's dataset) and is answered by `Reply::SendShare` (or an error, the connection staying
//! usable) before any share byte is sent.
//!
//! A job is `ClientRequest::Submit` to P0 (or `SubmitFollows { bytes }` and then the `Submit`
//! in one frame of at most [`MAX_JOB_FRAME`] bytes, for a job carrying an initial model),
//! checked by each party against its dataset before any work (a refusal is an `Error` naming the
//! parameter, its value and the limit, from P0 at once or from P1's answer to P0's `Job`),
//! answered by `Progress` (the first one, step 0, names the job as soon as P1 accepted it),
//! `EpochShares` and ring frames for jobs with per-epoch statistics, then `JobDone` or `Error`:
//!
//! ```text
//! client → P0     Submit(spec)                        | SubmitFollows { bytes } + one frame
//! P0     → client Progress { job, step: 0, steps }    (the job id: watch P1 with it)
//! client → P1     Watch { job }                       (optional, the job's owner only)
//! P0     → client Progress … / EpochShares + words    (P0's shares of each epoch's p_true)
//! P1     → client EpochShares + words …, Done         (P1's shares, on the watch connection)
//! P0     → client JobDone { job, stats }
//! ```
//!
//! Vertical partitioning (`crate::server` module `join` has the sequence): an upload with
//! [`RowKeys`] in its options sends one key tag per row after the share bytes; each owner of two
//! keyed datasets sends `JoinConsent(JoinSpec)` to each party (`JoinConsented`), then one of them
//! sends `JoinStart { join }` to P0, which prepares its half, asks P1 with
//! `PeerRequest::Join(spec)` and commits the joined dataset on both (`Committed`).
//!
//! Encrypted inference (`ClientRequest::Inference`, `Reply::Inference`) is described in
//! [`crate::infer::msg`].
//!
//! Deploying a trained ST-GCN (`crate::server` module `deploy` has the sequence): the owner sends
//! `Deploy(DeploySpec)` to each party (`DeployAuthorized`), then `DeployStart` to each serving
//! party (`Deployed`), which sends `PeerRequest::DeployShare` to the other party and receives
//! `PeerReply::DeployShare` and the share's words; `DeployCancel` withdraws an unused
//! authorization. `RevealModel` is `Reveal` with the entry's [`ModelMeta`] in the reply.
//!
//! # Peer link (mutual TLS with pinned certificates, see [`crate::transport`])
//!
//! Channel 0 carries [`PeerRequest`]s from P0 to P1, channel 1 requests from P1 to P0 (crash
//! recovery); each job then opens two fresh channels (offline phase, online phase). A `Job`
//! larger than a control frame is announced by `JobFollows { bytes }` (at most
//! [`MAX_JOB_FRAME`]).

pub use crate::ids::EntryId;
pub use join::{JoinSpec, RowKeys, KEY_TAG_BYTES};
pub use model_specs::{EvaluateSpec, FoldSpec, InitModel, MlpSpec, StandardizeSpec, StgcnSpec};
pub use mpc::offline::cot::OtExtension;
use serde::{Deserialize, Serialize};
pub use upload::{DatasetRef, StatsShares, TensorMeta, UploadHeader, UploadOptions};

mod join;
mod model_specs;
mod upload;

/// Largest control frame (requests and replies other than share data).
pub const MAX_CONTROL_FRAME: usize = 64 << 10;
/// Largest frame of share data in an upload or a reveal.
pub const UPLOAD_CHUNK: usize = 1 << 20;
/// Largest job frame: a job spec carrying a public initial model ([`InitModel`]), announced by
/// [`ClientRequest::SubmitFollows`] or [`PeerRequest::JobFollows`]. Only the one frame that
/// follows such an announcement may be this large; every other request stays within
/// [`MAX_CONTROL_FRAME`].
pub const MAX_JOB_FRAME: usize = 32 << 20;

/// What a party stores for one share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareForm {
    /// A 32-byte ChaCha20 seed expanding to the share (P0's share of an upload).
    Seed,
    /// The share matrix, `rows × cols` little-endian `u64` words, row-major.
    Matrix,
}

/// First frame of a client connection.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// The client's credential for this party, for clients not registered by certificate
    /// fingerprint (derived from the client's token and this party's certificate; see
    /// [`crate::server::auth`]). The token itself is never sent.
    pub credential: Option<Credential>,
}

impl std::fmt::Debug for ClientHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHello")
            .field("credential", &self.credential)
            .finish()
    }
}

/// A token client's credential for one party (`K_i`, 32 bytes): it authenticates at that party
/// only. Zeroized on drop, never printed.
#[derive(
    Clone, PartialEq, Eq, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop,
)]
pub struct Credential(pub [u8; 32]);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// The public half of a standardization (`store::Standardization` without the shares): which
/// job standardized which columns, and whether the owner received the statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardizationInfo {
    /// The standardization job, or the upload of a table its owner standardized.
    pub origin: EntryId,
    /// The standardized columns of the training set, ascending.
    pub columns: Vec<u64>,
    /// Whether the label column (a regression target) is among them.
    pub label: bool,
    /// Whether the owner received (or computed) the statistics.
    pub revealed: bool,
}

/// What a model entry's share column holds, for models other than the single-matrix ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelMeta {
    /// An ST-GCN: the column is every tensor of `stgcn::StGcn::tensors()` (in that order, each
    /// flattened row-major) at the entry's fractional bits; the configuration is public and
    /// stored in the clear (the JSON half of the model file).
    Stgcn {
        /// `stgcn::StGcn::config_json()` of the trained model.
        config_json: String,
    },
    /// A linear or logistic regression or an MLP trained by a job: the column is the weights
    /// (a regression's column; an MLP's layers flattened, see
    /// `server::job::unflatten_layers_with_bias`), described by the public job that made it.
    /// Absent on entries trained before it existed (their reveal is the bare column).
    Linear(LinearModelMeta),
}

/// What a trained linear model or MLP is, from its job and dataset (all public to both
/// parties): what `party reveal --out model.json` writes beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModelMeta {
    /// `linreg`, `logreg` or `mlp`.
    pub kind: String,
    /// Layer widths, input first: `[features, 1]` for the regressions, the MLP's `layers`.
    pub layers: Vec<u64>,
    /// MLP: the output normalization.
    #[serde(default)]
    pub softmax: Option<ml::backend::SoftmaxKind>,
    /// Whether every weight matrix has an intercept / bias row (its last row).
    pub intercept: bool,
    /// The job's learning rate (finite: validated at submission).
    pub learning_rate: f64,
    /// The job's batch size.
    pub batch_size: u64,
    /// The job's epochs.
    pub epochs: u64,
    /// Seed of the batch schedule, in decimal (manifests are TOML, whose integers are i64).
    pub schedule_seed: String,
    /// MLP: seed of the public initial weights, in decimal.
    #[serde(default)]
    pub init_seed: Option<String>,
    /// Where the job's triples came from.
    pub triples: TripleKind,
    /// The training dataset's name, entry id (its version) and rows.
    pub dataset: String,
    /// The dataset version's entry id.
    pub dataset_id: EntryId,
    /// Rows trained on.
    pub rows: u64,
}

// The learning rate is validated finite before a job runs, so equality is reflexive.
impl Eq for LinearModelMeta {}

/// Which model a job trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelKind {
    /// Linear regression (SecureML §IV-A).
    Linreg,
    /// Logistic regression with the piecewise sigmoid (SecureML §IV-B).
    Logreg,
    /// A multi-layer perceptron with ReLU hidden layers and a softmax output (SecureML §IV-C,
    /// Table III: 784-128-128-10 on MNIST). The stored model is one column: every layer's
    /// weights, row-major, layer after layer (see `server::job::unflatten_layers`).
    Mlp(MlpSpec),
    /// An ST-GCN on a skeleton dataset (one whose manifest has a [`TensorMeta`]), trained by
    /// SGD with momentum in 2PC with exact truncation. The stored model is a [`ModelMeta::Stgcn`]
    /// entry: one column holding every tensor of `stgcn::StGcn::tensors()` in order.
    Stgcn(StgcnSpec),
    /// Not a training run: column means and standard deviations of the dataset in 2PC, and
    /// the dataset standardized in place as a new version (its statistics' shares kept with it,
    /// `server::job::prep`). The job's learning rate, batch size, epochs and intercept are
    /// ignored (`party standardize` sends 1, 1, 1, false).
    Standardize(StandardizeSpec),
    /// Not a training run: a trained model of the owner applied to the dataset (a test set) in
    /// 2PC, and only the metrics or the predictions revealed, to the owner (`server::job::prep`).
    /// Learning rate, batch size, epochs and intercept are ignored, as for `Standardize`.
    Evaluate(EvaluateSpec),
    /// Not a training run: a trained model's standardization folded into its weights in 2PC,
    /// the folded weights revealed to the owner only (`server::job::fold`). The job's dataset
    /// is ignored (the model is its input); learning rate, batch size, epochs and intercept too.
    Fold(FoldSpec),
}

/// Where a job's Beaver triples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TripleKind {
    /// Two-server OT-based offline phase (no third party).
    Ot,
    /// The dealer named in both parties' configurations (a trusted third party).
    Dealer,
    /// Two-server offline phase with RLWE encryption for the matrix triples and OT for the
    /// elementwise and AND triples (`mpc::triples::HeSource`; no third party).
    He,
    /// The cheaper of `ot` and `he` for the job by `mpc::triples::choice`'s cost model (no third
    /// party): P0 resolves it from the job's plan before it starts the job at P1, which only
    /// ever sees `ot` or `he`; progress replies and the model's metadata name the resolved source.
    Auto,
}

impl TripleKind {
    /// The source's name in the CLI and configurations (`ot`, `dealer`, `he`, `auto`).
    pub fn name(self) -> &'static str {
        match self {
            TripleKind::Ot => "ot",
            TripleKind::Dealer => "dealer",
            TripleKind::He => "he",
            TripleKind::Auto => "auto",
        }
    }

    /// The source named `name` (`ot`, `dealer`, `he`, `auto`).
    ///
    /// # Errors
    /// An unknown name, with the ones allowed.
    pub fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "ot" => TripleKind::Ot,
            "dealer" => TripleKind::Dealer,
            "he" => TripleKind::He,
            "auto" => TripleKind::Auto,
            s => {
                return Err(format!(
                    "unknown triple source {s:?} (auto, ot, he, dealer)"
                ))
            }
        })
    }
}

/// A training job as a client submits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The model.
    pub model: ModelKind,
    /// Name of a committed dataset of the submitting client.
    pub dataset: String,
    /// Learning rate: any value in `2^-30 ..= 64` (`ml::models::linreg::LinRegHyper`; the
    /// power of two of learning rate / batch size is a truncation, the rest one public
    /// fixed-point multiply per update).
    pub learning_rate: f64,
    /// Mini-batch size.
    pub batch_size: u64,
    /// Epochs over the data.
    pub epochs: u64,
    /// Seed of the public batch schedule.
    pub schedule_seed: u64,
    /// Triple source.
    pub triples: TripleKind,
    /// Fit an intercept (linear and logistic regression) or a bias in every layer (MLP): one
    /// more shared weight on a public column of ones (`ml::models::bias`), without weight
    /// decay. Ignored by ST-GCN jobs (their layers have their own biases). A spec without the
    /// field (JSON written before it existed) means `false`, the old model; `party train`
    /// sends `true` unless `--no-intercept`.
    #[serde(default)]
    pub intercept: bool,
    /// The OT extension behind the `ot` and `he` sources' correlated OTs (AND and elementwise
    /// triples, leaf OTs, the multiplexer, Gilboa products): `silent` (Ferret-style, about 0.06
    /// bytes per COT, semi-honest under LPN) or `iknp` (IKNP/ALSZ, 16 bytes per OT and
    /// direction, no LPN assumption). Both parties run the spec P0 forwards, so they agree.
    /// Ignored by `dealer`. A spec without the field (JSON written before it existed) means
    /// `silent`, the default.
    #[serde(default)]
    pub ot_extension: OtExtension,
}

/// Which party serves a deployed model (and so learns its weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServeAt {
    /// P0 serves: P1 sends its share to P0.
    P0,
    /// P1 serves: P0 sends its share to P1.
    P1,
    /// Both serve: each sends its share to the other.
    Both,
}

impl ServeAt {
    /// Whether the party of `role` (0 or 1) serves.
    pub fn serves(self, role: u8) -> bool {
        matches!(
            (self, role),
            (ServeAt::Both, _) | (ServeAt::P0, 0) | (ServeAt::P1, 1)
        )
    }

    /// The parties that serve, P0 first.
    pub fn roles(self) -> Vec<u8> {
        (0..2).filter(|&r| self.serves(r)).collect()
    }
}

impl std::str::FromStr for ServeAt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "p0" | "0" => Ok(ServeAt::P0),
            "p1" | "1" => Ok(ServeAt::P1),
            "both" => Ok(ServeAt::Both),
            _ => Err(format!("serving party {s:?}: p0, p1 or both")),
        }
    }
}

impl std::fmt::Display for ServeAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServeAt::P0 => "P0",
            ServeAt::P1 => "P1",
            ServeAt::Both => "both",
        })
    }
}

/// A deployment of a trained ST-GCN model to the inference service, as its owner authorizes it
/// at each party separately (`ClientRequest::Deploy`). Every field binds the authorization: a
/// party releases its share only for a peer request carrying this exact spec, once
/// (see `server::deploy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploySpec {
    /// A fresh random identifier the owner chose for this deployment (the same at both parties).
    pub deploy: EntryId,
    /// The model entry (the job that trained it).
    pub job: EntryId,
    /// The name clients of the inference service ask for.
    pub name: String,
    /// Which party serves.
    pub serve: ServeAt,
    /// `ama`, `channel-major` or `planned`; `None`: the `[inference]` default (`ama`).
    pub packing: Option<String>,
}

/// What a serving party reports of a model it now serves (public information only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedInfo {
    /// The served name.
    pub name: String,
    /// The serving party (0 or 1).
    pub role: u8,
    /// The CKKS preset the level planner chose.
    pub preset: String,
    /// The packing.
    pub packing: String,
    /// Bytes of evaluation keys a session of the model uploads.
    pub key_bytes: u64,
}

/// A request of a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Upload one share; share bytes follow as raw frames.
    Upload(UploadHeader),
    /// Upload one share with options; the party answers `SendShare` (or an error), then the
    /// share bytes follow as raw frames.
    UploadWith(UploadHeader, UploadOptions),
    /// P0 only: commit an upload prepared on both parties.
    Commit {
        /// The upload.
        id: EntryId,
    },
    /// The client's committed datasets and models.
    List,
    /// Delete one of the client's datasets (P0 deletes on both parties).
    Delete {
        /// Dataset name.
        name: String,
    },
    /// P0 only: run a training job; progress replies follow until `JobDone` or `Error`.
    Submit(JobSpec),
    /// This party's share of a trained model of the client.
    Reveal {
        /// The job that trained it.
        job: EntryId,
    },
    /// A request to the encrypted-inference endpoint ([`crate::infer::msg`]).
    Inference(crate::infer::msg::InferRequest),
    /// The owner authorizes this party's part of a deployment (releasing its share to a
    /// serving peer, serving); answered by `DeployAuthorized`.
    Deploy(DeploySpec),
    /// At a serving party, after both parties authorized `deploy`: fetch the peer's share,
    /// reconstruct, compile and serve; answered by `Deployed`.
    DeployStart {
        /// The deployment.
        deploy: EntryId,
    },
    /// Withdraws the owner's authorization of a deployment at this party (its unspent uses);
    /// answered by `Done`. The client sends it when a deployment fails elsewhere.
    DeployCancel {
        /// The deployment.
        deploy: EntryId,
    },
    /// This party's share of a trained model with what its column holds (`ModelShareMeta`, then
    /// the words): the reveal of ST-GCN models.
    RevealModel {
        /// The job that trained it.
        job: EntryId,
    },
    /// P0 only: a `Submit` too large for a control frame follows in one frame of `bytes`
    /// (at most [`MAX_JOB_FRAME`]): a job with a public initial model.
    SubmitFollows {
        /// Length of the encoded `ClientRequest::Submit` frame that follows.
        bytes: u64,
    },
    /// P1 only: stream this party's shares of the per-epoch training statistics of the
    /// client's job (see [`Reply::EpochShares`]); the party checks the client owns the job.
    /// Answered by `EpochShares` replies until `Done` (the job ended on this party) or `Error`.
    Watch {
        /// The job (from the first `Progress` reply of P0).
        job: EntryId,
    },
    /// The owner of one of the two datasets consents to a join at this party (each owner at
    /// each party, over its own connection); answered by `JoinConsented`.
    JoinConsent(JoinSpec),
    /// P0 only, from one of the two datasets' owners: run the join both owners consented to
    /// at both parties (one use); answered by `Committed` with the joined dataset's id.
    JoinStart {
        /// The join.
        join: EntryId,
    },
}

/// A stored entry as listed to its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryInfo {
    /// Identifier.
    pub id: EntryId,
    /// Name (`model-<job>` for models).
    pub name: String,
    /// Rows.
    pub rows: u64,
    /// Columns.
    pub cols: u64,
    /// Creation time (seconds since the Unix epoch).
    pub created: u64,
    /// Skeleton datasets: `[C, T, V, M]` of the clips (absent for tables and models).
    #[serde(default)]
    pub tensor_dims: Option<[u64; 4]>,
}

/// Why a party refused or failed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Unknown client certificate or token.
    Unauthorized,
    /// The entry belongs to another client.
    Forbidden,
    /// No such entry.
    NotFound,
    /// Malformed or out-of-order request.
    BadRequest,
    /// Over a configured limit (upload size, concurrent jobs).
    Limit,
    /// The peer party failed or is unreachable.
    Peer,
    /// Anything else on the server side.
    Internal,
}

/// A party's reply to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// Authentication succeeded; the party's role (0 or 1).
    Welcome {
        /// 0 for P0, 1 for P1.
        role: u8,
    },
    /// The upload is stored as prepared.
    Prepared {
        /// The upload.
        id: EntryId,
    },
    /// The upload's header and options are accepted: send the share bytes.
    SendShare {
        /// The upload.
        id: EntryId,
    },
    /// The upload is committed on both parties.
    Committed {
        /// The dataset.
        id: EntryId,
    },
    /// The client's entries.
    Entries(Vec<EntryInfo>),
    /// Done (delete).
    Done,
    /// A job's progress: steps done out of all.
    Progress {
        /// The job.
        job: EntryId,
        /// Steps done.
        step: u64,
        /// All steps.
        steps: u64,
        /// The triple source the job runs with (`auto` resolved by P0 to `ot` or `he`).
        triples: TripleKind,
    },
    /// A job finished on both parties; the model stays secret-shared.
    JobDone {
        /// The job (reveal with it).
        job: EntryId,
        /// What each party measured (P0's, then P1's).
        stats: [JobStats; 2],
    },
    /// This party's model share; `rows × cols` words follow as raw frames.
    ModelShare {
        /// Rows.
        rows: u64,
        /// Columns.
        cols: u64,
        /// Fixed-point fractional bits (validated when decoded; a `u32` on the wire).
        frac_bits: mpc::FracBits,
    },
    /// The request failed.
    Error {
        /// Category.
        code: ErrorCode,
        /// Explanation for the client (never secret data).
        message: String,
    },
    /// A reply of the encrypted-inference endpoint ([`crate::infer::msg`]).
    Inference(crate::infer::msg::InferReply),
    /// The deployment is authorized at this party.
    DeployAuthorized {
        /// The deployment.
        deploy: EntryId,
    },
    /// This party serves the deployed model.
    Deployed(DeployedInfo),
    /// This party's model share; `rows × cols` words follow as raw frames.
    ModelShareMeta {
        /// Rows of the share that follows (0, and no words follow, for a model revealed only
        /// folded: see `standardization`).
        rows: u64,
        /// Columns.
        cols: u64,
        /// Fixed-point fractional bits (validated when decoded; a `u32` on the wire).
        frac_bits: mpc::FracBits,
        /// What the column holds (`None` for the single-matrix models).
        model: Option<ModelMeta>,
        /// How the model's training set was standardized (`None`: raw data): `party reveal`
        /// then folds it into the weights ([`ModelKind::Fold`]).
        #[serde(default)]
        standardization: Option<StandardizationInfo>,
    },
    /// One party's shares of an epoch's per-sample probabilities of the true class (fixed
    /// point) — or, for `Standardize` with `reveal_stats` and `Evaluate` jobs, of the job's
    /// result column (epoch 1 of 1: the statistics, the metrics or the predictions) — for the
    /// job's owner only: P0 sends its shares in the `Submit` stream, P1 in the
    /// owner's `Watch` stream; the owner adds them and computes the epoch's cross-entropy.
    /// `count` words follow as raw ring frames.
    EpochShares {
        /// The job.
        job: EntryId,
        /// The epoch (1-based).
        epoch: u64,
        /// All epochs.
        epochs: u64,
        /// Samples of the epoch (words that follow).
        count: u64,
        /// Fractional bits of the shared values.
        frac_bits: mpc::FracBits,
    },
    /// The client's consent to a join is recorded at this party.
    JoinConsented {
        /// The join.
        join: EntryId,
    },
}

/// A request of P0 to P1 (channel 0), or of P1 to P0 (channel 1: `Status` only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Two-phase commit, phase 1: is this upload prepared (same name, owner, shape and tensor)?
    Vote {
        /// Upload.
        id: EntryId,
        /// Owner.
        owner: String,
        /// Name.
        name: String,
        /// Rows.
        rows: u64,
        /// Columns.
        cols: u64,
        /// The skeleton tensor of P0's half (P1's must be the same).
        #[serde(default)]
        tensor: Option<TensorMeta>,
        /// The standardized columns of P0's half when its owner standardized it before
        /// uploading (P1's must be the same).
        #[serde(default)]
        standardized: Option<Vec<u64>>,
    },
    /// Phase 2: commit (idempotent).
    Commit {
        /// Upload.
        id: EntryId,
    },
    /// Discard a prepared upload (idempotent).
    Abort {
        /// Upload.
        id: EntryId,
    },
    /// Crash recovery: what is the state of this entry on your side?
    Status {
        /// Entry.
        id: EntryId,
    },
    /// Delete a committed entry of `owner` (idempotent).
    Delete {
        /// Entry.
        id: EntryId,
        /// Owner (checked again).
        owner: String,
    },
    /// Start a job: both parties open its two channels right after this request.
    Job {
        /// Job identifier (also the model's entry id).
        job: EntryId,
        /// The submitting client.
        owner: String,
        /// The dataset's entry id (P1 checks owner and commit state).
        dataset: EntryId,
        /// The job.
        spec: JobSpec,
    },
    /// Deployment: the serving party asks for the other's share of `spec.job`; answered by
    /// `PeerReply::DeployShare` and the words, only under the owner's authorization of exactly
    /// this spec at the answering party, once.
    DeployShare(DeploySpec),
    /// A `Job` request too large for a control frame follows in one frame of `bytes` (at most
    /// [`MAX_JOB_FRAME`]): a job with a public initial model.
    JobFollows {
        /// Length of the encoded `PeerRequest::Job` frame that follows.
        bytes: u64,
    },
    /// P0 ran its checks of a join and prepared its half: P1 checks the consents it holds and
    /// the two datasets on its own and prepares its half (answered by `Ack` or `JobRefused`);
    /// the joined dataset is then committed by two-phase commit.
    Join(JoinSpec),
}

/// Entry state as reported by the peer in recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerState {
    /// Unknown or discarded.
    Absent,
    /// Prepared, no decision yet.
    Prepared,
    /// Decided to commit (P0) or committed.
    Committed,
}

/// A reply on the peer link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PeerReply {
    /// Vote answer.
    Vote(bool),
    /// Done.
    Ack,
    /// Recovery answer.
    State(PeerState),
    /// Job refused (the reason is logged by both).
    Refused(String),
    /// End of a job on P1: the model share is stored; what P1 measured.
    JobStored(JobStats),
    /// The share of a deployed model; `rows × cols` words follow as raw frames.
    DeployShare {
        /// Rows.
        rows: u64,
        /// Columns.
        cols: u64,
        /// Fixed-point fractional bits.
        frac_bits: mpc::FracBits,
    },
    /// P1 refused a job before any work (its own checks of the job against its dataset and
    /// configuration, or the dataset's owner and state): P0 tells the client this code and
    /// message at once.
    JobRefused {
        /// The category the client is told.
        code: ErrorCode,
        /// Why, naming the parameter, its value and the limit.
        message: String,
    },
}

/// One party's measurements of a job: time and traffic of its offline phase (the triples: with
/// the peer for `ot`, with the dealer for `dealer`) and of its online phase (training, from the
/// opening of the masked data to the last step), counted at the framing layer like the
/// in-process runs' [`mpc::net::Metered`]. Public information only: sizes and times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct JobStats {
    /// Seconds of the offline phase (after planning; base OTs included).
    pub offline_s: f64,
    /// Seconds of the online phase.
    pub online_s: f64,
    /// Traffic of the offline phase.
    pub offline: mpc::net::CommStats,
    /// Traffic of the online phase.
    pub online: mpc::net::CommStats,
}

/// Decodes one message of type `T` from a frame of at most `max_len` bytes.
///
/// # Errors
/// [`mpc::MpcError::FrameTooLarge`] or [`mpc::MpcError::Malformed`]; never panics.
pub fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, mpc::MpcError> {
    mpc::net::decode_message(bytes, max_len)
}

#[cfg(test)]
mod tests;
