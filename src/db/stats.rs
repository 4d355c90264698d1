//! Aggregates over the `usage_log` table for `amq2api stats` and the monitoring page: totals and
//! breakdowns with average and p95 latency, token series per hour or day, error classes, and the
//! latest failures. Plain functions over a connection; every figure is computed in SQLite.
//!
//! Definitions used everywhere here:
//! - an **error** is a row whose `error_class` is set or whose `status` is 400 or more
//!   ([`ERROR_CONDITION`]); a stream the client left early (`client_disconnected`, status 200)
//!   is therefore an error;
//! - latency figures cover every request of the group, failures included; **p95** is the
//!   nearest-rank percentile (the latency at rank ⌈0.95 × n⌉ in ascending order, so it is
//!   always a latency that was measured);
//! - tokens are summed as recorded, failures included;
//! - days and hours are UTC.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::Sqlite;
use serde::Serialize;

/// The one definition of a failed request, as SQL over `usage_log u`.
pub const ERROR_CONDITION: &str = "(u.error_class IS NOT NULL OR u.status >= 400)";

/// Which rows to aggregate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// First second included (Unix seconds).
    pub since: i64,
    /// First second excluded; `None` has no upper bound.
    pub until: Option<i64>,
    /// Only requests made with a key of this name (live, expired or revoked).
    pub key_name: Option<String>,
    /// Only requests served by an account of this name (the row's snapshot of the name, so the
    /// history of a removed account is still found).
    pub account_name: Option<String>,
}

/// What a breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The key's name; `(deleted)` when the row has no key any more.
    Key,
    /// The account's name when the request was served; `(none)` when no account took it.
    Account,
    /// The model name the client asked for.
    Model,
    /// `YYYY-MM-DD` (UTC).
    Day,
    /// `YYYY-MM-DD HH:00` (UTC).
    Hour,
    /// The HTTP status, followed by the error class when there is one: `200`,
    /// `200 client_disconnected`, `429 throttled`.
    Status,
}

/// The group label of a row with no key (its key was deleted).
pub const DELETED_KEY: &str = "(deleted)";
/// The group label of a row no account served (rejected before an account was picked).
pub const NO_ACCOUNT: &str = "(none)";

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Key => "key",
            GroupBy::Account => "account",
            GroupBy::Model => "model",
            GroupBy::Day => "day",
            GroupBy::Hour => "hour",
            GroupBy::Status => "status",
        }
    }

    /// Time groups sort chronologically; the others by requests, most first.
    pub fn is_time(self) -> bool {
        matches!(self, GroupBy::Day | GroupBy::Hour)
    }

    /// The label as SQL over `usage_log u LEFT JOIN api_keys k`. Fixed text only: nothing from
    /// the caller is ever put into the SQL.
    fn label_sql(self) -> &'static str {
        match self {
            GroupBy::Key => "COALESCE(k.name, '(deleted)')",
            GroupBy::Account => "COALESCE(u.account_name, '(none)')",
            GroupBy::Model => "u.model_requested",
            GroupBy::Day => "strftime('%Y-%m-%d', u.created_at, 'unixepoch')",
            GroupBy::Hour => "strftime('%Y-%m-%d %H:00', u.created_at, 'unixepoch')",
            GroupBy::Status => "CAST(u.status AS TEXT) || COALESCE(' ' || u.error_class, '')",
        }
    }
}

/// The figures of a set of requests. Averages and percentiles are `None` for an empty set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Aggregate {
    pub requests: u64,
    /// Requests matching [`ERROR_CONDITION`].
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Mean latency, rounded to the nearest millisecond.
    pub avg_latency_ms: Option<u64>,
    /// Nearest-rank 95th percentile latency.
    pub p95_latency_ms: Option<u64>,
}

/// One row of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub label: String,
    #[serde(flatten)]
    pub stats: Aggregate,
}

