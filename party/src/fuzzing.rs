//! One entry point per decoder that a party, a client or the dealer runs on bytes it did not
//! produce: the typed messages of [`crate::proto`] (client hello, client requests, replies,
//! peer requests and replies), the dealer's messages, the length-prefixed framing with the
//! upload-chunk and ring-matrix readers on top, the transport's link headers, the store's
//! manifest parser (bytes from disk), the CKKS objects an inference client uploads (public key
//! at a level, relinearization and Galois keys, ciphertexts) and the RLWE triple source's
//! messages (public key, query, response) that one party decodes from the other. Used by the `cargo fuzz` targets in `party/fuzz`, by its
//! bounded stable driver, and by the property tests; each function must return on any input.
//!
//! The framing readers run on an in-memory reader that is always ready, so their futures are
//! polled to completion without a runtime.

use crate::proto::{
    decode, ClientHello, ClientRequest, Credential, PeerReply, PeerRequest, Reply,
    MAX_CONTROL_FRAME, UPLOAD_CHUNK,
};
use mpc::net::{Channel, ChannelExt, StreamChannel};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// A fuzz entry point: runs one decoder on arbitrary bytes.
pub type Target = fn(&[u8]);

/// The decoders, by name (the fuzz target of each is `party/fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: [(&str, Target); 12] = [
    ("client_hello", client_hello),
    ("client_request", client_request),
    ("reply", reply),
    ("peer_request", peer_request),
    ("peer_reply", peer_reply),
    ("dealer_messages", dealer_messages),
    ("frames", frames),
    ("ring", ring),
    ("link_headers", link_headers),
    ("manifest", manifest),
    ("he_keys", he_keys),
    ("rlwe_messages", rlwe_messages),
];

/// Polls a future whose I/O is in memory; it never waits.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("in-memory readers are always ready"),
    }
}

/// `ClientHello` (the first frame of a client connection).
pub fn client_hello(b: &[u8]) {
    let _ = decode::<ClientHello>(b, MAX_CONTROL_FRAME);
}

/// `ClientRequest` (every later frame of a client, except share bytes).
pub fn client_request(b: &[u8]) {
    let _ = decode::<ClientRequest>(b, MAX_CONTROL_FRAME);
}

/// `Reply` (what a client decodes from a party).
pub fn reply(b: &[u8]) {
    let _ = decode::<Reply>(b, MAX_CONTROL_FRAME);
}

/// `PeerRequest` (peer link, both directions).
pub fn peer_request(b: &[u8]) {
    let _ = decode::<PeerRequest>(b, MAX_CONTROL_FRAME);
}

/// `PeerReply`.
pub fn peer_reply(b: &[u8]) {
    let _ = decode::<PeerReply>(b, MAX_CONTROL_FRAME);
}

/// The dealer's request (with its 64 MiB limit), its reply and a party's seed message.
pub fn dealer_messages(b: &[u8]) {
    use mpc::triples::dealer::{DealerReply, DealerRequest, MAX_REQUEST_BYTES};
    let _ = decode::<DealerRequest>(b, MAX_REQUEST_BYTES);
    let _ = decode::<DealerReply>(b, 4096);
    let _ = decode::<mpc::share::Seed>(b, 64);
}

/// A byte stream read as frames: control frames decoded as client requests until the stream
/// ends or a frame is refused, then the same bytes as upload chunks (at most
/// [`UPLOAD_CHUNK`] each).
pub fn frames(b: &[u8]) {
    ready(async {
        let mut ch = StreamChannel::new(b, tokio::io::sink());
        for _ in 0..64 {
            match ch.recv_frame(MAX_CONTROL_FRAME).await {
                Ok(f) => client_request(&f),
                Err(_) => break,
            }
        }
        let mut ch = StreamChannel::new(b, tokio::io::sink());
        let mut got = 0usize;
        while let Ok(f) = ch.recv_frame(UPLOAD_CHUNK).await {
            got += f.len();
            if got > 1 << 24 {
                break;
            }
        }
    });
}

/// A model share as a client receives it: the first four bytes give the shape (rows, columns
/// up to 255 each), the rest is the stream of ring frames.
pub fn ring(b: &[u8]) {
    if b.len() < 2 {
        return;
    }
    let (rows, cols) = (usize::from(b[0]), usize::from(b[1]));
    ready(async {
        let mut ch = StreamChannel::new(&b[2..], tokio::io::sink());
        if let Ok(m) = ch.recv_ring(rows, cols).await {
            assert_eq!(m.dim(), (rows, cols));
        }
    });
}

