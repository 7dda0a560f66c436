//! `strait trace ID`: an event's route from a running Strait, every
//! produce, fetch and commit of the records carrying a trace id, in time
//! order.

use std::process::ExitCode;

use serde_json::Value;

use crate::debug_cli::{s, show, table, Target};

pub fn trace(target: &Target, trace_id: &str) -> ExitCode {
    let id = trace_id.trim().to_ascii_lowercase();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        eprintln!("error: {trace_id:?} is not a trace id (32 hex digits, as in traceparent)");
        return ExitCode::FAILURE;
    }
    show(target, &format!("/debug/route/{id}"), print_route)
}

fn print_route(v: &Value) {
    println!("trace {}", s(v, "trace_id"));
    let start = v["events"][0]["at_ms"].as_u64().unwrap_or(0);
    let rows = v["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    let at = e["at_ms"].as_u64().unwrap_or(start);
                    vec![
                        format!("+{} ms", at.saturating_sub(start)),
                        s(e, "kind"),
                        s(e, "topic"),
                        s(e, "partition"),
                        s(e, "offset"),
                        s(e, "client_id"),
                        s(e, "group"),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(
        &[
            "at",
            "event",
            "topic",
            "partition",
            "offset",
            "client",
            "group",
        ],
        rows,
    );
}
