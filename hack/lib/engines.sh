# shellcheck shell=bash
# hack/lib/engines.sh - the daemon plumbing of the engine benchmarks
# (bench-engine.sh, bench-build.sh, bench-registry.sh): berthd, and dockerd
# when it is installed, side by side on private sockets, data roots and exec
# roots in a temporary directory, the docker CLI against each, alternating
# timed samples, and a cleanup that removes everything, also on failure or
# Ctrl-C. bench-runtime.sh uses only die, make_rootfs and stats.
#
# Sourced after `set -euo pipefail`; the script sets first:
#   REPO     the repository
#   BERTHD   the berthd binary
#   DOCKER   the docker CLI (a command name or path)
#   DOCKERD  the comparison daemon ("" skips it)
# and may define cleanup_first_hook, which cleanup runs before it stops the
# daemons (to stop the script's own processes), and cleanup_hook, which it
# runs after the daemons are gone.
# Typical use:
#   find_engines; trap cleanup EXIT; trap 'exit 130' INT TERM
#   make_tmp NAME; start_engines; print_engines; import_busybox IMAGE
# shellcheck disable=SC2154 # REPO, BERTHD, DOCKER, DOCKERD: set by the script

die() {
	echo "${0##*/}: $*" >&2
	exit 2
}

# find_engines: check BERTHD, resolve DOCKER to its path, and DOCKERD to
# DOCKERD_PATH ("" when it is not wanted or not installed).
find_engines() {
	[ -x "$BERTHD" ] || die "$BERTHD not found: run 'make build' first"
	DOCKER=$(command -v "$DOCKER") || die "docker CLI not found"
	if [ -n "$DOCKERD" ] && DOCKERD_PATH=$(command -v "$DOCKERD"); then
		:
	else
		DOCKERD_PATH=""
	fi
}

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

# stop_pid PID: stop a child process: SIGTERM, up to 20 s, then SIGKILL.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# stop_engine J: remove engine J's containers through it, then stop it.
stop_engine() {
	local j=$1 pid=${PIDS[$1]} ids
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	ids=$(timeout 30 env DOCKER_HOST="${HOSTS[$j]}" "$DOCKER" ps -aq 2>/dev/null) || ids=""
	if [ -n "$ids" ]; then
		# shellcheck disable=SC2086 # one argument per container ID
		timeout 60 env DOCKER_HOST="${HOSTS[$j]}" "$DOCKER" rm -f $ids >/dev/null 2>&1 || true
	fi
	stop_pid "$pid"
}

# cleanup (the EXIT trap): run cleanup_first_hook, stop the engines, kill
# what survived them, unmount and remove TMP, the bridge, berthd's firewall
# table, whatever cleanup_hook removes, and the cgroups dockerd created;
# exit with the script's status.
cleanup() {
	local rc=$? j pid
	[ "$CLEANING" = 1 ] && return
	CLEANING=1
	trap '' INT TERM
	if declare -F cleanup_first_hook >/dev/null; then
		cleanup_first_hook || true
	fi
	for j in "${!PIDS[@]}"; do
		stop_engine "$j"
	done
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		# Whatever survived (monitors, shims, containerd, their containers).
		for pid in $(pids_under "$TMP/"); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		sleep 0.2
		awk -v p="$TMP/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo |
			sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
		rm -rf --one-file-system "$TMP" || echo "${0##*/}: could not remove $TMP" >&2
	fi
	ip link del "$BENCH_BRIDGE" 2>/dev/null || true
	# berthd deletes its firewall table when it stops, not when it is killed.
	if command -v nft >/dev/null; then nft delete table inet "berth_$BENCH_BRIDGE" 2>/dev/null || true; fi
	if declare -F cleanup_hook >/dev/null; then
		cleanup_hook || true
	fi
	# The parent cgroups that our dockerd created (empty by now).
	for c in "${NEW_CGROUPS[@]}"; do
		rmdir "$c" 2>/dev/null || true
	done
	exit "$rc"
}

