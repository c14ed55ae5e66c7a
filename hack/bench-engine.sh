#!/usr/bin/env bash
# bench-engine.sh - container latency and memory of the engine, measured
# through the docker CLI: berthd, next to dockerd when it is installed.
#
# Usage (as root, after `make build`):
#   hack/bench-engine.sh
#
# What it does:
#   - starts bin/berthd on its own socket, data root and exec root in a
#     temporary directory, and - when `dockerd` is installed (Debian's
#     docker.io) - a dockerd the same way (--bridge=none --iptables=false,
#     its own containerd); no other daemon or socket is touched;
#   - imports the same busybox root filesystem (built here from the host's
#     static busybox) as busybox:latest into each;
#   - run:  RUNS timed `docker run --rm --network none busybox true`;
#   - exec: RUNS timed rounds of `docker run -d --network none busybox
#     sleep 1000`, `docker exec CTR true`, `docker rm -f CTR`;
#     engines alternate sample by sample (A B, B A, ...) after WARMUP
#     untimed samples each, so both see the same machine conditions;
#   - memory: the daemon's idle RSS, then SLEEPERS `sleep` containers: the
#     RSS (VmRSS) and private memory (Private_Clean + Private_Dirty of
#     /proc/PID/smaps_rollup) of each container's monitor (the parent of
#     the container's init: berthd's shim, containerd-shim-runc-v2), and
#     the daemon's RSS delta per container.
#   - berthd only: RUNS `docker run --rm busybox true` on its default
#     bridge (the bench's own, --bridge) against --network none,
#     interleaved, and the difference of the medians;
#   - HTTP (wrk installed): busybox `httpd -f -p 80` in a container run with
#     -p HOSTPORT:80 on each engine, HTTP_ROUNDS rounds of `wrk -cHTTP_CONNS
#     -dHTTP_SECS` against http://127.0.0.1:HOSTPORT/, engines alternating;
#     dockerd is restarted for this with a bridge the bench creates (a free
#     10.N.77.0/24) and --iptables=true --ip-forward=false, userland proxy
#     default (so 127.0.0.1 goes through docker-proxy; berthd uses nftables
#     DNAT); its iptables chains and rules and the bridge are removed after.
#     httpd closes every connection (HTTP/1.0), so requests/s is new
#     connections/s through the port mapping.
# Everything is removed at the end, also on failure or Ctrl-C: containers,
# daemons, their mounts and directories, bridges, firewall tables and chains.
#
# The latency workloads use --network none on both engines (the container
# gets a network namespace with only lo, no bridge setup), so that they
# measure the same work. Each sample is bash's $EPOCHREALTIME around one docker CLI
# invocation, so it includes the CLI's own start-up and API version
# negotiation, the same for both engines.
#
# Environment:
#   RUNS=30        timed samples per engine and workload (at least 20)
#   WARMUP=3       untimed samples per engine first
#   PAUSE=0.2      seconds of rest before each sample, so that no sample
#                  pays for work the other engine does after its CLI returned
#                  (dockerd's containerd and shims finish a container
#                  asynchronously); 0 runs the samples back to back
#   SLEEPERS=10    containers running for the memory measurement
#   EXEC_BENCH=1   0 skips the run -d / exec / rm -f workload
#   HTTP_BENCH=1   0 skips the HTTP part; HTTP_SECS=5 HTTP_CONNS=4
#                  HTTP_ROUNDS=3 (per engine); WRK=wrk the client
#   DOCKER=docker  the docker CLI
#   DOCKERD=dockerd  the comparison daemon; "" (or not installed) skips it
#   BERTHD=bin/berthd
#
# The daemon plumbing (start, samples, tables, cleanup) is hack/lib/engines.sh,
# shared with bench-build.sh.
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
SLEEPERS=${SLEEPERS:-10}
PAUSE=${PAUSE:-0.2}
EXEC_BENCH=${EXEC_BENCH:-1}
HTTP_BENCH=${HTTP_BENCH:-1}
HTTP_SECS=${HTTP_SECS:-5}
HTTP_CONNS=${HTTP_CONNS:-4}
HTTP_ROUNDS=${HTTP_ROUNDS:-3}
WRK=${WRK:-wrk}
DOCKER=${DOCKER:-docker}
DOCKERD=${DOCKERD-dockerd}
BERTHD=${BERTHD:-$REPO/bin/berthd}
IMAGE=busybox:latest

