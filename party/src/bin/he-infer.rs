//! `he-infer` — encrypted ST-GCN or CNN inference against a party's inference endpoint.
//!
//! ```text
//! he-infer --client client.toml --list
//! he-infer --client client.toml --model bodypose --input pose.csv [--top 5] [--check model.json]
//! he-infer --client client.toml --model mocap15 --dataset mocap15 --index 7 [--repeat 3]
//! he-infer --client client.toml --model mnist-lola --input digit.png [--check mnist-cryptonets.json]
//! he-infer --client client.toml --model mnist-lola --dataset mnist --index 0 --check mnist-cryptonets.json
//! ```
//!
//! `--model` names a model the party serves: one configured in its `[inference]` section or one
//! its owner deployed with `party deploy` (the same format, the same announcement).
//!
//! The client makes a fresh CKKS secret key, uploads the relinearization and Galois keys once
//! (seed-compressed, streamed while they are generated), encrypts the sequence under the
//! parameters and layout the party announces (checked against the client's own list of 128-bit
//! presets), receives encrypted logits, decrypts them and prints the top classes. `--check`
//! runs the plaintext model locally on the same input and prints the largest logit error.
//!
//! `client.toml` (paths relative to the file; flags override it):
//!
//! ```toml
//! server = "127.0.0.1:7200"        # the party's client address
//! server_cert = "p0-cert.pem"      # the party's certificate, pinned
//! token = "..."                    # a bearer token (never sent: the client sends the credential
//!                                  # derived for server_cert; register `party hash-token`), or
//! cert_dir = "me"                  # an identity registered by fingerprint (party client-init)
//! ```
//!
//! Input files: see `party::infer::input` (CSV: one line per frame, `x0,y0[,z0],x1,…`; NPY:
//! `(C, T, V, M)` or `(C, T, V)`). `--dataset bodypose` takes sample `--index` of the BodyPose
//! test split (stratified 20 %, seed 42) and `--dataset mocap15` of the Mocap-15 cross-view test
//! split (20 clips per class), the splits the committed models were evaluated on.
//!
//! CNN models (the party announces the architecture): `--input digit.png` (8-bit grayscale or
//! RGB, 28 × 28, white digit on black as in MNIST; pixels / 255) or `digit.npy` (28 × 28 or
//! 784 values in `[0, 1]`), see `party::infer::image`; `--dataset mnist --index I` takes image
//! `I` of the bundled MNIST test set. The image is unfolded into one ciphertext per kernel tap
//! (LoLa's convolution representation) and encrypted; the party returns one logit ciphertext.

use anyhow::{bail, Context, Result};
use clap::Parser;
use ndarray::{Array4, Axis};
use party::client::Client;
use party::infer::{self, client::InferClient, ModelInfo};
use party::transport::{Identity, PeerCert};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "he-infer",
    about = "Encrypted ST-GCN or CNN inference (CKKS) against a Dyad party"
)]
struct Cli {
    /// Client configuration (server, server_cert, token or cert_dir).
    #[arg(long)]
    client: Option<PathBuf>,
    /// The party's client address (overrides the file).
    #[arg(long)]
    server: Option<SocketAddr>,
    /// The party's certificate (overrides the file).
    #[arg(long)]
    server_cert: Option<PathBuf>,
    /// Bearer token (overrides the file).
    #[arg(long)]
    token: Option<String>,
    /// Identity directory registered by fingerprint (overrides the file).
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// List the served models and exit.
    #[arg(long)]
    list: bool,
    /// Served model name.
    #[arg(long)]
    model: Option<String>,
    /// Input: a sequence (CSV or NPY) for an ST-GCN, an image (PNG or NPY, 28 × 28) for a CNN.
    #[arg(long, conflicts_with = "dataset")]
    input: Option<PathBuf>,
    /// Bundled dataset: bodypose or mocap15 (test split) for an ST-GCN, mnist (test set) for a
    /// CNN.
    #[arg(long, requires = "index")]
    dataset: Option<String>,
    /// Sample index in the dataset's test split.
    #[arg(long)]
    index: Option<usize>,
    /// Classes to print.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// The model's .json (weights beside it): also run the plaintext model and compare.
    #[arg(long)]
    check: Option<PathBuf>,
    /// Encrypted inferences to run in the session (fresh encryption each; timings are per run).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    server: Option<SocketAddr>,
    server_cert: Option<PathBuf>,
    token: Option<String>,
    cert_dir: Option<PathBuf>,
}

