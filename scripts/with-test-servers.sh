#!/usr/bin/env bash
# Starts redis-server, a Redis Cluster (3 primaries + 3 replicas), FerretDB
# (SQLite handler) and s3s-fs (S3 over a directory) on free loopback ports,
# exports TEST_REDIS_URL, TEST_REDIS_CLUSTER_URLS, TEST_MONGODB_URI,
# TEST_S3_ENDPOINT with the AWS_* credentials for it (and HELM, TEST_JAEGER and TEST_FERRETDB
# for tests that run their own), runs the given
# command, and stops the servers whatever happens. Nothing listens on a fixed port.
set -euo pipefail

GOBIN="${GOBIN:-$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin}"
FERRETDB="$GOBIN/ferretdb"

work="$(mktemp -d "${TMPDIR:-/tmp}/chatterbox-test.XXXXXX")"
pids=()
here="$(cd "$(dirname "$0")" && pwd)"
cleanup() {
  "$here/redis-cluster.sh" stop "$work/redis-cluster" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits (bounded) until something accepts TCP connections on the port.
wait_for_port() {
  local port=$1 name=$2
  for _ in $(seq 1 300); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $port)))" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$name did not start on port $port; its log:" >&2
  cat "$work/$name.log" >&2 || true
  exit 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no --logfile "$work/redis.log" &
pids+=($!)

ferret_port=$(free_port)
mkdir -p "$work/ferretdb"
"$FERRETDB" --handler=sqlite --sqlite-url="file:$work/ferretdb/" \
  --listen-addr="127.0.0.1:$ferret_port" --debug-addr=- --telemetry=disable \
  --log-level=warn >"$work/ferretdb.log" 2>&1 &
pids+=($!)

S3S_FS="$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")"
s3_port=$(free_port)
s3_key="test-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
s3_secret="$(python3 -c 'import secrets; print(secrets.token_hex(20))')"
mkdir -p "$work/s3"
"$S3S_FS" --host 127.0.0.1 --port "$s3_port" --access-key "$s3_key" --secret-key "$s3_secret" \
  "$work/s3" >"$work/s3s-fs.log" 2>&1 &
pids+=($!)

# The cluster comes up while the others start.
cluster_urls="$("$here/redis-cluster.sh" start "$work/redis-cluster")"

wait_for_port "$redis_port" redis
wait_for_port "$ferret_port" ferretdb
wait_for_port "$s3_port" s3s-fs

export TEST_REDIS_URL="redis://127.0.0.1:$redis_port/"
export TEST_REDIS_CLUSTER_URLS="$cluster_urls"
export TEST_MONGODB_URI="mongodb://127.0.0.1:$ferret_port/?directConnection=true"
export TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
# Drills start a FerretDB of their own, to stop and start it.
export TEST_FERRETDB="$FERRETDB"
export AWS_ACCESS_KEY_ID="$s3_key" AWS_SECRET_ACCESS_KEY="$s3_secret" AWS_REGION=us-east-1
# The chart tests render with this helm (make test-deps builds it).
export HELM="${HELM:-$GOBIN/helm}"
export TEST_JAEGER="${TEST_JAEGER:-$GOBIN/jaeger-v1.75.0}"
echo "test servers: redis $TEST_REDIS_URL, redis cluster $TEST_REDIS_CLUSTER_URLS, ferretdb $TEST_MONGODB_URI, s3 $TEST_S3_ENDPOINT" >&2

"$@"
