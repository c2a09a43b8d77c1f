//! A run on many machines, with real processes: a coordinator (`swarm check
//! --coordinator`) and real `swarm worker`s on loopback, against a loopback target
//! that counts what it gets (and, in `netns`, in network namespaces joined by a veth
//! pair). Every wait is bounded; the tests take turns.

#[path = "../common/mod.rs"]
mod common;

#[cfg(feature = "ui")]
mod browser;
#[path = "../capacity/support.rs"]
#[expect(dead_code, reason = "only the capacity target is used here")]
mod capacity_target;
mod cluster;
mod early;
mod exact;
mod faults;
#[cfg(feature = "ui")]
mod gap;
mod hostile;
mod live;
mod loss;
mod netns;
mod runs;
mod search;
