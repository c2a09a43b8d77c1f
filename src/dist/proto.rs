//! The coordinator protocol: the messages a coordinator and its workers exchange, and
//! the frame each one travels in (one WebSocket binary message per frame).
//!
//! A frame is four bytes, `SWD` and [`PROTOCOL`], then the message in postcard. The
//! measurement unit inside a [`Up::Unit`] keeps its own envelope
//! (`crate::metrics::wire`), so either can change version alone. Every message of a
//! run carries the run's id: a message from another run (a worker replaying what it
//! sent to an earlier coordinator) is refused, not merged.
//!
//! Decoding never trusts its input: frames over the receiver's limit are refused by
//! the WebSocket layer before they are read whole, and a bad magic, another version or
//! malformed postcard is a typed [`FrameError`].

use serde::{Deserialize, Serialize};

use crate::engine::remote::ThreadCmd;

/// The protocol version, in every frame and in the WebSocket path. Bump it on any
/// change to the messages below.
pub const PROTOCOL: u8 = 2;
/// Where workers connect (the HTTP upgrade to a WebSocket).
pub const PATH: &str = "/swarm/worker/v1";
/// The largest frame a coordinator reads from a worker: a second's unit of a plan with
/// hundreds of request names fits many times over.
pub const MAX_UP_FRAME: usize = 1 << 20;
/// The largest frame a worker reads from its coordinator (the plan and its data files).
pub const MAX_DOWN_FRAME: usize = 256 << 20;

const MAGIC: [u8; 3] = *b"SWD";

/// A run's id: every message of the run carries it.
pub type RunId = [u8; 16];

/// Why bytes are not a frame of this protocol.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("not a swarm coordinator frame (bad magic bytes)")]
    Magic,
    #[error("protocol version {found}, this swarm speaks version {PROTOCOL}")]
    Version { found: u8 },
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// From a worker to its coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Up {
    /// The first message: who the worker is and the threads it offers.
    Hello {
        name: String,
        /// The worker's swarm version (shown; the protocol version is what must match).
        version: String,
        threads: u32,
    },
    /// The plan compiled to this fingerprint and the worker is ready to start.
    Ready { run: RunId, fingerprint: [u8; 32] },
    /// The worker cannot run the plan.
    Failed { run: RunId, error: String },
    /// One second's unit of the worker's threads, merged (`metrics::wire` bytes), and
    /// the worker's watermark: every unit for the seconds up to `through` has been
    /// sent (this one included). The coordinator makes a second final only once every
    /// live worker's watermark has passed it.
    Unit {
        run: RunId,
        unit: Vec<u8>,
        through: u64,
    },
    /// What one of its threads told the controller (the run-wide thread index).
    Event {
        run: RunId,
        thread: u32,
        event: Event,
    },
    /// Once a second: what the dashboard's workers table shows.
    Status { run: RunId, status: Status },
    /// Every thread ended and its last unit was sent.
    Done { run: RunId },
}

/// A worker's figures for one second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub users: u32,
    pub requests_per_s: f64,
    pub cpu_percent: f64,
    pub lag_p99_ms: f64,
    /// The worker's own generator verdict.
    pub saturated: Option<String>,
}

/// A thread's event (but its units, which travel merged as [`Up::Unit`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Completed(u64),
    NeedTickets { starving: bool },
    Returned(u64),
    FeederExhausted { feeder: String },
    Stopping { active: u32 },
}

/// From the coordinator to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Down {
    /// The plan to compile and the worker's part of the run.
    Plan(Box<PlanMsg>),
    /// Start the threads: the run's origin is `in_ms` from now, and its wall-clock time.
    Start {
        run: RunId,
        in_ms: u64,
        wall_unix_ms: u64,
    },
    /// A command for one of the worker's threads (run-wide index).
    Cmd { run: RunId, thread: u32, cmd: Cmd },
    /// The coordinator refuses the worker; the connection closes after it.
    Refused { reason: String },
}

/// A plan file and everything needed to compile it as the coordinator did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanMsg {
    pub run: RunId,
    /// The plan's file name (its extension decides the format).
    pub file: String,
    pub text: String,
    /// Data files, by path relative to the plan's folder.
    pub files: Vec<(String, Vec<u8>)>,
    /// `--var`, `--target`, `--users`, `--duration` as the coordinator got them.
    pub vars: Vec<(String, String)>,
    pub target: Option<String>,
    pub users: Option<u32>,
    pub duration_ms: Option<u64>,
    /// The values of the environment variables the plan names, from the coordinator.
    pub env: Vec<(String, String)>,
    /// What the worker must compile the plan to.
    pub fingerprint: [u8; 32],
    /// The worker's threads: `count` from run-wide index `first`, of `total`.
    pub first: u32,
    pub count: u32,
    pub total: u32,
    /// This worker's index among `workers` (for `unique` feeders' rows).
    pub index: u32,
    pub workers: u32,
    /// `--insecure` on the coordinator: skip the target's certificate checks.
    pub insecure: bool,
}

