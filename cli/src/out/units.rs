//! Human units: sizes in binary units, counts with separators, times in
//! RFC 3339 (UTC, microseconds), and the parsing of positions and times
//! given on the command line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seglog::Position;

/// `bytes` in B, KiB, MiB, GiB or TiB, one decimal past bytes.
pub(crate) fn bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `n` with a comma every three digits.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A commit time (microseconds since the Unix epoch) in RFC 3339, UTC.
pub(crate) fn time(us: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

/// A position as written on the command line: `OFFSET:INDEX` as the tool
/// prints them, or `OFFSET` for the first event of a frame.
pub(crate) fn parse_position(text: &str) -> Result<Position, String> {
    text.parse::<Position>().map_err(|e| e.to_string())
}

/// A time as written on the command line: RFC 3339 (`2026-12-06T10:00:00Z`,
/// fractions allowed; `T` may be a space and the zone left out for UTC).
pub(crate) fn parse_time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{text:?} is not a time like 2026-12-06T10:00:00Z: {e}"))
}

/// Where a read starts: a position, or the first event at or after a time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum From {
    /// At this position.
    Position(Position),
    /// At the first event committed at or after this time.
    Time(SystemTime),
}

/// `--from`: a time if it reads as one (it holds a `-`), else a position.
pub(crate) fn parse_from(text: &str) -> Result<From, String> {
    if text.contains('-') {
        parse_time(text).map(From::Time)
    } else {
        parse_position(text)
            .map(From::Position)
            .map_err(|e| format!("{e}; or a time like 2026-12-06T10:00:00Z"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(time(1_000_000), "1970-01-01T00:00:01.000000Z");
    }

    #[test]
    fn from_tells_times_from_positions() {
        assert!(matches!(
            parse_from("2026-12-06T10:00:00Z"),
            Ok(From::Time(_))
        ));
        assert!(
            matches!(parse_from("4096:2"), Ok(From::Position(p)) if p.frame_offset() == 4096 && p.index_in_frame() == 2)
        );
        assert!(parse_from("yesterday").is_err());
        assert!(parse_from("2026-13-45").is_err());
    }
}