/// The transports' link headers (QUIC stream header, TCP connection header, answer).
pub fn link_headers(b: &[u8]) {
    use crate::transport::link;
    ready(async {
        let _ = link::read_quic_header(&mut &b[..]).await;
        let _ = link::read_tcp_header(&mut &b[..]).await;
        let _ = link::read_answer(&mut &b[..]).await;
    });
}

/// A manifest file of the store.
pub fn manifest(b: &[u8]) {
    let _ = crate::store::parse_manifest(b);
}

/// The smallest 128-bit CKKS parameters (made once: prime generation is not cheap).
fn ckks_params() -> &'static ckks::CkksParams {
    static P: std::sync::OnceLock<ckks::CkksParams> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        ckks::presets::N12_L1_S30_128BIT
            .build()
            .expect("preset builds")
    })
}

/// The RLWE triple source's standard parameters (made once).
fn rlwe_params() -> &'static mpc::offline::rlwe::RlweParams {
    static P: std::sync::OnceLock<mpc::offline::rlwe::RlweParams> = std::sync::OnceLock::new();
    P.get_or_init(mpc::offline::rlwe::RlweParams::standard)
}

/// What an inference client uploads, decoded as the serving party does (declared length as the
/// limit): a public key (at any level), a relinearization key, Galois keys and a ciphertext.
pub fn he_keys(b: &[u8]) {
    let p = ckks_params();
    let limit = b.len() as u64;
    let _ = ckks::PublicKey::from_bytes_with_limit(b, p, limit);
    let _ = ckks::RelinKey::from_bytes_with_limit(b, p, limit);
    let _ = ckks::GaloisKeys::from_bytes_with_limit(b, p, limit);
    let _ = ckks::Ciphertext::from_bytes_with_limit(b, p, limit);
}

/// The RLWE triple source's messages as the other party decodes them: the querier's public key
/// and query, and a response whose output count is given by the first byte.
pub fn rlwe_messages(b: &[u8]) {
    use mpc::offline::rlwe::{PublicKey, Query, Response};
    let p = rlwe_params();
    let _ = PublicKey::from_bytes(p, b);
    let _ = Query::from_bytes(p, b);
    if let Some((&outputs, rest)) = b.split_first() {
        let _ = Response::from_bytes(p, rest, usize::from(outputs) * 64);
    }
}

