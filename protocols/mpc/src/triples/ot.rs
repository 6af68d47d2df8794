//! [`OtSource`]: the two-server offline phase behind [`TripleSource`] — base OTs, IKNP/ALSZ
//! extension or the silent extension on top of it ([`crate::offline::cot`]), Gilboa products, AND triples, leaf and random OTs from [`crate::offline`], or the HE cross terms of
//! [`crate::offline::he`] when [`super::HeSource`] installs its keys.

use super::{
    check_leaf_bits, ElemTriple, Lhs, MaskId, MatmulTriple, Preprocessing, TripleRequest,
    TripleSource,
};
use crate::compute::offload_sized;
use crate::error::{MpcError, Result};
use crate::net::{decode_message, encode_message, Channel};
use crate::offline::and::and_triples;
use crate::offline::cot::{Cots, OtExtension};
use crate::offline::gilboa::{cross_elementwise, cross_matmul};
use crate::offline::he::{cross_matmul_he, HeKeys};
use crate::offline::leaf::leaf_ots;
use crate::offline::rot::random_ots;
use crate::ring::{self, RingMatrix};
use crate::share::{os_rng, Role, Share};
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
    pub(super) ch: C,
    role: Role,
    pair: Cots,
    pub(super) rng: ChaCha20Rng,
    masks: HashMap<MaskId, Arc<RingMatrix>>,
    progress: Option<Progress>,
    /// HE keys when matrix cross terms are made by [`crate::offline::he`] instead of Gilboa
    /// products.
    pub(super) he: Option<Arc<HeKeys>>,
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
        TripleRequest::LeafOt { count, bits } => {
            check_leaf_bits(*bits).map_err(refused)?;
            (*count * *bits as usize) as u64
        }
        TripleRequest::Rot { count } => *count as u64,
    })
}

impl<C: Channel> OtSource<C> {
    /// Runs the base OTs in both directions over `ch` (both parties call it) with a generator seeded
    /// by the operating system and the default OT extension ([`OtExtension::default`]).
    pub async fn setup(ch: C, role: Role) -> Result<Self> {
        Self::setup_with(ch, role, os_rng(), OtExtension::default()).await
    }

    /// As [`OtSource::setup`] with a caller-given generator (fixed seeds in tests only).
    pub async fn setup_with_rng(ch: C, role: Role, rng: ChaCha20Rng) -> Result<Self> {
        Self::setup_with(ch, role, rng, OtExtension::default()).await
    }

