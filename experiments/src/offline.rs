//! The offline phase of a secure run: turn the plan's triple requests into both parties'
//! preprocessing with the configured source, timed and metered separately from the online phase.
//!
//! * `dealer` — a trusted third party (in this process) makes every triple;
//! * `client-aided` — the same construction run by the data owner (SecureML §V);
//! * `ot` — the two servers alone, by oblivious transfer (Chou–Orlandi base OT, IKNP/ALSZ
//!   extension or the silent extension on top of it, Gilboa products), over the configured
//!   transport;
//! * `he` — the two servers alone, matrix cross terms by RLWE homomorphic encryption (SecureML's
//!   LHE variant with a lattice scheme, Cheetah-style packing), elementwise and AND triples by OT;
//! * `auto` — the cheaper of `ot` and `he` for the requests (`mpc::triples::choice`), printed.
//!
//! `ot` and `he` use the default OT extension (`mpc::offline::cot::OtExtension`, silent);
//! `ot-iknp`, `he-iknp`, `ot-silent`, `he-silent` name it.
//!
//! A secure training run streams its offline phase ([`run_streamed`]): the two-server sources
//! are set up once on their own link and make the plan's requests in consecutive chunks of
//! about 128 MB of material per party on a producer thread, at most two chunks ahead of the
//! online phase, which starts as soon as the first chunk (with the data masks) is ready. The
//! material, its order and the security are those of one whole-run call (one source, one key
//! and flood ledger for the run); the memory holds a few chunks instead of the run's material
//! (measured: ~11 MB per party per SGD step of SecureML's network, so 15 epochs made up front
//! would need ~80 GB per party). The dealer and client-aided sources still make everything first.

use crate::link;
use crate::report::Report;
use anyhow::{bail, Result};
use mpc::net::{mem_pair, CommStats, Metered};
use mpc::offline::cot::OtExtension;
use mpc::offline::he::run_flooding;
use mpc::offline::rlwe::{RlweParams, FLOOD_STAT_BITS, RUN_FLOOD_BUDGET_LOG2};
use mpc::share::os_rng;
use mpc::triples::dealer::{run_dealer, DealerClient};
use mpc::triples::{ClientAided, HeSource, OtSource};
use mpc::triples::{Preprocessing, TripleRequest, TripleSource};
use mpc::Role;
use std::time::Instant;

/// Both parties' preprocessing and what making it cost.
#[derive(Debug)]
pub struct Offline {
    /// P0's and P1's pools.
    pub pre: [Preprocessing; 2],
    /// Wall time of generation (both parties concurrently).
    pub seconds: f64,
    /// Communication of each party during the offline phase.
    pub stats: [CommStats; 2],
    /// The trust assumption the source adds.
    pub trust: &'static str,
    /// `he` only: the run's noise flooding ([`Flooding`]).
    pub flooding: Option<Flooding>,
}

/// The noise flooding of an `he` run, from the same block plans and widths the responders use.
#[derive(Debug, Clone, Copy)]
pub struct Flooding {
    /// Output coefficients each party floods as a responder.
    pub coefficients: u64,
    /// `log2` of the statistical distance between what each party receives as a querier and its
    /// simulation, summed over the whole run.
    pub distance_log2: f64,
}

impl Flooding {
    /// The flooding of `requests` made by [`HeSource`].
    pub fn of(requests: &[TripleRequest]) -> Result<Self> {
        let p = RlweParams::standard();
        let (coefficients, distance_log2) = run_flooding(&p, requests)?;
        Ok(Self {
            coefficients,
            distance_log2,
        })
    }

