use std::time::Duration;

use hdrhistogram::serialization::V2DeflateSerializer;
use proptest::prelude::*;

use super::*;
use crate::compile::graph::ExpectId;
use crate::metrics::failure::{CheckFailure, ProtocolFailure, TransportFailure};

/// A unit like a busy second's: three request names, latencies spread over two
/// decades, a few failures of several kinds, lag samples.
fn busy_unit(seed: u64) -> Delta {
    let mut d = Delta::new(3);
    d.epoch = 2;
    d.second = 17;
    d.start_unix_ms = 1_700_000_016_000;
    d.iterations = 900;
    d.dropped = 3;
    d.active = 40;
    let mut x = seed | 1;
    for i in 0..3000u64 {
        // xorshift: deterministic, spread-out latencies from 1 ms to about 100 ms.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let us = 1_000 + x % 99_000;
        let outcome = match i % 97 {
            0 => Err(FailureKind::Transport(TransportFailure::Timeout)),
            1 => Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(503))),
            2 => Err(FailureKind::Check(CheckFailure::Expect(ExpectId(1)))),
            _ => Ok(()),
        };
        d.requests[(i % 3) as usize].record(Duration::from_micros(us), 512, outcome);
        if i % 50 == 0 {
            crate::metrics::stats::record_latency(&mut d.lag, Duration::from_micros(x % 3_000));
        }
    }
    d
}

#[test]
fn a_unit_round_trips_exactly() {
    let d = busy_unit(7);
    let bytes = encode(&d);
    let back = decode(&bytes, 3).unwrap();
    assert_eq!(back, d);
    // An empty unit round-trips too, and is tiny.
    let empty = Delta::new(3);
    let bytes = encode(&empty);
    assert!(bytes.len() < 40, "{} bytes", bytes.len());
    assert_eq!(decode(&bytes, 3).unwrap(), empty);
}

#[test]
fn every_bucket_maps_as_hdrhistogram_maps_it() {
    let h = crate::metrics::stats::latency_histogram();
    assert_eq!(bucket_count() as usize, h.distinct_values());
    for i in 0..bucket_count() {
        let v = value_for(i);
        assert_eq!(h.lowest_equivalent(v), v, "bucket {i}");
        assert_eq!(index_for(v), i, "bucket {i}");
        assert_eq!(index_for(h.highest_equivalent(v)), i, "bucket {i}");
        if i + 1 < bucket_count() {
            assert_eq!(value_for(i + 1), h.next_non_equivalent(v), "bucket {i}");
        }
    }
    assert!(h.highest_equivalent(value_for(bucket_count() - 1)) >= LATENCY_HIGH_US);
}

