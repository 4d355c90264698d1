//! `cargo run --release --example soak -- --seconds 600`: the gateway at a steady load for a
//! long time (issue 10): `--streams` streams held open all along (the fake trickles their
//! events, and each is reopened when it ends) plus a steady mix of short requests at `--rate`
//! per second: `/v1/messages` and `/v1/chat/completions`, streamed and not. Every `--every`
//! seconds (30 by default, a tenth of the run when it is shorter than five minutes) it prints
//! the elapsed time, the requests done, the errors, the open streams and the gateway's VmRSS.
//!
//! At the end it passes only if there was no error at all (a non-200, a broken or truncated
//! stream, an error event), every request has its usage row after a clean SIGTERM shutdown, and
//! the RSS levelled off: the highest sample of the second half of the run is at most the
//! highest of the first half × 1.1 + 5 MB (the first half includes the ramp to the full number
//! of streams, so a steady state is flat after it, and a leak keeps climbing). It exits 1
//! otherwise. The series is also written to `OUT/soak.json`.
//!
//! It reuses the benchmark's modules (examples/bench/): the fast fake Amazon Q ([`fake`], with
//! its `Split` script: a request marked as a held stream trickles, any other is answered at
//! once), the load generator's client ([`client`]), the gateway launcher and database seeding
//! ([`gateway`]) and the /proc readers ([`stats`]). CI runs a 30-second version against the
//! debug build (`--seconds 30 --no-build --gateway target/debug/amq2api`).

#[allow(dead_code)]
#[path = "bench/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "bench/fake.rs"]
mod fake;
#[allow(dead_code)]
#[path = "bench/gateway.rs"]
mod gateway;
#[allow(dead_code)]
#[path = "bench/stats.rs"]
mod stats;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use serde_json::json;

use client::{Req, Wire};
use fake::{Fake, Script};
use stats::Proc;

/// The text that marks a request as a held stream (the fake trickles its answer).
const HOLD_MARKER: &str = "soak-hold-stream";

