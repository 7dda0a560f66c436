//! The bench's result: per pair and as median (min-max), for people (a
//! table), machines (JSON) and CI job summaries (Markdown).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::load::Done;

/// Payload bytes per MB (MiB: 2^20, as Kafka's perf tools count).
const MB: f64 = 1_048_576.0;

/// One side (direct or through Strait) of a pair.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    pub produce_mb_s: f64,
    pub produce_records_s: f64,
    pub consume_mb_s: f64,
    pub consume_records_s: f64,
    /// Payload MB (records × record size) produced and consumed.
    pub produced_mb: f64,
    pub consumed_mb: f64,
    pub produce_requests: u64,
    pub fetch_requests: u64,
    /// Produce round trips, microseconds.
    pub p50_us: Option<u32>,
    pub p99_us: Option<u32>,
    pub p999_us: Option<u32>,
    /// Strait's CPU seconds while this side produced and consumed (the
    /// Strait side only, when measurable).
    pub cpu_produce_s: Option<f64>,
    pub cpu_consume_s: Option<f64>,
    /// The load generator's own CPU seconds in the same phases (both sides).
    pub load_cpu_produce_s: Option<f64>,
    pub load_cpu_consume_s: Option<f64>,
}

impl Side {
    pub fn new(produced: &Done, consumed: &Done, record_size: usize) -> Side {
        let mut lat = produced.latencies_us.clone();
        lat.sort_unstable();
        let q =
            |x: f64| (!lat.is_empty()).then(|| lat[((lat.len() - 1) as f64 * x).round() as usize]);
        let rate = |d: &Done| {
            let s = d.elapsed.as_secs_f64().max(1e-9);
            (
                d.records as f64 * record_size as f64 / MB / s,
                d.records as f64 / s,
            )
        };
        let (produce_mb_s, produce_records_s) = rate(produced);
        let (consume_mb_s, consume_records_s) = rate(consumed);
        Side {
            produce_mb_s,
            produce_records_s,
            consume_mb_s,
            consume_records_s,
            produced_mb: produced.records as f64 * record_size as f64 / MB,
            consumed_mb: consumed.records as f64 * record_size as f64 / MB,
            produce_requests: produced.requests,
            fetch_requests: consumed.requests,
            p50_us: q(0.5),
            p99_us: q(0.99),
            p999_us: q(0.999),
            cpu_produce_s: None,
            cpu_consume_s: None,
            load_cpu_produce_s: None,
            load_cpu_consume_s: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub strait_first: bool,
    pub direct: Side,
    pub strait: Side,
}

/// The figures the gates read, each a median over the pairs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Medians {
    pub produce_ratio: Option<f64>,
    pub consume_ratio: Option<f64>,
    pub cpu_ms_per_mb_produce: Option<f64>,
    pub cpu_ms_per_mb_consume: Option<f64>,
    pub cpu_us_per_produce_request: Option<f64>,
    pub cpu_us_per_fetch_request: Option<f64>,
    pub p99_added_ms: Option<f64>,
    /// Strait's CPU ÷ the load generator's CPU for the same records: CPU per
    /// MB and per request in units of the machine's speed.
    pub strait_per_load_cpu_produce: Option<f64>,
    pub strait_per_load_cpu_consume: Option<f64>,
}

/// (median, min, max) of the finite values, None when there are none.
pub fn spread(values: impl IntoIterator<Item = Option<f64>>) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values
        .into_iter()
        .flatten()
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((median, v[0], v[n - 1]))
}

/// A metric: its JSON key, its label, and its value in a pair.
type Metric = (&'static str, &'static str, fn(&Pair) -> Option<f64>);

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

fn added(s: Option<u32>, d: Option<u32>) -> Option<f64> {
    Some(f64::from(s?) - f64::from(d?))
}

fn per(cpu: Option<f64>, scale: f64, count: f64) -> Option<f64> {
    (count > 0.0)
        .then(|| cpu.map(|c| c * scale / count))
        .flatten()
}

