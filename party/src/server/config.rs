//! `party.toml`: the configuration of one party server, and its commented template.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A party server's configuration. Relative paths are relative to the configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// 0 for P0 (the coordinator: listens for the peer, accepts jobs), 1 for P1.
    pub role: u8,
    /// Directory holding `cert.pem` and `key.pem` of this party.
    pub identity_dir: PathBuf,
    /// Directory of the dataset and model store.
    pub data_dir: PathBuf,
    /// The link to the other party.
    pub peer: PeerConfig,
    /// The endpoint for clients.
    pub clients: ClientConfig,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
    /// Optional dealer for jobs that ask for dealer triples.
    #[serde(default)]
    pub dealer: Option<DealerConfig>,
    /// Optional encrypted-inference endpoint (served models and session limits).
    #[serde(default)]
    pub inference: Option<InferenceConfig>,
}

/// The encrypted-inference endpoint (`[inference]`): which models this party serves under CKKS
/// and the limits on the clients' sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceConfig {
    /// Served models (may be empty: models deployed by their owners with `party deploy` are
    /// added while serving, see `server::deploy`).
    #[serde(default)]
    pub models: Vec<ServedModelConfig>,
    /// Largest total size of one session's evaluation keys (bytes, as uploaded). Unset (the
    /// default): what the served models need — the relinearization key and the Galois keys of
    /// each model's rotation steps at its preset, computed at start for every model — the
    /// largest of them plus 1/64, logged at start. Set: this value is the bound, as given (a
    /// value below what a model needs is logged as a warning: its sessions cannot open).
    #[serde(default)]
    pub max_key_bytes: Option<u64>,
    /// Key uploads in progress at once, of all clients (each may buffer up to
    /// `max_key_bytes`, and about as much again while decoding); more are refused (`Limit`).
    /// Default 2.
    #[serde(default = "default_max_key_uploads")]
    pub max_key_uploads: usize,
    /// Key uploads one client may have in progress at once (default 1).
    #[serde(default = "default_max_key_uploads_per_client")]
    pub max_key_uploads_per_client: usize,
    /// Sessions one client may hold at once (a session being opened counts from its request).
    #[serde(default = "default_sessions_per_client")]
    pub max_sessions_per_client: usize,
    /// Sessions of all clients together (each holds its keys in memory).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Idle seconds after which a session and its keys are dropped.
    #[serde(default = "default_session_ttl")]
    pub session_ttl_s: u64,
    /// Encrypted forward passes running at once (each uses every core).
    #[serde(default = "default_concurrent_inferences")]
    pub max_concurrent_inferences: usize,
    /// Memory bound (MiB) of the encoded weight plaintexts kept between requests, for all
    /// served models together (split evenly); 0 encodes every weight on every request. Weights
    /// beyond the bound are encoded when used and dropped at once, so the bound also caps what
    /// the server holds of them. The default (2048) fits a 16 GiB machine: serving the committed
    /// BodyPose / Mocap-15 poly models (N = 2^15, one session, 0.6 / 1.9 GiB of keys as
    /// uploaded) peaked at 5.3 / 7.2 GiB RSS for one request.
    #[serde(default = "default_plaintext_cache_mib")]
    pub plaintext_cache_mib: usize,
    /// Working memory (MiB) of one forward pass's temporal convolutions under AMA: the nodes
    /// share the temporal kernel, so the server evaluates as many nodes at once as their
    /// rotated inputs fit this bound and encodes each weight diagonal once for all of them.
    /// More memory, fewer encodings (at the NTU shape one node takes 0.2–0.3 GiB; the default
    /// 3072 lets 10–13 nodes share each diagonal; 0: one node per worker thread). Each
    /// concurrent inference may use it.
    #[serde(default = "default_lockstep_mib")]
    pub lockstep_mib: usize,
    /// Noise flooding of the returned logits (`hegcn::sanitize`): the flood is uniform on
    /// `[−W, W]` with `W = 2^flood_bits · 2Δ·eval_error_bound`. Each bit doubles the logit error
    /// the flood adds (standard deviation ≈ `2^(flood_bits+1)·eval_error_bound·√(N/6)`, 0.036 at
    /// N = 2^15 with the defaults) and the statistical distance hiding the weight-dependent noise
    /// is ≈ `N·2^−(flood_bits+1)`: it is no guarantee below `flood_bits = log2 N`, and 40 bits of
    /// hiding (`flood_bits` ≈ 54) would destroy the logits. Default 0 (see the README).
    #[serde(default)]
    pub flood_bits: u32,
    /// Bound `ε` on the evaluation error of the logit ciphertexts' slots, which sizes the flood
    /// (`B_eval = 2Δ·ε`); default `2^−12`, above the largest measured on the committed models
    /// (4.4e-5 BodyPose, 1.1e-4 NTU-shaped STGCN-3-128).
    #[serde(default = "default_eval_error_bound")]
    pub eval_error_bound: f64,
}

