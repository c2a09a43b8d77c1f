//! The measurement unit's bytes: how a [`Delta`] crosses a network (or waits in a
//! ring of recent seconds), compactly and without losing anything.
//!
//! The envelope is four bytes, `SWM` and a format version, then the unit in
//! [postcard](https://docs.rs/postcard): a small, stable, non-self-describing serde
//! format whose integers are varints, so counters cost a byte or two. Every histogram
//! inside is HdrHistogram's own V2 encoding (the one every HdrHistogram port reads),
//! full precision: a decoded histogram equals the original bucket for bucket.
//!
//! V2 already run-length encodes empty buckets with zig-zag varints: 1,000 latencies
//! spread over 1-100 ms take 1.5 KB (against 190 KB of counts in memory). HdrHistogram's
//! V2+deflate halves that (0.75 KB), but it is not used: the receiver would have to
//! inflate before it can check a histogram's header, so a small frame could inflate
//! into any size, and a coordinator would pay the inflation for every histogram of
//! every worker-second. A transport can still compress whole frames, within limits it
//! sets (see the size test in `wire_tests.rs`).
//!
//! Decoding never trusts its input: the version, the plan's request count and every
//! histogram's header (range and precision) are checked before anything is allocated
//! from them, so a malformed unit is a typed error, never a panic or a huge allocation.

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
pub const WIRE_VERSION: u8 = 4;

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

/// One request name's stats as encoded.
#[derive(Serialize, Deserialize)]
struct WireStats {
    count: u64,
    failures: u64,
    bytes: u64,
    latency: PackedHistogram,
    reasons: Vec<(FailureKind, u64)>,
    versions: [u64; 3],
}

/// The unit as encoded.
#[derive(Serialize, Deserialize)]
struct WireDelta {
    epoch: u64,
    second: u64,
    start_unix_ms: u64,
    iterations: u64,
    dropped: u64,
    active: u32,
    lag: PackedHistogram,
    requests: Vec<WireStats>,
}

/// Encodes a unit: the envelope, then the unit.
pub fn encode(delta: &Delta) -> Vec<u8> {
    let wire = WireDelta {
        epoch: delta.epoch,
        second: delta.second,
        start_unix_ms: delta.start_unix_ms,
        iterations: delta.iterations,
        dropped: delta.dropped,
        active: delta.active,
        lag: PackedHistogram::pack(&delta.lag),
        requests: delta
            .requests
            .iter()
            .map(|r| WireStats {
                count: r.count,
                failures: r.failures,
                bytes: r.bytes,
                latency: PackedHistogram::pack(&r.latency),
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

/// Decodes a unit of a plan with `requests` request names.
pub fn decode(bytes: &[u8], requests: usize) -> Result<Delta, WireError> {
    if bytes.get(..3) != Some(&MAGIC[..]) {
        return Err(WireError::Magic);
    }
    match bytes.get(3) {
        Some(&WIRE_VERSION) => {}
        Some(&found) => return Err(WireError::Version { found }),
        None => return Err(WireError::Magic),
    }
    let wire: WireDelta =
        postcard::from_bytes(&bytes[4..]).map_err(|e| WireError::Malformed(e.to_string()))?;
    if wire.requests.len() != requests {
        return Err(WireError::Requests {
            expected: requests,
            found: wire.requests.len(),
        });
    }
    let mut stats = Vec::with_capacity(requests);
    for r in wire.requests {
        let latency = r.latency.unpack()?;
        let reasons: u64 = r.reasons.iter().map(|(_, n)| n).sum();
        let versions = r
            .versions
            .iter()
            .try_fold(0u64, |sum, n| sum.checked_add(*n));
        if r.failures > r.count
            || reasons != r.failures
            || latency.len() > r.count
            || versions.is_none_or(|v| v > r.count)
        {
            return Err(WireError::Counts(
                "failures, reasons, latencies and versions must fit the count",
            ));
        }
        stats.push(RequestStats {
            count: r.count,
            failures: r.failures,
            bytes: r.bytes,
            latency,
            reasons: r.reasons.into_iter().collect(),
            versions: r.versions,
        });
    }
    Ok(Delta {
        epoch: wire.epoch,
        second: wire.second,
        start_unix_ms: wire.start_unix_ms,
        requests: stats,
        iterations: wire.iterations,
        dropped: wire.dropped,
        active: wire.active,
        lag: wire.lag.unpack()?,
    })
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
