//! `he-infer` — encrypted ST-GCN or CNN inference against a party's inference endpoint.
//!
//! ```text
//! he-infer --client client.toml --list
//! he-infer --client client.toml --model bodypose --input pose.csv [--top 5] [--check model.json]
//! he-infer --client client.toml --model mocap15 --dataset mocap15 --index 7 [--repeat 3]
//! he-infer --client client.toml --model mnist-lola --input digit.png [--check mnist-cryptonets.json]
//! he-infer --client client.toml --model mnist-lola --dataset mnist --index 0 --check mnist-cryptonets.json
//! he-infer --client client.toml --model mnist-batch --dataset mnist --range 0..1000 --check mnist-cryptonets.json
//! he-infer --client client.toml --model mnist-batch --input a.png --input b.png
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
//! `I` of the bundled MNIST test set. In the LoLa layout the image is unfolded into one
//! ciphertext per kernel tap (LoLa's convolution representation) and the party returns one
//! logit ciphertext. In the CryptoNets batch layout one request carries up to `N/2` images
//! (several `--input`s, or `--range A..B` of the test set) as one ciphertext per pixel, image
//! `j` in slot `j`, and the party returns one ciphertext per class; `he-infer` prints each
//! image's class (and with `--check` how many agree with the plaintext model). In the matrix
//! layout one request carries up to `N/2 / 1024` images (8 at `N = 2^14`) in one ciphertext,
//! image `n` in block `n`, and the party returns one ciphertext (image `n`'s class `c` in slot
//! `n·1024 + c`).

mod sample;

use anyhow::{Context, Result};
use clap::Parser;
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
    /// Input: a sequence (CSV or NPY) for an ST-GCN, an image (PNG or NPY, 28 × 28) for a CNN
    /// (repeat it to send several images in one request of a CNN in the batch layout).
    #[arg(long, conflicts_with = "dataset")]
    input: Vec<PathBuf>,
    /// Bundled dataset: bodypose or mocap15 (test split) for an ST-GCN, mnist (test set) for a
    /// CNN.
    #[arg(long)]
    dataset: Option<String>,
    /// Sample index in the dataset's test split.
    #[arg(long, requires = "dataset", conflicts_with = "range")]
    index: Option<usize>,
    /// Images `A..B` of the MNIST test set in one request (a CNN in the batch layout).
    #[arg(long, requires = "dataset")]
    range: Option<String>,
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
    let (x, labels) = sample::load(&cli, &info)?;
    anyhow::ensure!(cli.repeat >= 1, "--repeat must be at least 1");

    let t0 = Instant::now();
    let sk = Arc::new(ckks::KeyGenerator::new(&params).secret_key());
    let keys = infer::generate_keys(
        &params,
        sk.clone(),
        &info.rotation_keys(),
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
        logits = match &info.cnn {
            Some(_) => {
                infer::cnn::decrypt_logits(&info, &params, &sk, &r.cts, &r.positions, x.len())?
            }
            None => vec![infer::decrypt_logits(&params, &sk, &r.cts, &r.positions)?],
        };
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
    let plain = cli.check.as_ref().map(|p| x.plain_logits(p)).transpose()?;
    report(&cli, &info, &logits, &labels, plain.as_deref())
}

/// Prints the top classes of one input, or each image's class for a batch, and with the
/// plaintext logits `plain` the largest logit error and the agreement of the top classes.
fn report(
    cli: &Cli,
    info: &ModelInfo,
    logits: &[Vec<f64>],
    labels: &[Option<String>],
    plain: Option<&[Vec<f64>]>,
) -> Result<()> {
    let names = &info.class_names;
    if let Some(l) = logits.iter().find(|l| l.len() != names.len()) {
        anyhow::bail!("{} scores for {} classes", l.len(), names.len());
    }
    let top1 = |l: &[f64]| infer::top_k(l, 1)[0];
    if let [one] = logits {
        if let Some(Some(l)) = labels.first() {
            println!("true class: {l}");
        }
        println!("top classes (decrypted logits):");
        for (rank, &q) in infer::top_k(one, cli.top).iter().enumerate() {
            println!("{:>3}. {:<28} {:>12.6}", rank + 1, names[q], one[q]);
        }
    } else {
        let right = labels
            .iter()
            .zip(logits)
            .filter(|(l, g)| l.as_deref() == Some(names[top1(g)].as_str()))
            .count();
        for (j, (l, g)) in logits.iter().zip(labels).enumerate().take(cli.top) {
            let truth = g
                .as_deref()
                .map_or(String::new(), |t| format!(" (true {t})"));
            println!("image {j}: class {}{truth}", names[top1(l)]);
        }
        if labels.iter().all(Option::is_some) {
            println!("correct: {right} of {} images", logits.len());
        }
    }
    let Some(plain) = plain else {
        return Ok(());
    };
    anyhow::ensure!(
        plain.len() == logits.len() && plain.iter().all(|p| p.len() == names.len()),
        "the --check model gives {} × {} logits, the served model {} × {}",
        plain.len(),
        plain.first().map_or(0, Vec::len),
        logits.len(),
        names.len()
    );
    let err = plain
        .iter()
        .flatten()
        .zip(logits.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    if let ([p], [e]) = (plain, logits) {
        let (pt, et) = (top1(p), top1(e));
        println!(
            "check: max |logit error| = {err:.3e}; plaintext top-1 {}, encrypted top-1 {}: {}",
            names[pt],
            names[et],
            if pt == et { "agrees" } else { "DISAGREES" }
        );
    } else {
        let agree = plain
            .iter()
            .zip(logits)
            .filter(|(p, e)| top1(p) == top1(e))
            .count();
        println!(
            "check: max |logit error| = {err:.3e}; top-1 agrees with the plaintext model on {agree} of {} images",
            logits.len()
        );
    }
    Ok(())
}
