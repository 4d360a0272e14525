//! Issue 5's targets, checked against the figures of the same runs, so that
//! one command says which hold on the machine it ran on.
//!
//! Every comparison is a ratio taken within each run (seglog against the
//! best peer of that run, or against itself), then the median over runs:
//! the machine drifts between runs far more than within one.

use crate::table::{Table, Unit, median};

/// The engine the targets are about.
const SUBJECT: &str = "seglog";

/// Runs the targets are stated for (their figures are medians of as many).
const STATED_RUNS: usize = 5;

/// How a run differs from the one the targets are stated for ([`STATED_RUNS`]
/// runs at scale 1 with every engine), or `None` if it does not.
pub fn caveat(runs: usize, scale: f64, engines: usize, all: usize) -> Option<String> {
    let mut differs = Vec::new();
    if runs < STATED_RUNS {
        differs.push(format!("{runs} run(s)"));
    }
    if scale != 1.0 {
        differs.push(format!("scale {scale}"));
    }
    if engines < all {
        differs.push(format!("{engines} of {all} engines"));
    }
    (!differs.is_empty()).then(|| differs.join(", "))
}

/// Prints one line per target: the measured ratio and whether it holds.
/// `scanners` are the engines with no stream index (W5 compares them
/// apart); `memcpy` is the run's memory-copy bandwidth in bytes/s;
/// `caveat` ([`caveat`]) says how the run differs from the stated one.
pub fn print(table: &Table, scanners: &[&str], memcpy: f64, caveat: Option<String>) {
    println!();
    println!("targets (median over runs of each run's ratio, against the engines that ran):");
    if let Some(caveat) = caveat {
        println!(
            "  ({caveat}: the targets are stated for {STATED_RUNS} runs at scale 1 with every engine)"
        );
    }
    let peers = Peers::new(table, scanners);
    print_writes(table, &peers);
    print_reads(table, &peers, memcpy);
    print_open_and_w7(table, &peers);
}

/// The peers each target compares against.
struct Peers {
    /// Every peer that ran.
    all: Vec<&'static str>,
    /// The peers with a stream index.
    indexed: Vec<&'static str>,
    /// The peers without one.
    scanning: Vec<&'static str>,
}

impl Peers {
    fn new(table: &Table, scanners: &[&str]) -> Peers {
        let peers = |except: &[&str]| -> Vec<&'static str> {
            table
                .engines()
                .iter()
                .copied()
                .filter(|e| *e != SUBJECT && *e != crate::table::BASELINE && !except.contains(e))
                .collect()
        };
        let all = peers(&[]);
        let scanning = all
            .iter()
            .copied()
            .filter(|e| scanners.contains(e))
            .collect();
        Peers {
            indexed: peers(scanners),
            all,
            scanning,
        }
    }
}

