//! Durations (`250ms`, `10s`, `1m30s`, `2h`), rates (`100`, `100/s`, `600/m`),
//! percentages (`1%`) and think times (`2s`, `1s..3s`) as written in plans.

use std::time::Duration;

use super::graph::Think;

/// The longest duration a plan may give (about 31 years), so that sums of durations
/// (stages) can never overflow.
const MAX_SECONDS: f64 = 1e9;

/// The largest size a plan may give (1 GiB): a limit is there to bound memory.
const MAX_SIZE: u64 = 1 << 30;

/// Parses a size in bytes: `512`, `64KiB`, `10MiB`, `1GiB`, or decimal `500KB`, `2MB`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}`")),
    };
    match n.checked_mul(scale) {
        Some(0) => Err("a size limit must be above 0".into()),
        Some(b) if b <= MAX_SIZE => Ok(b as usize),
        _ => Err(format!("`{text}` is more than the 1GiB a limit may be")),
    }
}

/// Parses `250ms`, `10s`, `1m30s`, `2h`, `1.5s`. A bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("`{text}` is not a duration");
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| {
                if rest == t {
                    format!("`{text}` needs a unit (ms, s, m or h)")
                } else {
                    bad()
                }
            })?;
        if num_end == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        let after = &rest[num_end..];
        let unit_end = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let factor = match &after[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(bad()),
            u => return Err(format!("`{text}`: unknown unit `{u}` (use ms, s, m or h)")),
        };
        total += n * factor;
        rest = &after[unit_end..];
    }
    if !total.is_finite() || total > MAX_SECONDS {
        return Err(format!("`{text}` is too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Parses a rate per second: `100`, `100/s`, `600/m`, `3600/h`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, per) = match t.split_once('/') {
        Some((n, unit)) => {
            let per = match unit.trim() {
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                u => {
                    return Err(format!(
                        "`{text}`: unknown rate unit `/{u}` (use /s, /m or /h)"
                    ));
                }
            };
            (n.trim(), per)
        }
        None => (t, 1.0),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a rate (write `100`, `100/s` or `600/m`)"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!(
            "`{text}` is not a rate (it must be a positive number)"
        ));
    }
    let rate = n / per;
    // The engine waits 1/rate between events; that wait must be a duration a plan
    // could write, or it cannot be represented.
    if rate > 0.0 && rate < 1.0 / MAX_SECONDS {
        return Err(format!(
            "`{text}` is too low: the slowest rate is one per {MAX_SECONDS}s (about 31 years)"
        ));
    }
    Ok(rate)
}

/// Parses a percentage, `1%` or `0.5%`, into a fraction (0.01, 0.005).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let num = t
        .strip_suffix('%')
        .ok_or_else(|| format!("`{text}` is not a percentage (write e.g. `1%`)"))?;
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage (write e.g. `1%`)"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("`{text}` is not between 0% and 100%"));
    }
    Ok(n / 100.0)
}

/// Parses a pause: `2s` (constant) or `1s..3s` (uniform).
pub fn parse_think(text: &str) -> Result<Think, String> {
    match text.split_once("..") {
        Some((lo, hi)) => {
            let min = parse_duration(lo)?;
            let max = parse_duration(hi)?;
            if min > max {
                return Err(format!(
                    "`{text}`: the lower bound is above the upper bound"
                ));
            }
            Ok(Think { min, max })
        }
        None => {
            let d = parse_duration(text)?;
            Ok(Think { min: d, max: d })
        }
    }
}

/// Renders a duration the way plans write them (`1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) && ms < 60_000 {
        return if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{}s", d.as_secs_f64())
        };
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("2GiB").unwrap_err().contains("1GiB"));
        assert!(parse_size("0").is_err());
        assert!(parse_size("10 parsecs").unwrap_err().contains("parsecs"));
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("99999999999999999999999GiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3d").unwrap_err().contains("unknown unit"));
        assert_eq!(
            parse_duration("1 minute").unwrap_err(),
            "`1 minute` is not a duration"
        );
        assert_eq!(
            parse_duration("1m30").unwrap_err(),
            "`1m30` is not a duration"
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1e400s").is_err());
    }

    #[test]
    fn rates_and_percentages() {
        assert_eq!(parse_rate("100"), Ok(100.0));
        assert_eq!(parse_rate("100/s"), Ok(100.0));
        assert_eq!(parse_rate("600/m"), Ok(10.0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10/d").is_err());
        assert!(parse_rate("-5").is_err());
        assert_eq!(parse_rate("0"), Ok(0.0));
        assert_eq!(parse_rate("1e-9"), Ok(1e-9));
        assert_eq!(
            parse_rate("1e-20/s").unwrap_err(),
            "`1e-20/s` is too low: the slowest rate is one per 1000000000s (about 31 years)"
        );
        assert!(parse_rate("1e-6/h").unwrap_err().contains("too low"));
        assert!(parse_rate("5e-324").unwrap_err().contains("too low"));
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("0.5%"), Ok(0.005));
        assert!(parse_percent("1").is_err());
        assert!(parse_percent("120%").is_err());
    }

    #[test]
    fn thinks() {
        let t = parse_think("1s..3s").unwrap();
        assert_eq!(
            (t.min, t.max),
            (Duration::from_secs(1), Duration::from_secs(3))
        );
        let t = parse_think("100ms").unwrap();
        assert_eq!(t.min, t.max);
        assert!(parse_think("3s..1s").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
