//! The measurement unit's bytes: how a [`Delta`] crosses a network (or waits in a
//! ring of recent seconds), compactly and without losing anything.
//!
//! The envelope is four bytes, `SWM` and a format version, then the unit in
//! [postcard](https://docs.rs/postcard): a small, stable, non-self-describing serde
//! format whose integers are varints, so counters cost a byte or two. Every histogram
//! inside travels as its non-empty buckets ([`Buckets`]): for each, its index (as a
//! step from the previous one) and its count. Recording each count at its bucket's
//! value puts it back into the same bucket, so a decoded histogram equals the original
//! bucket for bucket: full precision.
//!
//! Why not HdrHistogram's own V2 encoding (version 4 of this format used it): a
//! receiver must then build a whole histogram (190 KB of counts) for each one it
//! decodes, then add it bucket by bucket, all 24,000 of them, into each total. A
//! coordinator merging every worker's units paid about 2 ms of CPU per worker-second
//! for that; with the buckets it records only the few hundred that hold counts, and
//! decodes a unit without allocating a histogram ([`decode_unit`], [`Unit`]). The size
//! is about V2's (V2+deflate would halve it, but a small frame could then inflate into
//! any size, and the receiver would pay the inflation for every histogram).
//!
//! Decoding never trusts its input: the version, the plan's request count, and every
//! bucket (indices ascending within swarm's latency histogram, counts that fit the
//! request count) are checked before anything is recorded, so a malformed unit is a
//! typed error, never a panic or a huge allocation.

use std::sync::Arc;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use super::delta::Delta;
use super::failure::FailureKind;
use super::stats::{LATENCY_HIGH_US, LATENCY_LOW_US, LATENCY_SIGFIG, RequestStats};

/// The first bytes of an encoded unit.
const MAGIC: [u8; 3] = *b"SWM";
/// The unit's format version; bump it on any change to what is encoded, including
/// the order of [`FailureKind`]'s variants (postcard encodes a variant by index).
pub const WIRE_VERSION: u8 = 5;

/// HdrHistogram's V2 cookie (for 8-byte counts) and the length of its header.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_HEADER: usize = 40;

/// Why bytes could not be read as a measurement unit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("not a measurement unit (bad magic bytes)")]
    Magic,
    #[error("measurement unit version {found}, this swarm reads version {WIRE_VERSION}")]
    Version { found: u8 },
    #[error("malformed measurement unit: {0}")]
    Malformed(String),
    #[error("the unit has {found} request names, the plan {expected}")]
    Requests { expected: usize, found: usize },
    #[error("a histogram is not swarm's latency histogram (1 µs to 1 h, 3 digits)")]
    HistogramShape,
    #[error("malformed histogram: {0}")]
    Histogram(String),
    #[error("inconsistent counts: {0}")]
    Counts(&'static str),
}

/// An HDR latency histogram in its V2 encoding: a few hundred bytes instead of the
/// 190 KB its counts take in memory, cheap to clone, and exact when unpacked.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PackedHistogram(Option<Arc<[u8]>>);

impl std::fmt::Debug for PackedHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedHistogram({} bytes)", self.bytes().len())
    }
}

impl PackedHistogram {
    /// Encodes `h` (empty histograms take no bytes).
    pub fn pack(h: &Histogram<u64>) -> PackedHistogram {
        if h.is_empty() {
            return PackedHistogram(None);
        }
        let mut buf = Vec::with_capacity(256);
        // Writing to a Vec cannot fail, and swarm's histograms are always encodable.
        match V2Serializer::new().serialize(h, &mut buf) {
            Ok(_) => PackedHistogram(Some(buf.into())),
            Err(_) => PackedHistogram(None),
        }
    }

    /// The encoded bytes (empty for an empty histogram).
    pub fn bytes(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Decodes the histogram, checking that it is swarm's latency histogram.
    pub fn unpack(&self) -> Result<Histogram<u64>, WireError> {
        match &self.0 {
            None => Ok(super::stats::latency_histogram()),
            Some(bytes) => decode_histogram(bytes),
        }
    }

    fn from_bytes(bytes: Vec<u8>) -> Result<PackedHistogram, WireError> {
        if bytes.is_empty() {
            return Ok(PackedHistogram(None));
        }
        check_header(&bytes)?;
        Ok(PackedHistogram(Some(bytes.into())))
    }
}

impl Serialize for PackedHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.bytes())
    }
}

impl<'de> Deserialize<'de> for PackedHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an encoded histogram")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        let bytes = d.deserialize_byte_buf(Bytes)?;
        PackedHistogram::from_bytes(bytes).map_err(serde::de::Error::custom)
    }
}

