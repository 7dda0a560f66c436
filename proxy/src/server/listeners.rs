//! The listener manager and the accept loops. The bootstrap listener is
//! bound at start; broker listeners are bound when the cluster view learns
//! a broker (at discovery, or from a response naming a new one) and asks by
//! channel, so nothing below the server needs to know how listeners start.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::drain::Drain;
use crate::cluster::{Bind, Target};
use crate::connection::{self, Env};
use crate::io::Io;
use crate::metrics;

/// What accept loops need: the connection environment, client TLS, when
/// to stop (the drain flag), and the drain's count of open connections.
#[derive(Clone)]
pub struct Accept {
    pub env: Arc<Env>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub shutdown: watch::Receiver<bool>,
    pub drain: Arc<Drain>,
}

/// Binds a listener for every [`Bind`] request and starts its accept loop,
/// until the cluster view goes away or the proxy shuts down.
pub async fn manage(mut requests: mpsc::Receiver<Bind>, bind_ip: IpAddr, accept: Accept) {
    let mut shutdown = accept.shutdown.clone();
    loop {
        let bind = tokio::select! {
            _ = shutdown.changed() => return,
            b = requests.recv() => match b {
                Some(b) => b,
                None => return,
            },
        };
        let addr = SocketAddr::new(bind_ip, bind.port);
        let bound = match TcpListener::bind(addr).await {
            Ok(listener) => {
                let port = listener.local_addr().map_or(bind.port, |a| a.port());
                info!(node_id = bind.node_id, listen = %SocketAddr::new(bind_ip, port),
                      upstream = ?accept.env.cluster.routes().upstream_of(bind.node_id), "broker listener started");
                tokio::spawn(accept_loop(
                    accept.clone(),
                    listener,
                    Target::Node(bind.node_id),
                ));
                Some(port)
            }
            Err(e) => {
                error!(node_id = bind.node_id, listen = %addr, error = %e, "cannot bind broker listener");
                None
            }
        };
        let _ = bind.reply.send(bound);
    }
}

/// Accepts clients on one listener until the drain begins, then closes it
/// (so a restarted Strait can bind the port); each connection gets a task
/// of its own, counted by the drain.
pub async fn accept_loop(accept: Accept, listener: TcpListener, target: Target) {
    let mut shutdown = accept.shutdown.clone();
    let name: &'static str = if target == Target::Bootstrap {
        "bootstrap"
    } else {
        "broker"
    };
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            a = listener.accept() => a,
        };
        let (sock, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(listener = %target, error = %e, "accept failed");
                metrics::error("client", "accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        sock.set_nodelay(true).ok();
        let accept = accept.clone();
        let tracked = accept.drain.track();
        tokio::spawn(async move {
            let _tracked = tracked;
            let gauge = metrics::connections(name);
            metrics::connections_total(name).increment(1);
            gauge.increment(1.0);
            let io: Io = match &accept.tls {
                None => {
                    let (r, w) = sock.into_split();
                    (Box::new(r), Box::new(w))
                }
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await
                    {
                        Ok(Ok(stream)) => {
                            let (r, w) = tokio::io::split(stream);
                            (Box::new(r), Box::new(w))
                        }
                        Ok(Err(e)) => {
                            metrics::error("client", "tls_handshake");
                            warn!(client = %peer, listener = %target, error = %e, "TLS handshake failed; connection refused");
                            gauge.decrement(1.0);
                            return;
                        }
                        Err(_) => {
                            metrics::error("client", "tls_handshake");
                            warn!(client = %peer, listener = %target, "TLS handshake timed out; connection refused");
                            gauge.decrement(1.0);
                            return;
                        }
                    }
                }
            };
            connection::serve(accept.env, io, peer, target).await;
            gauge.decrement(1.0);
        });
    }
}
