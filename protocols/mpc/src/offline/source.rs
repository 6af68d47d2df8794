//! [`OtSource`]: the two-server offline phase behind [`TripleSource`], and [`ClientAided`], the
//! dealer run by the data owner (SecureML §V).

use super::and::and_triples;
use super::gilboa::{cross_elementwise, cross_matmul};
use super::iknp::{setup_pair, OtPair};
use crate::compute::offload;
use crate::error::{MpcError, Result};
use crate::net::{decode_message, encode_message, Channel, MemChannel};
use crate::ring::{self, RingMatrix};
use crate::share::{os_rng, Role, Share};
use crate::triples::dealer::{self, DealerClient};
use crate::triples::{
    ElemTriple, Lhs, MaskId, MatmulTriple, Preprocessing, TripleRequest, TripleSource,
};
use rand_chacha::ChaCha20Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A progress hook: `(done, total)` in OTs per direction.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Largest per-request hash list accepted when locating a request mismatch.
const MAX_HASH_LIST_BYTES: usize = 64 << 20;

/// Triples made by the two servers with oblivious transfer (Chou–Orlandi base OTs, IKNP/ALSZ
/// extension, Gilboa products with SecureML's column reuse, AND triples from random OT).
///
/// Both parties call [`TripleSource::generate`] with identical request lists; the lists are
/// compared by hash first ([`MpcError::RequestMismatch`] names the first difference). Each party
/// draws its own shares of masks, U, V, a, b locally from its ChaCha20 generator; only the cross
/// terms cost communication.
pub struct OtSource<C> {
    ch: C,
    role: Role,
    pair: OtPair,
    rng: ChaCha20Rng,
    masks: HashMap<MaskId, Arc<RingMatrix>>,
    progress: Option<Progress>,
}

impl<C> std::fmt::Debug for OtSource<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OtSource({}, {} masks)", self.role, self.masks.len())
    }
}

fn refused(e: MpcError) -> MpcError {
    MpcError::Refused {
        reason: e.to_string(),
    }
}

fn check_request(req: &TripleRequest, dims: &mut HashMap<MaskId, (usize, usize)>) -> Result<u64> {
    Ok(match req {
        TripleRequest::Mask { id, rows, cols } => {
            dims.insert(*id, (*rows, *cols));
            0
        }
        TripleRequest::Matmul { lhs, cols } => match lhs {
            Lhs::Fresh { inner, .. } => 64 * (*inner * *cols) as u64,
            Lhs::Mask {
                id,
                rows,
                transpose,
            } => {
                let (n, d) = dims.get(id).copied().ok_or_else(|| {
                    refused(MpcError::Preprocessing {
                        expected: format!("mask #{id} registered before use"),
                        found: "unknown mask".into(),
                    })
                })?;
                if let Some(&r) = rows.iter().find(|&&r| r >= n) {
                    return Err(refused(MpcError::Preprocessing {
                        expected: format!("rows of mask #{id} below {n}"),
                        found: format!("row {r}"),
                    }));
                }
                let inner = if *transpose { rows.len() } else { d };
                64 * (inner * *cols) as u64
            }
        },
        TripleRequest::Elementwise { rows, cols } => 64 * (*rows * *cols) as u64,
        TripleRequest::And { words } => 64 * *words as u64,
    })
}

impl<C: Channel> OtSource<C> {
    /// Runs the base OTs in both directions over `ch` (both parties call it) with a generator seeded
    /// by the operating system.
    pub async fn setup(ch: C, role: Role) -> Result<Self> {
        Self::setup_with_rng(ch, role, os_rng()).await
    }

    /// As [`OtSource::setup`] with a caller-given generator (fixed seeds in tests only).
    pub async fn setup_with_rng(mut ch: C, role: Role, mut rng: ChaCha20Rng) -> Result<Self> {
        let pair = setup_pair(&mut ch, &mut rng).await?;
        Ok(Self {
            ch,
            role,
            pair,
            rng,
            masks: HashMap::new(),
            progress: None,
        })
    }

