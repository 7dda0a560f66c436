//! `strait bench`: what Strait costs on a workload, measured side by side.
//! Pairs of runs, direct to the cluster and through Strait, alternate
//! which goes first (A B, B A, ...); each run produces to a fresh topic and
//! then consumes it whole. The load generator (`load`, `pipe`) is written
//! on kafka-protocol with a window of requests in flight per connection;
//! Strait runs in this process on its own runtime (threads `strait-rt`),
//! so its CPU is the CPU of every thread that is not the bench's.

mod args;
mod cluster;
mod cpu;
mod gate;
mod load;
mod pipe;
mod report;
mod setup;
mod values;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

pub use args::BenchArgs;
use cpu::Meter;
use report::{Medians, Pair, Side};
use setup::{InProcess, LocalKafka};

/// Runs the bench; exit 0 (every threshold held), 1 (one missed) or 2
/// (could not run), the reason on the last line.
pub fn main(args: BenchArgs) -> ExitCode {
    let problems = args.problems();
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        println!(
            "strait bench: could not run: {} bad option(s)",
            problems.len()
        );
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(failures) if failures.is_empty() => {
            verdict(
                &args,
                &format!(
                    "strait bench: pass ({} pairs; every threshold held)",
                    args.pairs
                ),
            );
            ExitCode::SUCCESS
        }
        Ok(failures) => {
            verdict(
                &args,
                &format!("strait bench: FAILED: {}", failures.join("; ")),
            );
            ExitCode::from(1)
        }
        Err(e) => {
            verdict(&args, &format!("strait bench: could not run: {e:#}"));
            ExitCode::from(2)
        }
    }
}