fn load_client_file(path: &Path) -> Result<ClientFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut f: ClientFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    for p in [&mut f.server_cert, &mut f.cert_dir].into_iter().flatten() {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(f)
}

async fn connect(cli: &Cli) -> Result<InferClient> {
    let file = match &cli.client {
        Some(p) => load_client_file(p)?,
        None => ClientFile::default(),
    };
    let addr = cli
        .server
        .or(file.server)
        .context("no server address (--server or `server` in --client)")?;
    let cert = cli
        .server_cert
        .clone()
        .or(file.server_cert)
        .context("no server certificate (--server-cert or `server_cert` in --client)")?;
    // Only the credential derived for the pinned certificate is sent; the token is wiped after.
    let token = zeroize::Zeroizing::new(cli.token.clone().or(file.token));
    let me = match cli.cert_dir.clone().or(file.cert_dir) {
        Some(d) => Identity::load(&d).with_context(|| format!("loading {}", d.display()))?,
        None => Identity::generate("dyad-client")?,
    };
    let party = PeerCert::load(&cert).with_context(|| format!("loading {}", cert.display()))?;
    let c = Client::connect(addr, &party, &me, token.as_deref())
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    Ok(InferClient::new(c))
}

/// One input: a sequence `(C, T, V, M)` for an ST-GCN, an image's pixels for a CNN.
enum Sample {
    Sequence(Array4<f64>),
    Image(Vec<f64>),
}

impl Sample {
    /// The serialized input ciphertexts of the sample, freshly encrypted.
    fn encrypt(
        &self,
        info: &ModelInfo,
        params: &ckks::CkksParams,
        sk: &ckks::SecretKey,
    ) -> Result<Vec<Vec<u8>>> {
        Ok(match self {
            Sample::Sequence(x) => infer::encrypt_input(info, params, sk, x.view())?,
            Sample::Image(x) => infer::cnn::encrypt_image(info, params, sk, x)?,
        })
    }
}

/// The image for a CNN model and, for a dataset, its true class.
fn load_image(cli: &Cli, spec: &ml::models::cnn::CnnSpec) -> Result<(Vec<f64>, Option<String>)> {
    if let Some(p) = &cli.input {
        return Ok((infer::image::read_image(p, spec.side)?, None));
    }
    let (Some(name), Some(i)) = (cli.dataset.as_deref(), cli.index) else {
        bail!("give --input FILE (PNG or NPY) or --dataset mnist --index I");
    };
    anyhow::ensure!(
        name == "mnist",
        "unknown dataset {name:?} for a CNN (mnist)"
    );
    let set = datasets::mnist::load_bundled(datasets::mnist::Split::Test)?;
    anyhow::ensure!(
        i < set.len(),
        "--index {i}: the MNIST test set has {} images",
        set.len()
    );
    anyhow::ensure!(
        (set.rows, set.cols) == (spec.side, spec.side),
        "MNIST images are {} × {}, the model takes {} × {}",
        set.rows,
        set.cols,
        spec.side,
        spec.side
    );
    let x = set
        .images
        .row(i)
        .iter()
        .map(|&p| f64::from(p) / 255.0)
        .collect();
    Ok((x, Some(set.labels[i].to_string())))
}