/// Totals over the filtered rows, and the breakdown when one was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub totals: Aggregate,
    /// Sorted: day and hour groups oldest first; the others by requests (most first), then
    /// label. Empty without a breakdown.
    pub rows: Vec<Group>,
}

#[derive(QueryableByName)]
struct GroupRow {
    #[diesel(sql_type = Text)]
    label: String,
    #[diesel(sql_type = BigInt)]
    requests: i64,
    #[diesel(sql_type = BigInt)]
    errors: i64,
    #[diesel(sql_type = BigInt)]
    input_tokens: i64,
    #[diesel(sql_type = BigInt)]
    output_tokens: i64,
    #[diesel(sql_type = BigInt)]
    latency_sum: i64,
    #[diesel(sql_type = BigInt)]
    p95: i64,
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl GroupRow {
    fn into_group(self) -> Group {
        let requests = unsigned(self.requests);
        let avg = (requests > 0).then(|| (unsigned(self.latency_sum) + requests / 2) / requests);
        Group {
            label: self.label,
            stats: Aggregate {
                requests,
                errors: unsigned(self.errors),
                input_tokens: unsigned(self.input_tokens),
                output_tokens: unsigned(self.output_tokens),
                avg_latency_ms: avg,
                p95_latency_ms: (requests > 0).then(|| unsigned(self.p95)),
            },
        }
    }
}

/// `WHERE` over `usage_log u` for `filter`, with `?` placeholders bound by [`bind_filter`].
fn filter_sql(filter: &Filter) -> String {
    let mut sql = String::from("u.created_at >= ?");
    if filter.until.is_some() {
        sql.push_str(" AND u.created_at < ?");
    }
    if filter.key_name.is_some() {
        sql.push_str(" AND u.api_key_id IN (SELECT id FROM api_keys WHERE name = ?)");
    }
    if filter.account_name.is_some() {
        sql.push_str(" AND u.account_name = ?");
    }
    sql
}

fn bind_filter<'f, Q>(
    query: diesel::query_builder::BoxedSqlQuery<'f, Sqlite, Q>,
    filter: &Filter,
) -> diesel::query_builder::BoxedSqlQuery<'f, Sqlite, Q> {
    let mut query = query.bind::<BigInt, _>(filter.since);
    if let Some(until) = filter.until {
        query = query.bind::<BigInt, _>(until);
    }
    if let Some(name) = &filter.key_name {
        query = query.bind::<Text, _>(name.clone());
    }
    if let Some(name) = &filter.account_name {
        query = query.bind::<Text, _>(name.clone());
    }
    query
}

/// One aggregate per distinct value of `label` (a fixed SQL expression) over the filtered rows.
fn grouped(
    conn: &mut SqliteConnection,
    filter: &Filter,
    label: &'static str,
) -> QueryResult<Vec<Group>> {
    // p95 by nearest rank: row number ⌈0.95 n⌉ = (95 n + 99) / 100 in integer arithmetic.
    let sql = format!(
        "WITH f AS (
            SELECT {label} AS label, u.latency_ms AS latency_ms, u.input_tokens AS input_tokens,
                   u.output_tokens AS output_tokens, CASE WHEN {ERROR_CONDITION} THEN 1 ELSE 0 END AS is_error
            FROM usage_log u LEFT JOIN api_keys k ON k.id = u.api_key_id
            WHERE {filter}
        ),
        ranked AS (
            SELECT label, latency_ms,
                   ROW_NUMBER() OVER (PARTITION BY label ORDER BY latency_ms) AS rn,
                   COUNT(*) OVER (PARTITION BY label) AS n
            FROM f
        )
        SELECT g.label AS label, g.requests AS requests, g.errors AS errors,
               g.input_tokens AS input_tokens, g.output_tokens AS output_tokens,
               g.latency_sum AS latency_sum, p.latency_ms AS p95
        FROM (SELECT label, COUNT(*) AS requests, SUM(is_error) AS errors,
                     SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
                     SUM(latency_ms) AS latency_sum
              FROM f GROUP BY label) g
        JOIN (SELECT label, latency_ms FROM ranked WHERE rn = (95 * n + 99) / 100) p
          ON p.label = g.label",
        filter = filter_sql(filter),
    );
    let query = bind_filter(diesel::sql_query(sql).into_boxed::<Sqlite>(), filter);
    let rows: Vec<GroupRow> = query.load(conn)?;
    Ok(rows.into_iter().map(GroupRow::into_group).collect())
}