    /// Installs a progress hook called with `(done, total)` OTs after every chunk.
    pub fn with_progress(mut self, f: impl Fn(u64, u64) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// This party's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The channel (e.g. to read a [`crate::net::Metered`] wrapper's counters).
    pub fn channel(&mut self) -> &mut C {
        &mut self.ch
    }

    /// Gives the channel back.
    pub fn into_channel(self) -> C {
        self.ch
    }

    /// Compares the two request lists: one 32-byte hash each way, and on a difference the
    /// per-request hashes to locate it.
    async fn check_same_requests(&mut self, requests: &[TripleRequest]) -> Result<()> {
        let hashes: Vec<[u8; 32]> = requests
            .iter()
            .map(|r| encode_message(r).map(|b| *blake3::hash(&b).as_bytes()))
            .collect::<Result<_>>()?;
        let mut all = blake3::Hasher::new();
        all.update(&(requests.len() as u64).to_le_bytes());
        for h in &hashes {
            all.update(h);
        }
        let mine = *all.finalize().as_bytes();
        let theirs = self.ch.exchange_frame(mine.to_vec(), 32).await?;
        if theirs == mine {
            return Ok(());
        }
        let peer: Vec<[u8; 32]> = decode_message(
            &self
                .ch
                .exchange_frame(encode_message(&hashes)?, MAX_HASH_LIST_BYTES)
                .await?,
            MAX_HASH_LIST_BYTES,
        )?;
        let index = hashes.iter().zip(&peer).take_while(|(a, b)| a == b).count() as u64;
        Err(MpcError::RequestMismatch { index })
    }

    async fn generate_inner(&mut self, requests: &[TripleRequest]) -> Result<Preprocessing> {
        self.check_same_requests(requests).await?;
        let mut dims: HashMap<MaskId, (usize, usize)> =
            self.masks.iter().map(|(k, v)| (*k, v.dim())).collect();
        let mut total = 0u64;
        for r in requests {
            total += check_request(r, &mut dims)?;
        }
        let done = Arc::new(AtomicU64::new(0));
        let hook = self.progress.clone();
        let tick = {
            let done = done.clone();
            move |n: u64| {
                let d = done.fetch_add(n, Ordering::Relaxed) + n;
                if let Some(h) = &hook {
                    h(d, total);
                }
            }
        };
        let mut pre = Preprocessing::new();
        for req in requests {
            match req {
                TripleRequest::Mask { id, rows, cols } => {
                    let u = ring::random(&mut self.rng, *rows, *cols);
                    pre.insert_mask(*id, Share::from_ring(u.clone()));
                    self.masks.insert(*id, Arc::new(u));
                }
                TripleRequest::Matmul { lhs, cols } => {
                    let (x, keep_u) = match lhs {
                        Lhs::Fresh { rows, inner } => {
                            (ring::random(&mut self.rng, *rows, *inner), true)
                        }
                        Lhs::Mask {
                            id,
                            rows,
                            transpose,
                        } => {
                            let m = self.masks[id].clone();
                            let rows = rows.clone();
                            let t = *transpose;
                            let x = offload(move || {
                                let b = ring::select_rows(&m.view(), &rows);
                                if t {
                                    b.t().as_standard_layout().into_owned()
                                } else {
                                    b
                                }
                            })
                            .await;
                            (x, false)
                        }
                    };
                    let v = ring::random(&mut self.rng, x.ncols(), *cols);
                    let cross = cross_matmul(&mut self.ch, &mut self.pair, &x, &v, &tick).await?;
                    let (x, v, z) = offload(move || {
                        let mut z = ring::matmul(&x.view(), &v.view());
                        ring::add_assign(&mut z, &cross.view());
                        (x, v, z)
                    })
                    .await;
                    pre.push_matmul(
                        lhs.clone(),
                        *cols,
                        MatmulTriple {
                            u: keep_u.then(|| Share::from_ring(x)),
                            v: Share::from_ring(v),
                            z: Share::from_ring(z),
                        },
                    );
                }
                TripleRequest::Elementwise { rows, cols } => {
                    let a = ring::random(&mut self.rng, *rows, *cols);
                    let b = ring::random(&mut self.rng, *rows, *cols);
                    let cross =
                        cross_elementwise(&mut self.ch, &mut self.pair, &a, &b, &tick).await?;
                    let mut c = ring::hadamard(&a.view(), &b.view());
                    ring::add_assign(&mut c, &cross.view());
                    pre.push_elementwise(ElemTriple {
                        a: Share::from_ring(a),
                        b: Share::from_ring(b),
                        c: Share::from_ring(c),
                    });
                }
                TripleRequest::And { words } => {
                    let t = and_triples(&mut self.ch, &mut self.pair, *words, &mut self.rng, &tick)
                        .await?;
                    pre.push_and(t);
                }
            }
        }
        self.ch.flush().await?;
        Ok(pre)
    }
}

impl<C: Channel> TripleSource for OtSource<C> {
    fn generate(
        &mut self,
        requests: &[TripleRequest],
    ) -> impl std::future::Future<Output = Result<Preprocessing>> + Send {
        self.generate_inner(requests)
    }

    fn trust_note(&self) -> &'static str {
        "two-server OT offline phase (semi-honest, no third party)"
    }
}

/// Client-aided triples (SecureML §V): the data owner runs the dealer
/// ([`crate::triples::dealer::run_dealer`]) and each server connects to it with this wrapper. Same
/// material and protocol as the dealer; only the trust statement differs.
#[derive(Debug)]
pub struct ClientAided<C>(DealerClient<C>);

impl<C: Channel> ClientAided<C> {
    /// Connects to the data owner's dealer as `role`.
    pub async fn connect(ch: C, role: Role) -> Result<Self> {
        Ok(Self(DealerClient::connect(ch, role).await?))
    }

    /// Tells the data owner the session is over.
    pub async fn finish(self) -> Result<()> {
        self.0.finish().await
    }
}

impl<C: Channel> TripleSource for ClientAided<C> {
    fn generate(
        &mut self,
        requests: &[TripleRequest],
    ) -> impl std::future::Future<Output = Result<Preprocessing>> + Send {
        self.0.generate(requests)
    }

    fn trust_note(&self) -> &'static str {
        "client-aided (SecureML §V): the data owner generates triples and must not collude with either server"
    }
}

/// A data-owner dealer task on the current runtime and the two servers' client-aided sources.
pub async fn client_aided_in_process() -> Result<(
    ClientAided<MemChannel>,
    ClientAided<MemChannel>,
    tokio::task::JoinHandle<Result<()>>,
)> {
    let (c0, c1, h) = dealer::spawn_in_process().await?;
    Ok((ClientAided(c0), ClientAided(c1), h))
}