/// Valid inputs of a target (encoded messages, framed streams, headers, a manifest): the
/// starting corpus of both fuzzers, so that mutations start deep inside the decoders.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    use crate::infer::msg::InferRequest;
    use crate::proto::{
        DatasetRef, EntryId, EntryInfo, ErrorCode, JobSpec, JobStats, ModelKind, PeerState,
        ShareForm, TensorMeta, TripleKind, UploadHeader, UploadOptions,
    };
    let id = EntryId([7; 16]);
    let traffic = mpc::net::CommStats {
        bytes_sent: 1 << 20,
        bytes_received: 1 << 19,
        frames_sent: 300,
        frames_received: 290,
        rounds: 280,
    };
    let stats = JobStats {
        offline_s: 2.5,
        online_s: 0.75,
        offline: traffic,
        online: traffic,
    };
    let header = UploadHeader {
        id,
        name: "cancer".into(),
        rows: 455,
        cols: 31,
        label_column: 30,
        frac_bits: mpc::FracBits::new(16).unwrap(),
        form: ShareForm::Matrix,
        digest: [3; 32],
        len: 455 * 31 * 8,
    };
    let spec = JobSpec {
        model: ModelKind::Logreg,
        dataset: "cancer".into(),
        learning_rate: 0.125,
        batch_size: 64,
        epochs: 3,
        schedule_seed: 11,
        triples: TripleKind::Ot,
        intercept: false,
        ot_extension: Default::default(),
    };
    let requests = [
        ClientRequest::Upload(header.clone()),
        ClientRequest::UploadWith(
            header,
            UploadOptions {
                appenders: vec!["bob".into()],
                append_to: Some(DatasetRef {
                    owner: "alice".into(),
                    name: "cancer".into(),
                }),
                tensor: Some(TensorMeta {
                    dims: [3, 32, 15, 1],
                    graph: "mocap15".into(),
                    class_names: vec!["walk".into(), "run".into()],
                }),
                keys: Some(crate::proto::RowKeys {
                    digest: [7; 32],
                    labelled: false,
                }),
                standardized: Some(crate::proto::StatsShares {
                    label: true,
                    mean: vec![1, 2],
                    inv_sd: vec![3, u64::MAX],
                    sd: vec![5, 6],
                }),
            },
        ),
        ClientRequest::Commit { id },
        ClientRequest::List,
        ClientRequest::Delete {
            name: "cancer".into(),
        },
        ClientRequest::Submit(spec.clone()),
        ClientRequest::Reveal { job: id },
        ClientRequest::Inference(InferRequest::ModelInfo {
            model: "bodypose".into(),
        }),
        ClientRequest::Inference(InferRequest::OpenSession {
            model: "bodypose".into(),
            key_lens: vec![1 << 20, 1 << 19, 1 << 19],
            public_key_len: 1 << 16,
        }),
        ClientRequest::Inference(InferRequest::Infer {
            session: id,
            ct_lens: vec![1 << 18; 4],
        }),
        ClientRequest::Inference(InferRequest::CloseSession { session: id }),
        ClientRequest::SubmitFollows { bytes: 1 << 20 },
        ClientRequest::Watch { job: id },
    ];
    let framed = |msgs: &[Vec<u8>]| {
        let mut out = Vec::new();
        for m in msgs {
            out.extend_from_slice(&(m.len() as u32).to_le_bytes());
            out.extend_from_slice(m);
        }
        out
    };
    match target {
        "client_hello" => vec![
            enc(&ClientHello { credential: None }),
            enc(&ClientHello {
                credential: Some(Credential([7; 32])),
            }),
        ],
        "client_request" => requests.iter().map(enc).collect(),
        "reply" => [
            Reply::Welcome { role: 1 },
            Reply::Prepared { id },
            Reply::SendShare { id },
            Reply::Committed { id },
            Reply::Entries(vec![EntryInfo {
                id,
                name: "cancer".into(),
                rows: 455,
                cols: 31,
                created: 1,
                tensor_dims: Some([3, 32, 15, 1]),
            }]),
            Reply::Done,
            Reply::Progress {
                job: id,
                step: 3,
                steps: 21,
                triples: TripleKind::He,
            },
            Reply::JobDone {
                job: id,
                stats: [stats, stats],
            },
            Reply::ModelShare {
                rows: 30,
                cols: 1,
                frac_bits: mpc::FracBits::new(16).unwrap(),
            },
            Reply::EpochShares {
                job: id,
                epoch: 1,
                epochs: 3,
                count: 64,
                frac_bits: mpc::FracBits::new(16).unwrap(),
            },
            Reply::Error {
                code: ErrorCode::Forbidden,
                message: "not yours".into(),
            },
        ]
        .iter()
        .map(enc)
        .collect(),
        "peer_request" => [
            PeerRequest::Vote {
                id,
                owner: "alice".into(),
                name: "cancer".into(),
                rows: 455,
                cols: 31,
                tensor: None,
                standardized: Some((0..30).collect()),
            },
            PeerRequest::Commit { id },
            PeerRequest::Abort { id },
            PeerRequest::Status { id },
            PeerRequest::Delete {
                id,
                owner: "alice".into(),
            },
            PeerRequest::Job {
                job: id,
                owner: "alice".into(),
                dataset: id,
                spec,
            },
        ]
        .iter()
        .map(enc)
        .collect(),
        "peer_reply" => [
            PeerReply::Vote(true),
            PeerReply::Ack,
            PeerReply::State(PeerState::Prepared),
            PeerReply::Refused("no".into()),
            PeerReply::JobStored(stats),
            PeerReply::JobRefused {
                code: ErrorCode::BadRequest,
                message: "epochs = 0: 1..=1000".into(),
            },
        ]
        .iter()
        .map(enc)
        .collect(),
        "dealer_messages" => {
            use mpc::triples::dealer::{DealerReply, DealerRequest};
            vec![
                enc(&DealerRequest::Done),
                enc(&DealerReply::Ok),
                enc(&DealerReply::Refused { reason: "x".into() }),
                enc(&DealerReply::Mismatch { index: 3 }),
                enc(&mpc::share::Seed([1; 32])),
            ]
        }
        "frames" => vec![
            framed(&requests.iter().map(enc).collect::<Vec<_>>()),
            framed(&[vec![0; 32], vec![1; 100]]),
        ],
        "ring" => {
            let mut b = vec![2u8, 3];
            b.extend_from_slice(&framed(&[vec![5; 48]]));
            vec![b]
        }
        "link_headers" => {
            use crate::transport::link;
            vec![
                link::quic_header(3).to_vec(),
                link::tcp_header(&[9; 16], 2).to_vec(),
                link::answer(0).to_vec(),
            ]
        }
        "manifest" => vec![b"id = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\nkind = \"dataset\"\n\
name = \"d\"\nowner = \"alice\"\nrows = 2\ncols = 2\nlabel_column = 1\nfrac_bits = 16\n\
form = \"Matrix\"\nsha256 = \"00\"\ncreated = 1\nstate = \"committed\"\nappenders = [\"bob\"]\n\
supersedes = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\n\n[[appended]]\nclient = \"bob\"\nrows = 3\n"
            .to_vec()],
        "he_keys" => he_key_seeds(),
        "rlwe_messages" => rlwe_seeds(),
        _ => Vec::new(),
    }
}

