//! A raw Kafka wire client: encodes requests with kafka-protocol, sends them on
//! a plain socket, and returns response frames as bytes, for tests that check
//! exactly what a client receives.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub struct Wire {
    pub stream: TcpStream,
    next_id: i32,
}

impl Wire {
    pub fn connect(addr: &str) -> Wire {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Wire { stream, next_id: 1 }
    }

    /// Encodes a full request frame (length prefix included).
    pub fn frame<T: Encodable>(key: ApiKey, version: i16, correlation_id: i32, body: &T) -> Bytes {
        Wire::frame_from("strait-wire-test", key, version, correlation_id, body)
    }

    /// [`Wire::frame`] with the given client id.
    pub fn frame_from<T: Encodable>(
        client_id: &str,
        key: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &T,
    ) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(client_id.to_string())))
            .encode(&mut b, key.request_header_version(version))
            .unwrap();
        body.encode(&mut b, version).unwrap();
        let len = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&len.to_be_bytes());
        b.freeze()
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one response frame (without its length prefix), or an I/O error
    /// (for example when the proxy closed the connection).
    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    /// Sends a request and returns the raw response frame, checking the correlation id.
    pub fn call_raw<T: Encodable>(&mut self, key: ApiKey, version: i16, body: &T) -> Bytes {
        let id = self.next_id;
        self.next_id += 1;
        let frame = Wire::frame(key, version, id, body);
        self.send_raw(&frame);
        let resp = self
            .read_frame()
            .unwrap_or_else(|e| panic!("{key:?} v{version}: no response: {e}"));
        let got = i32::from_be_bytes(resp[..4].try_into().unwrap());
        assert_eq!(got, id, "{key:?} v{version}: correlation id");
        resp
    }

    /// Sends a request and decodes the response.
    pub fn call<T: Encodable, R: Decodable>(&mut self, key: ApiKey, version: i16, body: &T) -> R {
        decode(key, version, self.call_raw(key, version, body))
    }

    /// What has arrived, without blocking and without consuming it: `None`
    /// when no byte is readable yet, `Some(0)` when the peer closed the
    /// connection, `Some(n)` when at least `n` bytes are waiting.
    pub fn peek_ready(&mut self) -> std::io::Result<Option<usize>> {
        self.stream.set_nonblocking(true)?;
        let mut b = [0u8; 64];
        let got = match self.stream.peek(&mut b) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        };
        self.stream.set_nonblocking(false)?;
        got
    }

    /// True when the peer has closed the connection (read returns EOF or reset).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}

/// Decodes a raw response frame (without its length prefix).
pub fn decode<R: Decodable>(key: ApiKey, version: i16, mut resp: Bytes) -> R {
    ResponseHeader::decode(&mut resp, key.response_header_version(version)).unwrap();
    R::decode(&mut resp, version).unwrap_or_else(|e| panic!("decode {key:?} v{version}: {e}"))
}

/// An ApiVersions request valid in every version (v3+ needs a software name).
pub fn api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("strait-tests"))
        .with_client_software_version(StrBytes::from_static_str("1"))
}

/// Record `offset` of a batch from a producer without an id. The encoder
/// starts a new batch whenever offset - sequence changes: it is kept
/// constant, with base sequence -1.
fn plain_record(offset: i64, timestamp: i64, key: Bytes, value: Bytes) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: offset as i32 - 1,
        timestamp,
        key: Some(key),
        value: Some(value),
        headers: IndexMap::new(),
    }
}

/// One uncompressed magic-2 batch of `records`.
fn encode_plain(records: &[Record]) -> BytesMut {
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    batch
}

/// The first partition's error code and message in a Produce response.
pub fn partition_error(resp: &ProduceResponse) -> (i16, String) {
    let p = &resp.responses[0].partition_responses[0];
    (
        p.error_code,
        p.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// A Produce request with one uncompressed record for partition 0.
pub fn produce_request(topic: &str, acks: i16, value: &'static [u8]) -> ProduceRequest {
    produce_request_to(topic, 0, acks, value)
}

/// A Produce request with one uncompressed record for partition `partition`.
pub fn produce_request_to(
    topic: &str,
    partition: i32,
    acks: i16,
    value: &'static [u8],
) -> ProduceRequest {
    let record = plain_record(0, 0, Bytes::from_static(b"k"), Bytes::from_static(value));
    let batch = encode_plain(&[record]);
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch.freeze()))])])
}

/// One uncompressed magic-2 record batch (CRC-32C computed by kafka-protocol's
/// encoder) holding ~`bytes` of record values, `value_len` bytes each, made of
/// pseudo-random words from a 4096-word vocabulary: compressible (gzip gets
/// it to about half) but not trivially, so a compressor works for it.
/// Deterministic; no producer id. Returns the batch and its record count.
pub fn word_batch(bytes: usize, value_len: usize) -> (Bytes, usize) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let vocab: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            let len = 3 + (next() % 8) as usize;
            (0..len).map(|_| b'a' + (next() % 26) as u8).collect()
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut records = Vec::new();
    let mut total = 0;
    while total < bytes {
        let mut value = Vec::with_capacity(value_len + 16);
        while value.len() < value_len {
            value.extend_from_slice(&vocab[(next() % vocab.len() as u64) as usize]);
            value.push(b' ');
        }
        value.truncate(value_len);
        total += value.len();
        let i = records.len();
        records.push(plain_record(
            i as i64,
            now,
            Bytes::from(format!("key-{i}")),
            Bytes::from(value),
        ));
    }
    let batch = encode_plain(&records);
    let field = |at: usize| i32::from_be_bytes(batch[at..at + 4].try_into().unwrap());
    assert_eq!(batch[16], 2, "magic 2");
    assert_eq!(field(8) as usize, batch.len() - 12, "one batch");
    assert_eq!(field(57) as usize, records.len(), "every record in it");
    assert_eq!(field(53), -1, "base sequence of a producer without an id");
    (batch.freeze(), records.len())
}

/// A Produce request carrying `batch` for partition 0 of `topic`.
pub fn produce_request_with_batch(topic: &str, acks: i16, batch: Bytes) -> ProduceRequest {
    let mut req = produce_request(topic, acks, b"");
    req.timeout_ms = 120_000;
    req.topic_data[0].partition_data[0].records = Some(batch);
    req
}