/// The last line: on stdout, or on stderr when stdout carries JSON.
fn verdict(args: &BenchArgs, line: &str) {
    if args.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

fn run(args: &BenchArgs) -> anyhow::Result<Vec<String>> {
    let gates = gate::Gates {
        min_ratio: args.min_ratio,
        max_cpu_ms_per_mb: args.max_cpu_ms_per_mb,
        max_p99_added_ms: args.max_p99_added_ms,
        baseline: match (&args.baseline, args.max_regression) {
            (Some(path), Some(pct)) => Some((gate::read_baseline(path)?, pct, args.relative)),
            _ => None,
        },
    };
    let (_kafka, cluster) = match &args.bootstrap {
        Some(b) => (None, b.clone()),
        None => {
            let (k, b) = LocalKafka::start()?;
            (Some(k), b)
        }
    };
    let load = tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench-load")
        .enable_all()
        .build()?;
    load.block_on(cluster::reachable(&cluster))?;
    if let Some(proxy) = &args.proxy {
        load.block_on(cluster::reachable(proxy))?;
    }
    let (strait, through, meter) = match &args.proxy {
        Some(addr) => {
            let port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
            let meter = port
                .and_then(cpu::pid_listening_on)
                .map_or(Meter::None, Meter::Pid);
            (None, addr.clone(), meter)
        }
        None => {
            let s = InProcess::start(args, &cluster)?;
            let b = s.bootstrap();
            (Some(s), b, Meter::InProcess)
        }
    };
    let per_batch = args.batch_records;
    let pool = Arc::new(values::pool(
        &args.value,
        args.record_size,
        per_batch,
        args.keys,
        args.compression.compression(),
    )?);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let bar = progress(args);
    let mut pairs = Vec::new();
    let mut topics = Vec::new();
    // A warm-up of each side (not counted): connections, JIT, page cache.
    for (i, via) in [&cluster, &through].into_iter().enumerate() {
        bar.set_message(format!(
            "warm-up {}",
            if i == 0 { "direct" } else { "through Strait" }
        ));
        let warm = BenchArgs {
            records: (args.records / 5).max(1),
            duration: None,
            ..args.clone()
        };
        let topic = format!("strait-bench-{stamp}-warmup-{i}");
        topics.push(topic.clone());
        load.block_on(side(&warm, &cluster, via, &topic, &pool, None))?;
    }
    for n in 0..args.pairs {
        let strait_first = n % 2 == 1;
        let mut direct = Side::default();
        let mut through_strait = Side::default();
        for strait_turn in [strait_first, !strait_first] {
            let (via, name, m) = if strait_turn {
                (&through, "strait", Some(&meter))
            } else {
                (&cluster, "direct", None)
            };
            bar.set_message(format!("pair {}/{}: {name}", n + 1, args.pairs));
            let topic = format!("strait-bench-{stamp}-{n}-{name}");
            topics.push(topic.clone());
            let s = load.block_on(side(args, &cluster, via, &topic, &pool, m))?;
            if strait_turn {
                through_strait = s;
            } else {
                direct = s;
            }
            bar.inc(1);
        }
        pairs.push(Pair {
            strait_first,
            direct,
            strait: through_strait,
        });
    }
    bar.finish_and_clear();
    if !args.keep_topics {
        load.block_on(cluster::delete_topics(&cluster, &topics))?;
    }
    let medians = Medians::of(&pairs);
    let failures = gate::check(&medians, &gates);
    let json = serde_json::json!({
        "settings": settings(args, &cluster, strait.is_some()),
        "pairs": pairs,
        "summary": report::summary_json(&pairs),
        "medians": medians,
        "peak_rss_mib": meter.peak_rss_mib(),
        "verdict": { "pass": failures.is_empty(), "failures": failures },
    });
    if let Some(path) = &args.output {
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("--output {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!(
            "{}",
            report::table(&title(args, strait.is_some()), &pairs, args.markdown)
        );
        if let Some(rss) = meter.peak_rss_mib() {
            println!(
                "peak RSS: {rss:.1} MiB{}",
                if strait.is_some() {
                    " (this process: Strait and the load)"
                } else {
                    ""
                }
            );
        }
    }
    drop(strait);
    load.shutdown_timeout(Duration::from_secs(1));
    Ok(failures)
}

/// One side of a pair: produce to a fresh topic, then consume it whole.
async fn side(
    args: &BenchArgs,
    cluster: &str,
    via: &str,
    topic: &str,
    pool: &Arc<Vec<bytes::Bytes>>,
    meter: Option<&Meter>,
) -> anyhow::Result<Side> {
    cluster::create_topic(cluster, topic, args.partitions).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let leaders = loop {
        let l = cluster::leaders(via, topic).await?;
        if l.len() == args.partitions as usize {
            break l;
        }
        if Instant::now() > deadline {
            bail!(
                "{via} shows {} of {} partitions of {topic} with a leader",
                l.len(),
                args.partitions
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    cluster::wait_leading(&leaders, topic).await?;
    // Requests per second per connection for --rate records per second.
    let rate = args.rate.map(|r| {
        r as f64 / (args.producers as f64 * args.partitions as f64 * args.batch_records as f64)
    });
    let until = args
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    let cpu0 = meter.and_then(|m| m.cpu_seconds());
    let load0 = cpu::load_seconds();
    let mut producers = Vec::new();
    for _ in 0..args.producers {
        let idempotent = match args.idempotent {
            true => Some(cluster::producer_id(via).await?),
            false => None,
        };
        let work = load::ProduceWork {
            topic: topic.to_string(),
            leaders: leaders.clone(),
            records: args.records / args.producers as u64,
            until,
            acks: args.acks,
            in_flight: args.in_flight,
            rate,
            pool: pool.clone(),
            batch_records: args.batch_records,
            idempotent,
        };
        producers.push(tokio::spawn(load::produce(work)));
    }
    let produced = load::join(producers).await?;
    let cpu1 = meter.and_then(|m| m.cpu_seconds());
    let load1 = cpu::load_seconds();
    let consumers: Vec<_> = (0..args.consumers)
        .map(|i| {
            let (topic, leaders, n) = (topic.to_string(), leaders.clone(), args.consumers);
            tokio::spawn(async move { load::consume(&topic, &leaders, i, n).await })
        })
        .collect();
    let consumed = load::join(consumers).await?;
    let cpu2 = meter.and_then(|m| m.cpu_seconds());
    let load2 = cpu::load_seconds();
    if args.acks != 0 && consumed.records < produced.records {
        bail!(
            "{topic}: {} records acknowledged, {} read back",
            produced.records,
            consumed.records
        );
    }
    let mut s = Side::new(&produced, &consumed, args.record_size);
    s.cpu_produce_s = cpu0.zip(cpu1).map(|(a, b)| b - a);
    s.cpu_consume_s = cpu1.zip(cpu2).map(|(a, b)| b - a);
    s.load_cpu_produce_s = load0.zip(load1).map(|(a, b)| b - a);
    s.load_cpu_consume_s = load1.zip(load2).map(|(a, b)| b - a);
    Ok(s)
}

fn progress(args: &BenchArgs) -> ProgressBar {
    if args.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(2 * args.pairs as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} runs {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn title(args: &BenchArgs, in_process: bool) -> String {
    format!(
        "strait bench: {} x {} B records, {} partitions, acks {}, {:?}, {} producer(s), {} pairs{}{}",
        args.records,
        args.record_size,
        args.partitions,
        args.acks,
        args.compression,
        args.producers,
        args.pairs,
        args.rate.map_or(String::new(), |r| format!(", {r} records/s")),
        if in_process { ", Strait in-process" } else { "" }
    )
}

fn settings(args: &BenchArgs, cluster: &str, in_process: bool) -> serde_json::Value {
    serde_json::json!({
        "cluster": cluster,
        "strait": if in_process { "in-process".to_string() } else { args.proxy.clone().unwrap_or_default() },
        "records": args.records, "duration_s": args.duration, "record_size": args.record_size,
        "keys": args.keys, "value": args.value, "partitions": args.partitions, "acks": args.acks,
        "compression": format!("{:?}", args.compression).to_lowercase(), "idempotent": args.idempotent,
        "producers": args.producers, "consumers": args.consumers, "batch_records": args.batch_records,
        "in_flight": args.in_flight, "rate": args.rate, "pairs": args.pairs,
        "version": env!("CARGO_PKG_VERSION"),
    })
}
