//! End to end, on real processes: two `party serve` servers on loopback, the data owner's
//! `party client-init`, `experiment export`, `share-upload` and `experiment run --remote`.
//!
//! The `party` and `share-upload` binaries belong to the `party` crate, which Cargo does not build
//! for this crate's tests: they are taken from the target directory when they are newer than
//! every source file they are built from (`cargo test --workspace` builds them), and built with
//! `cargo build -p party --bins` otherwise.

use experiments::config::Config;
use party::testing::free_port;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

const EXPERIMENT: &str = env!("CARGO_BIN_EXE_experiment");

/// The newest modification time of the `.rs` and `Cargo.toml` files under `dir`.
fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return newest;
    };
    for e in rd.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target" || n == "fuzz") {
                continue;
            }
            newest_source(&p)
        } else if p.extension().is_some_and(|x| x == "rs")
            || p.file_name().is_some_and(|n| n == "Cargo.toml")
        {
            e.metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        } else {
            continue;
        };
        newest = newest.max(t);
    }
    newest
}

/// Paths of the `party`, `share-upload` and `dealer` binaries, built if missing or stale.
fn party_bins() -> &'static (PathBuf, PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = Path::new(EXPERIMENT).parent().unwrap().to_path_buf();
        let bins = (
            dir.join("party"),
            dir.join("share-upload"),
            dir.join("dealer"),
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let sources = ["party", "protocols/mpc", "protocols/ml", "datasets"]
            .iter()
            .map(|d| newest_source(&root.join(d)))
            .max()
            .unwrap();
        let fresh = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= sources)
        };
        if !(fresh(&bins.0) && fresh(&bins.1) && fresh(&bins.2)) {
            let target = dir.parent().unwrap();
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args([
                "build",
                "-p",
                "party",
                "--bin",
                "party",
                "--bin",
                "share-upload",
                "--bin",
                "dealer",
            ])
            .arg("--target-dir")
            .arg(target)
            .current_dir(root);
            if !cfg!(debug_assertions) {
                cmd.arg("--release");
            }
            let st = cmd.status().expect("running cargo build -p party");
            assert!(st.success(), "cargo build -p party --bins failed");
        }
        bins
    })
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Two `party serve` processes and one registered client (`me/`, with `me/p0.toml`, `me/p1.toml`).
struct Cluster {
    dir: PathBuf,
    client: [String; 2],
    procs: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

impl Cluster {
    /// Starts the parties; with `dealer`, also a `dealer` process named in both configurations.
    fn start(dir: &Path, with_dealer: bool) -> Self {
        let (party, _, dealer_bin) = party_bins();
        for id in 0..2 {
            let d = dir.join(format!("p{id}"));
            run_ok(
                Command::new(party)
                    .args(["init", "--id", &id.to_string(), "--dir"])
                    .arg(&d),
            );
        }
        for id in 0..2 {
            std::fs::copy(
                dir.join(format!("p{}/cert.pem", 1 - id)),
                dir.join(format!("p{id}/peer-cert.pem")),
            )
            .unwrap();
        }
        let peer_port = free_port();
        let client = [0, 1].map(|_| format!("127.0.0.1:{}", free_port()));
        let me = dir.join("me");
        let fp = run_ok(
            Command::new(party)
                .args(["client-init", "--dir"])
                .arg(&me)
                .args(["--p0", &client[0], "--p0-cert"])
                .arg(dir.join("p0/cert.pem"))
                .args(["--p1", &client[1], "--p1-cert"])
                .arg(dir.join("p1/cert.pem")),
        )
        .trim()
        .to_string();
        assert_eq!(fp.len(), 64, "{fp}");
        let mut c = Cluster {
            dir: dir.to_path_buf(),
            client: client.clone(),
            procs: Vec::new(),
        };
        let mut dealer = None;
        if with_dealer {
            let ddir = dir.join("dealer");
            run_ok(Command::new(dealer_bin).args(["init", "--dir"]).arg(&ddir));
            let port = free_port();
            let mut child = Command::new(dealer_bin)
                .args(["--listen", &format!("127.0.0.1:{port}"), "--cert-dir"])
                .arg(&ddir)
                .arg("--p0-cert")
                .arg(dir.join("p0/cert.pem"))
                .arg("--p1-cert")
                .arg(dir.join("p1/cert.pem"))
                .args(["--transport", "tls-tcp"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            assert!(lines.next().unwrap().unwrap().contains("dealer listening"));
            std::thread::spawn(move || for _ in lines {});
            c.procs.push(child);
            dealer = Some((port, ddir.join("cert.pem")));
        }
        for (id, caddr) in client.iter().enumerate() {
            let peer = if id == 0 {
                format!("listen = \"127.0.0.1:{peer_port}\"")
            } else {
                format!("address = \"127.0.0.1:{peer_port}\"")
            };
            let mut cfg = format!(
                "role = {id}\nidentity_dir = \".\"\ndata_dir = \"data\"\n\
                 [peer]\n{peer}\ncertificate = \"peer-cert.pem\"\ntransport = \"tls-tcp\"\ntimeout_s = 60\n\
                 [clients]\nlisten = \"{}\"\n\
                 [[clients.allow]]\nname = \"owner\"\nfingerprint = \"{fp}\"\n\
                 [limits]\nmax_upload_bytes = 100000000\nmax_concurrent_jobs = 2\n",
                caddr
            );
            if let Some((port, cert)) = &dealer {
                cfg.push_str(&format!(
                    "[dealer]\naddress = \"127.0.0.1:{port}\"\ncertificate = {:?}\n",
                    cert.display().to_string()
                ));
            }
            std::fs::write(dir.join(format!("p{id}/party.toml")), cfg).unwrap();
        }
        for id in 0..2 {
            let log = std::fs::File::create(dir.join(format!("p{id}.log"))).unwrap();
            let mut child = Command::new(party)
                .arg("serve")
                .arg("--config")
                .arg(dir.join(format!("p{id}/party.toml")))
                .stdout(Stdio::piped())
                .stderr(log)
                .env("RUST_LOG", "info")
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            loop {
                let Some(l) = lines.next() else {
                    let log = std::fs::read_to_string(dir.join(format!("p{id}.log")));
                    panic!("party {id} exited before listening; its log:\n{log:?}");
                };
                if l.unwrap().contains("listening for clients") {
                    break;
                }
            }
            std::thread::spawn(move || for _ in lines {});
            c.procs.push(child);
        }
        c.wait_log(0, "peer connected from");
        c
    }

    fn wait_log(&self, id: usize, needle: &str) {
        let t = Instant::now();
        let path = self.dir.join(format!("p{id}.log"));
        while !std::fs::read_to_string(&path)
            .unwrap_or_default()
            .contains(needle)
        {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "no {needle:?} in {path:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn upload(&self, name: &str, file: &Path) {
        let (_, upload, _) = party_bins();
        let id = run_ok(
            Command::new(upload)
                .args([
                    "--parties",
                    &format!("{},{}", self.client[0], self.client[1]),
                ])
                .arg("--p0-cert")
                .arg(self.dir.join("me/p0-cert.pem"))
                .arg("--p1-cert")
                .arg(self.dir.join("me/p1-cert.pem"))
                .arg("--cert-dir")
                .arg(self.dir.join("me"))
                .args(["--name", name, "--quiet"])
                .arg(file),
        );
        assert_eq!(id.trim().len(), 32, "{id}");
    }

    /// `experiment run --remote me/p0.toml,me/p1.toml CONFIG`; the output and results.json.
    fn run_remote(&self, config: &Path, out: &Path) -> (Output, serde_json::Value) {
        let remote = format!(
            "{},{}",
            self.dir.join("me/p0.toml").display(),
            self.dir.join("me/p1.toml").display()
        );
        let o = Command::new(EXPERIMENT)
            .arg("run")
            .args(["--remote", &remote])
            .arg("--out")
            .arg(out)
            .arg(config)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "experiment run --remote failed:\n{}\n{}\nP0 log:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(self.dir.join("p0.log")).unwrap_or_default()
        );
        let name_dir = std::fs::read_dir(out)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let run_dir = std::fs::read_dir(&name_dir)
            .unwrap()
            .flatten()
            .find(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .unwrap()
            .path();
        assert!(run_dir.join("report.md").exists());
        let json =
            serde_json::from_slice(&std::fs::read(run_dir.join("results.json")).unwrap()).unwrap();
        (o, json)
    }
}

/// `experiment export CONFIG --out DIR`: the files written, in order (train, test).
fn export(config: &Path, out: &Path) -> Vec<PathBuf> {
    run_ok(
        Command::new(EXPERIMENT)
            .arg("export")
            .arg(config)
            .arg("--out")
            .arg(out),
    )
    .lines()
    .map(PathBuf::from)
    .collect()
}

/// Writes `text` as `<name>.toml`, starts two parties (with a dealer process if asked), exports
/// and uploads the task's training data as `dataset`, runs `experiment run --remote` and asserts
/// the secure test accuracy is within 2 pp of the twin's; returns the remote results.json.
fn run_mlp_remote(
    tmp: &Path,
    name: &str,
    text: &str,
    dataset: &str,
    with_dealer: bool,
) -> serde_json::Value {
    let cfg_file = tmp.join(format!("{name}.toml"));
    std::fs::write(&cfg_file, text).unwrap();
    let c = Cluster::start(tmp, with_dealer);
    let files = export(&cfg_file, &tmp.join("owner-data"));
    c.upload(dataset, &files[0]);
    let t = Instant::now();
    let (out, remote) = c.run_remote(&cfg_file, &tmp.join("results"));
    eprintln!(
        "experiment run --remote ({name}) took {:.2} s\n{}",
        t.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout)
    );
    let (s, p) = (
        metric(&remote, "secure.test_accuracy_pct"),
        metric(&remote, "plain.test_accuracy_pct"),
    );
    assert!((s - p).abs() <= 2.0, "secure {s} % vs twin {p} %");
    remote
}

fn metric(json: &serde_json::Value, key: &str) -> f64 {
    json["metrics"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("no metric {key} in {}", json["metrics"]))
}

/// The acceptance test of issue #5: breast cancer uploaded with `share-upload`, logistic
/// regression trained as a remote job with OT triples, revealed to the owner — the accuracy in
/// results.json equals the in-process run of the same config with the same seeds (and the twin's
/// is identical, since it is the same deterministic computation on the same data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_logreg_on_breast_cancer_matches_the_in_process_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/remote-logreg.toml");
    let mut cfg = Config::load(&cfg_path).unwrap();
    // Fewer epochs than the example config keep the test short; everything else as shipped.
    if let experiments::config::Task::Logreg(t) = &mut cfg.tasks[0] {
        t.epochs = 4;
    }
    let cfg_file = tmp.path().join("remote-logreg.toml");
    std::fs::write(&cfg_file, toml::to_string(&cfg).unwrap()).unwrap();

    let c = Cluster::start(tmp.path(), false);
    let files = export(&cfg_file, &tmp.path().join("owner-data"));
    assert!(
        files[0].ends_with("remote-logreg-task1-train.csv"),
        "{files:?}"
    );
    c.upload("cancer", &files[0]);

    let t = Instant::now();
    let (out, remote) = c.run_remote(&cfg_file, &tmp.path().join("results"));
    eprintln!(
        "experiment run --remote took {:.2} s\n{}",
        t.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(remote["config"]["experiment"]["name"], "remote-logreg");
    assert_eq!(remote["config"]["remote"]["p0"], c.client[0]);

    // The same config in-process (both parties in this process; the transport does not change
    // the arithmetic).
    cfg.transport.kind = "memory".into();
    let local = experiments::run(&cfg).await.unwrap();
    let lm = &local.metrics;
    let (rs, ls) = (
        metric(&remote, "secure.test_accuracy_pct"),
        lm["secure.test_accuracy_pct"],
    );
    let (rp, lp) = (
        metric(&remote, "plain.test_accuracy_pct"),
        lm["plain.test_accuracy_pct"],
    );
    eprintln!("secure: remote {rs:.2} %, in-process {ls:.2} %; twin: remote {rp:.2} %, in-process {lp:.2} %");
    assert_eq!(rs, ls, "remote secure accuracy vs in-process");
    assert_eq!(rp, lp, "the twin is the same computation on the same data");
    assert_eq!(
        metric(&remote, "plain.train_accuracy_pct"),
        lm["plain.train_accuracy_pct"]
    );
    assert!(rp > 90.0, "logistic regression on breast cancer: {rp} %");
    let dw = metric(&remote, "secure.max_weight_diff");
    assert!(dw < 1e-2, "revealed weights vs twin: {dw}");
    assert!(metric(&remote, "secure.job_s") > 0.0);
    // The parties' own counts, reported at the end of the job: the online phase is the same
    // protocol on the same shapes as in-process, so its traffic and rounds are identical.
    for key in [
        "secure.bytes_sent_p0_bytes",
        "secure.bytes_sent_p1_bytes",
        "secure.rounds_p0_count",
        "secure.rounds_p1_count",
    ] {
        assert_eq!(metric(&remote, key), lm[key], "{key}: remote vs in-process");
    }
    for key in [
        "secure.online_s",
        "secure.offline_s",
        "secure.offline_bytes_sent_p0_bytes",
        "secure.offline_bytes_received_p1_bytes",
    ] {
        assert!(metric(&remote, key) > 0.0, "{key}");
    }
    assert_eq!(
        metric(&remote, "secure.offline_bytes_sent_p0_bytes"),
        metric(&remote, "secure.offline_bytes_received_p1_bytes")
    );
}

/// An MLP job (784-32-10, exp softmax) on 1,024 MNIST rows uploaded as CSV, triples from a
/// `dealer` process, revealed to the owner: its test accuracy is within 2 pp of the plaintext
/// twin's. The parties compute the one-hot labels from the shared class column themselves.
/// Dealer triples keep it short: with OT triples the same job did not finish within 14 minutes
/// on a heavily loaded 2-core machine (not diagnosed: OT cost for the 1,024 × 784 mask, or the
/// stall seen once in a small OT job under the same load); the OT path of MLP jobs is tested on
/// a smaller network below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_mlp_on_an_mnist_slice_tracks_its_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
[experiment]
name = "remote-mlp"
seed = 1
[mpc]
triples = "dealer"
[[task]]
kind = "mlp"
layers = [784, 32, 10]
softmax = "exp"
epochs = 2
batch_size = 64
learning_rate = 0.25
standardize = false
data = { mnist = { train_rows = 1024, test_rows = 1000 } }
remote = { dataset = "mnist-1k" }
"#;
    let remote = run_mlp_remote(tmp.path(), "remote-mlp", text, "mnist-1k", true);
    let p = metric(&remote, "plain.test_accuracy_pct");
    assert!(
        p > 50.0,
        "32 hidden units after 32 steps should beat chance clearly: {p} %"
    );
    let dw = metric(&remote, "secure.max_weight_diff");
    assert!(dw < 0.1, "revealed weights vs twin: {dw}");
    assert_eq!(metric(&remote, "secure.steps_count"), 32.0);
}

/// An MLP job with OT triples (the two parties alone) and SecureML's ReLU softmax, small enough
/// for a test: breast cancer, 30-8-2, one epoch. The one-hot labels, the comparisons of the ReLU
/// layers and the softmax all draw on OT-made triples; the revealed model tracks its twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_mlp_with_ot_triples_tracks_its_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
[experiment]
name = "remote-mlp-ot"
seed = 5
[mpc]
triples = "ot"
[[task]]
kind = "mlp"
layers = [30, 8, 2]
softmax = "relu"
epochs = 1
batch_size = 32
learning_rate = 0.25
data = { bundled = { name = "breast_cancer", test_fraction = 0.2 } }
remote = { dataset = "cancer" }
"#;
    let remote = run_mlp_remote(tmp.path(), "remote-mlp-ot", text, "cancer", false);
    let p = metric(&remote, "plain.test_accuracy_pct");
    assert!(
        p > 80.0,
        "a 30-8-2 MLP on breast cancer after one epoch: {p} %"
    );
    let dw = metric(&remote, "secure.max_weight_diff");
    assert!(dw < 0.05, "revealed weights vs twin: {dw}");
}
