//! A run on many machines, with real processes: a coordinator (`swarm check
//! --coordinator`) and real `swarm worker`s on loopback, against a loopback target
//! that counts what it gets (and, in `netns`, in network namespaces joined by a veth
//! pair). Every wait is bounded; the tests take turns.

#[path = "../common/mod.rs"]
mod common;

mod cluster;
mod exact;
mod faults;
mod hostile;
mod live;
mod netns;
mod runs;
