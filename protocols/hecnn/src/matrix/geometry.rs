//! Where every value of the matrix layout lives inside an image's block of slots: plain
//! arithmetic on slot indices, no ciphertext.
//!
//! One image owns a block of `block` consecutive slots (a power of two): the image matrix
//! row-major with row stride `width` (the padded side rounded up to a power of two), so that
//! the ciphertext is the batch's data matrix with one image per row (`images × block`). Inside
//! a block:
//!
//! * pixel `(y, x)` at `(y + pad)·width + (x + pad)` (the top/left zero padding is free);
//! * the convolution output of map `m = g·per + r` at position `(oy, ox)` in output ciphertext
//!   `g` at `offset + (oy·stride + δy)·width + ox·stride + δx` with `(δy, δx) = (r / stride,
//!   r mod stride)`: the stride leaves `stride²` interleaved grids free, so `per = stride²`
//!   maps share a ciphertext. The tap `(ky, kx)` of that output reads the pixel at
//!   `(oy·stride + ky)·width + ox·stride + kx` (padded coordinates): a shift of
//!   `ky·width + kx − δy·width − δx − offset` that does not depend on the position, so one
//!   rotation of the input serves every position of a map (the kernel "spanned into the
//!   image's matrix space");
//! * `offset` = the first dense layer's row block `R1` (`hidden` rounded up to a power of two),
//!   so that every feature sits at or after slot `R1`: the dense layer's shifts are then all
//!   in `0..R1` and never read across the block's start (see `dense`);
//! * hidden unit `i` at slot `i`, class `c` at slot `c`.

use crate::error::{HeCnnError, Result};
use ml::models::cnn::CnnSpec;

/// The slot geometry of one architecture (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub spec: CnnSpec,
    /// Row stride of the image matrix inside a block.
    pub width: usize,
    /// Slots per image.
    pub block: usize,
    /// Maps per convolution output ciphertext (`stride²`).
    pub per: usize,
    /// Convolution output ciphertexts (`⌈maps / per⌉`).
    pub groups: usize,
    /// Row block of the first dense layer (`hidden` rounded up to a power of two).
    pub rows1: usize,
    /// Where the convolution outputs start (`rows1`).
    pub offset: usize,
}

fn packing(what: &'static str, value: usize, limit: usize) -> HeCnnError {
    HeCnnError::Packing {
        layer: "matrix",
        what,
        value,
        limit,
    }
}

impl Geometry {
    /// The geometry of `spec` (a plain network: FFConv models are laid out as their folded
    /// network).
    ///
    /// # Errors
    /// An invalid architecture; [`HeCnnError::Packing`] if a block of `block_max` slots cannot
    /// hold the image or the convolution's outputs.
    pub fn new(spec: &CnnSpec, block_max: usize) -> Result<Self> {
        spec.validate()?;
        let spec = spec.folded();
        let width = (spec.side + spec.pad).next_power_of_two();
        let per = spec.stride * spec.stride;
        let rows1 = spec.hidden.next_power_of_two();
        let image_end = (spec.side + spec.pad) * width;
        if spec.out_side() * spec.stride > width {
            return Err(packing(
                "convolution output columns",
                spec.out_side() * spec.stride,
                width,
            ));
        }
        let mut g = Self {
            width,
            block: 0,
            per,
            groups: spec.maps.div_ceil(per),
            rows1,
            offset: rows1,
            spec,
        };
        let last = g.feature_slots().map(|(_, _, s)| s).max().unwrap_or(0);
        g.block = (last + 1).max(image_end).max(rows1).next_power_of_two();
        if g.block > block_max {
            return Err(packing("slots per image", g.block, block_max));
        }
        Ok(g)
    }

    /// The in-block slot of pixel `(y, x)`.
    pub fn pixel_slot(&self, y: usize, x: usize) -> usize {
        (y + self.spec.pad) * self.width + x + self.spec.pad
    }

