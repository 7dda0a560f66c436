//! The wire codec: frames (length prefix, request-header peek and the few
//! body fields Strait reads without decoding a message: produce `acks`, the
//! topics of a produce) and record batches (header view, records, lossless
//! editing, compression, the aborted-transaction filter), and the guard
//! ([`guard`]) every kafka-protocol decode of a peer's bytes goes through.
//!
//! Everything here is bounds-checked and knows nothing of policies: a frame
//! stays raw bytes unless a policy or a response step needs it decoded.

pub mod aborted;
pub mod batch;
pub mod build;
pub mod compression;
pub mod edit;
pub mod guard;
mod header;
pub mod records;

pub use compression::Compression;

pub use header::{
    peek_produce_acks, scan_produce_topics, FrameError, RequestPeek, TopicRef, PEEK_LEN,
};

/// Reads the 4-byte big-endian length prefix and checks it against `max`.
/// `Ok(None)` means fewer than 4 bytes are buffered.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(prefix.try_into().expect("4 bytes"));
    if len < 0 {
        return Err(FrameError::NegativeLength(len));
    }
    let len = len as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(Some(len))
}

/// Batches as one records section: the one batch as it is, or a copy of
/// them all back to back.
pub fn join(mut batches: Vec<bytes::Bytes>) -> bytes::Bytes {
    if batches.len() == 1 {
        return batches.pop().expect("one");
    }
    let mut all = bytes::BytesMut::with_capacity(batches.iter().map(bytes::Bytes::len).sum());
    for b in &batches {
        all.extend_from_slice(b);
    }
    all.freeze()
}