# shellcheck source-path=SCRIPTDIR source=lib/engines.sh
. "$REPO/hack/lib/engines.sh"

[ "$(id -u)" = 0 ] || die "must run as root"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 20 ] || die "RUNS must be a number >= 20"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a number"
[[ "$PAUSE" =~ ^[0-9]*\.?[0-9]+$ ]] || die "PAUSE must be a number of seconds"
[[ "$HTTP_SECS" =~ ^[0-9]+$ ]] && [ "$HTTP_SECS" -ge 1 ] || die "HTTP_SECS must be a number >= 1"
[[ "$HTTP_CONNS" =~ ^[0-9]+$ ]] && [ "$HTTP_CONNS" -ge 1 ] || die "HTTP_CONNS must be a number >= 1"
[[ "$HTTP_ROUNDS" =~ ^[0-9]+$ ]] && [ "$HTTP_ROUNDS" -ge 1 ] || die "HTTP_ROUNDS must be a number >= 1"
[[ "$SLEEPERS" =~ ^[0-9]+$ ]] && [ "$SLEEPERS" -ge 1 ] || die "SLEEPERS must be a number >= 1"
find_engines

MONCOMM=()

# For the HTTP part, dockerd gets a bridge of its own (created here, on a
# private /24 that nothing routes yet) and --iptables=true. dockerd leaves
# its iptables chains and rules behind when it stops: docker_net_cleanup
# deletes the DOCKER* chains and the rules that jump to them or name its
# bridge or subnet, the iptables-nft tables that did not exist before and
# are empty again, and the bridge, and restores the sysctls dockerd sets.
DOCKER_BRIDGE=""
DOCKER_SUBNET=""
NFT_TABLES0=""
SYSCTLS=(net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables)
SYSCTL0=()

docker_net_setup() {
	local n k
	for ((k = 0; k < 50; k++)); do
		n=$((RANDOM % 200 + 20))
		ip -4 route show to match "10.$n.77.1" | grep -q '^10\.' && continue
		ip -4 addr | grep -q " 10\.$n\.77\." && continue
		DOCKER_SUBNET=10.$n.77.0/24
		break
	done
	[ -n "$DOCKER_SUBNET" ] || return 1
	if command -v nft >/dev/null; then NFT_TABLES0=$(nft list tables 2>/dev/null); fi
	for k in "${!SYSCTLS[@]}"; do
		SYSCTL0[k]=$(cat "/proc/sys/${SYSCTLS[$k]}" 2>/dev/null) || SYSCTL0[k]=""
	done
	DOCKER_BRIDGE=dbench$((RANDOM % 1000))
	ip link add "$DOCKER_BRIDGE" type bridge &&
		ip addr add "${DOCKER_SUBNET%.0/24}.1/24" dev "$DOCKER_BRIDGE" &&
		ip link set "$DOCKER_BRIDGE" up
}

