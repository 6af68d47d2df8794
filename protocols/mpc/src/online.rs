//! Online protocols on shares: opening, Beaver multiplication, and matrix products with matrix
//! triples (SecureML §IV, Fig. 4).
//!
//! Products return shares with 2f fractional bits; callers bring them back with
//! [`crate::trunc::truncate`]. Each protocol is a thin async driver around local math that is
//! also exposed (`*_local`) so it can be unit-tested without a channel.

use crate::compute::offload_sized;
use crate::error::{MpcError, Result};
use crate::net::{Channel, RING_CHUNK_WORDS};
use crate::ring::{self, RingMatrix};
use crate::share::{Role, Share};
use crate::triples::{ElemTriple, Lhs, MaskId, MatmulTriple, Preprocessing};
use ndarray::{Array2, ArrayView2};
use std::sync::Arc;

/// Opens several shared matrices in one flight: both parties learn their sums.
pub async fn open_many<C: Channel>(ch: &mut C, xs: &[&Share]) -> Result<Vec<RingMatrix>> {
    let total: usize = xs.iter().map(|x| x.dim().0 * x.dim().1).sum();
    let mut flat = Vec::with_capacity(total);
    for x in xs {
        flat.extend(x.view().iter().copied());
    }
    let sum = open_words(ch, &flat, None).await?;
    let mut out = Vec::with_capacity(xs.len());
    let mut at = 0;
    for x in xs {
        let (r, c) = x.dim();
        let part = Array2::from_shape_vec((r, c), sum[at..at + r * c].to_vec()).expect("shape");
        out.push(part);
        at += r * c;
    }
    Ok(out)
}

/// Opens `a − b` (or `a` alone) word by word: this party's words go out and the peer's come in
/// chunk by chunk, [`RING_CHUNK_WORDS`] words per [`Channel::exchange_frame`] (the framing of
/// [`crate::net::ChannelExt::exchange_ring`], so either end may use either), and the opened sum is
/// accumulated as each chunk arrives. This party's share of the difference is never stored
/// whole: each chunk is encoded straight into the frame it leaves in, and the peer's frame is
/// reused as the next outgoing one.
async fn open_words<C: Channel>(ch: &mut C, a: &[u64], b: Option<&[u64]>) -> Result<Vec<u64>> {
    if let Some(b) = b {
        assert_eq!(
            a.len(),
            b.len(),
            "open_words: operands of different lengths"
        );
    }
    let mut out = Vec::with_capacity(a.len());
    let mut frame = Vec::new();
    for (k, ac) in a.chunks(RING_CHUNK_WORDS).enumerate() {
        let bc = b.map(|b| &b[k * RING_CHUNK_WORDS..k * RING_CHUNK_WORDS + ac.len()]);
        frame.clear();
        frame.resize(ac.len() * 8, 0);
        for (i, dst) in frame.chunks_exact_mut(8).enumerate() {
            let w = bc.map_or(ac[i], |bc| ac[i].wrapping_sub(bc[i]));
            dst.copy_from_slice(&w.to_le_bytes());
        }
        let theirs = ch
            .exchange_frame(std::mem::take(&mut frame), ac.len() * 8)
            .await?;
        if theirs.len() != ac.len() * 8 {
            return Err(MpcError::Malformed {
                reason: format!(
                    "ring frame of {} bytes, expected {} ({} of {} words opened)",
                    theirs.len(),
                    ac.len() * 8,
                    out.len(),
                    a.len()
                ),
            });
        }
        let peer = theirs
            .chunks_exact(8)
            .map(|t| u64::from_le_bytes(t.try_into().expect("8 bytes")));
        match bc {
            Some(bc) => out.extend(
                ac.iter()
                    .zip(bc)
                    .zip(peer)
                    .map(|((x, u), t)| x.wrapping_sub(*u).wrapping_add(t)),
            ),
            None => out.extend(ac.iter().zip(peer).map(|(x, t)| x.wrapping_add(t))),
        }
        frame = theirs;
    }
    Ok(out)
}

