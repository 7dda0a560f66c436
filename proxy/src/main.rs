//! The `strait` binary: parses arguments and runs the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use strait_proxy::config::{Config, LogFormat};

mod bench;
mod debug_cli;
mod trace_cli;

/// Strait: a transparent Kafka-wire-protocol proxy.
///
/// Point unmodified Kafka clients' bootstrap.servers at Strait; it forwards to
/// the real brokers and keeps clients talking to it (port-per-broker).
#[derive(Parser)]
#[command(name = "strait", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy, from a config file or from flags for a quick start.
    Run(RunArgs),
    /// Validate a config file and print every problem found.
    Check {
        /// Path to strait.toml.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Policy files: validate a directory, or explain which policy applies to a topic.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Large records: claim-check objects in the store.
    #[command(subcommand, name = "large-records")]
    LargeRecords(LargeCommand),
    /// Consumer lag per partition of GROUP (every group without one), from a running Strait.
    Lag {
        /// The consumer group.
        group: Option<String>,
        #[command(flatten)]
        target: debug_cli::Target,
    },
    /// Live records of TOPIC with filters, from a running Strait.
    Tail {
        topic: String,
        #[command(flatten)]
        args: debug_cli::TailArgs,
        #[command(flatten)]
        target: debug_cli::Target,
    },
    /// The route of a trace id (32 hex digits): every produce, fetch and
    /// commit of its records, across topics, in time order, from a running Strait.
    Trace {
        trace_id: String,
        #[command(flatten)]
        target: debug_cli::Target,
    },
    /// Measure what Strait costs on a workload: produce and consume direct and
    /// through Strait, in alternating pairs, with thresholds for CI.
    Bench(bench::BenchArgs),
    /// The record GROUP would be handed next on TOPIC/PARTITION, from a running Strait.
    Stuck {
        group: String,
        topic: String,
        partition: i32,
        #[command(flatten)]
        target: debug_cli::Target,
    },
}

