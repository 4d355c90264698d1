//! `cargo run --release --example bench`: the gateway's performance figures (issue 9) against
//! their targets, in one bounded run on one machine.
//!
//! It builds `target/release/amq2api`, seeds a fresh database under `target/bench/`, starts a
//! minimal fake Amazon Q ([`fake`]) and the load generator ([`client`]) in this process pinned
//! to core 1, and `amq2api serve --workers 1` pinned to core 0 (`taskset`), then runs the
//! phases below, each bounded by a request count and a time limit, and prints one table
//! (measured, target, pass/fail), also written to `target/bench/results.json` and
//! `results.md`. `--quick` is a smoke run of a few seconds with small counts. The README's
//! "Benchmarks" section says what each figure means.
//!
//! Phases ([`phases`]): idle memory; warm-up; 1,000 streams held open by a slow trickle
//! (errors, memory per stream); time to first text with 1, 50 and 500 streams in flight, direct
//! vs through the gateway; saturating throughput, streamed and not (CPU per request, dropped
//! usage rows); per-event forwarding delay from send stamps and CPU per event; count_tokens
//! cold, warm and in a burst; time to first text of a 100k-token request; then a clean shutdown
//! and the usage-row count.
// Under `cargo test` this is a test harness: what only `main` uses looks unused.
#![cfg_attr(test, allow(dead_code))]

#[path = "bench/client.rs"]
mod client;
#[path = "bench/fake.rs"]
mod fake;
#[path = "bench/gateway.rs"]
mod gateway;
#[path = "bench/phases.rs"]
mod phases;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/stats.rs"]
mod stats;
#[path = "bench/text.rs"]
mod text;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::json;

use fake::{Fake, Script};
use phases::{Bench, Plan};
use report::{at_most, Report};
use stats::Proc;

