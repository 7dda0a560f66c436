//! The admin listener: Prometheus `/metrics`, `/healthz` and `/readyz`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::Shared;

#[derive(Clone)]
struct AdminState {
    metrics: PrometheusHandle,
    shared: Arc<Shared>,
}

pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/brokers", get(brokers))
        .with_state(AdminState { metrics, shared });
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "admin listener failed");
    }
}

async fn render_metrics(State(s): State<AdminState>) -> String {
    s.metrics.render()
}

async fn ready(State(s): State<AdminState>) -> (StatusCode, &'static str) {
    if s.shared.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: cluster not discovered yet\n",
        )
    }
}

/// `node_id proxy_port upstream` per line: the port-per-broker map.
async fn brokers(State(s): State<AdminState>) -> String {
    s.shared
        .router
        .snapshot()
        .into_iter()
        .map(|(id, n)| format!("{id} {} {}\n", n.port, n.upstream))
        .collect()
}
