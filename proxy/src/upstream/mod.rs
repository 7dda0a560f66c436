//! Strait's own connections to the brokers: the [`Dialer`] (bootstrap
//! rotation, connect timeout, TLS) that every upstream connection goes
//! through, and [`BrokerConn`], a framed request/response connection for
//! Strait's own requests (cluster discovery first; the internal Kafka client
//! builds on it, with the same TLS settings and, later, SASL credentials).

mod conn;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::net::TcpStream;

use crate::config::UpstreamConfig;
use crate::io::Io;
use crate::tls;

pub use conn::BrokerConn;

/// Opens connections to brokers.
pub struct Dialer {
    bootstrap: Vec<String>,
    next_bootstrap: AtomicUsize,
    connect_timeout: Duration,
    tls: Option<tls::Upstream>,
    max_frame_bytes: usize,
}

impl Dialer {
    pub fn new(cfg: &UpstreamConfig, max_frame_bytes: usize) -> anyhow::Result<Dialer> {
        let tls = cfg
            .tls
            .as_ref()
            .map(tls::connector)
            .transpose()
            .context("upstream TLS")?;
        Ok(Dialer {
            bootstrap: cfg.bootstrap.clone(),
            next_bootstrap: AtomicUsize::new(0),
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
            tls,
            max_frame_bytes,
        })
    }

    /// Connects to a broker, with the configured timeout and TLS.
    pub async fn connect(&self, addr: &str) -> anyhow::Result<Io> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                anyhow!(
                    "connecting to broker {addr}: timed out after {:?}",
                    self.connect_timeout
                )
            })?
            .with_context(|| format!("connecting to broker {addr}"))?;
        tcp.set_nodelay(true).ok();
        match &self.tls {
            None => {
                let (r, w) = tcp.into_split();
                Ok((Box::new(r), Box::new(w)))
            }
            Some(t) => {
                let name = match &t.server_name {
                    Some(n) => n.clone(),
                    None => tls::name_for(addr)?,
                };
                let stream =
                    tokio::time::timeout(self.connect_timeout, t.connector.connect(name, tcp))
                        .await
                        .map_err(|_| anyhow!("TLS handshake with broker {addr}: timed out"))?
                        .with_context(|| format!("TLS handshake with broker {addr}"))?;
                let (r, w) = tokio::io::split(stream);
                Ok((Box::new(r), Box::new(w)))
            }
        }
    }

    /// Connects to the next reachable bootstrap broker (rotating, so clients
    /// spread over them); returns its address too.
    pub async fn connect_bootstrap(&self) -> anyhow::Result<(Io, String)> {
        let n = self.bootstrap.len();
        let start = self.next_bootstrap.fetch_add(1, Ordering::Relaxed);
        let mut errors = Vec::new();
        for i in 0..n {
            let addr = &self.bootstrap[(start + i) % n];
            match self.connect(addr).await {
                Ok(io) => return Ok((io, addr.clone())),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        Err(anyhow!(
            "no bootstrap broker reachable: {}",
            errors.join("; ")
        ))
    }

    /// A framed connection to a bootstrap broker for Strait's own requests.
    pub async fn open_bootstrap(&self, client_id: &'static str) -> anyhow::Result<BrokerConn> {
        let (io, addr) = self.connect_bootstrap().await?;
        Ok(BrokerConn::new(
            io,
            addr,
            client_id,
            self.connect_timeout,
            self.max_frame_bytes,
        ))
    }
}
