//! The results: one markdown table (min/median/max µs per call, and each median and minimum
//! against ours in the same group) and the JSON report `--json` writes.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::measure::{Group, Plan, Summary};

/// One implementation's times, as measured here or as a peer script prints them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub group: Group,
    pub name: String,
    /// The language runtime and library versions, e.g. `node v20.20.2, svix 1.99.1`.
    pub runtime: String,
    /// Ours: what the other rows of its group are compared with.
    #[serde(default)]
    pub baseline: bool,
    /// Microseconds per call, one entry per timed round.
    pub rounds_us: Vec<f64>,
}

/// A measurement with its summary and its median against the group's baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub group: Group,
    pub name: String,
    pub runtime: String,
    pub baseline: bool,
    pub min_us: f64,
    pub median_us: f64,
    pub max_us: f64,
    /// This median over the baseline's median (2.0: twice as slow as ours); `None` without a
    /// baseline in the group.
    pub vs_ours: Option<f64>,
    /// The same for the minimums: the least disturbed rounds, steadier on a loaded machine.
    pub min_vs_ours: Option<f64>,
    pub rounds_us: Vec<f64>,
}

/// Summarises each measurement, groups them (webhook first, each group in the order measured)
/// and divides each median (and minimum) by its group's baseline median (and minimum). Measurements without samples are
/// left out.
pub fn rows(measurements: &[Measurement]) -> Vec<Row> {
    let mut rows: Vec<Row> = measurements
        .iter()
        .filter_map(|m| {
            let s = Summary::of(&m.rounds_us)?;
            Some(Row {
                group: m.group,
                name: m.name.clone(),
                runtime: m.runtime.clone(),
                baseline: m.baseline,
                min_us: s.min,
                median_us: s.median,
                max_us: s.max,
                vs_ours: None,
                min_vs_ours: None,
                rounds_us: m.rounds_us.clone(),
            })
        })
        .collect();
    // Stable: within a group the order stays the order measured.
    rows.sort_by_key(|r| r.group);
    let baselines: Vec<(Group, f64, f64)> = rows
        .iter()
        .filter(|r| r.baseline)
        .map(|r| (r.group, r.median_us, r.min_us))
        .collect();
    let over = |value: f64, of: f64| (of > 0.0).then(|| value / of);
    for row in &mut rows {
        if let Some((_, median, min)) = baselines.iter().find(|(g, ..)| *g == row.group) {
            row.vs_ours = over(row.median_us, *median);
            row.min_vs_ours = over(row.min_us, *min);
        }
    }
    rows
}

/// Microseconds with three significant figures or more: `3.42`, `48.1`, `1234`.
pub fn micros(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

/// `1.00×` for ours, `3.4×` for a peer 3.4 times slower, `0.52×` for one twice as fast.
pub fn ratio(vs_ours: Option<f64>) -> String {
    match vs_ours {
        Some(r) if r < 10.0 => format!("{r:.2}×"),
        Some(r) => format!("{r:.1}×"),
        None => "–".to_owned(),
    }
}

/// The markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| what | implementation | runtime | min µs/op | median µs/op | max µs/op | median vs ours | min vs ours |\n\
         |---|---|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let name = if r.baseline {
            format!("**{}**", r.name)
        } else {
            r.name.clone()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.group.label(),
            name,
            r.runtime,
            micros(r.min_us),
            micros(r.median_us),
            micros(r.max_us),
            ratio(r.vs_ours),
            ratio(r.min_vs_ours)
        );
    }
    out
}

/// What `--json FILE` writes.
#[derive(Debug, Serialize)]
pub struct Report {
    /// RFC 3339, UTC.
    pub measured_at: String,
    pub cores: usize,
    pub plan: Plan,
    pub webhook_body_bytes: usize,
    pub results: Vec<Row>,
    /// Peers that could not be run, and why.
    pub skipped: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(group: Group, name: &str, baseline: bool, rounds_us: &[f64]) -> Measurement {
        Measurement {
            group,
            name: name.to_owned(),
            runtime: "test".to_owned(),
            baseline,
            rounds_us: rounds_us.to_vec(),
        }
    }

    #[test]
    fn each_median_is_divided_by_the_baseline_median_of_its_own_group() {
        let rows = rows(&[
            m(Group::Token, "ours token", true, &[20.0, 30.0, 40.0]),
            m(Group::Webhook, "ours webhook", true, &[1.0, 2.0, 3.0]),
            m(Group::Webhook, "peer webhook", false, &[5.0, 6.0, 7.0]),
            m(Group::Token, "peer token", false, &[15.0]),
        ]);
        let got: Vec<(&str, Option<f64>)> =
            rows.iter().map(|r| (r.name.as_str(), r.vs_ours)).collect();
        assert_eq!(
            got,
            [
                ("ours webhook", Some(1.0)),
                ("peer webhook", Some(3.0)),
                ("ours token", Some(1.0)),
                ("peer token", Some(0.5)),
            ]
        );
    }

    #[test]
    fn each_minimum_is_divided_by_the_baseline_minimum() {
        let rows = rows(&[
            m(Group::Webhook, "ours", true, &[2.0, 9.0, 9.0]),
            m(Group::Webhook, "peer", false, &[5.0, 6.0, 7.0]),
        ]);
        assert_eq!(rows[1].min_vs_ours, Some(2.5));
        assert_eq!(rows[1].vs_ours, Some(6.0 / 9.0));
    }

    #[test]
    fn a_group_without_a_baseline_has_no_ratios() {
        let rows = rows(&[m(Group::Token, "peer", false, &[1.0])]);
        assert_eq!((rows[0].vs_ours, rows[0].min_vs_ours), (None, None));
        assert!(table(&rows).contains("| – | – |"));
    }

    #[test]
    fn a_measurement_without_samples_is_left_out_of_the_table() {
        let rows = rows(&[
            m(Group::Webhook, "ours", true, &[1.0]),
            m(Group::Webhook, "empty", false, &[]),
        ]);
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn the_table_has_a_header_and_one_line_per_row_with_ours_in_bold() {
        let rows = rows(&[
            m(Group::Webhook, "ours", true, &[2.0, 4.0, 3.0]),
            m(Group::Webhook, "svix", false, &[9.0, 12.0, 10.5]),
        ]);
        let table = table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert_eq!(
            lines[2],
            "| webhook | **ours** | test | 2.00 | 3.00 | 4.00 | 1.00× | 1.00× |"
        );
        assert_eq!(
            lines[3],
            "| webhook | svix | test | 9.00 | 10.5 | 12.0 | 3.50× | 4.50× |"
        );
    }

    #[test]
    fn micros_keep_about_three_significant_figures() {
        assert_eq!(micros(3.4567), "3.46");
        assert_eq!(micros(48.06), "48.1");
        assert_eq!(micros(1234.4), "1234");
    }

    #[test]
    fn large_ratios_lose_a_decimal() {
        assert_eq!(ratio(Some(0.523)), "0.52×");
        assert_eq!(ratio(Some(12.34)), "12.3×");
        assert_eq!(ratio(None), "–");
    }
}
