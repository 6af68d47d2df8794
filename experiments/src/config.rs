//! Experiment configs (TOML). Unknown keys are errors, so a typo never silently falls back to a
//! default; parse errors name the file, line and column.

pub mod cryptogcn;
pub mod hecnn;
pub mod secure_stgcn;
pub mod stgcn;
pub mod supervised;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
pub use supervised::{RemoteTask, TrainTask};

/// A whole experiment config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name and seed.
    pub experiment: ExperimentMeta,
    /// How the two parties talk.
    #[serde(default)]
    pub transport: TransportConfig,
    /// 2PC settings.
    #[serde(default)]
    pub mpc: MpcConfig,
    /// The tasks, run in order.
    #[serde(rename = "task", default)]
    pub tasks: Vec<Task>,
}

/// Name, description, seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentMeta {
    /// Short name; results go to `results/<name>/<timestamp>/`.
    pub name: String,
    /// One line for the report.
    #[serde(default)]
    pub description: String,
    /// Seed of every public random choice (splits, batch order, initial weights). Keys, masks and
    /// shares always come from the OS CSPRNG, never from this seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    42
}

/// Transport between the parties.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportConfig {
    /// `quic`, `tls-tcp`, `tcp-insecure` (benchmarks only) or `memory` (in-process channels).
    #[serde(default = "default_transport")]
    pub kind: String,
}

fn default_transport() -> String {
    "quic".into()
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            kind: default_transport(),
        }
    }
}

/// 2PC settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MpcConfig {
    /// Fixed-point fractional bits.
    #[serde(default = "default_frac_bits")]
    pub frac_bits: u32,
    /// Triple source: `dealer` (trusted third party, in-process), `client-aided` (the data owner
    /// deals, SecureML §V), `ot` (the two servers alone, by oblivious transfer), `he` (the two
    /// servers alone, matrix cross terms by RLWE encryption) or `auto` (the cheaper of `ot` and
    /// `he` for the run's requests, `mpc::triples::choice`; remote jobs: chosen by P0).
    #[serde(default = "default_triples")]
    pub triples: String,
    /// Truncation of shared products: `local` (SecureML's, the default: fails with probability
    /// ≤ 2^(l_x+1−64) per value) or `exact` (no failure event; one elementwise triple and one
    /// round per truncation). Training tasks run in-process; remote jobs support `local` only.
    #[serde(default)]
    pub truncation: mpc::trunc::Truncation,
}

fn default_frac_bits() -> u32 {
    16
}

fn default_triples() -> String {
    "dealer".into()
}

impl Default for MpcConfig {
    fn default() -> Self {
        Self {
            frac_bits: default_frac_bits(),
            triples: default_triples(),
            truncation: Default::default(),
        }
    }
}

/// One task of an experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Task {
    /// Secure linear regression beside its plaintext twin.
    Linreg(TrainTask),
    /// Secure logistic regression (piecewise sigmoid) beside its twin and plaintext variants.
    Logreg(TrainTask),
    /// A secure multi-layer perceptron (ReLU, softmax) beside its twin.
    Mlp(TrainTask),
    /// Secure matrix products against the plaintext ring product.
    MatmulBench(MatmulBenchTask),
    /// OT extension throughput over the transport.
    OtBench(OtBenchTask),
    /// A layer of ReLUs with the GMW adder and the millionaires' comparison, side by side.
    ReluBench(ReluBenchTask),
    /// Throughput and round trips of plain TCP, TLS over TCP and QUIC on loopback, in one run.
    TransportBench(TransportBenchTask),
    /// Plaintext ST-GCN training with ReLU / x² / polynomial activations on skeleton data.
    Stgcn(stgcn::StgcnTask),
    /// Encrypted ST-GCN inference (CKKS): AMA vs baseline counts, sizes, latency, accuracy.
    Cryptogcn(cryptogcn::CryptogcnTask),
    /// A public ST-GCN fine-tuned in 2PC on private skeleton clips beside its twin, then served
    /// under CKKS.
    SecureStgcn(secure_stgcn::SecureStgcnTask),
    /// Encrypted CNN inference on MNIST (CKKS): CryptoNets batch layout on the test set.
    Hecnn(hecnn::HecnnTask),
}