/// A controller command, as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Cmd {
    SetUsers(u32),
    SetRate { at_us: u64, rate: f64 },
    Reset(u64),
    Tickets(u64),
    LastCall,
    Reclaim,
    Stop,
}

impl From<&ThreadCmd> for Cmd {
    fn from(cmd: &ThreadCmd) -> Cmd {
        match cmd {
            ThreadCmd::SetUsers(n) => Cmd::SetUsers(*n),
            ThreadCmd::SetRate { at, rate } => Cmd::SetRate {
                at_us: u64::try_from(at.as_micros()).unwrap_or(u64::MAX),
                rate: *rate,
            },
            ThreadCmd::Reset(e) => Cmd::Reset(*e),
            ThreadCmd::Tickets(n) => Cmd::Tickets(*n),
            ThreadCmd::LastCall => Cmd::LastCall,
            ThreadCmd::Reclaim => Cmd::Reclaim,
            ThreadCmd::Stop => Cmd::Stop,
        }
    }
}

impl From<Cmd> for ThreadCmd {
    fn from(cmd: Cmd) -> ThreadCmd {
        match cmd {
            Cmd::SetUsers(n) => ThreadCmd::SetUsers(n),
            Cmd::SetRate { at_us, rate } => ThreadCmd::SetRate {
                at: std::time::Duration::from_micros(at_us),
                rate,
            },
            Cmd::Reset(e) => ThreadCmd::Reset(e),
            Cmd::Tickets(n) => ThreadCmd::Tickets(n),
            Cmd::LastCall => ThreadCmd::LastCall,
            Cmd::Reclaim => ThreadCmd::Reclaim,
            Cmd::Stop => ThreadCmd::Stop,
        }
    }
}

/// Encodes a message into a frame.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.push(PROTOCOL);
    // Plain integers, strings, byte strings and enums into a Vec cannot fail.
    postcard::to_io(msg, &mut out).expect("a message always serializes");
    out
}

/// Decodes a frame.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, FrameError> {
    if bytes.get(..3) != Some(&MAGIC[..]) {
        return Err(FrameError::Magic);
    }
    match bytes.get(3) {
        Some(&PROTOCOL) => {}
        Some(&found) => return Err(FrameError::Version { found }),
        None => return Err(FrameError::Magic),
    }
    postcard::from_bytes(&bytes[4..]).map_err(|e| FrameError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_bytes_are_typed_errors() {
        let up = Up::Event {
            run: [7; 16],
            thread: 3,
            event: Event::NeedTickets { starving: true },
        };
        let bytes = encode(&up);
        assert_eq!(decode::<Up>(&bytes), Ok(up));
        assert_eq!(decode::<Up>(b"GET / HTTP/1.1"), Err(FrameError::Magic));
        assert_eq!(decode::<Up>(b"SW"), Err(FrameError::Magic));
        let mut other = bytes.clone();
        other[3] = PROTOCOL + 1;
        assert_eq!(
            decode::<Up>(&other),
            Err(FrameError::Version {
                found: PROTOCOL + 1
            })
        );
        assert!(matches!(
            decode::<Up>(&bytes[..bytes.len() - 1]),
            Err(FrameError::Malformed(_))
        ));
        // A length prefix claiming far more than the frame holds allocates nothing.
        let huge = [b'S', b'W', b'D', PROTOCOL, 1, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(matches!(decode::<Up>(&huge), Err(FrameError::Malformed(_))));
    }

    #[test]
    fn commands_keep_their_meaning_across_the_wire() {
        let cmds = [
            ThreadCmd::SetUsers(9),
            ThreadCmd::SetRate {
                at: std::time::Duration::from_millis(1500),
                rate: 12.5,
            },
            ThreadCmd::Reset(2),
            ThreadCmd::Tickets(40),
            ThreadCmd::LastCall,
            ThreadCmd::Reclaim,
            ThreadCmd::Stop,
        ];
        for cmd in cmds {
            let back: ThreadCmd = decode::<Cmd>(&encode(&Cmd::from(&cmd))).unwrap().into();
            assert_eq!(back, cmd);
        }
    }
}
