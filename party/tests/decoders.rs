//! Property tests of every decoder a party or client runs on network bytes (run in CI; the
//! coverage-guided fuzzing of the same entry points is `party/fuzz/run.sh`): every message
//! type round-trips; a strict prefix or a longer frame of a valid encoding is refused; flipped
//! bytes and random garbage never make a decoder panic.

use party::fuzzing;
use party::proto::{
    decode, ClientHello, ClientRequest, Credential, DatasetRef, EntryId, EntryInfo, ErrorCode,
    JobSpec, JobStats, JoinSpec, ModelKind, PeerReply, PeerRequest, PeerState, Reply, RowKeys,
    ShareForm, StatsShares, TensorMeta, TripleKind, UploadHeader, UploadOptions, MAX_CONTROL_FRAME,
};
use proptest::prelude::*;
use serde::{de::DeserializeOwned, Serialize};

fn id() -> impl Strategy<Value = EntryId> {
    any::<[u8; 16]>().prop_map(EntryId)
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

/// Valid fractional bits (others are not representable: decoding refuses them).
fn frac_bits() -> impl Strategy<Value = mpc::FracBits> {
    (1..=mpc::FracBits::MAX).prop_map(|b| mpc::FracBits::new(b).unwrap())
}

fn header() -> impl Strategy<Value = UploadHeader> {
    (
        id(),
        text(),
        (any::<u64>(), any::<u64>(), any::<u64>(), frac_bits()),
        prop_oneof![Just(ShareForm::Seed), Just(ShareForm::Matrix)],
        any::<[u8; 32]>(),
        any::<u64>(),
    )
        .prop_map(
            |(id, name, (rows, cols, label_column, frac_bits), form, digest, len)| UploadHeader {
                id,
                name,
                rows,
                cols,
                label_column,
                frac_bits,
                form,
                digest,
                len,
            },
        )
}

fn options() -> impl Strategy<Value = UploadOptions> {
    (
        proptest::collection::vec(text(), 0..4),
        proptest::option::of((text(), text()).prop_map(|(owner, name)| DatasetRef { owner, name })),
        proptest::option::of(tensor_meta()),
        proptest::option::of(
            (any::<[u8; 32]>(), any::<bool>())
                .prop_map(|(digest, labelled)| RowKeys { digest, labelled }),
        ),
        proptest::option::of(stats_shares()),
    )
        .prop_map(
            |(appenders, append_to, tensor, keys, standardized)| UploadOptions {
                appenders,
                append_to,
                tensor,
                keys,
                standardized,
            },
        )
}

fn stats_shares() -> impl Strategy<Value = StatsShares> {
    let words = || proptest::collection::vec(any::<u64>(), 0..4);
    (any::<bool>(), words(), words(), words()).prop_map(|(label, mean, inv_sd, sd)| StatsShares {
        label,
        mean,
        inv_sd,
        sd,
    })
}

fn join_spec() -> impl Strategy<Value = JoinSpec> {
    let r = || (text(), text()).prop_map(|(owner, name)| DatasetRef { owner, name });
    (id(), r(), r(), text(), text()).prop_map(|(join, left, right, name, owner)| JoinSpec {
        join,
        left,
        right,
        name,
        owner,
    })
}

fn tensor_meta() -> impl Strategy<Value = TensorMeta> {
    (
        any::<[u64; 4]>(),
        text(),
        proptest::collection::vec(text(), 0..4),
    )
        .prop_map(|(dims, graph, class_names)| TensorMeta {
            dims,
            graph,
            class_names,
        })
}

fn triple_kind() -> impl Strategy<Value = TripleKind> {
    prop_oneof![
        Just(TripleKind::Ot),
        Just(TripleKind::Dealer),
        Just(TripleKind::He),
        Just(TripleKind::Auto)
    ]
}

fn spec() -> impl Strategy<Value = JobSpec> {
    (
        prop_oneof![Just(ModelKind::Linreg), Just(ModelKind::Logreg)],
        text(),
        -1e9f64..1e9,
        any::<(u64, u64, u64)>(),
        triple_kind(),
    )
        .prop_map(
            |(model, dataset, learning_rate, (b, e, s), triples)| JobSpec {
                model,
                dataset,
                learning_rate,
                batch_size: b,
                epochs: e,
                schedule_seed: s,
                triples,
                intercept: false,
                ot_extension: Default::default(),
            },
        )
}

fn client_request() -> impl Strategy<Value = ClientRequest> {
    prop_oneof![
        header().prop_map(ClientRequest::Upload),
        (header(), options()).prop_map(|(h, o)| ClientRequest::UploadWith(h, o)),
        id().prop_map(|id| ClientRequest::Commit { id }),
        Just(ClientRequest::List),
        text().prop_map(|name| ClientRequest::Delete { name }),
        spec().prop_map(ClientRequest::Submit),
        id().prop_map(|job| ClientRequest::Reveal { job }),
        join_spec().prop_map(ClientRequest::JoinConsent),
        id().prop_map(|join| ClientRequest::JoinStart { join }),
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::Unauthorized),
        Just(ErrorCode::Forbidden),
        Just(ErrorCode::NotFound),
        Just(ErrorCode::BadRequest),
        Just(ErrorCode::Limit),
        Just(ErrorCode::Peer),
        Just(ErrorCode::Internal),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    let info = (
        id(),
        text(),
        any::<(u64, u64, u64)>(),
        any::<Option<[u64; 4]>>(),
    )
        .prop_map(|(id, name, (rows, cols, created), tensor_dims)| EntryInfo {
            id,
            name,
            rows,
            cols,
            created,
            tensor_dims,
        });
    prop_oneof![
        any::<u8>().prop_map(|role| Reply::Welcome { role }),
        id().prop_map(|id| Reply::Prepared { id }),
        id().prop_map(|id| Reply::SendShare { id }),
        id().prop_map(|id| Reply::Committed { id }),
        id().prop_map(|join| Reply::JoinConsented { join }),
        proptest::collection::vec(info, 0..4).prop_map(Reply::Entries),
        Just(Reply::Done),
        (id(), any::<(u64, u64)>(), triple_kind()).prop_map(|(job, (step, steps), triples)| {
            Reply::Progress {
                job,
                step,
                steps,
                triples,
            }
        }),
        (id(), job_stats(), job_stats())
            .prop_map(|(job, a, b)| Reply::JobDone { job, stats: [a, b] }),
        (any::<u64>(), any::<u64>(), frac_bits()).prop_map(|(rows, cols, frac_bits)| {
            Reply::ModelShare {
                rows,
                cols,
                frac_bits,
            }
        }),
        (error_code(), text()).prop_map(|(code, message)| Reply::Error { code, message }),
    ]
}

fn comm_stats() -> impl Strategy<Value = mpc::net::CommStats> {
    any::<[u64; 5]>().prop_map(|v| mpc::net::CommStats {
        bytes_sent: v[0],
        bytes_received: v[1],
        frames_sent: v[2],
        frames_received: v[3],
        rounds: v[4],
    })
}

/// Finite times (a NaN would not compare equal to itself after the round trip).
fn job_stats() -> impl Strategy<Value = JobStats> {
    (0.0..1e6f64, 0.0..1e6f64, comm_stats(), comm_stats()).prop_map(
        |(offline_s, online_s, offline, online)| JobStats {
            offline_s,
            online_s,
            offline,
            online,
        },
    )
}

fn peer_request() -> impl Strategy<Value = PeerRequest> {
    prop_oneof![
        (
            id(),
            text(),
            text(),
            any::<(u64, u64)>(),
            proptest::option::of(tensor_meta()),
            proptest::option::of(proptest::collection::vec(any::<u64>(), 0..4))
        )
            .prop_map(|(id, owner, name, (rows, cols), tensor, standardized)| {
                PeerRequest::Vote {
                    id,
                    owner,
                    name,
                    rows,
                    cols,
                    tensor,
                    standardized,
                }
            }),
        id().prop_map(|id| PeerRequest::Commit { id }),
        id().prop_map(|id| PeerRequest::Abort { id }),
        id().prop_map(|id| PeerRequest::Status { id }),
        (id(), text()).prop_map(|(id, owner)| PeerRequest::Delete { id, owner }),
        (id(), text(), id(), spec()).prop_map(|(job, owner, dataset, spec)| PeerRequest::Job {
            job,
            owner,
            dataset,
            spec
        }),
        join_spec().prop_map(PeerRequest::Join),
    ]
}

fn peer_reply() -> impl Strategy<Value = PeerReply> {
    prop_oneof![
        any::<bool>().prop_map(PeerReply::Vote),
        Just(PeerReply::Ack),
        prop_oneof![
            Just(PeerState::Absent),
            Just(PeerState::Prepared),
            Just(PeerState::Committed)
        ]
        .prop_map(PeerReply::State),
        text().prop_map(PeerReply::Refused),
        job_stats().prop_map(PeerReply::JobStored),
    ]
}

/// Round trip, prefixes refused, a trailing byte refused, flipped bytes never panic.
fn check<T>(m: &T, flips: &[(usize, u8)]) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let b = mpc::net::encode_message(m).unwrap();
    prop_assert_eq!(&decode::<T>(&b, MAX_CONTROL_FRAME).unwrap(), m);
    for cut in [0, b.len() / 2, b.len().saturating_sub(1)] {
        if cut < b.len() {
            prop_assert!(decode::<T>(&b[..cut], MAX_CONTROL_FRAME).is_err());
        }
    }
    let mut longer = b.clone();
    longer.push(0);
    prop_assert!(decode::<T>(&longer, MAX_CONTROL_FRAME).is_err());
    let mut bent = b.clone();
    for &(i, x) in flips {
        if !bent.is_empty() {
            let k = i % bent.len();
            bent[k] ^= x;
        }
    }
    if let Ok(v) = decode::<T>(&bent, MAX_CONTROL_FRAME) {
        // Whatever decodes re-encodes to a frame that decodes to the same encoding (compared
        // as bytes: a flipped float may be NaN).
        let again = mpc::net::encode_message(&v).unwrap();
        let back: T = decode(&again, MAX_CONTROL_FRAME).unwrap();
        prop_assert_eq!(mpc::net::encode_message(&back).unwrap(), again);
    }
    Ok(())
}

fn flips() -> impl Strategy<Value = Vec<(usize, u8)>> {
    proptest::collection::vec((any::<usize>(), 1u8..), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_hellos(credential in proptest::option::of(any::<[u8; 32]>()), f in flips()) {
        check(&ClientHello { credential: credential.map(Credential) }, &f)?;
    }

    #[test]
    fn client_requests(m in client_request(), f in flips()) {
        check(&m, &f)?;
    }

    #[test]
    fn replies(m in reply(), f in flips()) {
        check(&m, &f)?;
    }

    #[test]
    fn peer_requests(m in peer_request(), f in flips()) {
        check(&m, &f)?;
    }

    #[test]
    fn peer_replies(m in peer_reply(), f in flips()) {
        check(&m, &f)?;
    }

    #[test]
    fn garbage_never_panics_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for (_, target) in fuzzing::TARGETS {
            target(&bytes);
        }
    }

    #[test]
    fn framed_garbage_after_a_valid_length_never_panics(len in 0u32..4096, tail in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut b = len.to_le_bytes().to_vec();
        b.extend_from_slice(&tail);
        fuzzing::frames(&b);
        let mut r = vec![3u8, 2];
        r.extend_from_slice(&b);
        fuzzing::ring(&r);
    }
}