/// Where a task's data comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataSource {
    /// A bundled dataset by name (`diabetes`, `breast_cancer`, ...).
    Bundled {
        /// Name.
        name: String,
        /// Fraction of rows held out for testing.
        #[serde(default = "default_test_fraction")]
        test_fraction: f64,
    },
    /// MNIST (bundled, 60,000 + 10,000); pixels scaled to [0, 1].
    Mnist {
        /// Digits labelled 1 for a binary task (e.g. `[0]` for "0 vs rest"); empty for 10 classes.
        #[serde(default)]
        positive: Vec<u8>,
        /// Use only the first rows of the training set.
        #[serde(default)]
        train_rows: Option<usize>,
        /// Use only the first rows of the test set.
        #[serde(default)]
        test_rows: Option<usize>,
    },
    /// CSV files (features, then the label or target in the last column), read from paths
    /// relative to the current directory. Used as they are: for `--remote` runs the training file
    /// is the owner's plaintext copy of what was uploaded (for the twin) and may be omitted.
    Csv {
        /// The training set (the owner's copy of the uploaded data).
        #[serde(default)]
        train: Option<std::path::PathBuf>,
        /// The test set.
        test: std::path::PathBuf,
        /// The last column is a real-valued target (linreg) rather than class indices.
        #[serde(default)]
        regression: bool,
    },
    /// A planted-weight regression problem.
    Planted {
        /// Training rows.
        n_train: usize,
        /// Test rows.
        n_test: usize,
        /// Features.
        d: usize,
        /// Standard deviation of the label noise.
        #[serde(default = "default_noise")]
        noise_std: f64,
    },
}

fn default_test_fraction() -> f64 {
    0.2
}

fn default_noise() -> f64 {
    0.1
}

/// Matrix-product benchmark settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatmulBenchTask {
    /// Products as `[rows, inner, cols]`.
    pub shapes: Vec<[usize; 3]>,
    /// Repetitions per shape (the median is reported).
    #[serde(default = "default_reps")]
    pub repetitions: usize,
}

/// OT-extension benchmark settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtBenchTask {
    /// Number of OTs per run (rounded up to a multiple of 64).
    pub count: usize,
    /// Runs (the median is reported).
    #[serde(default = "default_reps")]
    pub repetitions: usize,
}

/// ReLU comparison benchmark settings (task `relu-bench`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReluBenchTask {
    /// Rows of the ReLU layer.
    pub rows: usize,
    /// Columns of the ReLU layer.
    pub cols: usize,
    /// Leaf widths of the millionaires' comparison to run beside the adder (1 to 6), each with
    /// the Beaver select and with the OT multiplexer (the adder with the Beaver select only).
    pub leaf_bits: Vec<u8>,
    /// Triple source (`ot`, `he`, `dealer`, …).
    #[serde(default = "default_bench_triples")]
    pub triples: String,
    /// Runs (the median online time is reported; bytes are per run).
    #[serde(default = "default_reps")]
    pub repetitions: usize,
}

fn default_bench_triples() -> String {
    "ot".into()
}

fn default_reps() -> usize {
    5
}

/// Transport benchmark settings (task `transport-bench`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportBenchTask {
    /// KiB sent one way per repetition.
    #[serde(default = "default_total_kib")]
    pub total_kib: usize,
    /// KiB per frame of the one-way transfer.
    #[serde(default = "default_message_kib")]
    pub message_kib: usize,
    /// Round trips per repetition.
    #[serde(default = "default_pings")]
    pub pings: usize,
    /// Bytes per ping frame.
    #[serde(default = "default_ping_bytes")]
    pub ping_bytes: usize,
    /// Repetitions per transport (medians are reported).
    #[serde(default = "default_reps")]
    pub repetitions: usize,
    /// The transports to measure (`tcp-insecure`, `tls-tcp`, `quic`); all three if omitted.
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
}

fn default_total_kib() -> usize {
    64 << 10
}

fn default_message_kib() -> usize {
    1 << 10
}

fn default_pings() -> usize {
    2000
}

fn default_ping_bytes() -> usize {
    8
}