/// Totals of the rows `filter` selects and, with `by`, one row per group (see [`Summary`]).
pub fn summarize(
    conn: &mut SqliteConnection,
    filter: &Filter,
    by: Option<GroupBy>,
) -> QueryResult<Summary> {
    // One read transaction: the totals and the rows see the same snapshot of the log.
    let (totals, mut rows) = conn.transaction(|conn| {
        let totals = grouped(conn, filter, "''")?
            .pop()
            .map(|g| g.stats)
            .unwrap_or_default();
        let rows = match by {
            Some(by) => grouped(conn, filter, by.label_sql())?,
            None => Vec::new(),
        };
        QueryResult::Ok((totals, rows))
    })?;
    if by.is_some_and(GroupBy::is_time) {
        rows.sort_by(|a, b| a.label.cmp(&b.label));
    } else {
        rows.sort_by(|a, b| {
            b.stats
                .requests
                .cmp(&a.stats.requests)
                .then_with(|| a.label.cmp(&b.label))
        });
    }
    Ok(Summary { totals, rows })
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Whether any key, live or not, has this name.
pub fn key_name_known(conn: &mut SqliteConnection, name: &str) -> QueryResult<bool> {
    let row: Number =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM api_keys WHERE name = ?) AS n")
            .bind::<Text, _>(name)
            .get_result(conn)?;
    Ok(row.n != 0)
}

/// Whether an account of this name exists, or ever served a request (its usage rows keep the
/// name after it is removed).
pub fn account_name_known(conn: &mut SqliteConnection, name: &str) -> QueryResult<bool> {
    let row: Number = diesel::sql_query(
        "SELECT (EXISTS (SELECT 1 FROM accounts WHERE name = ?1)
                 OR EXISTS (SELECT 1 FROM usage_log WHERE account_name = ?1)) AS n",
    )
    .bind::<Text, _>(name)
    .get_result(conn)?;
    Ok(row.n != 0)
}

/// The width of a [`token_series`] bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// A UTC clock hour.
    Hour,
    /// A UTC day.
    Day,
}

impl Bucket {
    pub fn seconds(self) -> i64 {
        match self {
            Bucket::Hour => 3600,
            Bucket::Day => 86_400,
        }
    }

    /// The start of the bucket holding `ts`.
    pub fn start(self, ts: i64) -> i64 {
        ts.div_euclid(self.seconds()) * self.seconds()
    }
}

#[derive(QueryableByName)]
struct TokenRow {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = BigInt)]
    input_tokens: i64,
    #[diesel(sql_type = BigInt)]
    output_tokens: i64,
}

/// Input and output tokens of the last `count` buckets, the last one holding `now`: one
/// `(bucket start in Unix seconds, input, output)` per bucket, oldest first, zeros where
/// nothing happened. Every row counts, failures included.
pub fn token_series(
    conn: &mut SqliteConnection,
    now: i64,
    bucket: Bucket,
    count: usize,
) -> QueryResult<Vec<(i64, u64, u64)>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let size = bucket.seconds();
    let end = bucket.start(now) + size;
    let first = end - size * count as i64;
    let rows: Vec<TokenRow> = diesel::sql_query(
        "SELECT (created_at - ?1) / ?3 AS bucket, SUM(input_tokens) AS input_tokens,
                SUM(output_tokens) AS output_tokens
         FROM usage_log WHERE created_at >= ?1 AND created_at < ?2
         GROUP BY 1",
    )
    .bind::<BigInt, _>(first)
    .bind::<BigInt, _>(end)
    .bind::<BigInt, _>(size)
    .load(conn)?;
    let mut series: Vec<(i64, u64, u64)> = (0..count as i64)
        .map(|i| (first + i * size, 0, 0))
        .collect();
    for row in rows {
        if let Some(slot) = usize::try_from(row.bucket)
            .ok()
            .and_then(|i| series.get_mut(i))
        {
            slot.1 = unsigned(row.input_tokens);
            slot.2 = unsigned(row.output_tokens);
        }
    }
    Ok(series)
}

