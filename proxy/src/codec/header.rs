//! Request-header peek.

use thiserror::Error;

/// Bytes of a request body needed to read api key, version and correlation id.
pub const PEEK_LEN: usize = 8;

/// Why a frame cannot be forwarded. Each variant closes only its own connection.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("negative length prefix {0}")]
    NegativeLength(i32),
    #[error("length prefix {len} exceeds the configured maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("frame of {len} bytes is too short for a request header")]
    TooShort { len: usize },
    #[error("malformed {what} in request header")]
    Malformed { what: &'static str },
}

/// The fixed start of every request header (v0, v1 and v2 share it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPeek {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl RequestPeek {
    /// Reads the header start from the body of a frame (after the length prefix).
    pub fn parse(body: &[u8], frame_len: usize) -> Result<Option<RequestPeek>, FrameError> {
        if frame_len < PEEK_LEN {
            return Err(FrameError::TooShort { len: frame_len });
        }
        let Some(b) = body.get(..PEEK_LEN) else {
            return Ok(None);
        };
        Ok(Some(RequestPeek {
            api_key: i16::from_be_bytes([b[0], b[1]]),
            api_version: i16::from_be_bytes([b[2], b[3]]),
            correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }))
    }
}

/// Produce requests switched to flexible (compact) encoding, header v2, at v9.
const PRODUCE_FLEXIBLE_FROM: i16 = 9;

/// Reads `acks` from a Produce request body (v3+), without decoding the rest;
/// returns it with its offset in `body` (so it can be patched in place).
///
/// `body` is the frame after the length prefix and may be a prefix of it;
/// `Ok(None)` means more bytes are needed. Layout: header (api key, version,
/// correlation id, client id as int16-length string, tagged fields from v9),
/// then `transactional_id` (nullable string, compact from v9), then `acks`.
pub fn peek_produce_acks(
    body: &[u8],
    version: i16,
    frame_len: usize,
) -> Result<Option<(i16, usize)>, FrameError> {
    let mut r = Reader {
        buf: body,
        pos: PEEK_LEN,
        limit: frame_len,
    };
    let flexible = version >= PRODUCE_FLEXIBLE_FROM;
    // client_id: nullable string with an int16 length in every header version.
    let Some(client_len) = r.i16()? else {
        return Ok(None);
    };
    if client_len < -1 {
        return Err(FrameError::Malformed {
            what: "client id length",
        });
    }
    if client_len > 0 && !r.skip(client_len as usize)? {
        return Ok(None);
    }
    if flexible {
        // Header tagged fields.
        match r.tagged_fields()? {
            Some(()) => {}
            None => return Ok(None),
        }
        // transactional_id: compact nullable string (length + 1, 0 = null).
        let Some(n) = r.uvarint()? else {
            return Ok(None);
        };
        if n > 1 && !r.skip((n - 1) as usize)? {
            return Ok(None);
        }
    } else {
        let Some(n) = r.i16()? else { return Ok(None) };
        if n < -1 {
            return Err(FrameError::Malformed {
                what: "transactional id length",
            });
        }
        if n > 0 && !r.skip(n as usize)? {
            return Ok(None);
        }
    }
    let at = r.pos;
    Ok(r.i16()?.map(|acks| (acks, at)))
}

/// A topic named in a Produce request: by name (v3-12) or by id (v13+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicRef<'a> {
    Name(&'a [u8]),
    Id([u8; 16]),
}