/// Opens `x − u` to both parties without forming this party's share of it as a matrix (see
/// `open_words`): what crosses the channel is exactly what [`open`] of `x.sub(u)` sends.
pub async fn open_difference<C: Channel>(ch: &mut C, x: &Share, u: &Share) -> Result<RingMatrix> {
    check_same("open x − u", x.dim(), u.dim())?;
    let (xv, uv) = (x.view(), u.view());
    let (xs, us) = (xv.as_standard_layout(), uv.as_standard_layout());
    let (xs, us) = (
        xs.as_slice().expect("standard layout"),
        us.as_slice().expect("standard layout"),
    );
    let e = open_words(ch, xs, Some(us)).await?;
    Ok(Array2::from_shape_vec(x.dim(), e).expect("shape"))
}

/// Opens a shared matrix to both parties.
pub async fn open<C: Channel>(ch: &mut C, x: &Share) -> Result<RingMatrix> {
    Ok(open_many(ch, &[x]).await?.pop().expect("one"))
}

fn check_same(op: &'static str, a: (usize, usize), b: (usize, usize)) -> Result<()> {
    if a != b {
        return Err(MpcError::ShapeMismatch {
            op,
            left: a,
            right: b,
        });
    }
    Ok(())
}

/// The local step of Beaver multiplication: given public `e = x − a`, `f = y − b`, this party's
/// share of `x ⊙ y` is `[P0] e⊙f + e⊙b_i + a_i⊙f + c_i`.
pub fn beaver_local(
    role: Role,
    e: &ArrayView2<'_, u64>,
    f: &ArrayView2<'_, u64>,
    t: &ElemTriple,
) -> Share {
    let mut z = t.c.view().to_owned();
    ring::add_assign(&mut z, &ring::hadamard(e, &t.b.view()).view());
    ring::add_assign(&mut z, &ring::hadamard(&t.a.view(), f).view());
    if role == Role::P0 {
        ring::add_assign(&mut z, &ring::hadamard(e, f).view());
    }
    Share::from_ring(z)
}

/// Elementwise product of two shared matrices with a Beaver triple (one round).
pub async fn mul<C: Channel>(
    ch: &mut C,
    role: Role,
    x: &Share,
    y: &Share,
    t: &ElemTriple,
) -> Result<Share> {
    check_same("mul", x.dim(), y.dim())?;
    check_same("mul triple", x.dim(), t.a.dim())?;
    let ex = x.sub(&t.a);
    let fy = y.sub(&t.b);
    let opened = open_many(ch, &[&ex, &fy]).await?;
    Ok(beaver_local(role, &opened[0].view(), &opened[1].view(), t))
}

/// The local step of a matrix product with a triple: given public `E = X − U`, `F = Y − V`, this
/// party's share of `X·Y` is `[P0] E·F + E·V_i + U_i·F + Z_i`.
pub fn matmul_local(
    role: Role,
    e: &ArrayView2<'_, u64>,
    f: &ArrayView2<'_, u64>,
    u: &ArrayView2<'_, u64>,
    v: &ArrayView2<'_, u64>,
    z: &ArrayView2<'_, u64>,
) -> Share {
    let mut out = z.to_owned();
    if role == Role::P0 {
        // E·(F + V_0) saves one product on P0's side.
        let fv = ring::add(f, v);
        ring::add_assign(&mut out, &ring::matmul(e, &fv.view()).view());
    } else {
        ring::add_assign(&mut out, &ring::matmul(e, v).view());
    }
    ring::add_assign(&mut out, &ring::matmul(u, f).view());
    Share::from_ring(out)
}

/// Product of two shared matrices with a fresh matrix triple (one round).
pub async fn matmul<C: Channel>(
    ch: &mut C,
    role: Role,
    x: &Share,
    y: &Share,
    t: MatmulTriple,
) -> Result<Share> {
    let u = t.u.ok_or_else(|| MpcError::Preprocessing {
        expected: "a matrix triple with a fresh U".into(),
        found: "a triple for a registered mask".into(),
    })?;
    check_same("matmul lhs vs triple", x.dim(), u.dim())?;
    check_same("matmul rhs vs triple", y.dim(), t.v.dim())?;
    let ex = x.sub(&u);
    let fy = y.sub(&t.v);
    let opened = open_many(ch, &[&ex, &fy]).await?;
    let mut it = opened.into_iter();
    let (e, f) = (it.next().expect("e"), it.next().expect("f"));
    let (v, z) = (t.v, t.z);
    let work = e.nrows() * e.ncols() * f.ncols();
    Ok(offload_sized(work, move || {
        matmul_local(role, &e.view(), &f.view(), &u.view(), &v.view(), &z.view())
    })
    .await)
}

