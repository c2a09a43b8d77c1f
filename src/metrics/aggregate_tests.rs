//! Tests of the aggregator: exact merges, sealing, late units, the series.

use super::*;
use crate::metrics::failure::{FailureKind, TransportFailure};
use crate::metrics::snapshot::EndReason;

fn delta(second: u64, n: u64, ms: u64) -> Delta {
    let mut d = Delta::new(2);
    d.second = second;
    for _ in 0..n {
        d.requests[0].record(Duration::from_millis(ms), 10, Ok(()));
    }
    d.requests[1].record(
        Duration::from_millis(ms),
        0,
        Err(FailureKind::Transport(TransportFailure::Timeout)),
    );
    d.iterations = n;
    d
}

/// A unit merged as it came over the network (buckets, no histogram) leaves the
/// aggregator exactly as the same unit decoded whole.
#[test]
fn units_merged_as_buckets_equal_units_merged_whole() {
    let (mut whole, mut buckets) = (Aggregator::new(2), Aggregator::new(2));
    for (s, n, ms) in [(1, 10, 5), (1, 3, 700), (2, 40, 12), (3, 1, 3_000)] {
        let mut d = delta(s, n, ms);
        crate::metrics::stats::record_latency(&mut d.lag, Duration::from_micros(s * 77));
        d.start_unix_ms = 1_000 * s;
        d.active = 3;
        let bytes = wire::encode(&d);
        whole.merge(&wire::decode(&bytes, 2).unwrap());
        buckets.merge_unit(&wire::decode_unit(&bytes, 2).unwrap());
    }
    for agg in [&mut whole, &mut buckets] {
        agg.close_second(3, 1);
        agg.seal(3);
    }
    let (a, b) = (
        whole.snapshot(Duration::from_secs(3), None),
        buckets.snapshot(Duration::from_secs(3), None),
    );
    assert_eq!(a.requests, b.requests);
    assert_eq!(a.series, b.series);
    assert_eq!(whole.lag().1, buckets.lag().1);
    assert_eq!(whole.trailing(0), buckets.trailing(0));
}

#[test]
fn merges_totals_and_points_by_second() {
    let mut agg = Aggregator::new(2);
    agg.merge(&delta(1, 10, 5));
    agg.merge(&delta(2, 5, 50));
    // A late delta for second 1 still lands in point 1.
    agg.merge(&delta(1, 10, 5));
    agg.close_second(1, 3);
    agg.close_second(2, 4);
    agg.seal(2);
    let s = agg.snapshot(Duration::from_secs(2), None);
    assert_eq!(s.requests[0].count, 25);
    assert_eq!(s.requests[1].failures, 3);
    assert_eq!(s.iterations, 25);
    assert_eq!(s.series.len(), 2);
    assert_eq!(s.series[0].requests, 22);
    assert_eq!(s.series[0].failures, 2);
    assert_eq!(s.series[0].users, 3);
    assert_eq!(s.series[1].requests, 6);
    assert!((s.series[1].p50_ms - 50.0).abs() < 0.1);
    assert!((s.series[1].t - 2.0).abs() < 1e-9);
}

/// The engine's path: units kept instead of copied add up exactly as copies do,
/// late, stale and several per second included, and units come back for reuse.
#[test]
fn kept_units_merge_as_copies_do() {
    let mut copied = Aggregator::new(2);
    let mut kept = Aggregator::new(2);
    let mut back = 0;
    let mut feed = |d: Delta, copied: &mut Aggregator, kept: &mut Aggregator| {
        copied.merge(&d);
        back += usize::from(kept.merge_owned(d).is_some());
    };
    for s in 1..=8 {
        // Two threads a second, the second one slower.
        feed(delta(s, s, 5), &mut copied, &mut kept);
        feed(delta(s, 2, 40 * s), &mut copied, &mut kept);
        if s == 6 {
            // Second 1 is final by now: this one counts in the totals only.
            feed(delta(1, 4, 900), &mut copied, &mut kept);
            // An older epoch's unit is ignored, and handed back.
            let mut stale = delta(s, 1, 5);
            stale.epoch = 7;
            feed(stale, &mut copied, &mut kept);
        }
        copied.close_second(s, 2);
        kept.close_second(s, 2);
        // Every source is two seconds behind at most.
        copied.seal(s.saturating_sub(2));
        kept.seal(s.saturating_sub(2));
    }
    copied.finish(Duration::from_millis(7_500), 1);
    kept.finish(Duration::from_millis(7_500), 1);
    let a = copied.snapshot(Duration::from_millis(7_500), None);
    let b = kept.snapshot(Duration::from_millis(7_500), None);
    assert_eq!(a.requests, b.requests);
    assert_eq!(a.series, b.series);
    assert_eq!((a.iterations, a.dropped), (b.iterations, b.dropped));
    assert_eq!(kept.lag(), copied.lag());
    // The late unit: its 4 requests of the first name and 1 of the second.
    assert_eq!((kept.late(), copied.late()), (5, 5));
    // Every second's second unit, the late and the stale one come straight back,
    // and finalised units once seconds close.
    assert!(back >= 8 + 2, "{back} units came back");
}

