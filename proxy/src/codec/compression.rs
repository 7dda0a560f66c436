//! Compressing a records section the way Kafka clients do, so the Java client
//! and librdkafka read what Strait writes: gzip; snappy in xerial framing
//! (what the Java client writes; librdkafka reads it too); lz4 frames with
//! independent 64 KiB blocks and no checksums (KafkaLZ4BlockOutputStream's
//! layout); zstd frames. Decompression lives in [`super::batch::decompress`].

use std::cell::RefCell;
use std::io::Write;

use bytes::Bytes;
use strait_policies::Codec;

use super::batch::BatchError;

/// xerial snappy-java's stream header: magic, version 1, compatible version 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// snappy-java's default block size.
const XERIAL_BLOCK: usize = 32 * 1024;

thread_local! {
    /// zstd contexts are costly to create; one per thread and level.
    static ZSTD: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

/// Compresses `plain` records in `codec` at `level` (gzip and zstd only).
pub fn compress(codec: Codec, level: i32, plain: &[u8]) -> Result<Bytes, BatchError> {
    let err = |why: std::io::Error| BatchError::Compress {
        codec: codec.name(),
        why: why.to_string(),
    };
    let out = match codec {
        Codec::None => plain.to_vec(),
        Codec::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(plain.len() / 2 + 64),
                flate2::Compression::new(level.clamp(0, 9) as u32),
            );
            e.write_all(plain).map_err(err)?;
            e.finish().map_err(err)?
        }
        Codec::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER.len() + plain.len() / 2 + 64);
            out.extend_from_slice(XERIAL_HEADER);
            let mut enc = snap::raw::Encoder::new();
            for block in plain.chunks(XERIAL_BLOCK) {
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                out.resize(at + 4 + snap::raw::max_compress_len(block.len()), 0);
                let n = enc
                    .compress(block, &mut out[at + 4..])
                    .map_err(|e| err(std::io::Error::other(e)))?;
                out.truncate(at + 4 + n);
                out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
            }
            out
        }
        Codec::Lz4 => {
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            let info = FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false);
            let mut e =
                FrameEncoder::with_frame_info(info, Vec::with_capacity(plain.len() / 2 + 64));
            e.write_all(plain).map_err(err)?;
            e.finish().map_err(|e| err(std::io::Error::other(e)))?
        }
        Codec::Zstd => ZSTD.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|(l, _)| *l != level) {
                *slot = Some((level, zstd::bulk::Compressor::new(level).map_err(err)?));
            }
            let (_, c) = slot.as_mut().expect("set above");
            c.compress(plain).map_err(err)
        })?,
    };
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::batch::decompress;

    #[test]
    fn every_codec_round_trips_through_strait_decompression() {
        let plain: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let c = compress(codec, 3, &plain).unwrap();
            assert!(c.len() < plain.len() / 2, "{codec:?} compresses");
            let back = decompress(codec, &c, 1 << 24).unwrap();
            assert_eq!(&back[..], &plain[..], "{codec:?}");
        }
        let xerial = compress(Codec::Snappy, 0, &plain).unwrap();
        assert!(xerial.starts_with(XERIAL_HEADER));
    }
}