docker_net_cleanup() {
	local ipt t c k rule fam p
	for ipt in iptables ip6tables; do
		command -v "$ipt" >/dev/null || continue
		[ "$ipt" = iptables ] && fam=ip || fam=ip6
		for t in filter nat; do
			# Rules of the built-in chains that lead to dockerd's chains or
			# name its bridge or subnet.
			"$ipt" -t "$t" -S 2>/dev/null | grep -E '^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) ' |
				grep -E -- "-j DOCKER|$DOCKER_BRIDGE|${DOCKER_SUBNET:-none}" | while read -ra rule; do
				rule[0]=-D
				"$ipt" -t "$t" "${rule[@]}" 2>/dev/null || true
			done || true
			for c in $("$ipt" -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ { print $2 }'); do
				"$ipt" -t "$t" -F "$c" 2>/dev/null || true
			done
			for c in $("$ipt" -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ { print $2 }'); do
				"$ipt" -t "$t" -X "$c" 2>/dev/null || true
			done
			# An iptables-nft table that the bench's dockerd created.
			if command -v nft >/dev/null && "$ipt" --version 2>/dev/null | grep -q nf_tables &&
				! grep -qx "table $fam $t" <<<"$NFT_TABLES0" &&
				nft list table "$fam" "$t" >/dev/null 2>&1 &&
				! "$ipt" -t "$t" -S 2>/dev/null | grep -qE '^-(A|N) '; then
				nft delete table "$fam" "$t" 2>/dev/null || true
			fi
		done
	done
	# docker-proxy processes of a dockerd that had to be killed.
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "docker-proxy .*-container-ip ${DOCKER_SUBNET%.0/24}\." &&
			kill -KILL "${p#/proc/}" 2>/dev/null
	done
	ip link del "$DOCKER_BRIDGE" 2>/dev/null || true
	for k in "${!SYSCTLS[@]}"; do
		[ -n "${SYSCTL0[$k]:-}" ] || continue
		[ "$(cat "/proc/sys/${SYSCTLS[$k]}" 2>/dev/null)" = "${SYSCTL0[$k]}" ] ||
			echo "${SYSCTL0[$k]}" >"/proc/sys/${SYSCTLS[$k]}" 2>/dev/null || true
	done
	DOCKER_BRIDGE=""
}

# cleanup_hook: run by cleanup (hack/lib/engines.sh) after the daemons.
cleanup_hook() {
	if [ -n "$DOCKER_BRIDGE" ]; then
		docker_net_cleanup || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_tmp berth-ebench

# rss_kb PID / private_kb PID: VmRSS; Private_Clean + Private_Dirty.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
private_kb() {
	awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s + 0 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0
}
# tree_rss_kb PID [EXCLUDED...]: VmRSS of PID and its descendants (dockerd's
# containerd), not counting the EXCLUDED processes and their descendants
# (monitors that are the daemon's children, and their containers).
tree_rss_kb() {
	local sum=0 p
	for p in "$1" $(descendants "$@"); do
		sum=$((sum + $(rss_kb "$p")))
	done
	echo "$sum"
}
descendants() {
	local c root=$1
	shift
	for c in $(cat /proc/"$root"/task/*/children 2>/dev/null); do
		[[ " $* " == *" $c "* ]] && continue
		echo "$c"
		descendants "$c" "$@"
	done
}
# daemon_pid J: the daemon process itself (dockerd runs under sh/unshare
# only until exec, so $! is the daemon).
daemon_pid() { echo "${PIDS[$1]}"; }

sample_run() { # FILE-PREFIX J
	sleep "$PAUSE"
	timed "$1.run.$2" "$2" run --rm --network none "$IMAGE" true
}

sample_brun() { # FILE-PREFIX J: the same on the default bridge
	sleep "$PAUSE"
	timed "$1.brun.$2" "$2" run --rm "$IMAGE" true
}

sample_exec() { # FILE-PREFIX J I
	local name=bench-exec-$3
	sleep "$PAUSE"
	timed "$1.rund.$2" "$2" run -d --network none --name "$name" "$IMAGE" sleep 1000 || return 0
	timed "$1.exec.$2" "$2" exec "$name" true || true
	timed "$1.rmf.$2" "$2" rm -f "$name" || true
}

# label METRIC: the metric's name in the tables.
label() {
	case $1 in
	run) echo "run --rm true" ;;
	rund) echo "run -d sleep" ;;
	exec) echo "exec true" ;;
	rmf) echo "rm -f (running)" ;;
	tot) echo "run -d+exec+rm -f" ;;
	brun) echo "run --rm true (bridge)" ;;
	esac
}

start_engines
print_engines

import_busybox "$IMAGE"
echo "# workload: docker run --rm --network none $IMAGE true (busybox imported from a $(($(stat -c %s "$TMP/busybox.tar") / 1024)) KiB tarball)"
echo "# $RUNS timed samples per engine after $WARMUP warm-ups, engines alternating sample by sample, ${PAUSE}s rest before each"

IDLE0=()
for j in "${!NAMES[@]}"; do
	IDLE0[j]=$(tree_rss_kb "$(daemon_pid "$j")")
done

# Warm-ups (also check that the workload works at all).
for j in "${!NAMES[@]}"; do
	for ((i = 0; i < WARMUP; i++)); do
		sample_run "$TMP/w" "$j" || die "${NAMES[$j]}: docker run failed"
		if [ "$EXEC_BENCH" = 1 ]; then sample_exec "$TMP/w" "$j" "w$i"; fi
	done
done
for ((i = 0; i < RUNS; i++)); do
	for j in $(order "$i"); do
		sample_run "$TMP/s" "$j" || true
	done
done
if [ "$EXEC_BENCH" = 1 ]; then
	for ((i = 0; i < RUNS; i++)); do
		for j in $(order "$i"); do
			sample_exec "$TMP/s" "$j" "$i"
		done
	done
	for j in "${!NAMES[@]}"; do
		# (samples whose three steps all succeeded)
		paste "$TMP/s.rund.$j" "$TMP/s.exec.$j" "$TMP/s.rmf.$j" 2>/dev/null |
			awk 'NF == 3 { print $1 + $2 + $3 }' >"$TMP/s.tot.$j" || true
	done
fi

table "latency through the docker CLI (ms)" run
if [ "$EXEC_BENCH" = 1 ]; then
	table "run -d / exec / rm -f of a sleep container (ms)" rund exec rmf tot
fi

# berthd only: its default bridge against --network none, interleaved.
for ((i = 0; i < WARMUP; i++)); do
	sample_brun "$TMP/w" 0 || die "berthd: docker run on the default bridge failed"
done
for ((i = 0; i < RUNS; i++)); do
	if [ $((i % 2)) = 0 ]; then
		sample_brun "$TMP/n" 0 || true
		sample_run "$TMP/n" 0 || true
	else
		sample_run "$TMP/n" 0 || true
		sample_brun "$TMP/n" 0 || true
	fi
done
echo
echo "== berthd: docker run --rm $IMAGE true on the default bridge ($BENCH_BRIDGE) vs --network none (ms)"
printf '%-22s %5s %10s %10s %10s %10s\n' WHAT N MEDIAN_MS P90_MS MIN_MS MAX_MS
for m in brun run; do
	touch "$TMP/n.$m.0"
	read -r n med p90 mn mx < <(stats "$TMP/n.$m.0")
	printf '%-22s %5d %10s %10s %10s %10s\n' "$(label "$m")" "$n" "$med" "$p90" "$mn" "$mx"
	declare "MED_$m=$med"
done
awk -v a="$MED_brun" -v b="$MED_run" 'BEGIN { printf "bridge - none (medians): %+.1f ms\n", a - b }'

# Memory.
echo
echo "== memory (KiB): daemon idle, and $SLEEPERS running 'sleep 1000' containers"
printf '%-8s %14s %14s %16s %18s %16s\n' ENGINE DAEMON_IDLE_0 DAEMON_IDLE MONITOR_RSS MONITOR_PRIVATE DAEMON_DELTA/CTR
for j in "${!NAMES[@]}"; do
	dp=$(daemon_pid "$j")
	sleep 1
	idle=$(tree_rss_kb "$dp")
	ids=()
	for ((i = 0; i < SLEEPERS; i++)); do
		id=$(dc "$j" run -d --network none "$IMAGE" sleep 1000) || die "${NAMES[$j]}: run -d failed"
		ids+=("$id")
	done
	sleep 2
	rss=() priv=() mons=()
	for id in "${ids[@]}"; do
		cpid=$(dc "$j" inspect -f '{{.State.Pid}}' "$id")
		mon=$(awk '{ print $4 }' "/proc/$cpid/stat")
		mons+=("$mon")
		rss+=("$(rss_kb "$mon")")
		priv+=("$(private_kb "$mon")")
		MONCOMM[j]=$(tr '\0' ' ' <"/proc/$mon/cmdline" | cut -d' ' -f1-2)
	done
	busy=$(tree_rss_kb "$dp" "${mons[@]}")
	printf '%-8s %14s %14s %16s %18s %16s\n' "${NAMES[$j]}" "${IDLE0[$j]}" "$idle" \
		"$(med "${rss[@]}")" "$(med "${priv[@]}")" "$(((busy - idle) / SLEEPERS))"
	dc "$j" rm -f "${ids[@]}" >/dev/null
done
echo "# DAEMON_IDLE_0: VmRSS of the daemon (and its children: dockerd's containerd) after start and"
echo "#   import; DAEMON_IDLE: the same after the latency runs; MONITOR_*: median over the $SLEEPERS"
echo "#   containers of the monitor process (the parent of the container's init):"
for j in "${!NAMES[@]}"; do
	echo "#   ${NAMES[$j]}: ${MONCOMM[$j]}"
done
echo "#   MONITOR_PRIVATE: Private_Clean+Private_Dirty; DAEMON_DELTA/CTR: daemon (tree minus"
echo "#   monitors, which are not its children) RSS growth with $SLEEPERS running, per container"

# HTTP through a published port: berthd (nftables DNAT), and dockerd
# restarted with a bridge of its own and --iptables=true.
http_round() { # J OUTFILE DURATION
	sleep "$PAUSE"
	"$WRK_PATH" -t "$((HTTP_CONNS < 2 ? HTTP_CONNS : 2))" -c "$HTTP_CONNS" -d "$3" \
		"http://127.0.0.1:${PORTS[$1]}/" >"$2" 2>&1 || true
}
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		[[ " ${PORTS[*]:-} " == *" $p "* ]] && continue
		ss -Htln "sport = :$p" | grep -q . || break
	done
	echo "$p"
}
if [ "$HTTP_BENCH" = 1 ]; then
	echo
	echo "== HTTP through a published port (requests/s): busybox httpd -f -p 80 in a container run with -p HOSTPORT:80,"
	echo "   wrk -c$HTTP_CONNS -d${HTTP_SECS}s http://127.0.0.1:HOSTPORT/, $HTTP_ROUNDS rounds per engine, engines alternating"
	if ! WRK_PATH=$(command -v "$WRK"); then
		echo "# $WRK not installed (apt-get install -y wrk): HTTP part skipped"
		HTTP_ENGINES=()
	else
		HTTP_ENGINES=(0)
	fi
	if [ ${#HTTP_ENGINES[@]} -gt 0 ] && [ ${#NAMES[@]} -gt 1 ]; then
		why=""
		if ! command -v iptables >/dev/null || ! command -v ip6tables >/dev/null; then
			why="iptables/ip6tables not installed"
		elif iptables -t nat -S 2>/dev/null | grep -q '^-N DOCKER' || iptables -t filter -S 2>/dev/null | grep -q '^-N DOCKER'; then
			why="DOCKER iptables chains exist already (another dockerd)"
		elif ! docker_net_setup; then
			why="could not create a bridge for it"
		fi
		if [ -z "$why" ]; then
			stop_engine 1
			if SOFT=1 start_dockerd 1 "$TMP/d2" --bridge="$DOCKER_BRIDGE" --iptables=true --ip-forward=false &&
				dc 1 import --change 'CMD ["sh"]' "$TMP/busybox.tar" "$IMAGE" >/dev/null; then
				HTTP_ENGINES=(0 1)
				echo "# dockerd restarted with --bridge=$DOCKER_BRIDGE ($DOCKER_SUBNET, created by the bench) --iptables=true --ip-forward=false, userland proxy default"
			else
				why="dockerd did not start with --bridge/--iptables=true (see above)"
				stop_engine 1
			fi
		fi
		[ -z "$why" ] || echo "# dockerd cannot do bridge networking here ($why): berthd alone"
	fi
	PORTS=()
	for j in "${HTTP_ENGINES[@]}"; do
		PORTS[j]=$(free_port)
		dc "$j" run -d --name bench-http -p "${PORTS[$j]}:80" "$IMAGE" sh -c \
			'mkdir -p /www && echo "hello from busybox httpd" >/www/index.html && exec httpd -f -p 80 -h /www' \
			>/dev/null || die "${NAMES[$j]}: docker run -p ${PORTS[$j]}:80 failed"
		for ((i = 0; i < 100; i++)); do
			# shellcheck disable=SC2016 # expanded by the inner shell
			timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf "GET / HTTP/1.0\r\n\r\n" >&3 && grep -q hello <&3' \
				"${PORTS[$j]}" 2>/dev/null && break
			sleep 0.1
		done
		[ "$i" -lt 100 ] || die "${NAMES[$j]}: no answer on 127.0.0.1:${PORTS[$j]}"
		http_round "$j" "$TMP/wrk.warm" 1s
	done
	for ((r = 0; r < HTTP_ROUNDS; r++)); do
		for j in $(order "$r"); do
			[[ " ${HTTP_ENGINES[*]} " == *" $j "* ]] || continue
			http_round "$j" "$TMP/wrk.$j.$r" "${HTTP_SECS}s"
			rps=$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk.$j.$r")
			[ -n "$rps" ] || { FAILS=$((FAILS + 1)); echo "${NAMES[$j]}: wrk failed: $(tail -n 3 "$TMP/wrk.$j.$r")" >&2; continue; }
			echo "$rps" >>"$TMP/rps.$j"
			printf '%-8s round %d: %10s req/s  %s\n' "${NAMES[$j]}" "$((r + 1))" "$rps" \
				"$(grep -E 'Socket errors|Non-2xx' "$TMP/wrk.$j.$r" | tr -s ' ' | paste -sd ';' -)"
		done
	done
	RPS=()
	for j in "${HTTP_ENGINES[@]}"; do
		touch "$TMP/rps.$j"
		RPS[j]=$(sort -n "$TMP/rps.$j" | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
		printf '%-8s median: %s req/s (127.0.0.1:%s)\n' "${NAMES[$j]}" "${RPS[$j]:-none}" "${PORTS[$j]}"
	done
	if [ ${#HTTP_ENGINES[@]} -gt 1 ] && [ -n "${RPS[0]}" ] && [ -n "${RPS[1]}" ]; then
		awk -v a="${RPS[0]}" -v b="${RPS[1]}" 'BEGIN { printf "berthd/dockerd median requests/s ratio: %.2fx\n", a / b }'
		proxy=$(for p in /proc/[0-9]*; do tr '\0' ' ' <"$p/cmdline" 2>/dev/null; echo; done |
			grep -E "docker-proxy .*-host-port ${PORTS[1]}( |$)" | grep -c -- '-host-ip 0.0.0.0' || true)
		if [ "${proxy:-0}" -gt 0 ]; then
			echo "# dockerd: 127.0.0.1:${PORTS[1]} goes through docker-proxy (its userland proxy; its nat DOCKER chain's DNAT is not applied to loopback)"
		else
			echo "# dockerd: no docker-proxy for ${PORTS[1]}: iptables DNAT"
		fi
	fi
	if [ ${#HTTP_ENGINES[@]} -gt 0 ]; then
		echo "# berthd: nftables DNAT in its table's output hook (route_localnet on its bridge), no proxy process"
		echo "# busybox httpd answers HTTP/1.0 and closes every connection: each request is a new TCP connection"
		echo "#   (connect, request, response, close) through the published port, and an httpd fork: the numbers"
		echo "#   are connections/s through the port mapping path, not keep-alive throughput"
	fi
	for j in "${HTTP_ENGINES[@]}"; do
		dc "$j" rm -f bench-http >/dev/null 2>&1 || true
	done
	if [ -n "$DOCKER_BRIDGE" ]; then
		stop_engine 1
		docker_net_cleanup
	fi
fi

check_fails