/// Every metric the bench reports, in the table's order.
pub const METRICS: &[Metric] = &[
    (
        "produce_ratio",
        "produce MB/s ratio (Strait / direct)",
        |p| ratio(p.strait.produce_mb_s, p.direct.produce_mb_s),
    ),
    (
        "consume_ratio",
        "consume MB/s ratio (Strait / direct)",
        |p| ratio(p.strait.consume_mb_s, p.direct.consume_mb_s),
    ),
    ("produce_records_ratio", "produce records/s ratio", |p| {
        ratio(p.strait.produce_records_s, p.direct.produce_records_s)
    }),
    ("consume_records_ratio", "consume records/s ratio", |p| {
        ratio(p.strait.consume_records_s, p.direct.consume_records_s)
    }),
    ("direct_produce_mb_s", "direct produce MB/s", |p| {
        Some(p.direct.produce_mb_s)
    }),
    ("strait_produce_mb_s", "Strait produce MB/s", |p| {
        Some(p.strait.produce_mb_s)
    }),
    ("direct_consume_mb_s", "direct consume MB/s", |p| {
        Some(p.direct.consume_mb_s)
    }),
    ("strait_consume_mb_s", "Strait consume MB/s", |p| {
        Some(p.strait.consume_mb_s)
    }),
    ("direct_p99_us", "direct produce p99 (µs)", |p| {
        p.direct.p99_us.map(f64::from)
    }),
    ("p50_added_us", "produce p50 added by Strait (µs)", |p| {
        added(p.strait.p50_us, p.direct.p50_us)
    }),
    ("p99_added_us", "produce p99 added by Strait (µs)", |p| {
        added(p.strait.p99_us, p.direct.p99_us)
    }),
    (
        "p999_added_us",
        "produce p99.9 added by Strait (µs)",
        |p| added(p.strait.p999_us, p.direct.p999_us),
    ),
    (
        "cpu_ms_per_mb_produce",
        "Strait CPU, produce: ms per MB",
        |p| per(p.strait.cpu_produce_s, 1e3, p.strait.produced_mb),
    ),
    (
        "cpu_ms_per_mb_consume",
        "Strait CPU, consume: ms per MB",
        |p| per(p.strait.cpu_consume_s, 1e3, p.strait.consumed_mb),
    ),
    (
        "cpu_us_per_produce_request",
        "Strait CPU per produce round trip (µs)",
        |p| {
            per(
                p.strait.cpu_produce_s,
                1e6,
                p.strait.produce_requests as f64,
            )
        },
    ),
    (
        "cpu_us_per_fetch_request",
        "Strait CPU per fetch round trip (µs)",
        |p| per(p.strait.cpu_consume_s, 1e6, p.strait.fetch_requests as f64),
    ),
    (
        "strait_per_load_cpu_produce",
        "Strait CPU ÷ the load's CPU, produce",
        |p| per(p.strait.cpu_produce_s, 1.0, p.strait.load_cpu_produce_s?),
    ),
    (
        "strait_per_load_cpu_consume",
        "Strait CPU ÷ the load's CPU, consume",
        |p| per(p.strait.cpu_consume_s, 1.0, p.strait.load_cpu_consume_s?),
    ),
];

/// The median of metric `key` over the pairs.
fn median(pairs: &[Pair], key: &str) -> Option<f64> {
    let (_, _, f) = METRICS.iter().find(|(k, _, _)| *k == key)?;
    spread(pairs.iter().map(f)).map(|(m, _, _)| m)
}

impl Medians {
    pub fn of(pairs: &[Pair]) -> Medians {
        Medians {
            produce_ratio: median(pairs, "produce_ratio"),
            consume_ratio: median(pairs, "consume_ratio"),
            cpu_ms_per_mb_produce: median(pairs, "cpu_ms_per_mb_produce"),
            cpu_ms_per_mb_consume: median(pairs, "cpu_ms_per_mb_consume"),
            cpu_us_per_produce_request: median(pairs, "cpu_us_per_produce_request"),
            cpu_us_per_fetch_request: median(pairs, "cpu_us_per_fetch_request"),
            p99_added_ms: median(pairs, "p99_added_us").map(|us| us / 1e3),
            strait_per_load_cpu_produce: median(pairs, "strait_per_load_cpu_produce"),
            strait_per_load_cpu_consume: median(pairs, "strait_per_load_cpu_consume"),
        }
    }
}