/// The subject's ratio to the best of `of` on workload `w`, metric `m`, the
/// best peer, and whether the ratio reaches `need`.
fn ahead(
    table: &Table,
    w: &str,
    m: &str,
    of: &[&'static str],
    need: f64,
) -> Option<(f64, &'static str, bool)> {
    ahead_of(table, w, m, of).map(|(r, best)| (r, best, r >= need))
}

/// The append targets: W1, W2, W3.
fn print_writes(table: &Table, peers: &Peers) {
    let all = &peers.all;
    line(
        "W1 ahead of every peer",
        ahead(table, "W1 ", "append", all, 1.0),
    );
    line(
        "W2 ahead of every peer",
        ahead(table, "W2 ", "append", all, 1.0),
    );
    line_raw(
        "W2 at least as fast as raw",
        against_raw(table, "W2 ", "append"),
        1.0,
    );
    line(
        "W3 16 threads 3x the best peer",
        ahead(table, "W3 durable, 16 ", "events", all, 3.0),
    );
    line_raw(
        "W3 16 threads 10x its single thread",
        against_self(table, "W3 durable, 16 ", "W3 durable, 1 thread", "events"),
        10.0,
    );
}

/// The read targets: W4 replay and W5 stream reads.
fn print_reads(table: &Table, peers: &Peers, memcpy: f64) {
    line(
        "W4 replay 2x the best peer",
        ahead(table, "W4 ", "events", &peers.all, 2.0),
    );
    line_raw(
        "W4 replay at least as fast as raw",
        against_raw(table, "W4 ", "events"),
        1.0,
    );
    if let Some(gbs) = subject_median(table, "W4 ", "payload") {
        println!(
            "  {:<44} {:.2} GB/s of payload, {:.0}% of memcpy ({:.2} GB/s)",
            "W4 bandwidth",
            gbs / 1e9,
            100.0 * gbs / memcpy,
            memcpy / 1e9
        );
    }
    line(
        "W5 10x any peer that scans",
        ahead(table, "W5 ", "streams", &peers.scanning, 10.0),
    );
    line(
        "W5 ahead of the indexed peers",
        ahead(table, "W5 ", "streams", &peers.indexed, 1.0),
    );
}

/// The reopen (W6) and many-streams (W7) targets.
fn print_open_and_w7(table: &Table, peers: &Peers) {
    match subject_median(table, "W6 ", "open") {
        Some(secs) => println!(
            "  {:<44} {:>9} {:<22} {}",
            "W6 reopen under 50 ms",
            Unit::Seconds.format(secs),
            "",
            verdict(secs < 0.050)
        ),
        None => println!("  {:<44} not measured", "W6 reopen under 50 ms"),
    }
    line(
        "W6 reopen ahead of every peer",
        ahead(table, "W6 ", "open", &peers.all, 1.0),
    );
    line(
        "W7 appends ahead of every peer",
        ahead(table, "W7 ", "append", &peers.all, 1.0),
    );
    line(
        "W7 reads ahead of every peer",
        ahead(
            table,
            "W7 ",
            crate::workloads::W7_READ_METRIC,
            &peers.all,
            1.0,
        ),
    );
    if let Some(rss) = subject_median(table, "W7 ", "peak RSS") {
        println!(
            "  {:<44} {} (reported)",
            "W7 peak RSS",
            Unit::Bytes.format(rss)
        );
    }
}

fn verdict(holds: bool) -> &'static str {
    if holds { "met" } else { "MISSED" }
}

fn line(what: &str, measured: Option<(f64, &'static str, bool)>) {
    match measured {
        Some((ratio, best, holds)) => println!(
            "  {what:<44} {ratio:>8.2}x {:<22} {}",
            format!("the best ({best})"),
            verdict(holds)
        ),
        None => println!("  {what:<44} not measured"),
    }
}

fn line_raw(what: &str, ratio: Option<f64>, need: f64) {
    match ratio {
        Some(ratio) => println!(
            "  {what:<44} {ratio:>8.2}x {:<22} {}",
            "",
            verdict(ratio >= need)
        ),
        None => println!("  {what:<44} not measured"),
    }
}

/// The median over runs of seglog's figure against the best of `peers` in
/// the same run (for times, the best peer's time over seglog's, so that
/// above 1 is ahead either way), and the peer that was best most often.
fn ahead_of(
    table: &Table,
    workload: &str,
    metric: &str,
    peers: &[&'static str],
) -> Option<(f64, &'static str)> {
    let (row, unit) = table.find(workload, metric)?;
    let ours = table.values(row, SUBJECT)?;
    let mut ratios = Vec::new();
    let mut wins: Vec<(&'static str, usize)> = Vec::new();
    for (run, v) in ours.iter().enumerate() {
        let Some(v) = v.filter(|v| *v > 0.0) else {
            continue;
        };
        let best = peers
            .iter()
            .filter_map(|p| {
                let x = table.values(row, p)?.get(run).copied().flatten()?;
                (x > 0.0).then_some((*p, x))
            })
            .max_by(|a, b| {
                if unit == Unit::Seconds {
                    b.1.total_cmp(&a.1)
                } else {
                    a.1.total_cmp(&b.1)
                }
            });
        let Some((peer, x)) = best else {
            continue;
        };
        ratios.push(if unit == Unit::Seconds { x / v } else { v / x });
        match wins.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, n)) => *n += 1,
            None => wins.push((peer, 1)),
        }
    }
    let best = wins.iter().max_by_key(|(_, n)| *n)?.0;
    Some((median(ratios)?, best))
}

/// The median over runs of seglog's figure against `raw`'s.
fn against_raw(table: &Table, workload: &str, metric: &str) -> Option<f64> {
    let (row, unit) = table.find(workload, metric)?;
    table.ratio(row, unit, table.values(row, SUBJECT)?)
}

