//! One party serving encrypted inference for the `he-infer` tests: a P0 `party serve` process on
//! loopback with an `[inference]` section serving the tiny model of [`super::tiny_stgcn`] (or a
//! model file) as "tiny" to the clients alice, bob and carol (tokens), and the helpers those
//! tests share (tolerance, process runner).

use party::client::{Client, ClientError};
use party::infer::client::InferClient;
use party::transport::{Identity, PeerCert};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use stgcn::StGcn;

use super::tiny_stgcn;

pub const PARTY: &str = env!("CARGO_BIN_EXE_party");
pub const HE_INFER: &str = env!("CARGO_BIN_EXE_he-infer");
pub const ALICE: &str = "alice-token-123";
pub const BOB: &str = "bob-token-456";
pub const CAROL: &str = "carol-token-789";
/// Largest flood sd the tiny model may announce (3.6e-5 expected; see the module docs).
pub const MAX_FLOOD_SD: f64 = 5e-5;

/// Tolerance on one logit under a flood of standard deviation `flood_sd`: the evaluation error
/// plus 8 sd.
pub fn tol(flood_sd: f64) -> f64 {
    assert!(
        flood_sd > 0.0 && flood_sd <= MAX_FLOOD_SD,
        "flood sd {flood_sd:e} outside (0, {MAX_FLOOD_SD:e}]"
    );
    1e-6 + 8.0 * flood_sd
}

pub use super::{free_port, run_ok};

/// Writes `tiny.json` + `tiny.safetensors` (the shared tiny model).
pub fn tiny_model(dir: &Path) -> (PathBuf, StGcn) {
    let m = tiny_stgcn::model();
    let json = dir.join("tiny.json");
    std::fs::write(&json, m.config_json().unwrap()).unwrap();
    std::fs::write(
        dir.join("tiny.safetensors"),
        m.to_safetensors_bytes().unwrap(),
    )
    .unwrap();
    (json, m)
}

/// A P0 process serving the tiny model to alice and bob (tokens).
pub struct Server {
    pub dir: PathBuf,
    pub addr: SocketAddr,
    proc: Child,
    pub model: StGcn,
    pub model_json: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

impl Server {
    pub fn start(dir: &Path) -> Self {
        Self::start_serving(dir, None, None)
    }

    /// Serves the tiny model, or the committed model `committed` (a `.json` path) as "tiny",
    /// under the named 128-bit `preset` or (`None`) the parameters the party tailors to it.
    pub fn start_serving(dir: &Path, committed: Option<&Path>, preset: Option<&str>) -> Self {
        let inference = "max_key_bytes = 1073741824\nmax_sessions_per_client = 1\n\
                         max_sessions = 4\nsession_ttl_s = 600\n";
        let model = preset.map_or(String::new(), |p| format!("preset = \"{p}\"\n"));
        Self::launch(dir, committed, inference, "", &model)
    }

    /// Serves the tiny model with `inference` as the `[inference]` settings and `limits` as
    /// the `[limits]` section's.
    pub fn start_limited(dir: &Path, inference: &str, limits: &str) -> Self {
        Self::launch(dir, None, inference, limits, "")
    }

    /// `model_extra`: more settings of the served model's `[[inference.models]]` entry.
    pub fn launch(
        dir: &Path,
        committed: Option<&Path>,
        inference: &str,
        limits: &str,
        model_extra: &str,
    ) -> Self {
        // The tiny model's logits are accurate to ~1e-8: a flood sized for 2^-24 leaves them
        // within `tol`; a committed model is served with the default bound.
        let flood = match committed {
            None => "eval_error_bound = 5.9604644775390625e-8\n",
            Some(_) => "",
        };
        let (model_json, model) = match committed {
            None => tiny_model(dir),
            Some(json) => {
                let w = std::fs::read(json.with_extension("safetensors")).unwrap();
                let m =
                    StGcn::from_json_and_safetensors(&std::fs::read_to_string(json).unwrap(), &w)
                        .unwrap();
                (json.to_path_buf(), m)
            }
        };
        let inference = format!("{inference}{flood}");
        let (addr, proc) = spawn("tiny", dir, &model_json, &inference, limits, model_extra);
        Server {
            dir: dir.to_path_buf(),
            addr,
            proc,
            model,
            model_json,
        }
    }
}

/// Starts P0 serving the model file `model_json` as `name` with the given `[inference]`
/// settings, `[limits]` settings and model-entry settings; its client address and process.
pub fn spawn(
    name: &str,
    dir: &Path,
    model_json: &Path,
    inference: &str,
    limits: &str,
    model_extra: &str,
) -> (SocketAddr, Child) {
    for id in 0..2 {
        run_ok(Command::new(PARTY).args([
            "init",
            "--id",
            &id.to_string(),
            "--dir",
            dir.join(format!("p{id}")).to_str().unwrap(),
        ]));
    }
    std::fs::copy(dir.join("p1/cert.pem"), dir.join("p0/peer-cert.pem")).unwrap();
    let hash = |t: &str| {
        let cert = dir.join("p0/cert.pem");
        let line = run_ok(Command::new(PARTY).args([
            "hash-token",
            t,
            "--p0-cert",
            cert.to_str().unwrap(),
        ]));
        line.split('"').nth(1).unwrap().to_string()
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let cfg = format!(
            "role = 0\nidentity_dir = \".\"\ndata_dir = \"data\"\n\
             [peer]\nlisten = \"127.0.0.1:{}\"\ncertificate = \"peer-cert.pem\"\ntimeout_s = 30\n\
             [clients]\nlisten = \"{addr}\"\n\
             [[clients.allow]]\nname = \"alice\"\ncredential_sha256 = \"{}\"\n\
             [[clients.allow]]\nname = \"bob\"\ncredential_sha256 = \"{}\"\n\
             [[clients.allow]]\nname = \"carol\"\ncredential_sha256 = \"{}\"\n\
             [limits]\nmax_upload_bytes = 1073741824\nmax_concurrent_jobs = 2\n{limits}\
             [inference]\n{inference}\
             [[inference.models]]\nname = \"{name}\"\npath = \"{}\"\npacking = \"ama\"\n{model_extra}",
            free_port(),
            hash(ALICE),
            hash(BOB),
            hash(CAROL),
            model_json.display()
        );
    std::fs::write(dir.join("p0/party.toml"), cfg).unwrap();
    let log = std::fs::File::create(dir.join("p0.log")).unwrap();
    let mut proc = Command::new(PARTY)
        .args([
            "serve",
            "--config",
            dir.join("p0/party.toml").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(log)
        .env("RUST_LOG", "info")
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines();
    loop {
        let l = lines
            .next()
            .unwrap_or_else(|| {
                panic!(
                    "server exited:\n{}",
                    std::fs::read_to_string(dir.join("p0.log")).unwrap_or_default()
                )
            })
            .unwrap();
        if l.contains("listening for clients") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (addr, proc)
}

impl Server {
    pub fn cert(&self) -> PathBuf {
        self.dir.join("p0/cert.pem")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("p0.log")).unwrap_or_default()
    }

    pub async fn client(&self, token: &str) -> InferClient {
        InferClient::new(self.connect(token).await.unwrap())
    }

    pub async fn connect(&self, token: &str) -> Result<Client, ClientError> {
        let cert = PeerCert::load(&self.cert()).unwrap();
        let me = Identity::generate("test-client").unwrap();
        Client::connect(self.addr, &cert, &me, Some(token)).await
    }
}
