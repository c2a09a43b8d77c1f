//! The live web dashboard: serves snapshots to the browser and sends control messages.
