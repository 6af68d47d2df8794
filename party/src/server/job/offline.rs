//! The offline phase of a job: one triple source per job (`ot` and `he` with the peer on the
//! job's offline channel, `dealer` over a link to the configured dealer), set up once and asked
//! for preprocessing chunk after chunk. The source is kept between chunks because a data mask
//! registered in the first chunk serves the masked products of every later one (the sources
//! keep the masks' shapes and, for `ot`/`he`, their shares).
//!
//! Security: semi-honest, non-colluding parties; with `dealer`, a dealer that colludes with
//! neither party (it sees only the request shapes, which are public). Every share and mask is
//! drawn from a CSPRNG seeded by the operating system (the sources' `setup`/`connect`).

use super::{DealerParams, JobContext, JobError, Result, Step};
use crate::proto::{OtExtension, TripleKind};
use crate::server::timed::Timed;
use crate::transport::{self, Identity, Link, PeerCert, PeerChannel};
use mpc::net::{CommStats, Metered};
use mpc::share::os_rng;
use mpc::triples::dealer::DealerClient;
use mpc::triples::{HeSource, OtSource, Preprocessing, TripleRequest, TripleSource};
use std::sync::Arc;
use std::time::Instant;

/// The metered channel a source talks over.
type OffChannel = Metered<Timed<PeerChannel>>;

/// The job's triple source, alive for the whole job.
enum Source {
    Ot(OtSource<OffChannel>),
    He(HeSource<OffChannel>),
    /// The dealer connection and the link that carries it (kept open between chunks).
    Dealer(DealerClient<OffChannel>, Link),
}

/// The offline phase of one job: its source, the traffic meter of the source's channel and the
/// seconds spent so far (setup and every chunk).
pub struct Offline {
    source: Source,
    meter: Arc<mpc::net::Meter>,
    seconds: f64,
}

impl std::fmt::Debug for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.source {
            Source::Ot(_) => "ot",
            Source::He(_) => "he",
            Source::Dealer(..) => "dealer",
        };
        write!(f, "Offline({kind}, {:.3} s)", self.seconds)
    }
}

impl Offline {
    /// Sets up the source of `kind`: base OTs and the OT extension `ext` (and RLWE key exchange
    /// for `he`) with the peer on `off`, or a connection to the dealer (`off` is then unused and
    /// closed; `ext` is ignored).
    ///
    /// # Errors
    /// [`JobError::NoDealer`], channel, transport or protocol errors (named by step).
    pub async fn setup(
        ctx: &JobContext,
        kind: TripleKind,
        ext: OtExtension,
        off: PeerChannel,
    ) -> Result<Self> {
        let t = Instant::now();
        let (source, meter) = match kind {
            TripleKind::Ot => {
                let ch = Metered::new(Timed::new(off, ctx.timeout));
                let meter = ch.meter();
                let src = OtSource::setup_with(ch, ctx.role, os_rng(), ext)
                    .await
                    .step("OT base phase")?;
                (Source::Ot(src), meter)
            }
            TripleKind::He => {
                let ch = Metered::new(Timed::new(off, ctx.timeout));
                let meter = ch.meter();
                let src = HeSource::setup_with(ch, ctx.role, os_rng(), ext)
                    .await
                    .step("HE key exchange and OT base phase")?;
                (Source::He(src), meter)
            }
            TripleKind::Auto => {
                return Err(JobError::Internal(
                    "triples = auto reached the job runner unresolved (P0 resolves it)",
                ))
            }
            TripleKind::Dealer => {
                drop(off);
                let p = ctx.dealer.as_ref().ok_or(JobError::NoDealer)?;
                let (dc, link, meter) = connect_dealer(p, ctx).await?;
                (Source::Dealer(dc, link), meter)
            }
        };
        Ok(Self {
            source,
            meter,
            seconds: t.elapsed().as_secs_f64(),
        })
    }

    /// The preprocessing for `requests` (one chunk of the job).
    ///
    /// # Errors
    /// Protocol or channel errors; the dealer's refusal.
    pub async fn generate(&mut self, requests: &[TripleRequest]) -> Result<Preprocessing> {
        let t = Instant::now();
        let pre = match &mut self.source {
            Source::Ot(s) => s.generate(requests).await.step("OT triples")?,
            Source::He(s) => s.generate(requests).await.step("HE triples")?,
            Source::Dealer(s, _) => s.generate(requests).await.step("dealer triples")?,
        };
        self.seconds += t.elapsed().as_secs_f64();
        Ok(pre)
    }

    /// Ends the phase (telling the dealer the session is over): seconds spent and traffic.
    ///
    /// # Errors
    /// A dealer link that failed.
    pub async fn finish(self) -> Result<(f64, CommStats)> {
        if let Source::Dealer(dc, link) = self.source {
            dc.finish().await.step("closing the dealer session")?;
            drop(link);
        }
        Ok((self.seconds, self.meter.stats()))
    }
}

/// Connects to the dealer `p` as this party.
async fn connect_dealer(
    p: &DealerParams,
    ctx: &JobContext,
) -> Result<(DealerClient<OffChannel>, Link, Arc<mpc::net::Meter>)> {
    let me = Identity::load(&p.identity_dir)?;
    let cert = PeerCert::load(&p.certificate)?;
    let opts = transport::TransportOptions::default();
    let link = transport::connect(p.kind, p.address, me, &cert, &opts)
        .await
        .step("connecting to the dealer")?;
    let ch = Metered::new(Timed::new(link.next_channel().await?, ctx.timeout));
    let meter = ch.meter();
    let dc = DealerClient::connect(ch, ctx.role)
        .await
        .step("dealer handshake")?;
    Ok((dc, link, meter))
}
