//! `amq2api stats`: usage totals and one breakdown from the usage log (figures from
//! [`crate::db::stats`]), as tables or as JSON.
//!
//! The `--json` object, stable for scripts (integers are raw; latencies in milliseconds):
//!
//! ```json
//! {
//!   "since": "2026-11-25T10:00:00Z",
//!   "by": "model",
//!   "key": null,
//!   "account": null,
//!   "totals": {"requests": 12, "errors": 2, "input_tokens": 12345, "output_tokens": 678,
//!              "avg_latency_ms": 1234, "p95_latency_ms": 4567},
//!   "rows": [{"label": "claude-sonnet-4-5", "requests": 10, ...the same fields}]
//! }
//! ```
//!
//! `by`, `key` and `account` are `null` when not given; without `--by`, `rows` is `[]`. For an
//! empty period `requests` is 0 and both latencies are `null`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use serde::Serialize;

use super::{open_db, table};
use crate::cli::{StatsArgs, StatsBy};
use crate::db;
use crate::db::stats::{self, Aggregate, Filter, Group, GroupBy, Summary};

pub fn run(database: &Path, args: StatsArgs) -> anyhow::Result<ExitCode> {
    let now = db::now();
    let since = parse_since(&args.since, now).context("invalid --since")?;
    let by = args.by.map(group_by);
    let pool = open_db(database)?;
    let mut conn = pool.get()?;
    if let Some(name) = &args.key {
        if !stats::key_name_known(&mut conn, name).context("cannot show stats")? {
            bail!("cannot show stats: no key named {name:?}");
        }
    }
    if let Some(name) = &args.account {
        if !stats::account_name_known(&mut conn, name).context("cannot show stats")? {
            bail!("cannot show stats: no account named {name:?}");
        }
    }
    let filter = Filter {
        since,
        until: None,
        key_name: args.key.clone(),
        account_name: args.account.clone(),
    };
    let summary = stats::summarize(&mut conn, &filter, by).context("cannot show stats")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = Report {
            since: table::rfc3339(Some(since)),
            by,
            key: args.key.as_deref(),
            account: args.account.as_deref(),
            totals: &summary.totals,
            rows: &summary.rows,
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let scope = scope(since, &args);
    if summary.totals.requests == 0 {
        writeln!(out, "No requests since {scope}.")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "Usage since {scope}")?;
    writeln!(out, "{}", totals_table(&summary.totals))?;
    if let Some(by) = by {
        writeln!(out, "{}", breakdown_table(by, &summary))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--json` object (see the module doc); a struct so the fields keep this order.
#[derive(Serialize)]
struct Report<'a> {
    since: serde_json::Value,
    by: Option<GroupBy>,
    key: Option<&'a str>,
    account: Option<&'a str>,
    totals: &'a Aggregate,
    rows: &'a [Group],
}

fn group_by(by: StatsBy) -> GroupBy {
    match by {
        StatsBy::Key => GroupBy::Key,
        StatsBy::Account => GroupBy::Account,
        StatsBy::Model => GroupBy::Model,
        StatsBy::Day => GroupBy::Day,
        StatsBy::Hour => GroupBy::Hour,
        StatsBy::Status => GroupBy::Status,
    }
}

/// "2026-11-25 10:00 UTC (key ci, account one)".
fn scope(since: i64, args: &StatsArgs) -> String {
    let filters: Vec<String> = [("key", &args.key), ("account", &args.account)]
        .into_iter()
        .filter_map(|(what, name)| name.as_ref().map(|n| format!("{what} {n}")))
        .collect();
    if filters.is_empty() {
        table::date(since)
    } else {
        format!("{} ({})", table::date(since), filters.join(", "))
    }
}

const FIGURES: [&str; 6] = [
    "Requests",
    "Errors",
    "Input tokens",
    "Output tokens",
    "Avg latency",
    "p95 latency",
];

fn figures(a: &Aggregate) -> [String; 6] {
    [
        table::thousands(a.requests),
        table::thousands(a.errors),
        table::thousands(a.input_tokens),
        table::thousands(a.output_tokens),
        table::millis(a.avg_latency_ms),
        table::millis(a.p95_latency_ms),
    ]
}

fn totals_table(totals: &Aggregate) -> comfy_table::Table {
    let mut t = table::new(&FIGURES);
    t.add_row(figures(totals).to_vec());
    table::align_right(&mut t, 0..FIGURES.len());
    t
}

fn breakdown_table(by: GroupBy, summary: &Summary) -> comfy_table::Table {
    let label = match by {
        GroupBy::Key => "Key",
        GroupBy::Account => "Account",
        GroupBy::Model => "Model",
        GroupBy::Day => "Day (UTC)",
        GroupBy::Hour => "Hour (UTC)",
        GroupBy::Status => "Status",
    };
    let mut header = vec![label];
    header.extend(FIGURES);
    let mut t = table::new(&header);
    for g in &summary.rows {
        let mut row = vec![g.label.clone()];
        row.extend(figures(&g.stats));
        t.add_row(row);
    }
    table::align_right(&mut t, 1..header.len());
    t
}

/// `24h`, `7d`, `90m` (back from now), `2026-11-01` (midnight UTC), or an RFC 3339 time.
fn parse_since(text: &str, now: i64) -> anyhow::Result<i64> {
    let text = text.trim();
    let at = if let Ok(d) = humantime::parse_duration(text) {
        i64::try_from(d.as_secs())
            .ok()
            .and_then(|secs| now.checked_sub(secs))
            .ok_or_else(|| anyhow!("{text:?} is too long ago"))?
    } else if let Some(t) = table::parse_point_in_time(text) {
        t
    } else {
        bail!("{text:?} is neither a duration (24h, 7d, 90m) nor a date (2026-11-01)");
    };
    if at > now {
        bail!("{text:?} is in the future");
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_forms() {
        let now = 1_795_600_800; // 2026-11-25 10:00:00 UTC
        assert_eq!(parse_since("24h", now).unwrap(), now - 86_400);
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 86_400);
        assert_eq!(parse_since("90m", now).unwrap(), now - 5400);
        assert_eq!(parse_since(" 2d ", now).unwrap(), now - 2 * 86_400);
        assert_eq!(parse_since("2026-11-01", now).unwrap(), 1_793_491_200);
        assert_eq!(
            parse_since("2026-11-01T12:00:00Z", now).unwrap(),
            1_793_491_200 + 12 * 3600
        );
        assert_eq!(
            parse_since("2026-11-01T12:00:00+02:00", now).unwrap(),
            1_793_491_200 + 10 * 3600
        );
        assert_eq!(
            parse_since("2027-01-01", now).unwrap_err().to_string(),
            "\"2027-01-01\" is in the future"
        );
        assert_eq!(
            parse_since("yesterday", now).unwrap_err().to_string(),
            "\"yesterday\" is neither a duration (24h, 7d, 90m) nor a date (2026-11-01)"
        );
    }
}
