//! `share-upload` — secret-share a dataset and upload one share to each party.
//!
//! ```text
//! share-upload --parties 10.0.0.1:7200,10.0.0.2:7201 --p0-cert p0.pem --p1-cert p1.pem \
//!     (--token T | --cert-dir D) --name cancer [--label-column K] [--frac-bits 16] \
//!     [--allow-append bob,carol] data.csv
//! share-upload ... --append-to alice/cancer part2.npy          # rows appended by a granted client
//! share-upload ... --name mnist --labels train-labels-idx1-ubyte.gz train-images-idx3-ubyte.gz
//! share-upload ... --name houses --standardize [--standardize-label] houses.csv  # z-scored here
//! share-upload ... --name moves --graph mocap15 --labels moves-train-labels.npy \
//!     [--class-names walk,run,...] moves-train.npy                # skeleton clips (N, C, T, V, M)
//! ```
//!
//! The file is read by [`party::input`]: numeric CSV (last column the label unless
//! `--label-column` says otherwise), NumPy `.npy` (2-D; labels in a column or in a 1-D
//! `--labels` file), skeleton clips as a rank-5 `.npy` `(N, C, T, V, M)` with `--graph` and a
//! `--labels` file (a 1-D `.npy` or a text file with one class index per line), or MNIST IDX
//! images with their `--labels` file (pixels scaled to [0, 1], the digit as the label;
//! `--positive 0` makes a "0 vs rest" task). Every value is checked (finite, inside the
//! fixed-point range; errors name the file, line or row, column — for clips the clip and
//! `(c, t, v, m)` — value and bound; labels of clips must be integers in `0..Q`, `Q` the number
//! of `--class-names` or 2^16), encoded in fixed point and split with a fresh OS-seeded ChaCha20
//! seed: P0 receives the 32-byte seed, P1 the masked matrix (SecureML's seed-compressed
//! sharing). Both uploads land as prepared; P0 then commits them on both parties (two-phase
//! commit) and the dataset id is printed. Nothing is sent before the whole file has been read
//! and checked.
//!
//! Skeleton clips are stored as a matrix of `N` rows: clip `n` flattened in C order (`c`, then
//! `t`, `v`, `m`), then its label; the parties keep `(C, T, V, M)`, the graph's name and the
//! class names with the dataset (`party::proto::TensorMeta`) and check them against the shape
//! (known graph with `V` nodes, dimensions within their limits). `experiment export` writes such
//! files for the bundled Mocap-15 and BodyPose sets.
//!
//! `--standardize` (a single owner who may see its own table's statistics): the features, and
//! with `--standardize-label` a regression target, are standardized here with the column means
//! and population standard deviations (`party::input::standardize`; a constant column is
//! refused); each party receives its shares of the statistics with the upload and keeps them
//! with the dataset exactly as `party standardize` does on shares (the upload's id names the
//! standardization), so `party train`, `evaluate`, `predict` and `reveal` treat both alike.
//! Such a dataset takes no appends (raw rows after standardized ones would mix units): owners
//! who append rows upload raw data and run `party standardize` after the last append.
//!
//! Horizontal partitioning: the owner names the clients allowed to append rows
//! (`--allow-append`); such a client appends with `--append-to OWNER/NAME`. The rows must have
//! the dataset's columns, label column and fractional bits. The result is a new version of the
//! owner's dataset (the old rows, then the new), committed on both parties or on neither; only
//! the owner can train on it or delete it. Clips appended to a skeleton dataset must have its
//! `(C, T, V, M)` and graph (`--graph` again; `--class-names` the same or left out — given, they
//! also bound the appended labels, which the parties cannot check: they only see shares).
//!
//! Vertical partitioning (two owners hold different columns of the same individuals): each
//! owner uploads a CSV file with a row key column, `--key-column id --key-secret join.key`, the
//! owner without the label with `--no-label`. The key column is not a feature and never leaves
//! the machine: each party receives one tag per row, an HMAC of the key under the secret the
//! owners agreed on (`party::rowkeys`). Both owners must upload the same keys in the same
//! order; `party join-propose` / `party join-confirm` then join the two uploads.

