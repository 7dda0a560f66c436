//! Client → broker. Reads into one reusable buffer, peeks frame headers in
//! place, and forwards whole runs of passthrough bytes with one write. A
//! request is buffered whole only when a policy inspects it; every request
//! that expects a response is admitted with its [`ResponsePlan`] before it
//! is written upstream.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::buffer::{forward, step_over, ReadBuf};
use super::sasl::{ClientSasl, SASL_HANDSHAKE};
use super::{draining, ConnError, Env};
use crate::codec::{frame_len, peek_produce_acks, RequestPeek};
use crate::io::{BoxRead, BoxWrite};
use crate::large::Held;
use crate::metrics;
use crate::policy::{self, ConnState, Outcome};
use crate::response::{classify, Kind, ResponsePlan, Step};

/// Inspected requests from this size on count against the large-record
/// memory bound while they are buffered and rewritten.
const LARGE_REQUEST_BYTES: usize = 1 << 20;

/// Counts a request and, when it expects a response, queues its plan for
/// the response side. False once the response side has ended (it reports why).
async fn admit(
    in_flight: &mpsc::Sender<ResponsePlan>,
    peek: RequestPeek,
    bytes: usize,
    expects_response: bool,
    kind: Option<Kind>,
    steps: Vec<Step>,
) -> bool {
    let m = metrics::api(peek.api_key);
    m.requests.increment(1);
    m.request_bytes.increment(bytes as u64);
    if !expects_response {
        return true;
    }
    in_flight
        .send(ResponsePlan::new(peek, kind, steps))
        .await
        .is_ok()
}

/// Returns `Ok(())` when the client closes between frames, when the proxy
/// drains and the client is at a request boundary (every request read has
/// been forwarded; the response side delivers their responses), or when the
/// response side has ended first and reports why. `upstream` is borrowed: dropping a
/// TCP write half shuts it down, and a broker that reads end-of-stream drops
/// the responses it still owes.
pub async fn requests(
    env: &Env,
    client: &mut BoxRead,
    upstream: &mut BoxWrite,
    in_flight: mpsc::Sender<ResponsePlan>,
    sasl: &ClientSasl,
) -> Result<(), ConnError> {
    let max = env.limits.max_frame_bytes;
    let mut rb = ReadBuf::new(env.limits.buffer_bytes);
    // Bytes of the current frame still to forward; 0 at a frame boundary.
    let mut rem = 0usize;
    let mut state = ConnState::default();
    // Memory held for the inspected frame being buffered, if large.
    let mut held: Option<Held> = None;
    let mut drain = env.drain.clone();
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
            let kind = classify(peek.api_key, peek.api_version).map_err(ConnError::Unsupported)?;
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
            if peek.api_key == SASL_HANDSHAKE {
                // Small and once per connection: read whole for its mechanism.
                if avail.len() < 4 + len {
                    buf.reserve(4 + len - avail.len());
                    break;
                }
                sasl.handshake(&avail[4..4 + len], peek.api_version);
            }
            let policies = env.enforcer.store.get();
            if policy::request::inspects(&policies, peek.api_key) {
                // One snapshot decides and enforces; none held across awaits.
                let policies = arc_swap::Guard::into_inner(policies);
                // Policies decide on the whole request: buffer it (bounded by
                // max_frame_bytes, and large ones by the process-wide memory
                // bound: over it, the client waits).
                if avail.len() < 4 + len {
                    if let (None, Some(large)) = (&held, &env.enforcer.work.large) {
                        if len >= LARGE_REQUEST_BYTES {
                            held = Some(large.budget.acquire(len as u64).await);
                        }
                    }
                    let missing = 4 + len - avail.len();
                    buf.reserve(missing);
                    break;
                }
                forward(upstream, buf, pos)
                    .await
                    .map_err(ConnError::UpstreamIo)?;
                pos = 0;
                let frame = buf.split_to(4 + len).freeze();
                if len >= LARGE_REQUEST_BYTES {
                    // The rest in a buffer of its own: this one would keep the
                    // large frame's allocation for the life of the connection.
                    *buf = BytesMut::from(&buf[..]);
                }
                let outcome =
                    policy::enforce(&env.enforcer, policies, &mut state, peek, acks_at, frame)
                        .await
                        .map_err(ConnError::Enforce)?;
                let (frame, steps) = match outcome {
                    Outcome::Close(reason) => return Err(ConnError::PolicyClose(reason)),
                    Outcome::Forward { frame, steps } => (frame, steps),
                };
                // Request bytes count what the client sent, before any rewrite.
                if !admit(&in_flight, peek, 4 + len, expects_response, kind, steps).await {
                    return Ok(());
                }
                upstream
                    .write_all(&frame)
                    .await
                    .map_err(ConnError::UpstreamIo)?;
                held = None;
                continue;
            }
            if expects_response && in_flight.capacity() == 0 {
                // Admitting waits until a response frees a place, so the
                // broker must first have every request admitted before it.
                forward(upstream, buf, pos)
                    .await
                    .map_err(ConnError::UpstreamIo)?;
                pos = 0;
            }
            if !admit(
                &in_flight,
                peek,
                4 + len,
                expects_response,
                kind,
                Vec::new(),
            )
            .await
            {
                return Ok(()); // the response side has ended and reports why
            }
            rem = 4 + len;
        }
        forward(upstream, buf, pos)
            .await
            .map_err(ConnError::UpstreamIo)?;
        let n = if rem == 0 && rb.buf.is_empty() {
            tokio::select! {
                biased;
                // Draining, at a request boundary: read no more requests.
                _ = draining(&mut drain) => return Ok(()),
                n = rb.fill(client) => n,
            }
        } else {
            // Mid-request: finish reading it so it is forwarded whole.
            rb.fill(client).await
        }
        .map_err(ConnError::ClientIo)?;
        let buf: &BytesMut = &rb.buf;
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