/// Requests since a moment, and how the failed ones failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErrorClasses {
    pub requests: u64,
    /// Requests matching [`ERROR_CONDITION`]; the sum of `classes`.
    pub errors: u64,
    /// Error class and count, most frequent first (then by name). A failure recorded without
    /// a class is counted as `http_<status>`.
    pub classes: Vec<(String, u64)>,
}

#[derive(QueryableByName)]
struct ClassRow {
    #[diesel(sql_type = Text)]
    class: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Requests from `since` on, and their errors by class.
pub fn errors_by_class(conn: &mut SqliteConnection, since: i64) -> QueryResult<ErrorClasses> {
    let requests: Number =
        diesel::sql_query("SELECT COUNT(*) AS n FROM usage_log WHERE created_at >= ?")
            .bind::<BigInt, _>(since)
            .get_result(conn)?;
    let rows: Vec<ClassRow> = diesel::sql_query(format!(
        "SELECT COALESCE(u.error_class, 'http_' || u.status) AS class, COUNT(*) AS n
         FROM usage_log u WHERE u.created_at >= ? AND {ERROR_CONDITION}
         GROUP BY 1 ORDER BY n DESC, class ASC"
    ))
    .bind::<BigInt, _>(since)
    .load(conn)?;
    let classes: Vec<(String, u64)> = rows.into_iter().map(|r| (r.class, unsigned(r.n))).collect();
    Ok(ErrorClasses {
        requests: unsigned(requests.n),
        errors: classes.iter().map(|c| c.1).sum(),
        classes,
    })
}

/// One failed request, for the monitoring page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, QueryableByName)]
pub struct Failure {
    /// Unix seconds.
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
    /// The key's name, or [`DELETED_KEY`].
    #[diesel(sql_type = Text)]
    pub key_name: String,
    /// The account's name when the request was served; `None` if no account took it.
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub account_name: Option<String>,
    /// The model name the client asked for.
    #[diesel(sql_type = Text)]
    pub model: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub status: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub error_class: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub latency_ms: i64,
}

/// The `limit` most recent failed requests, newest first.
pub fn recent_failures(conn: &mut SqliteConnection, limit: u32) -> QueryResult<Vec<Failure>> {
    diesel::sql_query(format!(
        "SELECT u.created_at AS created_at, COALESCE(k.name, '(deleted)') AS key_name,
                u.account_name AS account_name, u.model_requested AS model, u.status AS status,
                u.error_class AS error_class, u.latency_ms AS latency_ms
         FROM usage_log u LEFT JOIN api_keys k ON k.id = u.api_key_id
         WHERE {ERROR_CONDITION}
         ORDER BY u.created_at DESC, u.id DESC
         LIMIT ?"
    ))
    .bind::<BigInt, _>(i64::from(limit))
    .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::api_keys::{self, NewApiKey};
    use crate::db::usage::{self, NewUsageRecord};

    /// 2026-11-25 10:00:00 UTC.
    const T0: i64 = 1_795_600_800;
    const H: i64 = 3600;
    const D: i64 = 86_400;

    struct Row {
        at: i64,
        key: Option<i32>,
        account: Option<&'static str>,
        model: &'static str,
        tokens: (i64, i64),
        status: i32,
        class: Option<&'static str>,
        latency: i64,
    }

    fn row(at: i64, key: Option<i32>, account: Option<&'static str>, model: &'static str) -> Row {
        Row {
            at,
            key,
            account,
            model,
            tokens: (10, 20),
            status: 200,
            class: None,
            latency: 100,
        }
    }

    fn db() -> (tempfile::TempDir, crate::db::Pool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("t.db")).unwrap();
        (dir, pool)
    }

