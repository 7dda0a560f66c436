//! One proxied client connection: its upstream connection (1:1), the two
//! pumps (requests in the connection's task, responses in a task of their
//! own), the drain (stop reading at a request boundary, deliver what is
//! owed, close), and the log line that says why it ended.

mod buffer;
mod requests;
mod responses;
mod sasl;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::cluster::{ClusterView, Target};
use crate::codec::FrameError;
use crate::config::LimitsConfig;
use crate::io::Io;
use crate::metrics;
use crate::policy::{EnforceError, Enforcer};
use crate::response::{ResponseEnv, RewriteError, Unsupported};

use sasl::ClientSasl;

/// What a connection needs from the rest of the proxy.
pub struct Env {
    pub limits: LimitsConfig,
    pub cluster: Arc<ClusterView>,
    pub enforcer: Enforcer,
    pub responses: ResponseEnv,
    /// True once the proxy drains: stop reading requests at the next
    /// request boundary.
    pub drain: watch::Receiver<bool>,
    /// The observation tap, when on (`debug.tap`).
    pub tap: Option<Arc<crate::tap::Tap>>,
}

/// How long a closing connection reads (and discards) what the client still
/// sends after its last response, so closing with unread bytes (a TCP reset)
/// cannot destroy responses not yet delivered.
const LINGER: Duration = Duration::from_secs(2);

/// Why a connection ended. Every variant is contained to its own connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("bad frame from client: {0}")]
    ClientFrame(FrameError),
    #[error("bad frame from broker: {0}")]
    UpstreamFrame(FrameError),
    #[error(
        "client sent api key {} v{}, which Strait cannot serve (it rewrites this api's responses and supports v{}..=v{}); \
         clients that read ApiVersions never do this",
        .0.api_key, .0.version, .0.min, .0.max
    )]
    Unsupported(Unsupported),
    #[error("client I/O error: {0}")]
    ClientIo(std::io::Error),
    #[error("broker I/O error: {0}")]
    UpstreamIo(std::io::Error),
    #[error(
        "client sent {received} bytes of a request but not the rest within {timeout_ms} ms \
         (limits.frame_read_timeout_ms)"
    )]
    FrameReadTimeout { received: usize, timeout_ms: u64 },
    #[error(
        "client took no bytes of a response for {timeout_ms} ms (limits.client_write_timeout_ms); \
         {pending} bytes were waiting to be sent"
    )]
    ClientWriteTimeout { pending: usize, timeout_ms: u64 },
    #[error(
        "client sent a request of {len} bytes (api key {api_key}) while authenticating; \
         at most {max} bytes are accepted before SASL authentication completes \
         (the broker's sasl.server.max.receive.size default)"
    )]
    PreAuthFrameTooLarge {
        len: usize,
        api_key: i16,
        max: usize,
    },
    #[error("client sent a request that cannot be buffered: {0}")]
    OverMemoryBound(crate::large::OverBudget),
    #[error("client disconnected mid-request ({buffered} bytes buffered, {remaining} bytes of the frame still expected)")]
    ClientClosedMidRequest { buffered: usize, remaining: usize },
    #[error("broker closed the connection with {in_flight} request(s) awaiting a response")]
    UpstreamClosed { in_flight: usize },
    #[error("broker answered correlation id {got} but the oldest request in flight is {expected}")]
    CorrelationMismatch { expected: i32, got: i32 },
    #[error("broker sent a response (correlation id {correlation_id}) to no request")]
    UnexpectedResponse { correlation_id: i32 },
    #[error("cannot rewrite response: {0}")]
    Rewrite(RewriteError),
    #[error("cannot apply policies: {0}")]
    Enforce(EnforceError),
    #[error("the response side of the connection failed: {0}")]
    Internal(String),
    #[error("policy violation with no response to carry it: {0}")]
    PolicyClose(String),
}

impl ConnError {
    fn side_kind(&self) -> (&'static str, &'static str) {
        match self {
            ConnError::ClientFrame(_) => ("client", "bad_frame"),
            ConnError::UpstreamFrame(_) => ("upstream", "bad_frame"),
            ConnError::Unsupported(_) => ("client", "unsupported_version"),
            ConnError::ClientIo(e) if is_reset(e) => ("client", "reset"),
            ConnError::ClientIo(_) => ("client", "io"),
            ConnError::UpstreamIo(_) => ("upstream", "io"),
            ConnError::ClientClosedMidRequest { .. } => ("client", "closed_mid_request"),
            ConnError::PreAuthFrameTooLarge { .. } => ("client", "pre_auth_frame_too_large"),
            ConnError::OverMemoryBound(_) => ("client", "over_memory_bound"),
            ConnError::FrameReadTimeout { .. } => ("client", "frame_read_timeout"),
            ConnError::ClientWriteTimeout { .. } => ("client", "write_timeout"),
            ConnError::UpstreamClosed { .. } => ("upstream", "closed"),
            ConnError::CorrelationMismatch { .. } => ("upstream", "correlation_mismatch"),
            ConnError::UnexpectedResponse { .. } => ("upstream", "unexpected_response"),
            ConnError::Rewrite(RewriteError::Decode { .. }) => ("upstream", "malformed_response"),
            ConnError::Rewrite(_) => ("internal", "rewrite"),
            ConnError::Enforce(EnforceError::Offload(_)) => ("internal", "offload"),
            ConnError::Enforce(_) => ("client", "undecodable_request"),
            ConnError::PolicyClose(_) => ("client", "policy_violation_acks0"),
            ConnError::Internal(_) => ("internal", "task"),
        }
    }
}

