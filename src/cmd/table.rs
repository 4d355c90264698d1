//! The one look of every table the CLI prints, and how times are shown in them.

use comfy_table::{
    modifiers::UTF8_ROUND_CORNERS, presets::UTF8_FULL_CONDENSED, CellAlignment, ContentArrangement,
    Table,
};

/// A table with the given header row, in the style every command shares.
pub fn new(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .apply_modifier(UTF8_ROUND_CORNERS)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

/// Right-aligns the given columns (numbers), header included.
pub fn align_right(table: &mut Table, columns: impl IntoIterator<Item = usize>) {
    for i in columns {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// A count with thousands separators: "12,345".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in milliseconds, "1,234 ms", or "-" when there is none.
pub fn millis(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| format!("{} ms", thousands(ms)))
}

/// What every `list` command prints: pretty JSON with `--json`, else `empty` when there is
/// nothing to list, else the table built by `table`.
pub fn print_list(
    json: bool,
    items: impl FnOnce() -> Vec<serde_json::Value>,
    empty: &str,
    table: impl FnOnce() -> Table,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &items())?;
        writeln!(out)
    } else {
        let table = table();
        if table.row_count() == 0 {
            writeln!(out, "{empty}")
        } else {
            writeln!(out, "{table}")
        }
    }
}

/// "in 42 min", "3 h ago", "just now": how far `ts` is from `now` (minutes up to 90, then hours,
/// then days past two days).
pub fn relative(ts: i64, now: i64) -> String {
    let delta = ts - now;
    let abs = delta.unsigned_abs();
    if abs < 60 {
        return "just now".into();
    }
    let amount = if abs < 5400 {
        format!("{} min", abs / 60)
    } else if abs < 86_400 * 2 {
        format!("{} h", abs / 3600)
    } else {
        format!("{} d", abs / 86_400)
    };
    if delta > 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// "in 42 min", or "expired" once `ts` has passed.
pub fn expiry(ts: Option<i64>, now: i64) -> String {
    match ts {
        None => "-".into(),
        Some(t) if t <= now => "expired".into(),
        Some(t) => relative(t, now),
    }
}

/// A past moment ("3 h ago") or "never".
pub fn last(ts: Option<i64>, now: i64) -> String {
    ts.map_or_else(|| "never".into(), |t| relative(t, now))
}

/// UTC date and time, "2026-11-26 14:05 UTC".
/// A point in time given on the command line as an RFC 3339 time or a `YYYY-MM-DD` date
/// (midnight UTC), in unix seconds; `None` for anything else (callers also accept durations).
pub fn parse_point_in_time(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| {
            d.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp())
                .unwrap_or_default()
        })
}

pub fn date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ts.to_string())
}

/// RFC 3339 for `--json` output.
pub fn rfc3339(ts: Option<i64>) -> serde_json::Value {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(relative(1000, 1000), "just now");
        assert_eq!(relative(1000 + 42 * 60 + 5, 1000), "in 42 min");
        assert_eq!(relative(1000, 1000 + 3 * 3600), "3 h ago");
        assert_eq!(relative(1000 + 5 * 86_400, 1000), "in 5 d");
        assert_eq!(expiry(Some(10), 10), "expired");
        assert_eq!(expiry(None, 10), "-");
        assert_eq!(last(None, 10), "never");
        assert_eq!(date(1_764_165_900), "2025-11-26 14:05 UTC");
        assert_eq!(rfc3339(Some(0)), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345), "12,345");
        assert_eq!(thousands(123_456), "123,456");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(millis(Some(1234)), "1,234 ms");
        assert_eq!(millis(Some(7)), "7 ms");
        assert_eq!(millis(None), "-");
    }
}
