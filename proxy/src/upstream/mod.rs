//! Strait's own connections to the brokers: the [`Dialer`] (bootstrap
//! rotation, connect timeout, TLS) that every upstream connection goes
//! through, and [`BrokerConn`], a framed request/response connection for
//! Strait's own requests (cluster discovery first; the internal Kafka client
//! builds on it), authenticated with `[upstream.sasl]` when configured.
//! Client connections go through [`Dialer::connect`] unauthenticated: they
//! carry the client's own SASL exchange.

mod conn;
mod sasl;
mod scram;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::net::TcpStream;
use tracing::warn;

use crate::config::{SaslCredentials, UpstreamConfig};
use crate::io::Io;
use crate::{metrics, tls};

pub use conn::BrokerConn;
pub use sasl::AuthFailed;

/// Opens connections to brokers.
pub struct Dialer {
    bootstrap: Vec<String>,
    next_bootstrap: AtomicUsize,
    connect_timeout: Duration,
    tls: Option<tls::Upstream>,
    max_frame_bytes: usize,
    sasl: Option<SaslCredentials>,
}

impl Dialer {
    pub fn new(cfg: &UpstreamConfig, max_frame_bytes: usize) -> anyhow::Result<Dialer> {
        let tls = cfg
            .tls
            .as_ref()
            .map(tls::connector)
            .transpose()
            .context("upstream TLS")?;
        let sasl = match &cfg.sasl {
            None => None,
            Some(s) => Some(s.credentials().map_err(|e| anyhow!(e))?),
        };
        Ok(Dialer {
            sasl,
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
        self.own(
            io,
            addr,
            client_id,
            self.connect_timeout,
            self.max_frame_bytes,
        )
        .await
    }

    /// Makes `io` (to the broker at `addr`) a connection for Strait's own
    /// requests: framed, and authenticated with `[upstream.sasl]` when
    /// configured (the connection then reports when its session ends,
    /// [`BrokerConn::expired`]). A refusal is logged and counted here, once
    /// for every kind of own connection.
    pub async fn own(
        &self,
        io: Io,
        addr: String,
        client_id: &'static str,
        timeout: Duration,
        max_frame_bytes: usize,
    ) -> anyhow::Result<BrokerConn> {
        let mut conn = BrokerConn::new(io, addr, client_id, timeout, max_frame_bytes);
        let Some(creds) = &self.sasl else {
            return Ok(conn);
        };
        match sasl::authenticate(&mut conn, creds).await {
            Ok(expiry) => {
                conn.set_expiry(expiry);
                Ok(conn)
            }
            Err(e) => {
                if let Some(f) = e.downcast_ref::<AuthFailed>() {
                    metrics::sasl_failure("strait", f.mechanism.name());
                    warn!(
                        mechanism = %f.mechanism,
                        username = %f.username,
                        broker = %f.broker,
                        error = %f.reason,
                        "Strait's own SASL authentication failed"
                    );
                }
                Err(e.context(format!("SASL authentication to broker {}", conn.addr())))
            }
        }
    }
}
