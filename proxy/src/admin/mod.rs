//! The admin listener: Prometheus `/metrics`, `/healthz`, `/readyz`, the
//! broker map (`/brokers`), the trace index (`/traces/{trace_id}`), the
//! debug API (`debug.rs`, `/debug/...`) and the web UI on it (`ui.rs`,
//! `/ui/`).

mod debug;
mod ui;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cluster::ClusterView;
use crate::pipeline::TraceIndex;

/// What the admin endpoints read.
#[derive(Clone)]
pub struct AdminState {
    pub metrics: PrometheusHandle,
    pub cluster: Arc<ClusterView>,
    pub traces: Arc<TraceIndex>,
    /// True once the proxy drains: not ready whatever the brokers do.
    pub draining: watch::Receiver<bool>,
    pub debug: crate::debug::Debug,
}

pub async fn serve(listener: TcpListener, state: AdminState, mut shutdown: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/brokers", get(brokers))
        .route("/traces/{trace_id}", get(trace_route))
        .merge(debug::routes().with_state(state.debug.clone()))
        .merge(ui::routes())
        .with_state(state);
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
    if *s.draining.borrow() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: draining connections before exit\n",
        )
    } else if s.cluster.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: cluster not discovered yet, or no broker answers\n",
        )
    }
}

/// `node_id proxy_port upstream` per line: the port-per-broker map. Behind
/// the debug API's token, as `/traces` is: only probes and scrapers are
/// open.
async fn brokers(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(r) = debug::refused(&s.debug, &headers) {
        return r;
    }
    let map: String = s
        .cluster
        .routes()
        .snapshot()
        .into_iter()
        .map(|(id, n)| format!("{id} {} {}\n", n.port, n.upstream))
        .collect();
    map.into_response()
}

/// `topic partition offset client` per line: where the records of a trace
/// (32 hex digits, as in `traceparent`) landed, oldest first.
async fn trace_route(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
) -> Response {
    if let Some(r) = debug::refused(&s.debug, &headers) {
        return r;
    }
    trace_lines(&s.traces, &trace_id).into_response()
}

fn trace_lines(traces: &TraceIndex, trace_id: &str) -> (StatusCode, String) {
    let id = match u128::from_str_radix(trace_id, 16) {
        Ok(id) if trace_id.len() == 32 => id,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                format!("{trace_id:?} is not a trace id (32 hex digits)\n"),
            )
        }
    };
    let hops = traces.lookup(id);
    if hops.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            format!("trace {trace_id} is not in the trace index\n"),
        );
    }
    let body = hops
        .iter()
        .map(|h| {
            let large = h
                .original_size
                .map(|n| format!(" value={n}B(offloaded)"))
                .unwrap_or_default();
            format!(
                "{} {} {} {}{large}\n",
                h.topic,
                h.partition,
                h.offset,
                h.client.as_deref().unwrap_or("-")
            )
        })
        .collect();
    (StatusCode::OK, body)
}
