#!/usr/bin/env bash
# Requests per second with wrk (1 thread, 32 connections, loopback, bounded duration) against
# the servers of benches/throughput.rs. Usage: benches/throughput.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo bench --bench throughput --no-run 2>/dev/null
bin=$(ls -t target/release/deps/throughput-* | grep -v '\.d$' | head -1)
fifo=$(mktemp -u); mkfifo "$fifo"
out=$(mktemp)
"$bin" < "$fifo" > "$out" &
pid=$!
exec 3> "$fifo"
trap 'exec 3>&-; wait $pid 2>/dev/null; rm -f "$fifo" "$out"' EXIT
for _ in $(seq 50); do grep -q '^TOKEN' "$out" && break; sleep 0.1; done
token=$(awk '/^TOKEN/ {print $2}' "$out")
base=""
while read -r addr name; do
  [ "$addr" = TOKEN ] && continue
  rps=$(wrk -t1 -c32 -d"${secs}s" -H "Authorization: Bearer $token" "http://$addr/" | awk '/Requests\/sec/ {print $2}')
  [ "$name" = no-auth ] && base=$rps
  printf '%-16s %10s req/s  %s\n' "$name" "$rps" "$(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.1f %% of no-auth", 100 * a / b }')"
done < <(grep -v '^TOKEN' "$out")
