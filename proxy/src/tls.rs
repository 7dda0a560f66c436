//! TLS with rustls: the client-facing acceptor (optionally requiring client
//! certificates) and the connector to brokers.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{ClientTlsConfig, UpstreamTlsConfig};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing certificates in {}", path.display()))?;
    if certs.is_empty() {
        return Err(anyhow!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("parsing private key in {}", path.display()))?
        .ok_or_else(|| anyhow!("{} holds no PEM private key", path.display()))
}

fn roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for c in certs(path)? {
        store
            .add(c)
            .with_context(|| format!("adding CA certificate from {}", path.display()))?;
    }
    Ok(store)
}

/// Builds the client-facing acceptor.
pub fn acceptor(cfg: &ClientTlsConfig) -> anyhow::Result<TlsAcceptor> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &cfg.client_ca_file {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .with_context(|| format!("client CA {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs(&cfg.cert_file)?, key(&cfg.key_file)?)
        .with_context(|| {
            format!(
                "certificate {} with key {}",
                cfg.cert_file.display(),
                cfg.key_file.display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The connector to brokers, with the name to verify (None: the broker's host).
pub struct Upstream {
    pub connector: TlsConnector,
    pub server_name: Option<ServerName<'static>>,
}

pub fn connector(cfg: &UpstreamTlsConfig) -> anyhow::Result<Upstream> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots(&cfg.ca_file)?)
        .with_no_client_auth();
    let server_name = cfg
        .server_name
        .as_ref()
        .map(|n| {
            ServerName::try_from(n.clone())
                .map_err(|e| anyhow!("upstream.tls.server_name {n:?}: {e}"))
        })
        .transpose()?;
    Ok(Upstream {
        connector: TlsConnector::from(Arc::new(config)),
        server_name,
    })
}

/// The name to verify for a `host:port` broker address.
pub fn name_for(addr: &str) -> anyhow::Result<ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| anyhow!("broker host {host:?}: {e}"))
}