    /// Reports it: metrics `{prefix}.flooding_distance_log2` and `{prefix}.flooded_coefficients_count`,
    /// and a sentence.
    pub fn report(&self, report: &mut Report, prefix: &str) {
        report.metric(
            format!("{prefix}.flooding_distance_log2"),
            self.distance_log2,
        );
        report.metric(
            format!("{prefix}.flooded_coefficients_count"),
            self.coefficients as f64,
        );
        report.note(format!(
            "HE noise flooding: each party, as responder, flooded {} output coefficients (2^{:.1}; run budget 2^{RUN_FLOOD_BUDGET_LOG2}); what each party received is within statistical distance 2^{:.1} of its simulation over the whole run (required: ≤ 2^-{FLOOD_STAT_BITS}).",
            self.coefficients,
            (self.coefficients.max(1) as f64).log2(),
            self.distance_log2,
        ));
    }
}

/// The source `auto` stands for with `requests`: `ot` or `he` by `mpc::triples::choice`'s cost
/// model (printed with the estimate).
///
/// # Errors
/// A product against an unregistered mask.
pub fn auto_source(requests: &[TripleRequest]) -> Result<&'static str> {
    let e = mpc::triples::choice::estimate(requests)?;
    println!("triples auto → {}", e.describe());
    Ok(e.cheapest().name())
}

/// Runs the offline phase for `requests` with `source` (`dealer`, `client-aided`, `ot`, `he`,
/// `auto`).
pub async fn run(source: &str, transport: &str, requests: &[TripleRequest]) -> Result<Offline> {
    let source = match source {
        "auto" => auto_source(requests)?,
        s => s,
    };
    match source {
        "dealer" | "client-aided" => {
            let (d0, c0) = mem_pair();
            let (d1, c1) = mem_pair();
            let task = tokio::spawn(run_dealer(d0, d1));
            let (c0, c1) = (Metered::new(c0), Metered::new(c1));
            let (m0, m1) = (c0.meter(), c1.meter());
            let t = Instant::now();
            let (pre, trust) = if source == "dealer" {
                let (a, b) = tokio::join!(
                    DealerClient::connect(c0, Role::P0),
                    DealerClient::connect(c1, Role::P1)
                );
                let (mut a, mut b) = (a?, b?);
                let (p0, p1) = tokio::join!(a.generate(requests), b.generate(requests));
                let trust = a.trust_note();
                let (p0, p1) = (p0?, p1?);
                a.finish().await?;
                b.finish().await?;
                ([p0, p1], trust)
            } else {
                let (a, b) = tokio::join!(
                    ClientAided::connect(c0, Role::P0),
                    ClientAided::connect(c1, Role::P1)
                );
                let (mut a, mut b) = (a?, b?);
                let (p0, p1) = tokio::join!(a.generate(requests), b.generate(requests));
                let trust = a.trust_note();
                let (p0, p1) = (p0?, p1?);
                a.finish().await?;
                b.finish().await?;
                ([p0, p1], trust)
            };
            let seconds = t.elapsed().as_secs_f64();
            task.await??;
            Ok(Offline {
                pre,
                seconds,
                stats: [m0.stats(), m1.stats()],
                trust,
                flooding: None,
            })
        }
        "ot" | "ot-iknp" | "ot-silent" => {
            let ext = extension(source)?;
            let setup = |c, r| OtSource::setup_with(c, r, os_rng(), ext);
            two_server(transport, requests, setup).await
        }
        "he" | "he-iknp" | "he-silent" => {
            let ext = extension(source)?;
            let flooding = Flooding::of(requests)?;
            let setup = |c, r| HeSource::setup_with(c, r, os_rng(), ext);
            let off = two_server(transport, requests, setup).await?;
            Ok(Offline {
                flooding: Some(flooding),
                ..off
            })
        }
        other => bail!(
            "unknown triple source {other:?} (dealer, client-aided, ot, he, auto; ot-iknp, \
             he-iknp, ot-silent, he-silent)"
        ),
    }
}

/// The OT extension a two-server source name asks for: its `-iknp` / `-silent` suffix, else the
/// default.
fn extension(source: &str) -> Result<OtExtension> {
    Ok(match source.split_once('-') {
        Some((_, ext)) => ext.parse()?,
        None => OtExtension::default(),
    })
}