/// The plaintext logits of the model in `path` (its weights beside it) on `sample`.
fn plain_logits(path: &Path, sample: &Sample) -> Result<Vec<f64>> {
    let json =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let wpath = path.with_extension("safetensors");
    let w = std::fs::read(&wpath).with_context(|| format!("reading {}", wpath.display()))?;
    Ok(match sample {
        Sample::Sequence(x) => {
            let m = stgcn::StGcn::from_json_and_safetensors(&json, &w)?;
            m.fold()
                .forward(x.view().insert_axis(Axis(0)))?
                .row(0)
                .to_vec()
        }
        Sample::Image(x) => {
            let m = ml::models::cnn::CnnModel::from_json_and_safetensors(&json, &w)?;
            let x = ndarray::Array2::from_shape_vec((1, x.len()), x.clone())?;
            m.logits(x.view())?.row(0).to_vec()
        }
    })
}

/// The sample and, for a dataset, its true class name.
fn load_input(cli: &Cli, info: &ModelInfo) -> Result<(Sample, Option<String>)> {
    if let Some(cnn) = &info.cnn {
        let (x, label) = load_image(cli, &cnn.spec)?;
        return Ok((Sample::Image(x), label));
    }
    let (x, label) = load_sequence(cli, info)?;
    Ok((Sample::Sequence(x), label))
}

