#!/usr/bin/env bash
# Measures what `herald sim` costs per simulated player, in both modes: one
# SDK connection per player, and players multiplexed over shared connections.
# It builds herald, starts a private Mosquitto on a free port, publishes a
# descriptor, runs the simulation until every player is connected, reads the
# process's RSS, sends one filtered broadcast, stops the simulation with
# SIGINT and prints its summary. Everything it starts it stops.
#
#   scripts/sim-footprint.sh [players] [players-per-conn of the shared mode]
#
# Needs mosquitto and mosquitto_pub (scripts/services.sh installs them).
set -euo pipefail
players=${1:-3000}
shared=${2:-100}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'kill "${sim_pid:-}" "${broker_pid:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT

go build -o "$dir/herald" .
cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
max_queued_messages 100000
persistence false
log_dest none
$( [ "$(id -u)" = 0 ] && echo "user root" )
CONF
ulimit -n "$(ulimit -Hn)"
mosquitto -c "$dir/mosquitto.conf" & broker_pid=$!
until mosquitto_pub -h 127.0.0.1 -p "$port" -t probe -n 2>/dev/null; do sleep 0.1; done

pub() { mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 "$@"; }
ts() { date -u -d "${1:-now}" +%Y-%m-%dT%H:%M:%S.%3NZ; }
pub -r -t herald/bench/descriptor -m '{"v":1,"game":"bench","prefix":"herald","default_locale":"en","tags":{"region":{"values":["eu","na"]},"level":{"bands":[[1,29],[30,60]]}},"updated_at":"2026-11-27T10:00:00Z"}'

for per in 1 "$shared"; do
	"$dir/herald" sim --broker "tcp://127.0.0.1:$port" --game bench --players "$players" \
		--players-per-conn "$per" --ramp 0 --servers s1,s2,s3 --tag region=eu:60,na:40 --tag level=1..60 \
		--json >"$dir/summary.json" 2>"$dir/progress.log" &
	sim_pid=$!
	until grep -q " $players/$players players connected" "$dir/progress.log"; do
		kill -0 "$sim_pid" 2>/dev/null || { cat "$dir/progress.log"; exit 1; }
		sleep 0.2
	done
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$sim_pid/status")
	pub -t herald/bench/all/marquee/c1 -m "{\"v\":1,\"id\":\"d-$per\",\"campaign\":\"c1\",\"kind\":\"marquee\",\"game\":\"bench\",\"sent_at\":\"$(ts)\",\"expires_at\":\"$(ts '+1 hour')\",\"priority\":5,\"filter\":{\"tag\":\"region\",\"in\":[\"eu\"]},\"content\":{\"text\":{\"en\":\"hi\"},\"repeat\":1,\"interval_s\":0}}"
	sleep 3
	kill -INT "$sim_pid"
	wait "$sim_pid"
	echo "== $players players, $per per connection: RSS $((rss / 1024)) MiB, $((rss / players)) KiB per player"
	cat "$dir/summary.json"
done
