//! Strait: a transparent Kafka-wire-protocol proxy.
//!
//! Clients connect to the bootstrap listener; Strait forwards every frame to a
//! real broker over one upstream connection per client connection, rewrites
//! the responses that name brokers so clients keep talking to Strait, and
//! streams everything else through unchanged.

pub mod admin;
pub mod codec;
pub mod config;
pub mod connection;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod routing;
pub mod server;
pub mod tls;

pub use config::{Config, Validated};
pub use server::Proxy;

/// Runs the proxy until `shutdown` completes.
pub async fn run(
    cfg: Validated,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let proxy = Proxy::start(cfg).await?;
    shutdown.await;
    tracing::info!("shutting down");
    proxy.shutdown();
    Ok(())
}
