//! [`Session`]: what one party's run of a two-party protocol works with — the channel to the
//! peer, its [`Role`], the fixed-point encoding and the preprocessing pool it consumes in order.
//!
//! The non-linear protocols ([`crate::nonlinear`]) take `&mut Session<'_, C>` instead of these
//! four loose arguments; a caller that owns them lends them for one call
//! (`&mut Session::new(&mut ch, role, fp, &mut pre)`).

use crate::fixed::FixedPoint;
use crate::share::Role;
use crate::triples::Preprocessing;

/// One party's context for running protocols: channel, role, encoding, preprocessing.
#[derive(Debug)]
pub struct Session<'a, C> {
    /// The channel to the other party.
    pub ch: &'a mut C,
    /// This party's role.
    pub role: Role,
    /// The fixed-point encoding of shared reals.
    pub fp: FixedPoint,
    /// This party's preprocessing, consumed in order.
    pub pre: &'a mut Preprocessing,
}

impl<'a, C> Session<'a, C> {
    /// A session over borrowed parts.
    pub fn new(ch: &'a mut C, role: Role, fp: FixedPoint, pre: &'a mut Preprocessing) -> Self {
        Self { ch, role, fp, pre }
    }
}
