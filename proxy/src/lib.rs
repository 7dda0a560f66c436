//! Strait: a transparent Kafka-wire-protocol proxy.
//!
//! Clients connect to the bootstrap listener (or a broker's listener);
//! Strait forwards every frame to a real broker over one upstream connection
//! per client connection, applies per-topic policies to the requests they
//! name, rewrites the responses that must change (broker addresses, policy
//! rejections), and streams everything else through unchanged.
//!
//! # Where each step of the data flow lives
//!
//! | step | module |
//! | --- | --- |
//! | listeners, accept loops, start and stop (the top; nothing imports it) | [`server`] |
//! | one client connection: its two pumps, request order, admission | [`connection`] |
//! | frames: length prefix, request-header peek, produce topic scan; the walk before any decode | [`codec`], [`codec::guard`] |
//! | record batches: header view, records, lossless edit, compression | [`codec::batch`], [`codec::edit`], [`codec::compression`] |
//! | policies on the request: load, compile, enforce per api | [`policy`] |
//! | the record pipeline: stages per topic, trace index | [`pipeline`] |
//! | CPU-heavy batch work, off the reactor | [`offload`] |
//! | Strait's own broker connections: dialer, framed requests | [`upstream`] |
//! | the cluster view: routes, topic ids, discovery | [`cluster`] |
//! | the response side: plans and their steps | [`response`] |
//! | the observation tap: positions, commits, membership, off the reactor | [`tap`] |
//! | metrics, admin HTTP, config, TLS, the open-file limit | [`metrics`], [`admin`], [`config`], [`tls`], [`fdlimit`] |
//!
//! Imports go one way, down this list's dependency order: `server` →
//! `connection` → `policy` → `response` → `pipeline` / `cluster` →
//! `upstream` → `codec`; `codec` knows nothing of policies. See
//! ARCHITECTURE.md for the invariants each step keeps.

pub mod admin;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod connection;
pub mod debug;
pub mod fdlimit;
pub mod io;
pub mod kafka_client;
pub mod large;
pub mod metrics;
pub mod offload;
pub mod pipeline;
pub mod policy;
pub mod response;
pub mod server;
pub mod tap;
pub mod tls;
pub mod upstream;

pub use config::{Config, Validated};
pub use server::Proxy;

/// Runs the proxy until the first stop signal (its name, e.g. `SIGTERM`,
/// arrives on `signals`; a closed channel counts as one), then drains (see
/// [`Proxy::drain`]) and returns. A second signal during the drain returns
/// at once, cutting the connections still open.
pub async fn run(
    cfg: Validated,
    mut signals: tokio::sync::mpsc::UnboundedReceiver<&'static str>,
) -> anyhow::Result<()> {
    let proxy = Proxy::start(cfg).await?;
    let first = signals.recv().await.unwrap_or("end of input");
    tracing::info!(signal = first, "shutting down: draining");
    tokio::select! {
        _ = proxy.drain() => {}
        Some(second) = signals.recv() => {
            tracing::warn!(signal = second, cut = proxy.open_connections(),
                "second signal during the drain: exiting at once, cutting the connections still open");
        }
    }
    proxy.stop();
    Ok(())
}
