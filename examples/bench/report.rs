//! The results: each figure with its unit, its target (if the issue sets one) and whether it
//! was met, printed as a table, and written as JSON (`results.json`) and as a Markdown table
//! (`results.md`, the form the README shows).

use serde::Serialize;

/// How a target compares.
#[derive(Debug, Clone, Copy, Serialize)]
pub enum Cmp {
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = ">=")]
    AtLeast,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Target {
    pub cmp: Cmp,
    pub value: f64,
}

pub fn at_most(value: f64) -> Option<Target> {
    Some(Target {
        cmp: Cmp::AtMost,
        value,
    })
}

pub fn at_least(value: f64) -> Option<Target> {
    Some(Target {
        cmp: Cmp::AtLeast,
        value,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable key, e.g. `ttfb_added_p50_c50`.
    pub id: String,
    /// The numbered item this belongs to (1–7).
    pub item: u8,
    pub label: String,
    /// NaN (JSON `null`) when the phase did not run or produced nothing.
    #[serde(serialize_with = "nan_as_null")]
    pub value: f64,
    pub unit: &'static str,
    pub target: Option<Target>,
    /// `None` when there is no target or no value.
    pub pass: Option<bool>,
}

fn nan_as_null<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

#[derive(Default)]
pub struct Report {
    pub figures: Vec<Figure>,
}

impl Report {
    pub fn add(
        &mut self,
        item: u8,
        id: impl Into<String>,
        label: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: Option<Target>,
    ) {
        let pass = match target {
            Some(t) if value.is_finite() => Some(match t.cmp {
                Cmp::AtMost => value <= t.value,
                Cmp::AtLeast => value >= t.value,
            }),
            _ => None,
        };
        self.figures.push(Figure {
            id: id.into(),
            item,
            label: label.into(),
            value,
            unit,
            target,
            pass,
        });
    }

    pub fn missed(&self) -> Vec<&Figure> {
        self.figures
            .iter()
            .filter(|f| f.pass == Some(false))
            .collect()
    }

    /// By item, in the order measured within an item.
    pub fn sorted(&self) -> Vec<&Figure> {
        let mut figures: Vec<&Figure> = self.figures.iter().collect();
        figures.sort_by_key(|f| f.item);
        figures
    }

    fn rows(&self) -> Vec<[String; 5]> {
        self.sorted()
            .into_iter()
            .map(|f| {
                [
                    f.item.to_string(),
                    f.label.clone(),
                    format!("{} {}", number(f.value), f.unit).trim().to_owned(),
                    f.target.map_or(String::new(), |t| {
                        format!(
                            "{} {} {}",
                            match t.cmp {
                                Cmp::AtMost => "≤",
                                Cmp::AtLeast => "≥",
                            },
                            number(t.value),
                            f.unit
                        )
                        .trim()
                        .to_owned()
                    }),
                    match f.pass {
                        Some(true) => "pass".into(),
                        Some(false) => "FAIL".into(),
                        None => String::new(),
                    },
                ]
            })
            .collect()
    }

    pub fn table(&self) -> String {
        let mut table = amq2api::cmd::table::new(&["#", "figure", "measured", "target", "result"]);
        for row in self.rows() {
            table.add_row(row.to_vec());
        }
        amq2api::cmd::table::align_right(&mut table, [2, 3]);
        table.to_string()
    }

    /// The table in Markdown, then `footer` (the run's conditions) as a paragraph.
    pub fn markdown(&self, footer: &str) -> String {
        let mut out =
            String::from("| # | figure | measured | target | result |\n|---|---|---:|---:|---|\n");
        for [item, label, measured, target, result] in self.rows() {
            out.push_str(&format!(
                "| {item} | {label} | {measured} | {target} | {result} |\n"
            ));
        }
        out.push('\n');
        out.push_str(footer);
        out.push('\n');
        out
    }
}

/// Three significant digits, no exponent for the sizes we print.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if a == 0.0 || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