/// Runs the gateway at a steady load and checks for errors and memory growth.
#[derive(Parser, Debug)]
#[command(name = "soak")]
struct Args {
    /// How long the load lasts
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Streams held open all along
    #[arg(long, default_value_t = 200)]
    streams: usize,
    /// Short requests per second (a quarter each: Claude streamed and not, OpenAI streamed and
    /// not)
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds between two printed samples [default: 30, or a tenth of a run under 5 minutes]
    #[arg(long)]
    every: Option<u64>,
    /// Do not run `cargo build --release --bin amq2api` first
    #[arg(long)]
    no_build: bool,
    /// The gateway binary [default: target/release/amq2api next to this example]
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Where the database and soak.json go [default: target/soak]
    #[arg(long)]
    out: Option<PathBuf>,
    /// `serve --workers`
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One printed sample.
#[derive(Debug, Clone, serde::Serialize)]
struct Sample {
    elapsed_s: f64,
    requests: u64,
    errors: u64,
    open_streams: usize,
    fake_open: usize,
    rss_mb: f64,
    threads: f64,
}

/// Counters the load tasks share (all on one thread).
#[derive(Default)]
struct Counters {
    ok: Cell<u64>,
    errors: Cell<u64>,
    open: Cell<usize>,
    first_errors: RefCell<Vec<String>>,
}

impl Counters {
    fn record(&self, what: &str, error: Option<String>) {
        match error {
            None => self.ok.set(self.ok.get() + 1),
            Some(e) => {
                self.errors.set(self.errors.get() + 1);
                let mut first = self.first_errors.borrow_mut();
                if first.len() < 10 {
                    first.push(format!("{what}: {e}"));
                }
            }
        }
    }
}

/// The four kinds of request.
fn request(gw: &str, key: &str, kind: usize, hold: bool) -> Req {
    let content = if hold {
        format!("{HOLD_MARKER}: please trickle")
    } else {
        "a short question".to_owned()
    };
    let stream = kind % 2 == 0;
    let (path, body, wire) = if kind < 2 {
        (
            "/v1/messages",
            json!({"model": "claude-sonnet-4-5", "max_tokens": 200, "stream": stream,
                   "messages": [{"role": "user", "content": content}]}),
            if stream { Wire::Sse } else { Wire::Whole },
        )
    } else {
        (
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "stream": stream,
                   "messages": [{"role": "user", "content": content}]}),
            Wire::Whole,
        )
    };
    Req {
        url: format!("{gw}{path}"),
        headers: vec![
            ("x-api-key", key.to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        body: Bytes::from(body.to_string()),
        wire,
        stamped: false,
    }
}

/// Sends one request and checks the whole answer.
async fn exchange(http: &awc::Client, req: &Req, kind: usize) -> Option<String> {
    let out = client::send(http, req).await;
    if let Some(e) = out.error {
        return Some(e);
    }
    let body = String::from_utf8_lossy(&out.body);
    let complete = match kind {
        0 => true, // SSE: `client::send` insists on message_stop and no error event.
        1 => body.contains(r#""type":"message""#) && body.contains(r#""stop_reason":"end_turn""#),
        2 => body.ends_with("data: [DONE]\n\n") && !body.contains(r#""error""#),
        _ => {
            body.contains(r#""object":"chat.completion""#)
                && body.contains(r#""finish_reason":"stop""#)
        }
    };
    (!complete).then(|| {
        format!(
            "incomplete answer: {}",
            body.chars().take(300).collect::<String>()
        )
    })
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    if cfg!(debug_assertions) {
        eprintln!("soak: note: a debug build of the load generator (fine for the CI run)");
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !args.no_build && args.gateway.is_none() {
        eprintln!("soak: cargo build --release --bin amq2api");
        gateway::build(manifest_dir)?;
    }
    let (binary, out_dir) = gateway::locate(args.gateway.clone(), args.out.clone(), "soak")?;
    let nofile = stats::raise_nofile().unwrap_or(0);
    if (nofile as usize) < args.streams * 3 + 200 {
        eprintln!("soak: warning: the open-files limit is {nofile}; raise `ulimit -n`");
    }

    let total = Duration::from_secs(args.seconds.max(1));
    let every = Duration::from_secs(
        args.every
            .unwrap_or(if args.seconds >= 300 {
                30
            } else {
                (args.seconds / 10).max(1)
            })
            .max(1),
    );
    // A held stream lasts a quarter of the run, at most 30 s, and is then reopened: streams
    // come and go all along, and 20 events keep each one trickling.
    let hold_for = (total / 4).clamp(Duration::from_secs(2), Duration::from_secs(30));
    let events = 20u32;
    let interval = hold_for / events;

    let db_path = out_dir.join("soak.db");
    let keys = gateway::seed(&db_path, 1)?;
    let fake = Fake::start(Script::Split {
        marker: HOLD_MARKER,
        events,
        interval,
        short: fake::answer(&["A short ", "answer from ", "the soak's fake."]),
    })?;
    let mut gw = gateway::Gateway::start(&gateway::Launch {
        binary: &binary,
        dir: &out_dir,
        db: &db_path,
        fake_url: &fake.url,
        core: None,
        wrapper: &[],
        workers: args.workers.max(1),
        env: &[],
    })?;
    let pid = gw.pid;
    println!(
        "soak: gateway {} (pid {pid}); {} s, {} held streams ({} events {:?} apart), {}/s short requests; a sample every {} s",
        gw.url,
        total.as_secs(),
        args.streams,
        events,
        interval,
        args.rate,
        every.as_secs()
    );
    println!(
        "{:>9} {:>10} {:>7} {:>13} {:>10} {:>9} {:>8}",
        "elapsed", "requests", "errors", "open streams", "fake open", "RSS MB", "threads"
    );

    let counters = Rc::new(Counters::default());
    let samples = Rc::new(RefCell::new(Vec::<Sample>::new()));
    let system = actix_web::rt::System::new();
    let started = Instant::now();
    let deadline = started + total;
    system.block_on({
        let (counters, samples) = (counters.clone(), samples.clone());
        let (gw_url, key) = (gw.url.clone(), keys.user.clone());
        let fake = &fake;
        async move {
            let http = client::http_client();
            let sample = || {
                let p = Proc(pid);
                let s = Sample {
                    elapsed_s: started.elapsed().as_secs_f64(),
                    requests: counters.ok.get(),
                    errors: counters.errors.get(),
                    open_streams: counters.open.get(),
                    fake_open: fake.open(),
                    rss_mb: p.rss_kb() / 1024.0,
                    threads: p.threads(),
                };
                println!(
                    "{:>8.0}s {:>10} {:>7} {:>13} {:>10} {:>9.1} {:>8}",
                    s.elapsed_s,
                    s.requests,
                    s.errors,
                    s.open_streams,
                    s.fake_open,
                    s.rss_mb,
                    s.threads
                );
                samples.borrow_mut().push(s);
            };
            sample();
            // Held streams: each loop keeps one open until the deadline; the loops start
            // spread over one stream's length so the reopenings are spread too.
            let holds = (0..args.streams).map(|k| {
                let (http, counters) = (&http, &counters);
                let req = request(&gw_url, &key, if k % 2 == 0 { 0 } else { 2 }, true);
                async move {
                    actix_web::rt::time::sleep(hold_for * k as u32 / args.streams.max(1) as u32)
                        .await;
                    while Instant::now() < deadline {
                        counters.open.set(counters.open.get() + 1);
                        let error = exchange(http, &req, if k % 2 == 0 { 0 } else { 2 }).await;
                        counters.open.set(counters.open.get() - 1);
                        counters.record("held stream", error);
                    }
                }
            });
            // Short requests: 8 loops, each on its own schedule, together `rate` per second.
            let loops = 8usize;
            let period = Duration::from_secs_f64(loops as f64 / args.rate.max(0.1));
            let shorts = (0..loops).map(|k| {
                let (http, counters) = (&http, &counters);
                let reqs: Vec<Req> = (0..4)
                    .map(|kind| request(&gw_url, &key, kind, false))
                    .collect();
                async move {
                    let mut next = Instant::now() + period * k as u32 / loops as u32;
                    let mut n = k;
                    while next < deadline {
                        actix_web::rt::time::sleep_until(next.into()).await;
                        let kind = n % 4;
                        let error = exchange(http, &reqs[kind], kind).await;
                        counters.record(
                            ["claude stream", "claude", "openai stream", "openai"][kind],
                            error,
                        );
                        n += 1;
                        next += period;
                    }
                }
            });
            let sampler = async {
                let mut next = started + every;
                while next <= deadline {
                    actix_web::rt::time::sleep_until(next.into()).await;
                    sample();
                    next += every;
                }
            };
            futures_util::future::join3(
                futures_util::future::join_all(holds),
                futures_util::future::join_all(shorts),
                sampler,
            )
            .await;
            sample();
        }
    });

    let stopped = gw.stop(Duration::from_secs(60));
    let rows = gateway::usage_rows(&db_path).unwrap_or(-1);
    let samples = samples.take();
    let (ok, errors) = (counters.ok.get(), counters.errors.get());
    let mut failures: Vec<String> = counters.first_errors.take();
    if errors > 0 {
        failures.insert(0, format!("{errors} request(s) failed"));
    }
    match &stopped {
        Ok(status) if status.success() => {}
        Ok(status) => failures.push(format!("the gateway exited with {status}")),
        Err(e) => failures.push(format!("{e:#}")),
    }
    let sent = ok + errors;
    if rows != sent as i64 {
        failures.push(format!("{rows} usage rows for {sent} requests"));
    }
    // Levelled off: compare the highest RSS of each half of the run.
    let half = total.as_secs_f64() / 2.0;
    let max_of = |first: bool| {
        samples
            .iter()
            .filter(|s| (s.elapsed_s <= half) == first)
            .map(|s| s.rss_mb)
            .fold(0.0, f64::max)
    };
    let (first, second) = (max_of(true), max_of(false));
    let limit = first * 1.1 + 5.0;
    let levelled = second <= limit;
    println!(
        "soak: {ok} requests ok, {errors} errors, {rows} usage rows; RSS max {first:.1} MB in the first half, {second:.1} MB in the second (limit {limit:.1}): {}",
        if levelled { "levelled off" } else { "STILL GROWING" }
    );
    if !levelled {
        failures.push(format!(
            "RSS grew: {second:.1} MB in the second half > {limit:.1} MB"
        ));
    }
    let warnings: Vec<String> = gw
        .log()
        .into_iter()
        .filter(|l| !l.contains(" INFO "))
        .collect();
    for line in warnings.iter().take(5) {
        println!("gateway: {line}");
    }
    std::fs::write(
        out_dir.join("soak.json"),
        serde_json::to_string_pretty(&json!({
            "seconds": total.as_secs(),
            "streams": args.streams,
            "rate": args.rate,
            "requests_ok": ok,
            "errors": errors,
            "usage_rows": rows,
            "rss_max_first_half_mb": first,
            "rss_max_second_half_mb": second,
            "levelled_off": levelled,
            "samples": samples,
            "failures": failures,
            "gateway_warnings": warnings,
        }))? + "\n",
    )?;
    for f in &failures {
        println!("soak: FAIL: {f}");
    }
    println!(
        "soak: {}",
        if failures.is_empty() { "PASS" } else { "FAIL" }
    );
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
