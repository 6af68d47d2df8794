//! A two-party cluster of real `party serve` processes on loopback for the end-to-end and
//! operations tests (uploads in every format, appends, jobs, kill -9 or injected faults at chosen
//! moments), with helpers that read both stores from disk.
//!
//! Clients: alice, bob and dave by bearer token (each party registers the hash of its own
//! per-party credential, from `party hash-token`), carol by the fingerprint of the client
//! certificate in `<dir>/carol`.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod serving;
pub mod tiny_stgcn;

use party::client::{Client, ClientError};
use party::store::Manifest;
use party::transport::{Identity, PeerCert};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PARTY: &str = env!("CARGO_BIN_EXE_party");
pub const UPLOAD: &str = env!("CARGO_BIN_EXE_share-upload");
pub const ALICE: &str = "alice-token-123";
pub const BOB: &str = "bob-token-456";
pub const DAVE: &str = "dave-token-789";

pub use party::testing::free_port;

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts an upload succeeded and returns the printed dataset id.
pub fn upload_ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "share-upload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Asserts an upload failed and returns its stderr.
pub fn upload_err(out: std::process::Output) -> String {
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "share-upload succeeded: {e}");
    e
}

pub struct Cluster {
    pub dir: PathBuf,
    /// P0's peer port (on 127.0.0.1).
    pub peer_port: u16,
    pub client: [SocketAddr; 2],
    pub procs: [Option<Child>; 2],
    pub timeout_s: u64,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in self.procs.iter_mut().flatten() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

impl Cluster {
    /// Two parties with clients alice, bob and dave (tokens) and carol (certificate);
    /// `max_upload` bytes per upload.
    pub fn new(dir: &Path, timeout_s: u64, max_upload: u64) -> Self {
        Self::with_sections(dir, timeout_s, max_upload, ["", ""])
    }

