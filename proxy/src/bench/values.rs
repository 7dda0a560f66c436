//! The records the bench produces: batches built once before a run and
//! sent again and again (so building them costs the run nothing), with the
//! keys and values the options ask for.

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use rand::{Rng, RngCore, SeedableRng};
use strait_proxy::codec::build::{build_batch, Producer, RecordSpec};
use strait_proxy::codec::compression::{compress, Compression};

/// Distinct batches built per run: enough that values differ between
/// neighbouring batches, few enough to build in a moment.
const POOL: usize = 32;
/// A record batch's header length (the records section starts after it).
const HEADER: usize = 61;

/// The value bytes the options describe, one per record of a batch.
pub fn values(
    kind: &str,
    size: usize,
    count: usize,
    rng: &mut impl RngCore,
) -> anyhow::Result<Vec<Vec<u8>>> {
    match kind {
        "random" => Ok((0..count)
            .map(|_| {
                let mut v = vec![0u8; size];
                rng.fill_bytes(&mut v);
                v
            })
            .collect()),
        "repetitive" => {
            let text = b"strait bench: a repetitive value that compresses well. ";
            Ok((0..count)
                .map(|i| {
                    text.iter()
                        .cycle()
                        .skip(i % text.len())
                        .take(size)
                        .copied()
                        .collect()
                })
                .collect())
        }
        other => {
            let path = other.strip_prefix("file:").unwrap_or(other);
            let sample = std::fs::read(path).with_context(|| format!("--value file {path}"))?;
            if sample.is_empty() {
                bail!("--value file {path} is empty");
            }
            Ok((0..count)
                .map(|i| {
                    sample
                        .iter()
                        .cycle()
                        .skip((i * size) % sample.len())
                        .take(size)
                        .copied()
                        .collect()
                })
                .collect())
        }
    }
}

/// The batches a run sends: [`POOL`] batches of `per_batch` records,
/// compressed with `codec`. Keys (when `keys` > 0) are `key-N`, N uniform
/// in 0..keys.
pub fn pool(
    kind: &str,
    size: usize,
    per_batch: usize,
    keys: u64,
    codec: Compression,
) -> anyhow::Result<Vec<Bytes>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0571_7a17);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut out = Vec::with_capacity(POOL);
    for _ in 0..POOL {
        let values = values(kind, size, per_batch, &mut rng)?;
        let keys: Vec<Option<Vec<u8>>> = (0..per_batch)
            .map(|_| (keys > 0).then(|| format!("key-{}", rng.random_range(0..keys)).into_bytes()))
            .collect();
        let specs: Vec<RecordSpec<'_>> = values
            .iter()
            .zip(&keys)
            .map(|(v, k)| (k.as_deref(), Some(&v[..]), &[][..]))
            .collect();
        let plain = build_batch(Producer::NONE, now, &specs);
        out.push(sealed(plain, codec)?);
    }
    Ok(out)
}

/// `plain` (an uncompressed batch) with its records section compressed.
fn sealed(plain: Bytes, codec: Compression) -> anyhow::Result<Bytes> {
    if codec == Compression::None {
        return Ok(plain);
    }
    let packed = compress(codec, codec.default_level(), &plain[HEADER..])?;
    let mut out = BytesMut::with_capacity(HEADER + packed.len());
    out.put_slice(&plain[..HEADER]);
    out.put_slice(&packed);
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let attributes = i16::from_be_bytes([out[21], out[22]]) | codec.id();
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    reseal_crc(&mut out);
    Ok(out.freeze())
}

/// `batch` as idempotent producer `id`/`epoch`'s batch at `sequence`.
pub fn with_sequence(batch: &Bytes, id: i64, epoch: i16, sequence: i32) -> Bytes {
    let mut out = BytesMut::from(&batch[..]);
    out[43..51].copy_from_slice(&id.to_be_bytes());
    out[51..53].copy_from_slice(&epoch.to_be_bytes());
    out[53..57].copy_from_slice(&sequence.to_be_bytes());
    reseal_crc(&mut out);
    out.freeze()
}

/// Renews a batch's CRC-32C (over everything after the CRC field).
fn reseal_crc(batch: &mut BytesMut) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_proxy::codec::batch::Batches;

    #[test]
    fn pooled_batches_are_valid_in_every_codec_and_sequence() {
        for codec in [
            Compression::None,
            Compression::Zstd,
            Compression::Lz4,
            Compression::Gzip,
            Compression::Snappy,
        ] {
            let pool = pool("repetitive", 100, 8, 5, codec).unwrap();
            assert_eq!(pool.len(), POOL);
            let b = with_sequence(&pool[0], 42, 3, 800);
            let batch = Batches::new(b).next().unwrap().unwrap();
            assert_eq!(batch.compression(), codec);
            assert_eq!(batch.record_count(), 8);
            assert_eq!(
                (
                    batch.producer_id(),
                    batch.producer_epoch(),
                    batch.base_sequence()
                ),
                (42, 3, 800)
            );
            assert_eq!(batch.stated_crc(), crc32c::crc32c(&batch.raw()[21..]));
            let records = batch.record_bytes(1 << 20).unwrap();
            assert!(records.len() >= 8 * 100, "{codec:?}");
        }
    }

    #[test]
    fn a_missing_sample_file_is_a_clear_error() {
        let e = pool("file:/nonexistent/sample", 10, 2, 0, Compression::None).unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/sample"), "{e:#}");
    }
}
