//! Black-box tests of `amq2api stats`: usage rows seeded straight into the database at times
//! relative to now, then the exact totals and breakdowns of `--json` and of the tables.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::{cells, stderr, stdout, TestDir};

const H: i64 = 3600;
const D: i64 = 86_400;

/// One seeded request: seconds ago, key, account, model, tokens, status, class, latency.
type Seed = (
    i64,
    Option<i32>,
    Option<&'static str>,
    &'static str,
    (i64, i64),
    i32,
    Option<&'static str>,
    i64,
);

const SONNET: &str = "claude-sonnet-4-5";
const HAIKU: &str = "claude-haiku-4-5";

/// Keys: 1 = ci, 2 = ops (revoked), None = a deleted key.
const SEEDS: [Seed; 8] = [
    (
        60,
        Some(1),
        Some("acc-a"),
        SONNET,
        (1200, 300),
        200,
        None,
        1500,
    ),
    (
        H,
        Some(1),
        Some("acc-a"),
        SONNET,
        (10000, 2000),
        200,
        None,
        4000,
    ),
    (
        H + 10,
        Some(2),
        Some("acc-b"),
        HAIKU,
        (800, 0),
        400,
        Some("input_too_long"),
        40,
    ),
    (
        3 * H,
        Some(2),
        Some("acc-b"),
        SONNET,
        (2500, 150),
        200,
        Some("client_disconnected"),
        9000,
    ),
    (
        3 * H + 5,
        None,
        None,
        HAIKU,
        (100, 0),
        503,
        Some("no_account"),
        2,
    ),
    (
        2 * D,
        Some(1),
        Some("acc-b"),
        HAIKU,
        (5000, 700),
        200,
        None,
        800,
    ),
    (
        10 * D,
        Some(2),
        Some("acc-a"),
        SONNET,
        (3000, 1000),
        429,
        Some("throttled"),
        120,
    ),
    // Older than every window but the widest.
    (
        40 * D,
        Some(1),
        Some("acc-a"),
        SONNET,
        (99999, 99999),
        200,
        None,
        5000,
    ),
];

/// A database with keys ci and ops (revoked) and the [`SEEDS`]; returns it and the seed times.
fn seeded() -> (TestDir, Vec<i64>) {
    let t = TestDir::new();
    t.ok(&["keys", "create", "--name", "ci"]);
    t.ok(&["keys", "create", "--name", "ops"]);
    t.ok(&["keys", "revoke", "ops", "--yes"]);
    let now = amq2api::db::now();
    let pool = t.pool();
    let conn = &mut pool.get().unwrap();
    let mut times = Vec::new();
    for (ago, key, account, model, tokens, status, class, latency) in SEEDS {
        times.push(now - ago);
        amq2api::db::usage::insert(
            conn,
            &amq2api::db::usage::NewUsageRecord {
                created_at: now - ago,
                api_key_id: key,
                account_id: None,
                account_name: account.map(str::to_owned),
                endpoint: "/v1/messages".into(),
                model_requested: model.into(),
                model_upstream: None,
                stream: true,
                input_tokens: tokens.0,
                output_tokens: tokens.1,
                status,
                error_class: class.map(str::to_owned),
                ttfb_ms: Some(1),
                latency_ms: latency,
            },
        )
        .unwrap();
    }
    (t, times)
}

fn figures(requests: u64, errors: u64, tokens: (u64, u64), avg: u64, p95: u64) -> Value {
    json!({
        "requests": requests,
        "errors": errors,
        "input_tokens": tokens.0,
        "output_tokens": tokens.1,
        "avg_latency_ms": avg,
        "p95_latency_ms": p95,
    })
}

fn row(label: &str, requests: u64, errors: u64, tokens: (u64, u64), avg: u64, p95: u64) -> Value {
    let mut v = figures(requests, errors, tokens, avg, p95);
    v.as_object_mut()
        .unwrap()
        .insert("label".into(), label.into());
    v
}

