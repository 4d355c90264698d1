//! The phases: each drives one kind of load at the gateway and at the fake directly, and adds
//! its figures (with their targets) to the report. [`Plan`] holds every request count and time
//! limit, for the full run and for `--quick`; [`Bench`] what the phases share.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::client::{self, closed_loop, Outcome, Req, Run, Wire};
use crate::fake::{self, Fake, Script};
use crate::gateway;
use crate::report::{at_least, at_most, Report};
use crate::stats::{median, ms, summarize, Proc, Summary};
use crate::text;

/// One concurrency level of the time-to-first-text phase.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    pub concurrency: usize,
    /// Requests per run.
    pub requests: usize,
    /// Streams of `.0` text events `.1` apart after the first; `None`: the short answer.
    pub pace: Option<(u32, Duration)>,
}

pub const fn level(concurrency: usize, requests: usize, pace: Option<(u32, Duration)>) -> Level {
    Level {
        concurrency,
        requests,
        pace,
    }
}

/// Request counts and time limits of one run.
pub struct Plan {
    pub warmup: usize,
    pub ttfb: Vec<Level>,
    pub ttfb_time: Duration,
    pub reps: usize,
    /// (concurrency, streams per run, events per stream, interval)
    pub stamped: (usize, usize, u32, Duration),
    /// (streams, events per stream)
    pub bulk: (usize, usize),
    pub throughput_time: Duration,
    pub throughput_max: usize,
    /// (streams, events per stream, interval)
    pub hold: (usize, u32, Duration),
    pub count_sizes: Vec<usize>,
    pub count_reps: usize,
    pub bursts: usize,
    /// (requests, tokens each) of a count_tokens burst.
    pub burst: (usize, usize),
    pub big_reps: usize,
    /// Limit of any one run.
    pub run_time: Duration,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            warmup: 500,
            ttfb: vec![
                level(1, 500, None),
                level(50, 1_000, Some((10, Duration::from_millis(20)))),
                level(500, 1_500, Some((10, Duration::from_millis(100)))),
            ],
            ttfb_time: Duration::from_secs(10),
            reps: 3,
            stamped: (50, 300, 40, Duration::from_millis(10)),
            bulk: (200, 200),
            throughput_time: Duration::from_secs(4),
            throughput_max: 60_000,
            hold: (1_000, 8, Duration::from_millis(250)),
            count_sizes: vec![1_000, 10_000, 100_000, 200_000],
            count_reps: 5,
            bursts: 3,
            burst: (50, 20_000),
            big_reps: 5,
            run_time: Duration::from_secs(30),
        }
    }

    pub fn quick() -> Plan {
        Plan {
            warmup: 100,
            ttfb: vec![
                level(1, 50, None),
                level(50, 100, Some((5, Duration::from_millis(10)))),
                level(500, 500, Some((5, Duration::from_millis(50)))),
            ],
            ttfb_time: Duration::from_secs(5),
            reps: 1,
            stamped: (20, 20, 20, Duration::from_millis(5)),
            bulk: (20, 200),
            throughput_time: Duration::from_millis(700),
            throughput_max: 5_000,
            hold: (200, 4, Duration::from_millis(100)),
            count_sizes: vec![1_000, 10_000, 100_000],
            count_reps: 1,
            bursts: 1,
            burst: (20, 5_000),
            big_reps: 1,
            run_time: Duration::from_secs(10),
        }
    }
}

/// The short answer: metadata, five text events, metering and context usage (about 600 bytes).
pub fn short_answer() -> Bytes {
    fake::answer(&[
        "Hello! ",
        "This is a short ",
        "answer from the ",
        "benchmark's fake ",
        "Amazon Q.",
    ])
}

/// The short request every latency and throughput phase sends.
fn short_request(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
    })
}

/// Everything the phases share.
pub struct Bench {
    pub client: awc::Client,
    pub gw_url: String,
    pub gw: Proc,
    pub keys: gateway::Keys,
    pub fake: Fake,
    pub plan: Plan,
    pub phases: Vec<String>,
    pub report: Report,
    pub details: serde_json::Map<String, Value>,
    /// `/v1/messages` requests sent to the gateway (each must leave one usage row).
    pub sent: usize,
    pub errors: Vec<String>,
    pub chars_per_token: f64,
    /// Gateway CPU seconds per short streamed request, once measured.
    pub cpu_per_streamed_request: Option<f64>,
    /// The gateway runs under callgrind: its counters are zeroed after the warm-up.
    pub callgrind: bool,
}