    /// As [`Cluster::new`], with `extra[id]` appended to party `id`'s configuration (e.g. an
    /// `[inference]` section).
    pub fn with_sections(dir: &Path, timeout_s: u64, max_upload: u64, extra: [&str; 2]) -> Self {
        for id in 0..2 {
            run_ok(Command::new(PARTY).args([
                "init",
                "--id",
                &id.to_string(),
                "--dir",
                dir.join(format!("p{id}")).to_str().unwrap(),
            ]));
        }
        for id in 0..2 {
            std::fs::copy(
                dir.join(format!("p{}/cert.pem", 1 - id)),
                dir.join(format!("p{id}/peer-cert.pem")),
            )
            .unwrap();
        }
        let peer_port = free_port();
        let client = [0, 1].map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())));
        // `party hash-token` prints one credential_sha256 line per party: each registers its own.
        let hashes = |t: &str| -> Vec<String> {
            run_ok(Command::new(PARTY).args([
                "hash-token",
                t,
                "--p0-cert",
                dir.join("p0/cert.pem").to_str().unwrap(),
                "--p1-cert",
                dir.join("p1/cert.pem").to_str().unwrap(),
            ]))
            .lines()
            .map(|l| l.split('"').nth(1).unwrap().to_string())
            .collect()
        };
        let mut allow = [String::new(), String::new()];
        for (n, t) in [("alice", ALICE), ("bob", BOB), ("dave", DAVE)] {
            for (id, h) in hashes(t).iter().enumerate() {
                allow[id].push_str(&format!(
                    "[[clients.allow]]\nname = \"{n}\"\ncredential_sha256 = \"{h}\"\n"
                ));
            }
        }
        let carol = dir.join("carol");
        let fp_carol =
            run_ok(Command::new(PARTY).args(["client-init", "--dir", carol.to_str().unwrap()]))
                .trim()
                .to_string();
        for a in &mut allow {
            a.push_str(&format!(
                "[[clients.allow]]\nname = \"carol\"\nfingerprint = \"{fp_carol}\"\n"
            ));
        }
        for (id, caddr) in client.iter().enumerate() {
            let peer = if id == 0 {
                format!("listen = \"127.0.0.1:{peer_port}\"")
            } else {
                format!("address = \"127.0.0.1:{peer_port}\"")
            };
            let cfg = format!(
                "role = {id}\nidentity_dir = \".\"\ndata_dir = \"data\"\n\
                 [peer]\n{peer}\ncertificate = \"peer-cert.pem\"\ntransport = \"tls-tcp\"\ntimeout_s = {timeout_s}\n\
                 [clients]\nlisten = \"{caddr}\"\n{}\
                 [limits]\nmax_upload_bytes = {max_upload}\nmax_concurrent_jobs = 2\n{}",
                allow[id],
                extra[id]
            );
            std::fs::write(dir.join(format!("p{id}/party.toml")), cfg).unwrap();
        }
        let mut c = Cluster {
            dir: dir.to_path_buf(),
            peer_port,
            client,
            procs: [None, None],
            timeout_s,
        };
        c.start(0);
        c.start(1);
        c.wait_linked(1);
        c
    }

    /// The connection options of the `party` client commands for `token`'s client.
    pub fn conn_args(&self, token: &str) -> Vec<String> {
        vec![
            "--p0".into(),
            self.client[0].to_string(),
            "--p0-cert".into(),
            self.cert(0).display().to_string(),
            "--p1".into(),
            self.client[1].to_string(),
            "--p1-cert".into(),
            self.cert(1).display().to_string(),
            "--token".into(),
            token.into(),
        ]
    }

    /// Starts a `dealer` process and names it in both configurations; the parties are restarted
    /// by the caller.
    pub fn start_dealer(&self, tmp: &Path) -> Child {
        let ddir = tmp.join("dealer");
        let dealer = env!("CARGO_BIN_EXE_dealer");
        run_ok(Command::new(dealer).args(["init", "--dir", ddir.to_str().unwrap()]));
        let port = free_port();
        let mut child = Command::new(dealer)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--cert-dir", ddir.to_str().unwrap()])
            .args(["--p0-cert", self.cert(0).to_str().unwrap()])
            .args(["--p1-cert", self.cert(1).to_str().unwrap()])
            .args(["--transport", "tls-tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(lines.next().unwrap().unwrap().contains("dealer listening"));
        for id in 0..2 {
            let p = tmp.join(format!("p{id}/party.toml"));
            let mut cfg = std::fs::read_to_string(&p).unwrap();
            cfg.push_str(&format!(
                "[dealer]\naddress = \"127.0.0.1:{port}\"\ncertificate = \"{}\"\n",
                ddir.join("cert.pem").display()
            ));
            std::fs::write(&p, cfg).unwrap();
        }
        child
    }

    pub fn log(&self, id: usize) -> PathBuf {
        self.dir.join(format!("p{id}.log"))
    }

    pub fn start(&mut self, id: usize) {
        self.start_with_fault(id, None);
    }

    /// Starts party `id`, with the fault `fault` injected (`party::server::FAULT_ENV`).
    pub fn start_with_fault(&mut self, id: usize, fault: Option<&str>) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(id))
            .unwrap();
        let mut cmd = Command::new(PARTY);
        cmd.args([
            "serve",
            "--config",
            self.dir.join(format!("p{id}/party.toml")).to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(log)
        .env("RUST_LOG", "info");
        if let Some(f) = fault {
            cmd.env(party::server::FAULT_ENV, f);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let Some(l) = lines.next() else {
                let log = std::fs::read_to_string(self.log(id)).unwrap_or_default();
                panic!("party {id} exited before listening; its log:\n{log}");
            };
            if l.unwrap().contains("listening for clients") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        self.procs[id] = Some(child);
    }

    /// SIGKILL (`Child::kill` on Unix) and reap.
    pub fn kill9(&mut self, id: usize) {
        if let Some(mut p) = self.procs[id].take() {
            p.kill().unwrap();
            let _ = p.wait();
        }
    }

    /// Waits for party `id` to exit by itself (after an injected fault) and reaps it.
    pub fn wait_exit(&mut self, id: usize) {
        if let Some(mut p) = self.procs[id].take() {
            let _ = p.wait();
        }
    }

    pub fn log_text(&self, id: usize) -> String {
        std::fs::read_to_string(self.log(id)).unwrap_or_default()
    }

    pub fn wait_log(&self, id: usize, needle: &str, count: usize) {
        self.wait_until(&format!("{count} × {needle:?} in log {id}"), || {
            self.log_text(id).matches(needle).count() >= count
        });
    }

    pub fn wait_until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let t = Instant::now();
        while !ok() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "waited 60 s for {what}\nP0:\n{}\nP1:\n{}",
                self.log_text(0),
                self.log_text(1)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until both parties logged their `n`-th peer link (each restart of either party
    /// makes one more on both sides).
    pub fn wait_linked(&self, n: usize) {
        self.wait_log(1, "connected to the peer", n);
        self.wait_log(0, "peer connected from", n);
    }

    /// Lines of a party's log that contain every one of `words`.
    pub fn log_lines(&self, id: usize, words: &[&str]) -> usize {
        self.log_text(id)
            .lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .count()
    }

    pub fn cert(&self, id: usize) -> PathBuf {
        self.dir.join(format!("p{id}/cert.pem"))
    }

    /// A `share-upload` command with connection flags, `args` and the file last.
    pub fn upload_cmd(&self, token: &str, args: &[&str], file: &Path) -> Command {
        let mut c = Command::new(UPLOAD);
        c.args([
            "--parties",
            &format!("{},{}", self.client[0], self.client[1]),
            "--p0-cert",
            self.cert(0).to_str().unwrap(),
            "--p1-cert",
            self.cert(1).to_str().unwrap(),
            "--token",
            token,
            "--quiet",
        ])
        .args(args)
        .arg(file);
        c
    }

    pub fn upload(&self, token: &str, args: &[&str], file: &Path) -> std::process::Output {
        self.upload_cmd(token, args, file).output().unwrap()
    }

    pub async fn client(&self, id: usize, token: &str) -> Result<Client, ClientError> {
        let cert = PeerCert::load(&self.cert(id)).unwrap();
        let me = Identity::generate("test-client").unwrap();
        Client::connect(self.client[id], &cert, &me, Some(token)).await
    }

    pub fn entries_dir(&self, id: usize) -> PathBuf {
        self.dir.join(format!("p{id}/data/entries"))
    }

    /// Every manifest in a party's store, read from disk, sorted by name then state.
    pub fn manifests(&self, id: usize) -> Vec<Manifest> {
        let mut v: Vec<Manifest> = std::fs::read_dir(self.entries_dir(id))
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension()? == "toml")
                    .then(|| toml::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap())
            })
            .collect();
        v.sort_by(|a, b| (&a.name, a.created).cmp(&(&b.name, b.created)));
        v
    }

    /// (state, name, rows) of every entry of a party.
    pub fn entries(&self, id: usize) -> Vec<(String, String, u64)> {
        self.manifests(id)
            .into_iter()
            .map(|m| (format!("{:?}", m.state).to_lowercase(), m.name, m.rows))
            .collect()
    }

    /// (state, name) of every entry of a party.
    pub fn states(&self, id: usize) -> Vec<(String, String)> {
        self.entries(id)
            .into_iter()
            .map(|(state, name, _)| (state, name))
            .collect()
    }

    /// Files in a party's store that are neither manifests nor shares (partial uploads).
    pub fn partial_files(&self, id: usize) -> Vec<PathBuf> {
        std::fs::read_dir(self.entries_dir(id))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                !matches!(
                    p.extension().and_then(|x| x.to_str()),
                    Some("toml") | Some("share") | Some("keys")
                )
            })
            .collect()
    }

    /// The plaintext of a committed dataset, reconstructed from both parties' share files
    /// (what no party can do alone; the test plays both).
    pub fn reconstruct(&self, name: &str) -> ndarray::Array2<f64> {
        let share = |id: usize| {
            let m = self
                .manifests(id)
                .into_iter()
                .find(|m| m.name == name && m.state == party::store::State::Committed)
                .unwrap_or_else(|| panic!("no committed {name} at P{id}"));
            let bytes =
                std::fs::read(self.entries_dir(id).join(format!("{}.share", m.id))).unwrap();
            let s = match m.form {
                party::proto::ShareForm::Seed => mpc::share::Seed(bytes.try_into().unwrap())
                    .expand(m.rows as usize, m.cols as usize),
                party::proto::ShareForm::Matrix => {
                    let w: Vec<u64> = bytes
                        .chunks_exact(8)
                        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                        .collect();
                    mpc::Share::from_ring(
                        ndarray::Array2::from_shape_vec((m.rows as usize, m.cols as usize), w)
                            .unwrap(),
                    )
                }
            };
            (s, m.frac_bits)
        };
        let ((s0, f), (s1, _)) = (share(0), share(1));
        let fp = mpc::FixedPoint::new(f);
        fp.decode_matrix(&mpc::share::reconstruct(&s0, &s1).view())
    }
}