/// Valid encodings of the objects [`he_keys`] decodes, under fixed-seed keys (fuzz seeds only).
fn he_key_seeds() -> Vec<Vec<u8>> {
    let p = ckks_params();
    let mut kg = ckks::KeyGenerator::from_seed(p, [1; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).expect("public key");
    let mut out = vec![
        pk.to_bytes().expect("pk encodes"),
        pk.at_level(0)
            .and_then(|k| k.to_bytes())
            .expect("pk at level 0"),
        kg.relin_key(&sk)
            .and_then(|k| k.to_bytes(p))
            .expect("relin key"),
        kg.galois_keys(&sk, &[1], false)
            .and_then(|k| k.to_bytes(p))
            .expect("galois key"),
    ];
    let enc = ckks::Encoder::new(p);
    let pt = enc
        .encode(&[1.0, 2.0], p.max_level(), p.default_scale())
        .expect("encode");
    let ct = sk.encrypt_symmetric(&pt).expect("encrypt");
    out.push(ct.to_bytes(p).expect("ct encodes"));
    out
}

/// Valid encodings of the RLWE messages [`rlwe_messages`] decodes (fixed seeds).
fn rlwe_seeds() -> Vec<Vec<u8>> {
    use mpc::offline::rlwe::SecretKey;
    use rand::SeedableRng;
    let p = rlwe_params();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
    let sk = SecretKey::generate(p, &mut rng);
    let m = vec![3u64; p.degree()];
    vec![
        sk.public_key(p, &mut rng).to_bytes(p),
        sk.encrypt(p, &m, &mut rng).to_bytes(p),
    ]
}

fn enc<T: serde::Serialize>(m: &T) -> Vec<u8> {
    mpc::net::encode_message(m).expect("seed messages encode")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_returns_on_edge_inputs() {
        let inputs: [&[u8]; 6] = [
            &[],
            &[0],
            &[0xff; 64],
            &[4, 0, 0, 0, 1, 2, 3, 4],
            &[
                2, 1, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
            ],
            b"DYAD\x01\x00\x00\x00\x00",
        ];
        for (_, f) in TARGETS {
            for i in inputs {
                f(i);
            }
        }
    }

    #[test]
    fn every_target_has_seeds_and_they_decode() {
        for (name, f) in TARGETS {
            let seeds = seeds(name);
            assert!(!seeds.is_empty(), "{name}");
            for s in seeds {
                f(&s);
            }
        }
        for s in seeds("client_request") {
            decode::<ClientRequest>(&s, MAX_CONTROL_FRAME).unwrap();
        }
        for s in seeds("reply") {
            decode::<Reply>(&s, MAX_CONTROL_FRAME).unwrap();
        }
        for s in seeds("peer_request") {
            decode::<PeerRequest>(&s, MAX_CONTROL_FRAME).unwrap();
        }
        for s in seeds("manifest") {
            crate::store::parse_manifest(&s).unwrap();
        }
    }

    #[test]
    fn a_well_formed_ring_stream_decodes() {
        // 2 x 1 matrix: one frame of 16 bytes.
        let mut b = vec![2u8, 1, 16, 0, 0, 0];
        b.extend_from_slice(&5u64.to_le_bytes());
        b.extend_from_slice(&6u64.to_le_bytes());
        ring(&b);
        let m = ready(async {
            let mut ch = StreamChannel::new(&b[2..], tokio::io::sink());
            ch.recv_ring(2, 1).await.unwrap()
        });
        assert_eq!(m, ndarray::array![[5u64], [6]]);
    }
}