#[test]
fn buckets_out_of_order_or_range_are_typed_errors() {
    let frame = |latency: Vec<(u32, u64)>| {
        let mut unit = Unit {
            epoch: 0,
            second: 1,
            start_unix_ms: 0,
            iterations: 0,
            dropped: 0,
            active: 0,
            lag: Buckets::default(),
            requests: vec![],
        };
        unit.requests.push(UnitStats {
            count: 10,
            failures: 0,
            bytes: 0,
            latency: Buckets(latency),
            reasons: vec![],
            versions: [0; 3],
        });
        let mut out = MAGIC.to_vec();
        out.push(WIRE_VERSION);
        postcard::to_io(&unit, &mut out).unwrap();
        out
    };
    assert!(decode_unit(&frame(vec![(5, 2), (9, 3)]), 1).is_ok());
    for bad in [
        vec![(bucket_count(), 1)],
        vec![(5, 2), (5, 1)],
        vec![(5, 0)],
        vec![(5, 11)],
    ] {
        assert!(
            matches!(
                decode_unit(&frame(bad.clone()), 1),
                Err(WireError::Malformed(_) | WireError::Counts(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn buckets_are_as_compact_as_v2_and_deflate_does_not_pay() {
    let d = busy_unit(11);
    let unit = encode(&d).len();
    let h = &d.requests[0].latency;
    let v2 = PackedHistogram::pack(h).bytes().len();
    let mut deflated = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut deflated)
        .unwrap();
    eprintln!(
        "1,000 latencies over 1-100 ms: V2 {v2} bytes, V2+deflate {} bytes; \
         a 3-name unit of 3,000 requests: {unit} bytes",
        deflated.len()
    );
    let buckets = postcard::to_allocvec(&Buckets::of(h)).unwrap().len();
    eprintln!("the same histogram's buckets: {buckets} bytes");
    // Measured: V2 1,515 bytes, V2+deflate 750, buckets 1,695; the unit 4,771 bytes
    // in V2 (version 4), 5,256 in buckets, versus 190 KB for one histogram's counts in
    // memory.
    assert!(v2 < 4_000, "{v2}");
    assert!(buckets < 4_000, "{buckets}");
    assert!(unit < 12_000, "{unit}");
}

#[test]
fn malformed_units_are_typed_errors() {
    let good = encode(&busy_unit(3));
    assert_eq!(decode(b"nope", 3), Err(WireError::Magic));
    assert_eq!(decode(b"", 3), Err(WireError::Magic));
    let mut v9 = good.clone();
    v9[3] = 9;
    assert_eq!(decode(&v9, 3), Err(WireError::Version { found: 9 }));
    assert_eq!(
        decode(&good, 2),
        Err(WireError::Requests {
            expected: 2,
            found: 3
        })
    );
    // Every truncation and a flipped byte anywhere is an error or a valid unit,
    // never a panic.
    for n in 0..good.len() {
        let _ = decode(&good[..n], 3);
    }
    for i in (4..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[i] ^= 0x5a;
        let _ = decode(&bad, 3);
    }
}

#[test]
fn a_histogram_of_another_shape_is_refused_before_decoding() {
    let mut other = Histogram::<u64>::new_with_bounds(1, u64::MAX / 2, 5).unwrap();
    other.record(12).unwrap();
    let mut bytes = Vec::new();
    V2Serializer::new().serialize(&other, &mut bytes).unwrap();
    assert_eq!(
        PackedHistogram::from_bytes(bytes).unwrap_err(),
        WireError::HistogramShape
    );
}

/// A list of units, each a list of (request, latency µs, failure) records.
fn units() -> impl Strategy<Value = Vec<Vec<(usize, u64, Option<u16>)>>> {
    let record = (
        0..3usize,
        1..5_000_000u64,
        proptest::option::weighted(0.1, 400..600u16),
    );
    proptest::collection::vec(proptest::collection::vec(record, 0..200), 1..6)
}

fn build(records: &[(usize, u64, Option<u16>)], second: u64) -> Delta {
    let mut d = Delta::new(3);
    d.second = second;
    d.start_unix_ms = 1_000 * second;
    for (i, &(req, us, status)) in records.iter().enumerate() {
        let outcome = status.map_or(Ok(()), |s| {
            Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(s)))
        });
        d.requests[req].record(Duration::from_micros(us), i as u64, outcome);
        d.iterations += 1;
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Merging decoded units equals merging the originals, exactly: every
    /// percentile, min, max, count, and the histograms bucket for bucket.
    #[test]
    fn merging_decoded_units_equals_merging_the_originals(units in units()) {
        let originals: Vec<Delta> = units.iter().enumerate().map(|(i, u)| build(u, i as u64 + 1)).collect();
        let mut merged = Delta::new(3);
        let mut merged_decoded = Delta::new(3);
        for d in &originals {
            merged.merge(d);
            merged_decoded.merge(&decode(&encode(d), 3).unwrap());
        }
        prop_assert_eq!(&merged, &merged_decoded);
        for (a, b) in merged.requests.iter().zip(&merged_decoded.requests) {
            prop_assert_eq!(a.count, b.count);
            prop_assert_eq!(a.latency.len(), b.latency.len());
            prop_assert_eq!(a.latency.min(), b.latency.min());
            prop_assert_eq!(a.latency.max(), b.latency.max());
            let tail = [99.5, 99.9, 99.99, 99.999];
            for q in (0..=100).map(f64::from).chain(tail) {
                prop_assert_eq!(a.latency.value_at_percentile(q), b.latency.value_at_percentile(q));
            }
        }
    }
}