/// Accuracy (%) of the linear classifier `w` on `x` against labels `y`: class 1 where the score
/// `x·w` (with `ml::models::linreg::predict`, so `w` may carry an intercept row) is ≥ 0.
pub fn sign_accuracy(w: &ndarray::Array2<f64>, x: &ndarray::Array2<f64>, y: &[usize]) -> f64 {
    let s = ml::models::linreg::predict(w, x).unwrap();
    let ok = s
        .column(0)
        .iter()
        .zip(y)
        .filter(|(v, &t)| usize::from(**v >= 0.0) == t)
        .count();
    100.0 * ok as f64 / y.len() as f64
}

/// The plaintext twin of a `party train --model logreg` job on `full` (the features, then the
/// 0/1 label): the same rows, schedule (`epochs`, `batch`, shuffle `seed`), learning rate and
/// zero initial weights; an intercept row when `intercept` (the jobs' default).
pub async fn twin_logreg(
    full: &ndarray::Array2<f64>,
    (epochs, batch, lr, seed): (u64, u64, f64, u64),
    intercept: bool,
) -> ndarray::Array2<f64> {
    let d = full.ncols() - 1;
    let x = full.slice(ndarray::s![.., ..d]).to_owned();
    let y = full.slice(ndarray::s![.., d..]).to_owned();
    let sched = ml::Schedule::shuffled(x.nrows(), batch as usize, epochs as usize, seed).unwrap();
    let hyper = ml::models::linreg::LinRegHyper::new(lr, batch as usize).unwrap();
    let x = if intercept {
        ml::models::bias::append_ones_plain(&x)
    } else {
        x
    };
    let w0 = ndarray::Array2::zeros((x.ncols(), 1));
    let mut plain = ml::backend::Plain::new();
    ml::models::logreg::train(&mut plain, &x, &y, w0, &sched, &hyper, &|_| {})
        .await
        .unwrap()
}

/// `party train` arguments of a linear regression with its default intercept on `dataset`
/// (8 epochs, batch 32, learning rate 0.5, seed 4, OT triples), ending in `--reveal`: the caller
/// appends the model file's path.
pub fn linreg_train_args(dataset: &str) -> [&str; 16] {
    [
        "train",
        "--dataset",
        dataset,
        "--model",
        "linreg",
        "--epochs",
        "8",
        "--batch",
        "32",
        "--lr",
        "0.5",
        "--seed",
        "4",
        "--triples",
        "ot",
        "--reveal",
    ]
}

/// Asserts two matrices agree to within one fixed-point unit (16 fractional bits).
pub fn assert_close(a: &ndarray::Array2<f64>, b: &ndarray::Array2<f64>) {
    assert_eq!(a.dim(), b.dim());
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 2f64.powi(-16), "max difference {worst}");
}
