//! The two pumps of a proxied connection. Each reads into one reusable buffer,
//! peeks frame headers in place, and forwards whole runs of passthrough bytes
//! with one write; a frame is buffered whole only when its response must be
//! rewritten. A 50 MB fetch response thus costs one buffer, not 50 MB.

use std::time::Instant;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{BoxRead, BoxWrite, ConnError};
use crate::codec::{frame_len, peek_produce_acks, RequestPeek};
use crate::metrics;
use crate::policy::enforce::{self, ConnState, Outcome, Patch};
use crate::routing::rewrite::{classify, Rewrite};
use crate::server::Shared;

/// The request header Strait keeps for every request awaiting a response.
#[derive(Debug)]
pub struct InFlight {
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    pub rewrite: Option<Rewrite>,
    /// Policy rejections to merge into the response.
    pub patch: Option<Box<Patch>>,
    pub sent: Instant,
}

/// First read size of a new connection: idle connections stay small.
const INITIAL_READ: usize = 4096;

/// A read buffer that starts small and doubles (up to `max`) while reads keep
/// filling it, so an idle connection costs a few KiB and a busy one reads in
/// large chunks with few syscalls.
struct ReadBuf {
    buf: BytesMut,
    chunk: usize,
    max: usize,
}

impl ReadBuf {
    fn new(max: usize) -> ReadBuf {
        let chunk = INITIAL_READ.min(max);
        ReadBuf {
            buf: BytesMut::with_capacity(chunk),
            chunk,
            max,
        }
    }

    /// Reads once; returns the number of bytes read (0 at end of stream).
    async fn fill(&mut self, from: &mut BoxRead) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < self.chunk / 2 {
            self.buf.reserve(self.chunk);
        }
        let spare = self.buf.capacity() - self.buf.len();
        let n = from.read_buf(&mut self.buf).await?;
        if n == spare && self.chunk < self.max {
            self.chunk = (self.chunk * 2).min(self.max);
        }
        Ok(n)
    }
}

/// Steps over buffered bytes of a passthrough frame; true once the frame is
/// fully stepped over (the next byte starts a frame).
fn step_over(rem: &mut usize, pos: &mut usize, buffered: usize) -> bool {
    let n = (*rem).min(buffered - *pos);
    *pos += n;
    *rem -= n;
    *rem == 0
}

/// Writes the first `pos` buffered bytes out in one write and drops them.
async fn forward(out: &mut BoxWrite, buf: &mut BytesMut, pos: usize) -> std::io::Result<()> {
    if pos > 0 {
        out.write_all(&buf[..pos]).await?;
        buf.advance(pos);
    }
    Ok(())
}

/// Counts a request and, when it expects a response, queues its header for
/// the response side (with the rewrite a policy patch needs). False once the
/// response side has ended (it reports why).
async fn admit(
    in_flight: &mpsc::Sender<InFlight>,
    peek: RequestPeek,
    bytes: usize,
    expects_response: bool,
    rewrite: Option<Rewrite>,
    patch: Option<Patch>,
) -> bool {
    let m = metrics::api(peek.api_key);
    m.requests.increment(1);
    m.request_bytes.increment(bytes as u64);
    if !expects_response {
        return true;
    }
    let rewrite = match patch {
        Some(_) => rewrite.or(Rewrite::for_patch(peek.api_key)),
        None => rewrite,
    };
    let entry = InFlight {
        correlation_id: peek.correlation_id,
        api_key: peek.api_key,
        api_version: peek.api_version,
        rewrite,
        patch: patch.map(Box::new),
        sent: Instant::now(),
    };
    in_flight.send(entry).await.is_ok()
}

