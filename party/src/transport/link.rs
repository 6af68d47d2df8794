//! Link-level plumbing shared by the transports: the channel header, and the router that hands
//! incoming channels to [`super::Link::next_channel`] in order.
//!
//! Every channel starts with a header from the connecting side so that both sides agree on which
//! channel is which even when several are opened concurrently:
//!
//! * QUIC stream header: `"DYAD"`, version byte, channel index (`u32` LE) — 9 bytes;
//! * TCP connection header: `"DYAD"`, version byte, 16-byte random link id, channel index — 25
//!   bytes, answered by `"DYAD"`, version byte, status byte (0 = accepted, 1 = unknown link).
//!
//! QUIC links are confirmed by the listener with the 6-byte answer on a unidirectional stream,
//! which also tells the connecting side whether the listener accepted its certificate.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::oneshot;

/// Magic bytes opening every header.
pub(crate) const MAGIC: [u8; 4] = *b"DYAD";
/// Link protocol version: bumped whenever a message on the links changes its bincode encoding
/// (bincode has no optional fields), so a peer or client of another version is refused with the
/// two versions named instead of failing to decode a message. 2: `JobSpec.intercept`,
/// `ModelMeta::Linear`, `ModelInfo.dense`. 3: `UploadOptions.keys` and the join messages,
/// `ModelKind::Standardize` and `ModelKind::Evaluate`, `TripleKind::Auto`,
/// `Reply::Progress.triples`; a client's seeded Galois and relinearization keys expand `a_j`
/// from stream `j` of their seed (same bytes, another meaning). 4: `UploadOptions.standardized`,
/// `PeerRequest::Vote.standardized`, `ModelKind::Fold`, `Reply::ModelShareMeta.standardization`;
/// IKNP's extension message (`mpc::offline::iknp::ExtendMsg`) carries its bits superblock-major;
/// `ckks::OpCounts.mod_down` in the inference replies. 5: comparisons (ReLU, sigmoid, clamp,
/// row maximum) run the millionaires' protocol (`mpc::nonlinear::msb_millionaire`) in place of
/// the GMW adder, with the new preprocessing `TripleRequest::LeafOt`. 6: every shared-bit
/// multiplication (ReLU, its derivative in backprop, sigmoid, clamp) runs the OT multiplexer
/// (`mpc::nonlinear::select`, two flights) in place of two Beaver products, with the new
/// preprocessing `TripleRequest::Rot`. 7: `ModelInfo.cnn` (CNN models served by the inference
/// endpoint). 8: an `he` triple response carries `c_1` at 75 bits and `c_0` at 66 (was 79 and
/// 79; `mpc::offline::rlwe`). 9: the `ot`/`he` offline phases take their correlated OTs from the
/// silent extension (`mpc::offline::silent`: a bootstrap message, the GGM trees' flights, one bit
/// per chosen-choice COT) in place of IKNP's column messages; `ModelInfo.cnn`'s spec carries the
/// FFConv `rank` (always, `None` for plain CNNs). 10: `hegcn::DenseLayout`
/// (`ModelInfo.dense`) carries `input_repeat`, and the dense client packs each node's input
/// channels repeated every `input_repeat` slots (another node order may be announced too).
/// 11: `JobSpec.ot_extension` (the job names the OT extension both parties run).
/// 12: `ModelInfo.rotation_levels` (each Galois key made at the highest level it is used at;
/// restricted keys travel in their restricted size).
pub(crate) const VERSION: u8 = 12;
/// Status byte: accepted.
pub(crate) const STATUS_OK: u8 = 0;
/// Status byte: the link id is unknown to the listener (or belongs to another peer).
pub(crate) const STATUS_UNKNOWN_LINK: u8 = 1;

/// A 16-byte random identifier naming a TCP link across its connections.
pub(crate) type LinkId = [u8; 16];

pub(crate) fn quic_header(index: u32) -> [u8; 9] {
    let mut h = [0u8; 9];
    h[..4].copy_from_slice(&MAGIC);
    h[4] = VERSION;
    h[5..].copy_from_slice(&index.to_le_bytes());
    h
}

pub(crate) fn tcp_header(link: &LinkId, index: u32) -> [u8; 25] {
    let mut h = [0u8; 25];
    h[..4].copy_from_slice(&MAGIC);
    h[4] = VERSION;
    h[5..21].copy_from_slice(link);
    h[21..].copy_from_slice(&index.to_le_bytes());
    h
}

pub(crate) fn answer(status: u8) -> [u8; 6] {
    let mut h = [0u8; 6];
    h[..4].copy_from_slice(&MAGIC);
    h[4] = VERSION;
    h[5] = status;
    h
}

fn check_magic(h: &[u8]) -> Result<(), String> {
    if h[..4] != MAGIC {
        return Err(format!("magic {:02x?}, expected {:02x?}", &h[..4], MAGIC));
    }
    if h[4] != VERSION {
        return Err(format!("version {}, expected {VERSION}", h[4]));
    }
    Ok(())
}