/// A second in which one request name ran is drawn from that name's histogram
/// as it stands, the same as merging every name would give.
#[test]
fn a_second_of_one_request_name_draws_that_name() {
    let mut agg = Aggregator::new(3);
    let mut d = Delta::new(3);
    d.second = 1;
    for ms in [3, 9, 27] {
        d.requests[1].record(Duration::from_millis(ms), 1, Ok(()));
    }
    let all = d.all();
    agg.merge_owned(d);
    agg.close_second(1, 1);
    agg.seal(1);
    let s = agg.snapshot(Duration::from_secs(1), None);
    let mut want = SeriesPoint {
        requests: 3,
        ..SeriesPoint::default()
    };
    series::set_latency(&mut want, &all.latency);
    let got = &s.series[0];
    assert_eq!((got.requests, got.failures), (3, 0));
    assert_eq!(got.latency, want.latency);
    assert_eq!(got.p99_ms, want.p99_ms);
    assert!((got.p50_ms - 9.0).abs() < 0.1, "{got:?}");
}

#[test]
fn reset_discards_old_epochs() {
    let mut agg = Aggregator::new(2);
    agg.merge(&delta(1, 10, 5));
    agg.reset(Duration::from_millis(1500));
    agg.merge(&delta(2, 10, 5)); // epoch 0: stale
    let mut d = delta(2, 4, 5);
    d.epoch = agg.epoch();
    agg.merge(&d);
    agg.finish(Duration::from_millis(2500), 1);
    let s = agg.snapshot(Duration::from_millis(2500), Some(Duration::from_secs(10)));
    assert_eq!(s.requests[0].count, 4);
    assert_eq!(s.elapsed, Duration::from_secs(1));
    assert_eq!(s.planned, Some(Duration::from_millis(8500)));
    assert_eq!(s.series.len(), 1);
    assert!((s.series[0].t - 0.5).abs() < 1e-9);
    assert!((s.series[0].width - 0.5).abs() < 1e-9);
}

#[test]
fn a_unit_for_a_final_second_counts_in_the_totals_only() {
    let mut agg = Aggregator::new(2);
    for s in 1..=6 {
        agg.merge(&delta(s, 1, 5));
        agg.close_second(s, 1);
    }
    // Nothing is final before it is sealed, whatever the time.
    assert!(agg.snapshot(Duration::from_secs(6), None).series.is_empty());
    agg.seal(4);
    assert_eq!(agg.snapshot(Duration::from_secs(6), None).series.len(), 4);
    // Second 1 is final: its straggler moves to no other second.
    agg.merge(&delta(1, 4, 5));
    assert_eq!(agg.late(), 5);
    agg.finish(Duration::from_secs(6), 1);
    let s = agg.snapshot(Duration::from_secs(6), None);
    assert!(s.series.iter().all(|p| p.requests == 2), "{:?}", s.series);
    assert_eq!(s.requests[0].count, 6 + 4);
}

#[test]
fn late_deltas_fold_into_the_last_point() {
    let mut agg = Aggregator::new(2);
    agg.merge(&delta(10, 3, 5));
    agg.merge(&delta(11, 2, 5));
    agg.finish(Duration::from_millis(9_990), 0);
    let s = agg.snapshot(Duration::from_millis(9_990), None);
    assert_eq!(s.series.len(), 1);
    assert_eq!(s.series[0].requests, 7);
    assert!((s.series[0].t - 9.99).abs() < 1e-9);
}

#[test]
fn series_stays_bounded() {
    let mut agg = Aggregator::with_max_points(1, 10);
    let mut total = 0;
    for s in 1..=200 {
        let mut d = Delta::new(1);
        d.second = s;
        d.requests[0].record(Duration::from_millis(1), 0, Ok(()));
        total += 1;
        agg.merge(&d);
        agg.close_second(s, 1);
        agg.seal(s);
    }
    agg.finish(Duration::from_secs(200), 1);
    let snap = agg.snapshot(Duration::from_secs(200), None);
    assert!(snap.series.len() <= 10, "{}", snap.series.len());
    let sum: u64 = snap.series.iter().map(|p| p.requests).sum();
    assert_eq!(sum, total);
    let width: f64 = snap.series.iter().map(|p| p.width).sum();
    assert!((width - 200.0).abs() < 1e-6, "{width}");
    assert!((snap.series.last().unwrap().t - 200.0).abs() < 1e-9);
    assert!(snap.series.windows(2).all(|w| w[0].t < w[1].t));
}