/// A shared matrix X masked once by a registered mask U: E = X − U is public, U stays shared.
///
/// SecureML §IV: the data matrix is masked and opened once; every mini-batch product X_B·Y or
/// X_Bᵀ·Y afterwards opens only Y − V. Revealing E leaks nothing because U is uniform and used
/// for this matrix only: [`MaskedMatrix::open`] claims the mask in the pool
/// ([`Preprocessing::claim_mask`]), so a second matrix can never be opened under the same id.
#[derive(Debug, Clone)]
pub struct MaskedMatrix {
    id: MaskId,
    e: Arc<RingMatrix>,
    u: Arc<Share>,
}

impl MaskedMatrix {
    /// Masks `x` with mask `id` from `pre` and opens the masked matrix (one round, |X| words).
    /// The mask is marked used first: a second open under `id` is [`MpcError::MaskReused`] and
    /// sends nothing. A shape mismatch leaves the mask unused.
    pub async fn open<C: Channel>(
        ch: &mut C,
        x: &Share,
        id: MaskId,
        pre: &mut Preprocessing,
    ) -> Result<Self> {
        pre.wait_for_mask(id);
        check_same("masked matrix vs mask", x.dim(), pre.mask(id)?.dim())?;
        let u = pre.claim_mask(id)?;
        let e = open_difference(ch, x, &u).await?;
        Ok(Self {
            id,
            e: Arc::new(e),
            u,
        })
    }

    /// Shape of X.
    pub fn dim(&self) -> (usize, usize) {
        self.e.dim()
    }

    /// The mask this matrix uses.
    pub fn mask_id(&self) -> MaskId {
        self.id
    }