impl TransportBenchTask {
    /// The transports to measure, plain TCP first (the baseline of the ratios).
    pub fn transport_kinds(&self) -> Result<Vec<party::transport::TransportKind>> {
        use party::transport::TransportKind;
        let all = [
            TransportKind::Tcp,
            TransportKind::TlsTcp,
            TransportKind::Quic,
        ];
        let Some(names) = &self.kinds else {
            return Ok(all.to_vec());
        };
        let mut kinds = Vec::new();
        for n in names {
            let k: TransportKind = n.parse().map_err(|_| {
                anyhow::anyhow!("kinds: {n:?} is not one of tcp-insecure, tls-tcp, quic")
            })?;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds.sort_by_key(|k| all.iter().position(|a| a == k));
        Ok(kinds)
    }

    /// Checks sizes and names.
    pub fn validate(&self) -> Result<()> {
        let max_kib = mpc::net::MAX_FRAME_LEN >> 10;
        if self.message_kib == 0 || self.message_kib > max_kib {
            bail!(
                "message_kib = {} must be between 1 and {max_kib} (the largest frame)",
                self.message_kib
            );
        }
        if self.total_kib < self.message_kib {
            bail!(
                "total_kib = {} must be at least message_kib = {}",
                self.total_kib,
                self.message_kib
            );
        }
        if self.pings == 0 || self.ping_bytes == 0 || self.ping_bytes > 1 << 20 {
            bail!(
                "pings = {} and ping_bytes = {} must be positive (ping_bytes at most 1 MiB)",
                self.pings,
                self.ping_bytes
            );
        }
        if self.transport_kinds()?.is_empty() {
            bail!("kinds = [] names no transport");
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    let col = s.start - text[..s.start].rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(":{line}:{col}")
                })
                .unwrap_or_default();
            anyhow::anyhow!("{origin}{at}: {}", e.message())
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    fn validate(&self, origin: &str) -> Result<()> {
        if self.experiment.name.is_empty()
            || !self
                .experiment
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!(
                "{origin}: experiment.name {:?} must be non-empty and use only letters, digits, '-' and '_'",
                self.experiment.name
            );
        }
        if !["quic", "tls-tcp", "tcp-insecure", "memory"].contains(&self.transport.kind.as_str()) {
            bail!(
                "{origin}: transport.kind = {:?} is not one of quic, tls-tcp, tcp-insecure, memory",
                self.transport.kind
            );
        }
        let sources = [
            "dealer",
            "client-aided",
            "ot",
            "he",
            "auto",
            "ot-iknp",
            "he-iknp",
            "ot-silent",
            "he-silent",
        ];
        if !sources.contains(&self.mpc.triples.as_str()) {
            bail!(
                "{origin}: mpc.triples = {:?} is not one of {}",
                self.mpc.triples,
                sources.join(", ")
            );
        }
        mpc::FracBits::new(self.mpc.frac_bits)
            .with_context(|| format!("{origin}: mpc.frac_bits"))?;
        if self.tasks.is_empty() {
            bail!("{origin}: no [[task]] given");
        }
        for (i, t) in self.tasks.iter().enumerate() {
            if let Task::Stgcn(s) = t {
                s.validate()
                    .with_context(|| format!("{origin}: task #{}", i + 1))?;
            }
            if let Task::SecureStgcn(s) = t {
                s.validate()
                    .with_context(|| format!("{origin}: task #{}", i + 1))?;
            }
            if let Task::TransportBench(b) = t {
                b.validate()
                    .with_context(|| format!("{origin}: task #{}", i + 1))?;
            }
            if let Task::Hecnn(h) = t {
                h.validate()
                    .with_context(|| format!("{origin}: task #{}", i + 1))?;
            }
            if let Task::Cryptogcn(c) = t {
                c.validate()
                    .with_context(|| format!("{origin}: task #{}", i + 1))?;
            }
            if let Some((kind, l)) = t.training() {
                l.validate(kind, &format!("{origin}: task #{}", i + 1), &sources)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                Config::load(&p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
                n += 1;
            }
        }
        assert!(n >= 2);
    }

    #[test]
    fn truncation_is_local_by_default_and_selectable() {
        use mpc::trunc::Truncation;
        let cfg = |mpc: &str, task: &str| {
            Config::parse(
                &format!(
                    "[experiment]\nname = \"x\"\n{mpc}[[task]]\nkind = \"linreg\"\nepochs = 1\nlearning_rate = 0.25\n{task}[task.data.bundled]\nname = \"diabetes\"\n"
                ),
                "c.toml",
            )
        };
        let c = cfg("", "").unwrap();
        assert_eq!(c.mpc.truncation, Truncation::Local);
        let c = cfg(
            "[mpc]\ntruncation = \"exact\"\n",
            "truncation = \"local\"\n",
        )
        .unwrap();
        assert_eq!(c.mpc.truncation, Truncation::Exact);
        let Task::Linreg(t) = &c.tasks[0] else {
            panic!("{:?}", c.tasks[0])
        };
        assert_eq!(t.truncation, Some(Truncation::Local));
        let e = cfg("[mpc]\ntruncation = \"lazy\"\n", "").unwrap_err();
        assert!(format!("{e:#}").contains("lazy"), "{e:#}");
    }

    #[test]
    fn transport_bench_parses_with_defaults_and_refuses_bad_sizes() {
        use party::transport::TransportKind;
        let cfg = |task: &str| {
            Config::parse(
                &format!(
                    "[experiment]\nname = \"t\"\n[[task]]\nkind = \"transport-bench\"\n{task}"
                ),
                "t.toml",
            )
        };
        let c = cfg("").unwrap();
        let Task::TransportBench(t) = &c.tasks[0] else {
            panic!("{:?}", c.tasks[0])
        };
        assert_eq!((t.total_kib, t.message_kib, t.ping_bytes), (65536, 1024, 8));
        assert_eq!(
            t.transport_kinds().unwrap(),
            [
                TransportKind::Tcp,
                TransportKind::TlsTcp,
                TransportKind::Quic
            ]
        );
        let c = cfg("kinds = [\"quic\", \"tcp-insecure\"]\n").unwrap();
        let Task::TransportBench(t) = &c.tasks[0] else {
            panic!()
        };
        assert_eq!(
            t.transport_kinds().unwrap(),
            [TransportKind::Tcp, TransportKind::Quic]
        );
        let e = format!("{:#}", cfg("kinds = [\"udp\"]\n").unwrap_err());
        assert!(
            e.contains("t.toml: task #1") && e.contains("\"udp\""),
            "{e}"
        );
        let e = format!("{:#}", cfg("message_kib = 0\n").unwrap_err());
        assert!(e.contains("message_kib = 0"), "{e}");
        let e = format!(
            "{:#}",
            cfg("message_kib = 4096\ntotal_kib = 1024\n").unwrap_err()
        );
        assert!(e.contains("total_kib = 1024"), "{e}");
        let e = format!("{:#}", cfg("message_kib = 1048576\n").unwrap_err());
        assert!(e.contains("262144"), "{e}");
        let e = format!("{:#}", cfg("total_mib = 3\n").unwrap_err());
        assert!(e.contains("total_mib"), "{e}");
    }

    #[test]
    fn steps_cut_training_tasks_and_must_be_positive() {
        let cfg = |extra: &str| {
            Config::parse(
                &format!("[experiment]\nname = \"s\"\n[[task]]\nkind = \"logreg\"\nepochs = 3\nlearning_rate = 0.25\n{extra}[task.data.bundled]\nname = \"breast_cancer\"\n"),
                "s.toml",
            )
        };
        let mut c = cfg("twin_label = \"\"\n").unwrap();
        let Task::Logreg(t) = &c.tasks[0] else {
            panic!("{:?}", c.tasks[0])
        };
        assert_eq!((t.steps, t.twin_label.as_deref()), (None, Some("")));
        c.set_steps(5);
        let Task::Logreg(t) = &c.tasks[0] else {
            panic!()
        };
        assert_eq!(t.steps, Some(5));
        let e = format!("{:#}", cfg("steps = 0\n").unwrap_err());
        assert!(
            e.contains("s.toml: task #1") && e.contains("steps = 0"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_file_line_and_value() {
        let e = Config::parse(
            "[experiment]\nname = \"x\"\n[mpc]\nfrac_bitz = 3\n",
            "c.toml",
        )
        .unwrap_err();
        let m = format!("{e:#}");
        assert!(
            m.starts_with("c.toml:4:1") && m.contains("frac_bitz"),
            "{m}"
        );
        let e = Config::parse(
            "[experiment]\nname = \"x\"\n[[task]]\nkind = \"linreg\"\nepochs = 1\nlearning_rate = -0.3\n[task.data.bundled]\nname = \"diabetes\"\n",
            "c.toml",
        )
        .unwrap_err();
        let m = format!("{e:#}");
        assert!(
            m.contains("learning_rate = -0.3") && m.contains("2^-30 ..= 64"),
            "{m}"
        );
        let e = Config::parse(
            "[experiment]\nname = \"a b\"\n[[task]]\nkind = \"matmul-bench\"\nshapes = []\n",
            "c.toml",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("\"a b\""));
    }
}
