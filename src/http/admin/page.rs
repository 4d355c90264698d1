//! The monitoring page's HTML: pure functions from plain view structs to a string, one
//! stylesheet embedded in the binary (its SHA-256 goes into the Content-Security-Policy), charts
//! from [`super::svg`], and [`escape`] around every value that came from a user or the
//! upstream. The view structs hold no credential fields, so no secret can reach the page.
//!
//! HTML is assembled with `format!` and escaped by hand: five characters to replace do not
//! justify a template engine for two pages.

use std::fmt::Write;
use std::sync::LazyLock;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::svg;
use crate::cmd::table::{date, relative, thousands};
use crate::db::stats::{Aggregate, Bucket, ErrorClasses, Failure, NO_ACCOUNT};

/// The page's one stylesheet, inlined in `<style>`.
const CSS: &str = include_str!("style.css");

/// `sha256-…` of [`CSS`], for `style-src` in the Content-Security-Policy.
pub static STYLE_HASH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes()))
    )
});

/// Seconds between the dashboard's reloads.
pub const REFRESH_SECS: u32 = 30;

/// `s` with `& < > " '` replaced, safe in element content and in quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One account as the page shows it: no credential field exists here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    pub name: String,
    pub enabled: bool,
    /// `active`, `cooling`, `quota`, `disabled`, `suspended` or `off` (as on `/metrics`).
    pub state: &'static str,
    pub reason: Option<String>,
    pub until: Option<i64>,
    pub last_used: Option<i64>,
    /// When the access token expires (the time only).
    pub token_expires: Option<i64>,
}

/// One key name with its usage. Figures are per key name, like `amq2api stats --by key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    pub name: String,
    /// The non-secret display prefix, e.g. `sk-amq-AbCdE`.
    pub prefix: Option<String>,
    pub admin: bool,
    /// `active`, `expired`, `revoked`, or `deleted` for requests whose key row is gone.
    pub state: &'static str,
    pub created: Option<i64>,
    pub last_used: Option<i64>,
    pub day: Aggregate,
    pub month: Aggregate,
}

/// Everything the dashboard shows, read in one go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    pub now: i64,
    /// The name of the admin key that is signed in.
    pub viewer: String,
    pub accounts: Vec<AccountView>,
    pub keys: Vec<KeyView>,
    /// Totals over the last 24 hours.
    pub day: Aggregate,
    /// Tokens per hour over the last 24 hours, oldest first.
    pub hours: Vec<svg::Point>,
    /// Tokens per day over the last 30 days, oldest first.
    pub days: Vec<svg::Point>,
    /// The last 24 hours' errors by class.
    pub errors: ErrorClasses,
    /// The most recent failures, newest first.
    pub failures: Vec<Failure>,
}

fn head(title: &str, refresh: bool) -> String {
    let refresh = if refresh {
        format!(r#"<meta http-equiv="refresh" content="{REFRESH_SECS}">"#)
    } else {
        String::new()
    };
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">{refresh}<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,"><title>{title}</title><style>{CSS}</style></head>"#,
        title = escape(title),
    )
}

/// The sign-in form, with `message` (already plain text, escaped here) above it.
pub fn login(message: Option<&str>) -> String {
    let alert = message
        .map(|m| format!(r#"<p class="alert" role="alert">{}</p>"#, escape(m)))
        .unwrap_or_default();
    format!(
        r#"{head}<body><main class="login"><section><h1>amq2api monitoring</h1><p class="note">Sign in with an admin key, made with <code>amq2api keys create --admin</code>.</p>{alert}<form method="post" action="/admin/login"><label for="key">Admin key</label><input id="key" name="key" type="password" autocomplete="current-password" spellcheck="false" required autofocus><button type="submit">Sign in</button></form></section></main></body></html>"#,
        head = head("Sign in · amq2api", false),
    )
}

/// A small page for a status that is not the dashboard (404, 500).
pub fn message(title: &str, text: &str) -> String {
    format!(
        r#"{head}<body><main class="login"><section><h1>{t}</h1><p>{text}</p><p><a href="/admin/dashboard">Back to the dashboard</a></p></section></main></body></html>"#,
        head = head(title, false),
        t = escape(title),
        text = escape(text),
    )
}

fn tile(out: &mut String, label: &str, value: &str, sub: &str) {
    let _ = write!(
        out,
        r#"<div class="tile"><div class="label">{label}</div><div class="value">{value}</div><div class="sub">{sub}</div></div>"#
    );
}

/// "2.5 %" of `part` in `whole`, "0 %" for nothing.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 || part == 0 {
        return "0 %".into();
    }
    let tenths = (part * 1000 + whole / 2) / whole;
    format!("{}.{} %", tenths / 10, tenths % 10)
}

