//! The load generator's connection: requests written back to back, up to a
//! window in flight, answers read in order (a broker answers a connection's
//! requests in the order they came) and timed from the request's write.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use strait_proxy::codec::guard;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The client id the bench's requests carry.
const CLIENT_ID: &str = "strait-bench";
/// Largest answer read (a fetch answer is bounded by its request's limits).
const MAX_ANSWER: usize = 256 << 20;
/// No answer for this long is an error.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Pipe {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
    addr: String,
    correlation_id: i32,
    /// (correlation id, version, written at) of requests not yet answered.
    in_flight: VecDeque<(i32, i16, Instant)>,
    api: ApiKey,
}

impl Pipe {
    /// A connection carrying requests of `api` (one api per pipe).
    pub async fn connect(addr: &str, api: ApiKey) -> anyhow::Result<Pipe> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).ok();
        let (read, write) = stream.into_split();
        Ok(Pipe {
            read: BufReader::with_capacity(256 << 10, read),
            write,
            addr: addr.to_string(),
            correlation_id: 0,
            in_flight: VecDeque::new(),
            api,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Writes `request` at `version` without waiting for its answer.
    pub async fn send<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<()> {
        debug_assert_eq!(R::KEY, self.api as i16);
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let mut out = BytesMut::with_capacity(1024);
        out.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)))
            .encode(&mut out, R::header_version(version))?;
        request.encode(&mut out, version)?;
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        self.write
            .write_all(&out)
            .await
            .with_context(|| format!("writing to {}", self.addr))?;
        self.in_flight
            .push_back((self.correlation_id, version, Instant::now()));
        Ok(())
    }

    /// The last request written gets no answer (a produce with acks = 0).
    pub fn expect_no_answer(&mut self) {
        self.in_flight.pop_back();
    }

    /// Reads the oldest request's answer: decoded, with the time since its
    /// request was written.
    pub async fn recv<R: Request>(&mut self) -> anyhow::Result<(R::Response, Duration)> {
        let Some((correlation_id, version, sent)) = self.in_flight.pop_front() else {
            bail!("no request in flight to {}", self.addr);
        };
        let addr = self.addr.clone();
        let read = async {
            let len = self.read.read_i32().await?;
            if len < 4 || len as usize > MAX_ANSWER {
                bail!("bad length prefix {len}");
            }
            let mut body = vec![0u8; len as usize];
            self.read.read_exact(&mut body).await?;
            Ok(Bytes::from(body))
        };
        let mut body = tokio::time::timeout(ANSWER_TIMEOUT, read)
            .await
            .map_err(|_| anyhow!("{:?} answer from {addr}: timed out", self.api))?
            .with_context(|| format!("{:?} answer from {addr}", self.api))?;
        let took = sent.elapsed();
        // Walked before kafka-protocol reads it (a malformed array length
        // would abort the process: see codec::guard).
        let header_version = R::Response::header_version(version);
        let header_len = guard::response_header(header_version, &body)
            .map_err(|e| anyhow!("malformed answer header from {addr}: {e}"))?;
        guard::response(self.api, version, &body[header_len..])
            .map_err(|e| anyhow!("malformed {:?} answer from {addr}: {e}", self.api))?;
        let header = ResponseHeader::decode(&mut body, header_version)?;
        if header.correlation_id != correlation_id {
            bail!(
                "{addr} answered correlation id {} to request {correlation_id}",
                header.correlation_id
            );
        }
        let answer = R::Response::decode(&mut body, version)
            .with_context(|| format!("decoding a {:?} answer from {addr}", self.api))?;
        Ok((answer, took))
    }

    /// One request and its answer.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> anyhow::Result<R::Response> {
        self.send(version, request).await?;
        Ok(self.recv::<R>().await?.0)
    }
}
