//! A walk over a response body before kafka-protocol decodes it. Its array
//! decoder reserves an array's declared length up front, so a broker that
//! sends a malformed length (up to 2^31 elements, in a few bytes) would make
//! the allocator fail, and Rust aborts the whole process on that. Every
//! element of a Kafka array takes at least one byte, so the walk refuses a
//! length above the bytes left, and walks every element, so the decoder only
//! ever reserves room for elements that are really there.
//!
//! The walk mirrors the layouts (per version) of the responses that every
//! connection decodes: ApiVersions, Metadata, FindCoordinator and
//! DescribeCluster. Other kinds are decoded as before (see README, "Slow and
//! hostile peers").

use super::codec::Kind;

/// Where the walk found the body malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the body ends at byte {at} inside a field")]
    Short { at: usize },
    #[error("an array at byte {at} declares {count} elements but only {left} bytes are left")]
    Array { at: usize, count: u64, left: usize },
    #[error("an array at byte {at} declares a negative length ({count})")]
    Negative { at: usize, count: i32 },
    #[error(
        "a tagged field at byte {at} has tag {tag}: tags must ascend and fit an int32 \
         (the decoder would drop or mangle it, and the response would not encode back)"
    )]
    Tag { at: usize, tag: u32 },
}

/// Walks a response body (after the response header) of `kind` at
/// `version`; `Ok` when kafka-protocol can decode it without reserving room
/// for elements that are not there.
pub fn check(kind: Kind, version: i16, body: &[u8]) -> Result<(), Malformed> {
    let v = version;
    match kind {
        Kind::ApiVersions => api_versions(&mut Walk::new(body, v >= 3), v),
        Kind::Metadata => metadata(&mut Walk::new(body, v >= 9), v),
        Kind::FindCoordinator => find_coordinator(&mut Walk::new(body, v >= 3), v),
        Kind::DescribeCluster => describe_cluster(&mut Walk::new(body, true), v),
        _ => Ok(()),
    }
}

struct Walk<'a> {
    buf: &'a [u8],
    at: usize,
    /// Flexible versions: compact lengths and tagged fields.
    flexible: bool,
}