    fn add_key(c: &mut SqliteConnection, name: &str, hash: &str) -> i32 {
        api_keys::insert(
            c,
            &NewApiKey {
                name,
                prefix: "sk-amq-xxxxx",
                key_hash: hash,
                is_admin: false,
                rpm_limit: None,
                concurrency_limit: None,
                expires_at: None,
                created_at: 0,
            },
        )
        .unwrap()
        .id
    }

    fn seed(c: &mut SqliteConnection, rows: &[Row]) {
        for r in rows {
            usage::insert(
                c,
                &NewUsageRecord {
                    created_at: r.at,
                    api_key_id: r.key,
                    account_id: None,
                    account_name: r.account.map(str::to_owned),
                    endpoint: "/v1/messages".into(),
                    model_requested: r.model.into(),
                    model_upstream: None,
                    stream: true,
                    input_tokens: r.tokens.0,
                    output_tokens: r.tokens.1,
                    status: r.status,
                    error_class: r.class.map(str::to_owned),
                    ttfb_ms: None,
                    latency_ms: r.latency,
                },
            )
            .unwrap();
        }
    }

    fn agg(requests: u64, errors: u64, tokens: (u64, u64), avg: u64, p95: u64) -> Aggregate {
        Aggregate {
            requests,
            errors,
            input_tokens: tokens.0,
            output_tokens: tokens.1,
            avg_latency_ms: Some(avg),
            p95_latency_ms: Some(p95),
        }
    }

    fn labels(s: &Summary) -> Vec<(&str, u64)> {
        s.rows
            .iter()
            .map(|g| (g.label.as_str(), g.stats.requests))
            .collect()
    }

    /// A fixed mix: keys ci (1) and ops (2) and a deleted one, accounts a and b and none, two
    /// models, successes and failures, over three hours and two days, one row before the window.
    fn mixed() -> (tempfile::TempDir, crate::db::Pool) {
        let (dir, pool) = db();
        let mut conn = pool.get().unwrap();
        let c = &mut *conn;
        let ci = add_key(c, "ci", "h1");
        let ops = add_key(c, "ops", "h2");
        seed(
            c,
            &[
                Row {
                    latency: 100,
                    ..row(T0 - 5 * 60, Some(ci), Some("a"), "sonnet")
                },
                Row {
                    latency: 300,
                    tokens: (1000, 2000),
                    ..row(T0 - 10 * 60, Some(ci), Some("a"), "sonnet")
                },
                Row {
                    latency: 200,
                    status: 200,
                    class: Some("client_disconnected"),
                    ..row(T0 - H - 60, Some(ops), Some("b"), "sonnet")
                },
                Row {
                    latency: 50,
                    status: 400,
                    class: Some("input_too_long"),
                    tokens: (500, 0),
                    ..row(T0 - 3 * H, Some(ops), Some("b"), "haiku")
                },
                Row {
                    latency: 7,
                    status: 503,
                    class: None,
                    tokens: (5, 0),
                    ..row(T0 - 3 * H + 30, None, None, "haiku")
                },
                Row {
                    latency: 1000,
                    ..row(T0 - 2 * D, Some(ci), Some("b"), "haiku")
                },
                Row {
                    latency: 9999,
                    ..row(T0 - 40 * D, Some(ci), Some("a"), "sonnet")
                },
            ],
        );
        drop(conn);
        (dir, pool)
    }