/// Walks the topics of a whole Produce request body (after the length prefix)
/// without decoding or allocating: `f` sees each topic and returns `true` to
/// stop early. The record batches are skipped by their length prefixes.
/// Returns whether `f` stopped the walk.
pub fn scan_produce_topics(
    body: &[u8],
    version: i16,
    mut f: impl FnMut(TopicRef<'_>) -> bool,
) -> Result<bool, FrameError> {
    let flexible = version >= PRODUCE_FLEXIBLE_FROM;
    let mut r = Reader {
        buf: body,
        pos: PEEK_LEN,
        limit: body.len(),
    };
    let incomplete = FrameError::Malformed {
        what: "produce request shorter than its fields",
    };
    let need = |v: Option<()>| {
        v.ok_or(FrameError::Malformed {
            what: "produce request shorter than its fields",
        })
    };
    // Header: client id, then tagged fields (v9+).
    let n = r.i16()?.ok_or(incomplete.clone())?;
    if n > 0 {
        need(r.skip(n as usize)?.then_some(()))?;
    }
    if flexible {
        need(r.tagged_fields()?)?;
        // transactional_id (compact nullable string)
        let n = r.uvarint()?.ok_or(incomplete.clone())?;
        if n > 1 {
            need(r.skip(n as usize - 1)?.then_some(()))?;
        }
    } else {
        let n = r.i16()?.ok_or(incomplete.clone())?;
        if n > 0 {
            need(r.skip(n as usize)?.then_some(()))?;
        }
    }
    // acks (2) + timeout (4)
    need(r.skip(6)?.then_some(()))?;
    let topics = r.array_len(flexible)?.ok_or(incomplete.clone())?;
    for _ in 0..topics {
        let topic = if version >= 13 {
            let id = r.take(16)?.ok_or(incomplete.clone())?;
            TopicRef::Id(id.try_into().expect("16 bytes"))
        } else {
            let len = if flexible {
                (r.uvarint()?.ok_or(incomplete.clone())? as usize).saturating_sub(1)
            } else {
                let n = r.i16()?.ok_or(incomplete.clone())?;
                if n < 0 {
                    return Err(FrameError::Malformed {
                        what: "topic name length",
                    });
                }
                n as usize
            };
            TopicRef::Name(r.take(len)?.ok_or(incomplete.clone())?)
        };
        if f(topic) {
            return Ok(true);
        }
        let partitions = r.array_len(flexible)?.ok_or(incomplete.clone())?;
        for _ in 0..partitions {
            need(r.skip(4)?.then_some(()))?; // index
            let len = if flexible {
                (r.uvarint()?.ok_or(incomplete.clone())? as usize).saturating_sub(1)
            } else {
                let n = r.i32()?.ok_or(incomplete.clone())?;
                n.max(0) as usize
            };
            need(r.skip(len)?.then_some(()))?;
            if flexible {
                need(r.tagged_fields()?)?;
            }
        }
        if flexible {
            need(r.tagged_fields()?)?;
        }
    }
    Ok(false)
}

/// A bounds-checked cursor: `buf` holds what has arrived, `limit` is the
/// frame's true length; reading past `limit` is malformed, past `buf` is "wait".
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    limit: usize,
}

