//! Client → broker. Reads into one reusable buffer, peeks frame headers in
//! place, and forwards whole runs of passthrough bytes with one write. A
//! request is buffered whole only when a policy inspects it; every request
//! that expects a response is admitted with its [`ResponsePlan`] before it
//! is written upstream. A client that has started SASL and not completed it
//! sends frames of at most [`PRE_AUTH_MAX_FRAME_BYTES`] (see `sasl.rs`).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::buffer::{forward, step_over, ReadBuf};
use super::sasl::{ClientSasl, PRE_AUTH_MAX_FRAME_BYTES, SASL_AUTHENTICATE, SASL_HANDSHAKE};
use super::{draining, ConnError, Env};
use crate::codec::{frame_len, peek_produce_acks, RequestPeek};
use crate::io::{BoxRead, BoxWrite};
use crate::large::Held;
use crate::metrics;
use crate::policy::{self, ConnState, Outcome};
use crate::response::{classify, Kind, ResponsePlan, Step};
use crate::tap::{ConnTag, Tap};

/// Inspected requests from this size on count against the large-record
/// memory bound while they are buffered and rewritten.
const LARGE_REQUEST_BYTES: usize = 1 << 20;

/// The deadline of the frame in progress: once its first byte has arrived,
/// the whole frame must arrive within `limits.frame_read_timeout_ms` of
/// waiting on the client, so a client that trickles bytes (slow loris)
/// cannot hold a connection and its buffer for ever. Only time spent waiting
/// for the client's bytes counts: a large frame that Strait itself holds up
/// (a slow broker, the memory bound) is not the client's fault. Between
/// frames there is no deadline.
struct FrameTimer {
    timeout: Duration,
    /// Bytes read from the client so far.
    read: u64,
    /// The stream offset of the frame in progress and the time spent
    /// waiting for its bytes.
    frame: Option<(u64, Duration)>,
}

impl FrameTimer {
    fn new(timeout_ms: u64) -> FrameTimer {
        FrameTimer {
            timeout: Duration::from_millis(timeout_ms),
            read: 0,
            frame: None,
        }
    }

    /// Runs one read of the client, bounded by what is left of the deadline
    /// of the frame in progress, of which `received` bytes have arrived (0:
    /// between frames).
    async fn within<F>(&mut self, received: usize, read: F) -> Result<F::Output, ConnError>
    where
        F: std::future::Future<Output = std::io::Result<usize>>,
    {
        let out = if received == 0 {
            self.frame = None;
            read.await
        } else {
            let start = self.read - received as u64;
            let waited = match self.frame {
                Some((at, waited)) if at == start => waited,
                _ => Duration::ZERO,
            };
            let began = Instant::now();
            // The read is polled first, so bytes already there always count.
            let out = tokio::time::timeout(self.timeout.saturating_sub(waited), read).await;
            self.frame = Some((start, waited + began.elapsed()));
            out.map_err(|_| ConnError::FrameReadTimeout {
                received,
                timeout_ms: self.timeout.as_millis() as u64,
            })?
        };
        if let Ok(n) = &out {
            self.read += *n as u64;
        }
        Ok(out)
    }
}

