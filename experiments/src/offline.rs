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

/// A source run by the two servers alone (`ot`, `he`): a fresh metered link, `setup` on each
/// side, then both generate `requests`; the time covers setup and generation.
async fn two_server<S, F>(
    transport: &str,
    requests: &[TripleRequest],
    setup: impl Fn(Metered<link::AnyChannel>, Role) -> F,
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
    let (p0, p1) = tokio::join!(a.generate(requests), b.generate(requests));
    let seconds = t.elapsed().as_secs_f64();
    Ok(Offline {
        pre: [p0?, p1?],
        seconds,
        stats: [m0.stats(), m1.stats()],
        trust: a.trust_note(),
        flooding: None,
    })
}