/// A source run by the two servers alone (`ot`, `he`) for the whole of `requests` at once.
async fn two_server<S, F>(
    transport: &str,
    requests: &[TripleRequest],
    setup: impl Fn(Metered<link::AnyChannel>, Role) -> F,
) -> Result<Offline>
where
    S: TripleSource,
    F: std::future::Future<Output = mpc::error::Result<S>>,
{
    let mut pre = None;
    let off = two_server_parts(transport, &[requests], setup, |a, b| {
        pre = Some([a, b]);
        true
    })
    .await?;
    Ok(Offline {
        pre: pre.expect("one part"),
        ..off
    })
}

/// A source run by the two servers alone: a fresh metered link and `setup` on each side, once,
/// then both generate each of `parts` in order and hand the pair of pools to `deliver`, which
/// says whether to go on; the time covers setup and generation (and `deliver`); the returned
/// pools are empty.
async fn two_server_parts<S, F>(
    transport: &str,
    parts: &[&[TripleRequest]],
    setup: impl Fn(Metered<link::AnyChannel>, Role) -> F,
    mut deliver: impl FnMut(Preprocessing, Preprocessing) -> bool,
) -> Result<Offline>
where
    S: TripleSource,
    F: std::future::Future<Output = mpc::error::Result<S>>,
{
    let (c0, c1) = link::pair(transport).await?;
    let (c0, c1) = (Metered::new(c0), Metered::new(c1));
    let (m0, m1) = (c0.meter(), c1.meter());
    let t = Instant::now();
    let (a, b) = tokio::join!(setup(c0, Role::P0), setup(c1, Role::P1));
    let (mut a, mut b) = (a?, b?);
    for part in parts {
        let (p0, p1) = tokio::join!(a.generate(part), b.generate(part));
        if !deliver(p0?, p1?) {
            break;
        }
    }
    Ok(Offline {
        pre: [Preprocessing::new(), Preprocessing::new()],
        seconds: t.elapsed().as_secs_f64(),
        stats: [m0.stats(), m1.stats()],
        trust: a.trust_note(),
        flooding: None,
    })
}

/// Words (8 bytes) of one party's material per streamed chunk (about 128 MB: about a dozen
/// steps of SecureML's network at batch 128).
const CHUNK_WORDS: u64 = 16 << 20;
/// Chunks a streamed producer may have ready beyond the one the online phase is using.
const CHUNKS_AHEAD: usize = 2;

