//! Record-batch compression as Kafka clients do it, so the Java client and
//! librdkafka read what Strait writes: gzip; snappy in xerial framing (what
//! the Java client writes; librdkafka reads it too); lz4 frames with
//! independent 64 KiB blocks and no checksums (KafkaLZ4BlockOutputStream's
//! layout); zstd frames. Decompression reads every framing clients write and
//! is capped, so a small hostile batch cannot inflate without bound.
//!
//! [`Compression`] is the wire's codec id (batch attributes bits 0-2); the
//! policy files' `codec` names map onto it in the compression stage.

use std::cell::RefCell;
use std::io::{Read, Write};

use bytes::Bytes;

use super::batch::BatchError;

/// A record batch's compression codec, as its attributes carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// From the low three bits of a record batch's attributes.
    pub fn from_attributes(attributes: i16) -> Option<Compression> {
        match attributes & 0x07 {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The codec's id in a record batch's attributes.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The level a batch is re-sealed at when no policy names one (the Java
    /// client's defaults; snappy and lz4 have no level).
    pub fn default_level(self) -> i32 {
        match self {
            Compression::Gzip => 6,
            Compression::Zstd => 3,
            _ => 0,
        }
    }
}

/// xerial snappy-java's stream header: magic, version 1, compatible version 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// snappy-java's default block size.
const XERIAL_BLOCK: usize = 32 * 1024;

thread_local! {
    /// zstd contexts are costly to create; one per thread and level.
    static ZSTD: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

/// Compresses `plain` records in `codec` at `level` (gzip and zstd only).
pub fn compress(codec: Compression, level: i32, plain: &[u8]) -> Result<Bytes, BatchError> {
    let err = |why: std::io::Error| BatchError::Compress {
        codec: codec.name(),
        why: why.to_string(),
    };
    let out = match codec {
        Compression::None => plain.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(plain.len() / 2 + 64),
                flate2::Compression::new(level.clamp(0, 9) as u32),
            );
            e.write_all(plain).map_err(err)?;
            e.finish().map_err(err)?
        }
        Compression::Snappy => {
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
        Compression::Lz4 => {
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
        Compression::Zstd => ZSTD.with(|cell| {
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

/// A records section in `codec`, decompressed (up to `cap` bytes).
pub fn decompress(codec: Compression, data: &Bytes, cap: usize) -> Result<Bytes, BatchError> {
    let compressed = &data[..];
    let limited = |r: &mut dyn Read, codec: &'static str| -> Result<Bytes, BatchError> {
        let mut out = Vec::new();
        r.take(cap as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| BatchError::Decompress {
                codec,
                why: e.to_string(),
            })?;
        if out.len() > cap {
            return Err(BatchError::TooLarge(cap));
        }
        Ok(Bytes::from(out))
    };
    match codec {
        Compression::None => Ok(data.clone()),
        Compression::Gzip => limited(&mut flate2::read::MultiGzDecoder::new(compressed), "gzip"),
        Compression::Lz4 => limited(&mut lz4_flex::frame::FrameDecoder::new(compressed), "lz4"),
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(compressed).map_err(|e| {
                BatchError::Decompress {
                    codec: "zstd",
                    why: e.to_string(),
                }
            })?;
            limited(&mut d, "zstd")
        }
        Compression::Snappy => snappy(compressed, cap),
    }
}

/// Snappy as Java writes it (xerial framing: a 16-byte header, then
/// length-prefixed raw blocks) or as librdkafka writes it (one raw block).
fn snappy(data: &[u8], cap: usize) -> Result<Bytes, BatchError> {
    const XERIAL: &[u8] = b"\x82SNAPPY\x00";
    let err = |why: String| BatchError::Decompress {
        codec: "snappy",
        why,
    };
    let mut out = Vec::new();
    let block = |raw: &[u8], out: &mut Vec<u8>| -> Result<(), BatchError> {
        let n = snap::raw::decompress_len(raw).map_err(|e| err(e.to_string()))?;
        if out.len() + n > cap {
            return Err(BatchError::TooLarge(cap));
        }
        let start = out.len();
        out.resize(start + n, 0);
        snap::raw::Decoder::new()
            .decompress(raw, &mut out[start..])
            .map_err(|e| err(e.to_string()))?;
        Ok(())
    };
    if data.starts_with(XERIAL) {
        let mut rest = data
            .get(16..)
            .ok_or_else(|| err("xerial header truncated".into()))?;
        while !rest.is_empty() {
            let len = rest
                .get(..4)
                .ok_or_else(|| err("xerial block length truncated".into()))?;
            let len = u32::from_be_bytes(len.try_into().expect("4")) as usize;
            let raw = rest
                .get(4..4 + len)
                .ok_or_else(|| err("xerial block truncated".into()))?;
            block(raw, &mut out)?;
            rest = &rest[4 + len..];
        }
    } else {
        block(data, &mut out)?;
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_through_strait_decompression() {
        let plain: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let c = compress(codec, 3, &plain).unwrap();
            assert!(c.len() < plain.len() / 2, "{codec:?} compresses");
            let back = decompress(codec, &c, 1 << 24).unwrap();
            assert_eq!(&back[..], &plain[..], "{codec:?}");
        }
        let xerial = compress(Compression::Snappy, 0, &plain).unwrap();
        assert!(xerial.starts_with(XERIAL_HEADER));
    }
}
