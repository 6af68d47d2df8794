//! Operators on encrypted tile tensors (HElayers §4): the elementwise product with a
//! plaintext tile tensor followed by the summation over one dimension (tiles along the
//! dimension added, then a rotate-and-sum inside the tile), the square, the addition of a
//! plaintext (a bias), and the cleaning of an unknown dimension by a mask. Each operator has
//! its operation counts beside it, computed from the shapes alone, so that a layout's planned
//! counts are the evaluator's (tested).
//!
//! **Broadcasting.** A replicated dimension of one operand meets a full dimension of the
//! other: the replicated tile is reused for every tile along that dimension, and the product
//! takes the full dimension (this is how the layouts change what a dimension means: a
//! dimension replicated by one layer's summation holds the next layer's outputs). Two full
//! dimensions must have the same size.
//!
//! **Summation.** After the tiles along dimension `i` are added, `log2 t_i` rotations by
//! `stride_i·2^j` (each followed by an addition) leave in-tile index 0 of `i` holding the sum
//! over the whole tile. If `i` is the outermost dimension with a tile size above 1
//! (`stride_i·t_i` = the slot count) the rotations are cyclic within the dimension and every
//! index holds the sum: the dimension becomes replicated (`*`). Otherwise the indices other
//! than 0 mix neighbouring rows: the dimension becomes unknown (`?`) and must be cleaned
//! (one plaintext product, one level) before anything reads it or leaves the server.

use super::pack::pack;
use super::shape::{flat, unflat, DimKind, TileDim, TileShape};
use crate::error::{HeCnnError, Result};
use ckks::{Ciphertext, Encoder, Evaluator, OpCounts, Plaintext};
use rayon::prelude::*;

/// An encrypted tile tensor: one ciphertext per tile, in row-major grid order.
#[derive(Debug, Clone)]
pub struct CtTiles {
    /// The shape.
    pub shape: TileShape,
    /// The tiles.
    pub tiles: Vec<Ciphertext>,
}

/// An encoded plaintext tile tensor (weights, biases, masks).
#[derive(Debug, Clone)]
pub struct PtTiles {
    /// The shape.
    pub shape: TileShape,
    /// The tiles.
    pub tiles: Vec<Plaintext>,
}

impl PtTiles {
    /// Packs `values` (row-major over `shape.sizes()`) and encodes each tile at `level` with
    /// `scale`.
    ///
    /// # Errors
    /// A value count other than the shape's; CKKS encoding errors.
    pub fn encode(
        shape: TileShape,
        values: &[f64],
        encoder: &Encoder,
        level: usize,
        scale: f64,
    ) -> Result<Self> {
        let tiles = pack(&shape, values)?
            .into_par_iter()
            .map(|v| Ok(encoder.encode(&v, level, scale)?))
            .collect::<Result<_>>()?;
        Ok(Self { shape, tiles })
    }
}

fn mismatch(what: &'static str, expected: usize, found: usize) -> HeCnnError {
    HeCnnError::Shape {
        what,
        expected,
        found,
    }
}

/// The shape of `x ⊙ w` under the broadcasting rules (see the module docs).
///
/// # Errors
/// [`HeCnnError::Shape`] for a different dimension count or tile size, full dimensions of
/// different sizes, or an unknown dimension (clean it first).
pub fn product_shape(x: &TileShape, w: &TileShape) -> Result<TileShape> {
    if x.dims().len() != w.dims().len() {
        return Err(mismatch(
            "tile tensor dimensions",
            x.dims().len(),
            w.dims().len(),
        ));
    }
    let mut dims = Vec::with_capacity(x.dims().len());
    for (a, b) in x.dims().iter().zip(w.dims()) {
        if a.tile != b.tile {
            return Err(mismatch("tile size", a.tile, b.tile));
        }
        dims.push(match (a.kind, b.kind) {
            (DimKind::Unknown, _) | (_, DimKind::Unknown) => {
                return Err(mismatch("clean dimensions (unknown: clean first)", 0, 1))
            }
            (DimKind::Full, DimKind::Full) if a.size != b.size => {
                return Err(mismatch("full dimension size", a.size, b.size))
            }
            (DimKind::Replicated, DimKind::Full) => *b,
            _ => *a,
        });
    }
    TileShape::new(dims, x.slots())
}

/// The tile of an operand of shape `s` that meets product tile `coords` (a dimension of one
/// tile is broadcast).
fn operand_tile(s: &TileShape, coords: &[usize]) -> usize {
    let grid = s.grid();
    let c: Vec<usize> = coords
        .iter()
        .zip(&grid)
        .map(|(&c, &e)| if e == 1 { 0 } else { c })
        .collect();
    flat(&c, &grid)
}

/// What dimension `i` of `s` becomes once summed (see the module docs).
fn summed_dim(s: &TileShape, i: usize) -> TileDim {
    let d = *s.dim(i);
    // A one-slot dimension holds its one value at every index: replicated too.
    let kind = if d.tile == 1 || s.stride(i) * d.tile == s.slots() {
        DimKind::Replicated
    } else {
        DimKind::Unknown
    };
    TileDim { size: 1, kind, ..d }
}

/// The rotation steps of a rotate-and-sum over dimension `i` of `s`.
pub fn sum_steps(s: &TileShape, i: usize) -> Vec<i64> {
    let t = s.dim(i).tile;
    (0..t.trailing_zeros())
        .map(|j| (s.stride(i) << j) as i64)
        .collect()
}