    /// The interleaving offset `(δy, δx)` of map `m` in its ciphertext.
    fn delta(&self, m: usize) -> (usize, usize) {
        let r = m % self.per;
        (r / self.spec.stride, r % self.spec.stride)
    }

    /// `(ciphertext, in-block slot)` of map `m`'s convolution output at position `p`.
    pub fn feature_slot(&self, m: usize, p: usize) -> (usize, usize) {
        let (o, s) = (self.spec.out_side(), self.spec.stride);
        let (oy, ox) = (p / o, p % o);
        let (dy, dx) = self.delta(m);
        let slot = self.offset + (oy * s + dy) * self.width + ox * s + dx;
        (m / self.per, slot)
    }

    /// Every feature `(ciphertext, feature index m·positions + p, slot)`, map-major.
    pub fn feature_slots(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let np = self.spec.positions();
        (0..self.spec.maps * np).map(move |f| {
            let (g, s) = self.feature_slot(f / np, f % np);
            (g, f, s)
        })
    }

    /// The shift (slot read − slot written) of tap `k` for map `m`: the same at every position.
    pub fn conv_shift(&self, m: usize, k: usize) -> i64 {
        let kk = self.spec.kernel;
        let (ky, kx) = (k / kk, k % kk);
        let (dy, dx) = self.delta(m);
        (ky * self.width + kx) as i64 - (dy * self.width + dx + self.offset) as i64
    }

    /// The in-block slot tap `k` of map `m` reads for output position `p` (the slot written
    /// plus the shift): `pixel_slot` of the tap's source, or a zero of the padding.
    #[cfg(test)]
    pub fn conv_read(&self, m: usize, p: usize, k: usize) -> i64 {
        self.feature_slot(m, p).1 as i64 + self.conv_shift(m, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(maps: usize, hidden: usize) -> CnnSpec {
        CnnSpec {
            maps,
            hidden,
            ..CnnSpec::cryptonets()
        }
    }

    #[test]
    fn cryptonets_fits_a_block_of_1024_with_four_maps_per_ciphertext() {
        let g = Geometry::new(&CnnSpec::cryptonets(), 1 << 13).unwrap();
        assert_eq!(
            (g.width, g.block, g.per, g.groups, g.rows1),
            (32, 1024, 4, 2, 128)
        );
        assert!(matches!(
            Geometry::new(&CnnSpec::cryptonets(), 512),
            Err(HeCnnError::Packing { value: 1024, .. })
        ));
    }

    proptest! {
        /// Features of one ciphertext never share a slot, all lie in `[offset, block)`, and
        /// every tap of every map reads its pixel (or a zero of the padding / beyond the image).
        #[test]
        fn features_are_disjoint_and_taps_read_their_pixels(maps in 1usize..20, hidden in 10usize..200) {
            let sp = spec(maps, hidden);
            let g = Geometry::new(&sp, 1 << 15).unwrap();
            let mut seen = std::collections::HashSet::new();
            for (c, _, s) in g.feature_slots() {
                prop_assert!(s >= g.offset && s < g.block && s >= hidden);
                prop_assert!(seen.insert((c, s)));
            }
            for m in 0..maps {
                for p in 0..sp.positions() {
                    for k in 0..sp.taps() {
                        let read = g.conv_read(m, p, k);
                        prop_assert!(read >= 0 && (read as usize) < g.block);
                        if let Some(src) = sp.tap_source(p, k) {
                            prop_assert_eq!(read as usize, g.pixel_slot(src / sp.side, src % sp.side));
                        } else {
                            // A padding zero: the top/left pad rows and columns hold no pixel.
                            let (ry, rx) = (read as usize / g.width, read as usize % g.width);
                            prop_assert!(ry < sp.pad || rx < sp.pad || ry >= sp.side + sp.pad || rx >= sp.side + sp.pad);
                        }
                    }
                }
            }
        }
    }
}
