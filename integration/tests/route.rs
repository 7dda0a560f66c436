//! An event's route (`/debug/route/{trace_id}`, `strait trace`): a record
//! produced through Strait with a traceparent (librdkafka's kcat), consumed
//! by a Java service that forwards it to a second topic (headers copied),
//! and consumed there by a second Java group. The route shows both topics,
//! each produce, fetch and commit, the groups, in time order. The fetches
//! and commits come from the observation tap; the produces from the trace
//! index.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use strait_integration::tempdir::Dir;
use strait_integration::{
    cluster, create_topic, eventually, http_get, java, kcat_produce, run, strait_bin, unique,
    Strait,
};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traced_produce(bootstrap: &str, topic: &str) {
    use std::io::Write;
    let mut child = Command::new("kcat")
        .args([
            "-P", "-b", bootstrap, "-t", topic, "-p", "0", "-k", "order-7",
        ])
        .args(["-H", &format!("traceparent=00-{TRACE}-00f067aa0ba902b7-01")])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"order\":7}\n").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success(), "kcat produce to {topic}");
}

fn consume(bootstrap: &str, topic: &str, group: &str, client: &str, extra: &[&str]) {
    let mut args = vec![
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--client-id",
        client,
        "--records",
        "3",
    ];
    args.extend_from_slice(extra);
    run(&mut java("GroupConsume", &args)).assert_ok(&format!("GroupConsume {group}"));
}

#[test]
fn a_trace_route_crosses_topics_through_a_forwarding_service_in_order() {
    let broker = cluster(1);
    let policies = Dir::new("route-policies");
    let (first, second) = (unique("route-a"), unique("route-b"));
    for t in [&first, &second] {
        std::fs::write(
            policies.path().join(format!("{t}.toml")),
            format!(
                "[[policy]]\nname = \"{t}-trace\"\ntopics = {{ exact = \"{t}\" }}\n\
                 [policy.trace]\nclient_id_header = \"strait-client-id\"\n"
            ),
        )
        .unwrap();
        create_topic(&broker, t, 1, 1);
    }
    let (s, _config) = Strait::with_config(&format!(
        "[listen]\nbootstrap = '127.0.0.1:0'\n[upstream]\nbootstrap = ['{broker}']\n\
         [admin]\nlisten = '127.0.0.1:0'\n[policies]\ndir = {:?}\n",
        policies.path()
    ));
    s.wait_ready();

    // Bad trace ids are refused, an unknown one is a clear 404.
    let (code, body) = http_get(&s.admin, "/debug/route/not-a-trace");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("32 hex digits"), "{body}");
    let (code, body) = http_get(&s.admin, &format!("/debug/route/{}", "0".repeat(31) + "1"));
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("not in the trace index"), "{body}");

    // One traced record between two untraced ones, through Strait.
    let plain = |i: usize| vec![(format!("k{i}"), format!("{{\"n\":{i}}}"))];
    kcat_produce(&s.bootstrap, &first, 0, &plain(0));
    traced_produce(&s.bootstrap, &first);
    kcat_produce(&s.bootstrap, &first, 0, &plain(2));
    let (g1, g2) = (unique("g-forward"), unique("g-sink"));
    consume(
        &s.bootstrap,
        &first,
        &g1,
        "svc-a",
        &["--forward-to", &second],
    );
    consume(&s.bootstrap, &second, &g2, "svc-b", &[]);

    let want = [
        ("produce", first.as_str()),
        ("fetch", first.as_str()),
        ("commit", first.as_str()),
        ("produce", second.as_str()),
        ("fetch", second.as_str()),
        ("commit", second.as_str()),
    ];
    let route = eventually(
        "the route to show both topics' produce, fetch and commit",
        Duration::from_secs(30),
        || {
            let (code, body) = http_get(&s.admin, &format!("/debug/route/{TRACE}"));
            let v: Value = serde_json::from_str(&body).ok().filter(|_| code == 200)?;
            let events = v["events"].as_array()?.clone();
            let has = |k: &str, t: &str| events.iter().any(|e| e["kind"] == k && e["topic"] == t);
            want.iter().all(|(k, t)| has(k, t)).then_some(v)
        },
    );
    eprintln!("route: {route:#}");
    let events = route["events"].as_array().unwrap();
    assert_eq!(route["trace_id"], TRACE);
    assert_eq!(events.len(), 6, "one of each, no more: {route:#}");
    let at: Vec<u64> = events
        .iter()
        .map(|e| e["at_ms"].as_u64().unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "time order: {route:#}");
    let find = |k: &str, t: &str| {
        events
            .iter()
            .find(|e| e["kind"] == k && e["topic"] == t)
            .unwrap()
    };
    let time = |k, t| find(k, t)["at_ms"].as_u64().unwrap();
    // Causality: each hop after the one it depends on.
    assert!(
        time("produce", &first) <= time("fetch", &first),
        "{route:#}"
    );
    assert!(
        time("fetch", &first) <= time("produce", &second),
        "{route:#}"
    );
    assert!(time("fetch", &first) <= time("commit", &first), "{route:#}");
    assert!(
        time("produce", &second) <= time("fetch", &second),
        "{route:#}"
    );
    assert!(
        time("fetch", &second) <= time("commit", &second),
        "{route:#}"
    );
    // Offsets: the traced record was the second on the first topic, the
    // first forwarded-with-its-trace on the second.
    assert_eq!(find("produce", &first)["offset"], 1, "{route:#}");
    assert_eq!(find("fetch", &first)["offset"], 1);
    assert_eq!(find("produce", &second)["offset"], 1, "{route:#}");
    // Who: the consuming groups and clients.
    assert_eq!(find("commit", &first)["group"], g1.as_str());
    assert_eq!(find("fetch", &first)["client_id"], "svc-a");
    assert_eq!(find("fetch", &first)["group"], g1.as_str());
    assert_eq!(find("produce", &second)["client_id"], "svc-a-forwarder");
    assert_eq!(find("commit", &second)["group"], g2.as_str());
    assert_eq!(find("fetch", &second)["client_id"], "svc-b");

    // The CLI prints the same route, readable.
    let out = run(Command::new(strait_bin()).args(["trace", TRACE, "--admin", &s.admin]));
    out.assert_ok("strait trace");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        8,
        "a title, a head and six events:\n{}",
        out.stdout
    );
    // Each row: "+N ms", kind, topic, partition, offset, client, group.
    let printed: Vec<(String, String)> = lines[2..]
        .iter()
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[2].to_string(), c[3].to_string())
        })
        .collect();
    let api: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["topic"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(printed, api, "{}", out.stdout);
    let bad = run(Command::new(strait_bin()).args(["trace", "xyz", "--admin", &s.admin]));
    assert!(!bad.ok);
    assert!(bad.stderr.contains("32 hex digits"), "{}", bad.stderr);
}
