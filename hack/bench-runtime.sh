#!/usr/bin/env bash
# bench-runtime.sh - time one container run with OCI runtimes side by side:
# `RUNTIME run -b BUNDLE ID` of a busybox bundle whose process is `true`.
#
# Usage (as root):
#   hack/bench-runtime.sh [RUNTIME...]
# A RUNTIME is a path to a binary or a command name found in PATH. Default:
# ./bin/berth-runtime (from `make build`), plus runc and crun when installed.
#
# Environment:
#   RUNS=30      timed runs per runtime (at least 20)
#   WARMUP=3     untimed runs per runtime first
#   BENCH_PRIVATE_NS=auto|1|0
#                on a cgroup v1 hybrid host whose cgroup2 "unified" hierarchy
#                has controllers, crun refuses to run containers. With auto
#                (the default), when crun is benchmarked on such a host, every
#                runtime runs in a private mount namespace in which
#                /sys/fs/cgroup/unified is unmounted (the host's mounts are
#                not touched). 1 forces that, 0 runs on the host as is.
#
# The bundle is built here from the host's static busybox (bin/busybox, a
# symlink per applet, /etc/passwd and /etc/group). Its config.json has the
# shape `runc spec` generates: pid, network, ipc, uts and mount namespaces
# (the new network namespace has only a loopback device), the usual /proc,
# /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and /sys/fs/cgroup mounts, a
# read-only root, masked and read-only paths, CAP_AUDIT_WRITE, CAP_KILL and
# CAP_NET_BIND_SERVICE, with process.args ["true"] and no terminal.
#
# Runtimes are interleaved sample by sample, each sample timed with bash's
# $EPOCHREALTIME around the runtime command. Output: per runtime the median,
# p90, min and max in ms, then the ratio of the first runtime's median to
# each other's (e.g. berth-runtime/runc).
set -euo pipefail
export LC_ALL=C

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
PRIVATE_NS=${BENCH_PRIVATE_NS:-auto}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# die, make_rootfs and stats; no daemons here.
# shellcheck source-path=SCRIPTDIR source=lib/engines.sh
. "$REPO/hack/lib/engines.sh"

[ "$(id -u)" = 0 ] || die "must run as root"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 20 ] || die "RUNS must be a number >= 20"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a number"

if [ $# -eq 0 ]; then
	[ -x "$REPO/bin/berth-runtime" ] || die "$REPO/bin/berth-runtime not found: run 'make build' first, or name the runtimes"
	set -- "$REPO/bin/berth-runtime"
	for rt in runc crun; do
		command -v "$rt" >/dev/null && set -- "$@" "$rt"
	done
fi

# hybrid_with_controllers: cgroup v1 with a cgroup2 "unified" hierarchy
# that has controllers enabled.
hybrid_with_controllers() {
	[ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ] &&
		[ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
		[ -n "$(tr -d '[:space:]' </sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]
}

if [ -z "${BERTH_BENCH_IN_NS:-}" ]; then
	if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
		BERTH_BENCH_HOST_CGROUPS="cgroup v2"
	elif [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
		BERTH_BENCH_HOST_CGROUPS="cgroup v1 hybrid (unified controllers: $(tr -s '\n' ' ' </sys/fs/cgroup/unified/cgroup.controllers))"
	else
		BERTH_BENCH_HOST_CGROUPS="cgroup v1"
	fi
	export BERTH_BENCH_HOST_CGROUPS
	want_ns=0
	case "$PRIVATE_NS" in
	1) want_ns=1 ;;
	0) ;;
	auto)
		if hybrid_with_controllers; then
			for rt in "$@"; do
				[ "$(basename "$rt")" = crun ] && want_ns=1
			done
		fi
		;;
	*) die "BENCH_PRIVATE_NS must be auto, 1 or 0" ;;
	esac
	if [ "$want_ns" = 1 ]; then
		command -v unshare >/dev/null || die "unshare not found (util-linux)"
		export BERTH_BENCH_IN_NS=1
		# shellcheck disable=SC2016 # expanded by the inner shell
		exec unshare -m --propagation private -- bash -c '
			if mountpoint -q /sys/fs/cgroup/unified; then
				umount /sys/fs/cgroup/unified || exit 2
				export BERTH_BENCH_UNIFIED_UNMOUNTED=1
			fi
			exec bash "$0" "$@"' "${BASH_SOURCE[0]}" "$@"
	fi
fi