#[derive(Subcommand)]
enum LargeCommand {
    /// List claim-check objects no record references that are older than
    /// their topic's retention (a dry run unless --delete).
    Gc {
        /// strait.toml: the upstream cluster and [large_records] store.
        #[arg(long, short)]
        config: PathBuf,
        /// The policy directory (default: the config's policies.dir).
        #[arg(long)]
        policies: Option<PathBuf>,
        /// Delete the garbage found.
        #[arg(long)]
        delete: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate every *.toml file in DIR; prints each problem as FILE:LINE:COLUMN: MESSAGE.
    Check {
        /// The policy directory.
        dir: PathBuf,
    },
    /// Print the effective policy for TOPIC and the file and selector it comes from.
    Explain {
        /// The topic name.
        topic: String,
        /// The policy directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Path to strait.toml (see README). Conflicts with --upstream.
    #[arg(long, short, conflicts_with_all = ["upstream", "policies"])]
    config: Option<PathBuf>,
    /// Upstream bootstrap brokers, comma-separated host:port (quick start).
    #[arg(long, required_unless_present = "config")]
    upstream: Option<String>,
    /// Bootstrap listener for clients (quick start).
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: String,
    /// Host advertised to clients (default: the listen IP).
    #[arg(long)]
    advertised_host: Option<String>,
    /// Port-per-broker range START-END (node N on START+N), or 0 for any free port.
    #[arg(long, default_value = "0")]
    broker_ports: String,
    /// Admin listener (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:9644")]
    admin: String,
    /// Directory of per-topic policy files (quick start; reloaded on change and SIGHUP).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Log format: text or json (overrides the config file).
    #[arg(long)]
    log_format: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("error: {e}");
                }
                ExitCode::from(2)
            }
        },
        Command::Run(args) => run(args),
        Command::Bench(args) => bench::main(args),
        Command::Lag { group, target } => debug_cli::lag(&target, group.as_deref()),
        Command::Trace { trace_id, target } => trace_cli::trace(&target, &trace_id),
        Command::Tail {
            topic,
            args,
            target,
        } => debug_cli::tail(&target, &topic, &args),
        Command::Stuck {
            group,
            topic,
            partition,
            target,
        } => debug_cli::stuck(&target, &group, &topic, partition),
        Command::Policy(PolicyCommand::Check { dir }) => match strait_proxy::policy::load_dir(&dir)
        {
            Ok(set) => {
                println!("{}: {} policies, ok", dir.display(), set.len());
                ExitCode::SUCCESS
            }
            Err(problems) => {
                for p in &problems {
                    eprintln!("{p}");
                }
                eprintln!("{}: {} problem(s)", dir.display(), problems.len());
                ExitCode::from(1)
            }
        },
        Command::LargeRecords(LargeCommand::Gc {
            config,
            policies,
            delete,
        }) => gc(&config, policies, delete),
        Command::Policy(PolicyCommand::Explain { topic, dir }) => {
            match strait_proxy::policy::load_dir(&dir) {
                Ok(set) => {
                    print!("{}", strait_policies::explain::explain(&set, &topic));
                    ExitCode::SUCCESS
                }
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn load(path: &std::path::Path) -> Result<strait_proxy::Validated, Vec<String>> {
    let config = Config::from_file(path).map_err(|e| vec![format!("{e:#}")])?;
    config.validate().map_err(|errs| {
        errs.into_iter()
            .map(|e| format!("{}: {e}", path.display()))
            .collect()
    })
}

fn run(args: RunArgs) -> ExitCode {
    let validated = match &args.config {
        Some(path) => load(path),
        None => {
            let mut c = Config::quick(&args.listen, args.upstream.as_deref().unwrap_or_default());
            c.listen.advertised_host = args.advertised_host.clone();
            c.listen.broker_ports = args.broker_ports.clone();
            c.admin.listen = args.admin.clone();
            c.policies.dir = args.policies.clone();
            c.validate()
        }
    };
    let validated = match validated {
        Ok(v) => v,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "strait: {} configuration error(s); not starting",
                errors.len()
            );
            return ExitCode::from(2);
        }
    };
    let format = match args.log_format.as_deref() {
        None => validated.config.log.format,
        Some("json") => LogFormat::Json,
        Some("text") => LogFormat::Text,
        Some(other) => {
            eprintln!("error: --log-format must be text or json, got {other:?}");
            return ExitCode::from(2);
        }
    };
    init_logging(format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let (tx, signals) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(forward_signals(tx));
        strait_proxy::run(validated, signals).await
    });
    // Connections the drain cut (and blocking work) do not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "strait failed");
            ExitCode::FAILURE
        }
    }
}

fn gc(config: &std::path::Path, policies: Option<PathBuf>, delete: bool) -> ExitCode {
    let validated = match load(config) {
        Ok(v) => v,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let Some(dir) = policies.or(validated.config.policies.dir.clone()) else {
        eprintln!("error: no policy directory: pass --policies DIR or set policies.dir");
        return ExitCode::from(2);
    };
    let set = match strait_proxy::policy::load_dir(&dir) {
        Ok(set) => set,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            return ExitCode::from(1);
        }
    };
    init_logging(LogFormat::Text);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let found = runtime.block_on(async {
        let large = strait_proxy::large::LargeRecords::for_tools(&validated.config)?;
        strait_proxy::large::gc::collect(&large, &set, delete, |line| println!("{line}")).await
    });
    match found {
        Ok(r) => {
            println!(
                "{} objects: {} referenced, {} unreferenced but younger than their topic's retention, {} garbage{}",
                r.objects,
                r.referenced,
                r.young,
                r.garbage.len(),
                if delete {
                    format!(" ({} deleted)", r.deleted)
                } else {
                    " (dry run: --delete deletes them)".into()
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Sends the name of every SIGTERM and SIGINT: the first starts the
/// drain, a second one ends it at once.
async fn forward_signals(tx: tokio::sync::mpsc::UnboundedSender<&'static str>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install the SIGTERM and SIGINT handlers; stop with SIGKILL");
            // Keep the channel open: a closed one means stop.
            return std::future::pending().await;
        };
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            if tx.send(name).is_err() {
                return;
            }
        }
    }
    #[cfg(not(unix))]
    {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send("ctrl-c").is_err() {
                return;
            }
        }
    }
}