/// The sequence for an ST-GCN model and, for a dataset, its true class name.
fn load_sequence(cli: &Cli, info: &ModelInfo) -> Result<(Array4<f64>, Option<String>)> {
    let l = &info.input_layout;
    let shape = (l.channels, l.frames, l.nodes, l.persons);
    if let Some(p) = &cli.input {
        return Ok((infer::input::read_sequence(p, shape)?, None));
    }
    let (Some(name), Some(i)) = (cli.dataset.as_deref(), cli.index) else {
        bail!("give --input FILE or --dataset NAME --index I");
    };
    use datasets::skeleton::{BodyPoseNormalization, BodyPoseSet, Mocap15, Mocap15Config};
    let set = match name {
        "bodypose" => {
            BodyPoseSet::load_bundled(BodyPoseNormalization::AsProvided)?
                .set
                .split_stratified(0.2, 42)?
                .1
        }
        "mocap15" => {
            Mocap15::load_bundled(Mocap15Config {
                frames: l.frames,
                ..Default::default()
            })?
            .cross_view(40, 20)?
            .test
            .set
        }
        d => bail!("unknown dataset {d:?} (bodypose, mocap15)"),
    };
    anyhow::ensure!(
        i < set.len(),
        "--index {i}: the {name} test split has {} samples",
        set.len()
    );
    let x = set.data.index_axis(Axis(0), i).mapv(f64::from);
    anyhow::ensure!(
        x.dim() == shape,
        "{name} samples are {:?}, model {:?} takes (C, T, V, M) = {shape:?}",
        x.dim(),
        info.name
    );
    Ok((x, Some(set.class_names[set.labels[i]].clone())))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    party::logging::init("warn");
    let mut c = connect(&cli).await?;
    if cli.list {
        for m in c.list_models().await? {
            println!("{m}");
        }
        return Ok(());
    }
    let model = cli.model.clone().context("--model NAME is needed")?;
    let info = c.model_info(&model).await?;
    let params = infer::params_for(&info)?;
    let l = &info.input_layout;
    let shape = match &info.cnn {
        Some(c) => format!(
            "CNN in the {} layout, {s} × {s} images",
            c.layout.name(),
            s = c.spec.side
        ),
        None => format!(
            "(C, T, V, M) = ({}, {}, {}, {})",
            l.channels, l.frames, l.nodes, l.persons
        ),
    };
    println!(
        "model {}: preset {} (N = 2^{}, {} levels), input level {}, {shape}, {} input ciphertexts, {} classes; the party's noise flood adds a logit error of sd {:.2e}",
        info.name,
        info.preset,
        info.log_n,
        params.max_level(),
        info.input_level,
        info.input_cts(),
        info.class_names.len(),
        info.flood_sd
    );
    let (x, label) = load_input(&cli, &info)?;
    anyhow::ensure!(cli.repeat >= 1, "--repeat must be at least 1");

    let t0 = Instant::now();
    let sk = Arc::new(ckks::KeyGenerator::new(&params).secret_key());
    let keys = infer::generate_keys(
        &params,
        sk.clone(),
        &info.rotation_steps,
        info.output_level as usize,
    )?;
    let (n_keys, key_bytes) = (keys.lens.len(), keys.total_bytes());
    anyhow::ensure!(
        key_bytes <= info.max_key_bytes,
        "the session keys take {key_bytes} bytes, the party accepts at most {}",
        info.max_key_bytes
    );
    let (session, ttl) = c.open_session(&model, keys).await?;
    let keys_s = t0.elapsed().as_secs_f64();
    println!(
        "session {session}: {n_keys} evaluation keys ({} Galois), {key_bytes} bytes ({:.1} MiB) generated and uploaded in {keys_s:.2}s; idle expiry {ttl}s",
        n_keys - 1,
        mib(key_bytes)
    );

    let limit = infer::max_ciphertext_bytes(&params);
    let (mut enc_t, mut rt_t, mut eval_t, mut dec_t) = (vec![], vec![], vec![], vec![]);
    let mut logits = Vec::new();
    for _ in 0..cli.repeat {
        let t = Instant::now();
        let cts = x.encrypt(&info, &params, &sk)?;
        enc_t.push(t.elapsed().as_secs_f64());
        let up: u64 = cts.iter().map(|c| c.len() as u64).sum();
        let t = Instant::now();
        let r = c.infer(session, &cts, limit).await?;
        rt_t.push(t.elapsed().as_secs_f64());
        eval_t.push(r.eval_seconds);
        let down: u64 = r.cts.iter().map(|c| c.len() as u64).sum();
        let t = Instant::now();
        logits = infer::decrypt_logits(&params, &sk, &r.cts, &r.positions)?;
        dec_t.push(t.elapsed().as_secs_f64());
        println!(
            "inference: input {} B ({:.1} MiB) up, logits {} B down; encrypt {:.3}s, request {:.3}s (server evaluation {:.3}s: {} rotations, {} key switches, {} pt×ct, {} ct×ct, {} rescales), decrypt {:.3}s",
            up,
            mib(up),
            down,
            enc_t.last().unwrap_or(&0.0),
            rt_t.last().unwrap_or(&0.0),
            r.eval_seconds,
            r.counts.rotate,
            r.counts.key_switch,
            r.counts.mul_plain,
            r.counts.mul,
            r.counts.rescale,
            dec_t.last().unwrap_or(&0.0)
        );
    }
    c.close_session(session).await?;
    if cli.repeat > 1 {
        println!(
            "median over {} runs: encrypt {:.3}s, request {:.3}s, server evaluation {:.3}s, decrypt {:.3}s",
            cli.repeat,
            median(&mut enc_t),
            median(&mut rt_t),
            median(&mut eval_t),
            median(&mut dec_t)
        );
    }
    anyhow::ensure!(
        logits.len() == info.class_names.len(),
        "{} scores for {} classes",
        logits.len(),
        info.class_names.len()
    );
    if let Some(l) = &label {
        println!("true class: {l}");
    }
    println!("top classes (decrypted logits):");
    for (rank, &q) in infer::top_k(&logits, cli.top).iter().enumerate() {
        println!(
            "{:>3}. {:<28} {:>12.6}",
            rank + 1,
            info.class_names[q],
            logits[q]
        );
    }
    if let Some(path) = &cli.check {
        let plain = plain_logits(path, &x)?;
        anyhow::ensure!(
            plain.len() == logits.len(),
            "{} has {} classes, the served model {}",
            path.display(),
            plain.len(),
            logits.len()
        );
        let err = plain
            .iter()
            .zip(&logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let (pt, et) = (infer::top_k(&plain, 1)[0], infer::top_k(&logits, 1)[0]);
        println!(
            "check: max |logit error| = {err:.3e}; plaintext top-1 {}, encrypted top-1 {}: {}",
            info.class_names[pt],
            info.class_names[et],
            if pt == et { "agrees" } else { "DISAGREES" }
        );
    }
    Ok(())
}