    #[test]
    fn totals_and_every_breakdown() {
        let (_dir, pool) = mixed();
        let c = &mut pool.get().unwrap();
        let day = Filter {
            since: T0 - D,
            ..Filter::default()
        };
        let s = summarize(c, &day, None).unwrap();
        // Latencies 7, 50, 100, 200, 300: mean 131.4, p95 rank ⌈4.75⌉ = 5.
        assert_eq!(s.totals, agg(5, 3, (1525, 2040), 131, 300));
        assert!(s.rows.is_empty());

        let s = summarize(c, &day, Some(GroupBy::Key)).unwrap();
        assert_eq!(labels(&s), [("ci", 2), ("ops", 2), ("(deleted)", 1)]);
        assert_eq!(s.rows[0].stats, agg(2, 0, (1010, 2020), 200, 300));
        assert_eq!(s.rows[1].stats, agg(2, 2, (510, 20), 125, 200));
        assert_eq!(s.rows[2].stats, agg(1, 1, (5, 0), 7, 7));

        let s = summarize(c, &day, Some(GroupBy::Account)).unwrap();
        assert_eq!(labels(&s), [("a", 2), ("b", 2), ("(none)", 1)]);

        let s = summarize(c, &day, Some(GroupBy::Model)).unwrap();
        assert_eq!(labels(&s), [("sonnet", 3), ("haiku", 2)]);
        assert_eq!(s.rows[0].stats, agg(3, 1, (1020, 2040), 200, 300));

        let s = summarize(c, &day, Some(GroupBy::Status)).unwrap();
        assert_eq!(
            labels(&s),
            [
                ("200", 2),
                ("200 client_disconnected", 1),
                ("400 input_too_long", 1),
                ("503", 1)
            ]
        );
        assert_eq!(s.rows[3].stats.errors, 1);

        let s = summarize(c, &day, Some(GroupBy::Hour)).unwrap();
        assert_eq!(
            labels(&s),
            [
                ("2026-11-25 07:00", 2),
                ("2026-11-25 08:00", 1),
                ("2026-11-25 09:00", 2)
            ]
        );

        let all = Filter::default();
        let s = summarize(c, &all, Some(GroupBy::Day)).unwrap();
        assert_eq!(
            labels(&s),
            [("2026-10-16", 1), ("2026-11-23", 1), ("2026-11-25", 5)]
        );
        // Seven latencies: rank ⌈6.65⌉ = 7, the largest.
        assert_eq!(s.totals.p95_latency_ms, Some(9999));
        assert_eq!(s.totals.requests, 7);
    }

    #[test]
    fn filters_and_the_empty_period() {
        let (_dir, pool) = mixed();
        let c = &mut pool.get().unwrap();
        let week = |key: Option<&str>, account: Option<&str>| Filter {
            since: T0 - 7 * D,
            until: None,
            key_name: key.map(str::to_owned),
            account_name: account.map(str::to_owned),
        };
        let s = summarize(c, &week(Some("ci"), None), Some(GroupBy::Account)).unwrap();
        assert_eq!(s.totals, agg(3, 0, (1020, 2040), 467, 1000));
        assert_eq!(labels(&s), [("a", 2), ("b", 1)]);
        let s = summarize(c, &week(Some("ci"), Some("b")), None).unwrap();
        assert_eq!(s.totals, agg(1, 0, (10, 20), 1000, 1000));
        let s = summarize(c, &week(None, Some("b")), Some(GroupBy::Key)).unwrap();
        assert_eq!(labels(&s), [("ops", 2), ("ci", 1)]);
        let until = Filter {
            until: Some(T0 - H),
            ..week(None, None)
        };
        assert_eq!(summarize(c, &until, None).unwrap().totals.requests, 4);

        let empty = Filter {
            since: T0 + 1,
            ..Filter::default()
        };
        let s = summarize(c, &empty, Some(GroupBy::Model)).unwrap();
        assert_eq!(s, Summary::default());
        assert_eq!(s.totals.avg_latency_ms, None);

        assert!(key_name_known(c, "ops").unwrap());
        assert!(!key_name_known(c, "ghost").unwrap());
        assert!(account_name_known(c, "b").unwrap());
        assert!(!account_name_known(c, "ghost").unwrap());
    }