/// "1 error", "3 errors".
fn count(n: u64, noun: &str) -> String {
    format!("{} {noun}{}", thousands(n), if n == 1 { "" } else { "s" })
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{} ms", thousands(v)))
}

fn badge(state: &str) -> String {
    let state = escape(state);
    format!(r#"<span class="badge b-{state}">{state}</span>"#)
}

/// A moment as "2026-11-26 14:05" with "(3 h ago)"-style context, or `none`.
fn when(ts: Option<i64>, now: i64, none: &str) -> String {
    match ts {
        None => format!(r#"<span class="muted">{none}</span>"#),
        Some(t) => format!(
            r#"{} <span class="muted">({})</span>"#,
            date(t).trim_end_matches(" UTC"),
            relative(t, now)
        ),
    }
}

fn section_start(out: &mut String, id: &str, title: &str, note: &str) {
    let _ = write!(
        out,
        r#"<section id="{id}"><h2>{title}</h2><p class="note">{note}</p>"#
    );
}

fn accounts(out: &mut String, d: &Dashboard) {
    section_start(
        out,
        "accounts",
        "Accounts",
        "The Amazon Q account pool and each account's health. Manage it with <code>amq2api accounts</code>.",
    );
    if d.accounts.is_empty() {
        out.push_str(r#"<p class="empty">No accounts yet: import some with <code>amq2api accounts import FILE</code>.</p></section>"#);
        return;
    }
    out.push_str(r#"<div class="scroll"><table><thead><tr><th>Name</th><th>Enabled</th><th>Health</th><th>Reason</th><th>Until</th><th>Last used</th><th>Token expires</th></tr></thead><tbody>"#);
    for a in &d.accounts {
        let until = match a.until.filter(|t| *t > d.now) {
            Some(t) => when(Some(t), d.now, ""),
            None => r#"<span class="muted">-</span>"#.into(),
        };
        let expires = match a.token_expires {
            None => r#"<span class="muted">no token</span>"#.to_owned(),
            Some(t) if t <= d.now => r#"<span class="muted">expired</span>"#.to_owned(),
            Some(t) => relative(t, d.now),
        };
        let _ = write!(
            out,
            r#"<tr data-account="{name}"><td>{name}</td><td>{enabled}</td><td>{health}</td><td class="wrap">{reason}</td><td>{until}</td><td>{last}</td><td>{expires}</td></tr>"#,
            name = escape(&a.name),
            enabled = if a.enabled { "yes" } else { "no" },
            health = badge(a.state),
            reason = a
                .reason
                .as_deref()
                .map_or_else(|| r#"<span class="muted">-</span>"#.into(), escape),
            last = a.last_used.map_or_else(
                || r#"<span class="muted">never</span>"#.into(),
                |t| relative(t, d.now)
            ),
        );
    }
    out.push_str("</tbody></table></div></section>");
}

fn chart(
    out: &mut String,
    id: &str,
    title: &str,
    note: &str,
    points: &[svg::Point],
    bucket: Bucket,
) {
    let (input, output) = points
        .iter()
        .fold((0u64, 0u64), |(i, o), p| (i + p.1, o + p.2));
    section_start(out, id, title, note);
    out.push_str(&svg::token_chart(
        &format!("{id}-svg"),
        title,
        points,
        bucket,
    ));
    let _ = write!(
        out,
        r#"<p class="totals">Total: <b>{}</b> input, <b>{}</b> output tokens</p></section>"#,
        thousands(input),
        thousands(output)
    );
}

fn keys(out: &mut String, d: &Dashboard) {
    section_start(
        out,
        "keys",
        "API keys",
        "Requests and tokens per key name (a revoked key's requests count under its name, as in <code>amq2api stats --by key</code>). Manage keys with <code>amq2api keys</code>.",
    );
    if d.keys.is_empty() {
        out.push_str(r#"<p class="empty">No keys.</p></section>"#);
        return;
    }
    out.push_str(r#"<div class="scroll"><table><thead><tr><th>Name</th><th>Key</th><th>Admin</th><th>State</th><th>Created</th><th>Last used</th><th class="num">Requests 24 h</th><th class="num">Errors 24 h</th><th class="num">Tokens 24 h</th><th class="num">Requests 30 d</th><th class="num">Tokens 30 d</th></tr></thead><tbody>"#);
    for k in &d.keys {
        let _ = write!(
            out,
            r#"<tr data-key="{name}"><td>{name}</td><td>{prefix}</td><td>{admin}</td><td>{state}</td><td>{created}</td><td>{last}</td><td class="num">{r1}</td><td class="num">{e1}</td><td class="num">{t1}</td><td class="num">{r30}</td><td class="num">{t30}</td></tr>"#,
            name = escape(&k.name),
            prefix = k.prefix.as_deref().map_or_else(
                || r#"<span class="muted">-</span>"#.into(),
                |p| format!("<code>{}…</code>", escape(p))
            ),
            admin = if k.admin { "yes" } else { "no" },
            state = badge(k.state),
            created = k.created.map_or_else(
                || r#"<span class="muted">-</span>"#.into(),
                |t| date(t)[..10].to_owned()
            ),
            last = k.last_used.map_or_else(
                || r#"<span class="muted">never</span>"#.into(),
                |t| relative(t, d.now)
            ),
            r1 = thousands(k.day.requests),
            e1 = thousands(k.day.errors),
            t1 = thousands(k.day.input_tokens + k.day.output_tokens),
            r30 = thousands(k.month.requests),
            t30 = thousands(k.month.input_tokens + k.month.output_tokens),
        );
    }
    out.push_str("</tbody></table></div></section>");
}

fn errors(out: &mut String, d: &Dashboard) {
    let e = &d.errors;
    let note = format!(
        "Last 24 hours: {}, {} ({}). A stream the client left early counts as an error.",
        count(e.requests, "request"),
        count(e.errors, "error"),
        percent(e.errors, e.requests)
    );
    section_start(out, "errors", "Requests and errors", &note);
    if e.classes.is_empty() {
        out.push_str(r#"<p class="empty">No errors in the last 24 hours.</p></section>"#);
        return;
    }
    out.push_str(r#"<div class="scroll"><table class="fit"><thead><tr><th>Error class</th><th class="num">Requests</th><th class="num">Share of errors</th></tr></thead><tbody>"#);
    for (class, n) in &e.classes {
        let _ = write!(
            out,
            r#"<tr data-class="{c}"><td><code>{c}</code></td><td class="num">{n}</td><td class="num">{share}</td></tr>"#,
            c = escape(class),
            n = thousands(*n),
            share = percent(*n, e.errors),
        );
    }
    out.push_str("</tbody></table></div></section>");
}

fn failures(out: &mut String, d: &Dashboard) {
    section_start(
        out,
        "failures",
        "Recent failures",
        "The latest failed requests, newest first (times in UTC).",
    );
    if d.failures.is_empty() {
        out.push_str(r#"<p class="empty">No failed requests.</p></section>"#);
        return;
    }
    out.push_str(r#"<div class="scroll"><table><thead><tr><th>Time</th><th>Key</th><th>Account</th><th>Model</th><th class="num">Status</th><th>Class</th><th class="num">Latency</th></tr></thead><tbody>"#);
    for f in &d.failures {
        let time = chrono::DateTime::from_timestamp(f.created_at, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<tr><td>{time} <span class="muted">({ago})</span></td><td>{key}</td><td>{account}</td><td>{model}</td><td class="num">{status}</td><td>{class}</td><td class="num">{latency}</td></tr>"#,
            ago = relative(f.created_at, d.now),
            key = escape(&f.key_name),
            account = f.account_name.as_deref().map_or_else(
                || format!(r#"<span class="muted">{NO_ACCOUNT}</span>"#),
                escape
            ),
            model = escape(&f.model),
            status = f.status,
            class = f.error_class.as_deref().map_or_else(
                || r#"<span class="muted">-</span>"#.into(),
                |c| format!("<code>{}</code>", escape(c))
            ),
            latency = ms(u64::try_from(f.latency_ms).ok()),
        );
    }
    out.push_str("</tbody></table></div></section>");
}

/// The whole dashboard.
pub fn dashboard(d: &Dashboard) -> String {
    let mut out = head("amq2api monitoring", true);
    let _ = write!(
        out,
        r#"<body><header class="top"><div class="wrap"><h1>amq2api monitoring</h1><span class="meta">{updated} · refreshes every {REFRESH_SECS} s · signed in as {viewer}</span><form method="post" action="/admin/logout"><button type="submit">Sign out</button></form></div></header><main class="wrap">"#,
        updated = date(d.now),
        viewer = escape(&d.viewer),
    );
    out.push_str(r#"<div class="tiles" id="summary">"#);
    let t = &d.day;
    tile(
        &mut out,
        "Requests, 24 h",
        &thousands(t.requests),
        &format!(
            "{} ({})",
            count(t.errors, "error"),
            percent(t.errors, t.requests)
        ),
    );
    tile(
        &mut out,
        "Input tokens, 24 h",
        &thousands(t.input_tokens),
        "",
    );
    tile(
        &mut out,
        "Output tokens, 24 h",
        &thousands(t.output_tokens),
        "",
    );
    tile(
        &mut out,
        "Latency, 24 h",
        &ms(t.avg_latency_ms),
        &format!("average · p95 {}", ms(t.p95_latency_ms)),
    );
    let usable = d.accounts.iter().filter(|a| a.state == "active").count();
    tile(
        &mut out,
        "Accounts",
        &format!("{usable} / {}", d.accounts.len()),
        "active / all",
    );
    out.push_str("</div>");
    accounts(&mut out, d);
    out.push_str(r#"<div class="charts">"#);
    chart(
        &mut out,
        "tokens-24h",
        "Tokens per hour, last 24 hours",
        "UTC hours; each bar's tooltip gives its exact figures.",
        &d.hours,
        Bucket::Hour,
    );
    chart(
        &mut out,
        "tokens-30d",
        "Tokens per day, last 30 days",
        "UTC days; each bar's tooltip gives its exact figures.",
        &d.days,
        Bucket::Day,
    );
    out.push_str("</div>");
    keys(&mut out, d);
    errors(&mut out, d);
    failures(&mut out, d);
    out.push_str("</main></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape("it's a & b"), "it&#39;s a &amp; b");
        assert_eq!(escape("' onmouseover='x"), "&#39; onmouseover=&#39;x");
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(0, 0), "0 %");
        assert_eq!(percent(1, 3), "33.3 %");
        assert_eq!(percent(2, 3), "66.7 %");
        assert_eq!(percent(5, 5), "100.0 %");
    }

    const EVIL: &str = r#"<script>alert('x')</script>""#;

    fn sample() -> Dashboard {
        let agg = |requests, errors| Aggregate {
            requests,
            errors,
            input_tokens: 1_200,
            output_tokens: 34,
            avg_latency_ms: Some(1_500),
            p95_latency_ms: Some(2_000),
        };
        Dashboard {
            now: 1_795_600_800,
            viewer: EVIL.into(),
            accounts: vec![AccountView {
                name: EVIL.into(),
                enabled: true,
                state: "cooling",
                reason: Some(EVIL.into()),
                until: Some(1_795_600_800 + 600),
                last_used: None,
                token_expires: Some(1_795_600_800 + 3000),
            }],
            keys: vec![KeyView {
                name: EVIL.into(),
                prefix: Some("sk-amq-AbCdE".into()),
                admin: true,
                state: "active",
                created: Some(1_795_000_000),
                last_used: Some(1_795_600_000),
                day: agg(12_345, 2),
                month: agg(99_999, 3),
            }],
            day: agg(12_345, 2),
            hours: vec![(1_795_600_800, 1_200, 34)],
            days: vec![(1_795_564_800, 1_200, 34)],
            errors: ErrorClasses {
                requests: 12_345,
                errors: 2,
                classes: vec![(EVIL.into(), 2)],
            },
            failures: vec![Failure {
                created_at: 1_795_600_700,
                key_name: EVIL.into(),
                account_name: Some(EVIL.into()),
                model: EVIL.into(),
                status: 429,
                error_class: Some(EVIL.into()),
                latency_ms: 1_234,
            }],
        }
    }

    #[test]
    fn every_user_value_is_escaped() {
        let html = dashboard(&sample());
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert('x')"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;"));
        let login = login(Some(EVIL));
        assert!(!login.contains("<script"));
    }

    #[test]
    fn the_dashboard_shows_figures_with_separators() {
        let html = dashboard(&sample());
        assert!(html.contains(r#"<meta http-equiv="refresh" content="30">"#));
        assert!(html.contains(r#"<div class="value">12,345</div>"#));
        assert!(html.contains("2 errors (0.0 %)"));
        assert!(html.contains(r#"<td class="num">99,999</td>"#));
        assert!(html.contains(r#"<span class="badge b-cooling">cooling</span>"#));
        assert!(html.contains("<code>sk-amq-AbCdE…</code>"));
        assert!(html.contains(r#"<td class="num">1,234 ms</td>"#));
        assert!(html.contains(r#"id="tokens-24h-svg""#) && html.contains(r#"id="tokens-30d-svg""#));
        assert!(html.contains("Total: <b>1,200</b> input, <b>34</b> output tokens"));
    }

    #[test]
    fn the_style_hash_is_of_the_inlined_stylesheet() {
        let html = login(None);
        let css = html
            .split("<style>")
            .nth(1)
            .and_then(|s| s.split("</style>").next())
            .unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css));
        assert_eq!(*STYLE_HASH, format!("'sha256-{hash}'"));
    }
}