/// `requests` cut into consecutive chunks of about `chunk_words` words of material each (a
/// request is never split; one larger than that is a chunk of its own).
pub fn chunks(requests: &[TripleRequest], chunk_words: u64) -> Vec<Vec<TripleRequest>> {
    let mut out: Vec<Vec<TripleRequest>> = Vec::new();
    let mut cur = Vec::new();
    let (mut words, mut masks) = (0, std::collections::HashMap::new());
    for r in requests {
        let w = ml::backend::request_words(r, &mut masks);
        if !cur.is_empty() && words + w > chunk_words {
            out.push(std::mem::take(&mut cur));
            words = 0;
        }
        words += w;
        cur.push(r.clone());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The producer of a streamed offline phase ([`run_streamed`]).
#[derive(Debug)]
pub enum Producer {
    /// The source made everything before the online phase (dealer, client-aided).
    Done(Box<Offline>),
    /// A thread making the chunks on its own runtime, a bounded number ahead.
    Running(std::thread::JoinHandle<Result<Offline>>),
}

impl Producer {
    /// Waits for the producer (after the online phase took the last chunk): its time, bytes
    /// and trust note; the pools in the result are empty.
    pub async fn finish(self) -> Result<Offline> {
        match self {
            Producer::Done(off) => Ok(*off),
            Producer::Running(h) => {
                tokio::task::spawn_blocking(move || {
                    h.join()
                        .map_err(|_| anyhow::anyhow!("the offline producer panicked"))?
                })
                .await?
            }
        }
    }
}

/// The offline phase of `requests` run alongside the online phase: for the two-server sources
/// (`ot`, `he` and their variants) a producer thread sets the source up once on its own link
/// and makes the material in [`chunks`], at most two ahead of the online phase
/// (pools from `mpc::triples::Preprocessing::streamed`), so a long run holds a few chunks
/// instead of all of its material; the first chunk (with the data masks) is ready when this
/// returns. Other sources make everything first ([`run`]).
///
/// # Errors
/// As [`run`]; a producer that fails before its first chunk.
pub async fn run_streamed(
    source: &str,
    transport: &str,
    requests: &[TripleRequest],
) -> Result<([Preprocessing; 2], Producer)> {
    run_streamed_in(source, transport, requests, CHUNK_WORDS).await
}

/// [`run_streamed`] with chunks of about `chunk_words` words.
async fn run_streamed_in(
    source: &str,
    transport: &str,
    requests: &[TripleRequest],
    chunk_words: u64,
) -> Result<([Preprocessing; 2], Producer)> {
    let source = match source {
        "auto" => auto_source(requests)?,
        s => s,
    };
    let ext = match source {
        "ot" | "ot-iknp" | "ot-silent" | "he" | "he-iknp" | "he-silent" => extension(source)?,
        _ => {
            let mut off = run(source, transport, requests).await?;
            let pre = std::mem::take(&mut off.pre);
            return Ok((pre, Producer::Done(Box::new(off))));
        }
    };
    let he = source.starts_with("he");
    let flooding = if he {
        Some(Flooding::of(requests)?)
    } else {
        None
    };
    let parts = chunks(requests, chunk_words);
    let (tx0, rx0) = std::sync::mpsc::sync_channel(CHUNKS_AHEAD);
    let (tx1, rx1) = std::sync::mpsc::sync_channel(CHUNKS_AHEAD);
    let transport = transport.to_string();
    let handle = std::thread::spawn(move || -> Result<Offline> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let txs = (tx0, tx1);
            let off = if he {
                let setup = |c, r| HeSource::setup_with(c, r, os_rng(), ext);
                produce(&transport, &parts, setup, txs).await?
            } else {
                let setup = |c, r| OtSource::setup_with(c, r, os_rng(), ext);
                produce(&transport, &parts, setup, txs).await?
            };
            Ok(Offline { flooding, ..off })
        })
    });
    let first = tokio::task::spawn_blocking(move || {
        let (a, b) = (rx0.recv(), rx1.recv());
        (a, b, rx0, rx1)
    })
    .await?;
    match first {
        (Ok(p0), Ok(p1), rx0, rx1) => Ok((
            [
                Preprocessing::streamed(p0, rx0),
                Preprocessing::streamed(p1, rx1),
            ],
            Producer::Running(handle),
        )),
        _ => {
            // The producer stopped before its first chunk: its error says why.
            let err = Producer::Running(handle).finish().await.err();
            Err(err.unwrap_or_else(|| anyhow::anyhow!("the offline producer sent no material")))
        }
    }
}

type Senders = (
    std::sync::mpsc::SyncSender<Preprocessing>,
    std::sync::mpsc::SyncSender<Preprocessing>,
);