impl InferenceConfig {
    /// The flood of the returned logits these settings ask for.
    pub fn flood(&self) -> hegcn::FloodConfig {
        hegcn::FloodConfig {
            flood_bits: self.flood_bits,
            eval_error_bound: self.eval_error_bound,
        }
    }
}

/// One served model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServedModelConfig {
    /// Name clients ask for.
    pub name: String,
    /// The model's `.json` configuration; the weights are the `.safetensors` beside it.
    pub path: PathBuf,
    /// ST-GCN models: `"ama"` (CryptoGCN, default), `"channel-major"` (baseline) or
    /// `"planned"` (the packing planner's per-stage mix of the two, priced with this machine's
    /// operation costs when the model is compiled; `hegcn::planner`).
    #[serde(default = "default_packing")]
    pub packing: String,
    /// CNN models (`ml::models::cnn`, detected from the model file): `"lola"` (one image per
    /// request, `hecnn::lola`; the default), `"cryptonets"` / `"batch"` (up to `N/2` images
    /// per request, `hecnn::batch`), `"matrix"` (up to `N/2 / 1024` images per request in one
    /// ciphertext, `hecnn::matrix`) or `"auto"` (the packing planner's choice for the latency
    /// of one image, `hecnn::planner`, with no `preset`). Refused for an ST-GCN model.
    #[serde(default)]
    pub layout: Option<String>,
    /// A 128-bit CKKS preset name; default: the smallest that holds the model.
    #[serde(default)]
    pub preset: Option<String>,
}

fn default_max_key_uploads() -> usize {
    2
}

fn default_max_key_uploads_per_client() -> usize {
    1
}

fn default_sessions_per_client() -> usize {
    2
}

fn default_max_sessions() -> usize {
    8
}

fn default_session_ttl() -> u64 {
    3600
}

fn default_concurrent_inferences() -> usize {
    1
}

fn default_plaintext_cache_mib() -> usize {
    2048
}

fn default_lockstep_mib() -> usize {
    hegcn::DEFAULT_LOCKSTEP_BYTES >> 20
}

fn default_eval_error_bound() -> f64 {
    hegcn::DEFAULT_EVAL_ERROR_BOUND
}

fn default_packing() -> String {
    "ama".into()
}

/// The peer link.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// P0: the address it listens on for P1.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// P1: P0's peer address to connect to.
    #[serde(default)]
    pub address: Option<SocketAddr>,
    /// The peer's certificate (PEM), pinned: no other certificate is accepted.
    pub certificate: PathBuf,
    /// `"tls-tcp"` (default) or `"quic"`.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// Seconds without any message from the peer after which a request or job fails.
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
}

/// The client endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Address for clients (TLS 1.3 with this party's certificate).
    pub listen: SocketAddr,
    /// Registered clients; everyone else is refused.
    #[serde(default)]
    pub allow: Vec<AllowedClient>,
}

/// A registered client: a certificate fingerprint, a token credential, or both. The name is the
/// owner of its datasets and must be the same in both parties' configurations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedClient {
    /// Owner name.
    pub name: String,
    /// SHA-256 fingerprint of the client's certificate (64 hex digits).
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// SHA-256 of the credential the client derives from its token for this party (64 hex
    /// digits; `party hash-token TOKEN --config party.toml` prints it). Each party registers a
    /// different value; see [`crate::server::auth`].
    #[serde(default)]
    pub credential_sha256: Option<String>,
    /// The old registration by the SHA-256 of the raw token: refused by [`Config::load`] (the
    /// token it stands for would authenticate at both parties). Never admits anyone.
    #[serde(default, rename = "token_sha256", skip_serializing)]
    pub legacy_token_sha256: Option<String>,
}