/// Whether a client I/O error means the client reset or abandoned the
/// connection (rather than a fault of Strait's or the network's).
fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}

/// Serves one accepted (and TLS-terminated) client connection to its end.
pub async fn serve(env: Arc<Env>, client: Io, peer: SocketAddr, target: Target) {
    let (upstream, upstream_addr) = match env.cluster.connect(target).await {
        Ok(u) => u,
        Err(e) => {
            metrics::upstream_connect_failed();
            warn!(client = %peer, listener = %target, error = %format!("{e:#}"), "cannot reach broker; closing client connection");
            return;
        }
    };
    debug!(client = %peer, listener = %target, upstream = %upstream_addr, "connection opened");
    let sasl = Arc::new(ClientSasl::new(Some(peer)));
    match run_watched(env, client, upstream, sasl).await {
        Ok(()) => debug!(client = %peer, upstream = %upstream_addr, "client closed the connection"),
        Err(ConnError::UpstreamClosed { in_flight: 0 }) => {
            info!(client = %peer, listener = %target, upstream = %upstream_addr, "broker closed the connection; closing client connection")
        }
        // A client may close with bytes unread (a TCP reset): clients do so
        // when they shut down or drop a connection they no longer need. It
        // is the client's decision, not a fault an operator can act on, so
        // it is counted and logged at INFO, like a broker's own disconnect.
        Err(e @ ConnError::ClientIo(_)) if e.side_kind().1 == "reset" => {
            metrics::error("client", "reset");
            info!(client = %peer, listener = %target, upstream = %upstream_addr, error = %e, "client reset the connection");
        }
        Err(e) => {
            let (side, kind) = e.side_kind();
            metrics::error(side, kind);
            warn!(client = %peer, listener = %target, upstream = %upstream_addr, side, error = %e, "closing connection");
        }
    }
}

/// Proxies between a client and its upstream connection until either ends.
/// A client that closes its sending side (half-close) still gets every
/// response in flight; an error on either side ends both.
pub async fn run(env: Arc<Env>, client: Io, upstream: Io) -> Result<(), ConnError> {
    run_watched(env, client, upstream, Arc::new(ClientSasl::new(None))).await
}

/// [`run`], with the client's SASL exchange watched for refusals.
async fn run_watched(
    env: Arc<Env>,
    client: Io,
    upstream: Io,
    sasl: Arc<ClientSasl>,
) -> Result<(), ConnError> {
    let (mut client_r, client_w) = client;
    let (up_r, mut up_w) = upstream;
    let (tx, rx) = mpsc::channel(env.limits.max_in_flight);
    let mut responses = ResponseTask(tokio::spawn({
        let env = env.clone();
        let sasl = sasl.clone();
        async move { responses::responses(&env, up_r, client_w, rx, &sasl).await }
    }));
    let joined = |r: Result<Result<(), ConnError>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Err(ConnError::Internal(e.to_string())))
    };
    tokio::select! {
        r = requests::requests(&env, &mut client_r, &mut up_w, tx, &sasl) => match r {
            // The client is done sending, the proxy drains (or the response
            // side ended and says why): wait for the responses it is owed.
            Ok(()) => match joined((&mut responses.0).await) {
                Ok(()) => {
                    linger(&mut client_r).await;
                    Ok(())
                }
                // A client that closed altogether (TCP cannot tell that from
                // a half-close) is not there to read them: it left, no error.
                Err(ConnError::ClientIo(e)) => {
                    debug!(error = %e, "client gone before its responses");
                    Ok(())
                }
                other => other,
            },
            Err(e) => Err(e),
        },
        r = &mut responses.0 => joined(r),
    }
}

/// Resolves once the proxy drains (never, for a proxy that is gone).
async fn draining(flag: &mut watch::Receiver<bool>) {
    if flag.wait_for(|d| *d).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// After the last response (the write side is shut down): discards what
/// the client still sends until it closes too, for at most [`LINGER`].
async fn linger(client: &mut crate::io::BoxRead) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = client.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// The response pump's task, aborted when the connection ends however it
/// ends (an error, a panic, or the connection's future being dropped), so it
/// never outlives its connection.
struct ResponseTask(tokio::task::JoinHandle<Result<(), ConnError>>);

impl Drop for ResponseTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
