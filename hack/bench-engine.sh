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
# Everything is removed at the end, also on failure or Ctrl-C: containers,
# daemons, their mounts and directories.
#
# Both engines run the identical workload with --network none (berthd has
# no bridge networking yet; the container gets a network namespace with
# only lo). Each sample is bash's $EPOCHREALTIME around one docker CLI
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
#   DOCKER=docker  the docker CLI
#   DOCKERD=dockerd  the comparison daemon; "" (or not installed) skips it
#   BERTHD=bin/berthd
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
SLEEPERS=${SLEEPERS:-10}
PAUSE=${PAUSE:-0.2}
EXEC_BENCH=${EXEC_BENCH:-1}
DOCKER=${DOCKER:-docker}
DOCKERD=${DOCKERD-dockerd}
BERTHD=${BERTHD:-$REPO/bin/berthd}
IMAGE=busybox:latest

die() {
	echo "bench-engine.sh: $*" >&2
	exit 2
}

[ "$(id -u)" = 0 ] || die "must run as root"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 20 ] || die "RUNS must be a number >= 20"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a number"
[[ "$PAUSE" =~ ^[0-9]*\.?[0-9]+$ ]] || die "PAUSE must be a number of seconds"
[[ "$SLEEPERS" =~ ^[0-9]+$ ]] && [ "$SLEEPERS" -ge 1 ] || die "SLEEPERS must be a number >= 1"
[ -x "$BERTHD" ] || die "$BERTHD not found: run 'make build' first"
DOCKER=$(command -v "$DOCKER") || die "docker CLI not found"
if [ -n "$DOCKERD" ] && DOCKERD_PATH=$(command -v "$DOCKERD"); then
	:
else
	DOCKERD_PATH=""
fi

# Engines: index 0 is berthd, 1 dockerd (when installed).
NAMES=(berthd)
HOSTS=()
PIDS=()
NEW_CGROUPS=()
TMP=""
CLEANING=0

# dc J ARGS...: the docker CLI against engine J.
dc() {
	local j=$1
	shift
	DOCKER_HOST=${HOSTS[$j]} "$DOCKER" "$@"
}

# pids_under DIR: processes whose command line mentions DIR (the daemons,
# berthd's monitors, dockerd's containerd and shims).
pids_under() {
	local p
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = "$$" ] && continue
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$1" && echo "${p#/proc/}"
	done
	return 0
}

# The bench daemon's own default bridge (a daemon keeps its bridge when it
# stops; cleanup removes it).
BENCH_BRIDGE=bbench$((RANDOM % 1000))