impl AllowedClient {
    /// Refuses the old `token_sha256` and a `credential_sha256` that is not 64 hex digits.
    fn check(&self, path: &Path) -> Result<()> {
        let name = &self.name;
        ensure(self.legacy_token_sha256.is_none(), || {
            format!("{}: client {name:?} is registered by token_sha256 (the hash of the raw token), which \
             is no longer accepted: a raw token works at both parties, so either party could pass \
             as the client at the other. Re-register it: run `party hash-token TOKEN --config {}` \
             and replace token_sha256 with the credential_sha256 line it prints",
            path.display(),
            path.display()
        )
        })?;
        if let Some(h) = &self.credential_sha256 {
            ensure(
                h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                || {
                    format!(
                    "{}: client {name:?}: credential_sha256 {h:?} must be 64 hex digits (it has {} \
                     characters); `party hash-token` prints it",
                    path.display(),
                    h.len()
                )
                },
            )?;
        }
        Ok(())
    }
}

/// Limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest share upload in bytes.
    pub max_upload_bytes: u64,
    /// Jobs running at once (P0 refuses more).
    pub max_concurrent_jobs: usize,
    /// Client connections open at once, counted from the TCP accept (before the handshake):
    /// more are refused (`Limit`) instead of queued. Default 64.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections one authenticated client may hold at once (default 8).
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Preprocessing (bytes per party, estimated from the job's plan) a linear, logistic or MLP
    /// job, or an evaluation, may need: it is made in one piece before the online phase, so each
    /// party refuses a larger job at submission. Default 8 GiB.
    #[serde(default = "default_max_job_preprocessing_bytes")]
    pub max_job_preprocessing_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_upload_bytes: 1 << 30,
            max_concurrent_jobs: 2,
            max_connections: default_max_connections(),
            max_connections_per_client: default_max_connections_per_client(),
            max_job_preprocessing_bytes: default_max_job_preprocessing_bytes(),
        }
    }
}

fn default_max_job_preprocessing_bytes() -> u64 {
    8 << 30
}

fn default_max_connections() -> usize {
    64
}

fn default_max_connections_per_client() -> usize {
    8
}

/// A dealer (`dealer` binary) both parties connect to for dealer triples.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealerConfig {
    /// The dealer's address.
    pub address: SocketAddr,
    /// The dealer's certificate (PEM), pinned.
    pub certificate: PathBuf,
}

fn default_transport() -> String {
    "tls-tcp".into()
}

fn default_timeout() -> u64 {
    30
}

impl Config {
    /// Reads a configuration and resolves its relative paths against the file's directory.
    ///
    /// # Errors
    /// Unreadable file or invalid TOML, naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let mut c: Config = parse(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut c.identity_dir);
        fix(&mut c.data_dir);
        fix(&mut c.peer.certificate);
        if let Some(d) = &mut c.dealer {
            fix(&mut d.certificate);
        }
        if let Some(inf) = &mut c.inference {
            for m in &mut inf.models {
                fix(&mut m.path);
            }
        }
        ensure(c.role <= 1, || {
            format!("{}: role must be 0 or 1", path.display())
        })?;
        for client in &c.clients.allow {
            client.check(path)?;
        }
        match c.role {
            0 => ensure(c.peer.listen.is_some(), || {
                format!("{}: P0 needs peer.listen", path.display())
            })?,
            _ => ensure(c.peer.address.is_some(), || {
                format!("{}: P1 needs peer.address", path.display())
            })?,
        }
        Ok(c)
    }
}

/// The role and certificate file (`identity_dir/cert.pem`) of the party configured in `path`,
/// read without checking the rest of the file: `party hash-token --config` must work on a
/// configuration that [`Config::load`] refuses for its old `token_sha256` registrations.
///
/// # Errors
/// Unreadable file, invalid TOML, a missing or invalid `role` or `identity_dir`.
pub fn own_certificate(path: &Path) -> Result<(u8, PathBuf)> {
    let v: toml::Table = parse(path)?;
    let role = v.get("role").and_then(toml::Value::as_integer);
    let role = match role {
        Some(r @ 0..=1) => r as u8,
        _ => {
            return Err(ConfigError::Invalid(format!(
                "{}: role must be 0 or 1, got {role:?}",
                path.display()
            )))
        }
    };
    let dir = v
        .get("identity_dir")
        .and_then(toml::Value::as_str)
        .ok_or_else(|| {
            ConfigError::Invalid(format!("{}: identity_dir is missing", path.display()))
        })?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok((role, base.join(dir).join(crate::transport::CERT_FILE)))
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or not a configuration.
    #[error("parsing {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: toml::de::Error,
    },
    /// A setting is missing or invalid (the message names the file and the setting).
    #[error("{0}")]
    Invalid(String),
}

