#!/usr/bin/env bash
# The peak RSS of the release binary judging one (or N at once) large review, as a multiple of
# the body: the figure RELIABILITY.md and the chart's memory formula rest on.
#   hack/large-review-memory.sh [concurrent reviews, default 1] [body bytes, default 2900000]
# Prints the body size, RSS before, peak RSS (VmHWM) after, and the growth per review / body.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1}
bytes=${2:-2900000}
bin=${PHI_GUARD_BIN:-target/release/phi-guard}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$dir/tls.key" -out "$dir/tls.crt" >/dev/null 2>&1
# A compliant PHI Deployment with tens of thousands of PVC volumes (as tests/limits.rs builds it).
python3 - "$bytes" > "$dir/review.json" <<'PY'
import json, sys
v = json.load(open("tests/fixtures/admission/deployment-create-allowed.json"))
vols = v["request"]["object"]["spec"]["template"]["spec"]["volumes"]
size, i = 2000, 0
while size < int(sys.argv[1]):
    vol = {"name": f"v{i}", "persistentVolumeClaim": {"claimName": "data"}}
    size += len(json.dumps(vol, separators=(",", ":"))) + 1
    vols.append(vol)
    i += 1
json.dump(v, sys.stdout, separators=(",", ":"))
PY
port=$((20000 + RANDOM % 20000))
"$bin" serve --cluster-state tests/fixtures/cluster --tls-cert-file "$dir/tls.crt" \
  --tls-key-file "$dir/tls.key" --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 \
  --log-format text --shutdown-delay 0s >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sk -o /dev/null "https://localhost:$port/validate" -X POST -H 'content-type: application/json' -d '{}' && break
  sleep 0.1
done
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
before=$(kb VmRSS)
clients=()
for _ in $(seq "$n"); do
  curl -sk -o /dev/null -w '%{http_code} ' "https://localhost:$port/validate" -X POST \
    -H 'content-type: application/json' --data-binary "@$dir/review.json" &
  clients+=($!)
done
wait "${clients[@]}"
echo
peak=$(kb VmHWM)
size=$(stat -c %s "$dir/review.json")
awk -v s="$size" -v b="$before" -v p="$peak" -v n="$n" 'BEGIN {
  printf "body %.2f MB, %d at once: RSS before %.1f MiB, peak %.1f MiB, growth %.1f MiB = %.1f x the body per review\n",
    s / 1e6, n, b / 1024, p / 1024, (p - b) / 1024, (p - b) * 1024 / s / n }'
