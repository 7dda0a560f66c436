//! `strait bench` against the suite's broker: a small run reports every
//! figure it promises as JSON and deletes its topics; a threshold it cannot
//! meet fails it (exit 1) naming the figure; bad options and an unreachable
//! cluster are exit 2 with the reason on the last line. (The numbers of a
//! debug build mean nothing: benchmarks measure release builds.)

use std::process::Command;

use serde_json::Value;
use strait_integration::{cluster, harness, run, strait_bin};

/// `strait bench ARGS`: (exit code, stdout, stderr).
fn bench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(strait_bin())
        .arg("bench")
        .args(args)
        .output()
        .expect("run strait bench");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or_default()
}

fn bench_topics(bootstrap: &str) -> Vec<String> {
    let out = run(&mut harness(&[
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--list",
    ]));
    out.assert_ok("kafka-topics --list");
    out.stdout
        .lines()
        .filter(|t| t.starts_with("strait-bench-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_small_run_reports_every_figure_and_a_tight_threshold_fails_it() {
    let broker = cluster(1);
    let before = bench_topics(&broker);
    let small = [
        "--bootstrap",
        broker.as_str(),
        "--records",
        "3000",
        "--record-size",
        "200",
        "--keys",
        "10",
        "--pairs",
        "2",
        "--quiet",
    ];
    let mut args = small.to_vec();
    args.push("--json");
    let (code, stdout, stderr) = bench(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        last_line(&stderr).starts_with("strait bench: pass"),
        "{stderr}"
    );
    let v: Value = serde_json::from_str(&stdout).expect("--json prints one JSON document");
    let pairs = v["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[0]["strait_first"], false);
    assert_eq!(pairs[1]["strait_first"], true);
    for p in pairs {
        for side in ["direct", "strait"] {
            assert!(p[side]["produce_mb_s"].as_f64().unwrap() > 0.0, "{p:#}");
            assert!(
                p[side]["consume_records_s"].as_f64().unwrap() > 0.0,
                "{p:#}"
            );
            assert!(p[side]["p99_us"].as_u64().unwrap() > 0, "{p:#}");
        }
        assert!(
            p["strait"]["cpu_produce_s"].as_f64().unwrap() > 0.0,
            "{p:#}"
        );
        assert!(p["direct"]["cpu_produce_s"].is_null(), "{p:#}");
    }
    for key in [
        "produce_ratio",
        "consume_ratio",
        "p99_added_us",
        "cpu_ms_per_mb_produce",
        "cpu_ms_per_mb_consume",
        "cpu_us_per_produce_request",
        "cpu_us_per_fetch_request",
    ] {
        let s = &v["summary"][key];
        let (median, min, max) = (
            s["median"].as_f64().unwrap_or(f64::NAN),
            s["min"].as_f64().unwrap_or(f64::NAN),
            s["max"].as_f64().unwrap_or(f64::NAN),
        );
        assert!(min <= median && median <= max, "{key}: {s}");
    }
    assert_eq!(v["verdict"]["pass"], true);
    assert_eq!(
        bench_topics(&broker),
        before,
        "the bench deletes its topics"
    );

    // The same run as a table, against a ceiling no Strait meets.
    let mut args = small.to_vec();
    args.extend(["--max-cpu-ms-per-mb", "0.000001", "--markdown"]);
    let (code, stdout, _) = bench(&args);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("| produce MB/s ratio (Strait / direct) |"),
        "{stdout}"
    );
    let why = last_line(&stdout);
    assert!(
        why.starts_with("strait bench: FAILED:") && why.contains("Strait CPU ms per MB (produce)"),
        "{why}"
    );
}

#[test]
fn bad_options_and_an_unreachable_cluster_cannot_run() {
    let (code, stdout, stderr) = bench(&[
        "--bootstrap",
        "127.0.0.1:1",
        "--acks",
        "2",
        "--records",
        "0",
    ]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("--acks must be -1, 0 or 1"), "{stderr}");
    assert!(stderr.contains("--records must be > 0"), "{stderr}");
    assert!(
        last_line(&stdout).contains("could not run: 2 bad option(s)"),
        "{stdout}"
    );

    let (code, stdout, _) = bench(&["--bootstrap", "127.0.0.1:1", "--quiet"]);
    assert_eq!(code, 2, "{stdout}");
    let why = last_line(&stdout);
    assert!(
        why.starts_with("strait bench: could not run:") && why.contains("127.0.0.1:1"),
        "{why}"
    );

    let dir = strait_integration::tempdir::Dir::new("bench-baseline");
    let baseline = dir.path().join("baseline.json");
    std::fs::write(&baseline, "{}").unwrap();
    let (code, stdout, _) = bench(&[
        "--bootstrap",
        "127.0.0.1:1",
        "--baseline",
        baseline.to_str().unwrap(),
        "--max-regression",
        "10",
    ]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        last_line(&stdout).contains("no \"medians\" object"),
        "{stdout}"
    );
}
