//! Heavy-neighbour benchmark: another connection's passthrough latency with
//! and without connections that make Strait compress big batches, in one run.
//!
//! Starts the real `strait` binary with one policy (`[policy.compress] codec =
//! "gzip", level = 9` on a "heavy" topic) in front of a running cluster, and
//! measures, on one connection, K sequential Produce v9 round trips (acks=all,
//! one 1 KiB record each, to a topic no policy touches), timing each in
//! microseconds, in three phases:
//!
//! 1. alone;
//! 2. while N heavy connections continuously send ~16 MiB uncompressed batches
//!    (pseudo-random words; two requests in flight per connection, so a new
//!    batch is always waiting to be compressed) to the heavy topic;
//! 3. alone again.
//!
//! It prints p50 / p99 / max per phase and the p99 ratio (with heavy / the two
//! alone phases pooled), and writes one JSON line to
//! `benches/results/neighbour-<UTC stamp>.json`. A phase stops early (and says
//! so) after `--max-phase-secs`: when Strait compresses inline on its reactor,
//! the light connection only gets through between compressions.
//!
//! Run it (from the repository root):
//!
//! ```sh
//! cargo build --release -p strait-proxy --bin strait
//! integration/kafka up --brokers 1 --name bench       # last line: BOOTSTRAP=localhost:PORT
//! STRAIT_KAFKA_1=localhost:PORT cargo run --release -p strait-integration --example neighbour_p99
//! integration/kafka down --name bench                 # always with --name
//! ```
//!
//! Flags (all optional): `--bootstrap HOST:PORT` (instead of STRAIT_KAFKA_1),
//! `--round-trips K` (2000), `--heavy N` (2), `--heavy-mib M` (16), `--level L`
//! (gzip level, 9), `--warmup W` (200 untimed round trips first),
//! `--max-phase-secs S` (300), `--out DIR` (benches/results). The `strait`
//! binary is the one next to the example's profile directory
//! (`target/release/strait` for `--release`), or `STRAIT_BIN`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ProduceResponse};
use serde_json::{json, Value};
use strait_integration::tempdir::Dir;
use strait_integration::wire::{
    api_versions_request, decode, produce_request, produce_request_with_batch, word_batch, Wire,
};
use strait_integration::{
    create_topic, create_topic_with_configs, repo, strait_bin, unique, Strait,
};

static LIGHT_VALUE: [u8; 1024] = [b'v'; 1024];
const HEAVY_VALUE: usize = 1000;

struct Args {
    bootstrap: String,
    round_trips: usize,
    heavy: usize,
    heavy_mib: usize,
    level: u32,
    warmup: usize,
    max_phase: Duration,
    out: std::path::PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        bootstrap: std::env::var("STRAIT_KAFKA_1").unwrap_or_default(),
        round_trips: 2000,
        heavy: 2,
        heavy_mib: 16,
        level: 9,
        warmup: 200,
        max_phase: Duration::from_secs(300),
        out: repo().join("benches/results"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let number = |v: String| -> usize {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag}: not a number: {v}")))
        };
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = value(),
            "--round-trips" => a.round_trips = number(value()),
            "--heavy" => a.heavy = number(value()),
            "--heavy-mib" => a.heavy_mib = number(value()),
            "--level" => a.level = number(value()) as u32,
            "--warmup" => a.warmup = number(value()),
            "--max-phase-secs" => a.max_phase = Duration::from_secs(number(value()) as u64),
            "--out" => a.out = value().into(),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if a.bootstrap.is_empty() {
        usage("no cluster: set STRAIT_KAFKA_1 or pass --bootstrap (integration/kafka up --brokers 1 --name bench prints BOOTSTRAP=...)");
    }
    if a.round_trips == 0 || !(1..=9).contains(&a.level) {
        usage("--round-trips must be positive and --level 1..9");
    }
    a
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("neighbour_p99: {problem}");
    }
    eprintln!(
        "usage: neighbour_p99 [--bootstrap HOST:PORT] [--round-trips K] [--heavy N] [--heavy-mib M] \
         [--level L] [--warmup W] [--max-phase-secs S] [--out DIR]"
    );
    std::process::exit(2)
}

/// Latencies of one phase, in microseconds.
struct Phase {
    name: &'static str,
    micros: Vec<u64>,
    elapsed: Duration,
    /// Stopped at --max-phase-secs before K round trips.
    truncated: bool,
}