impl<'a> Walk<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Walk<'a> {
        Walk {
            buf,
            at: 0,
            flexible,
        }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.at
    }

    fn skip(&mut self, n: u64) -> Result<(), Malformed> {
        if n > self.left() as u64 {
            return Err(Malformed::Short { at: self.buf.len() });
        }
        self.at += n as usize;
        Ok(())
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let b = self
            .buf
            .get(self.at..self.at + N)
            .ok_or(Malformed::Short { at: self.buf.len() })?;
        self.at += N;
        Ok(b.try_into().expect("N bytes"))
    }

    /// An unsigned varint as kafka-protocol reads it: at most five bytes,
    /// bits past 32 dropped.
    fn varint(&mut self) -> Result<u32, Malformed> {
        let mut value = 0u32;
        for i in 0..5 {
            let [b] = self.bytes::<1>()?;
            value |= u32::from(b & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    fn string(&mut self) -> Result<(), Malformed> {
        let len = if self.flexible {
            u64::from(self.varint()?).saturating_sub(1)
        } else {
            // Null (-1) and, for the decoder to refuse, other negatives.
            u64::try_from(i16::from_be_bytes(self.bytes()?)).unwrap_or(0)
        };
        self.skip(len)
    }

    /// An array; `element` walks one element.
    fn array(
        &mut self,
        mut element: impl FnMut(&mut Walk<'a>) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        let at = self.at;
        let count = if self.flexible {
            // 0 is null; n is n - 1 elements.
            u64::from(self.varint()?).saturating_sub(1)
        } else {
            match i32::from_be_bytes(self.bytes()?) {
                -1 => 0,
                n if n < 0 => return Err(Malformed::Negative { at, count: n }),
                n => n as u64,
            }
        };
        if count > self.left() as u64 {
            return Err(Malformed::Array {
                at,
                count,
                left: self.left(),
            });
        }
        for _ in 0..count {
            element(self)?;
        }
        Ok(())
    }

    fn int32s(&mut self) -> Result<(), Malformed> {
        self.array(|w| w.skip(4))
    }

    /// Tagged fields (flexible versions only); `known` walks the tags the
    /// decoder reads as fields (true when it did), the rest are skipped by
    /// size. Tags ascend, as Kafka writes them (its own reader refuses
    /// others): kafka-protocol keeps unknown tags in a map by signed tag, so
    /// a repeated tag or one past 2^31 - 1 would not encode back as it came.
    fn tags(
        &mut self,
        mut known: impl FnMut(&mut Walk<'a>, u32) -> Result<bool, Malformed>,
    ) -> Result<(), Malformed> {
        if !self.flexible {
            return Ok(());
        }
        let n = self.varint()?;
        let mut previous: Option<u32> = None;
        for _ in 0..n {
            let at = self.at;
            let tag = self.varint()?;
            if tag > i32::MAX as u32 || previous.is_some_and(|p| tag <= p) {
                return Err(Malformed::Tag { at, tag });
            }
            previous = Some(tag);
            let size = self.varint()?;
            if !known(self, tag)? {
                self.skip(u64::from(size))?;
            }
        }
        Ok(())
    }

    fn no_known_tags(&mut self) -> Result<(), Malformed> {
        self.tags(|_, _| Ok(false))
    }
}

fn api_versions(w: &mut Walk, v: i16) -> Result<(), Malformed> {
    w.skip(2)?; // error_code
    w.array(|w| {
        w.skip(6)?; // api_key, min_version, max_version
        w.no_known_tags()
    })?;
    if v >= 1 {
        w.skip(4)?; // throttle_time_ms
    }
    // supported_features (0), finalized_features_epoch (1),
    // finalized_features (2), zk_migration_ready (3).
    w.tags(|w, tag| {
        match tag {
            0 | 2 => w.array(|w| {
                w.string()?;
                w.skip(4)?;
                w.no_known_tags()
            })?,
            1 => w.skip(8)?,
            3 => w.skip(1)?,
            _ => return Ok(false),
        }
        Ok(true)
    })
}

fn metadata(w: &mut Walk, v: i16) -> Result<(), Malformed> {
    if v >= 3 {
        w.skip(4)?; // throttle_time_ms
    }
    w.array(|w| {
        w.skip(4)?; // node_id
        w.string()?; // host
        w.skip(4)?; // port
        if v >= 1 {
            w.string()?; // rack
        }
        w.no_known_tags()
    })?;
    if v >= 2 {
        w.string()?; // cluster_id
    }
    if v >= 1 {
        w.skip(4)?; // controller_id
    }
    w.array(|w| {
        w.skip(2)?; // error_code
        w.string()?; // name
        if v >= 10 {
            w.skip(16)?; // topic_id
        }
        if v >= 1 {
            w.skip(1)?; // is_internal
        }
        w.array(|w| {
            w.skip(10)?; // error_code, partition_index, leader_id
            if v >= 7 {
                w.skip(4)?; // leader_epoch
            }
            w.int32s()?; // replica_nodes
            w.int32s()?; // isr_nodes
            if v >= 5 {
                w.int32s()?; // offline_replicas
            }
            w.no_known_tags()
        })?;
        if v >= 8 {
            w.skip(4)?; // topic_authorized_operations
        }
        w.no_known_tags()
    })?;
    if (8..=10).contains(&v) {
        w.skip(4)?; // cluster_authorized_operations
    }
    if v >= 13 {
        w.skip(2)?; // error_code
    }
    w.no_known_tags()
}

fn find_coordinator(w: &mut Walk, v: i16) -> Result<(), Malformed> {
    if v >= 1 {
        w.skip(4)?; // throttle_time_ms
    }
    if v <= 3 {
        w.skip(2)?; // error_code
        if v >= 1 {
            w.string()?; // error_message
        }
        w.skip(4)?; // node_id
        w.string()?; // host
        w.skip(4)?; // port
    } else {
        w.array(|w| {
            w.string()?; // key
            w.skip(4)?; // node_id
            w.string()?; // host
            w.skip(6)?; // port, error_code
            w.string()?; // error_message
            w.no_known_tags()
        })?;
    }
    w.no_known_tags()
}

fn describe_cluster(w: &mut Walk, v: i16) -> Result<(), Malformed> {
    w.skip(6)?; // throttle_time_ms, error_code
    w.string()?; // error_message
    if v >= 1 {
        w.skip(1)?; // endpoint_type
    }
    w.string()?; // cluster_id
    w.skip(4)?; // controller_id
    w.array(|w| {
        w.skip(4)?; // broker_id
        w.string()?; // host
        w.skip(4)?; // port
        w.string()?; // rack
        if v >= 2 {
            w.skip(1)?; // is_fenced
        }
        w.no_known_tags()
    })?;
    w.skip(4)?; // cluster_authorized_operations
    w.no_known_tags()
}

#[cfg(test)]
mod tests;
