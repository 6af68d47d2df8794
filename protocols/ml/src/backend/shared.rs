//! The secret-shared backend: SecureML's online phase over a [`Channel`] to the other party,
//! consuming preprocessing made beforehand from a [`super::Plan`] of the same code (built with
//! the same [`Truncation`] mode). It counts the values it truncates, like the plan.

use super::{
    batch_dim, check_columns, check_matmul, check_same, Backend, IndexMap, PublicLinear,
    SoftmaxKind,
};
use crate::error::Result;
use mpc::net::Channel;
use mpc::nonlinear::{self, BitShare};
use mpc::online::{self, MaskedMatrix};
use mpc::triples::{Lhs, MaskId, Preprocessing};
use mpc::trunc::{truncate_with, Truncation};
use mpc::{FixedPoint, Role, Session, Share};

/// One party's view of a secure computation.
#[derive(Debug)]
pub struct Shared<C> {
    ch: C,
    role: Role,
    fp: FixedPoint,
    pre: Preprocessing,
    next_mask: MaskId,
    truncation: Truncation,
    truncations: u64,
}

impl<C: Channel> Shared<C> {
    /// A backend for `role`, talking to the peer over `ch` and consuming `pre`, with local
    /// truncation.
    pub fn new(ch: C, role: Role, fp: FixedPoint, pre: Preprocessing) -> Self {
        Self {
            ch,
            role,
            fp,
            pre,
            next_mask: 0,
            truncation: Truncation::Local,
            truncations: 0,
        }
    }

    /// The same backend truncating by `truncation` (the plan must have been made with it).
    pub fn with_truncation(mut self, truncation: Truncation) -> Self {
        self.truncation = truncation;
        self
    }

    /// The number of values truncated so far (products, shifts and the softmax's internal
    /// truncations).
    pub fn truncations(&self) -> u64 {
        self.truncations
    }

    /// This party's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The session the protocols of one call run with: this backend's channel, role, codec and
    /// pool, lent for the call.
    fn session(&mut self) -> Session<'_, C> {
        Session::new(&mut self.ch, self.role, self.fp, &mut self.pre)
    }

    /// The fixed-point codec.
    pub fn fixed_point(&self) -> FixedPoint {
        self.fp
    }

    /// Masks and opens a shared data matrix for mini-batch products (SecureML §IV: once per
    /// training run). Data matrices must be registered in the order the [`super::Plan`] saw them.
    pub async fn data(&mut self, x: &Share) -> Result<MaskedMatrix> {
        let id = self.next_mask;
        self.next_mask += 1;
        Ok(MaskedMatrix::open(&mut self.ch, x, id, &mut self.pre).await?)
    }

    /// The channel (e.g. to read its meter).
    pub fn channel(&self) -> &C {
        &self.ch
    }

    /// Appends the next chunk of preprocessing (made from the plan of the next steps) after what
    /// is left, so the offline phase can run in chunks of steps to bound memory.
    pub fn add_preprocessing(&mut self, pre: Preprocessing) {
        self.pre.extend(pre);
    }

    /// Whether all preprocessing has been consumed.
    pub fn preprocessing_drained(&self) -> bool {
        self.pre.is_drained()
    }

    /// Gives back the channel.
    pub fn into_channel(self) -> C {
        self.ch
    }

    async fn trunc(&mut self, s: &Share, extra: u32) -> Result<Share> {
        self.shift(s, self.fp.frac_bits().get() + extra).await
    }

    async fn shift(&mut self, s: &Share, bits: u32) -> Result<Share> {
        self.truncations += (s.dim().0 * s.dim().1) as u64;
        let (ch, pre) = (&mut self.ch, &mut self.pre);
        Ok(truncate_with(self.truncation, ch, self.role, s, bits, pre).await?)
    }
}

impl<C: Channel> Backend for Shared<C> {
    type Tensor = Share;
    type Data = MaskedMatrix;
    type Bits = BitShare;

    fn dim(t: &Self::Tensor) -> (usize, usize) {
        t.dim()
    }

    fn data_dim(d: &Self::Data) -> (usize, usize) {
        d.dim()
    }

    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor> {
        check_same("add", a.dim(), b.dim())?;
        Ok(a.add(b))
    }