    #[test]
    fn revoked_and_renamed_keys_group_by_name() {
        let (_dir, pool) = db();
        let c = &mut pool.get().unwrap();
        let old = add_key(c, "ci", "h1");
        api_keys::revoke(c, old, 1).unwrap();
        let new = add_key(c, "ci", "h2");
        seed(
            c,
            &[
                row(T0, Some(old), Some("a"), "m"),
                row(T0, Some(new), Some("a"), "m"),
            ],
        );
        let f = Filter {
            key_name: Some("ci".into()),
            ..Filter::default()
        };
        let s = summarize(c, &f, Some(GroupBy::Key)).unwrap();
        assert_eq!(labels(&s), [("ci", 2)]);
    }

    #[test]
    fn p95_is_nearest_rank() {
        let (_dir, pool) = db();
        let c = &mut pool.get().unwrap();
        // Latencies 1..=20 shuffled: rank ⌈19⌉ = 19; with a 21st, rank ⌈19.95⌉ = 20.
        let rows: Vec<Row> = (1..=20)
            .map(|i| Row {
                latency: (i * 7) % 20 + 1,
                ..row(T0, None, None, "m")
            })
            .collect();
        seed(c, &rows);
        let all = Filter::default();
        let t = summarize(c, &all, None).unwrap().totals;
        assert_eq!((t.avg_latency_ms, t.p95_latency_ms), (Some(11), Some(19)));
        seed(
            c,
            &[Row {
                latency: 1000,
                ..row(T0, None, None, "m")
            }],
        );
        assert_eq!(
            summarize(c, &all, None).unwrap().totals.p95_latency_ms,
            Some(20)
        );
    }

    #[test]
    fn token_series_fills_empty_buckets() {
        let (_dir, pool) = mixed();
        let c = &mut pool.get().unwrap();
        let now = T0 + 30 * 60;
        let hours = token_series(c, now, Bucket::Hour, 5).unwrap();
        assert_eq!(
            hours,
            [
                (T0 - 4 * H, 0, 0),
                (T0 - 3 * H, 505, 0),
                (T0 - 2 * H, 10, 20),
                (T0 - H, 1010, 2020),
                (T0, 0, 0),
            ]
        );
        let days = token_series(c, now, Bucket::Day, 3).unwrap();
        let today = Bucket::Day.start(T0);
        assert_eq!(
            days,
            [
                (today - 2 * D, 10, 20),
                (today - D, 0, 0),
                (today, 1525, 2040)
            ]
        );
        assert_eq!(token_series(c, now, Bucket::Day, 30).unwrap().len(), 30);
        assert!(token_series(c, now, Bucket::Hour, 0).unwrap().is_empty());
    }

    #[test]
    fn error_classes_and_recent_failures() {
        let (_dir, pool) = mixed();
        let c = &mut pool.get().unwrap();
        let e = errors_by_class(c, T0 - D).unwrap();
        assert_eq!(
            e,
            ErrorClasses {
                requests: 5,
                errors: 3,
                classes: vec![
                    ("client_disconnected".into(), 1),
                    ("http_503".into(), 1),
                    ("input_too_long".into(), 1),
                ],
            }
        );
        let f = recent_failures(c, 2).unwrap();
        assert_eq!(
            f,
            [
                Failure {
                    created_at: T0 - H - 60,
                    key_name: "ops".into(),
                    account_name: Some("b".into()),
                    model: "sonnet".into(),
                    status: 200,
                    error_class: Some("client_disconnected".into()),
                    latency_ms: 200,
                },
                Failure {
                    created_at: T0 - 3 * H + 30,
                    key_name: DELETED_KEY.into(),
                    account_name: None,
                    model: "haiku".into(),
                    status: 503,
                    error_class: None,
                    latency_ms: 7,
                },
            ]
        );
        assert_eq!(recent_failures(c, 10).unwrap().len(), 3);
    }
}