impl Phase {
    /// Nearest-rank percentile.
    fn pct(&self, q: f64) -> u64 {
        pct(&self.micros, q)
    }

    fn json(&self) -> Value {
        json!({
            "round_trips": self.micros.len(),
            "truncated": self.truncated,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "p50_us": self.pct(0.50),
            "p99_us": self.pct(0.99),
            "max_us": self.micros.iter().max().copied().unwrap_or(0),
            "mean_us": self.micros.iter().sum::<u64>() / self.micros.len().max(1) as u64,
        })
    }
}

fn pct(micros: &[u64], q: f64) -> u64 {
    if micros.is_empty() {
        return 0;
    }
    let mut v = micros.to_vec();
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// `k` sequential Produce round trips on `w`, each timed.
fn measure(
    name: &'static str,
    w: &mut Wire,
    topic: &str,
    k: usize,
    max: Duration,
    eprint_progress: bool,
) -> Phase {
    let request = produce_request(topic, -1, &LIGHT_VALUE);
    let start = Instant::now();
    let mut micros = Vec::with_capacity(k);
    let mut truncated = false;
    for i in 0..k {
        if start.elapsed() > max {
            truncated = true;
            eprintln!(
                "neighbour_p99: phase {name:?} stopped after {i} round trips (--max-phase-secs)"
            );
            break;
        }
        let t = Instant::now();
        let resp: ProduceResponse = w.call(ApiKey::Produce, 9, &request);
        micros.push(t.elapsed().as_micros() as u64);
        let code = resp.responses[0].partition_responses[0].error_code;
        assert_eq!(code, 0, "light produce {i} in phase {name:?}: error {code}");
        if eprint_progress && (i + 1) % 500 == 0 {
            eprintln!("neighbour_p99: {name}: {} round trips", i + 1);
        }
    }
    Phase {
        name,
        micros,
        elapsed: start.elapsed(),
        truncated,
    }
}

/// A heavy connection: keeps two produce requests of `frame` in flight until
/// `stop`; returns how many were acknowledged before `stop` was seen.
fn heavy(addr: String, mut frame: Vec<u8>, stop: Arc<AtomicBool>, sent: Arc<Barrier>) -> usize {
    fn send(w: &mut Wire, frame: &mut [u8], id: i32) {
        frame[8..12].copy_from_slice(&id.to_be_bytes()); // the header's correlation id
        w.send_raw(frame);
    }
    let mut w = Wire::connect(&addr);
    w.stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .unwrap();
    let _: ApiVersionsResponse = w.call(ApiKey::ApiVersions, 3, &api_versions_request());
    let (mut next, mut expect) = (1000, 1000);
    for _ in 0..2 {
        send(&mut w, &mut frame, next);
        next += 1;
    }
    sent.wait();
    let (mut in_flight, mut acked) = (2, 0);
    while in_flight > 0 {
        let resp = w
            .read_frame()
            .unwrap_or_else(|e| panic!("heavy connection: no response: {e}"));
        let id = i32::from_be_bytes(resp[..4].try_into().unwrap());
        assert_eq!(id, expect, "heavy connection: correlation id");
        expect += 1;
        let resp: ProduceResponse = decode(ApiKey::Produce, 9, resp);
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "heavy produce: {:?}", p.error_message);
        in_flight -= 1;
        if stop.load(Ordering::SeqCst) {
            continue;
        }
        acked += 1;
        send(&mut w, &mut frame, next);
        next += 1;
        in_flight += 1;
    }
    acked
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC).
fn utc_stamp(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn main() {
    let a = args();
    let bin = strait_bin();
    let heavy_topic = unique("neighbour-heavy");
    let light_topic = unique("neighbour-light");
    create_topic_with_configs(
        &a.bootstrap,
        &heavy_topic,
        1,
        1,
        &[("max.message.bytes", "134217728")],
    );
    create_topic(&a.bootstrap, &light_topic, 1, 1);
    let dir = Dir::new("neighbour-policies");
    std::fs::write(
        dir.path().join("heavy.toml"),
        format!(
            "[[policy]]\nname = \"neighbour-heavy\"\ntopics = {{ exact = \"{heavy_topic}\" }}\n\
             [policy.compress]\ncodec = \"gzip\"\nlevel = {}\n",
            a.level
        ),
    )
    .unwrap();
    let strait = Strait::with_policies(&a.bootstrap, dir.path());
    let (batch, records) = word_batch(a.heavy_mib << 20, HEAVY_VALUE);
    let frame = Wire::frame(
        ApiKey::Produce,
        9,
        0,
        &produce_request_with_batch(&heavy_topic, -1, batch.clone()),
    )
    .to_vec();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "neighbour_p99: strait {} (pid {}), {cores} cores; light: {} x Produce v9 of 1 KiB; heavy: {} \
         connections x {} byte batches ({records} records), gzip {}",
        bin.display(),
        strait.pid(),
        a.round_trips,
        a.heavy,
        batch.len(),
        a.level
    );

    let mut light = Wire::connect(&strait.bootstrap);
    light
        .stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .unwrap();
    let _: ApiVersionsResponse = light.call(ApiKey::ApiVersions, 3, &api_versions_request());
    measure(
        "warmup",
        &mut light,
        &light_topic,
        a.warmup,
        a.max_phase,
        false,
    );

    let before = measure(
        "alone",
        &mut light,
        &light_topic,
        a.round_trips,
        a.max_phase,
        false,
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Barrier::new(a.heavy + 1));
    let threads: Vec<_> = (0..a.heavy)
        .map(|_| {
            let (addr, frame, stop, sent) = (
                strait.bootstrap.clone(),
                frame.clone(),
                stop.clone(),
                sent.clone(),
            );
            std::thread::spawn(move || heavy(addr, frame, stop, sent))
        })
        .collect();
    sent.wait(); // every heavy connection has its first two batches on the wire
    let with = measure(
        "with heavy",
        &mut light,
        &light_topic,
        a.round_trips,
        a.max_phase,
        true,
    );
    stop.store(true, Ordering::SeqCst);
    let heavy_acked: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();

    let after = measure(
        "alone again",
        &mut light,
        &light_topic,
        a.round_trips,
        a.max_phase,
        false,
    );

    let alone: Vec<u64> = before.micros.iter().chain(&after.micros).copied().collect();
    let alone_p99 = pct(&alone, 0.99);
    let ratio = with.pct(0.99) as f64 / alone_p99.max(1) as f64;
    let heavy_mib_s = (heavy_acked * batch.len()) as f64
        / f64::from(1 << 20)
        / with.elapsed.as_secs_f64().max(1e-9);

    println!(
        "{:<12} {:>6} {:>10} {:>10} {:>10}",
        "phase", "n", "p50 us", "p99 us", "max us"
    );
    for p in [&before, &with, &after] {
        println!(
            "{:<12} {:>6} {:>10} {:>10} {:>10}{}",
            p.name,
            p.micros.len(),
            p.pct(0.50),
            p.pct(0.99),
            p.micros.iter().max().copied().unwrap_or(0),
            if p.truncated { "  (stopped early)" } else { "" }
        );
    }
    println!(
        "p99 ratio, with heavy / alone (both alone phases pooled, p99 {alone_p99} us): {ratio:.2}"
    );
    println!(
        "heavy: batches of {} bytes acknowledged during the heavy phase: {heavy_acked} ({heavy_mib_s:.1} MiB/s uncompressed in)",
        batch.len()
    );

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stamp = utc_stamp(now);
    let line = json!({
        "bench": "neighbour_p99",
        "timestamp": stamp,
        "strait": bin.display().to_string(),
        "cores": cores,
        "light": {"round_trips": a.round_trips, "record_bytes": LIGHT_VALUE.len(), "api": "Produce v9", "acks": -1},
        "heavy": {
            "connections": a.heavy,
            "batch_bytes": batch.len(),
            "records": records,
            "codec": "gzip",
            "level": a.level,
            "in_flight_per_connection": 2,
            "acked_during_phase": heavy_acked,
            "mib_per_s": heavy_mib_s,
        },
        "alone": before.json(),
        "with_heavy": with.json(),
        "alone_again": after.json(),
        "alone_pooled_p99_us": alone_p99,
        "p99_ratio": ratio,
    });
    std::fs::create_dir_all(&a.out).unwrap();
    let path = a.out.join(format!("neighbour-{stamp}.json"));
    std::fs::write(&path, format!("{line}\n")).unwrap();
    println!("wrote {}", path.display());
}
