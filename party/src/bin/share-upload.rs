//! `share-upload` — secret-share a dataset and upload one share to each party.
//!
//! ```text
//! share-upload --parties 10.0.0.1:7200,10.0.0.2:7201 --p0-cert p0.pem --p1-cert p1.pem \
//!     (--token T | --cert-dir D) --name cancer [--label-column K] [--frac-bits 16] data.csv
//! ```
//!
//! The file is read with `datasets::csv` (every row features and a label; the last column is the
//! label unless `--label-column` says otherwise), checked (every value finite and inside the
//! fixed-point range; errors name the file, line, column, value and bound), encoded in fixed point
//! and split with a fresh OS-seeded ChaCha20 seed: P0 receives the 32-byte seed, P1 the masked
//! matrix (SecureML's seed-compressed sharing). Both uploads land as prepared; P0 then commits
//! them on both parties (two-phase commit) and the dataset id is printed.

use anyhow::{bail, Context, Result};
use clap::Parser;
use party::client::Client;
use party::proto::{ClientRequest, EntryId, Reply, ShareForm, UploadHeader};
use party::store::{matrix_bytes, sha256};
use party::transport::{Identity, PeerCert};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "share-upload",
    about = "Secret-share a dataset to the two Dyad parties"
)]
struct Cli {
    /// P0 and P1 client addresses, comma separated.
    #[arg(long, value_delimiter = ',')]
    parties: Vec<SocketAddr>,
    /// P0's certificate (PEM).
    #[arg(long)]
    p0_cert: PathBuf,
    /// P1's certificate (PEM).
    #[arg(long)]
    p1_cert: PathBuf,
    /// Bearer token.
    #[arg(long)]
    token: Option<String>,
    /// Client identity directory (cert.pem, key.pem) registered by fingerprint.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Dataset name.
    #[arg(long)]
    name: String,
    /// The label's column (0-based); default: the last.
    #[arg(long)]
    label_column: Option<usize>,
    /// Fixed-point fractional bits.
    #[arg(long, default_value_t = 16)]
    frac_bits: u32,
    /// Do not draw progress bars.
    #[arg(long)]
    quiet: bool,
    /// The CSV file (gzip allowed).
    file: PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.parties.len() != 2 {
        bail!("--parties needs two addresses: P0,P1");
    }
    let table = datasets::csv::read_csv(&cli.file)?;
    let data = table.data;
    let (rows, cols) = data.dim();
    if rows == 0 || cols < 2 {
        bail!(
            "{}: need at least one row and two columns (features and a label), got {rows} x {cols}",
            cli.file.display()
        );
    }
    let label = cli.label_column.unwrap_or(cols - 1);
    if label >= cols {
        bail!(
            "{}: --label-column {label} but the file has {cols} columns",
            cli.file.display()
        );
    }
    let fp = mpc::FixedPoint::new(mpc::FracBits::new(cli.frac_bits)?);
    for ((r, c), v) in data.indexed_iter() {
        if !v.is_finite() || v.abs() >= fp.bound() {
            bail!(
                "{}: line {}, column {}: value {v} is outside the fixed-point range (|x| < {} with {} fractional bits)",
                cli.file.display(),
                table.row_lines.get(r).copied().unwrap_or(r + 1),
                c + 1,
                fp.bound(),
                cli.frac_bits
            );
        }
    }
    let enc = fp
        .encode_matrix(&data.view())
        .with_context(|| format!("encoding {}", cli.file.display()))?;
    let (seed, s1) = mpc::share::share_seeded(&enc.view(), &mut mpc::share::os_rng());
    drop(enc);
    let seed_bytes = zeroize::Zeroizing::new(seed.0.to_vec());
    let m1 = matrix_bytes(&s1);
    let id = EntryId::random();
    let header = |form, bytes: &[u8]| UploadHeader {
        id,
        name: cli.name.clone(),
        rows: rows as u64,
        cols: cols as u64,
        label_column: label as u64,
        frac_bits: cli.frac_bits,
        form,
        digest: sha256(bytes),
        len: bytes.len() as u64,
    };
    let me = match &cli.cert_dir {
        Some(d) => Identity::load(d)?,
        None => Identity::generate("dyad-client")?,
    };
    let certs = [PeerCert::load(&cli.p0_cert)?, PeerCert::load(&cli.p1_cert)?];
    let mut c0 = Client::connect(cli.parties[0], &certs[0], &me, cli.token.clone())
        .await
        .with_context(|| format!("connecting to P0 at {}", cli.parties[0]))?;
    let mut c1 = Client::connect(cli.parties[1], &certs[1], &me, cli.token.clone())
        .await
        .with_context(|| format!("connecting to P1 at {}", cli.parties[1]))?;
    anyhow::ensure!(
        c0.role() == 0 && c1.role() == 1,
        "the first address must be P0's and the second P1's"
    );
    let bar = |len: usize, what: &str| {
        let pb = if cli.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(len as u64)
        };
        pb.set_style(
            indicatif::ProgressStyle::with_template("{msg:>4} {bar:40} {bytes}/{total_bytes}")
                .expect("template"),
        );
        pb.set_message(what.to_string());
        pb
    };
    let (pb1, pb0) = (bar(m1.len(), "P1"), bar(32, "P0"));
    let f1 = |n: u64| pb1.set_position(n);
    let f0 = |n: u64| pb0.set_position(n);
    let (r1, r0) = tokio::join!(
        c1.upload(header(ShareForm::Matrix, &m1), &m1, &f1),
        c0.upload(header(ShareForm::Seed, &seed_bytes), &seed_bytes, &f0),
    );
    pb1.finish_and_clear();
    pb0.finish_and_clear();
    r1.context("uploading to P1")?;
    r0.context("uploading to P0")?;
    match c0.request(&ClientRequest::Commit { id }).await? {
        Reply::Committed { id } => println!("{id}"),
        other => bail!("unexpected reply {other:?}"),
    }
    Ok(())
}
