//! A framed connection for Strait's own requests to a broker: one request at
//! a time, typed with kafka-protocol, each answer checked for its
//! correlation id and bounded in size and time.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::codec::guard;
use crate::io::{BoxRead, BoxWrite};

pub struct BrokerConn {
    read: BoxRead,
    write: BoxWrite,
    addr: String,
    client_id: &'static str,
    correlation_id: i32,
    timeout: Duration,
    max_frame_bytes: usize,
    /// When the broker's SASL session ends (KIP-368): no request after it.
    expires: Option<Instant>,
}

impl BrokerConn {
    pub fn new(
        (read, write): (BoxRead, BoxWrite),
        addr: String,
        client_id: &'static str,
        timeout: Duration,
        max_frame_bytes: usize,
    ) -> BrokerConn {
        BrokerConn {
            read,
            write,
            addr,
            client_id,
            correlation_id: 0,
            timeout,
            max_frame_bytes,
            expires: None,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sets when the connection's SASL session ends.
    pub fn set_expiry(&mut self, at: Option<Instant>) {
        self.expires = at;
    }

    /// True once the connection's SASL session is (nearly) over: open a new one.
    pub fn expired(&self) -> bool {
        self.expires.is_some_and(|at| Instant::now() >= at)
    }

    /// Sends `request` at `version` and returns the broker's answer.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> anyhow::Result<R::Response> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let mut out = BytesMut::new();
        out.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(self.client_id)))
            .encode(&mut out, R::header_version(version))?;
        request.encode(&mut out, version)?;
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        let addr = self.addr.clone();
        let max = self.max_frame_bytes;
        let exchange = async {
            self.write.write_all(&out).await?;
            let len = self.read.read_i32().await?;
            if len < 4 || len as usize > max {
                return Err(anyhow!("bad length prefix {len}"));
            }
            let mut body = vec![0u8; len as usize];
            self.read.read_exact(&mut body).await?;
            Ok(Bytes::from(body))
        };
        let mut body = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| anyhow!("api key {} from {addr}: timed out", R::KEY))?
            .with_context(|| format!("api key {} from {addr}", R::KEY))?;
        // Walked before kafka-protocol reads it: a malformed array length
        // would otherwise abort the process (see codec::guard).
        let header_version = R::Response::header_version(version);
        let api = ApiKey::try_from(R::KEY).map_err(|()| anyhow!("unknown api key {}", R::KEY))?;
        let header_len = guard::response_header(header_version, &body).map_err(|e| {
            anyhow!("malformed {api:?} v{version} response header from {addr}: {e}")
        })?;
        guard::response(api, version, &body[header_len..])
            .map_err(|e| anyhow!("malformed {api:?} v{version} response body from {addr}: {e}"))?;
        let header = kafka_protocol::messages::ResponseHeader::decode(&mut body, header_version)
            .with_context(|| format!("response header from {addr}"))?;
        if header.correlation_id != correlation_id {
            return Err(anyhow!(
                "{addr} answered correlation id {} to request {correlation_id}",
                header.correlation_id
            ));
        }
        R::Response::decode(&mut body, version)
            .with_context(|| format!("decoding api key {} v{version} from {addr}", R::KEY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;

    /// A broker whose Metadata answer claims 2^31 - 1 brokers in a few
    /// bytes: the call fails naming the api, version and byte, and nothing
    /// is decoded (the decoder would reserve room for them all and abort).
    #[tokio::test]
    async fn a_malformed_answer_is_refused_before_it_is_decoded() {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(ours);
        let mut conn = BrokerConn::new(
            (Box::new(r), Box::new(w)),
            "broker:9092".into(),
            "strait",
            Duration::from_secs(5),
            1 << 20,
        );
        let broker = tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(theirs);
            let len = r.read_i32().await.unwrap();
            let mut req = vec![0; len as usize];
            r.read_exact(&mut req).await.unwrap();
            // Response header v0 (correlation id 1), then Metadata v1.
            let mut answer = vec![0, 0, 0, 1];
            answer.extend_from_slice(&i32::MAX.to_be_bytes());
            answer.extend_from_slice(&[0; 16]);
            w.write_i32(answer.len() as i32).await.unwrap();
            w.write_all(&answer).await.unwrap();
        });
        let err = conn
            .call(1, &MetadataRequest::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("malformed Metadata v1 response body from broker:9092")
                && err.contains("an array at byte 0 declares 2147483647 elements"),
            "{err}"
        );
        broker.await.unwrap();
    }
}