# make_tmp NAME: the temporary directory TMP (/tmp/NAME.XXXXXX: short paths,
# unix socket paths are limited to 108 bytes), with a docker CLI config of
# its own.
make_tmp() {
	TMP=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 0755 "$TMP"
	export DOCKER_CONFIG=$TMP/cli # no user config, contexts or credential helpers
	unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
	mkdir -p "$DOCKER_CONFIG"
}

# make_rootfs DIR: a busybox root filesystem in DIR from the host's static
# busybox (bin/busybox, a symlink per applet, /etc/passwd and /etc/group).
make_rootfs() {
	local dir=$1 bb="" c a
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
}

# make_tarball: that root filesystem as the tarball $TMP/busybox.tar.
make_tarball() {
	make_rootfs "$TMP/rootfs"
	tar -C "$TMP/rootfs" --numeric-owner -cf "$TMP/busybox.tar" .
	rm -rf "$TMP/rootfs"
}

# wait_ping J LOG [soft]: wait until engine J answers (30 s); with "soft" a
# failure returns 1 instead of ending the bench.
wait_ping() {
	local j=$1 log=$2 soft=${3:-} i why="did not answer within 30s"
	for ((i = 0; i < 300; i++)); do
		dc "$j" version --format '{{.Server.Version}}' >/dev/null 2>&1 && return 0
		kill -0 "${PIDS[$j]}" 2>/dev/null || {
			why="exited at start"
			break
		}
		sleep 0.1
	done
	tail -n 20 "$log" >&2
	[ -n "$soft" ] || die "${NAMES[$j]} $why"
	echo "${0##*/}: ${NAMES[$j]} $why" >&2
	return 1
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
# start_dockerd J [DIR NETWORK-ARGS...]: dockerd as engine J, by default
# without networking.
start_dockerd() {
	local j=$1 d=${2:-$TMP/d}
	shift 2 || shift $#
	local net=("$@")
	[ ${#net[@]} -gt 0 ] || net=(--bridge=none --iptables=false --ip-masq=false
		--ip-forward=false --userland-proxy=false)
	mkdir -p "$d"
	echo '{}' >"$d/daemon.json"
	NAMES[j]=dockerd
	HOSTS[j]=unix://$d/docker.sock
	local args=(-H "${HOSTS[$j]}" --data-root "$d/data" --exec-root "$d/exec"
		--pidfile "$d/docker.pid" --config-file "$d/daemon.json"
		"${net[@]}" --log-level=warn)
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
	wait_ping "$j" "$d/dockerd.log" "${SOFT:-}"
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

# start_daemons: berthd, and dockerd when installed.
start_daemons() {
	start_berthd
	if [ -n "$DOCKERD_PATH" ]; then
		note_docker_cgroups
		start_dockerd 1
	fi
}

# start_engines: the busybox tarball, berthd, and dockerd when installed.
start_engines() {
	make_tarball
	start_daemons
}

# print_engines: the machine, the CLI and the engines, as "# " lines.
print_engines() {
	local j
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
}

# import_busybox IMAGE: the busybox tarball as IMAGE into every engine.
import_busybox() {
	local j
	for j in "${!NAMES[@]}"; do
		dc "$j" import --change 'CMD ["sh"]' "$TMP/busybox.tar" "$1" >/dev/null ||
			die "${NAMES[$j]}: docker import failed"
	done
}

# med N...: the median of the numbers.
med() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

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
# timed FILE J ARGS...: one docker CLI call against engine J, its wall time
# in µs appended to FILE; failures are counted and shown. The call's output
# is left in $TMP/out.
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

# table TITLE METRIC...: per engine median/p90/min/max of each metric (the
# samples in $TMP/s.METRIC.J, named by the script's `label METRIC`), and
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

# check_fails: end with status 1 when any docker command failed.
check_fails() {
	if [ "$FAILS" -gt 0 ]; then
		echo "${0##*/}: $FAILS docker commands failed" >&2
		exit 1
	fi
}
