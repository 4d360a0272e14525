//! Collects every figure of every run and prints the medians, each beside
//! its ratio to the `raw` baseline of the same run.

use std::collections::HashMap;

/// What a figure measures: decides how it prints and how its ratio is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Events per second (higher is better).
    EventsPerSec,
    /// Whole streams read per second (higher is better).
    StreamsPerSec,
    /// Bytes of payload per second (higher is better).
    BytesPerSec,
    /// Seconds, for times and latencies (lower is better).
    Seconds,
    /// Bytes of memory (lower is better).
    Bytes,
}

impl Unit {
    /// Formats `v` with an SI prefix and the unit.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::EventsPerSec => format!("{} ev/s", si(v)),
            Unit::StreamsPerSec => format!("{} streams/s", si(v)),
            Unit::BytesPerSec => format!("{:.2} GB/s", v / 1e9),
            Unit::Bytes => format!("{:.0} MiB", v / (1u64 << 20) as f64),
            Unit::Seconds if v < 1e-3 => format!("{:.0} us", v * 1e6),
            Unit::Seconds if v < 1.0 => format!("{:.1} ms", v * 1e3),
            Unit::Seconds => format!("{v:.2} s"),
        }
    }
}

/// `1234567.0` -> `1.23M`.
fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

/// One line of the table per engine: a workload and one of its figures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Row {
    workload: String,
    metric: String,
}

/// Every figure, by row, engine and run.
#[derive(Debug)]
pub struct Table {
    runs: usize,
    run: usize,
    engines: Vec<&'static str>,
    /// Rows in the order first recorded, with their unit.
    rows: Vec<(Row, Unit)>,
    values: HashMap<(Row, &'static str), Vec<Option<f64>>>,
    notes: Vec<String>,
}

/// The engine every ratio is taken against.
pub const BASELINE: &str = "raw";

impl Table {
    /// An empty table for `runs` runs of `engines` (in print order).
    pub fn new(runs: usize, engines: Vec<&'static str>) -> Self {
        Table {
            runs,
            run: 0,
            engines,
            rows: Vec::new(),
            values: HashMap::new(),
            notes: Vec::new(),
        }
    }

    /// Figures recorded from now on belong to run `run`.
    pub fn start_run(&mut self, run: usize) {
        self.run = run;
    }

    /// Records one figure of the current run.
    pub fn put(&mut self, workload: &str, metric: &str, unit: Unit, engine: &'static str, v: f64) {
        let row = Row {
            workload: workload.to_string(),
            metric: metric.to_string(),
        };
        if !self.rows.iter().any(|(r, _)| *r == row) {
            self.rows.push((row.clone(), unit));
        }
        let runs = self.runs;
        let slot = self
            .values
            .entry((row, engine))
            .or_insert_with(|| vec![None; runs]);
        slot[self.run] = Some(v);
    }

    /// Adds a note printed under the table (once, however many runs add it).
    pub fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// Prints the medians and ratios.
    pub fn print(&self) {
        println!();
        println!(
            "{:<34} {:<15} {:<10} {:>18}  {:>9}",
            "workload", "figure", "engine", "median", "vs raw"
        );
        println!("{}", "-".repeat(92));
        // Rows of one workload together, in the order workloads first appeared.
        let mut rows: Vec<&(Row, Unit)> = self.rows.iter().collect();
        let first_seen = |w: &str| self.rows.iter().position(|(r, _)| r.workload == w);
        rows.sort_by_key(|(r, _)| first_seen(&r.workload));
        let mut last_workload = "";
        for (row, unit) in rows {
            if row.workload != last_workload && !last_workload.is_empty() {
                println!();
            }
            last_workload = &row.workload;
            for &engine in &self.engines {
                let Some(values) = self.values.get(&(row.clone(), engine)) else {
                    continue;
                };
                let Some(m) = median(values.iter().flatten().copied().collect()) else {
                    continue;
                };
                let ratio = self.ratio(row, *unit, values);
                let ratio = ratio.map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"));
                println!(
                    "{:<34} {:<15} {:<10} {:>18}  {:>9}",
                    row.workload,
                    row.metric,
                    engine,
                    unit.format(m),
                    ratio
                );
            }
        }
        println!();
        println!(
            "vs raw: median over runs of the per-run ratio to raw; for rates and times >1 means \
             faster than raw, for memory >1 means more memory than raw."
        );
        for note in &self.notes {
            println!("note: {note}");
        }
    }

    /// The engines, in print order.
    pub fn engines(&self) -> &[&'static str] {
        &self.engines
    }

    /// The first row whose workload starts with `workload` and whose
    /// figure is `metric`, with its unit.
    pub fn find(&self, workload: &str, metric: &str) -> Option<(&Row, Unit)> {
        self.rows
            .iter()
            .find(|(r, _)| r.workload.starts_with(workload) && r.metric == metric)
            .map(|(r, u)| (r, *u))
    }

    /// An engine's figure in each run (`None` where it has none).
    pub fn values(&self, row: &Row, engine: &'static str) -> Option<&[Option<f64>]> {
        self.values.get(&(row.clone(), engine)).map(Vec::as_slice)
    }

    /// Median over runs of this engine's figure against raw's in the same run.
    pub fn ratio(&self, row: &Row, unit: Unit, values: &[Option<f64>]) -> Option<f64> {
        let base = self.values.get(&(row.clone(), BASELINE))?;
        let ratios = values
            .iter()
            .zip(base)
            .filter_map(|(v, b)| match (v, b) {
                (Some(v), Some(b)) if *v > 0.0 && *b > 0.0 => {
                    // Rates and memory compare directly; for times, raw's over ours.
                    Some(if unit == Unit::Seconds { b / v } else { v / b })
                }
                _ => None,
            })
            .collect();
        median(ratios)
    }
}

/// Median of `v` (mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}