/// `(label, requests)` of a `--json` breakdown.
fn labels(v: &Value) -> Vec<(String, u64)> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_owned(),
                r["requests"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Requests per UTC label (format `fmt`) of the seeds newer than `ago` seconds, oldest first.
fn expected_times(times: &[i64], ago: i64, fmt: &str) -> Vec<(String, u64)> {
    // The newest seed is a minute old.
    let now = times[0] + 60;
    let mut counts = BTreeMap::new();
    for &t in times.iter().filter(|&&t| t >= now - ago) {
        let label = chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format(fmt)
            .to_string();
        *counts.entry(label).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

fn strs(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(l, n)| (l.to_string(), *n)).collect()
}

#[test]
fn totals_for_each_window() {
    let (t, times) = seeded();
    let v = t.json(&["stats", "--json"]);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["account", "by", "key", "rows", "since", "totals"],
        "{v}"
    );
    assert_eq!(v["by"], Value::Null);
    assert_eq!(v["key"], Value::Null);
    assert_eq!(v["account"], Value::Null);
    assert_eq!(v["rows"], json!([]));
    // The window starts 24 h before the command ran, to the second.
    let since = chrono::DateTime::parse_from_rfc3339(v["since"].as_str().unwrap())
        .unwrap()
        .timestamp();
    let newest = times[0] + 60;
    assert!((newest - D..newest - D + 60).contains(&since), "{v}");
    // Latencies 1500, 4000, 40, 9000, 2: mean 2908.4; p95 is the 5th of 5.
    assert_eq!(v["totals"], figures(5, 3, (14600, 2450), 2908, 9000));

    let v = t.json(&["stats", "--json", "--since", "7d"]);
    assert_eq!(v["totals"], figures(6, 3, (19600, 3150), 2557, 9000));
    let v = t.json(&["stats", "--json", "--since", "30d"]);
    assert_eq!(v["totals"], figures(7, 4, (22600, 4150), 2209, 9000));
    let v = t.json(&["stats", "--json", "--since", "90m"]);
    assert_eq!(v["totals"], figures(3, 1, (12000, 2300), 1847, 4000));
    let v = t.json(&["stats", "--json", "--since", "2d 1h"]);
    assert_eq!(v["totals"]["requests"], 6);

    // A date is midnight UTC; an RFC 3339 time is taken as given.
    let date = chrono::DateTime::from_timestamp(newest - 45 * D, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let v = t.json(&["stats", "--json", "--since", &date]);
    assert_eq!(v["since"], format!("{date}T00:00:00Z"));
    assert_eq!(v["totals"], figures(8, 4, (122599, 104149), 2558, 9000));
    let at = chrono::DateTime::from_timestamp(times[5] - 1, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let v = t.json(&["stats", "--json", "--since", &at]);
    assert_eq!(v["since"], at.as_str());
    assert_eq!(v["totals"]["requests"], 6);
    let at = chrono::DateTime::from_timestamp(times[5] + 1, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let v = t.json(&["stats", "--json", "--since", &at]);
    assert_eq!(v["totals"]["requests"], 5);
}

#[test]
fn breakdowns() {
    let (t, times) = seeded();
    let v = t.json(&["stats", "--json", "--by", "key"]);
    assert_eq!(v["by"], "key");
    assert_eq!(v["totals"], figures(5, 3, (14600, 2450), 2908, 9000));
    assert_eq!(
        v["rows"],
        json!([
            row("ci", 2, 0, (11200, 2300), 2750, 4000),
            row("ops", 2, 2, (3300, 150), 4520, 9000),
            row("(deleted)", 1, 1, (100, 0), 2, 2),
        ])
    );
    // Fields in a fixed order, for people reading the JSON.
    let text = t.ok(&["stats", "--json", "--by", "key"]);
    let at = |field: &str| text.find(&format!("\"{field}\":")).unwrap();
    let order = [
        "since",
        "by",
        "key",
        "account",
        "totals",
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "avg_latency_ms",
        "p95_latency_ms",
        "rows",
        "label",
    ];
    assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");

    let v = t.json(&["stats", "--json", "--by", "account", "--since", "7d"]);
    assert_eq!(
        v["rows"],
        json!([
            row("acc-b", 3, 2, (8300, 850), 3280, 9000),
            row("acc-a", 2, 0, (11200, 2300), 2750, 4000),
            row("(none)", 1, 1, (100, 0), 2, 2),
        ])
    );

    let v = t.json(&["stats", "--json", "--by", "model"]);
    assert_eq!(
        v["rows"],
        json!([
            row(SONNET, 3, 1, (13700, 2450), 4833, 9000),
            row(HAIKU, 2, 2, (900, 0), 21, 40),
        ])
    );

    let v = t.json(&["stats", "--json", "--by", "status", "--since", "30d"]);
    assert_eq!(
        labels(&v),
        strs(&[
            ("200", 3),
            ("200 client_disconnected", 1),
            ("400 input_too_long", 1),
            ("429 throttled", 1),
            ("503 no_account", 1),
        ])
    );
    assert_eq!(
        v["rows"][3],
        row("429 throttled", 1, 1, (3000, 1000), 120, 120)
    );

    // Time groups: labels computed from the seeded times, oldest first.
    let v = t.json(&["stats", "--json", "--by", "hour"]);
    assert_eq!(labels(&v), expected_times(&times, D, "%Y-%m-%d %H:00"));
    let v = t.json(&["stats", "--json", "--by", "day", "--since", "30d"]);
    let days = expected_times(&times, 30 * D, "%Y-%m-%d");
    assert_eq!(labels(&v), days);
    assert!((3..=4).contains(&days.len()), "{days:?}");
    assert_eq!(
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["input_tokens"].as_u64().unwrap())
            .sum::<u64>(),
        22600
    );
}

#[test]
fn key_and_account_filters() {
    let (t, _) = seeded();
    let v = t.json(&["stats", "--json", "--key", "ci", "--since", "30d"]);
    assert_eq!(v["key"], "ci");
    assert_eq!(v["totals"], figures(3, 0, (16200, 3000), 2100, 4000));
    // A revoked key's requests are still found by its name.
    let v = t.json(&[
        "stats", "--json", "--key", "ops", "--since", "30d", "--by", "model",
    ]);
    assert_eq!(v["totals"]["requests"], 3);
    assert_eq!(v["totals"]["errors"], 3);
    assert_eq!(labels(&v), strs(&[(SONNET, 2), (HAIKU, 1)]));
    let v = t.json(&[
        "stats",
        "--json",
        "--account",
        "acc-a",
        "--since",
        "30d",
        "--by",
        "key",
    ]);
    assert_eq!(v["account"], "acc-a");
    assert_eq!(labels(&v), strs(&[("ci", 2), ("ops", 1)]));
    let v = t.json(&[
        "stats",
        "--json",
        "--key",
        "ci",
        "--account",
        "acc-b",
        "--since",
        "7d",
    ]);
    assert_eq!(v["totals"], figures(1, 0, (5000, 700), 800, 800));

    for (flag, what) in [("--key", "key"), ("--account", "account")] {
        let out = t.run(&["stats", flag, "ghost"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out),
            format!("amq2api: cannot show stats: no {what} named \"ghost\"\n")
        );
        assert_eq!(stdout(&out), "");
    }
}

#[test]
fn tables() {
    let (t, _) = seeded();
    let text = t.ok(&["stats", "--by", "model"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Usage since "), "{text}");
    assert!(lines[0].ends_with(" UTC"), "{text}");
    let rows: Vec<Vec<String>> = lines
        .iter()
        .filter(|l| l.starts_with('│'))
        .map(|l| cells(l))
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "Requests",
                "Errors",
                "Input tokens",
                "Output tokens",
                "Avg latency",
                "p95 latency"
            ],
            vec!["5", "3", "14,600", "2,450", "2,908 ms", "9,000 ms"],
            vec![
                "Model",
                "Requests",
                "Errors",
                "Input tokens",
                "Output tokens",
                "Avg latency",
                "p95 latency"
            ],
            vec![SONNET, "3", "1", "13,700", "2,450", "4,833 ms", "9,000 ms"],
            vec![HAIKU, "2", "2", "900", "0", "21 ms", "40 ms"],
        ]
    );
    // Numbers are right-aligned: one space before the separator, padding on the left.
    let haiku = lines.iter().find(|l| l.contains(HAIKU)).unwrap();
    let segments: Vec<&str> = haiku.split(['│', '┆']).collect();
    assert!(segments[1].starts_with(&format!(" {HAIKU}")), "{haiku}");
    for segment in &segments[2..segments.len() - 1] {
        assert!(segment.starts_with("  "), "{haiku}");
        assert!(
            segment.ends_with(' ') && !segment.ends_with("  "),
            "{haiku}"
        );
    }
    assert!(!text.contains("sk-amq-"), "{text}");

    let text = t.ok(&[
        "stats",
        "--by",
        "key",
        "--since",
        "30d",
        "--account",
        "acc-a",
    ]);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(" UTC (account acc-a)"),
        "{text}"
    );
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| l.starts_with('│'))
        .skip(2)
        .map(cells)
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "Key",
                "Requests",
                "Errors",
                "Input tokens",
                "Output tokens",
                "Avg latency",
                "p95 latency"
            ],
            vec!["ci", "2", "0", "11,200", "2,300", "2,750 ms", "4,000 ms"],
            vec!["ops", "1", "1", "3,000", "1,000", "120 ms", "120 ms"],
        ]
    );

    // Without --by, only the totals.
    let text = t.ok(&["stats", "--since", "7d"]);
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(cells)
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(
        rows[1],
        ["6", "3", "19,600", "3,150", "2,557 ms", "9,000 ms"]
    );
}