/// Counts a request and, when it expects a response, queues its plan for
/// the response side. False once the response side has ended (it reports why).
async fn admit(
    in_flight: &mpsc::Sender<ResponsePlan>,
    peek: RequestPeek,
    bytes: usize,
    expects_response: bool,
    kind: Option<Kind>,
    steps: Vec<Step>,
    tapped: Option<std::sync::Arc<ConnTag>>,
) -> bool {
    let m = metrics::api(peek.api_key);
    m.requests.increment(1);
    m.request_bytes.increment(bytes as u64);
    if !expects_response {
        return true;
    }
    let mut plan = ResponsePlan::new(peek, kind, steps);
    plan.tapped = tapped;
    in_flight.send(plan).await.is_ok()
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
    // Memory held for the inspected frame being buffered, if large; None at
    // every frame boundary.
    let mut held: Option<Held> = None;
    // The same, for a frame that a reload turned to passthrough while it was
    // being buffered: held until its last byte is written upstream.
    let mut streaming: Option<Held> = None;
    let mut timer = FrameTimer::new(env.limits.frame_read_timeout_ms);
    // The size of the passthrough frame being stepped over (`rem` > 0).
    let mut frame_size = 0usize;
    let mut drain = env.drain.clone();
    // The tap's name for this connection, taken at its first observation.
    let mut tapped: Option<std::sync::Arc<ConnTag>> = None;
    let mut tapped_at: Option<u64> = None;
    // The connection's tap name, for the plan of a request whose answer the
    // tap times (one at a time: set for the frame being admitted).
    let mut answer_to: Option<std::sync::Arc<ConnTag>> = None;
    loop {
        let buf = &mut rb.buf;
        let mut pos = 0;
        loop {
            if rem > 0 {
                if !step_over(&mut rem, &mut pos, buf.len()) {
                    break;
                }
                if streaming.take().is_some() {
                    forward(upstream, buf, pos)
                        .await
                        .map_err(ConnError::UpstreamIo)?;
                    pos = 0;
                    // As for an inspected frame: the buffer reserved for it
                    // whole would stay with the connection.
                    *buf = BytesMut::from(&buf[..]);
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
            // Before the client has authenticated, and for the SASL frames
            // themselves, the broker's own cap: refused before any of it is
            // buffered or forwarded.
            let sasl_frame = matches!(peek.api_key, SASL_HANDSHAKE | SASL_AUTHENTICATE);
            if len > PRE_AUTH_MAX_FRAME_BYTES && (sasl_frame || sasl.pre_authentication()) {
                return Err(ConnError::PreAuthFrameTooLarge {
                    len,
                    api_key: peek.api_key,
                    max: PRE_AUTH_MAX_FRAME_BYTES,
                });
            }
            if let Some(tap) = &env.tap {
                // Small requests, read whole before they are forwarded (they
                // arrive whole in one read in practice); never before the
                // client has authenticated. A frame is offered once, however
                // many reads it takes (`tapped_at`: its stream offset).
                if Tap::observes(peek.api_key) && !sasl.pre_authentication() {
                    let small = len <= crate::tap::MAX_OBSERVED_FRAME;
                    if small && avail.len() < 4 + len {
                        buf.reserve(4 + len - avail.len());
                        break;
                    }
                    let at = timer.read - (buf.len() - pos) as u64;
                    if tapped_at != Some(at) {
                        tapped_at = Some(at);
                        let conn = tapped.get_or_insert_with(|| tap.conn(sasl.peer()));
                        tap.offer(conn, len, &avail[4..(4 + len).min(avail.len())]);
                    }
                    // A fetch's answer time is when its records were delivered.
                    if Tap::times_answer(peek.api_key) {
                        answer_to = tapped.clone();
                    }
                } else if peek.api_key == 0 && avail.len() >= 4 + len && !sasl.pre_authentication()
                {
                    // Produce requests already whole in the buffer (never
                    // waited for), within the tap's byte budget: their keys.
                    let at = timer.read - (buf.len() - pos) as u64;
                    if tapped_at != Some(at) && tap.samples_produce(len) {
                        tapped_at = Some(at);
                        tap.sample_produce(&avail[4..4 + len]);
                    }
                }
            }
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
                // Small (capped above) and once per authentication: read
                // whole for its mechanism.
                if avail.len() < 4 + len {
                    buf.reserve(4 + len - avail.len());
                    break;
                }
                sasl.handshake(&avail[4..4 + len], peek.api_version)
                    .map_err(ConnError::Enforce)?;
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
                            // Only a bound set below max_frame_bytes, which
                            // start-up refuses, could fail this.
                            let h = large.budget.acquire(len as u64).await;
                            held = Some(h.map_err(ConnError::OverMemoryBound)?);
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
                let tapped = answer_to.take();
                if !admit(
                    &in_flight,
                    peek,
                    4 + len,
                    expects_response,
                    kind,
                    steps,
                    tapped,
                )
                .await
                {
                    return Ok(());
                }
                upstream
                    .write_all(&frame)
                    .await
                    .map_err(ConnError::UpstreamIo)?;
                held = None;
                continue;
            }
            // Streamed, but its response may still have work (share groups
            // while a fetch policy applies); no guard held across awaits.
            let steps = policy::request::passthrough_steps(&policies, peek.api_key);
            drop(policies);
            // Streamed, not buffered: memory taken while this frame was
            // inspected (a reload has since turned it to passthrough) is
            // given back once it is written, not held for the life of the
            // connection.
            streaming = held.take();
            if expects_response && in_flight.capacity() == 0 {
                // Admitting waits until a response frees a place, so the
                // broker must first have every request admitted before it.
                forward(upstream, buf, pos)
                    .await
                    .map_err(ConnError::UpstreamIo)?;
                pos = 0;
            }
            let tapped = answer_to.take();
            if !admit(
                &in_flight,
                peek,
                4 + len,
                expects_response,
                kind,
                steps,
                tapped,
            )
            .await
            {
                return Ok(()); // the response side has ended and reports why
            }
            rem = 4 + len;
            frame_size = rem;
        }
        forward(upstream, buf, pos)
            .await
            .map_err(ConnError::UpstreamIo)?;
        // What has arrived of the frame in progress: the rest of a streamed
        // one, or the start of the next (buffered whole or not).
        let received = if rem > 0 {
            frame_size - rem
        } else {
            rb.buf.len()
        };
        let n = if received == 0 {
            tokio::select! {
                biased;
                // Draining, at a request boundary: read no more requests.
                _ = draining(&mut drain) => return Ok(()),
                n = timer.within(0, rb.fill(client)) => n?,
            }
        } else {
            // Mid-request: finish reading it so it is forwarded whole
            // (within the frame read timeout).
            timer.within(received, rb.fill(client)).await?
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
