//! The debug API on the admin listener (JSON), behind [`Access`]:
//!
//! - `GET /debug/topics`: every topic of the cluster and its partition count;
//! - `GET /debug/groups`: every followed consumer group, its lag and status;
//! - `GET /debug/lag/{group}`: lag per partition of one group;
//! - `GET /debug/stuck/{group}/{topic}/{partition}`: the record the group
//!   would be handed next on that partition, and a kcat command for it;
//! - `GET /debug/tail/{topic}?from=&partition=&key=&header=&contains=&json=&filter=`:
//!   server-sent events, one per record that passes the filters (`filter`
//!   is a CEL expression, `debug::cel`), and the viewer's counters every
//!   second;
//! - `GET /debug/route/{trace_id}`: every produce, fetch and commit of the
//!   records carrying a trace id, in time order;
//! - `GET /debug/mirror`: per mirrored topic, its policy, the records read
//!   and, per sink, written and dropped by reason.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::debug::cel::Expr;
use crate::debug::stuck::{values_shown, StuckError};
use crate::debug::tail::{self, Filter, Start};
use crate::debug::Debug;

pub fn routes() -> Router<Debug> {
    Router::new()
        .route("/debug/topics", get(topics))
        .route("/debug/groups", get(groups))
        .route("/debug/lag/{group}", get(lag))
        .route("/debug/stuck/{group}/{topic}/{partition}", get(stuck))
        .route("/debug/tail/{topic}", get(tail))
        .route("/debug/route/{trace_id}", get(route))
        .route("/debug/mirror", get(mirror))
}

async fn route(State(d): State<Debug>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = refused(&d, &headers) {
        return r;
    }
    let trace_id = match u128::from_str_radix(&id, 16) {
        Ok(t) if id.len() == 32 => t,
        _ => {
            return bad(format!(
                "{id:?} is not a trace id (32 hex digits, as in traceparent)"
            ))
        }
    };
    match crate::debug::route::route(&d.traces, trace_id) {
        Some(r) => Json(r).into_response(),
        None => {
            let why = format!(
                "trace {id} is not in the trace index: its records were not produced through this Strait \
                 under a trace policy, or have aged out (limits.trace_index_entries)\n"
            );
            (StatusCode::NOT_FOUND, why).into_response()
        }
    }
}

async fn mirror(State(d): State<Debug>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&d, &headers) {
        return r;
    }
    Json(d.mirror.snapshot()).into_response()
}

/// The debug API's access check (`debug.token_file`): the refusal to send,
/// or None to go on.
pub(super) fn refused(d: &Debug, headers: &HeaderMap) -> Option<Response> {
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

async fn topics(State(d): State<Debug>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&d, &headers) {
        return r;
    }
    match d.stuck.client.topics().await {
        Ok(topics) => Json(serde_json::json!({ "topics": topics })).into_response(),
        Err(e) => {
            let why = format!("the cluster did not list its topics: {e}\n");
            (StatusCode::BAD_GATEWAY, why).into_response()
        }
    }
}

async fn groups(State(d): State<Debug>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&d, &headers) {
        return r;
    }
    let mut v = serde_json::to_value(d.lag.overview()).unwrap_or_default();
    // The instances whose observations this one merges (itself alone
    // without debug.share_observations).
    if let (Some(s), Some(o)) = (&d.shared, v.as_object_mut()) {
        o.insert("instances".into(), s.instances().into());
    }
    Json(v).into_response()
}

async fn lag(State(d): State<Debug>, headers: HeaderMap, Path(group): Path<String>) -> Response {
    if let Some(r) = refused(&d, &headers) {
        return r;
    }
    let observed = d.tap.as_ref().map(|t| &*t.observed);
    match d.lag.group(&group) {
        Some(g) => {
            let shared = d.shared.as_deref();
            Json(crate::debug::seen::with_observed(g, observed, shared)).into_response()
        }
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

fn bad(why: String) -> Response {
    (StatusCode::BAD_REQUEST, why + "\n").into_response()
}

async fn tail(
    State(d): State<Debug>,
    headers: HeaderMap,
    Path(topic): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = refused(&d, &headers) {
        return r;
    }
    let known = [
        "from",
        "partition",
        "key",
        "header",
        "contains",
        "json",
        "filter",
    ];
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return bad(format!(
            "unknown parameter {k:?}; known: {}",
            known.join(", ")
        ));
    }
    let from = q.get("from").map_or("latest", String::as_str);
    let Some(start) = Start::parse(from) else {
        return bad(format!(
            "from={from:?}: use latest, earliest, offset:N or time:MS (ms since the epoch)"
        ));
    };
    let partition = match q.get("partition").map(|p| p.parse::<i32>()) {
        None => None,
        Some(Ok(p)) if p >= 0 => Some(p),
        Some(_) => {
            return bad(format!(
                "partition={:?} is not a partition number",
                q["partition"]
            ))
        }
    };
    let json = match q.get("json") {
        None => None,
        Some(j) => match j.split_once('=') {
            Some((path, value)) if !path.is_empty() => Some((path.to_string(), value.to_string())),
            _ => return bad(format!("json={j:?}: use json=field.path=value")),
        },
    };
    let cel = match q.get("filter").cloned() {
        None => None,
        // Compiled once for the viewer, off the reactor like its runs.
        Some(text) => match d.stuck.offload.run(move || Expr::compile(&text)).await {
            Ok(Ok(e)) => Some(Arc::new(e)),
            Ok(Err(e)) => return bad(e.to_string()),
            Err(_) => return bad("filter could not be parsed".into()),
        },
    };
    let filter = Filter {
        partition,
        key: q.get("key").cloned(),
        header: q.get("header").cloned(),
        contains: q.get("contains").filter(|c| !c.is_empty()).cloned(),
        json,
        cel,
    };
    let values = values_shown(&d.stuck.policies, &topic);
    if !values && filter.reads_values() {
        let why = format!(
            "the policy of {topic:?} hides its values: filters on values (contains, json, \
             a filter reading value or json) are refused\n"
        );
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let Some(slot) = d.viewers.take() else {
        let why = format!(
            "{} live-tail viewers already: try again later\n",
            tail::MAX_VIEWERS
        );
        return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    };
    let client = d.stuck.client.clone();
    let offload = d.stuck.offload.clone();
    match tail::start(client, offload, topic.clone(), start, filter, values, slot).await {
        Ok(rx) => {
            let events = futures::stream::unfold(rx, |mut rx| async move {
                let e = rx.recv().await?;
                let sse = Event::default()
                    .json_data(&e)
                    .unwrap_or_else(|_| Event::default());
                Some((Ok::<_, Infallible>(sse), rx))
            });
            Sse::new(events)
                .keep_alive(KeepAlive::default())
                .into_response()
        }
        Err(why) if why.contains("does not exist") || why.contains("has no partition") => {
            (StatusCode::NOT_FOUND, why + "\n").into_response()
        }
        Err(why) => (StatusCode::BAD_GATEWAY, why + "\n").into_response(),
    }
}