/// Measures amq2api against a fake Amazon Q and prints the figures next to their targets.
#[derive(Parser, Debug)]
#[command(name = "bench")]
struct Args {
    /// A smoke run of a few seconds: small counts, figures only indicative
    #[arg(long)]
    quick: bool,
    /// Do not run `cargo build --release --bin amq2api` first
    #[arg(long)]
    no_build: bool,
    /// The gateway binary [default: target/release/amq2api next to this example]
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Where the database, results.json and results.md go [default: target/bench]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Accounts in the pool (each with a valid access token)
    #[arg(long, default_value_t = 1)]
    accounts: usize,
    /// `serve --workers` (the gateway has one core)
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Do not pin the gateway and the bench to separate cores
    #[arg(long)]
    no_pin: bool,
    /// Run the gateway under this command, e.g. "valgrind --tool=callgrind" (figures then
    /// describe the profiler, not the gateway)
    #[arg(long, value_name = "COMMAND")]
    wrap: Option<String>,
    /// Only these phases (comma-separated): hold, ttfb, events, throughput, count, big
    #[arg(long, value_delimiter = ',')]
    phases: Vec<String>,
    /// An extra environment variable for the gateway, `NAME=VALUE` (repeatable), e.g.
    /// `MALLOC_ARENA_MAX=2` or `AMQ2API_PING_INTERVAL=5`
    #[arg(long = "gateway-env", value_name = "NAME=VALUE")]
    gateway_env: Vec<String>,
    /// Exit with status 1 when a target is missed (errors always give 1)
    #[arg(long)]
    strict: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    if cfg!(debug_assertions) {
        eprintln!("bench: warning: this is a debug build of the load generator; use `cargo run --release --example bench`");
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let build_time = if args.no_build || args.gateway.is_some() {
        None
    } else {
        eprintln!("bench: cargo build --release --bin amq2api");
        Some(gateway::build(manifest_dir)?)
    };
    let (binary, out_dir) = gateway::locate(args.gateway.clone(), args.out.clone(), "bench")?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = !args.no_pin && cores >= 2 && which("taskset");
    if pin {
        // Before any thread starts: the fake's and the client's threads inherit it.
        stats::pin_to(1).context("cannot pin the bench to core 1")?;
    } else if !args.no_pin {
        eprintln!(
            "bench: warning: not pinning (needs 2 cores and taskset); figures mix both sides' CPU"
        );
    }
    let nofile = stats::raise_nofile().unwrap_or(0);
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if (nofile as usize) < plan.hold.0 * 3 + 200 {
        eprintln!(
            "bench: warning: the open-files limit is {nofile}; {} streams need about {} (raise `ulimit -n`)",
            plan.hold.0,
            plan.hold.0 * 3 + 200
        );
    }
    let wrapper: Vec<String> = args
        .wrap
        .as_deref()
        .map(|w| w.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();

    let db_path = out_dir.join("bench.db");
    let keys = gateway::seed(&db_path, args.accounts.max(1))?;
    let fake = Fake::start(Script::Fixed(phases::short_answer()))?;
    let load_start = stats::loadavg();
    let busy_start = stats::busy_per_core();
    let wall_start = Instant::now();
    let self_cpu_start = Proc(std::process::id()).cpu_seconds();
    let mut gw = gateway::Gateway::start(&gateway::Launch {
        binary: &binary,
        dir: &out_dir,
        db: &db_path,
        fake_url: &fake.url,
        core: pin.then_some(0),
        wrapper: &wrapper,
        workers: args.workers.max(1),
        env: &args.gateway_env,
    })?;
    eprintln!(
        "bench: gateway {} (pid {}) on core {}, fake {} and load generator on core {}",
        gw.url,
        gw.pid,
        if pin { "0" } else { "any" },
        fake.url,
        if pin { "1" } else { "any" },
    );

    let bench = Bench {
        client: client::http_client(),
        gw_url: gw.url.clone(),
        gw: Proc(gw.pid),
        keys,
        fake,
        plan,
        phases: args.phases.clone(),
        report: Report::default(),
        details: serde_json::Map::new(),
        sent: 0,
        errors: Vec::new(),
        chars_per_token: 0.0,
        cpu_per_streamed_request: None,
        callgrind: wrapper.iter().any(|w| w.contains("callgrind")),
    };
    let system = actix_web::rt::System::new();
    let mut bench = system.block_on(bench.run_all());

    // Shutdown: usage rows are flushed before the process exits.
    let hwm = bench.gw.hwm_kb();
    let gw_cpu_total = bench.gw.cpu_seconds();
    let stopped = gw.stop(Duration::from_secs(60));
    let wall = wall_start.elapsed().as_secs_f64();
    let busy_end = stats::busy_per_core();
    let self_cpu = Proc(std::process::id()).cpu_seconds() - self_cpu_start;
    let load_end = stats::loadavg();
    match &stopped {
        Ok(status) if status.success() => {}
        Ok(status) => bench
            .errors
            .push(format!("the gateway exited with {status}")),
        Err(e) => bench.errors.push(format!("{e:#}")),
    }
    bench.report.add(
        4,
        "rss_peak",
        "peak RSS of the gateway over the run (VmHWM)",
        hwm / 1024.0,
        "MB",
        None,
    );
    let rows = gateway::usage_rows(&db_path).unwrap_or(-1);
    let missing = bench.sent as f64 - rows as f64;
    bench.report.add(
        6,
        "usage_rows_missing",
        format!(
            "usage rows missing after shutdown ({rows} written for {} requests)",
            bench.sent
        ),
        missing,
        "",
        at_most(0.0),
    );
    let log = gw.log();
    let warnings: Vec<&String> = log.iter().filter(|l| !l.contains(" INFO ")).collect();

    // Other load on each core during the run: its busy time minus ours.
    let foreign = |core: usize, own: f64| -> f64 {
        match (busy_start.get(core), busy_end.get(core)) {
            (Some(a), Some(b)) => ((b - a - own) / wall * 100.0).max(0.0),
            _ => f64::NAN,
        }
    };
    let conditions = json!({
        "cores": cores,
        "pinned": pin,
        "accounts": args.accounts.max(1),
        "workers": args.workers.max(1),
        "quick": args.quick,
        "wrapper": args.wrap,
        "gateway_env": args.gateway_env,
        "wall_seconds": wall,
        "gateway_cpu_seconds": gw_cpu_total,
        "bench_cpu_seconds": self_cpu,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "other_load_core0_percent": if pin { foreign(0, gw_cpu_total) } else { f64::NAN },
        "other_load_core1_percent": if pin { foreign(1, self_cpu) } else { f64::NAN },
        "build_seconds": build_time.map(|d| d.as_secs_f64()),
        "fake_chat_requests": bench.fake.chats(),
        "fake_requests_other_than_chat": bench.fake.other_requests(),
        "gateway_log": warnings,
        "git": git_describe(manifest_dir),
        "date": chrono::Utc::now().to_rfc3339(),
    });

    println!();
    println!("{}", bench.report.table());
    let conditions_line = format!(
        "conditions: amq2api {} on {}; {} cores, gateway {}, {} account(s), {} worker(s); load average {} → {}; other load during the run: core 0 {:.0} %, core 1 {:.0} %; {:.0} s",
        conditions["git"].as_str().unwrap_or("?"),
        chrono::Utc::now().format("%Y-%m-%d"),
        cores,
        if pin { "on core 0, bench on core 1" } else { "unpinned" },
        args.accounts.max(1),
        args.workers.max(1),
        load_start,
        load_end,
        conditions["other_load_core0_percent"].as_f64().unwrap_or(f64::NAN),
        conditions["other_load_core1_percent"].as_f64().unwrap_or(f64::NAN),
        wall,
    );
    println!("{conditions_line}");
    if !warnings.is_empty() {
        println!("the gateway logged {} warning(s), e.g.:", warnings.len());
        for line in warnings.iter().take(5) {
            println!("  {line}");
        }
    }
    for e in &bench.errors {
        println!("error: {e}");
    }
    let name = if args.quick {
        "results-quick"
    } else {
        "results"
    };
    let json_path = out_dir.join(format!("{name}.json"));
    let results = json!({
        "figures": bench.report.sorted(),
        "conditions": conditions,
        "details": bench.details,
        "errors": bench.errors,
    });
    std::fs::write(&json_path, serde_json::to_string_pretty(&results)? + "\n")?;
    std::fs::write(
        out_dir.join(format!("{name}.md")),
        bench.report.markdown(&conditions_line),
    )?;
    println!("results: {}", json_path.display());
    if !wrapper.is_empty() {
        println!("requests to the gateway's /v1/messages: {}", bench.sent);
    }
    let missed = bench.report.missed();
    if !missed.is_empty() {
        println!(
            "{} target(s) missed: {}",
            missed.len(),
            missed
                .iter()
                .map(|f| f.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(
        if !bench.errors.is_empty() || (args.strict && !missed.is_empty()) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn git_describe(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