/// Client → broker. Returns `Ok(())` when the client closes between frames.
pub async fn requests(
    shared: &Shared,
    mut client: BoxRead,
    mut upstream: BoxWrite,
    in_flight: mpsc::Sender<InFlight>,
) -> Result<(), ConnError> {
    let max = shared.limits.max_frame_bytes;
    let mut rb = ReadBuf::new(shared.limits.buffer_bytes);
    // Bytes of the current frame still to forward; 0 at a frame boundary.
    let mut rem = 0usize;
    let mut state = ConnState::default();
    loop {
        let buf = &mut rb.buf;
        let mut pos = 0;
        loop {
            if rem > 0 {
                if !step_over(&mut rem, &mut pos, buf.len()) {
                    break;
                }
                continue;
            }
            let avail = &buf[pos..];
            let Some(len) = frame_len(avail, max).map_err(ConnError::ClientFrame)? else {
                break;
            };
            let body = &avail[4..];
            let Some(peek) = RequestPeek::parse(body, len).map_err(ConnError::ClientFrame)? else {
                break;
            };
            let rewrite =
                classify(peek.api_key, peek.api_version).map_err(ConnError::Unsupported)?;
            let mut expects_response = true;
            let mut acks_at = 0;
            if peek.api_key == 0 {
                match peek_produce_acks(body, peek.api_version, len)
                    .map_err(ConnError::ClientFrame)?
                {
                    None => break,
                    Some((acks, at)) => {
                        expects_response = acks != 0;
                        acks_at = 4 + at;
                    }
                }
            }
            let policies = shared.policies.get();
            if enforce::inspects(&policies, peek.api_key) {
                // Policies decide on the whole request: buffer it (bounded by max_frame_bytes).
                if avail.len() < 4 + len {
                    let missing = 4 + len - avail.len();
                    buf.reserve(missing);
                    break;
                }
                forward(&mut upstream, buf, pos)
                    .await
                    .map_err(ConnError::UpstreamIo)?;
                pos = 0;
                let frame = buf.split_to(4 + len).freeze();
                let outcome = match peek.api_key {
                    0 => enforce::produce(
                        &policies,
                        shared,
                        peek.api_version,
                        acks_at,
                        shared.limits.max_decompressed_bytes,
                        frame,
                    ),
                    1 => enforce::fetch(&policies, shared, &mut state, peek.api_version, frame),
                    key => enforce::admin(&policies, shared, key, peek.api_version, frame),
                }
                .map_err(ConnError::Enforce)?;
                let (frame, patch) = match outcome {
                    Outcome::Close(reason) => return Err(ConnError::PolicyClose(reason)),
                    Outcome::Forward { frame, patch } => (frame, patch),
                };
                // Request bytes count what the client sent, before any rewrite.
                if !admit(&in_flight, peek, 4 + len, expects_response, rewrite, patch).await {
                    return Ok(());
                }
                upstream
                    .write_all(&frame)
                    .await
                    .map_err(ConnError::UpstreamIo)?;
                continue;
            }
            if !admit(&in_flight, peek, 4 + len, expects_response, rewrite, None).await {
                return Ok(()); // the response side has ended and reported why
            }
            rem = 4 + len;
        }
        forward(&mut upstream, buf, pos)
            .await
            .map_err(ConnError::UpstreamIo)?;
        let n = rb.fill(&mut client).await.map_err(ConnError::ClientIo)?;
        let buf = &rb.buf;
        if n == 0 {
            if rem == 0 && buf.is_empty() {
                return Ok(());
            }
            return Err(ConnError::ClientClosedMidRequest {
                buffered: buf.len(),
                remaining: rem,
            });
        }
    }
}

/// Broker → client. Matches every response to its request by correlation id.
pub async fn responses(
    shared: &Shared,
    mut upstream: BoxRead,
    mut client: BoxWrite,
    mut in_flight: mpsc::Receiver<InFlight>,
) -> Result<(), ConnError> {
    let max = shared.limits.max_frame_bytes;
    let mut rb = ReadBuf::new(shared.limits.buffer_bytes);
    let mut rem = 0usize;
    let mut head: Option<InFlight> = None;
    loop {
        let buf = &mut rb.buf;
        let mut pos = 0;
        loop {
            if rem > 0 {
                if !step_over(&mut rem, &mut pos, buf.len()) {
                    break;
                }
                continue;
            }
            let avail = &buf[pos..];
            let Some(len) = frame_len(avail, max).map_err(ConnError::UpstreamFrame)? else {
                break;
            };
            if len < 4 {
                return Err(ConnError::UpstreamFrame(
                    crate::codec::FrameError::TooShort { len },
                ));
            }
            let Some(corr) = avail.get(4..8) else { break };
            let corr = i32::from_be_bytes(corr.try_into().expect("4 bytes"));
            if head.is_none() {
                // The request side queues the header before it writes the request,
                // so the entry is there by the time its response arrives.
                head = Some(
                    in_flight
                        .recv()
                        .await
                        .ok_or(ConnError::UnexpectedResponse {
                            correlation_id: corr,
                        })?,
                );
            }
            let entry = head.as_ref().expect("set above");
            if entry.correlation_id != corr {
                return Err(ConnError::CorrelationMismatch {
                    expected: entry.correlation_id,
                    got: corr,
                });
            }
            let m = metrics::api(entry.api_key);
            match entry.rewrite {
                None => {
                    m.latency.record(entry.sent.elapsed().as_secs_f64());
                    m.response_bytes.increment(4 + len as u64);
                    rem = 4 + len;
                    head = None;
                }
                Some(kind) => {
                    if avail.len() < 4 + len {
                        buf.reserve(4 + len - avail.len());
                        break;
                    }
                    forward(&mut client, buf, pos)
                        .await
                        .map_err(ConnError::ClientIo)?;
                    pos = 0;
                    let frame = buf.split_to(4 + len).freeze().slice(4..);
                    let out = shared
                        .rewrite(
                            kind,
                            entry.api_key,
                            entry.api_version,
                            frame,
                            entry.patch.as_deref(),
                        )
                        .await
                        .map_err(ConnError::Rewrite)?;
                    client.write_all(&out).await.map_err(ConnError::ClientIo)?;
                    m.latency.record(entry.sent.elapsed().as_secs_f64());
                    m.response_bytes.increment(out.len() as u64);
                    head = None;
                }
            }
        }
        forward(&mut client, buf, pos)
            .await
            .map_err(ConnError::ClientIo)?;
        let n = rb
            .fill(&mut upstream)
            .await
            .map_err(ConnError::UpstreamIo)?;
        let buf = &rb.buf;
        if n == 0 {
            let waiting = usize::from(head.is_some()) + in_flight.len();
            if rem == 0 && buf.is_empty() && waiting == 0 {
                return Err(ConnError::UpstreamClosed { in_flight: 0 });
            }
            return Err(ConnError::UpstreamClosed {
                in_flight: waiting.max(1),
            });
        }
    }
}