/// Reads a QUIC stream header; returns the channel index.
pub(crate) async fn read_quic_header<R: AsyncRead + Unpin>(r: &mut R) -> Result<u32, String> {
    let mut h = [0u8; 9];
    r.read_exact(&mut h).await.map_err(|e| e.to_string())?;
    check_magic(&h)?;
    Ok(u32::from_le_bytes(h[5..].try_into().expect("4 bytes")))
}

/// Reads a TCP connection header; returns the link id and channel index.
pub(crate) async fn read_tcp_header<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<(LinkId, u32), String> {
    let mut h = [0u8; 25];
    r.read_exact(&mut h).await.map_err(|e| e.to_string())?;
    check_magic(&h)?;
    Ok((
        h[5..21].try_into().expect("16 bytes"),
        u32::from_le_bytes(h[21..].try_into().expect("4 bytes")),
    ))
}

/// Reads an answer; returns its status byte.
pub(crate) async fn read_answer<R: AsyncRead + Unpin>(r: &mut R) -> Result<u8, std::io::Error> {
    let mut h = [0u8; 6];
    r.read_exact(&mut h).await?;
    check_magic(&h).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(h[5])
}

struct RouterState<S> {
    arrived: HashMap<u32, S>,
    waiting: HashMap<u32, oneshot::Sender<S>>,
    closed: Option<String>,
}

/// Matches incoming channels (by index) with the calls waiting for them.
pub(crate) struct Router<S> {
    state: Mutex<RouterState<S>>,
}

impl<S> std::fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Router")
    }
}

impl<S> Router<S> {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(RouterState {
                arrived: HashMap::new(),
                waiting: HashMap::new(),
                closed: None,
            }),
        }
    }

    /// Hands an incoming channel to whoever waits for `index` (or keeps it until asked).
    pub(crate) fn deliver(&self, index: u32, s: S) {
        let mut st = self.state.lock().expect("router lock");
        let s = match st.waiting.remove(&index) {
            Some(tx) => match tx.send(s) {
                Ok(()) => return,
                Err(s) => s,
            },
            None => s,
        };
        st.arrived.insert(index, s);
    }

    /// No more channels will arrive: wakes every waiter with an error.
    pub(crate) fn close(&self, reason: String) {
        let mut st = self.state.lock().expect("router lock");
        st.closed.get_or_insert(reason);
        st.waiting.clear();
    }

    /// Waits for channel `index`.
    pub(crate) async fn take(&self, index: u32) -> Result<S, String> {
        let rx = {
            let mut st = self.state.lock().expect("router lock");
            if let Some(s) = st.arrived.remove(&index) {
                return Ok(s);
            }
            if let Some(r) = &st.closed {
                return Err(r.clone());
            }
            let (tx, rx) = oneshot::channel();
            st.waiting.insert(index, tx);
            rx
        };
        match rx.await {
            Ok(s) => Ok(s),
            Err(_) => Err(self
                .state
                .lock()
                .expect("router lock")
                .closed
                .clone()
                .unwrap_or_else(|| "link closed".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channels_are_matched_by_index_whatever_the_arrival_order() {
        let r = std::sync::Arc::new(Router::<&'static str>::new());
        r.deliver(1, "one");
        let r2 = r.clone();
        let w0 = tokio::spawn(async move { r2.take(0).await });
        tokio::task::yield_now().await;
        r.deliver(0, "zero");
        assert_eq!(w0.await.unwrap().unwrap(), "zero");
        assert_eq!(r.take(1).await.unwrap(), "one");
        let r3 = r.clone();
        let w2 = tokio::spawn(async move { r3.take(2).await });
        tokio::task::yield_now().await;
        r.close("gone".into());
        assert_eq!(w2.await.unwrap().unwrap_err(), "gone");
        assert_eq!(r.take(3).await.unwrap_err(), "gone");
    }

    #[tokio::test]
    async fn headers_round_trip_and_bad_magic_is_refused() {
        let h = quic_header(7);
        assert_eq!(read_quic_header(&mut &h[..]).await.unwrap(), 7);
        let t = tcp_header(&[9; 16], 3);
        assert_eq!(read_tcp_header(&mut &t[..]).await.unwrap(), ([9; 16], 3));
        let mut bad = quic_header(1);
        bad[0] = b'X';
        assert!(read_quic_header(&mut &bad[..]).await.is_err());
        let mut bad = answer(STATUS_OK);
        bad[4] = VERSION.wrapping_add(1);
        assert!(read_answer(&mut &bad[..]).await.is_err());
        assert_eq!(
            read_answer(&mut &answer(STATUS_UNKNOWN_LINK)[..])
                .await
                .unwrap(),
            STATUS_UNKNOWN_LINK
        );
    }
}