    fn sub(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor> {
        check_same("sub", a.dim(), b.dim())?;
        Ok(a.sub(b))
    }

    fn select_rows(&self, t: &Self::Tensor, rows: &[usize]) -> Self::Tensor {
        t.select_rows(rows)
    }

    fn transpose(&self, t: &Self::Tensor) -> Self::Tensor {
        t.t()
    }

    async fn shift_right(&mut self, t: &Self::Tensor, bits: u32) -> Result<Self::Tensor> {
        self.shift(t, bits).await
    }

    async fn relu(&mut self, t: &Self::Tensor) -> Result<(Self::Tensor, Self::Bits)> {
        Ok(nonlinear::relu_with_derivative(&mut self.session(), t).await?)
    }

    async fn select(&mut self, b: &Self::Bits, t: &Self::Tensor) -> Result<Self::Tensor> {
        check_same("select", b.dim(), t.dim())?;
        Ok(nonlinear::select(&mut self.session(), b, t).await?)
    }

    async fn sigmoid(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        Ok(nonlinear::piecewise_sigmoid(&mut self.session(), t).await?)
    }

    async fn softmax(&mut self, t: &Self::Tensor, kind: SoftmaxKind) -> Result<Self::Tensor> {
        let (iters, mode) = (nonlinear::DEFAULT_NEWTON_ITERATIONS, self.truncation);
        Ok(match kind {
            SoftmaxKind::Exp => {
                let params = Default::default();
                self.truncations += nonlinear::stable_softmax_truncations(t.dim(), params, iters);
                let cx = &mut self.session();
                nonlinear::stable_softmax_with(cx, t, (params, iters, mode)).await?
            }
            SoftmaxKind::Relu => {
                self.truncations += nonlinear::relu_softmax_truncations(t.dim(), iters);
                nonlinear::relu_softmax_with(&mut self.session(), t, (iters, mode)).await?
            }
        })
    }

    async fn exp(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        let (params, mode) = (nonlinear::ExpParams::default(), self.truncation);
        self.truncations += nonlinear::exp_truncations(t.dim(), params);
        Ok(nonlinear::exp_with(&mut self.session(), t, (params, mode)).await?)
    }

    async fn ln(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        let mode = self.truncation;
        self.truncations += nonlinear::ln_truncations(t.dim().0 * t.dim().1);
        Ok(nonlinear::ln_with(&mut self.session(), t, mode).await?)
    }

    async fn row_max(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        check_columns("row_max", t.dim())?;
        Ok(nonlinear::row_max(&mut self.session(), t).await?)
    }

    async fn data_matmul(
        &mut self,
        x: &Self::Data,
        rows: &[usize],
        transpose: bool,
        y: &Self::Tensor,
        extra_shift: u32,
    ) -> Result<Self::Tensor> {
        check_matmul(
            "data_matmul",
            batch_dim(x.dim(), rows.len(), transpose),
            y.dim(),
        )?;
        let p = x
            .matmul_rows(&mut self.ch, self.role, rows, transpose, y, &mut self.pre)
            .await?;
        self.trunc(&p, extra_shift).await
    }

    async fn matmul(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        extra_shift: u32,
    ) -> Result<Self::Tensor> {
        check_matmul("matmul", a.dim(), b.dim())?;
        let lhs = Lhs::Fresh {
            rows: a.dim().0,
            inner: a.dim().1,
        };
        let t = self.pre.next_matmul(&lhs, b.dim().1)?;
        let p = online::matmul(&mut self.ch, self.role, a, b, t).await?;
        self.trunc(&p, extra_shift).await
    }

    async fn mul(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        extra_shift: u32,
    ) -> Result<Self::Tensor> {
        check_same("mul", a.dim(), b.dim())?;
        let t = self.pre.next_elementwise(a.dim())?;
        let p = online::mul(&mut self.ch, self.role, a, b, &t).await?;
        self.trunc(&p, extra_shift).await
    }

    async fn matmul_scatter(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        map: &IndexMap,
    ) -> Result<Self::Tensor> {
        check_matmul("matmul_scatter", a.dim(), b.dim())?;
        map.check("matmul_scatter", (a.dim().0, b.dim().1), true)?;
        let lhs = Lhs::Fresh {
            rows: a.dim().0,
            inner: a.dim().1,
        };
        let t = self.pre.next_matmul(&lhs, b.dim().1)?;
        let p = online::matmul(&mut self.ch, self.role, a, b, t).await?;
        let summed = self.scatter_add(&p, map)?;
        self.trunc(&summed, 0).await
    }

    fn constant(&self, x: &ndarray::Array2<f64>) -> Result<Self::Tensor> {
        Ok(Share::of_public(
            self.role,
            &self.fp.encode_matrix(&x.view())?.view(),
        ))
    }

    fn gather(&self, t: &Self::Tensor, map: &IndexMap) -> Result<Self::Tensor> {
        map.check("gather", t.dim(), false)?;
        let x = t.view();
        let x = x.as_standard_layout();
        let v = map.gather_slice(x.as_slice().expect("standard layout"), 0u64);
        Ok(Share::from_ring(
            ndarray::Array2::from_shape_vec(map.out_dim(), v).expect("map size"),
        ))
    }

    fn scatter_add(&self, t: &Self::Tensor, map: &IndexMap) -> Result<Self::Tensor> {
        map.check("scatter_add", t.dim(), true)?;
        let x = t.view();
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let v = map.scatter_slice(xs, 0u64, u64::wrapping_add);
        Ok(Share::from_ring(
            ndarray::Array2::from_shape_vec(map.in_dim(), v).expect("map size"),
        ))
    }

    async fn linear_public(
        &mut self,
        t: &Self::Tensor,
        map: &PublicLinear,
    ) -> Result<Self::Tensor> {
        map.check("linear_public", t.dim())?;
        let coef = map
            .coefficients()
            .map(|c| self.fp.encode(c))
            .collect::<std::result::Result<Vec<u64>, _>>()?;
        let cols = t.dim().1;
        let x = t.view();
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let v = map.apply_with(xs, cols, &coef, 0u64, |a, c, x| {
            a.wrapping_add(c.wrapping_mul(x))
        });
        let p = Share::from_ring(
            ndarray::Array2::from_shape_vec((map.dim().0, cols), v).expect("map size"),
        );
        self.trunc(&p, 0).await
    }

    async fn scale(&mut self, t: &Self::Tensor, c: f64) -> Result<Self::Tensor> {
        let p = t.mul_const(self.fp.encode(c)?);
        self.trunc(&p, 0).await
    }

    async fn square(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        self.mul(t, t, 0).await
    }
}