/// The same request twice: through the gateway and straight to the fake.
struct Pair {
    gw: Rc<Req>,
    direct: Rc<Req>,
}

impl Bench {
    fn wants(&self, phase: &str) -> bool {
        self.phases.is_empty() || self.phases.iter().any(|p| p == phase)
    }

    /// A `/v1/messages` request for the gateway and the Amazon Q body the gateway would send
    /// for it, for the fake: the same request builder, so both carry the same conversation.
    fn pair(&self, body: &Value, stamped: bool) -> anyhow::Result<Pair> {
        let stream = body["stream"].as_bool().unwrap_or(false);
        let req: amq2api::claude::types::MessagesRequest = serde_json::from_value(body.clone())?;
        let models = amq2api::models::ModelMap::default();
        let built = amq2api::claude::request::build(
            &req,
            &amq2api::claude::request::BuildOptions {
                origin: "CLI",
                models: &models,
                conversation_id: None,
            },
        )?;
        let direct_body = serde_json::to_vec(&built.request)?;
        Ok(Pair {
            gw: Rc::new(Req {
                url: format!("{}/v1/messages", self.gw_url),
                headers: self.gw_headers(),
                body: Bytes::from(serde_json::to_vec(body)?),
                wire: if stream { Wire::Sse } else { Wire::Whole },
                stamped,
            }),
            direct: Rc::new(Req {
                url: format!("{}/", self.fake.url),
                headers: vec![
                    ("content-type", "application/x-amz-json-1.0".into()),
                    ("x-amz-target", amq2api::q::config::TARGET_GENERATE.into()),
                    (
                        "authorization",
                        format!("Bearer {}", gateway::access_token(0)),
                    ),
                ],
                body: Bytes::from(direct_body),
                wire: if stream {
                    Wire::EventStream
                } else {
                    Wire::Whole
                },
                stamped,
            }),
        })
    }