cleanup() {
	local rc=$? j i pid
	[ "$CLEANING" = 1 ] && return
	CLEANING=1
	trap '' INT TERM
	for j in "${!PIDS[@]}"; do
		pid=${PIDS[$j]}
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
		# Containers first, through the daemon, then the daemon itself.
		# shellcheck disable=SC2046 # one argument per container ID
		ids=$(timeout 30 env DOCKER_HOST="${HOSTS[$j]}" "$DOCKER" ps -aq 2>/dev/null) || ids=""
		if [ -n "$ids" ]; then
			# shellcheck disable=SC2086
			timeout 60 env DOCKER_HOST="${HOSTS[$j]}" "$DOCKER" rm -f $ids >/dev/null 2>&1 || true
		fi
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 200; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		# Whatever survived (monitors, shims, containerd, their containers).
		for pid in $(pids_under "$TMP/"); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		sleep 0.2
		awk -v p="$TMP/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo |
			sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
		rm -rf --one-file-system "$TMP" || echo "bench-engine.sh: could not remove $TMP" >&2
	fi
	ip link del "$BENCH_BRIDGE" 2>/dev/null || true
	# The parent cgroups that our dockerd created (empty by now).
	for c in "${NEW_CGROUPS[@]}"; do
		rmdir "$c" 2>/dev/null || true
	done
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Short paths: unix socket paths are limited to 108 bytes.
TMP=$(mktemp -d /tmp/berth-ebench.XXXXXX)
chmod 0755 "$TMP"
export DOCKER_CONFIG=$TMP/cli # no user config, contexts or credential helpers
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
mkdir -p "$DOCKER_CONFIG"

# busybox root filesystem tarball from the host's static busybox.
make_tarball() {
	local dir=$TMP/rootfs bb="" c a
	for c in /usr/bin/busybox /bin/busybox; do
		[ -x "$c" ] && bb=$c && break
	done
	[ -n "$bb" ] || die "no busybox: apt-get install busybox-static"
	if command -v file >/dev/null && ! file -L "$bb" | grep -q 'statically linked'; then
		die "$bb is not statically linked: apt-get install busybox-static"
	fi
	mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,dev,etc,proc,sys,run,var,root,tmp}
	chmod 1777 "$dir/tmp"
	chmod 0700 "$dir/root"
	cp "$bb" "$dir/bin/busybox"
	for a in $("$dir/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$dir/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
	tar -C "$dir" --numeric-owner -cf "$TMP/busybox.tar" .
	rm -rf "$dir"
}

# wait_ping J LOG: wait until engine J answers (30 s).
wait_ping() {
	local j=$1 log=$2 i
	for ((i = 0; i < 300; i++)); do
		dc "$j" version --format '{{.Server.Version}}' >/dev/null 2>&1 && return 0
		kill -0 "${PIDS[$j]}" 2>/dev/null || {
			tail -n 20 "$log" >&2
			die "${NAMES[$j]} exited at start"
		}
		sleep 0.1
	done
	tail -n 20 "$log" >&2
	die "${NAMES[$j]} did not answer within 30s"
}

start_berthd() {
	local d=$TMP/b
	mkdir -p "$d"
	echo '{}' >"$d/daemon.json"
	HOSTS[0]=unix://$d/berthd.sock
	"$BERTHD" -H "${HOSTS[0]}" --data-root "$d/data" --exec-root "$d/exec" --bridge "$BENCH_BRIDGE" \
		--pidfile "$d/berthd.pid" --config-file "$d/daemon.json" \
		>"$d/berthd.log" 2>&1 </dev/null &
	PIDS[0]=$!
	wait_ping 0 "$d/berthd.log"
}

# dockerd with its own socket, roots, and its own containerd: when a system
# containerd socket exists, dockerd would use that one, so it then runs in a
# private mount namespace in which /run/containerd is an empty tmpfs (its
# mounts then also stay in that namespace and go with it).
start_dockerd() {
	local d=$TMP/d j=${#NAMES[@]}
	mkdir -p "$d"
	echo '{}' >"$d/daemon.json"
	NAMES[j]=dockerd
	HOSTS[j]=unix://$d/docker.sock
	local args=(-H "${HOSTS[$j]}" --data-root "$d/data" --exec-root "$d/exec"
		--pidfile "$d/docker.pid" --config-file "$d/daemon.json"
		--bridge=none --iptables=false --ip-masq=false --ip-forward=false
		--userland-proxy=false --log-level=warn)
	if [ -S /run/containerd/containerd.sock ]; then
		DOCKERD_NOTE="private mount namespace hiding the system containerd"
		# shellcheck disable=SC2016 # expanded by the inner shell
		unshare -m --propagation private -- sh -c \
			'mount -t tmpfs -o size=1m tmpfs /run/containerd && exec "$0" "$@"' \
			"$DOCKERD_PATH" "${args[@]}" >"$d/dockerd.log" 2>&1 </dev/null &
	else
		DOCKERD_NOTE="own containerd"
		"$DOCKERD_PATH" "${args[@]}" >"$d/dockerd.log" 2>&1 </dev/null &
	fi
	PIDS[j]=$!
	wait_ping "$j" "$d/dockerd.log"
}

# dockerd puts containers under a "docker" cgroup in every hierarchy;
# remember the ones that do not exist yet, to remove them at the end.
note_docker_cgroups() {
	local h
	for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
		[ -d "$h" ] && [ ! -L "$h" ] || continue
		[ -f "$h/cgroup.procs" ] || continue
		[ -e "$h/docker" ] || NEW_CGROUPS+=("$h/docker")
	done
}

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
# med N...: the median of the numbers.
med() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
# daemon_pid J: the daemon process itself (dockerd runs under sh/unshare
# only until exec, so $! is the daemon).
daemon_pid() { echo "${PIDS[$1]}"; }

# stats FILE: "n median p90 min max" in ms from samples in µs (p90 by
# nearest rank).
stats() {
	sort -n "$1" | awk '
		{ v[NR] = $1 }
		END {
			n = NR
			if (n == 0) { print "0 nan nan nan nan"; exit }
			med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			k = int(0.9 * n); if (k < 0.9 * n) k++; if (k < 1) k = 1
			printf "%d %.1f %.1f %.1f %.1f\n", n, med / 1000, v[k] / 1000, v[1] / 1000, v[n] / 1000
		}'
}

FAILS=0
MONCOMM=()
# timed FILE J ARGS...: one docker CLI call against engine J, its wall time
# in µs appended to FILE; failures are counted and shown.
timed() {
	local f=$1 j=$2 t0 t1 rc=0
	shift 2
	t0=$EPOCHREALTIME
	dc "$j" "$@" >"$TMP/out" 2>&1 </dev/null || rc=$?
	t1=$EPOCHREALTIME
	if [ "$rc" -ne 0 ]; then
		FAILS=$((FAILS + 1))
		echo "${NAMES[$j]}: docker $* failed ($rc): $(tail -n 3 "$TMP/out")" >&2
		return 1
	fi
	echo $((${t1/./} - ${t0/./})) >>"$f"
}

# order I: the engine indexes for sample I, alternating A B / B A.
order() {
	local n=${#NAMES[@]} k
	if [ $(($1 % 2)) = 0 ]; then
		for ((k = 0; k < n; k++)); do echo "$k"; done
	else
		for ((k = n - 1; k >= 0; k--)); do echo "$k"; done
	fi
}

sample_run() { # FILE-PREFIX J
	sleep "$PAUSE"
	timed "$1.run.$2" "$2" run --rm --network none "$IMAGE" true
}

sample_exec() { # FILE-PREFIX J I
	local name=bench-exec-$3
	sleep "$PAUSE"
	timed "$1.rund.$2" "$2" run -d --network none --name "$name" "$IMAGE" sleep 1000 || return 0
	timed "$1.exec.$2" "$2" exec "$name" true || true
	timed "$1.rmf.$2" "$2" rm -f "$name" || true
}

# table TITLE METRIC...: per engine median/p90/min/max of each metric, and
# dockerd/berthd of the medians.
table() {
	local title=$1 m j n med p90 mn mx
	shift
	echo
	echo "== $title"
	printf '%-22s %-8s %5s %10s %10s %10s %10s\n' WHAT ENGINE N MEDIAN_MS P90_MS MIN_MS MAX_MS
	for m in "$@"; do
		local meds=()
		for j in "${!NAMES[@]}"; do
			touch "$TMP/s.$m.$j"
			read -r n med p90 mn mx < <(stats "$TMP/s.$m.$j")
			meds[j]=$med
			printf '%-22s %-8s %5d %10s %10s %10s %10s\n' "$(label "$m")" "${NAMES[$j]}" "$n" "$med" "$p90" "$mn" "$mx"
		done
		if [ ${#NAMES[@]} -gt 1 ]; then
			awk -v a="${meds[1]}" -v b="${meds[0]}" -v w="$(label "$m")" \
				'BEGIN { if (b > 0) printf "%-22s dockerd/berthd median ratio: %.2fx\n", w, a / b }'
		fi
	done
}
label() {
	case $1 in
	run) echo "run --rm true" ;;
	rund) echo "run -d sleep" ;;
	exec) echo "exec true" ;;
	rmf) echo "rm -f (running)" ;;
	tot) echo "run -d+exec+rm -f" ;;
	esac
}