use anyhow::{bail, Context, Result};
use clap::Parser;
use party::client::Client;
use party::input::{Format, InputSpec};
use party::proto::{
    ClientRequest, DatasetRef, EntryId, Reply, ShareForm, StatsShares, UploadHeader, UploadOptions,
};
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
    /// Bearer token (never sent: each party receives a credential derived from it and from the
    /// party's pinned certificate).
    #[arg(long)]
    token: Option<String>,
    /// Client identity directory (cert.pem, key.pem) registered by fingerprint.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Dataset name (with --append-to: defaults to the dataset's name).
    #[arg(long, required_unless_present = "append_to")]
    name: Option<String>,
    /// The label's column (0-based); default: the last. Not for skeleton clips.
    #[arg(long)]
    label_column: Option<usize>,
    /// A separate label file: an IDX label file for IDX images, a 1-D .npy for a 2-D .npy, and
    /// for skeleton clips a 1-D .npy or a text file with one class index per clip.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Skeleton clips (a rank-5 .npy, N x C x T x V x M): the skeleton graph, mocap15, body25 or
    /// ntu25 (V must be its node count).
    #[arg(long)]
    graph: Option<String>,
    /// Skeleton clips: the class names, comma separated, one per label value (labels must be
    /// below their count).
    #[arg(long, value_delimiter = ',', requires = "graph")]
    class_names: Vec<String>,
    /// Binary task: label 1 for these label values (comma separated), 0 for all others.
    #[arg(long, value_delimiter = ',')]
    positive: Option<Vec<f64>>,
    /// The file's format: csv, npy or idx (default: from the file name).
    #[arg(long)]
    format: Option<Format>,
    /// Fixed-point fractional bits.
    #[arg(long, default_value = "16", value_parser = frac_bits)]
    frac_bits: mpc::FracBits,
    /// Clients (configured names, comma separated) allowed to append rows to this dataset.
    #[arg(long, value_delimiter = ',')]
    allow_append: Vec<String>,
    /// Append the rows to OWNER/NAME (you must be its owner or one of its appenders).
    #[arg(long, conflicts_with = "allow_append")]
    append_to: Option<String>,
    /// Pace the upload to at most this many bytes per second (for shared links).
    #[arg(long)]
    max_rate: Option<u64>,
    /// Do not draw progress bars.
    #[arg(long)]
    quiet: bool,
    /// Vertical partitioning: the column holding each row's key (0-based index or a header
    /// name; CSV only). Not a feature: only its tag under --key-secret is sent.
    #[arg(long, requires = "key_secret", conflicts_with_all = ["append_to", "allow_append"])]
    key_column: Option<party::input::keyed::KeyColumn>,
    /// The secret both owners of a join share, as hex in a file (at least 32 bytes, e.g.
    /// `openssl rand -hex 32`; a fresh one per join; never give it to the parties).
    #[arg(long, requires = "key_column")]
    key_secret: Option<PathBuf>,
    /// With --key-column: the file has no label column (features only; the other owner of
    /// the join uploads the label).
    #[arg(long, requires = "key_column", conflicts_with_all = ["label_column", "positive"])]
    no_label: bool,
    /// Standardize the table here before sharing it: every feature column to mean 0 and
    /// population standard deviation 1; the parties keep your statistics with the dataset as
    /// shares, as `party standardize` does on shares. A table of its own: no appends.
    #[arg(long, conflicts_with_all = ["append_to", "allow_append", "key_column", "graph"])]
    standardize: bool,
    /// With --standardize: standardize the label column too (a regression target).
    #[arg(long, requires = "standardize")]
    standardize_label: bool,
    /// The data file (gzip allowed).
    file: PathBuf,
}

/// P0's and P1's shares of the statistics `st` (fixed point, a fresh OS-seeded split each).
fn stats_shares(
    fp: &mpc::FixedPoint,
    st: &party::input::standardize::LocalStats,
) -> Result<[StatsShares; 2]> {
    let mut rng = mpc::share::os_rng();
    let mut words: [Vec<Vec<u64>>; 2] = [Vec::new(), Vec::new()];
    for (row, what) in st.rows().iter().zip(["means", "1/sd", "deviations"]) {
        let enc = fp
            .encode_matrix(&row.view())
            .with_context(|| format!("the {what}"))?;
        let shares = mpc::share::share(&enc.view(), &mut rng);
        for (w, s) in words.iter_mut().zip(shares) {
            w.push(s.view().iter().copied().collect());
        }
    }
    Ok(words.map(|w| {
        let [mean, inv_sd, sd]: [Vec<u64>; 3] = w.try_into().expect("three statistics");
        StatsShares {
            label: st.label,
            mean,
            inv_sd,
            sd,
        }
    }))
}