#[test]
fn trailing_windows_merge_the_recent_seconds_exactly() {
    let mut agg = Aggregator::new(2);
    agg.keep_recent(5);
    let deltas: Vec<Delta> = (1..=10).map(|s| delta(s, s, s * 10)).collect();
    for d in &deltas {
        agg.merge(d);
        agg.close_second(d.second, 2);
        agg.seal(d.second.saturating_sub(3));
    }
    // Seconds 1 to 7 are final; the ring kept the last five of them.
    let seconds: Vec<u64> = agg.recent(0).map(|(s, _)| s).collect();
    assert_eq!(seconds, [3, 4, 5, 6, 7]);
    let window = agg.trailing(4).unwrap();
    let mut expected = Delta::new(2);
    for d in &deltas[4..7] {
        expected.merge(d);
    }
    assert_eq!(window.requests, expected.requests);
    assert_eq!(window.iterations, 5 + 6 + 7);
    assert_eq!(window.second, 5, "labelled with its first second");
    assert_eq!(window.active, 2, "the users of its last second");
    assert!(agg.trailing(7).is_none());
    agg.reset(Duration::from_secs(10));
    assert!(agg.trailing(0).is_none());
}

/// The judge sees each second once it is final, quiet seconds included, and a
/// reset starts its windows and its abort grace again.
#[test]
fn finalised_seconds_feed_the_window_judge() {
    let plan = crate::testing::TestPlan::new()
        .flow("- get: /a\n  name: a\n- get: /b\n  name: b")
        .slo("{ line: \"a: requests >= 15\", window: 2s }")
        .slo("{ line: \"b: failures == 0\", abort: true }")
        .compile();
    let mut agg = Aggregator::new(2);
    agg.judge_windows(WindowJudge::new(&plan).unwrap());
    // Ten busy seconds, a silent one (no unit, and the controller, late, never
    // published it), then busy again.
    for s in (1..=10).chain(12..=16) {
        agg.merge(&delta(s, 10, 5));
        agg.close_second(s, 1);
        agg.seal(s.saturating_sub(3));
    }
    // Seconds 1 to 13 are final: 13 seconds judged, the silent 11th among them.
    let worst = agg.snapshot(Duration::from_secs(16), None).windows;
    let w = worst[0].1.as_ref().unwrap();
    // Only the windows with the silent second in them fall short.
    assert_eq!(
        (w.value, w.passed, w.ended_at),
        (Some(10.0), false, 11),
        "{w:?}"
    );
    let abort = agg
        .aborted()
        .expect("b failed every second; past the grace");
    assert!(
        matches!(&abort, EndReason::Aborted { slo: 1, line, at: 11 } if line == "b: failures == 0"),
        "{abort:?}"
    );
    agg.reset(Duration::from_millis(16_500));
    assert_eq!(agg.aborted(), None, "the grace starts again");
    let mut d = delta(17, 1, 5);
    d.epoch = agg.epoch();
    agg.merge(&d);
    agg.finish(Duration::from_secs(17), 1);
    let worst = agg.snapshot(Duration::from_secs(17), None).windows;
    let w = worst[0].1.as_ref().unwrap();
    assert_eq!(w.value, Some(1.0), "only the second after the reset: {w:?}");
}

#[test]
fn downsampled_points_keep_exact_percentiles() {
    let mut agg = Aggregator::with_max_points(2, 4);
    // Ten seconds: nine fast, one slow with a tenth of all the requests.
    for s in 1..=10 {
        let d = if s == 5 {
            delta(s, 10, 800)
        } else {
            delta(s, 10, 4)
        };
        agg.merge(&d);
        agg.close_second(s, 1);
        agg.seal(s);
    }
    agg.finish(Duration::from_secs(10), 1);
    let snap = agg.snapshot(Duration::from_secs(10), None);
    assert!(snap.series.len() <= 4, "{}", snap.series.len());
    let merged = series::merge_points(&snap.series);
    let mut all = RequestStats::default();
    for r in &snap.requests {
        all.merge(r);
    }
    assert_eq!(merged.requests, all.count);
    assert_eq!(merged.latency.unpack().unwrap(), all.latency);
}
