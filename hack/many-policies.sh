#!/usr/bin/env bash
# Review latency with many PhiPolicies: the release binary serving tests/fixtures/cluster plus
# 1,000 PhiPolicies (copies of the baseline, or each with its own namespace scope), timed with a
# direct keep-alive HTTPS client: an ordinary PHI Deployment at c=1 and c=16, and one with
# 10,001 containers. The figures RELIABILITY.md gives for "cost grows with policies x size".
#   hack/many-policies.sh [same|scoped|none] [policies, default 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
set_kind=${1:-same}
count=${2:-1000}
bin=${PHI_GUARD_BIN:-target/release/phi-guard}
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$dir/tls.key" -out "$dir/tls.crt" >/dev/null 2>&1
python3 - "$dir" "$set_kind" "$count" <<'PY'
import copy, json, sys
d, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = json.load(open("tests/fixtures/admission/deployment-create-allowed.json"))
json.dump(base, open(f"{d}/ordinary.json", "w"), separators=(",", ":"))
big = copy.deepcopy(base)
spec = big["request"]["object"]["spec"]["template"]["spec"]
for i in range(10000):
    c = copy.deepcopy(spec["containers"][0]); c["name"] = f"c{i}"; spec["containers"].append(c)
json.dump(big, open(f"{d}/big.json", "w"), separators=(",", ":"))
with open(f"{d}/policies.yaml", "w") as f:
    for p in range(count if kind != "none" else 0):
        s = {"scope": {"namespaceSelector": {"matchLabels": {"team": f"p{p}"}}}} if kind == "scoped" else {}
        f.write("---\n" + json.dumps({"apiVersion": "phiguard.io/v1alpha1", "kind": "PhiPolicy",
                                      "metadata": {"name": f"policy-{p}"}, "spec": s}) + "\n")
PY
cat > "$dir/client.py" <<'PY'
import http.client, json, ssl, sys, threading, time
port, body, conc, n = int(sys.argv[1]), open(sys.argv[2], "rb").read(), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
lat, allowed, lock = [], set(), threading.Lock()
def work():
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=60)
    for _ in range(n):
        t = time.perf_counter()
        c.request("POST", "/validate", body, {"content-type": "application/json"})
        d = c.getresponse().read()
        with lock:
            lat.append((time.perf_counter() - t) * 1000)
            allowed.add(json.loads(d)["response"]["allowed"])
ts = [threading.Thread(target=work) for _ in range(conc)]
[t.start() for t in ts]; [t.join() for t in ts]
lat.sort()
print(f"{sys.argv[2].rsplit('/', 1)[-1]} c={conc} n={len(lat)} p50={lat[len(lat) // 2]:.2f} ms "
      f"p99={lat[int(len(lat) * 0.99)]:.2f} ms max={lat[-1]:.2f} ms allowed={sorted(allowed)}")
PY
port=$((20000 + RANDOM % 20000))
"$bin" serve --cluster-state tests/fixtures/cluster --cluster-state "$dir/policies.yaml" \
  --tls-cert-file "$dir/tls.crt" --tls-key-file "$dir/tls.key" --listen "127.0.0.1:$port" \
  --admin-listen 127.0.0.1:0 --log-format text --shutdown-delay 0s >"$dir/serve.log" 2>&1 &
pid=$!
up=
for _ in $(seq 100); do
  curl -sk -o /dev/null "https://localhost:$port/validate" -X POST -d '{}' && up=1 && break
  sleep 0.1
done
[ -n "$up" ] || { echo "phi-guard did not start:" >&2; tail -5 "$dir/serve.log" >&2; exit 1; }
echo "policies: $set_kind x $count; load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$dir/client.py" "$port" "$dir/ordinary.json" 1 200
python3 "$dir/client.py" "$port" "$dir/ordinary.json" 16 100
python3 "$dir/client.py" "$port" "$dir/big.json" 1 5
grep VmHWM "/proc/$pid/status"
