#!/usr/bin/env bash
# Prints a plan of N flows (default 1,000), each with a templated GET checked by a
# JSONPath and a templated JSON POST: the compiler's scale benchmark
# (docs/benchmarks.md, "A plan with 1,000 flows").
#
#   bench/flows.sh [N] > /tmp/flows.yaml && /usr/bin/time target/release/swarm validate /tmp/flows.yaml
set -euo pipefail
n=${1:-1000}
if [[ ! $n =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: bench/flows.sh [N]" >&2
	exit 2
fi
printf 'name: thousand\ntarget: http://127.0.0.1:8080\nload: { users: %d, duration: 10s }\nflows:\n' "$n"
for ((i = 0; i < n; i++)); do
	cat <<YAML
  - name: flow$i
    think: 100ms..300ms
    steps:
      - get: /products/$i?page={{ rand(1, 5) }}
        name: product $i
        expect: { status: 200, json: { \$.items: { len: { gte: 1 } } } }
      - post: /cart
        json: { id: "{{ rand(1, 100) }}", qty: 2 }
YAML
done
