#!/usr/bin/env bash
# The plan fuzzer (examples/fuzz_plans.rs): mutated real plans through the compiler,
# which must never panic. Not part of `cargo test`: a million cases take minutes.
#
#   bench/fuzz.sh [CASES] [SEED]    (defaults: 1000000 cases, seed 1)
#
# Environment: FUZZ_PROFILE (cargo profile, default release; CI uses dev to reuse the
# test build), FUZZ_SECONDS (stop after this long, whatever CASES says), FUZZ_OUT
# (where a panicking input is written, default fuzz-failures/).
# Replay one case with: cargo run --release --example fuzz_plans -- --seed S --case N
# Exit status: 0 no panic, 1 a panic (its input is in FUZZ_OUT), 2 usage.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-1000000}
SEED=${2:-1}
if [[ ! $CASES =~ ^[1-9][0-9]*$ || ! $SEED =~ ^[0-9]+$ ]]; then
	echo "usage: bench/fuzz.sh [CASES] [SEED]" >&2
	exit 2
fi
PROFILE=${FUZZ_PROFILE:-release}
cargo build --quiet --profile "$PROFILE" --example fuzz_plans
dir=$PROFILE
[[ $PROFILE == dev ]] && dir=debug
limit=()
[[ -z ${FUZZ_SECONDS:-} ]] || limit=(--max-seconds "$FUZZ_SECONDS")
exec "${CARGO_TARGET_DIR:-target}/$dir/examples/fuzz_plans" \
	--cases "$CASES" --seed "$SEED" --out "${FUZZ_OUT:-fuzz-failures}" "${limit[@]}"
