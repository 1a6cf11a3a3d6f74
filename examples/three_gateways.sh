#!/usr/bin/env bash
# Three gateway replicas, one identity provider that rotates refresh tokens (and revokes the
# family when a rotated one comes back), one Redis: watch one refresh serve all three.
#
#   examples/three_gateways.sh [SECONDS]
#
# Needs redis-server, curl and openssl. Loopback only (ports 8080-8083 and 6390); stops
# everything it started after SECONDS (default 25). Access tokens live 10 s, so each gateway
# would refresh every 5 s on its own; the provider's count of refresh_token grants goes up by
# one per cycle, not by three, and reuse_detected stays 0.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-25}
cargo build -q --example server --example gateway
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT

redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" &
target/debug/examples/server --listen 127.0.0.1:8080 --access-ttl 10 >"$dir/server.log" &
up() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return; sleep 0.1; done; echo "$1 never answered" >&2; exit 1; }
up http://127.0.0.1:8080/public

field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
# A sign-in's refresh token for the gateways (an environment variable: `ps` does not show it),
# and the key their token set is sealed with in Redis.
GATEWAY_RT=$(curl -sf -X POST http://127.0.0.1:8080/dev/refresh-token | field refresh_token)
TOKEN_STORE_KEY=$(openssl rand -base64 32)
export GATEWAY_RT TOKEN_STORE_KEY
for port in 8081 8082 8083; do
  target/debug/examples/gateway --listen "127.0.0.1:$port" --upstream http://127.0.0.1:8080 \
    --refresh-token-env GATEWAY_RT --redis redis://127.0.0.1:6390/ \
    --store-key-env TOKEN_STORE_KEY >"$dir/gateway-$port.log" &
done
for port in 8081 8082 8083; do up "http://127.0.0.1:$port/api/me"; done

for second in $(seq "$seconds"); do
  # A caller's token of its own (they live 10 s too).
  caller=$(curl -sf -u demo:demo-secret -d grant_type=client_credentials -d scope=read \
    http://127.0.0.1:8080/oauth/token | field access_token)
  statuses=""
  for port in 8081 8082 8083; do
    statuses+="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $caller" \
      "http://127.0.0.1:$port/api/me") "
  done
  stats=$(curl -s http://127.0.0.1:8080/dev/token-stats)
  printf '%3ss  gateways %s  %s\n' "$second" "$statuses" "$stats"
  sleep 1
done