/// `--frac-bits`, validated where it is read.
fn frac_bits(s: &str) -> Result<mpc::FracBits, String> {
    let bits: u32 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    mpc::FracBits::new(bits).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut cli = Cli::parse();
    // Only the per-party credentials derived from the token are sent; the token is wiped at exit.
    let token = cli.token.take().map(zeroize::Zeroizing::new);
    if cli.parties.len() != 2 {
        bail!("--parties needs two addresses: P0,P1");
    }
    let append_to = match &cli.append_to {
        None => None,
        Some(s) => match s.split_once('/') {
            Some((owner, name)) if !owner.is_empty() && !name.is_empty() => Some(DatasetRef {
                owner: owner.into(),
                name: name.into(),
            }),
            _ => bail!("--append-to wants OWNER/NAME, got {s:?}"),
        },
    };
    let name = match (&cli.name, &append_to) {
        (Some(n), _) => n.clone(),
        (None, Some(r)) => r.name.clone(),
        (None, None) => unreachable!("clap requires --name without --append-to"),
    };
    let spec = InputSpec {
        file: cli.file.clone(),
        format: cli.format,
        labels: cli.labels.clone(),
        label_column: cli.label_column,
        positive: cli.positive.clone(),
        graph: cli.graph.clone(),
        class_names: cli.class_names.clone(),
    };
    let (mut table, keys) = match (&cli.key_column, &cli.key_secret) {
        (Some(kc), Some(ks)) => {
            let secret = party::rowkeys::KeySecret::load(ks)?;
            let (t, keys) = party::input::keyed::read_keyed(&spec, kc, !cli.no_label)?;
            let tags = party::rowkeys::tags(&secret, &keys);
            let rk = party::proto::RowKeys {
                digest: sha256(&tags),
                labelled: !cli.no_label,
            };
            (t, Some((tags, rk)))
        }
        _ => (party::input::read(&spec)?, None),
    };
    let fp = mpc::FixedPoint::new(cli.frac_bits);
    let standardized = if cli.standardize {
        let st = party::input::standardize::standardize(&mut table, cli.standardize_label)?;
        eprintln!(
            "standardized {} columns of {} here (population statistics)",
            st.columns.len(),
            cli.file.display()
        );
        Some(
            stats_shares(&fp, &st)
                .with_context(|| format!("encoding the statistics of {}", cli.file.display()))?,
        )
    } else {
        None
    };
    table.check_range(cli.frac_bits)?;
    let (rows, cols) = table.data.dim();
    let label = table.label_column;
    let tensor = table.tensor.clone();
    let enc = fp
        .encode_matrix(&table.data.view())
        .with_context(|| format!("encoding {}", cli.file.display()))?;
    drop(table);
    let (seed, s1) = mpc::share::share_seeded(&enc.view(), &mut mpc::share::os_rng());
    drop(enc);
    let seed_bytes = zeroize::Zeroizing::new(seed.0.to_vec());
    let m1 = matrix_bytes(&s1);
    drop(s1);
    let id = EntryId::random();
    let header = |form, bytes: &[u8]| UploadHeader {
        id,
        name: name.clone(),
        rows: rows as u64,
        cols: cols as u64,
        label_column: label as u64,
        frac_bits: cli.frac_bits,
        form,
        digest: sha256(bytes),
        len: bytes.len() as u64,
    };
    let options = UploadOptions {
        appenders: cli.allow_append.clone(),
        append_to,
        tensor,
        keys: keys.as_ref().map(|(_, rk)| rk.clone()),
        standardized: None,
    };
    let [o0, o1] = match standardized {
        Some([s0, s1]) => [(s0, &options), (s1, &options)].map(|(s, o)| UploadOptions {
            standardized: Some(s),
            ..o.clone()
        }),
        None => [options.clone(), options],
    };
    let tags: &[u8] = keys.as_ref().map_or(&[], |(t, _)| t);
    let me = match &cli.cert_dir {
        Some(d) => Identity::load(d)?,
        None => Identity::generate("dyad-client")?,
    };
    let certs = [PeerCert::load(&cli.p0_cert)?, PeerCert::load(&cli.p1_cert)?];
    let mut c0 = Client::connect(
        cli.parties[0],
        &certs[0],
        &me,
        token.as_deref().map(|t| t.as_str()),
    )
    .await
    .with_context(|| format!("connecting to P0 at {}", cli.parties[0]))?;
    let mut c1 = Client::connect(
        cli.parties[1],
        &certs[1],
        &me,
        token.as_deref().map(|t| t.as_str()),
    )
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
        c1.upload_keyed(
            header(ShareForm::Matrix, &m1),
            o1,
            &m1,
            tags,
            &f1,
            cli.max_rate
        ),
        c0.upload_keyed(
            header(ShareForm::Seed, &seed_bytes),
            o0,
            &seed_bytes,
            tags,
            &f0,
            cli.max_rate
        ),
    );
    pb1.finish_and_clear();
    pb0.finish_and_clear();
    r1.with_context(|| format!("uploading to P1 at {}", cli.parties[1]))?;
    r0.with_context(|| format!("uploading to P0 at {}", cli.parties[0]))?;
    match c0
        .request(&ClientRequest::Commit { id })
        .await
        .with_context(|| format!("committing at P0 at {}", cli.parties[0]))?
    {
        Reply::Committed { id } => println!("{id}"),
        other => bail!("unexpected reply {other:?}"),
    }
    Ok(())
}
