//! The debug API on the admin listener (JSON), behind [`Access`]:
//!
//! - `GET /debug/groups`: every followed consumer group, its lag and status;
//! - `GET /debug/lag/{group}`: lag per partition of one group;
//! - `GET /debug/stuck/{group}/{topic}/{partition}`: the record the group
//!   would be handed next on that partition, and a kcat command for it.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::debug::stuck::StuckError;
use crate::debug::Debug;

pub fn routes() -> Router<Debug> {
    Router::new()
        .route("/debug/groups", get(groups))
        .route("/debug/lag/{group}", get(lag))
        .route("/debug/stuck/{group}/{topic}/{partition}", get(stuck))
}

fn refused(d: &Debug, headers: &HeaderMap) -> Option<Response> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    d.access.check(auth).err().map(|(code, why)| {
        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN);
        let mut r = (code, why).into_response();
        if code == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("a header value"),
            );
        }
        r
    })
}

async fn groups(State(d): State<Debug>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&d, &headers) {
        return r;
    }
    Json(d.lag.overview()).into_response()
}

async fn lag(State(d): State<Debug>, headers: HeaderMap, Path(group): Path<String>) -> Response {
    if let Some(r) = refused(&d, &headers) {
        return r;
    }
    match d.lag.group(&group) {
        Some(g) => Json(g).into_response(),
        None => {
            let o = d.lag.overview();
            let why = match o.error {
                Some(e) => format!("group {group:?} is not in the lag view; its last evaluation failed: {e}\n"),
                None => format!(
                    "group {group:?} is not in the lag view: not a consumer group of the cluster, or not listed yet (the view is evaluated every {} ms)\n",
                    o.interval_ms
                ),
            };
            (StatusCode::NOT_FOUND, why).into_response()
        }
    }
}

async fn stuck(
    State(d): State<Debug>,
    headers: HeaderMap,
    Path((group, topic, partition)): Path<(String, String, String)>,
) -> Response {
    if let Some(r) = refused(&d, &headers) {
        return r;
    }
    let Ok(partition) = partition.parse::<i32>() else {
        let why = format!("{partition:?} is not a partition number\n");
        return (StatusCode::BAD_REQUEST, why).into_response();
    };
    match d.stuck.read(&group, &topic, partition).await {
        Ok(m) => Json(m).into_response(),
        Err(e) => {
            let code = match &e {
                StuckError::NoCommit { .. } => StatusCode::NOT_FOUND,
                StuckError::CaughtUp { .. } => StatusCode::CONFLICT,
                StuckError::Kafka(k) if k.code() == Some(3) => StatusCode::NOT_FOUND,
                StuckError::Kafka(_) | StuckError::Unreadable { .. } => StatusCode::BAD_GATEWAY,
            };
            (code, format!("{e}\n")).into_response()
        }
    }
}