/// The median over runs of seglog's figure in one workload over its own in
/// another (same metric).
fn against_self(table: &Table, workload: &str, base: &str, metric: &str) -> Option<f64> {
    let (row, _) = table.find(workload, metric)?;
    let (base_row, _) = table.find(base, metric)?;
    let ours = table.values(row, SUBJECT)?;
    let base = table.values(base_row, SUBJECT)?;
    let ratios = ours
        .iter()
        .zip(base)
        .filter_map(|(v, b)| match (v, b) {
            (Some(v), Some(b)) if *b > 0.0 => Some(v / b),
            _ => None,
        })
        .collect();
    median(ratios)
}

fn subject_median(table: &Table, workload: &str, metric: &str) -> Option<f64> {
    let (row, _) = table.find(workload, metric)?;
    median(
        table
            .values(row, SUBJECT)?
            .iter()
            .flatten()
            .copied()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs in which a different peer is best each time: the ratio is
    /// taken against each run's best, and the median is over the runs.
    #[test]
    fn ahead_of_takes_each_runs_best_peer() {
        let mut t = Table::new(3, vec!["raw", "seglog", "a", "b"]);
        for (run, (s, a, b)) in [(10.0, 5.0, 4.0), (10.0, 2.0, 8.0), (9.0, 3.0, 2.0)]
            .into_iter()
            .enumerate()
        {
            t.start_run(run);
            t.put("W1 x", "append", Unit::EventsPerSec, "seglog", s);
            t.put("W1 x", "append", Unit::EventsPerSec, "a", a);
            t.put("W1 x", "append", Unit::EventsPerSec, "b", b);
        }
        let (ratio, best) = ahead_of(&t, "W1 ", "append", &["a", "b"]).expect("measured");
        // Per run: 10/5 = 2, 10/8 = 1.25, 9/3 = 3.
        assert_eq!(ratio, 2.0);
        assert_eq!(best, "a");
        // Only `b`: 10/4, 10/8, 9/2 -> median 2.5.
        assert_eq!(
            ahead_of(&t, "W1 ", "append", &["b"]).map(|r| r.0),
            Some(2.5)
        );
        assert_eq!(ahead_of(&t, "W1 ", "append", &[]), None);
        assert_eq!(ahead_of(&t, "W9 ", "append", &["a"]), None);
    }

    /// For times, lower is better: the best peer is the fastest, and a
    /// ratio above 1 still means seglog is ahead.
    #[test]
    fn times_compare_the_other_way_round() {
        let mut t = Table::new(1, vec!["raw", "seglog", "a", "b"]);
        t.put("W6 reopen", "open", Unit::Seconds, "seglog", 0.002);
        t.put("W6 reopen", "open", Unit::Seconds, "a", 0.001);
        t.put("W6 reopen", "open", Unit::Seconds, "b", 0.010);
        assert_eq!(
            ahead_of(&t, "W6 ", "open", &["a", "b"]),
            Some((0.5, "a")),
            "behind the fastest peer by 2x"
        );
    }

    #[test]
    fn caveat_names_each_difference_from_the_stated_run() {
        assert_eq!(caveat(5, 1.0, 7, 7), None);
        assert_eq!(caveat(9, 1.0, 7, 7), None);
        assert_eq!(
            caveat(1, 0.1, 3, 7).as_deref(),
            Some("1 run(s), scale 0.1, 3 of 7 engines")
        );
    }

    #[test]
    fn against_self_pairs_the_same_run() {
        let mut t = Table::new(2, vec!["seglog"]);
        for (run, (one, sixteen)) in [(2.0, 10.0), (4.0, 40.0)].into_iter().enumerate() {
            t.start_run(run);
            t.put(
                "W3 durable, 1 thread",
                "events",
                Unit::EventsPerSec,
                "seglog",
                one,
            );
            t.put(
                "W3 durable, 16 threads",
                "events",
                Unit::EventsPerSec,
                "seglog",
                sixteen,
            );
        }
        // 5x and 10x: median 7.5x (not 25 / 3 from the medians).
        assert_eq!(
            against_self(&t, "W3 durable, 16 ", "W3 durable, 1 thread", "events"),
            Some(7.5)
        );
    }
}