/// The producer's work: one link and one setup, then every chunk, each sent to both pools as
/// soon as it is made (blocking while two are waiting). When the online phase has dropped its
/// pools (it failed, and reports why), the producer stops without an error of its own.
async fn produce<S, F>(
    transport: &str,
    parts: &[Vec<TripleRequest>],
    setup: impl Fn(Metered<link::AnyChannel>, Role) -> F,
    (tx0, tx1): Senders,
) -> Result<Offline>
where
    S: TripleSource,
    F: std::future::Future<Output = mpc::error::Result<S>>,
{
    let parts: Vec<&[TripleRequest]> = parts.iter().map(Vec::as_slice).collect();
    two_server_parts(transport, &parts, setup, |p0, p1| {
        tokio::task::block_in_place(|| tx0.send(p0).is_ok() && tx1.send(p1).is_ok())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpc::ring::{matmul, select_rows};
    use mpc::share::reconstruct;
    use mpc::triples::Lhs;

    /// A mask and products against its rows, fresh products and elementwise triples.
    fn requests() -> Vec<TripleRequest> {
        let mut r = vec![TripleRequest::Mask {
            id: 0,
            rows: 40,
            cols: 6,
        }];
        for i in 0..8 {
            r.push(TripleRequest::Matmul {
                lhs: Lhs::Mask {
                    id: 0,
                    rows: vec![i, 39 - i, 5 * i],
                    transpose: false,
                },
                cols: 2,
            });
            r.push(TripleRequest::Elementwise { rows: 3, cols: 2 });
        }
        r
    }

    /// An online phase that stops early (its pools dropped) stops the producer: it finishes
    /// without an error of its own and without making the rest.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_producer_stops_when_the_online_phase_does() {
        let r = requests();
        let (pools, producer) = run_streamed_in("ot", "memory", &r, 60).await.unwrap();
        drop(pools);
        let off = producer.finish().await.unwrap();
        assert!(off.stats[0].bytes_sent > 0);
    }

    #[test]
    fn chunks_keep_the_order_and_bound_the_words() {
        let r = requests();
        let parts = chunks(&r, 60);
        assert!(parts.len() > 4, "{}", parts.len());
        assert_eq!(parts.concat(), r, "consecutive, nothing lost or reordered");
        // The mask (240 words) is a chunk of its own; the others stay within the bound.
        assert_eq!(parts[0].len(), 1);
        let mut masks = std::collections::HashMap::new();
        for p in &parts {
            let w: u64 = p
                .iter()
                .map(|q| ml::backend::request_words(q, &mut masks))
                .sum();
            assert!(p.len() == 1 || w <= 60, "{w}");
        }
        assert_eq!(chunks(&r, u64::MAX).len(), 1);
    }

    /// Streamed in many chunks by the two servers (`ot` over the in-memory link), the material
    /// comes out in request order and correct (`U[rows]·V = Z`, `a⊙b = c`), the pools drain,
    /// and the producer reports its bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streamed_offline_material_is_correct_in_order() {
        let r = requests();
        let ([mut p0, mut p1], producer) = run_streamed_in("ot", "memory", &r, 60).await.unwrap();
        let u = reconstruct(&p0.claim_mask(0).unwrap(), &p1.claim_mask(0).unwrap());
        for q in &r[1..] {
            match q {
                TripleRequest::Matmul { lhs, cols } => {
                    let Lhs::Mask { rows, .. } = lhs else {
                        unreachable!()
                    };
                    let (a, b) = (p0.next_matmul(lhs, *cols), p1.next_matmul(lhs, *cols));
                    let (a, b) = (a.unwrap(), b.unwrap());
                    let v = reconstruct(&a.v, &b.v);
                    let ur = select_rows(&u.view(), rows);
                    assert_eq!(matmul(&ur.view(), &v.view()), reconstruct(&a.z, &b.z));
                }
                TripleRequest::Elementwise { rows, cols } => {
                    let (a, b) = (
                        p0.next_elementwise((*rows, *cols)),
                        p1.next_elementwise((*rows, *cols)),
                    );
                    let (a, b) = (a.unwrap(), b.unwrap());
                    let x = reconstruct(&a.a, &b.a);
                    let y = reconstruct(&a.b, &b.b);
                    let prod = ndarray::Zip::from(&x)
                        .and(&y)
                        .map_collect(|&s, &t| s.wrapping_mul(t));
                    assert_eq!(prod, reconstruct(&a.c, &b.c));
                }
                _ => unreachable!(),
            }
        }
        assert!(p0.is_drained() && p1.is_drained());
        let off = producer.finish().await.unwrap();
        assert!(off.stats[0].bytes_sent > 0 && off.seconds > 0.0);
    }
}