#[test]
fn an_empty_period_says_so() {
    let t = TestDir::new();
    let date = chrono::DateTime::from_timestamp(amq2api::db::now() - 3 * D, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(
        t.ok(&["stats", "--since", &date, "--by", "hour"]),
        format!("No requests since {date} 00:00 UTC.\n")
    );
    let v = t.json(&["stats", "--json", "--since", &date, "--by", "hour"]);
    assert_eq!(
        v,
        json!({
            "since": format!("{date}T00:00:00Z"),
            "by": "hour",
            "key": null,
            "account": null,
            "totals": {
                "requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0,
                "avg_latency_ms": null, "p95_latency_ms": null,
            },
            "rows": [],
        })
    );

    // Requests exist, but none in the window or for this filter.
    let (t, _) = seeded();
    let out = t.ok(&[
        "stats",
        "--since",
        "30s",
        "--key",
        "ci",
        "--account",
        "acc-a",
    ]);
    assert!(out.starts_with("No requests since "), "{out}");
    assert!(out.ends_with(" UTC (key ci, account acc-a).\n"), "{out}");
    assert_eq!(out.lines().count(), 1);
    let out = t.ok(&["stats", "--key", "ops", "--account", "acc-a"]);
    assert!(out.starts_with("No requests since "), "{out}");
}

#[test]
fn bad_arguments() {
    let t = TestDir::new();
    let out = t.run(&["stats", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "amq2api: invalid --since: \"yesterday\" is neither a duration (24h, 7d, 90m) nor a date (2026-11-01)\n"
    );
    let out = t.run(&["stats", "--since", "2999-01-01"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "amq2api: invalid --since: \"2999-01-01\" is in the future\n"
    );
    let out = t.run(&["stats", "--by", "week"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("amq2api: invalid usage: "));
}
