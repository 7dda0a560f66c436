//! Broker → client. Matches every response to its request's plan by
//! correlation id (responses carry no api key), streams the ones with
//! nothing to do straight from the read buffer, and buffers whole only the
//! ones whose plan has steps. Runs in its own task, so a client that closes
//! its sending side still gets every response in flight.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::buffer::{step_over, ReadBuf};
use super::sasl::{ClientSasl, SASL_AUTHENTICATE};
use super::{ConnError, Env};
use crate::codec::{frame_len, FrameError};
use crate::io::{BoxRead, BoxWrite};
use crate::metrics;
use crate::response::ResponsePlan;

/// Responses from this size on get a fresh read buffer after them, so the
/// connection does not keep their allocation.
const LARGE_RESPONSE_BYTES: usize = 1 << 20;

/// Returns `Ok(())` once the request side has ended and every response it
/// was owed has been sent; an error when the broker misbehaves or closes
/// with requests in flight.
pub async fn responses(
    env: &Env,
    mut upstream: BoxRead,
    mut client: BoxWrite,
    mut in_flight: mpsc::Receiver<ResponsePlan>,
    sasl: &ClientSasl,
) -> Result<(), ConnError> {
    let max = env.limits.max_frame_bytes;
    let wait = Duration::from_millis(env.limits.client_write_timeout_ms);
    let mut rb = ReadBuf::new(env.limits.buffer_bytes);
    let mut rem = 0usize;
    let mut head: Option<ResponsePlan> = None;
    // The request side has ended: no plan will come after those queued.
    let mut requests_done = false;
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
                return Err(ConnError::UpstreamFrame(FrameError::TooShort { len }));
            }
            let Some(corr) = avail.get(4..8) else { break };
            let corr = i32::from_be_bytes(corr.try_into().expect("4 bytes"));
            if head.is_none() {
                // The request side queues the plan before it writes the request,
                // so the plan is there by the time its response arrives: a
                // response with none queued answers no request.
                head = Some(
                    in_flight
                        .try_recv()
                        .map_err(|_| ConnError::UnexpectedResponse {
                            correlation_id: corr,
                        })?,
                );
            }
            let plan = head.as_mut().expect("set above");
            if plan.correlation_id != corr {
                return Err(ConnError::CorrelationMismatch {
                    expected: plan.correlation_id,
                    got: corr,
                });
            }
            if plan.api_key == SASL_AUTHENTICATE {
                // Small and rare: read whole for its error code.
                if avail.len() < 4 + len {
                    buf.reserve(4 + len - avail.len());
                    break;
                }
                sasl.authenticated(&avail[4..4 + len], plan.api_version)
                    .map_err(ConnError::Rewrite)?;
            }
            // A fetch session is learned from the answer's first bytes,
            // before any of them reaches the client.
            if let Some(need) = plan
                .learn_session(&avail[4..], len)
                .map_err(ConnError::Rewrite)?
            {
                buf.reserve(4 + need - avail.len());
                break;
            }
            if let (Some(conn), Some(tap)) = (plan.tapped.take(), &env.tap) {
                tap.answered(conn, corr);
            }
            let m = metrics::api(plan.api_key);
            if plan.streams() {
                m.latency.record(plan.sent.elapsed().as_secs_f64());
                m.response_bytes.increment(4 + len as u64);
                rem = 4 + len;
                head = None;
                continue;
            }
            if avail.len() < 4 + len {
                buf.reserve(4 + len - avail.len());
                break;
            }
            send(&mut client, &buf[..pos], wait).await?;
            buf.advance(pos);
            pos = 0;
            let frame = buf.split_to(4 + len).freeze().slice(4..);
            if len >= LARGE_RESPONSE_BYTES {
                // The rest in a buffer of its own: this one would keep the
                // large frame's allocation for the life of the connection.
                *buf = BytesMut::from(&buf[..]);
            }
            let plan = head.take().expect("set above");
            let sent = plan.sent;
            let out = plan
                .execute(frame, &env.responses)
                .await
                .map_err(ConnError::Rewrite)?;
            send(&mut client, &out.frame, wait).await?;
            // Memory held for a restored response is given back once it is
            // written, so slow readers count against the bound.
            drop(out.held);
            m.latency.record(sent.elapsed().as_secs_f64());
            m.response_bytes.increment(out.frame.len() as u64);
        }
        send(&mut client, &buf[..pos], wait).await?;
        buf.advance(pos);
        if requests_done && head.is_none() && rem == 0 && rb.buf.is_empty() && in_flight.is_empty()
        {
            // Every response owed was sent: end the client's stream (a TLS
            // close_notify and a FIN), so it sees the close now.
            let _ = client.shutdown().await;
            return Ok(());
        }
        let n = tokio::select! {
            n = rb.fill(&mut upstream) => n.map_err(ConnError::UpstreamIo)?,
            // Learn when the request side ends, so a half-closed client gets
            // its responses and then the connection closes.
            plan = in_flight.recv(), if head.is_none() && !requests_done => {
                match plan {
                    Some(p) => head = Some(p),
                    None => requests_done = true,
                }
                continue;
            }
        };
        if n == 0 {
            let waiting = usize::from(head.is_some()) + in_flight.len();
            if rem == 0 && rb.buf.is_empty() && waiting == 0 {
                return Err(ConnError::UpstreamClosed { in_flight: 0 });
            }
            return Err(ConnError::UpstreamClosed {
                in_flight: waiting.max(1),
            });
        }
    }
}

/// Writes all of `bytes` to the client. While it takes none of them, Strait
/// reads nothing more from the broker (nor, once the in-flight limit is
/// reached, from the client); a client that takes no bytes for `wait`
/// (`limits.client_write_timeout_ms`) is dropped.
async fn send(client: &mut BoxWrite, bytes: &[u8], wait: Duration) -> Result<(), ConnError> {
    let mut sent = 0;
    while sent < bytes.len() {
        let n = tokio::time::timeout(wait, client.write(&bytes[sent..]))
            .await
            .map_err(|_| ConnError::ClientWriteTimeout {
                pending: bytes.len() - sent,
                timeout_ms: wait.as_millis() as u64,
            })?
            .map_err(ConnError::ClientIo)?;
        if n == 0 {
            return Err(ConnError::ClientIo(std::io::ErrorKind::WriteZero.into()));
        }
        sent += n;
    }
    Ok(())
}