/// The summary as JSON: per metric {median, min, max}.
pub fn summary_json(pairs: &[Pair]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (key, _, f) in METRICS {
        if let Some((median, min, max)) = spread(pairs.iter().map(f)) {
            out.insert(
                (*key).into(),
                serde_json::json!({ "median": median, "min": min, "max": max }),
            );
        }
    }
    serde_json::Value::Object(out)
}

/// A value as the table shows it.
fn show(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

pub fn table(title: &str, pairs: &[Pair], markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        let _ = writeln!(
            out,
            "### {title}\n\n| metric | median | min | max |\n| --- | ---: | ---: | ---: |"
        );
    } else {
        let _ = writeln!(
            out,
            "{title}\n{:<40} {:>10} {:>10} {:>10}",
            "", "median", "min", "max"
        );
    }
    for (_, name, f) in METRICS {
        let cells = match spread(pairs.iter().map(f)) {
            Some((m, lo, hi)) => [show(m), show(lo), show(hi)],
            None => ["n/a".into(), String::new(), String::new()],
        };
        if markdown {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} |",
                cells[0], cells[1], cells[2]
            );
        } else {
            let _ = writeln!(
                out,
                "{name:<40} {:>10} {:>10} {:>10}",
                cells[0], cells[1], cells[2]
            );
        }
    }
    if markdown {
        let _ = writeln!(out, "\n| pair | first | produce MB/s direct / Strait | consume MB/s direct / Strait | produce p99 µs direct / Strait |\n| ---: | --- | ---: | ---: | ---: |");
    }
    for (i, p) in pairs.iter().enumerate() {
        let first = if p.strait_first { "Strait" } else { "direct" };
        let p99 = |s: &Side| s.p99_us.map_or("-".to_string(), |v| v.to_string());
        let (d, s) = (&p.direct, &p.strait);
        if markdown {
            let _ = writeln!(
                out,
                "| {} | {first} | {:.1} / {:.1} | {:.1} / {:.1} | {} / {} |",
                i + 1,
                d.produce_mb_s,
                s.produce_mb_s,
                d.consume_mb_s,
                s.consume_mb_s,
                p99(d),
                p99(s)
            );
        } else {
            let _ = writeln!(
                out,
                "pair {} ({first} first): produce {:.1} / {:.1} MB/s, consume {:.1} / {:.1} MB/s, p99 {} / {} µs (direct / Strait)",
                i + 1, d.produce_mb_s, s.produce_mb_s, d.consume_mb_s, s.consume_mb_s, p99(d), p99(s)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(mb_s: f64, cpu: Option<f64>) -> Side {
        Side {
            produce_mb_s: mb_s,
            produce_records_s: mb_s * 1024.0,
            consume_mb_s: mb_s * 2.0,
            consume_records_s: mb_s * 2048.0,
            produced_mb: 100.0,
            consumed_mb: 100.0,
            produce_requests: 1000,
            fetch_requests: 100,
            p50_us: Some(500),
            p99_us: Some(2000),
            p999_us: Some(3000),
            cpu_produce_s: cpu,
            cpu_consume_s: cpu,
            load_cpu_produce_s: Some(0.1),
            load_cpu_consume_s: Some(0.1),
        }
    }

    #[test]
    fn medians_are_over_the_pairs() {
        let pairs: Vec<Pair> = [(100.0, 90.0), (100.0, 100.0), (100.0, 95.0)]
            .iter()
            .map(|(d, s)| Pair {
                strait_first: false,
                direct: side(*d, None),
                strait: side(*s, Some(0.05)),
            })
            .collect();
        let m = Medians::of(&pairs);
        assert_eq!(m.produce_ratio, Some(0.95));
        assert_eq!(m.cpu_ms_per_mb_produce, Some(0.5));
        assert_eq!(m.cpu_us_per_produce_request, Some(50.0));
        assert_eq!(m.p99_added_ms, Some(0.0));
        assert_eq!(m.strait_per_load_cpu_produce, Some(0.5));
        assert_eq!(spread([Some(1.0), None, Some(3.0)]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread([None]), None);
        let t = table("t", &pairs, false);
        assert!(
            t.contains("produce MB/s ratio") && t.contains("0.950"),
            "{t}"
        );
        assert!(table("t", &pairs, true).contains("| pair |"));
        assert_eq!(summary_json(&pairs)["produce_ratio"]["min"], 0.9);
    }
}