/// Result of reading a configuration.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Reads and parses the TOML file `path`.
fn parse<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// `Ok` if `ok`, else the invalid setting `why` describes.
fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(why()))
    }
}

/// The commented template `party init` writes.
pub fn template(role: u8) -> String {
    let (peer_line, client_port) = match role {
        0 => (
            "listen = \"0.0.0.0:7100\"            # P0 listens here for P1",
            7200,
        ),
        _ => (
            "address = \"203.0.113.10:7100\"      # P0's peer address (P1 connects to it)",
            7201,
        ),
    };
    format!(
        r#"# Dyad party server configuration (party {role}). Relative paths are relative to this file.
role = {role}                       # 0 = P0 (coordinator), 1 = P1
identity_dir = "."               # holds cert.pem and key.pem (made by `party init`)
data_dir = "data"                # dataset and model store

[peer]
{peer_line}
certificate = "peer-cert.pem"    # the other party's cert.pem, pinned: nothing else is accepted
transport = "tls-tcp"            # or "quic"
timeout_s = 30                   # a silent peer fails requests and jobs after this long

[clients]
listen = "0.0.0.0:{client_port}"          # data owners and job clients connect here (TLS 1.3)
# Register each client by certificate fingerprint and/or by its token credential for this party
# (`party hash-token TOKEN --config party.toml` prints the line; the other party registers a
# different value, so neither can replay what it receives). The name owns the client's datasets:
# use the same name on both parties.
# [[clients.allow]]
# name = "alice"
# fingerprint = "<64 hex digits: the client's cert.pem fingerprint>"
# credential_sha256 = "<64 hex digits>"

[limits]
max_upload_bytes = 1073741824    # largest share upload (bytes)
max_concurrent_jobs = 2          # P0 refuses jobs beyond this
max_connections = 64             # client connections at once (more are refused)
max_connections_per_client = 8   # connections of one client at once
max_job_preprocessing_bytes = 8589934592  # a linear/MLP job's or evaluation's preprocessing per party (refused beyond)

# Optional dealer for jobs with triples = "dealer" (a trusted third party; OT needs none).
# [dealer]
# address = "198.51.100.7:7000"
# certificate = "dealer-cert.pem"

# Optional encrypted ST-GCN and CNN inference (`he-infer` clients). Clients upload evaluation keys only;
# the secret key never leaves them.
# [inference]
# max_key_bytes = 1073741824     # largest key upload of one session (bytes); default: what the
#                                # served models' keys need (+1/64), computed and logged at start
# max_key_uploads = 2            # key uploads in progress at once, all clients (more are refused)
# max_key_uploads_per_client = 1
# max_sessions_per_client = 2    # sessions being opened count too
# max_sessions = 8
# session_ttl_s = 3600           # idle sessions are dropped after this long
# max_concurrent_inferences = 1
# plaintext_cache_mib = 2048      # encoded weights kept between requests, all models together
# lockstep_mib = 3072             # working memory per pass: AMA nodes sharing each encoded weight
# flood_bits = 0                 # noise flood of the returned logits: 2^flood_bits × 2Δ·eval_error_bound
# eval_error_bound = 0.000244140625   # bound on the logits' evaluation error (sizes the flood)
# Models listed here are served from the start; an owner's `party deploy` adds a 2PC-trained one
# while the party runs (kept in data_dir/deployed/ and served again after a restart).
# [[inference.models]]
# name = "bodypose"
# path = "models/bodypose-stgcn3x128-d4-square.json"   # .safetensors beside it
# packing = "ama"                # or "channel-major", or "planned" (per-stage mix, priced here)
# A CNN (experiments/models/cnn, detected from its .json) is served the same way:
# [[inference.models]]
# name = "mnist-lola"
# path = "models/cnn/mnist-cryptonets.json"
# layout = "lola"                # one image per request (the default; CNNs only), or
#                                # "cryptonets": up to N/2 images per request, one ciphertext per pixel,
#                                # "matrix": up to 8 images per request in one ciphertext (65 Galois keys),
#                                # or "auto": the packing planner's choice for latency (no preset)
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_once_the_peer_is_filled_in() {
        for role in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("party.toml");
            std::fs::write(&p, template(role)).unwrap();
            let c = Config::load(&p).unwrap();
            assert_eq!(c.role, role);
            assert!(c.peer.certificate.starts_with(dir.path()));
        }
    }
}
