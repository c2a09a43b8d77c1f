//! The per-second time series: building a [`SeriesPoint`] from a second's merged
//! latencies, and the one downsampler that keeps a series bounded. A point carries
//! its latency histogram (packed), so merging neighbours is exact for the merged
//! interval: the percentiles of a merged point are those of all its requests, never
//! an average of percentiles. Its p50/p95/p99 numbers are computed once, when the
//! point is made or merged, for the readers that only draw.

use hdrhistogram::Histogram;

use super::snapshot::SeriesPoint;
use super::stats::{latency_histogram, percentile_ms};
use super::wire::PackedHistogram;

/// Sets `point`'s latency to `latency`: its histogram and its percentiles.
pub fn set_latency(point: &mut SeriesPoint, latency: &Histogram<u64>) {
    point.p50_ms = percentile_ms(latency, 50.0);
    point.p95_ms = percentile_ms(latency, 95.0);
    point.p99_ms = percentile_ms(latency, 99.0);
    point.latency = PackedHistogram::pack(latency);
}

/// Merges consecutive points into one covering them all: counts and widths add up,
/// the time and the users are the last point's, and the latency histograms add up,
/// so the percentiles are exact for the whole interval.
pub fn merge_points(points: &[SeriesPoint]) -> SeriesPoint {
    let Some(last) = points.last() else {
        return SeriesPoint::default();
    };
    let mut merged = last.clone();
    merged.width = points.iter().map(|p| p.width).sum();
    merged.requests = points.iter().map(|p| p.requests).sum();
    merged.failures = points.iter().map(|p| p.failures).sum();
    merged.dropped = points.iter().map(|p| p.dropped).sum();
    let mut latency = latency_histogram();
    for p in points.iter().filter(|p| !p.latency.is_empty()) {
        // Points carry swarm's own histograms; one that does not decode adds nothing.
        if let Ok(h) = p.latency.unpack() {
            let _ = latency.add(&h);
        }
    }
    set_latency(&mut merged, &latency);
    merged
}

/// Merges neighbouring points, in groups of equal size, until at most `max` remain
/// (a series of `max` points or fewer, or `max` 0, is returned as it is).
pub fn downsample(series: &[SeriesPoint], max: usize) -> Vec<SeriesPoint> {
    if series.len() <= max || max == 0 {
        return series.to_vec();
    }
    let group = series.len().div_ceil(max);
    series.chunks(group).map(merge_points).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::stats::record_latency;

    /// A one-second point at `t` with `n` requests of `ms` milliseconds.
    pub(crate) fn point(t: f64, n: u64, ms: u64) -> SeriesPoint {
        let mut h = latency_histogram();
        for _ in 0..n {
            record_latency(&mut h, Duration::from_millis(ms));
        }
        let mut p = SeriesPoint {
            t,
            width: 1.0,
            requests: n,
            users: t as u32,
            ..SeriesPoint::default()
        };
        set_latency(&mut p, &h);
        p
    }

    #[test]
    fn merged_percentiles_are_those_of_all_the_requests() {
        // 90 fast requests and 10 slow ones: the merged p50 and p95 are the fast
        // latency (no weighted mean, no max of percentiles), p99 the slow one.
        let merged = merge_points(&[point(1.0, 90, 5), point(2.0, 10, 500)]);
        assert_eq!((merged.requests, merged.width, merged.t), (100, 2.0, 2.0));
        assert_eq!(merged.users, 2);
        assert!((merged.p50_ms - 5.0).abs() < 0.01, "{}", merged.p50_ms);
        assert!((merged.p95_ms - 500.0).abs() < 0.5, "{}", merged.p95_ms);
        let three = merge_points(&[point(1.0, 97, 5), point(2.0, 1, 500), point(3.0, 2, 500)]);
        assert!((three.p95_ms - 5.0).abs() < 0.01, "{}", three.p95_ms);
        assert!((three.p99_ms - 500.0).abs() < 0.5, "{}", three.p99_ms);
        // Merging in any grouping gives the same histogram.
        let pairwise = merge_points(&[
            merge_points(&[point(1.0, 97, 5), point(2.0, 1, 500)]),
            point(3.0, 2, 500),
        ]);
        assert_eq!(pairwise, three);
    }

    #[test]
    fn downsampling_keeps_totals_and_stays_bounded() {
        let series: Vec<SeriesPoint> = (1..=1300)
            .map(|i| point(i as f64, 10, if i == 1234 { 900 } else { 5 }))
            .collect();
        let small = downsample(&series, 1200);
        assert!(small.len() <= 1200, "{}", small.len());
        assert_eq!(small.iter().map(|p| p.requests).sum::<u64>(), 13_000);
        assert!((small.iter().map(|p| p.width).sum::<f64>() - 1300.0).abs() < 1e-9);
        // The slow second's requests are half of its merged point: p95 shows them.
        assert!(small.iter().any(|p| (p.p95_ms - 900.0).abs() < 1.0));
        assert_eq!(small.last().map(|p| p.t), Some(1300.0));
        assert_eq!(downsample(&series[..5], 10), series[..5].to_vec());
    }
}