NAMES=()
CMDS=()
for arg in "$@"; do
	if [[ "$arg" == */* ]]; then
		[ -f "$arg" ] && [ -x "$arg" ] || die "runtime $arg: no such executable"
		path=$(realpath "$arg")
	else
		path=$(command -v "$arg") || die "runtime $arg not found in PATH"
	fi
	name=$(basename "$arg")
	base=$name
	n=2
	while printf '%s\n' "${NAMES[@]}" | grep -qxF -- "$name"; do
		name=$base-$n
		n=$((n + 1))
	done
	NAMES+=("$name")
	CMDS+=("$path")
done

TMP=""
# cleanup_runtimes (the EXIT trap): delete a container a runtime left, then
# unmount and remove TMP.
cleanup_runtimes() {
	local j
	for j in "${!CMDS[@]}"; do
		if "${CMDS[$j]}" state "bench-$$-$j" >/dev/null 2>&1; then
			"${CMDS[$j]}" delete -f "bench-$$-$j" >/dev/null 2>&1 || true
		fi
	done
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		awk -v p="$TMP/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo |
			sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
		rm -rf --one-file-system "$TMP"
	fi
}
trap cleanup_runtimes EXIT
trap 'exit 130' INT TERM

TMP=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
chmod 0755 "$TMP"
BUNDLE=$TMP/bundle

make_rootfs "$BUNDLE/rootfs"
echo bench >"$BUNDLE/rootfs/etc/hostname"
cat >"$BUNDLE/config.json" <<'EOF'
{
	"ociVersion": "1.0.2",
	"process": {
		"terminal": false,
		"user": {"uid": 0, "gid": 0},
		"args": ["true"],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
		},
		"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
		"noNewPrivileges": true
	},
	"root": {"path": "rootfs", "readonly": true},
	"hostname": "bench",
	"mounts": [
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
		 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
		{"destination": "/dev/pts", "type": "devpts", "source": "devpts",
		 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
		{"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
		 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
		{"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
		 "options": ["nosuid", "noexec", "nodev"]},
		{"destination": "/sys", "type": "sysfs", "source": "sysfs",
		 "options": ["nosuid", "noexec", "nodev", "ro"]},
		{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
		 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
	],
	"linux": {
		"resources": {"devices": [{"allow": false, "access": "rwm"}]},
		"namespaces": [
			{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
			{"type": "uts"}, {"type": "mount"}
		],
		"maskedPaths": [
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
			"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
			"/proc/sched_debug", "/sys/firmware", "/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
		]
	}
}
EOF

echo "# $(uname -r), $(nproc) cpus, host: $BERTH_BENCH_HOST_CGROUPS, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${BERTH_BENCH_IN_NS:-}" ]; then
	if [ -n "${BERTH_BENCH_UNIFIED_UNMOUNTED:-}" ]; then
		echo "# all runtimes run in a private mount namespace with /sys/fs/cgroup/unified unmounted (pure cgroup v1 view; crun refuses hybrid hosts whose unified hierarchy has controllers)"
	else
		echo "# all runtimes run in a private mount namespace"
	fi
fi
echo "# $RUNS timed runs per runtime after $WARMUP warm-ups, interleaved; \`RUNTIME run -b BUNDLE ID\` of busybox \`true\`"
for j in "${!CMDS[@]}"; do
	printf '# %s: %s (%s)\n' "${NAMES[$j]}" "${CMDS[$j]}" "$("${CMDS[$j]}" --version 2>/dev/null | head -n1 || true)"
done

# run_once J: one container run with runtime J; its output goes to a log.
run_once() {
	"${CMDS[$1]}" run -b "$BUNDLE" "bench-$$-$1" >"$TMP/out.$1" 2>&1 </dev/null
}

for j in "${!CMDS[@]}"; do
	for ((i = 0; i < WARMUP; i++)); do
		if ! run_once "$j"; then
			echo "${NAMES[$j]}: run failed:" >&2
			cat "$TMP/out.$j" >&2
			exit 1
		fi
	done
	: >"$TMP/samples.$j"
done

FAILED=()
for ((i = 0; i < RUNS; i++)); do
	for j in "${!CMDS[@]}"; do
		rc=0
		t0=$EPOCHREALTIME
		run_once "$j" || rc=$?
		t1=$EPOCHREALTIME
		if [ "$rc" -ne 0 ]; then
			FAILED[j]=$((${FAILED[j]:-0} + 1))
			cp "$TMP/out.$j" "$TMP/failed.$j"
			continue
		fi
		echo $((${t1/./} - ${t0/./})) >>"$TMP/samples.$j"
	done
done

echo
printf '%-20s %6s %10s %10s %10s %10s\n' RUNTIME RUNS MEDIAN_MS P90_MS MIN_MS MAX_MS
MEDIANS=()
for j in "${!CMDS[@]}"; do
	read -r n med p90 mn mx < <(stats "$TMP/samples.$j")
	MEDIANS[j]=$med
	printf '%-20s %6d %10s %10s %10s %10s\n' "${NAMES[$j]}" "$n" "$med" "$p90" "$mn" "$mx"
done
if [ ${#CMDS[@]} -gt 1 ]; then
	echo
	for ((j = 1; j < ${#CMDS[@]}; j++)); do
		awk -v a="${MEDIANS[0]}" -v b="${MEDIANS[$j]}" -v na="${NAMES[0]}" -v nb="${NAMES[$j]}" \
			'BEGIN { if (b > 0) printf "%s/%s: %.2f\n", na, nb, a / b; else printf "%s/%s: n/a\n", na, nb }'
	done
fi
status=0
for j in "${!CMDS[@]}"; do
	if [ "${FAILED[$j]:-0}" -gt 0 ]; then
		echo "${NAMES[$j]}: ${FAILED[$j]} of $RUNS timed runs failed; last output:" >&2
		cat "$TMP/failed.$j" >&2
		status=1
	fi
done
exit "$status"