    /// As [`OtSource::setup`] with a caller-given generator and OT extension (both parties must
    /// pass the same `kind`).
    pub async fn setup_with(
        mut ch: C,
        role: Role,
        mut rng: ChaCha20Rng,
        kind: OtExtension,
    ) -> Result<Self> {
        let pair = Cots::setup(&mut ch, &mut rng, kind).await?;
        Ok(Self {
            ch,
            role,
            pair,
            rng,
            masks: HashMap::new(),
            progress: None,
            he: None,
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

    /// The OT extension in use.
    pub fn ot_extension(&self) -> OtExtension {
        self.pair.kind()
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

    pub(super) async fn generate_inner(
        &mut self,
        requests: &[TripleRequest],
    ) -> Result<Preprocessing> {
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
                            let work = rows.len() * m.ncols();
                            let x = offload_sized(work, move || {
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
                    let cross = match &self.he {
                        Some(keys) => {
                            let c =
                                cross_matmul_he(&mut self.ch, keys, &x, &v, &mut self.rng).await?;
                            tick(64 * (x.ncols() * *cols) as u64);
                            c
                        }
                        None => cross_matmul(&mut self.ch, &mut self.pair, &x, &v, &tick).await?,
                    };
                    let work = x.nrows() * x.ncols() * *cols;
                    let (x, v, z) = offload_sized(work, move || {
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
                TripleRequest::LeafOt { count, bits } => {
                    let t = leaf_ots(
                        &mut self.ch,
                        &mut self.pair,
                        *count,
                        *bits,
                        &mut self.rng,
                        &tick,
                    )
                    .await?;
                    pre.push_leaf(t);
                }
                TripleRequest::Rot { count } => {
                    let t = random_ots(&mut self.ch, &mut self.pair, *count, &mut self.rng, &tick)
                        .await?;
                    pre.push_rot(t);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{mem_pair, MemChannel, Metered};
    use crate::online::{self, MaskedMatrix};
    use crate::share::{reconstruct, share};
    use crate::triples::dealer;
    use rand::SeedableRng;
    use std::sync::Mutex;

    fn reqs() -> Vec<TripleRequest> {
        crate::triples::sample_requests()
    }

    async fn pair_of_sources() -> (OtSource<MemChannel>, OtSource<MemChannel>) {
        let (a, b) = mem_pair();
        let (s0, s1) = tokio::join!(OtSource::setup(a, Role::P0), OtSource::setup(b, Role::P1));
        (s0.unwrap(), s1.unwrap())
    }

    async fn generate_both(
        s0: &mut OtSource<MemChannel>,
        s1: &mut OtSource<MemChannel>,
        r: &[TripleRequest],
    ) -> (Result<Preprocessing>, Result<Preprocessing>) {
        tokio::join!(s0.generate(r), s1.generate(r))
    }

    /// Every kind of material reconstructs correctly (fresh, mask rows, mask rows transposed,
    /// elementwise, AND), and the same checks pass on dealer material: the two sources are
    /// interchangeable for the consumer (the differential test).
    #[tokio::test]
    async fn ot_and_dealer_material_are_valid_and_alike() {
        let (mut s0, mut s1) = pair_of_sources().await;
        let (d0, d1, _h) = dealer::spawn_in_process().await.unwrap();
        let (mut d0, mut d1) = (d0, d1);
        let r = reqs();
        let (o0, o1) = generate_both(&mut s0, &mut s1, &r).await;
        let (e0, e1) = tokio::join!(d0.generate(&r), d1.generate(&r));
        for (mut p0, mut p1) in [(o0.unwrap(), o1.unwrap()), (e0.unwrap(), e1.unwrap())] {
            crate::triples::check_sample_pool(&mut p0, &mut p1);
        }
    }

    /// IKNP alone (the reference path) and the silent extension both make valid material for
    /// every kind of request, and each source reports the extension it was set up with.
    #[tokio::test]
    async fn both_ot_extensions_make_valid_material() {
        for kind in [OtExtension::Iknp, OtExtension::Silent] {
            let (a, b) = mem_pair();
            let (s0, s1) = tokio::join!(
                OtSource::setup_with(a, Role::P0, os_rng(), kind),
                OtSource::setup_with(b, Role::P1, os_rng(), kind)
            );
            let (mut s0, mut s1) = (s0.unwrap(), s1.unwrap());
            assert_eq!((s0.ot_extension(), s1.ot_extension()), (kind, kind));
            let (p0, p1) = generate_both(&mut s0, &mut s1, &reqs()).await;
            crate::triples::check_sample_pool(&mut p0.unwrap(), &mut p1.unwrap());
        }
    }

    /// The same request list through the dealer and through OtSource: item by item, the two
    /// pools hold material of identical shapes (and the same U-is-a-mask structure).
    #[tokio::test]
    async fn ot_and_dealer_pools_have_identical_shapes() {
        let (mut s0, mut s1) = pair_of_sources().await;
        let (mut d0, mut d1, _h) = dealer::spawn_in_process().await.unwrap();
        let r = reqs();
        let (o0, _o1) = generate_both(&mut s0, &mut s1, &r).await;
        let (e0, _e1) = tokio::join!(d0.generate(&r), d1.generate(&r));
        let (mut o, mut e) = (o0.unwrap(), e0.unwrap());
        assert_eq!(o.mask(1).unwrap().dim(), e.mask(1).unwrap().dim());
        for req in &r {
            match req {
                TripleRequest::Matmul { lhs, cols } => {
                    let (a, b) = (
                        o.next_matmul(lhs, *cols).unwrap(),
                        e.next_matmul(lhs, *cols).unwrap(),
                    );
                    assert_eq!(a.u.as_ref().map(Share::dim), b.u.as_ref().map(Share::dim));
                    assert_eq!((a.v.dim(), a.z.dim()), (b.v.dim(), b.z.dim()));
                }
                TripleRequest::Elementwise { rows, cols } => {
                    let (a, b) = (
                        o.next_elementwise((*rows, *cols)).unwrap(),
                        e.next_elementwise((*rows, *cols)).unwrap(),
                    );
                    assert_eq!(
                        (a.a.dim(), a.b.dim(), a.c.dim()),
                        (b.a.dim(), b.b.dim(), b.c.dim())
                    );
                }
                TripleRequest::And { words } => {
                    let (a, b) = (o.next_and(*words).unwrap(), e.next_and(*words).unwrap());
                    assert_eq!(
                        (a.a.len(), a.b.len(), a.c.len()),
                        (b.a.len(), b.b.len(), b.c.len())
                    );
                }
                TripleRequest::LeafOt { count, bits } => {
                    let (a, b) = (o.next_leaf(*count, *bits), e.next_leaf(*count, *bits));
                    assert_eq!(a.unwrap().table.len(), b.unwrap().table.len());
                }
                TripleRequest::Rot { count } => {
                    let (a, b) = (o.next_rot(*count), e.next_rot(*count));
                    assert_eq!(a.unwrap().choice.len(), b.unwrap().choice.len());
                }
                TripleRequest::Mask { .. } => {}
            }
        }
        assert!(o.is_drained() && e.is_drained());
    }

    /// OT triples drive the online protocols exactly like dealer triples: a masked data matrix
    /// opened once, forward and backward mini-batch products, and a fresh product.
    #[tokio::test]
    async fn online_protocols_consume_ot_material() {
        let (mut s0, mut s1) = pair_of_sources().await;
        let r = vec![
            TripleRequest::Matmul {
                lhs: Lhs::Fresh { rows: 2, inner: 5 },
                cols: 3,
            },
            TripleRequest::Mask {
                id: 3,
                rows: 8,
                cols: 5,
            },
            TripleRequest::Matmul {
                lhs: Lhs::Mask {
                    id: 3,
                    rows: vec![1, 4, 6],
                    transpose: false,
                },
                cols: 1,
            },
            TripleRequest::Matmul {
                lhs: Lhs::Mask {
                    id: 3,
                    rows: vec![1, 4, 6],
                    transpose: true,
                },
                cols: 1,
            },
        ];
        let (p0, p1) = generate_both(&mut s0, &mut s1, &r).await;
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let x = ring::random(&mut rng, 8, 5);
        let w = ring::random(&mut rng, 5, 1);
        let g = ring::random(&mut rng, 3, 1);
        let y = ring::random(&mut rng, 2, 5);
        let [x0, x1] = share(&x.view(), &mut rng);
        let [w0, w1] = share(&w.view(), &mut rng);
        let [g0, g1] = share(&g.view(), &mut rng);
        let [y0, y1] = share(&y.view(), &mut rng);
        let (mut c0, mut c1) = mem_pair();
        let l = Lhs::Fresh { rows: 2, inner: 5 };
        let (t0, t1) = (
            p0.next_matmul(&l, 3).unwrap(),
            p1.next_matmul(&l, 3).unwrap(),
        );
        let wt = ring::random(&mut rng, 5, 3);
        let [wt0, wt1] = share(&wt.view(), &mut rng);
        let (r0, r1) = tokio::join!(
            async {
                let m = MaskedMatrix::open(&mut c0, &x0, 3, &mut p0).await.unwrap();
                let f = m
                    .matmul_rows(&mut c0, Role::P0, &[1, 4, 6], false, &w0, &mut p0)
                    .await
                    .unwrap();
                let b = m
                    .matmul_rows(&mut c0, Role::P0, &[1, 4, 6], true, &g0, &mut p0)
                    .await
                    .unwrap();
                let z = online::matmul(&mut c0, Role::P0, &y0, &wt0, t0)
                    .await
                    .unwrap();
                (f, b, z)
            },
            async {
                let m = MaskedMatrix::open(&mut c1, &x1, 3, &mut p1).await.unwrap();
                let f = m
                    .matmul_rows(&mut c1, Role::P1, &[1, 4, 6], false, &w1, &mut p1)
                    .await
                    .unwrap();
                let b = m
                    .matmul_rows(&mut c1, Role::P1, &[1, 4, 6], true, &g1, &mut p1)
                    .await
                    .unwrap();
                let z = online::matmul(&mut c1, Role::P1, &y1, &wt1, t1)
                    .await
                    .unwrap();
                (f, b, z)
            }
        );
        let xb = ring::select_rows(&x.view(), &[1, 4, 6]);
        assert_eq!(
            reconstruct(&r0.0, &r1.0),
            ring::matmul(&xb.view(), &w.view())
        );
        assert_eq!(reconstruct(&r0.1, &r1.1), ring::matmul(&xb.t(), &g.view()));
        assert_eq!(
            reconstruct(&r0.2, &r1.2),
            ring::matmul(&y.view(), &wt.view())
        );
        assert!(p0.is_drained() && p1.is_drained());
    }

    /// Each party's share of a product looks uniform: chi-square on the top byte of 2^14 shares
    /// of Z (255 degrees of freedom; 330 is about the 0.9999 quantile).
    #[tokio::test]
    async fn product_shares_look_uniform() {
        let (mut s0, mut s1) = pair_of_sources().await;
        let r = vec![
            TripleRequest::Matmul {
                lhs: Lhs::Fresh {
                    rows: 128,
                    inner: 2,
                },
                cols: 128,
            },
            TripleRequest::Elementwise {
                rows: 128,
                cols: 128,
            },
        ];
        let (p0, p1) = generate_both(&mut s0, &mut s1, &r).await;
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        let l = Lhs::Fresh {
            rows: 128,
            inner: 2,
        };
        let z = [
            p0.next_matmul(&l, 128).unwrap().z,
            p1.next_matmul(&l, 128).unwrap().z,
            p0.next_elementwise((128, 128)).unwrap().c,
            p1.next_elementwise((128, 128)).unwrap().c,
        ];
        for s in &z {
            let mut counts = [0f64; 256];
            for &v in s.view().iter() {
                counts[(v >> 56) as usize] += 1.0;
            }
            let expected = (1u64 << 14) as f64 / 256.0;
            let chi2: f64 = counts
                .iter()
                .map(|c| (c - expected).powi(2) / expected)
                .sum();
            assert!(chi2 < 330.0, "chi-square {chi2} too large for 255 dof");
        }
    }

    #[tokio::test]
    async fn mismatched_requests_are_refused_with_the_index() {
        let (mut s0, mut s1) = pair_of_sources().await;
        let a = reqs();
        let mut b = reqs();
        b[4] = TripleRequest::Elementwise { rows: 4, cols: 5 };
        let (p0, p1) = tokio::join!(s0.generate(&a), s1.generate(&b));
        assert!(matches!(p0, Err(MpcError::RequestMismatch { index: 4 })));
        assert!(matches!(p1, Err(MpcError::RequestMismatch { index: 4 })));
        // A shorter list differs at its end.
        let (p0, p1) = tokio::join!(s0.generate(&a), s1.generate(&a[..2]));
        assert!(matches!(p0, Err(MpcError::RequestMismatch { index: 2 })));
        assert!(matches!(p1, Err(MpcError::RequestMismatch { index: 2 })));
        // The sources stay usable after a refusal.
        let (p0, p1) = generate_both(&mut s0, &mut s1, &a).await;
        assert!(p0.is_ok() && p1.is_ok());
    }

    #[tokio::test]
    async fn unknown_mask_or_row_is_refused_like_the_dealer() {
        let (mut s0, mut s1) = pair_of_sources().await;
        let r = vec![
            TripleRequest::Mask {
                id: 1,
                rows: 4,
                cols: 2,
            },
            TripleRequest::Matmul {
                lhs: Lhs::Mask {
                    id: 1,
                    rows: vec![4],
                    transpose: false,
                },
                cols: 1,
            },
        ];
        let (p0, _) = generate_both(&mut s0, &mut s1, &r).await;
        assert!(
            matches!(&p0, Err(MpcError::Refused { reason }) if reason.contains("row 4")),
            "{p0:?}"
        );
        let r = vec![TripleRequest::Matmul {
            lhs: Lhs::Mask {
                id: 9,
                rows: vec![0],
                transpose: false,
            },
            cols: 1,
        }];
        let (p0, _) = generate_both(&mut s0, &mut s1, &r).await;
        assert!(matches!(&p0, Err(MpcError::Refused { reason }) if reason.contains("mask #9")));
    }

    /// A mask registered in one call serves requests of later calls.
    #[tokio::test]
    async fn masks_persist_across_calls_and_progress_is_reported() {
        let (a, b) = mem_pair();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let (s0, s1) = tokio::join!(
            OtSource::setup_with_rng(Metered::new(a), Role::P0, ChaCha20Rng::seed_from_u64(1)),
            OtSource::setup(b, Role::P1)
        );
        let mut s0 = s0
            .unwrap()
            .with_progress(move |d, t| seen2.lock().unwrap().push((d, t)));
        let mut s1 = s1.unwrap();
        let reg = vec![TripleRequest::Mask {
            id: 2,
            rows: 6,
            cols: 3,
        }];
        let (p0, p1) = tokio::join!(s0.generate(&reg), s1.generate(&reg));
        let u = reconstruct(p0.unwrap().mask(2).unwrap(), p1.unwrap().mask(2).unwrap());
        let l = Lhs::Mask {
            id: 2,
            rows: vec![5, 0],
            transpose: false,
        };
        let use_it = vec![TripleRequest::Matmul {
            lhs: l.clone(),
            cols: 2,
        }];
        let (p0, p1) = tokio::join!(s0.generate(&use_it), s1.generate(&use_it));
        let (t0, t1) = (
            p0.unwrap().next_matmul(&l, 2).unwrap(),
            p1.unwrap().next_matmul(&l, 2).unwrap(),
        );
        let ub = ring::select_rows(&u.view(), &[5, 0]);
        assert_eq!(
            reconstruct(&t0.z, &t1.z),
            ring::matmul(&ub.view(), &reconstruct(&t0.v, &t1.v).view())
        );
        assert_eq!(*seen.lock().unwrap().last().unwrap(), (64 * 6, 64 * 6));
        // Bytes: hash exchange plus, per direction, 128-column IKNP matrix and packed corrections.
        let sent = s0.channel().stats().bytes_sent;
        assert!(sent > 2080 / 8 * 2 * 6, "{sent}");
        assert_eq!(
            s0.trust_note(),
            "two-server OT offline phase (semi-honest, no third party)"
        );
    }
}