/// Checks a V2 header: the cookie, swarm's range and precision, and a payload length
/// that matches, before the decoder allocates anything from them.
fn check_header(bytes: &[u8]) -> Result<(), WireError> {
    let header = bytes
        .get(..V2_HEADER)
        .ok_or_else(|| WireError::Histogram("shorter than its header".into()))?;
    let u32_at =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[i..i + 8]);
        u64::from_be_bytes(b)
    };
    if u32_at(0) != V2_COOKIE {
        return Err(WireError::Histogram(
            "not an HdrHistogram V2 encoding".into(),
        ));
    }
    if u32_at(4) as usize != bytes.len() - V2_HEADER {
        return Err(WireError::Histogram("payload length does not match".into()));
    }
    let shape = (u32_at(12), u64_at(16), u64_at(24));
    if shape != (u32::from(LATENCY_SIGFIG), LATENCY_LOW_US, LATENCY_HIGH_US) {
        return Err(WireError::HistogramShape);
    }
    Ok(())
}

fn decode_histogram(bytes: &[u8]) -> Result<Histogram<u64>, WireError> {
    check_header(bytes)?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| WireError::Histogram(format!("{e:?}")))
}

/// One request name's stats as they travel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitStats {
    pub count: u64,
    pub failures: u64,
    pub bytes: u64,
    pub latency: Buckets,
    pub reasons: Vec<(FailureKind, u64)>,
    pub versions: [u64; 3],
}

/// A unit as it travels, and as a receiver merges it: a [`Delta`] whose histograms
/// are their non-empty buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub epoch: u64,
    pub second: u64,
    pub start_unix_ms: u64,
    pub iterations: u64,
    pub dropped: u64,
    pub active: u32,
    pub lag: Buckets,
    pub requests: Vec<UnitStats>,
}

impl UnitStats {
    /// Adds these stats into `r`, exactly (as [`RequestStats::merge`] does).
    pub fn add_to(&self, r: &mut RequestStats) {
        for (total, n) in r.versions.iter_mut().zip(self.versions) {
            *total += n;
        }
        r.count += self.count;
        r.failures += self.failures;
        r.bytes += self.bytes;
        self.latency.add_to(&mut r.latency);
        for (kind, n) in &self.reasons {
            *r.reasons.entry(*kind).or_insert(0) += n;
        }
    }
}

impl Unit {
    /// Requests of every name.
    pub fn requests_total(&self) -> u64 {
        self.requests.iter().map(|r| r.count).sum()
    }

    /// Adds the unit into `delta`, exactly (as [`Delta::merge`] does).
    pub fn add_to(&self, delta: &mut Delta) {
        for (total, r) in delta.requests.iter_mut().zip(&self.requests) {
            r.add_to(total);
        }
        if delta.start_unix_ms == 0
            || (self.start_unix_ms != 0 && self.start_unix_ms < delta.start_unix_ms)
        {
            delta.start_unix_ms = self.start_unix_ms;
        }
        delta.iterations += self.iterations;
        delta.dropped += self.dropped;
        delta.active += self.active;
        self.lag.add_to(&mut delta.lag);
    }

    /// The unit with whole histograms.
    pub fn to_delta(&self) -> Delta {
        let mut delta = Delta::new(self.requests.len());
        self.add_to(&mut delta);
        delta.epoch = self.epoch;
        delta.second = self.second;
        delta.start_unix_ms = self.start_unix_ms;
        delta
    }
}

/// A latency histogram as it travels: its non-empty buckets, ascending, each as its
/// index among the histogram's buckets and its count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buckets(Vec<(u32, u64)>);

/// The bucket layout of swarm's latency histogram (1 µs to 1 h, 3 significant
/// digits): HdrHistogram's, for a lowest value of 1 (no unit shift) and 2,048
/// sub-buckets (2 × 10³ rounded up to a power of two), halves of 1,024. A test checks
/// every bucket against the library.
const SUB_HALF_MAGNITUDE: u32 = 10;
const SUB_HALF: u64 = 1 << SUB_HALF_MAGNITUDE;
const SUB_MASK: u64 = (SUB_HALF << 1) - 1;

/// How many buckets swarm's latency histogram has.
fn bucket_count() -> u32 {
    static COUNT: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| super::stats::latency_histogram().distinct_values() as u32)
}

/// The bucket that holds `value` (HdrHistogram's `index_for`).
fn index_for(value: u64) -> u32 {
    let bucket = 64 - (SUB_HALF_MAGNITUDE + 1) - (value | SUB_MASK).leading_zeros();
    let sub = value >> bucket;
    (((u64::from(bucket) + 1) << SUB_HALF_MAGNITUDE) + sub - SUB_HALF) as u32
}

/// The lowest value bucket `index` holds (HdrHistogram's `value_for`).
fn value_for(index: u32) -> u64 {
    let index = u64::from(index);
    let mut sub = (index & (SUB_HALF - 1)) + SUB_HALF;
    let bucket = match (index >> SUB_HALF_MAGNITUDE).checked_sub(1) {
        Some(b) => b,
        None => {
            sub -= SUB_HALF;
            0
        }
    };
    sub << bucket
}

