//! `strait lag`, `strait stuck` and `strait tail`: the debug API of a
//! running Strait (its admin listener), printed for people, or as the
//! API's JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

/// Where the running Strait is, and how to print.
#[derive(Args)]
pub struct Target {
    /// The running Strait's admin listener.
    #[arg(long, default_value = "127.0.0.1:9644")]
    pub admin: String,
    /// A file holding the debug API's bearer token (debug.token_file).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `strait lag [GROUP]`.
pub fn lag(target: &Target, group: Option<&str>) -> ExitCode {
    let path = match group {
        Some(g) => format!("/debug/lag/{}", segment(g)),
        None => "/debug/groups".to_string(),
    };
    show(target, &path, |v| match group {
        Some(_) => print_group(v),
        None => print_groups(v),
    })
}

/// `strait stuck GROUP TOPIC PARTITION`.
pub fn stuck(target: &Target, group: &str, topic: &str, partition: i32) -> ExitCode {
    let path = format!(
        "/debug/stuck/{}/{}/{partition}",
        segment(group),
        segment(topic)
    );
    show(target, &path, print_stuck)
}

/// `strait tail TOPIC`: the filters of the API, as flags.
#[derive(Args)]
pub struct TailArgs {
    /// latest (default), earliest, offset:N or time:MS.
    #[arg(long, default_value = "latest")]
    pub from: String,
    #[arg(long)]
    pub partition: Option<i32>,
    /// Only records with this key.
    #[arg(long)]
    pub key: Option<String>,
    /// Only records with this header (NAME or NAME=VALUE).
    #[arg(long)]
    pub header: Option<String>,
    /// Only records whose value contains this text.
    #[arg(long)]
    pub contains: Option<String>,
    /// Only records whose JSON value has FIELD.PATH=VALUE.
    #[arg(long, value_name = "FIELD.PATH=VALUE")]
    pub json_field: Option<String>,
    /// Only records for which this CEL expression is true (variables: key,
    /// value, json, headers, partition, offset, timestamp, truncated).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<u64>,
}

pub fn tail(target: &Target, topic: &str, args: &TailArgs) -> ExitCode {
    let mut query = vec![("from", args.from.clone())];
    let opts = [
        ("partition", args.partition.map(|p| p.to_string())),
        ("key", args.key.clone()),
        ("header", args.header.clone()),
        ("contains", args.contains.clone()),
        ("json", args.json_field.clone()),
        ("filter", args.filter.clone()),
    ];
    query.extend(opts.into_iter().filter_map(|(k, v)| Some((k, v?))));
    let path = format!(
        "/debug/tail/{}?{}",
        segment(topic),
        query
            .iter()
            .map(|(k, v)| format!("{k}={}", segment(v)))
            .collect::<Vec<_>>()
            .join("&")
    );
    let mut shown = 0u64;
    let result = stream(target, &path, |event| {
        if target.json && event["type"] != "record" {
            // Counters and errors too, one JSON line each.
            println!("{event}");
        }
        match event["type"].as_str() {
            Some("record") => {
                shown += 1;
                if target.json {
                    println!("{event}");
                } else {
                    println!(
                        "{}@{}  {}  key {}\n{}",
                        s(event, "partition"),
                        s(event, "offset"),
                        s(event, "timestamp_ms"),
                        event["key"]["text"].as_str().unwrap_or("null"),
                        shown_value(&event["value"])
                    );
                }
            }
            Some("stats") if target.json => {}
            Some("stats") => eprintln!(
                "processed {}, passed the filter {}, filter errors {}, dropped (slow reader) {}, last at {}",
                s(event, "processed"),
                s(event, "passed"),
                s(event, "filter_errors"),
                s(event, "dropped"),
                s(event, "last_at_ms")
            ),
            Some("filter_error") if !target.json => {
                eprintln!("filter error (such records do not pass): {}", s(event, "message"))
            }
            Some("error") => {
                eprintln!("error: {}", s(event, "message"));
                return false;
            }
            _ => {}
        }
        args.limit.is_none_or(|l| shown < l)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn shown_value(v: &Value) -> String {
    match v["format"].as_str() {
        Some("hidden") => format!("(value hidden by policy, {} bytes)", s(v, "size")),
        Some("null") => "null".into(),
        _ => s(v, "text"),
    }
}

fn token(target: &Target) -> anyhow::Result<Option<String>> {
    match &target.token_file {
        Some(f) => Ok(Some(
            std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", f.display()))?
                .trim()
                .to_string(),
        )),
        None => Ok(None),
    }
}

/// Reads server-sent events from `path`, handing each event's JSON to
/// `each` until it returns false or the stream ends.
fn stream(target: &Target, path: &str, mut each: impl FnMut(&Value) -> bool) -> anyhow::Result<()> {
    let token = token(target)?;
    let url = format!("http://{}{path}", target.admin);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.get(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut resp = req.send().await.map_err(|e| {
            anyhow::anyhow!("{url}: {e} (is Strait running with its admin listener there? --admin)")
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            anyhow::bail!("{url}: {status}: {}", body.trim());
        }
        let mut buf = String::new();
        while let Some(chunk) = resp.chunk().await? {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for line in event.lines() {
                    let Some(data) = line.strip_prefix("data:") else {
                        continue;
                    };
                    let Ok(v) = serde_json::from_str::<Value>(data.trim_start()) else {
                        continue;
                    };
                    if !each(&v) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    })
}

pub(crate) fn show(target: &Target, path: &str, print: impl Fn(&Value)) -> ExitCode {
    match get(target, path) {
        Ok(v) if target.json => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(v) => {
            print(&v);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Percent-encodes a path segment (group ids and topics may hold anything).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn get(target: &Target, path: &str) -> anyhow::Result<Value> {
    let token = token(target)?;
    let url = format!("http://{}{path}", target.admin);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let mut req = client.get(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| {
            anyhow::anyhow!("{url}: {e} (is Strait running with its admin listener there? --admin)")
        })?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            anyhow::bail!("{url}: {status}: {}", body.trim());
        }
        serde_json::from_str(&body).map_err(|e| anyhow::anyhow!("{url}: not JSON: {e}"))
    })
}

pub(crate) fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.1}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

pub(crate) fn table(head: &[&str], rows: Vec<Vec<String>>) {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(head.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

fn print_groups(v: &Value) {
    if let Some(e) = v["error"].as_str() {
        println!("last evaluation failed: {e}");
    }
    let rows = v["groups"]
        .as_array()
        .map(|gs| {
            gs.iter()
                .map(|g| {
                    [
                        "group",
                        "protocol",
                        "state",
                        "members",
                        "partitions",
                        "lag",
                        "status",
                    ]
                    .iter()
                    .map(|k| s(g, k))
                    .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    table(
        &[
            "GROUP",
            "PROTOCOL",
            "STATE",
            "MEMBERS",
            "PARTITIONS",
            "LAG",
            "STATUS",
        ],
        rows,
    );
}

fn print_group(v: &Value) {
    println!(
        "group {} ({}, {}, {} members): lag {}, status {}",
        s(v, "group"),
        s(v, "protocol"),
        s(v, "state"),
        v["members"].as_array().map_or(0, Vec::len),
        s(v, "lag"),
        s(v, "status")
    );
    if let Some(e) = v["error"].as_str() {
        println!("last evaluation failed (showing the one before): {e}");
    }
    let keys = [
        "topic",
        "partition",
        "committed",
        "end_offset",
        "stable_offset",
        "lag",
        "lag_kafka",
        "lag_ms",
        "produce_rate",
        "consume_rate",
        "client_id",
        "host",
        "status",
    ];
    let rows = v["partitions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    keys.iter()
                        .map(|k| {
                            let cell = s(p, k);
                            if *k == "lag" && p["lag_exact"] == Value::Bool(false) {
                                format!("~{cell}")
                            } else {
                                cell
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    table(
        &[
            "TOPIC",
            "PARTITION",
            "COMMITTED",
            "END",
            "STABLE-END",
            "LAG",
            "LAG(KAFKA)",
            "LAG-MS",
            "PRODUCE/S",
            "CONSUME/S",
            "CLIENT-ID",
            "HOST",
            "STATUS",
        ],
        rows,
    );
}

fn shown(v: &Value) -> String {
    match v["format"].as_str() {
        Some("null") => "null".into(),
        Some("hidden") => format!("(hidden by policy, {} bytes)", s(v, "size")),
        Some(f) => format!(
            "({f}, {} bytes{})\n{}",
            s(v, "size"),
            if v["truncated"] == Value::Bool(true) {
                ", truncated"
            } else {
                ""
            },
            s(v, "text")
        ),
        None => "-".into(),
    }
}

fn print_stuck(v: &Value) {
    println!(
        "group {} waits on {}/{} at offset {} (committed {}), produced {} ms ago",
        s(v, "group"),
        s(v, "topic"),
        s(v, "partition"),
        s(v, "offset"),
        s(v, "committed"),
        s(v, "age_ms")
    );
    println!("timestamp: {}", s(v, "timestamp_ms"));
    println!("key: {}", shown(&v["key"]));
    if let Some(hs) = v["headers"].as_array() {
        println!("headers:");
        for h in hs {
            println!("  {}: {}", h[0].as_str().unwrap_or("?"), shown(&h[1]));
        }
    }
    let restored = if v["restored_large_record"] == Value::Bool(true) {
        " [large record, restored]"
    } else {
        ""
    };
    println!("value{restored}: {}", shown(&v["value"]));
    println!("kcat: {}", s(v, "kcat"));
}
