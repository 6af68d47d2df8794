//! [`HeSource`]: triples made by the two servers with homomorphic encryption for the matrix cross
//! terms ([`crate::offline::he`], SecureML's LHE-based offline phase with an RLWE scheme) and OT
//! for elementwise and AND triples: an [`OtSource`] with HE keys installed.

use super::ot::OtSource;
use super::{Preprocessing, TripleRequest, TripleSource};
use crate::compute::offload;
use crate::error::Result;
use crate::net::Channel;
use crate::offline::cot::OtExtension;
use crate::offline::he::HeKeys;
use crate::offline::rlwe::RlweParams;
use crate::share::{os_rng, Role};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;

/// The trust statement of [`HeSource`].
pub const HE_TRUST_NOTE: &str = "two-server HE offline phase (semi-honest, no third party): RLWE N=16384, log Q=250, ternary secret, sigma 3.2 (128-bit), circuit privacy by re-randomization and noise flooding sized for at most 2^40 flooded coefficients per run (whole-run statistical distance at most 2^-41); elementwise and AND triples by OT";

/// Triples made by the two servers with homomorphic encryption for the matrix cross terms (this
/// module) and OT for elementwise and AND triples. Same requests, pools and checks as
/// [`OtSource`]; masks, `U`, `V` shares drawn locally the same way.
pub struct HeSource<C>(OtSource<C>);

impl<C> std::fmt::Debug for HeSource<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeSource({:?})", self.0)
    }
}

impl<C: Channel> HeSource<C> {
    /// Runs the base OTs and exchanges HE public keys (both parties call it), with a generator
    /// seeded by the operating system.
    pub async fn setup(ch: C, role: Role) -> Result<Self> {
        Self::setup_with_rng(ch, role, os_rng()).await
    }

    /// As [`HeSource::setup`] with a caller-given generator (fixed seeds in tests only).
    pub async fn setup_with_rng(ch: C, role: Role, rng: ChaCha20Rng) -> Result<Self> {
        Self::setup_with(ch, role, rng, OtExtension::default()).await
    }

    /// As [`HeSource::setup`] with a caller-given generator and OT extension for the OT part (both
    /// parties must pass the same `kind`).
    pub async fn setup_with(
        ch: C,
        role: Role,
        rng: ChaCha20Rng,
        kind: OtExtension,
    ) -> Result<Self> {
        let mut s = OtSource::setup_with(ch, role, rng, kind).await?;
        let params = Arc::new(offload(RlweParams::standard).await);
        let keys = HeKeys::exchange(&mut s.ch, params, &mut s.rng).await?;
        s.he = Some(Arc::new(keys));
        Ok(Self(s))
    }

    /// Installs a progress hook called with `(done, total)` in OT-equivalents (64 per scalar of V).
    pub fn with_progress(self, f: impl Fn(u64, u64) + Send + Sync + 'static) -> Self {
        Self(self.0.with_progress(f))
    }

    /// This party's role.
    pub fn role(&self) -> Role {
        self.0.role()
    }

    /// The OT extension of the OT part.
    pub fn ot_extension(&self) -> OtExtension {
        self.0.ot_extension()
    }

    /// The channel (e.g. to read a [`crate::net::Metered`] wrapper's counters).
    pub fn channel(&mut self) -> &mut C {
        self.0.channel()
    }

    /// Gives the channel back.
    pub fn into_channel(self) -> C {
        self.0.into_channel()
    }
}

impl<C: Channel> TripleSource for HeSource<C> {
    fn generate(
        &mut self,
        requests: &[TripleRequest],
    ) -> impl std::future::Future<Output = Result<Preprocessing>> + Send {
        self.0.generate_inner(requests)
    }

    fn trust_note(&self) -> &'static str {
        HE_TRUST_NOTE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MpcError;
    use crate::net::{mem_pair, MemChannel, Metered};
    use crate::offline::he::choose_blocks;
    use crate::ring;
    use crate::share::reconstruct;
    use crate::triples::Lhs;

    async fn pair() -> (HeSource<MemChannel>, HeSource<MemChannel>) {
        let (a, b) = mem_pair();
        let (s0, s1) = tokio::join!(HeSource::setup(a, Role::P0), HeSource::setup(b, Role::P1));
        (s0.unwrap(), s1.unwrap())
    }

    /// Every kind of request (fresh, mask rows, mask rows transposed, elementwise, AND)
    /// reconstructs correctly from HE material.
    #[tokio::test]
    async fn he_material_is_valid() {
        let (mut s0, mut s1) = pair().await;
        let r = crate::triples::sample_requests();
        let (p0, p1) = tokio::join!(s0.generate(&r), s1.generate(&r));
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        crate::triples::check_sample_pool(&mut p0, &mut p1);
        assert_eq!(s0.trust_note(), HE_TRUST_NOTE);
    }

    /// A mask serves later calls; transposed selections; the bytes of a matrix triple are those
    /// of the block plan; mismatched requests are refused as by the OT source.
    #[tokio::test]
    async fn masks_persist_and_bytes_match_the_plan() {
        let (a, b) = mem_pair();
        let (s0, s1) = tokio::join!(
            HeSource::setup(Metered::new(a), Role::P0),
            HeSource::setup(Metered::new(b), Role::P1)
        );
        let (mut s0, mut s1) = (s0.unwrap(), s1.unwrap());
        let reg = vec![TripleRequest::Mask {
            id: 4,
            rows: 300,
            cols: 40,
        }];
        let (p0, p1) = tokio::join!(s0.generate(&reg), s1.generate(&reg));
        let u = reconstruct(p0.unwrap().mask(4).unwrap(), p1.unwrap().mask(4).unwrap());
        let rows: Vec<usize> = (0..300).rev().step_by(3).collect();
        let reqs: Vec<TripleRequest> = [false, true]
            .into_iter()
            .map(|t| TripleRequest::Matmul {
                lhs: Lhs::Mask {
                    id: 4,
                    rows: rows.clone(),
                    transpose: t,
                },
                cols: 2,
            })
            .collect();
        let before = s0.channel().stats().bytes_sent;
        let (p0, p1) = tokio::join!(s0.generate(&reqs), s1.generate(&reqs));
        let sent = s0.channel().stats().bytes_sent - before;
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        let prm = RlweParams::standard();
        let planned = choose_blocks(&prm, 100, 40, 2).bytes(&prm)
            + choose_blocks(&prm, 40, 100, 2).bytes(&prm);
        assert!(
            sent as usize >= planned && (sent as usize) < planned + 4096,
            "{sent} vs {planned}"
        );
        for (r, t) in reqs.iter().zip([false, true]) {
            let TripleRequest::Matmul { lhs, cols } = r else {
                unreachable!()
            };
            let (t0, t1) = (
                p0.next_matmul(lhs, *cols).unwrap(),
                p1.next_matmul(lhs, *cols).unwrap(),
            );
            let ub = ring::select_rows(&u.view(), &rows);
            let ub = if t { ub.t().to_owned() } else { ub };
            assert_eq!(
                reconstruct(&t0.z, &t1.z),
                ring::matmul(&ub.view(), &reconstruct(&t0.v, &t1.v).view())
            );
        }
        let mut bad = reqs.clone();
        bad[1] = TripleRequest::Elementwise { rows: 1, cols: 1 };
        let (e0, e1) = tokio::join!(s0.generate(&reqs), s1.generate(&bad));
        assert!(matches!(e0, Err(MpcError::RequestMismatch { index: 1 })));
        assert!(matches!(e1, Err(MpcError::RequestMismatch { index: 1 })));
    }
}
