//! Real clients through Strait: Java and librdkafka consumer groups that
//! rebalance, commit and resume, librdkafka producing and consuming, and the
//! `/metrics` counts those runs leave behind.

use strait_integration::{cluster, create_topic, java, python, run, unique, Strait};

#[test]
fn java_consumer_group_joins_rebalances_and_commits() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("group");
    let out = run(&mut java(
        "GroupRebalance",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--records",
            "2000",
            "--timeout-ms",
            "90000",
        ],
    ));
    out.assert_ok("GroupRebalance through Strait");
    let summary = out.summary();
    assert_eq!(summary["ok"], true, "{summary}");
    println!("GroupRebalance: {summary}");
    assert!(
        strait.warnings().is_empty(),
        "unexpected warnings: {:#?}",
        strait.warnings()
    );
}

#[test]
fn librdkafka_consumer_group_joins_rebalances_commits_and_resumes() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("rdgroup");
    create_topic(&upstream, &topic, 3, 1);
    let out = run(&mut python(
        "group.py",
        &["--bootstrap", &strait.bootstrap, "--topic", &topic],
    ));
    out.assert_ok("confluent-kafka consumer group through Strait");
    let steps: Vec<String> = out
        .json_lines()
        .iter()
        .filter(|l| l["type"] == "step")
        .map(|l| l["step"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        steps,
        [
            "produced",
            "A joined",
            "B joined, rebalanced",
            "B left, rebalanced",
            "C resumed"
        ],
        "{}",
        out.stdout
    );
    println!("librdkafka group: {}", out.summary());
}

#[test]
fn librdkafka_produces_and_consumes_and_metrics_count_it() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("rdkafka");
    let out = run(&mut python(
        "produce_consume.py",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &topic,
            "--records",
            "5000",
        ],
    ));
    out.assert_ok("confluent-kafka produce/consume through Strait");
    let summary = out.summary();
    assert_eq!(summary["ok"], true, "{summary}");
    println!("confluent-kafka: {summary}");

    let (status, metrics) = strait.admin_get("/metrics");
    assert_eq!(status, 200);
    let count = |api: &str| -> f64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("strait_requests_total{") && l.contains(&format!("api=\"{api}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        count("Produce") >= 1.0,
        "Produce requests counted:\n{metrics}"
    );
    assert!(count("Fetch") >= 1.0, "Fetch requests counted:\n{metrics}");
    assert!(count("Metadata") >= 1.0);
    for series in [
        "strait_bytes_total{api=\"Produce\",direction=\"request\"}",
        "strait_bytes_total{api=\"Fetch\",direction=\"response\"}",
        "strait_request_latency_seconds_bucket{api=\"Produce\"",
        "strait_client_connections{listener=\"broker\"}",
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from /metrics:\n{metrics}"
        );
    }
    assert!(
        strait.warnings().is_empty(),
        "unexpected warnings: {:#?}",
        strait.warnings()
    );
}