impl Buckets {
    /// The non-empty buckets of `h` (one of swarm's latency histograms).
    pub fn of(h: &Histogram<u64>) -> Buckets {
        if h.is_empty() {
            return Buckets::default();
        }
        Buckets(
            h.iter_recorded()
                .map(|v| (index_for(v.value_iterated_to()), v.count_at_value()))
                .collect(),
        )
    }

    /// Values recorded in all (`None` past `u64::MAX`).
    fn total(&self) -> Option<u64> {
        self.0
            .iter()
            .try_fold(0u64, |sum, (_, n)| sum.checked_add(*n))
    }

    /// Records every bucket's count into `h` (one of swarm's latency histograms), in
    /// the bucket it came from.
    pub fn add_to(&self, h: &mut Histogram<u64>) {
        for &(index, count) in &self.0 {
            // Decoding checked every index against the histogram's buckets.
            let _ = h.record_n(value_for(index), count);
        }
    }
}

impl Serialize for Buckets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        let mut previous = 0;
        for &(index, count) in &self.0 {
            // Indices ascend: the step from the previous one is a one-byte varint
            // where buckets are dense.
            seq.serialize_element(&(index - previous, count))?;
            previous = index;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Buckets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Buckets;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a histogram's buckets")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Buckets, A::Error> {
                use serde::de::Error;
                // A claimed length allocates nothing beyond what the frame can hold.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                let mut index = 0u32;
                while let Some((step, count)) = seq.next_element::<(u32, u64)>()? {
                    if (step == 0 && !out.is_empty()) || count == 0 {
                        return Err(A::Error::custom("histogram buckets out of order or empty"));
                    }
                    index = index
                        .checked_add(step)
                        .filter(|i| *i < bucket_count())
                        .ok_or_else(|| A::Error::custom("a bucket beyond the histogram's"))?;
                    out.push((index, count));
                }
                Ok(Buckets(out))
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// Encodes a unit: the envelope, then the unit.
pub fn encode(delta: &Delta) -> Vec<u8> {
    let wire = Unit {
        epoch: delta.epoch,
        second: delta.second,
        start_unix_ms: delta.start_unix_ms,
        iterations: delta.iterations,
        dropped: delta.dropped,
        active: delta.active,
        lag: Buckets::of(&delta.lag),
        requests: delta
            .requests
            .iter()
            .map(|r| UnitStats {
                count: r.count,
                failures: r.failures,
                bytes: r.bytes,
                latency: Buckets::of(&r.latency),
                reasons: r.reasons.iter().map(|(k, n)| (*k, *n)).collect(),
                versions: r.versions,
            })
            .collect(),
    };
    let mut out = Vec::with_capacity(64 + 256 * delta.requests.len());
    out.extend_from_slice(&MAGIC);
    out.push(WIRE_VERSION);
    // Serializing plain integers, byte strings and enums into a Vec cannot fail.
    postcard::to_io(&wire, &mut out).expect("a unit always serializes");
    out
}

/// Decodes a unit of a plan with `requests` request names, with whole histograms.
pub fn decode(bytes: &[u8], requests: usize) -> Result<Delta, WireError> {
    decode_unit(bytes, requests).map(|unit| unit.to_delta())
}

/// Decodes a unit of a plan with `requests` request names, for merging: no
/// histogram is built, each one's buckets are recorded wherever it is added.
pub fn decode_unit(bytes: &[u8], requests: usize) -> Result<Unit, WireError> {
    if bytes.get(..3) != Some(&MAGIC[..]) {
        return Err(WireError::Magic);
    }
    match bytes.get(3) {
        Some(&WIRE_VERSION) => {}
        Some(&found) => return Err(WireError::Version { found }),
        None => return Err(WireError::Magic),
    }
    let unit: Unit =
        postcard::from_bytes(&bytes[4..]).map_err(|e| WireError::Malformed(e.to_string()))?;
    if unit.requests.len() != requests {
        return Err(WireError::Requests {
            expected: requests,
            found: unit.requests.len(),
        });
    }
    for r in &unit.requests {
        let reasons = r
            .reasons
            .iter()
            .try_fold(0u64, |sum, (_, n)| sum.checked_add(*n));
        let versions = r
            .versions
            .iter()
            .try_fold(0u64, |sum, n| sum.checked_add(*n));
        let latencies = r.latency.total();
        if r.failures > r.count
            || reasons != Some(r.failures)
            || latencies.is_none_or(|n| n > r.count)
            || versions.is_none_or(|v| v > r.count)
        {
            return Err(WireError::Counts(
                "failures, reasons, latencies and versions must fit the count",
            ));
        }
    }
    if unit.lag.total().is_none() {
        return Err(WireError::Counts("lag samples overflow"));
    }
    Ok(unit)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
