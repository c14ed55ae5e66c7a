#!/usr/bin/env bash
# crosshost.sh — the tutorial's cross-host scenario on one machine (root):
# two "hosts", each a network namespace running its own berthd (own data
# root, socket and default bridge: 172.17.0.1/16 and 172.18.0.1/16), linked
# by a veth pair 10.99.0.1 <-> 10.99.0.2, with routes to each other's
# container subnet (the tutorial's `route add -net ... gw ...`). A container
# on host 1 pings a container on host 2 by its address (both daemons run
# with --allow-direct-routing, as the routes need). Everything is
# removed at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "crosshost.sh: run as root" >&2; exit 1; }
BB=$(command -v busybox || true)
[ -n "$BB" ] || { echo "crosshost.sh: busybox not found" >&2; exit 1; }
[ -x bin/berthd ] && [ -x bin/berth ] || make -s build >/dev/null

WORK=$(mktemp -d /tmp/berth-xhost.XXXXXX)
TAG=$((RANDOM % 10000))
H1=bxh1-$TAG H2=bxh2-$TAG
PIDS=()
cleanup() {
	set +e
	for h in 1 2; do
		BERTH_HOST=unix://$WORK/h$h/berth.sock bin/berth rm -f c$h >/dev/null 2>&1
	done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	ip netns del "$H1" 2>/dev/null
	ip netns del "$H2" 2>/dev/null
	awk -v w="$WORK/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "== two hosts: network namespaces $H1 and $H2, linked by a veth"
ip netns add "$H1"
ip netns add "$H2"
ip link add "x1-$TAG" netns "$H1" type veth peer name "x2-$TAG" netns "$H2"
ip -n "$H1" addr add 10.99.0.1/24 dev "x1-$TAG"
ip -n "$H2" addr add 10.99.0.2/24 dev "x2-$TAG"
for h in "$H1" "$H2"; do ip -n "$h" link set lo up; done
ip -n "$H1" link set "x1-$TAG" up
ip -n "$H2" link set "x2-$TAG" up

# A busybox image, imported on both hosts.
R=$WORK/rootfs
mkdir -p "$R"/{bin,etc,tmp}
cp "$BB" "$R/bin/busybox"
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"
tar -C "$R" -cf "$WORK/busybox.tar" .

start() { # start N NETNS BIP
	local d=$WORK/h$1
	mkdir -p "$d"
	echo '{}' >"$d/daemon.json"
	nsenter --net="/run/netns/$2" "$PWD/bin/berthd" -H "unix://$d/berth.sock" --data-root "$d/data" --exec-root "$d/exec" \
		--pidfile "$d/berthd.pid" --config-file "$d/daemon.json" --bip "$3" --allow-direct-routing >"$d/berthd.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do BERTH_HOST=unix://$d/berth.sock bin/berth version >/dev/null 2>&1 && break; sleep 0.1; done
	BERTH_HOST=unix://$d/berth.sock bin/berth import -q "$WORK/busybox.tar" busybox >/dev/null 2>&1 ||
		BERTH_HOST=unix://$d/berth.sock bin/berth import "$WORK/busybox.tar" busybox >/dev/null
}
echo "== berthd on host 1 (--bip 172.17.0.1/16) and host 2 (--bip 172.18.0.1/16)"
start 1 "$H1" 172.17.0.1/16
start 2 "$H2" 172.18.0.1/16

echo "== routes, as the tutorial's route add -net ... gw ..."
ip -n "$H1" route add 172.18.0.0/16 via 10.99.0.2
ip -n "$H2" route add 172.17.0.0/16 via 10.99.0.1

b1() { BERTH_HOST=unix://$WORK/h1/berth.sock bin/berth "$@"; }
b2() { BERTH_HOST=unix://$WORK/h2/berth.sock bin/berth "$@"; }
b2 run -d --name c2 busybox sleep 300 >/dev/null
IP2=$(b2 inspect -f '{{.NetworkSettings.Networks.bridge.IPAddress}}' c2)
echo "container c2 on host 2: $IP2"
echo "== c1 on host 1 pings c2 on host 2"
b1 run --rm --name c1 busybox ping -c 3 -W 2 "$IP2"
echo "cross-host ping OK"