    fn gw_headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("content-type", "application/json".into()),
            ("x-api-key", self.keys.user.clone()),
            ("anthropic-version", "2023-06-01".into()),
        ]
    }

    fn count_req(&self, body: &Value) -> anyhow::Result<Rc<Req>> {
        Ok(Rc::new(Req {
            url: format!("{}/v1/messages/count_tokens", self.gw_url),
            headers: self.gw_headers(),
            body: Bytes::from(serde_json::to_vec(body)?),
            wire: Wire::Whole,
            stamped: false,
        }))
    }

    /// A closed-loop run of `req`; gateway runs are counted for the usage-row check and their
    /// errors reported.
    async fn run(
        &mut self,
        what: &str,
        req: &Rc<Req>,
        concurrency: usize,
        max: usize,
        time: Duration,
        stagger: Duration,
    ) -> Run {
        let to_gateway = req.url.starts_with(&self.gw_url) && req.url.ends_with("/v1/messages");
        let r = req.clone();
        let run = closed_loop(&self.client, concurrency, max, time, stagger, move |_| {
            r.clone()
        })
        .await;
        if to_gateway {
            self.sent += run.outcomes.len();
        }
        self.check(what, &run);
        run
    }

    fn check(&mut self, what: &str, run: &Run) {
        if run.errors() > 0 {
            self.errors.push(format!(
                "{what}: {} of {} requests failed, first: {}",
                run.errors(),
                run.outcomes.len(),
                run.first_error().unwrap_or("?")
            ));
        }
    }

    pub async fn run_all(mut self) -> Bench {
        // Idle: started, tokenizer built, nothing served yet.
        actix_web::rt::time::sleep(Duration::from_secs(1)).await;
        let idle = self.gw.rss_kb();
        self.report.add(
            4,
            "rss_idle",
            "idle RSS of the gateway (tokenizer loaded)",
            idle / 1024.0,
            "MB",
            at_most(40.0),
        );
        let result = async {
            self.warm_up().await?;
            if self.callgrind {
                // Profile the phases only: not the start-up (tokenizer) nor the warm-up.
                let zeroed = std::process::Command::new("callgrind_control")
                    .args(["--zero", &self.gw.0.to_string()])
                    .stdout(std::process::Stdio::null())
                    .status();
                eprintln!("bench: callgrind counters zeroed ({zeroed:?}); requests to the gateway so far: {}", self.sent);
            }
            if self.wants("hold") {
                self.hold().await?;
            }
            if self.wants("ttfb") {
                self.ttfb().await?;
            }
            if self.wants("throughput") {
                self.throughput().await?;
            }
            if self.wants("events") {
                self.events().await?;
            }
            if self.wants("count") || self.wants("big") {
                eprintln!("bench: calibrating the text generator");
                self.chars_per_token = text::calibrate();
            }
            if self.wants("count") {
                self.count_tokens().await?;
            }
            if self.wants("big") {
                self.big_ttfb().await?;
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            self.errors.push(format!("{e:#}"));
        }
        self
    }

    async fn warm_up(&mut self) -> anyhow::Result<()> {
        eprintln!("bench: warm-up");
        self.fake.set_script(Script::Fixed(short_answer()));
        let n = self.plan.warmup;
        let t = self.plan.run_time;
        for stream in [true, false] {
            let p = self.pair(&short_request(stream), false)?;
            self.run("warm-up (direct)", &p.direct, 10, n, t, Duration::ZERO)
                .await;
            self.run("warm-up (gateway)", &p.gw, 10, n, t, Duration::ZERO)
                .await;
        }
        let small =
            json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]});
        let r = self.count_req(&small)?;
        self.run("warm-up (count_tokens)", &r, 1, 10, t, Duration::ZERO)
            .await;
        // Nothing after this would mean anything.
        anyhow::ensure!(self.errors.is_empty(), "the warm-up failed");
        Ok(())
    }

    /// Item 4: `n` streams held open at once by a slow trickle; memory per stream.
    async fn hold(&mut self) -> anyhow::Result<()> {
        let (n, events, interval) = self.plan.hold;
        eprintln!(
            "bench: {n} streams held open ({events} events {} ms apart)",
            interval.as_millis()
        );
        self.fake.set_script(Script::Paced { events, interval });
        let p = self.pair(&short_request(true), false)?;
        let before = self.gw.rss_kb();
        self.fake.take_peak();
        let done = std::cell::Cell::new(false);
        let max_rss = std::cell::Cell::new(before);
        let gw = self.gw;
        let threads_before = gw.threads();
        let max_threads = std::cell::Cell::new(threads_before);
        let sampler = async {
            while !done.get() {
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                max_rss.set(max_rss.get().max(gw.rss_kb()));
                max_threads.set(max_threads.get().max(gw.threads()));
            }
        };
        let r = p.gw.clone();
        let client = &self.client;
        let time = self.plan.run_time * 3;
        let load = async {
            let run = closed_loop(client, n, n, time, Duration::ZERO, move |_| r.clone()).await;
            done.set(true);
            run
        };
        let (run, _) = futures_util::future::join(load, sampler).await;
        let peak_upstream = self.fake.take_peak();
        let hwm = self.gw.hwm_kb();
        self.sent += run.outcomes.len();
        self.check("hold", &run);
        let completed = run.outcomes.iter().filter(|o| o.ok()).count();
        let per_stream = (max_rss.get() - before) / n as f64;
        self.details.insert(
            "hold".into(),
            json!({
                "streams": n, "completed": completed, "errors": run.errors(),
                "seconds": run.elapsed.as_secs_f64(),
                "peak_upstream_streams_open": peak_upstream,
                "rss_before_kb": before, "rss_max_kb": max_rss.get(),
                "threads_before": threads_before, "threads_max": max_threads.get(),
                "first_text_ms": summarize(run.ms_of(|o| o.first_text)),
            }),
        );
        self.report.add(
            4,
            "hold_errors",
            format!("{n} concurrent streams: errors ({completed} completed)"),
            run.errors() as f64,
            "",
            at_most(0.0),
        );
        self.report.add(
            4,
            "hold_peak_upstream",
            format!("{n} concurrent streams: most open upstream at once"),
            peak_upstream as f64,
            "",
            at_least(n as f64),
        );
        self.report.add(
            4,
            "hold_seconds",
            format!(
                "{n} concurrent streams: time for all (each {} ms)",
                (interval * (events - 1)).as_millis()
            ),
            run.elapsed.as_secs_f64(),
            "s",
            None,
        );
        self.report.add(
            4,
            "rss_peak_hold",
            format!("peak RSS of the gateway after the {n} streams (VmHWM)"),
            hwm / 1024.0,
            "MB",
            None,
        );
        self.report.add(
            7,
            "rss_per_stream",
            "RSS per open stream ((peak − before) / streams)",
            per_stream,
            "KB",
            at_most(32.0),
        );
        Ok(())
    }

    /// Item 1: time to first text, direct vs through the gateway, with `c` streams in flight.
    /// Beyond one, each stream stays open a while (a trickle after the first text, the loops
    /// staggered), so that `c` is the number of open streams, not a saturating request rate.
    async fn ttfb(&mut self) -> anyhow::Result<()> {
        let p_short = self.pair(&short_request(true), false)?;
        let mut details = Vec::new();
        for Level {
            concurrency: c,
            requests: n,
            pace,
        } in self.plan.ttfb.clone()
        {
            let (script, stagger, how) = match pace {
                None => (
                    Script::Fixed(short_answer()),
                    Duration::ZERO,
                    "short streams".to_owned(),
                ),
                Some((events, interval)) => (
                    Script::Paced { events, interval },
                    interval * (events - 1),
                    format!(
                        "streams of {events} events {} ms apart",
                        interval.as_millis()
                    ),
                ),
            };
            eprintln!(
                "bench: time to first text, {c} concurrent {how}, {n} requests × {} runs each way",
                self.plan.reps
            );
            self.fake.set_script(script);
            let p = &p_short;
            let t = self.plan.ttfb_time;
            self.run("ttfb warm-up (direct)", &p.direct, c, c, t, stagger)
                .await;
            self.run("ttfb warm-up (gateway)", &p.gw, c, c, t, stagger)
                .await;
            let (mut text50, mut text99, mut head50, mut head99) = (vec![], vec![], vec![], vec![]);
            let mut peak = 0;
            for _ in 0..self.plan.reps {
                let direct = self.run("ttfb (direct)", &p.direct, c, n, t, stagger).await;
                self.fake.take_peak();
                let via = self.run("ttfb (gateway)", &p.gw, c, n, t, stagger).await;
                peak = peak.max(self.fake.take_peak());
                let d = summarize(direct.ms_of(|o| o.first_text));
                let g = summarize(via.ms_of(|o| o.first_text));
                let dh = summarize(direct.ms_of(|o| Some(o.head)));
                let gh = summarize(via.ms_of(|o| Some(o.head)));
                text50.push(g.p50 - d.p50);
                text99.push(g.p99 - d.p99);
                head50.push(gh.p50 - dh.p50);
                head99.push(gh.p99 - dh.p99);
                details.push(json!({
                    "concurrency": c, "requests": n, "answer": how,
                    "direct_first_text_ms": d, "gateway_first_text_ms": g,
                    "direct_head_ms": dh, "gateway_head_ms": gh,
                    "direct_rate": direct.rate(), "gateway_rate": via.rate(),
                }));
            }
            if pace.is_some() {
                details.push(
                    json!({"concurrency": c, "gateway_runs_peak_streams_open_upstream": peak}),
                );
            }
            let (t50, t99) = if c == 50 {
                (at_most(0.5), at_most(2.0))
            } else {
                (None, None)
            };
            self.report.add(
                1,
                format!("ttfb_added_p50_c{c}"),
                format!("added time to first text, p50, {c} concurrent"),
                median(text50),
                "ms",
                t50,
            );
            self.report.add(
                1,
                format!("ttfb_added_p99_c{c}"),
                format!("added time to first text, p99, {c} concurrent"),
                median(text99),
                "ms",
                t99,
            );
            self.report.add(
                1,
                format!("head_added_p50_c{c}"),
                format!("added time to first response byte, p50, {c} concurrent"),
                median(head50),
                "ms",
                None,
            );
            self.report.add(
                1,
                format!("head_added_p99_c{c}"),
                format!("added time to first response byte, p99, {c} concurrent"),
                median(head99),
                "ms",
                None,
            );
        }
        self.details.insert("ttfb".into(), Value::Array(details));
        Ok(())
    }

    /// Item 2: per-event forwarding delay from the fake's send stamps; item 7's CPU per event.
    async fn events(&mut self) -> anyhow::Result<()> {
        let (c, n, events, interval) = self.plan.stamped;
        eprintln!(
            "bench: per-event delay, {c} concurrent streams of {events} events {} ms apart",
            interval.as_millis()
        );
        self.fake.set_script(Script::Paced { events, interval });
        let p = self.pair(&short_request(true), true)?;
        let t = self.plan.run_time;
        let stagger = interval * (events - 1);
        let (mut d50, mut d99, mut raw50, mut raw99) = (vec![], vec![], vec![], vec![]);
        let mut details = Vec::new();
        let (mut cpu, mut count, mut requests) = (0.0, 0u64, 0usize);
        for _ in 0..self.plan.reps {
            let direct = self
                .run("events (direct)", &p.direct, c, n, t, stagger)
                .await;
            let cpu0 = self.gw.cpu_seconds();
            let via = self.run("events (gateway)", &p.gw, c, n, t, stagger).await;
            cpu += self.gw.cpu_seconds() - cpu0;
            requests += via.outcomes.len();
            count += via.outcomes.iter().map(|o| u64::from(o.texts)).sum::<u64>();
            let d = summarize(direct.delays_ms());
            let g = summarize(via.delays_ms());
            d50.push(g.p50 - d.p50);
            d99.push(g.p99 - d.p99);
            raw50.push(g.p50);
            raw99.push(g.p99);
            details.push(json!({"direct_delay_ms": d, "gateway_delay_ms": g}));
        }
        // The target is checked on the whole fake → client delay through the gateway, which
        // bounds what the gateway adds from above; the difference from the direct path is shown
        // too (quantiles of unpaired samples: it can come out negative).
        for (id, label, v, target) in [
            (
                "event_delay_gateway_p50",
                "per-event delay, fake send → client arrival via the gateway, p50",
                median(raw50),
                None,
            ),
            (
                "event_delay_gateway_p99",
                "per-event delay, fake send → client arrival via the gateway, p99",
                median(raw99),
                at_most(1.0),
            ),
            (
                "event_delay_added_p50",
                "per-event delay, gateway − direct, p50",
                median(d50),
                None,
            ),
            (
                "event_delay_added_p99",
                "per-event delay, gateway − direct, p99",
                median(d99),
                None,
            ),
        ] {
            self.report.add(2, id, label, v, "ms", target);
        }
        // The requests' own cost (measured with short streams) taken out, when known.
        let per_request = self.cpu_per_streamed_request.unwrap_or(0.0);
        let label = if self.cpu_per_streamed_request.is_some() {
            "gateway CPU per 1,000 streamed events (paced, one event per read; request cost taken out)".to_owned()
        } else {
            format!("gateway CPU per 1,000 streamed events (paced, one event per read, with {events}-event requests' cost)")
        };
        self.report.add(
            7,
            "cpu_per_1k_events_paced",
            label,
            (cpu - per_request * requests as f64) / count as f64 * 1000.0,
            "CPU-s",
            None,
        );

        // Bulk: long answers written at once (many events per read).
        let (streams, per) = self.plan.bulk;
        let chunks: Vec<String> = (0..per).map(|i| format!("word{i} ")).collect();
        let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
        self.fake.set_script(Script::Fixed(fake::answer(&refs)));
        let p = self.pair(&short_request(true), false)?;
        let direct = self
            .run(
                "bulk events (direct)",
                &p.direct,
                10,
                streams,
                t,
                Duration::ZERO,
            )
            .await;
        let cpu0 = self.gw.cpu_seconds();
        let via = self
            .run(
                "bulk events (gateway)",
                &p.gw,
                10,
                streams,
                t,
                Duration::ZERO,
            )
            .await;
        let cpu = self.gw.cpu_seconds() - cpu0 - per_request * via.outcomes.len() as f64;
        let count: u64 = via.outcomes.iter().map(|o| u64::from(o.texts)).sum();
        let rate = |r: &Run| {
            r.outcomes.iter().map(|o| f64::from(o.texts)).sum::<f64>() / r.elapsed.as_secs_f64()
        };
        details.push(json!({"bulk_direct_events_per_s": rate(&direct), "bulk_gateway_events_per_s": rate(&via)}));
        self.report.add(
            7,
            "cpu_per_1k_events_bulk",
            format!("gateway CPU per 1,000 streamed events ({per}-event answers written at once)"),
            cpu / count as f64 * 1000.0,
            "CPU-s",
            None,
        );
        self.report.add(
            7,
            "events_per_s_bulk",
            "streamed events per second through the gateway (bulk)",
            rate(&via),
            "/s",
            None,
        );
        self.details.insert("events".into(), Value::Array(details));
        Ok(())
    }

    /// Item 3: short requests per second, direct vs gateway, 50 in flight (saturating), for
    /// streamed and non-streamed requests; item 6's dropped usage rows at that rate; item 7's
    /// CPU per request.
    async fn throughput(&mut self) -> anyhow::Result<()> {
        self.fake.set_script(Script::Fixed(short_answer()));
        let dropped0 = self.dropped_rows().await;
        let mut all = serde_json::Map::new();
        for stream in [true, false] {
            let c = 50;
            let kind = if stream { "streamed" } else { "non-streaming" };
            eprintln!("bench: throughput, {c} concurrent {kind} requests");
            let p = self.pair(&short_request(stream), false)?;
            let (mut direct_rates, mut gw_rates, mut details) = (vec![], vec![], vec![]);
            let (mut cpu, mut requests) = (0.0, 0);
            let (mut user, mut sys, mut switches) = (0.0, 0.0, 0.0);
            let (t, max) = (self.plan.throughput_time, self.plan.throughput_max);
            for _ in 0..self.plan.reps {
                let direct = self
                    .run("throughput (direct)", &p.direct, c, max, t, Duration::ZERO)
                    .await;
                let cpu0 = self.gw.cpu_seconds();
                let (u0, s0) = self.gw.user_sys();
                let cs0 = self.gw.context_switches();
                let via = self
                    .run("throughput (gateway)", &p.gw, c, max, t, Duration::ZERO)
                    .await;
                cpu += self.gw.cpu_seconds() - cpu0;
                let (u1, s1) = self.gw.user_sys();
                user += u1 - u0;
                sys += s1 - s0;
                switches += self.gw.context_switches() - cs0;
                requests += via.outcomes.len();
                direct_rates.push(direct.rate());
                gw_rates.push(via.rate());
                details.push(json!({
                    "direct_rate": direct.rate(), "gateway_rate": via.rate(),
                    "direct_latency_ms": summarize(direct.ms_of(|o| Some(o.total))),
                    "gateway_latency_ms": summarize(via.ms_of(|o| Some(o.total))),
                }));
            }
            details.push(json!({
                "gateway_user_cpu_ms_per_request": user / requests as f64 * 1e3,
                "gateway_system_cpu_ms_per_request": sys / requests as f64 * 1e3,
                "gateway_context_switches_per_request": switches / requests as f64,
            }));
            all.insert(kind.into(), Value::Array(details));
            let (d, g) = (median(direct_rates), median(gw_rates));
            let per_1k = cpu / requests as f64 * 1000.0;
            if stream {
                self.cpu_per_streamed_request = Some(per_1k / 1000.0);
                self.report.add(
                    3,
                    "rps_stream_direct",
                    "short streamed requests/s, direct to the fake",
                    d,
                    "/s",
                    None,
                );
                self.report.add(
                    3,
                    "rps_stream_gateway",
                    "short streamed requests/s, through the gateway",
                    g,
                    "/s",
                    None,
                );
                self.report.add(
                    7,
                    "cpu_per_1k_streamed",
                    "gateway CPU per 1,000 short streamed requests",
                    per_1k,
                    "CPU-s",
                    at_most(0.35),
                );
            } else {
                self.report.add(
                    3,
                    "rps_direct",
                    "non-streaming requests/s, direct to the fake",
                    d,
                    "/s",
                    None,
                );
                self.report.add(
                    3,
                    "rps_gateway",
                    "non-streaming requests/s, through the gateway",
                    g,
                    "/s",
                    None,
                );
                self.report.add(
                    3,
                    "rps_ratio",
                    "non-streaming: gateway rate / direct rate",
                    g / d * 100.0,
                    "%",
                    at_least(50.0),
                );
                self.report.add(
                    7,
                    "cpu_per_1k_nonstream",
                    "gateway CPU per 1,000 non-streamed requests",
                    per_1k,
                    "CPU-s",
                    at_most(0.27),
                );
            }
        }
        let dropped = self.dropped_rows().await - dropped0;
        self.report.add(
            6,
            "usage_rows_dropped",
            "usage rows dropped at those rates (/metrics)",
            dropped,
            "",
            at_most(0.0),
        );
        self.details.insert("throughput".into(), Value::Object(all));
        Ok(())
    }

    /// `amq2api_usage_rows_dropped_total` from `GET /metrics` (admin key); NaN if unreadable.
    async fn dropped_rows(&mut self) -> f64 {
        let response = self
            .client
            .get(format!("{}/metrics", self.gw_url))
            .insert_header(("x-api-key", self.keys.admin.as_str()))
            .send()
            .await;
        let body = match response {
            Ok(mut r) if r.status() == 200 => r.body().limit(1 << 20).await.unwrap_or_default(),
            Ok(r) => {
                self.errors
                    .push(format!("GET /metrics: HTTP {}", r.status()));
                return f64::NAN;
            }
            Err(e) => {
                self.errors.push(format!("GET /metrics: {e}"));
                return f64::NAN;
            }
        };
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| {
                l.strip_prefix("amq2api_usage_rows_dropped_total ")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(f64::NAN)
    }

    /// Item 5: count_tokens cold (never-seen conversations), warm (the previous conversation
    /// plus one exchange), and a burst of 50 with a shared prefix.
    async fn count_tokens(&mut self) -> anyhow::Result<()> {
        let sizer = text::Sizer {
            chars_per_token: self.chars_per_token,
        };
        let reps = self.plan.count_reps;
        let mut details = serde_json::Map::new();
        for size in self.plan.count_sizes.clone() {
            let k = size / 1000;
            eprintln!("bench: count_tokens, {k}k tokens, cold and warm, {reps} each");
            let mut cold = Vec::new();
            let mut counted = Vec::new();
            for rep in 0..reps {
                let body = sizer
                    .conversation(1_000_000 + (size * 10 + rep) as u64, size)
                    .request(false);
                let o = self.count_once(&body).await?;
                cold.push(ms(o.total));
                counted.push(input_tokens(&o));
            }
            // Warm: send a conversation once, then the same plus one exchange, repeatedly.
            let mut conv = sizer.conversation(2_000_000 + size as u64, size);
            self.count_once(&conv.request(false)).await?;
            let mut warm = Vec::new();
            for rep in 0..reps {
                conv = sizer.extend(&conv, 3_000_000 + (size * 10 + rep) as u64, 100);
                let o = self.count_once(&conv.request(false)).await?;
                warm.push(ms(o.total));
            }
            let (c, w) = (summarize(cold), summarize(warm));
            details.insert(
                format!("{k}k"),
                json!({"cold_ms": c, "warm_ms": w, "input_tokens": counted}),
            );
            let (tc, tw) = if size == 100_000 {
                (at_most(25.0), at_most(3.0))
            } else {
                (None, None)
            };
            let tokens = counted.first().copied().unwrap_or(0);
            self.report.add(
                5,
                format!("count_cold_p50_{k}k"),
                format!("count_tokens cold, p50, {k}k tokens ({tokens} counted)"),
                c.p50,
                "ms",
                tc,
            );
            self.report.add(
                5,
                format!("count_warm_p50_{k}k"),
                format!("count_tokens warm (+1 exchange), p50, {k}k tokens"),
                w.p50,
                "ms",
                tw,
            );
        }
        // The burst: `n` at once of `tokens` each, all but the last exchange shared.
        let (n, tokens) = self.plan.burst;
        let mut walls = Vec::new();
        for b in 0..self.plan.bursts {
            eprintln!(
                "bench: count_tokens burst {} of {}",
                b + 1,
                self.plan.bursts
            );
            let base = sizer.conversation(4_000_000 + b as u64, tokens * 19 / 20);
            let reqs: Vec<Rc<Req>> = (0..n)
                .map(|j| {
                    self.count_req(
                        &sizer
                            .extend(&base, 5_000_000 + (b * 1000 + j) as u64, tokens / 80)
                            .request(false),
                    )
                })
                .collect::<anyhow::Result<_>>()?;
            let run = closed_loop(
                &self.client,
                n,
                n,
                self.plan.run_time,
                Duration::ZERO,
                |i| reqs[i].clone(),
            )
            .await;
            self.check("count_tokens burst", &run);
            walls.push(ms(run.elapsed));
        }
        details.insert("burst_ms".into(), json!(walls));
        let k = tokens / 1000;
        self.report.add(
            5,
            format!("count_burst_{n}x{k}k"),
            format!("{n} concurrent count_tokens of {k}k tokens: all answered (median of bursts)"),
            median(walls),
            "ms",
            if (n, tokens) == (50, 20_000) {
                at_most(200.0)
            } else {
                None
            },
        );
        self.details
            .insert("count_tokens".into(), Value::Object(details));
        Ok(())
    }

    async fn count_once(&mut self, body: &Value) -> anyhow::Result<Outcome> {
        let r = self.count_req(body)?;
        let o = client::send(&self.client, &r).await;
        if let Some(e) = &o.error {
            anyhow::bail!("count_tokens failed: {e}");
        }
        Ok(o)
    }

    /// Item 5's last figure: added time to first text of a 100k-token streaming request.
    async fn big_ttfb(&mut self) -> anyhow::Result<()> {
        let sizer = text::Sizer {
            chars_per_token: self.chars_per_token,
        };
        eprintln!(
            "bench: time to first text of a 100k-token request, {} each way",
            self.plan.big_reps
        );
        self.fake.set_script(Script::Fixed(short_answer()));
        let (mut added, mut direct_ms, mut gw_ms) = (vec![], vec![], vec![]);
        for rep in 0..self.plan.big_reps {
            let body = sizer
                .conversation(6_000_000 + rep as u64, 100_000)
                .request(true);
            let p = self.pair(&body, false)?;
            let t = self.plan.run_time;
            let d = self
                .run("100k ttfb (direct)", &p.direct, 1, 1, t, Duration::ZERO)
                .await;
            let g = self
                .run("100k ttfb (gateway)", &p.gw, 1, 1, t, Duration::ZERO)
                .await;
            let (Some(d), Some(g)) = (first_text(&d), first_text(&g)) else {
                continue;
            };
            direct_ms.push(d);
            gw_ms.push(g);
            added.push(g - d);
        }
        self.details.insert(
            "big_ttfb".into(),
            json!({"direct_ms": direct_ms, "gateway_ms": gw_ms}),
        );
        let s: Summary = summarize(added);
        self.report.add(
            5,
            "big_ttfb_added_p50",
            "added time to first text, 100k-token request, p50",
            s.p50,
            "ms",
            at_most(0.5),
        );
        self.report.add(
            5,
            "big_ttfb_added_max",
            "added time to first text, 100k-token request, max",
            s.max,
            "ms",
            at_most(2.0),
        );
        Ok(())
    }
}

fn first_text(run: &Run) -> Option<f64> {
    run.outcomes.first().and_then(|o| o.first_text).map(ms)
}

fn input_tokens(o: &Outcome) -> u64 {
    serde_json::from_slice::<Value>(&o.body)
        .ok()
        .and_then(|v| v["input_tokens"].as_u64())
        .unwrap_or(0)
}
