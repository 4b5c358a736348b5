#!/usr/bin/env bash
# A Redis Cluster of three primaries and three replicas on free loopback
# ports, from the machine's redis-server (7 or newer, for sharded pub/sub).
#
#   scripts/redis-cluster.sh start DIR   starts it, waits until every node
#                                        agrees it is up, prints its seed list
#                                        (redis://127.0.0.1:P1,...) on stdout
#   scripts/redis-cluster.sh stop DIR    stops every node started in DIR
#
# Each node keeps its files (nodes.conf, log, pid) in DIR/<port>/. Nothing is
# saved to disk. CLUSTER_NODE_TIMEOUT_MS (default 2000) is how long a silent
# primary has before its replica takes over; drills lower it.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1 dir=$2

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

stop() {
  for pidfile in "$dir"/*/redis.pid; do
    [ -e "$pidfile" ] || continue
    kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

start() {
  mkdir -p "$dir"
  local ports=() port bus
  for _ in 1 2 3 4 5 6; do
    port=$(free_port)
    bus=$(free_port)
    mkdir -p "$dir/$port"
    redis-server --port "$port" --cluster-port "$bus" --bind 127.0.0.1 \
      --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" \
      --cluster-node-timeout "${CLUSTER_NODE_TIMEOUT_MS:-2000}" \
      --cluster-require-full-coverage no --repl-diskless-sync-delay 0 \
      --save '' --appendonly no --dir "$dir/$port" \
      --daemonize yes --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log"
    ports+=("$port")
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 100); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  local nodes=()
  for port in "${ports[@]}"; do nodes+=("127.0.0.1:$port"); done
  if ! redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1; then
    echo "redis-cli --cluster create failed:" >&2
    cat "$dir/create.log" >&2
    stop
    exit 1
  fi
  # Up when every node sees six nodes, three of them replicas, every slot
  # served, and the state ok, and every replica has synced with its primary
  # (a replica that never synced cannot take over).
  for _ in $(seq 1 300); do
    local ready=1
    for port in "${ports[@]}"; do
      local info
      info=$(redis-cli -p "$port" cluster info 2>/dev/null | tr -d '\r')
      if ! grep -q '^cluster_state:ok$' <<<"$info" || ! grep -q '^cluster_known_nodes:6$' <<<"$info" \
        || ! grep -q '^cluster_slots_ok:16384$' <<<"$info" \
        || [ "$(redis-cli -p "$port" cluster nodes 2>/dev/null | awk '$3 ~ /slave/' | wc -l)" != 3 ]; then
        ready=0
        break
      fi
      local replication
      replication=$(redis-cli -p "$port" info replication 2>/dev/null | tr -d '\r')
      if grep -q '^role:slave$' <<<"$replication" && ! grep -q '^master_link_status:up$' <<<"$replication"; then
        ready=0
        break
      fi
    done
    if [ "$ready" = 1 ]; then
      local seeds=()
      for port in "${ports[@]}"; do seeds+=("redis://127.0.0.1:$port"); done
      (IFS=,; echo "${seeds[*]}")
      return 0
    fi
    sleep 0.1
  done
  echo "the Redis Cluster in $dir did not come up; its nodes say:" >&2
  for port in "${ports[@]}"; do redis-cli -p "$port" cluster info >&2 || true; done
  stop
  exit 1
}

case $action in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
