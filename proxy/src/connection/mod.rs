//! One proxied client connection: its upstream connection (1:1), the two
//! pumps, and the log line that says why it ended.

mod pump;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::codec::FrameError;
use crate::metrics;
use crate::routing::rewrite::{RewriteError, Unsupported};
use crate::server::{Shared, Target};

pub use pump::InFlight;

pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

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
    Enforce(crate::policy::enforce::EnforceError),
    #[error("policy violation with no response to carry it: {0}")]
    PolicyClose(String),
}

impl ConnError {
    fn side_kind(&self) -> (&'static str, &'static str) {
        match self {
            ConnError::ClientFrame(_) => ("client", "bad_frame"),
            ConnError::UpstreamFrame(_) => ("upstream", "bad_frame"),
            ConnError::Unsupported(_) => ("client", "unsupported_version"),
            ConnError::ClientIo(_) => ("client", "io"),
            ConnError::UpstreamIo(_) => ("upstream", "io"),
            ConnError::ClientClosedMidRequest { .. } => ("client", "closed_mid_request"),
            ConnError::UpstreamClosed { .. } => ("upstream", "closed"),
            ConnError::CorrelationMismatch { .. } => ("upstream", "correlation_mismatch"),
            ConnError::UnexpectedResponse { .. } => ("upstream", "unexpected_response"),
            ConnError::Rewrite(_) => ("internal", "rewrite"),
            ConnError::Enforce(_) => ("client", "undecodable_request"),
            ConnError::PolicyClose(_) => ("client", "policy_violation_acks0"),
        }
    }
}

/// Serves one accepted (and TLS-terminated) client connection to its end.
pub async fn serve(
    shared: Arc<Shared>,
    client: (BoxRead, BoxWrite),
    peer: SocketAddr,
    target: Target,
) {
    let (upstream, upstream_addr) = match shared.connect_for(target).await {
        Ok(u) => u,
        Err(e) => {
            metrics::upstream_connect_failed();
            warn!(client = %peer, listener = %target, error = %format!("{e:#}"), "cannot reach broker; closing client connection");
            return;
        }
    };
    debug!(client = %peer, listener = %target, upstream = %upstream_addr, "connection opened");
    let (client_r, client_w) = client;
    let (up_r, up_w) = upstream;
    let (tx, rx) = mpsc::channel(shared.limits.max_in_flight);
    let requests = pump::requests(&shared, client_r, up_w, tx);
    let responses = pump::responses(&shared, up_r, client_w, rx);
    let result = tokio::select! {
        r = requests => r,
        r = responses => r,
    };
    match result {
        Ok(()) => debug!(client = %peer, upstream = %upstream_addr, "client closed the connection"),
        Err(ConnError::UpstreamClosed { in_flight: 0 }) => {
            info!(client = %peer, listener = %target, upstream = %upstream_addr, "broker closed the connection; closing client connection")
        }
        Err(e) => {
            let (side, kind) = e.side_kind();
            metrics::error(side, kind);
            warn!(client = %peer, listener = %target, upstream = %upstream_addr, side, error = %e, "closing connection");
        }
    }
}
