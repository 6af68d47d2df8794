//! Bit packing of the RLWE wire formats: values of up to 128 bits, LSB-first, eight bytes at a
//! time (queries and public keys at `PRIME_BITS` per residue, responses at `w` per coefficient).

/// Packs values of `w ≤ 128` bits LSB-first into bytes, eight at a time.
pub(super) struct BitWriter {
    pub(super) out: Vec<u8>,
    acc: u128,
    fill: u32,
}

impl BitWriter {
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            out: Vec::with_capacity(n),
            acc: 0,
            fill: 0,
        }
    }

    #[inline]
    fn put64(&mut self, v: u64, w: u32) {
        self.acc |= (v as u128) << self.fill;
        self.fill += w;
        if self.fill >= 64 {
            self.out.extend_from_slice(&(self.acc as u64).to_le_bytes());
            self.acc >>= 64;
            self.fill -= 64;
        }
    }

    #[inline]
    pub(super) fn put(&mut self, v: u128, w: u32) {
        if w > 64 {
            self.put64(v as u64, 64);
            self.put64((v >> 64) as u64, w - 64);
        } else {
            self.put64(v as u64, w);
        }
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        let bytes = self.fill.div_ceil(8) as usize;
        self.out
            .extend_from_slice(&(self.acc as u64).to_le_bytes()[..bytes]);
        self.out
    }
}

/// Reads what [`BitWriter`] packed.
pub(super) struct BitReader<'a> {
    bytes: &'a [u8],
    at: usize,
    acc: u128,
    fill: u32,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            acc: 0,
            fill: 0,
        }
    }

    #[inline]
    fn get64(&mut self, w: u32) -> u64 {
        if self.fill < w {
            let take = (self.bytes.len() - self.at).min(8);
            let mut b = [0u8; 8];
            b[..take].copy_from_slice(&self.bytes[self.at..self.at + take]);
            self.at += take;
            self.acc |= (u64::from_le_bytes(b) as u128) << self.fill;
            self.fill += 8 * take as u32;
        }
        let v = (self.acc & ((1u128 << w) - 1)) as u64;
        self.acc >>= w;
        self.fill -= w;
        v
    }

    #[inline]
    pub(super) fn get(&mut self, w: u32) -> u128 {
        if w > 64 {
            let lo = self.get64(64) as u128;
            lo | (self.get64(w - 64) as u128) << 64
        } else {
            self.get64(w) as u128
        }
    }
}
