#!/usr/bin/env bash
# Requests per second with wrk (1 thread, 32 connections, loopback) against the servers of
# benches/throughput.rs, in interleaved rounds so that drift on a shared machine lands on every
# server alike: each round runs every server for SECONDS, in a rotated order, and a server's
# share is the median over rounds of its rate over the same round's no-auth rate.
# Bounded: ROUNDS × 3 × SECONDS in all.
# Usage: benches/throughput.sh [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
rounds=${2:-7}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo bench -p portcullis-benches --bench throughput --no-run 2>/dev/null
bin=$(ls -t target/release/deps/throughput-* | grep -v '\.d$' | sed -n 1p)
fifo=$(mktemp -u); mkfifo "$fifo"
out=$(mktemp)
runs=$(mktemp)
"$bin" serve < "$fifo" > "$out" &
pid=$!
exec 3> "$fifo"
trap 'exec 3>&-; wait $pid 2>/dev/null; rm -f "$fifo" "$out" "$runs"' EXIT
for _ in $(seq 50); do grep -q '^TOKEN' "$out" && break; sleep 0.1; done
token=$(awk '/^TOKEN/ {print $2}' "$out")
mapfile -t servers < <(grep -v '^TOKEN' "$out")
count=${#servers[@]}
for r in $(seq 0 $((rounds - 1))); do
  for i in $(seq 0 $((count - 1))); do
    read -r addr name <<< "${servers[$(( (i + r) % count ))]}"
    rps=$(wrk -t1 -c32 -d"${secs}s" -H "Authorization: Bearer $token" "http://$addr/" | awk '/Requests\/sec/ {print $2}')
    echo "$r $name $rps" >> "$runs"
  done
done
# Per round: each server's rate over the no-auth rate of the same round; the median of those.
printf '%-16s %-48s %s\n' server "req/s per round" "share of no-auth (median of rounds)"
awk '
  { rps[$1, $2] = $3; names[$2] = 1; if ($1 + 1 > rounds) rounds = $1 + 1 }
  END {
    for (n in names) {
      line = ""; k = 0
      for (r = 0; r < rounds; r++) { line = line sprintf("%d ", rps[r, n]); share[++k] = rps[r, n] / rps[r, "no-auth"] }
      # insertion sort, then the middle
      for (i = 2; i <= k; i++) { v = share[i]; for (j = i - 1; j >= 1 && share[j] > v; j--) share[j + 1] = share[j]; share[j + 1] = v }
      printf "%-16s %-48s %.1f %%\n", n, line, 100 * share[int((k + 1) / 2)]
    }
  }' "$runs" | sort