impl Reader<'_> {
    fn need(&self, n: usize) -> Result<bool, FrameError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(FrameError::Malformed { what: "length" })?;
        if end > self.limit {
            return Err(FrameError::Malformed {
                what: "field past end of frame",
            });
        }
        Ok(end <= self.buf.len())
    }

    fn skip(&mut self, n: usize) -> Result<bool, FrameError> {
        if !self.need(n)? {
            return Ok(false);
        }
        self.pos += n;
        Ok(true)
    }

    fn i16(&mut self) -> Result<Option<i16>, FrameError> {
        if !self.need(2)? {
            return Ok(None);
        }
        let v = i16::from_be_bytes([self.buf[self.pos], self.buf[self.pos + 1]]);
        self.pos += 2;
        Ok(Some(v))
    }

    fn take(&mut self, n: usize) -> Result<Option<&[u8]>, FrameError> {
        if !self.need(n)? {
            return Ok(None);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(Some(s))
    }

    fn i32(&mut self) -> Result<Option<i32>, FrameError> {
        Ok(self
            .take(4)?
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes"))))
    }

    /// An array length: int32 (classic) or unsigned varint N+1 (compact).
    fn array_len(&mut self, compact: bool) -> Result<Option<usize>, FrameError> {
        if compact {
            Ok(self.uvarint()?.map(|n| n.saturating_sub(1) as usize))
        } else {
            Ok(self.i32()?.map(|n| n.max(0) as usize))
        }
    }

    fn uvarint(&mut self) -> Result<Option<u32>, FrameError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            if !self.need(1)? {
                return Ok(None);
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(FrameError::Malformed { what: "varint" })
    }

    fn tagged_fields(&mut self) -> Result<Option<()>, FrameError> {
        let Some(count) = self.uvarint()? else {
            return Ok(None);
        };
        for _ in 0..count {
            if self.uvarint()?.is_none() {
                return Ok(None);
            }
            let Some(size) = self.uvarint()? else {
                return Ok(None);
            };
            if !self.skip(size as usize)? {
                return Ok(None);
            }
        }
        Ok(Some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{ProduceRequest, RequestHeader, TransactionalId};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn produce_body(version: i16, acks: i16, txn: Option<&str>) -> Vec<u8> {
        let header_version = if version >= 9 { 2 } else { 1 };
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(0)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("client-1")))
            .encode(&mut buf, header_version)
            .unwrap();
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(1000)
            .with_transactional_id(txn.map(|t| TransactionalId(StrBytes::from_string(t.into()))))
            .encode(&mut buf, version)
            .unwrap();
        buf.to_vec()
    }

    #[test]
    fn reads_acks_in_every_version() {
        for version in 3..=13 {
            for (acks, txn) in [(0, None), (1, Some("tx-1")), (-1, Some(""))] {
                let body = produce_body(version, acks, txn);
                let got = peek_produce_acks(&body, version, body.len()).unwrap();
                assert_eq!(got.map(|g| g.0), Some(acks), "v{version} txn={txn:?}");
                let at = got.unwrap().1;
                assert_eq!(i16::from_be_bytes([body[at], body[at + 1]]), acks);
                let peek = RequestPeek::parse(&body, body.len()).unwrap().unwrap();
                assert_eq!(
                    (peek.api_key, peek.api_version, peek.correlation_id),
                    (0, version, 42)
                );
            }
        }
    }

    #[test]
    fn partial_input_asks_for_more() {
        let body = produce_body(9, -1, Some("transactional"));
        let full = peek_produce_acks(&body, 9, body.len()).unwrap();
        assert_eq!(full.map(|f| f.0), Some(-1));
        let acks_at = (1..body.len())
            .find(|&n| {
                peek_produce_acks(&body[..n], 9, body.len())
                    .unwrap()
                    .is_some()
            })
            .unwrap();
        for n in 0..acks_at {
            assert_eq!(
                peek_produce_acks(&body[..n], 9, body.len()),
                Ok(None),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn lengths_past_the_frame_are_malformed() {
        let mut body = produce_body(3, 1, None);
        // client id length claims 30000 bytes in a tiny frame.
        body[8] = 0x75;
        body[9] = 0x30;
        let err = peek_produce_acks(&body, 3, body.len()).unwrap_err();
        assert!(matches!(err, FrameError::Malformed { .. }), "{err}");
    }

    #[test]
    fn scans_topics_in_every_version() {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::TopicName;
        for version in 3..=13 {
            let header_version = if version >= 9 { 2 } else { 1 };
            let mut buf = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(0)
                .with_request_api_version(version)
                .with_client_id(Some(StrBytes::from_static_str("c")))
                .encode(&mut buf, header_version)
                .unwrap();
            let topic = |name: &'static str, id: u8| {
                let mut t = TopicProduceData::default().with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(bytes::Bytes::from_static(b"records-0"))),
                    PartitionProduceData::default()
                        .with_index(1)
                        .with_records(None),
                ]);
                if version >= 13 {
                    t.topic_id = uuid::Uuid::from_bytes([id; 16]);
                } else {
                    t.name = TopicName(StrBytes::from_static_str(name));
                }
                t
            };
            ProduceRequest::default()
                .with_acks(-1)
                .with_topic_data(vec![topic("alpha", 1), topic("beta", 2)])
                .encode(&mut buf, version)
                .unwrap();
            let mut seen = Vec::new();
            let stopped = scan_produce_topics(&buf, version, |t| {
                seen.push(match t {
                    TopicRef::Name(n) => String::from_utf8(n.to_vec()).unwrap(),
                    TopicRef::Id(id) => format!("id{}", id[0]),
                });
                false
            })
            .unwrap();
            assert!(!stopped);
            let want = if version >= 13 {
                ["id1", "id2"]
            } else {
                ["alpha", "beta"]
            };
            assert_eq!(seen, want, "v{version}");
            assert!(scan_produce_topics(&buf, version, |_| true).unwrap());
            assert!(
                scan_produce_topics(&buf[..buf.len() - 3], version, |_| false).is_err(),
                "v{version} truncated"
            );
        }
    }

    #[test]
    fn short_frames_are_rejected() {
        assert_eq!(
            RequestPeek::parse(&[0; 4], 4),
            Err(FrameError::TooShort { len: 4 })
        );
        assert_eq!(
            super::super::frame_len(&(-5i32).to_be_bytes(), 100),
            Err(FrameError::NegativeLength(-5))
        );
        assert_eq!(
            super::super::frame_len(&1000i32.to_be_bytes(), 100),
            Err(FrameError::TooLarge {
                len: 1000,
                max: 100
            })
        );
        assert_eq!(super::super::frame_len(&[0, 0], 100), Ok(None));
    }
}