make_tarball
start_berthd
if [ -n "$DOCKERD_PATH" ]; then
	note_docker_cgroups
	start_dockerd
fi

echo "# $(uname -r), $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# docker CLI $(dc 0 version --format '{{.Client.Version}}' 2>/dev/null) ($DOCKER)"
for j in "${!NAMES[@]}"; do
	if [ "${NAMES[$j]}" = berthd ]; then
		echo "# berthd: $BERTHD (API $(dc "$j" version --format '{{.Server.APIVersion}}' 2>/dev/null))"
	else
		echo "# dockerd $(dc "$j" version --format '{{.Server.Version}}' 2>/dev/null): $DOCKERD_PATH ($DOCKERD_NOTE; storage $(dc "$j" info --format '{{.Driver}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}' 2>/dev/null))"
	fi
done
[ -n "$DOCKERD_PATH" ] || echo "# dockerd not installed: no comparison"

for j in "${!NAMES[@]}"; do
	dc "$j" import --change 'CMD ["sh"]' "$TMP/busybox.tar" "$IMAGE" >/dev/null ||
		die "${NAMES[$j]}: docker import failed"
done
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

if [ "$FAILS" -gt 0 ]; then
	echo "bench-engine.sh: $FAILS docker commands failed" >&2
	exit 1
fi
