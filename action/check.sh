#!/usr/bin/env bash
# Runs `swarm check` for the GitHub Action (action.yml) and publishes its results as
# step outputs. The step fails exactly when swarm's exit code is non-zero: this script
# exits with swarm's own exit code.
#
# Inputs (environment, set by action.yml from the action's inputs):
#   SWARM_BIN          the swarm binary (from install.sh)
#   INPUT_PLAN         the plan file (required)
#   INPUT_TARGET       base URL (--target)
#   INPUT_VARS         newline-separated K=V plan variables (--var K=V each)
#   INPUT_ARGS         extra arguments, split on whitespace (no quoting)
#   INPUT_JSON         JSON report path (always written: the headline numbers come from it)
#   INPUT_JUNIT        JUnit report path (empty: none)
#   INPUT_SUMMARY      Markdown summary path (empty: swarm appends to $GITHUB_STEP_SUMMARY)
#   INPUT_BASELINE     an earlier JSON report to compare with (empty: none)
#   INPUT_MAX_REGRESSION  tolerance for the baseline gate, e.g. 10%
#
# Outputs ($GITHUB_OUTPUT): verdict (pass | fail | invalid | error | interrupted),
# exit-code, json, junit, summary, requests, error-rate (a fraction), p95-ms.
set -uo pipefail

log() { printf 'swarm-action: %s\n' "$*" >&2; }

output() {
	if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
		printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
	fi
}

bin=${SWARM_BIN:-swarm}
plan=${INPUT_PLAN:-}
if [[ -z "$plan" ]]; then
	printf '::error title=swarm::the action input "plan" is required\n'
	output verdict invalid
	output exit-code 2
	exit 2
fi
json=${INPUT_JSON:-swarm-report.json}

cmd=("$bin" check "$plan" --json "$json")
if [[ -n "${INPUT_TARGET:-}" ]]; then
	cmd+=(--target "$INPUT_TARGET")
fi
while IFS= read -r line || [[ -n "$line" ]]; do
	# Trim surrounding whitespace; skip blank lines and comments.
	line="${line#"${line%%[![:space:]]*}"}"
	line="${line%"${line##*[![:space:]]}"}"
	[[ -z "$line" || "$line" == \#* ]] && continue
	cmd+=(--var "$line")
done <<<"${INPUT_VARS:-}"
if [[ -n "${INPUT_JUNIT:-}" ]]; then
	cmd+=(--junit "$INPUT_JUNIT")
fi
if [[ -n "${INPUT_SUMMARY:-}" ]]; then
	cmd+=(--summary "$INPUT_SUMMARY")
fi
if [[ -n "${INPUT_BASELINE:-}" ]]; then
	cmd+=(--baseline "$INPUT_BASELINE")
	if [[ -n "${INPUT_MAX_REGRESSION:-}" ]]; then
		cmd+=(--max-regression "$INPUT_MAX_REGRESSION")
	fi
fi
if [[ -n "${INPUT_ARGS:-}" ]]; then
	# Word splitting without globbing: `--users 10 --duration 30s`.
	set -f
	read -r -d '' -a extra <<<"$INPUT_ARGS" || true
	set +f
	# (The guard keeps bash 3.2, macOS's, from calling an empty array unbound.)
	cmd+=(${extra[@]+"${extra[@]}"})
fi

# A report left by an earlier run must not pass for this one's (unless it is the
# baseline itself, which swarm reads before it writes the new report).
if [[ -z "${INPUT_BASELINE:-}" || ! "$json" -ef "${INPUT_BASELINE:-}" ]]; then
	rm -f "$json"
fi
# swarm writes reports into existing folders only.
for file in "$json" "${INPUT_JUNIT:-}" "${INPUT_SUMMARY:-}"; do
	[[ -n "$file" ]] && mkdir -p "$(dirname "$file")"
done
log "running: ${cmd[*]}"
"${cmd[@]}"
code=$?

case "$code" in
0) verdict=pass ;;
1) verdict=fail ;;
2) verdict=invalid ;;
130) verdict=interrupted ;;
*) verdict=error ;;
esac
output verdict "$verdict"
output exit-code "$code"
output junit "${INPUT_JUNIT:-}"
output summary "${INPUT_SUMMARY:-${GITHUB_STEP_SUMMARY:-}}"

# Headline numbers from the JSON report (absent when nothing ran, e.g. an invalid plan).
if [[ -s "$json" ]]; then
	output json "$json"
	# The JSON report's `total` holds the aggregate over all requests.
	query='[.total.count, .total.error_rate, .total.latency_ms.p95] | map(. // "" | tostring) | join(" ")'
	if command -v jq >/dev/null 2>&1; then
		numbers=$(jq -r "$query" "$json" 2>/dev/null) || numbers=""
	elif command -v python3 >/dev/null 2>&1; then
		numbers=$(python3 - "$json" <<'EOF' 2>/dev/null
import json, sys
t = json.load(open(sys.argv[1])).get("total", {})
vals = [t.get("count"), t.get("error_rate"), t.get("latency_ms", {}).get("p95")]
print(" ".join("" if v is None else str(v) for v in vals))
EOF
		) || numbers=""
	else
		numbers=""
		log "neither jq nor python3 found: the headline outputs stay empty"
	fi
	read -r requests error_rate p95 <<<"$numbers" || true
	output requests "${requests:-}"
	output error-rate "${error_rate:-}"
	output p95-ms "${p95:-}"
else
	output json ""
fi

log "swarm exited with $code ($verdict)"
exit "$code"