    /// Shares of `X[rows] · Y` (or `X[rows]ᵀ · Y` if `transpose`), consuming the matching triple.
    pub async fn matmul_rows<C: Channel>(
        &self,
        ch: &mut C,
        role: Role,
        rows: &[usize],
        transpose: bool,
        y: &Share,
        pre: &mut Preprocessing,
    ) -> Result<Share> {
        let lhs = Lhs::Mask {
            id: self.id,
            rows: rows.to_vec(),
            transpose,
        };
        let t = pre.next_matmul(&lhs, y.dim().1)?;
        let (n, d) = self.dim();
        if let Some(&r) = rows.iter().find(|&&r| r >= n) {
            return Err(MpcError::ShapeMismatch {
                op: "masked matrix row",
                left: (r, 0),
                right: (n, d),
            });
        }
        check_same("masked matmul rhs vs triple", y.dim(), t.v.dim())?;
        let f = open(ch, &y.sub(&t.v)).await?;
        let (e, u, rows) = (self.e.clone(), self.u.clone(), rows.to_vec());
        let work = rows.len() * d * f.ncols();
        Ok(offload_sized(work, move || {
            let eb = ring::select_rows(&e.view(), &rows);
            let ub = ring::select_rows(&u.view(), &rows);
            if transpose {
                matmul_local(role, &eb.t(), &f.view(), &ub.t(), &t.v.view(), &t.z.view())
            } else {
                matmul_local(
                    role,
                    &eb.view(),
                    &f.view(),
                    &ub.view(),
                    &t.v.view(),
                    &t.z.view(),
                )
            }
        })
        .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::FixedPoint;
    use crate::net::mem_pair;
    use crate::share::{reconstruct, share};
    use crate::triples::{dealer, TripleRequest, TripleSource};
    use crate::trunc::truncate;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn real(rng: &mut ChaCha20Rng, r: usize, c: usize, amp: f64) -> Array2<f64> {
        Array2::from_shape_fn((r, c), |_| rng.gen_range(-amp..amp))
    }

    /// Secure elementwise and matrix products equal the plaintext products within 2^-(f-2) per
    /// entry (after truncation), as the foundation issue requires.
    #[tokio::test]
    async fn products_match_plaintext() {
        let fp = FixedPoint::default();
        let tol = 2f64.powi(-(fp.frac_bits().get() as i32 - 2));
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let x = real(&mut rng, 6, 5, 4.0);
        let y = real(&mut rng, 5, 3, 4.0);
        let w = real(&mut rng, 6, 5, 4.0);
        let [x0, x1] = share(&fp.encode_matrix(&x.view()).unwrap().view(), &mut rng);
        let [y0, y1] = share(&fp.encode_matrix(&y.view()).unwrap().view(), &mut rng);
        let [w0, w1] = share(&fp.encode_matrix(&w.view()).unwrap().view(), &mut rng);
        let reqs = vec![
            TripleRequest::Matmul {
                lhs: Lhs::Fresh { rows: 6, inner: 5 },
                cols: 3,
            },
            TripleRequest::Elementwise { rows: 6, cols: 5 },
        ];
        let (mut d0, mut d1, _h) = dealer::spawn_in_process().await.unwrap();
        let (p0, p1) = tokio::join!(d0.generate(&reqs), d1.generate(&reqs));
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        let (mut c0, mut c1) = mem_pair();
        let l = Lhs::Fresh { rows: 6, inner: 5 };
        let (t0, t1) = (
            p0.next_matmul(&l, 3).unwrap(),
            p1.next_matmul(&l, 3).unwrap(),
        );
        let (e0, e1) = (
            p0.next_elementwise((6, 5)).unwrap(),
            p1.next_elementwise((6, 5)).unwrap(),
        );
        let f = fp.frac_bits().get();
        let (r0, r1) = tokio::join!(
            async {
                let m = matmul(&mut c0, Role::P0, &x0, &y0, t0).await.unwrap();
                let h = mul(&mut c0, Role::P0, &x0, &w0, &e0).await.unwrap();
                (
                    truncate(Role::P0, &m, f).unwrap(),
                    truncate(Role::P0, &h, f).unwrap(),
                )
            },
            async {
                let m = matmul(&mut c1, Role::P1, &x1, &y1, t1).await.unwrap();
                let h = mul(&mut c1, Role::P1, &x1, &w1, &e1).await.unwrap();
                (
                    truncate(Role::P1, &m, f).unwrap(),
                    truncate(Role::P1, &h, f).unwrap(),
                )
            }
        );
        let m = fp.decode_matrix(&reconstruct(&r0.0, &r1.0).view());
        let h = fp.decode_matrix(&reconstruct(&r0.1, &r1.1).view());
        let m_plain = x.dot(&y);
        let h_plain = &x * &w;
        for (a, b) in m.iter().zip(m_plain.iter()) {
            assert!((a - b).abs() <= tol, "matmul {a} vs {b}");
        }
        for (a, b) in h.iter().zip(h_plain.iter()) {
            assert!((a - b).abs() <= tol, "mul {a} vs {b}");
        }
    }

    #[tokio::test]
    async fn masked_matrix_products_match_plaintext() {
        let fp = FixedPoint::default();
        let f = fp.frac_bits().get();
        let tol = 2f64.powi(-(f as i32 - 2));
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let x = real(&mut rng, 20, 7, 3.0);
        let w = real(&mut rng, 7, 1, 1.0);
        let g = real(&mut rng, 4, 1, 1.0);
        let [x0, x1] = share(&fp.encode_matrix(&x.view()).unwrap().view(), &mut rng);
        let [w0, w1] = share(&fp.encode_matrix(&w.view()).unwrap().view(), &mut rng);
        let [g0, g1] = share(&fp.encode_matrix(&g.view()).unwrap().view(), &mut rng);
        let batch = vec![3usize, 17, 0, 9];
        let reqs = vec![
            TripleRequest::Mask {
                id: 0,
                rows: 20,
                cols: 7,
            },
            TripleRequest::Matmul {
                lhs: Lhs::Mask {
                    id: 0,
                    rows: batch.clone(),
                    transpose: false,
                },
                cols: 1,
            },
            TripleRequest::Matmul {
                lhs: Lhs::Mask {
                    id: 0,
                    rows: batch.clone(),
                    transpose: true,
                },
                cols: 1,
            },
        ];
        let (mut d0, mut d1, _h) = dealer::spawn_in_process().await.unwrap();
        let (p0, p1) = tokio::join!(d0.generate(&reqs), d1.generate(&reqs));
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        let (mut c0, mut c1) = mem_pair();
        let (r0, r1) = tokio::join!(
            async {
                let m = MaskedMatrix::open(&mut c0, &x0, 0, &mut p0).await.unwrap();
                let a = m
                    .matmul_rows(&mut c0, Role::P0, &batch, false, &w0, &mut p0)
                    .await
                    .unwrap();
                let b = m
                    .matmul_rows(&mut c0, Role::P0, &batch, true, &g0, &mut p0)
                    .await
                    .unwrap();
                (
                    truncate(Role::P0, &a, f).unwrap(),
                    truncate(Role::P0, &b, f).unwrap(),
                )
            },
            async {
                let m = MaskedMatrix::open(&mut c1, &x1, 0, &mut p1).await.unwrap();
                let a = m
                    .matmul_rows(&mut c1, Role::P1, &batch, false, &w1, &mut p1)
                    .await
                    .unwrap();
                let b = m
                    .matmul_rows(&mut c1, Role::P1, &batch, true, &g1, &mut p1)
                    .await
                    .unwrap();
                (
                    truncate(Role::P1, &a, f).unwrap(),
                    truncate(Role::P1, &b, f).unwrap(),
                )
            }
        );
        let xb = x.select(ndarray::Axis(0), &batch);
        let a = fp.decode_matrix(&reconstruct(&r0.0, &r1.0).view());
        let b = fp.decode_matrix(&reconstruct(&r0.1, &r1.1).view());
        for (s, p) in a.iter().zip(xb.dot(&w).iter()) {
            assert!((s - p).abs() <= tol);
        }
        for (s, p) in b.iter().zip(xb.t().dot(&g).iter()) {
            assert!((s - p).abs() <= tol);
        }
    }

    /// A mask hides one matrix: the second open under the same id is refused with an error naming
    /// the mask, before anything is sent, while the first matrix keeps its products.
    #[tokio::test]
    async fn mask_is_single_use() {
        use crate::net::Metered;
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let reqs = vec![
            TripleRequest::Mask {
                id: 5,
                rows: 4,
                cols: 3,
            },
            TripleRequest::Matmul {
                lhs: Lhs::Mask {
                    id: 5,
                    rows: vec![2, 0],
                    transpose: false,
                },
                cols: 1,
            },
        ];
        let (mut d0, mut d1, _h) = dealer::spawn_in_process().await.unwrap();
        let (p0, p1) = tokio::join!(d0.generate(&reqs), d1.generate(&reqs));
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        let x = crate::ring::random(&mut rng, 4, 3);
        let x2 = crate::ring::random(&mut rng, 4, 3);
        let w = crate::ring::random(&mut rng, 3, 1);
        let [x0, x1] = share(&x.view(), &mut rng);
        let [y0, y1] = share(&x2.view(), &mut rng);
        let [w0, w1] = share(&w.view(), &mut rng);
        let (c0, c1) = mem_pair();
        let (mut c0, mut c1) = (Metered::new(c0), Metered::new(c1));
        let (m0, m1) = tokio::join!(
            MaskedMatrix::open(&mut c0, &x0, 5, &mut p0),
            MaskedMatrix::open(&mut c1, &x1, 5, &mut p1)
        );
        let (m0, m1) = (m0.unwrap(), m1.unwrap());
        let sent = (c0.stats().bytes_sent, c1.stats().bytes_sent);
        let again0 = MaskedMatrix::open(&mut c0, &y0, 5, &mut p0).await;
        let again1 = MaskedMatrix::open(&mut c1, &y1, 5, &mut p1).await;
        for r in [again0, again1] {
            let e = r.unwrap_err();
            assert!(matches!(e, MpcError::MaskReused { id: 5 }), "{e:?}");
            assert!(e.to_string().contains("mask #5"), "{e}");
        }
        assert_eq!((c0.stats().bytes_sent, c1.stats().bytes_sent), sent);
        // The first matrix still multiplies against its mask.
        let (a, b) = tokio::join!(
            m0.matmul_rows(&mut c0, Role::P0, &[2, 0], false, &w0, &mut p0),
            m1.matmul_rows(&mut c1, Role::P1, &[2, 0], false, &w1, &mut p1)
        );
        let xb = ring::select_rows(&x.view(), &[2, 0]);
        assert_eq!(
            reconstruct(&a.unwrap(), &b.unwrap()),
            ring::matmul(&xb.view(), &w.view())
        );
    }

    #[tokio::test]
    async fn open_reveals_the_sum() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let x = crate::ring::random(&mut rng, 3, 4);
        let [a, b] = share(&x.view(), &mut rng);
        let (mut c0, mut c1) = mem_pair();
        let (o0, o1) = tokio::join!(open(&mut c0, &a), open(&mut c1, &b));
        assert_eq!(o0.unwrap(), x);
        assert_eq!(o1.unwrap(), x);
    }

    #[test]
    fn beaver_local_is_correct() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let x = crate::ring::random(&mut rng, 2, 2);
        let y = crate::ring::random(&mut rng, 2, 2);
        let a = crate::ring::random(&mut rng, 2, 2);
        let b = crate::ring::random(&mut rng, 2, 2);
        let c = ring::hadamard(&a.view(), &b.view());
        let [a0, a1] = share(&a.view(), &mut rng);
        let [b0, b1] = share(&b.view(), &mut rng);
        let [cc0, cc1] = share(&c.view(), &mut rng);
        let e = ring::sub(&x.view(), &a.view());
        let f = ring::sub(&y.view(), &b.view());
        let t0 = ElemTriple {
            a: a0,
            b: b0,
            c: cc0,
        };
        let t1 = ElemTriple {
            a: a1,
            b: b1,
            c: cc1,
        };
        let z = reconstruct(
            &beaver_local(Role::P0, &e.view(), &f.view(), &t0),
            &beaver_local(Role::P1, &e.view(), &f.view(), &t1),
        );
        assert_eq!(z, ring::hadamard(&x.view(), &y.view()));
    }

