//! The monitoring page's token charts as inline SVG, built as text on the server: stacked bars
//! (input below, output on top) with a y axis, time labels and a legend, scaled by `viewBox` so
//! they shrink with the screen. Every bar is a `<g class="bar">` whose `data-input`,
//! `data-output` and `<title>` carry the exact figures, for the tooltip and for tests.
//!
//! Written by hand: a chart of one shape needs a few dozen lines of `<rect>` and `<text>`, while
//! a plotting crate would bring a drawing backend and fonts for what the browser already does.

use std::fmt::Write;

use super::page::escape;
use crate::cmd::table::thousands;
use crate::db::stats::Bucket;

/// The `viewBox` size; the chart is drawn in these units and scaled by the browser.
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 240.0;
/// Room for the y labels, the legend above and the time labels below.
const LEFT: f64 = 56.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 30.0;
/// The share of a bucket's width a bar takes.
const BAR: f64 = 0.72;

/// One bucket of a chart: its start (Unix seconds, UTC) and its input and output tokens.
pub type Point = (i64, u64, u64);

/// A number as an SVG coordinate: at most one decimal, no trailing `.0`.
fn n(x: f64) -> String {
    let s = format!("{:.1}", x);
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// A short axis label: 950, 1.5k, 20k, 3M.
pub fn compact(v: u64) -> String {
    fn scaled(v: u64, unit: u64, suffix: &str) -> String {
        let tenths = (v * 10 + unit / 2) / unit;
        if tenths % 10 == 0 || tenths >= 100 {
            format!("{}{suffix}", (tenths + 5) / 10)
        } else {
            format!("{}.{}{suffix}", tenths / 10, tenths % 10)
        }
    }
    match v {
        0..1_000 => v.to_string(),
        1_000..1_000_000 => scaled(v, 1_000, "k"),
        1_000_000..1_000_000_000 => scaled(v, 1_000_000, "M"),
        _ => scaled(v / 1_000, 1_000_000, "B"),
    }
}

/// A round step for about four gridlines up to `max`: 1, 2 or 5 times a power of ten.
fn nice_step(max: u64) -> u64 {
    let raw = max.div_ceil(4).max(1);
    let mut magnitude = 1u64;
    while magnitude.saturating_mul(10) <= raw {
        magnitude *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(raw)
}

/// What a bucket is called: "14:00" for an hour, "11-25" for a day (axis); the full UTC start
/// for the tooltip.
fn bucket_label(start: i64, bucket: Bucket) -> (String, String) {
    let t = chrono::DateTime::from_timestamp(start, 0).unwrap_or_default();
    match bucket {
        Bucket::Hour => (
            t.format("%H:00").to_string(),
            t.format("%Y-%m-%d %H:00 UTC").to_string(),
        ),
        Bucket::Day => (
            t.format("%m-%d").to_string(),
            t.format("%Y-%m-%d (UTC)").to_string(),
        ),
    }
}

/// Whether the bucket at `index` of `count` gets a time label: hours on the clock every four
/// hours (00:00, 04:00, ...), days every fifth counting back from today.
fn labelled(start: i64, index: usize, count: usize, bucket: Bucket) -> bool {
    match bucket {
        Bucket::Hour => start.rem_euclid(86_400) / 3600 % 4 == 0,
        Bucket::Day => (count - 1 - index) % 5 == 0,
    }
}

/// A stacked bar chart of `points` (oldest first). `id` names the `<svg>` element; `label` is its
/// accessible title.
pub fn token_chart(id: &str, label: &str, points: &[Point], bucket: Bucket) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let base = TOP + plot_h;
    let max = points.iter().map(|p| p.1 + p.2).max().unwrap_or(0);
    let (step, top) = if max == 0 {
        (1, 1)
    } else {
        let step = nice_step(max);
        (step, max.div_ceil(step) * step)
    };
    let y = |v: u64| base - v as f64 / top as f64 * plot_h;
    let id = escape(id);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-title"><title id="{id}-title">{label}</title>"#,
        w = n(WIDTH),
        h = n(HEIGHT),
        label = escape(label),
    );
    // Legend, top right.
    let lx = WIDTH - RIGHT - 150.0;
    let _ = write!(
        s,
        r#"<g class="legend"><rect class="in" x="{x1}" y="8" width="12" height="12"/><text x="{t1}" y="18">input</text><rect class="out" x="{x2}" y="8" width="12" height="12"/><text x="{t2}" y="18">output</text></g>"#,
        x1 = n(lx),
        t1 = n(lx + 17.0),
        x2 = n(lx + 78.0),
        t2 = n(lx + 95.0),
    );
    let _ = write!(
        s,
        r#"<text class="unit" x="{x}" y="18">tokens</text>"#,
        x = n(LEFT)
    );
    // Gridlines and y labels.
    let mut tick = 0;
    if max > 0 {
        while tick <= top {
            let ty = y(tick);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{x1}" y1="{ty}" x2="{x2}" y2="{ty}"/><text class="yl" x="{tx}" y="{tty}">{v}</text>"#,
                x1 = n(LEFT),
                x2 = n(WIDTH - RIGHT),
                ty = n(ty),
                tx = n(LEFT - 6.0),
                tty = n(ty + 4.0),
                v = compact(tick),
            );
            tick += step;
        }
    }
    // Bars.
    let slot = if points.is_empty() {
        plot_w
    } else {
        plot_w / points.len() as f64
    };
    for (i, &(start, input, output)) in points.iter().enumerate() {
        let x = LEFT + i as f64 * slot;
        let bar_x = x + slot * (1.0 - BAR) / 2.0;
        let bar_w = slot * BAR;
        let (axis, full) = bucket_label(start, bucket);
        let iso = chrono::DateTime::from_timestamp(start, 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ");
        let _ = write!(
            s,
            r#"<g class="bar" data-start="{iso}" data-input="{input}" data-output="{output}"><title>{full}: {i} input, {o} output tokens</title><rect class="hit" x="{x}" y="{top_y}" width="{sw}" height="{ph}"/>"#,
            i = thousands(input),
            o = thousands(output),
            x = n(x),
            top_y = n(TOP),
            sw = n(slot),
            ph = n(plot_h),
        );
        if input > 0 {
            let _ = write!(
                s,
                r#"<rect class="in" x="{x}" y="{ry}" width="{w}" height="{h}"/>"#,
                x = n(bar_x),
                ry = n(y(input)),
                w = n(bar_w),
                h = n(base - y(input)),
            );
        }
        if output > 0 {
            let _ = write!(
                s,
                r#"<rect class="out" x="{x}" y="{ry}" width="{w}" height="{h}"/>"#,
                x = n(bar_x),
                ry = n(y(input + output)),
                w = n(bar_w),
                h = n(y(input) - y(input + output)),
            );
        }
        s.push_str("</g>");
        if labelled(start, i, points.len(), bucket) {
            let _ = write!(
                s,
                r#"<text class="xl" x="{x}" y="{ly}">{axis}</text>"#,
                x = n(x + slot / 2.0),
                ly = n(base + 18.0),
            );
        }
    }
    let _ = write!(
        s,
        r#"<line class="axis" x1="{x1}" y1="{b}" x2="{x2}" y2="{b}"/>"#,
        x1 = n(LEFT),
        x2 = n(WIDTH - RIGHT),
        b = n(base),
    );
    if max == 0 {
        let _ = write!(
            s,
            r#"<text class="empty" x="{x}" y="{y}">no tokens in this period</text>"#,
            x = n(LEFT + plot_w / 2.0),
            y = n(TOP + plot_h / 2.0),
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25 10:00:00 UTC.
    const T0: i64 = 1_795_600_800;

    #[test]
    fn compact_labels() {
        assert_eq!(compact(0), "0");
        assert_eq!(compact(950), "950");
        assert_eq!(compact(1_000), "1k");
        assert_eq!(compact(1_500), "1.5k");
        assert_eq!(compact(12_000), "12k");
        assert_eq!(compact(99_960), "100k");
        assert_eq!(compact(2_500_000), "2.5M");
        assert_eq!(compact(7_000_000_000), "7B");
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(1), 1);
        assert_eq!(nice_step(4), 1);
        assert_eq!(nice_step(7), 2);
        assert_eq!(nice_step(1_000), 500);
        assert_eq!(nice_step(3_000), 1_000);
        assert_eq!(nice_step(1_234), 500);
        assert_eq!(nice_step(45_000), 20_000);
    }

    #[test]
    fn exact_svg_of_a_tiny_series() {
        let svg = token_chart(
            "c",
            "Tokens <per> hour",
            &[(T0 + 3600, 300, 100), (T0 + 7200, 0, 0)],
            Bucket::Hour,
        );
        // Max 400: step 100, top 400; plot 404 × 176, two slots of 202.
        let expected = concat!(
            r#"<svg class="chart" id="c" viewBox="0 0 480 240" role="img" aria-labelledby="c-title"><title id="c-title">Tokens &lt;per&gt; hour</title>"#,
            r#"<g class="legend"><rect class="in" x="310" y="8" width="12" height="12"/><text x="327" y="18">input</text><rect class="out" x="388" y="8" width="12" height="12"/><text x="405" y="18">output</text></g>"#,
            r#"<text class="unit" x="56" y="18">tokens</text>"#,
            r#"<line class="grid" x1="56" y1="210" x2="460" y2="210"/><text class="yl" x="50" y="214">0</text>"#,
            r#"<line class="grid" x1="56" y1="166" x2="460" y2="166"/><text class="yl" x="50" y="170">100</text>"#,
            r#"<line class="grid" x1="56" y1="122" x2="460" y2="122"/><text class="yl" x="50" y="126">200</text>"#,
            r#"<line class="grid" x1="56" y1="78" x2="460" y2="78"/><text class="yl" x="50" y="82">300</text>"#,
            r#"<line class="grid" x1="56" y1="34" x2="460" y2="34"/><text class="yl" x="50" y="38">400</text>"#,
            r#"<g class="bar" data-start="2026-11-25T11:00:00Z" data-input="300" data-output="100"><title>2026-11-25 11:00 UTC: 300 input, 100 output tokens</title><rect class="hit" x="56" y="34" width="202" height="176"/>"#,
            r#"<rect class="in" x="84.3" y="78" width="145.4" height="132"/><rect class="out" x="84.3" y="34" width="145.4" height="44"/></g>"#,
            r#"<g class="bar" data-start="2026-11-25T12:00:00Z" data-input="0" data-output="0"><title>2026-11-25 12:00 UTC: 0 input, 0 output tokens</title><rect class="hit" x="258" y="34" width="202" height="176"/></g>"#,
            r#"<text class="xl" x="359" y="228">12:00</text>"#,
            r#"<line class="axis" x1="56" y1="210" x2="460" y2="210"/>"#,
            r#"</svg>"#,
        );
        assert_eq!(svg, expected);
    }

    #[test]
    fn an_empty_period_says_so_and_labels_are_spaced() {
        let hours: Vec<Point> = (0..24).map(|i| (T0 + i * 3600, 0, 0)).collect();
        let svg = token_chart("h", "Tokens per hour", &hours, Bucket::Hour);
        let labels: Vec<&str> = svg
            .split(r#"<text class="xl""#)
            .skip(1)
            .map(|t| &t[t.find('>').unwrap() + 1..t.find('<').unwrap()])
            .collect();
        assert_eq!(
            labels,
            ["12:00", "16:00", "20:00", "00:00", "04:00", "08:00"]
        );
        let days: Vec<Point> = (0..30).map(|i| (T0 + i * 86_400, 0, 0)).collect();
        let svg = token_chart("d", "Tokens per day", &days, Bucket::Day);
        assert!(svg.contains("no tokens in this period"));
        assert!(!svg.contains("class=\"grid\""));
        assert_eq!(svg.matches("class=\"bar\"").count(), 30);
        assert_eq!(svg.matches("class=\"xl\"").count(), 6);
        assert!(svg.contains(">12-24</text>"), "the newest day is labelled");
        assert!(svg.contains("<title>2026-12-24 (UTC): 0 input, 0 output tokens</title>"));
    }

    #[test]
    fn figures_are_exact_with_separators_in_titles() {
        let svg = token_chart("h", "x", &[(T0, 1_234_567, 89)], Bucket::Hour);
        assert!(svg.contains(r#"data-input="1234567" data-output="89""#));
        assert!(svg.contains("1,234,567 input, 89 output tokens"));
    }
}
