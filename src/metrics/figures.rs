//! How measured figures read, everywhere one is shown (console, JUnit, job summary,
//! annotations, HTML, progress): at least three significant digits, zeros kept, so
//! a measured `1.00s` can never pass for a limit of `1s`. Limits, which the user
//! wrote, are shown as written ([`trim_float`]).

/// `v` with at most `decimals` decimals and no trailing zeros: for limits and
/// settings the user wrote (`1s`, `0.5%`), never for measured values.
pub fn trim_float(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `v` with at least three significant digits, trailing zeros kept: `1.00`, `12.3`,
/// `123`, `1002`; `0` for zero.
pub fn sig3(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !a.is_finite() {
        return format!("{v}");
    }
    // Digits before the point minus one: 2 for 123, 0 for 1.5, -1 for 0.15.
    let magnitude = a.log10().floor() as i64;
    let decimals = usize::try_from(2 - magnitude).unwrap_or(0);
    format!("{v:.decimals$}")
}

/// A measured duration given in milliseconds: `400µs` below a millisecond, `12.3ms`
/// below a second, `1.00s` from a second up; `0ms` for zero.
pub fn duration_ms(ms: f64) -> String {
    let a = ms.abs();
    if a == 0.0 {
        "0ms".into()
    } else if a < 1.0 {
        format!("{}µs", sig3(ms * 1000.0))
    } else if a < 1000.0 {
        format!("{}ms", sig3(ms))
    } else {
        format!("{}s", sig3(ms / 1000.0))
    }
}

/// A measured fraction as a percentage: `1.00%`, `0.520%`, `12.5%`; `0%` for zero.
pub fn percent(fraction: f64) -> String {
    format!("{}%", sig3(fraction * 100.0))
}

/// A measured rate per second: `18.3/s`, `1234/s`, `5.00/s`.
pub fn per_second(v: f64) -> String {
    format!("{}/s", sig3(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_durations_keep_three_significant_digits() {
        assert_eq!(duration_ms(1002.0), "1.00s");
        assert_eq!(duration_ms(1000.0), "1.00s");
        assert_eq!(duration_ms(12_345.0), "12.3s");
        assert_eq!(duration_ms(123_456.0), "123s");
        assert_eq!(duration_ms(999.4), "999ms");
        assert_eq!(duration_ms(12.34), "12.3ms");
        assert_eq!(duration_ms(1.0), "1.00ms");
        assert_eq!(duration_ms(0.4), "400µs");
        assert_eq!(duration_ms(0.0425), "42.5µs");
        assert_eq!(duration_ms(0.0), "0ms");
    }

    #[test]
    fn rates_and_ratios_keep_three_significant_digits() {
        assert_eq!(percent(0.01), "1.00%");
        assert_eq!(percent(0.0052), "0.520%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(per_second(5.0), "5.00/s");
        assert_eq!(per_second(1234.4), "1234/s");
        assert_eq!(sig3(-0.125), "-0.125");
    }

    #[test]
    fn limits_lose_their_trailing_zeros() {
        assert_eq!(trim_float(1.0, 2), "1");
        assert_eq!(trim_float(2.50, 2), "2.5");
        assert_eq!(trim_float(300.0, 1), "300");
    }
}