/// `Σ_i x ⊙ w` over dimension `dim` of the product (see the module docs), one level down.
///
/// # Errors
/// Shapes that do not broadcast, tiles at other levels than `w`'s, missing Galois keys, CKKS
/// errors.
pub fn mul_sum(eval: &Evaluator, x: &CtTiles, w: &PtTiles, dim: usize) -> Result<CtTiles> {
    let r = product_shape(&x.shape, &w.shape)?;
    if x.tiles.len() != x.shape.tile_count() {
        return Err(mismatch(
            "ciphertext tiles",
            x.shape.tile_count(),
            x.tiles.len(),
        ));
    }
    let grid = r.grid();
    let mut out_grid = grid.clone();
    out_grid[dim] = 1;
    let outs: usize = out_grid.iter().product();
    let steps = sum_steps(&r, dim);
    let tiles = (0..outs)
        .into_par_iter()
        .map(|o| {
            let mut c = unflat(o, &out_grid);
            let mut acc: Option<Ciphertext> = None;
            for j in 0..grid[dim] {
                c[dim] = j;
                let (xt, wt) = (
                    &x.tiles[operand_tile(&x.shape, &c)],
                    &w.tiles[operand_tile(&w.shape, &c)],
                );
                match acc.as_mut() {
                    None => acc = Some(eval.mul_plain(xt, wt)?),
                    Some(a) => eval.mul_plain_add_assign(a, xt, wt)?,
                }
            }
            let mut z = eval.rescale(&acc.expect("a dimension has a tile"))?;
            for &s in &steps {
                let rot = eval.rotate(&z, s)?;
                eval.add_assign(&mut z, &rot)?;
            }
            Ok(z)
        })
        .collect::<Result<_>>()?;
    Ok(CtTiles {
        shape: r.with_dim(dim, summed_dim(&r, dim)),
        tiles,
    })
}

/// The operations of [`mul_sum`] on these shapes: the products (with their accumulations and
/// the rescales) and the rotate-and-sum (one level down), and the result's shape.
///
/// # Errors
/// As [`product_shape`].
pub fn mul_sum_counts(
    x: &TileShape,
    w: &TileShape,
    dim: usize,
) -> Result<(OpCounts, OpCounts, TileShape)> {
    let r = product_shape(x, w)?;
    let products = r.tile_count() as u64;
    let outs = products / r.grid()[dim] as u64;
    let rotations = outs * sum_steps(&r, dim).len() as u64;
    let mul = OpCounts {
        mul_plain: products,
        add: products - outs,
        rescale: outs,
        ..OpCounts::default()
    };
    let rot = OpCounts {
        rotate: rotations,
        key_switch: rotations,
        decompose: rotations,
        mod_down: 2 * rotations,
        add: rotations,
        ..OpCounts::default()
    };
    Ok((mul, rot, r.with_dim(dim, summed_dim(&r, dim))))
}

/// `x + b` tile by tile (`b` broadcast as in a product; it must not add tiles).
///
/// # Errors
/// Shapes that do not broadcast to `x`'s grid, CKKS errors (levels, scales).
pub fn add_plain(eval: &Evaluator, x: &CtTiles, b: &PtTiles) -> Result<CtTiles> {
    let r = product_shape(&x.shape, &b.shape)?;
    if r.grid() != x.shape.grid() {
        return Err(mismatch("bias tiles", x.shape.tile_count(), r.tile_count()));
    }
    let grid = x.shape.grid();
    let tiles = x
        .tiles
        .par_iter()
        .enumerate()
        .map(|(t, ct)| Ok(eval.add_plain(ct, &b.tiles[operand_tile(&b.shape, &unflat(t, &grid))])?))
        .collect::<Result<_>>()?;
    Ok(CtTiles {
        shape: x.shape.clone(),
        tiles,
    })
}

/// Every tile squared, relinearized and rescaled.
///
/// # Errors
/// CKKS errors (no relinearization key).
pub fn square(eval: &Evaluator, x: &CtTiles) -> Result<CtTiles> {
    let tiles = x
        .tiles
        .par_iter()
        .map(|ct| Ok(eval.rescale(&eval.square(ct)?)?))
        .collect::<Result<_>>()?;
    Ok(CtTiles {
        shape: x.shape.clone(),
        tiles,
    })
}

/// The mask that cleans unknown dimension `dim` of `s`: 1 at its index 0, 0 elsewhere, every
/// other dimension replicated (a tensor of one value).
pub fn mask_shape(s: &TileShape, dim: usize) -> TileShape {
    let dims = s
        .dims()
        .iter()
        .enumerate()
        .map(|(i, d)| TileDim {
            size: 1,
            kind: if i == dim {
                DimKind::Unknown
            } else {
                DimKind::Replicated
            },
            ..*d
        })
        .collect();
    TileShape::new(dims, s.slots()).expect("same tile sizes")
}

/// Cleans unknown dimension `dim` of `x` with `mask` ([`mask_shape`], encoded at `x`'s level):
/// one plaintext product and one rescale per tile; the dimension becomes full of size 1.
///
/// # Errors
/// A dimension that is not unknown, CKKS errors.
pub fn clean(eval: &Evaluator, x: &CtTiles, dim: usize, mask: &Plaintext) -> Result<CtTiles> {
    if x.shape.dim(dim).kind != DimKind::Unknown {
        return Err(mismatch("an unknown dimension to clean", dim, dim));
    }
    let tiles = x
        .tiles
        .par_iter()
        .map(|ct| Ok(eval.rescale(&eval.mul_plain(ct, mask)?)?))
        .collect::<Result<_>>()?;
    let d = TileDim::full(x.shape.dim(dim).name, 1, x.shape.dim(dim).tile);
    Ok(CtTiles {
        shape: x.shape.with_dim(dim, d),
        tiles,
    })
}