    /// `open_difference` returns X − U for shapes of no word, one word, exactly one chunk, one
    /// word past it and a few chunks, with either layout, and sends what `exchange_ring` of the
    /// difference would (the peer here uses the older path).
    #[tokio::test]
    async fn open_difference_streams_chunks_and_matches_exchange_ring() {
        use crate::net::ChannelExt;
        let mut rng = crate::share::os_rng();
        let c = RING_CHUNK_WORDS;
        for (r, k) in [(0, 5), (1, 1), (1, c), (c + 1, 1), (3, c / 2 + 7)] {
            let x = ring::random(&mut rng, r, k);
            let u = ring::random(&mut rng, r, k);
            let [x0, x1] = share(&x.view(), &mut rng);
            let [u0, u1] = share(&u.view(), &mut rng);
            let want = ring::sub(&x.view(), &u.view());
            let (mut c0, mut c1) = mem_pair();
            let d1 = x1.sub(&u1);
            let d1v = d1.view();
            let (e0, e1) = tokio::join!(open_difference(&mut c0, &x0, &u0), c1.exchange_ring(&d1v));
            assert_eq!(e0.unwrap(), want, "{r}x{k}");
            assert_eq!(ring::add(&e1.unwrap().view(), &d1.view()), want, "{r}x{k}");
        }
        // Column-major shares (transposed views) are read in logical order.
        let x = ring::random(&mut rng, 4, 9);
        let u = ring::random(&mut rng, 4, 9);
        let t = |m: &RingMatrix| {
            let f = m.t().as_standard_layout().into_owned().reversed_axes();
            assert!(!f.is_standard_layout() && f == m);
            Share::from_ring(f)
        };
        let [x0, x1] = share(&x.view(), &mut rng);
        let [u0, u1] = share(&u.view(), &mut rng);
        let (x0t, u1t) = (t(&x0.view().to_owned()), t(&u1.view().to_owned()));
        let (mut c0, mut c1) = mem_pair();
        let (e0, e1) = tokio::join!(
            open_difference(&mut c0, &x0t, &u0),
            open_difference(&mut c1, &x1, &u1t)
        );
        let want = ring::sub(&x.view(), &u.view());
        assert_eq!(e0.unwrap(), want);
        assert_eq!(e1.unwrap(), want);
    }

    #[tokio::test]
    async fn open_difference_refuses_a_short_frame_and_a_shape_mismatch() {
        let (mut c0, mut c1) = mem_pair();
        let x = Share::zeros(2, 3);
        c1.send_frame(vec![0u8; 40]).await.unwrap();
        let r = open_difference(&mut c0, &x, &Share::zeros(2, 3)).await;
        assert!(
            matches!(&r, Err(MpcError::Malformed { reason }) if reason.contains("40 bytes")),
            "{r:?}"
        );
        let r = open_difference(&mut c0, &x, &Share::zeros(3, 2)).await;
        assert!(matches!(r, Err(MpcError::ShapeMismatch { .. })), "{r:?}");
    }
}
