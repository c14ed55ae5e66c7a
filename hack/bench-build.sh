#!/usr/bin/env bash
# bench-build.sh - image build time of the engine, measured through the
# docker CLI's classic builder (DOCKER_BUILDKIT=0): berthd, next to dockerd
# when it is installed.
#
# Usage (as root, after `make build`):
#   hack/bench-build.sh
#
# What it does:
#   - starts bin/berthd and - when `dockerd` is installed (Debian's
#     docker.io) - a dockerd (--bridge=none --iptables=false, its own
#     containerd), each on its own socket, data root and exec root in a
#     temporary directory, as bench-engine.sh does;
#   - imports the same busybox root filesystem (built here from the host's
#     static busybox) as busybox:latest into each;
#   - writes one build context: a 10-step Dockerfile (FROM busybox, ENV,
#     WORKDIR, COPY of CONTEXT_MB MiB of random bytes in 5 files, RUN du,
#     RUN echo, COPY of a small file, LABEL, EXPOSE, CMD);
#   - cold:   RUNS timed `docker build --no-cache --network none -t
#     bench-build CONTEXT` per engine (the image the previous cold build
#     made is removed after each, untimed);
#   - cached: RUNS timed `docker build --network none -t bench-build
#     CONTEXT` per engine after a build of the same context: every step
#     after FROM must say "Using cache" (checked, so that a broken cache
#     fails instead of passing as fast), and a cold build must say it for
#     none;
#   - engines alternate sample by sample (A B, B A, ...) after WARMUP
#     untimed cold and cached builds each, so both see the same machine
#     conditions;
#   - prints per engine and workload the median, p90, min and max in ms and
#     the dockerd/berthd ratio of the medians, then per engine the image
#     built (size, layers, history entries, steps and what its RUN steps
#     wrote), so that one can see both built the same thing.
# Each sample is bash's $EPOCHREALTIME around one `docker build`: the CLI's
# start-up, sending the context (CONTEXT_MB MiB, uncompressed, over the
# daemon's unix socket) and the whole build. RUN steps use --network none
# on both engines (dockerd runs without a bridge). Everything is removed at
# the end, also on failure or Ctrl-C: containers, images, daemons, their
# mounts and directories.
#
# Environment:
#   RUNS=10        timed samples per engine and workload (at least 5)
#   BERTH=bin/berth  berth's CLI, for the cached builds it sends as digests
#   WARMUP=1       untimed cold and cached builds per engine first
#   PAUSE=0.5      seconds of rest before each sample, after a `sync`, so
#                  that no sample pays for work the other engine does after
#                  its CLI returned (writeback of the layers it wrote,
#                  dockerd's asynchronous container cleanup); 0 skips both
#   CONTEXT_MB=50  MiB of random data in the build context
#   DOCKER=docker  the docker CLI
#   DOCKERD=dockerd  the comparison daemon; "" (or not installed) skips it
#   BERTHD=bin/berthd
#
# The daemon plumbing (start, samples, tables, cleanup) is hack/lib/engines.sh,
# shared with bench-engine.sh.
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
PAUSE=${PAUSE:-0.5}
CONTEXT_MB=${CONTEXT_MB:-50}
DOCKER=${DOCKER:-docker}
DOCKERD=${DOCKERD-dockerd}
BERTHD=${BERTHD:-$REPO/bin/berthd}
IMAGE=busybox:latest
TAG=bench-build

# shellcheck source-path=SCRIPTDIR source=lib/engines.sh
. "$REPO/hack/lib/engines.sh"

[ "$(id -u)" = 0 ] || die "must run as root"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 5 ] || die "RUNS must be a number >= 5"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a number"
[[ "$PAUSE" =~ ^[0-9]*\.?[0-9]+$ ]] || die "PAUSE must be a number of seconds"
[[ "$CONTEXT_MB" =~ ^[0-9]+$ ]] && [ "$CONTEXT_MB" -ge 1 ] || die "CONTEXT_MB must be a number >= 1"
find_engines

# The classic builder on both engines (the CLI has no buildx here anyway).
export DOCKER_BUILDKIT=0

trap cleanup EXIT
trap 'exit 130' INT TERM

make_tmp berth-bbench

CTX=$TMP/ctx
STEPS=10

# make_context: the Dockerfile (STEPS steps), CONTEXT_MB MiB of random bytes
# in data/ (5 files), small.txt.
make_context() {
	local i kib=$((CONTEXT_MB * 1024 / 5))
	mkdir -p "$CTX/data"
	for ((i = 1; i <= 5; i++)); do
		head -c "$((kib * 1024))" /dev/urandom >"$CTX/data/blob$i"
	done
	echo small >"$CTX/small.txt"
	cat >"$CTX/Dockerfile" <<-'EOF'
		FROM busybox
		ENV A=1
		WORKDIR /app
		COPY data /app/data
		RUN du -s /app/data > /du
		RUN echo hi > /hi
		COPY small.txt /small.txt
		LABEL bench=build
		EXPOSE 80
		CMD ["sh"]
	EOF
}

# The image each engine's last cold build made (removed after the next).
LAST=()

# sample_build KIND FILE-PREFIX J: one timed build (KIND cold or cached) on
# engine J into FILE-PREFIX.KIND.J, kept only when the build output says
# "Using cache" for every step after FROM (cached) or for none (cold).
sample_build() {
	local kind=$1 j=$3 args=(build --network none -t "$TAG") want=$((STEPS - 1)) n id
	if [ "$kind" = cold ]; then
		args+=(--no-cache)
		want=0
	fi
	if [ "$PAUSE" != 0 ]; then
		sync
		sleep "$PAUSE"
	fi
	rm -f "$TMP/t"
	timed "$TMP/t" "$j" "${args[@]}" "$CTX" || return 1
	cp "$TMP/out" "$TMP/build.$kind.$j"
	n=$(grep -c 'Using cache' "$TMP/out") || n=0
	if [ "$n" != "$want" ]; then
		FAILS=$((FAILS + 1))
		echo "${NAMES[$j]}: $kind build: $n steps said \"Using cache\", not $want:" >&2
		grep -E '^Step |Using cache' "$TMP/out" >&2 || tail -n 20 "$TMP/out" >&2
		return 1
	fi
	cat "$TMP/t" >>"$2.$kind.$j"
	[ "$kind" = cold ] || return 0
	id=$(dc "$j" image inspect -f '{{.Id}}' "$TAG") || return 0
	if [ -n "${LAST[$j]:-}" ] && [ "${LAST[$j]}" != "$id" ]; then
		dc "$j" rmi "${LAST[$j]}" >/dev/null 2>&1 || echo "${NAMES[$j]}: could not remove ${LAST[$j]}" >&2
	fi
	LAST[j]=$id
}

# label METRIC: the metric's name in the tables.
label() {
	case $1 in
	cold) echo "cold (--no-cache)" ;;
	cached) echo "cached (all steps)" ;;
	esac
}

make_context
start_engines
print_engines

import_busybox "$IMAGE"
echo "# workload: docker build --network none -t $TAG CONTEXT, classic builder (DOCKER_BUILDKIT=0); $STEPS steps:"
grep -v '^$' "$CTX/Dockerfile" | paste -sd ';' - | sed 's/;/; /g; s/^/#   /'
echo "# context: $(du -sk --apparent-size "$CTX" | cut -f1) KiB ($CONTEXT_MB MiB of random bytes in data/, 5 files); busybox imported from a $(($(stat -c %s "$TMP/busybox.tar") / 1024)) KiB tarball"
echo "# cold: --no-cache; cached: the same build again, every step after FROM \"Using cache\" (checked)"
echo "# $RUNS timed samples per engine and workload after $WARMUP warm-ups, engines alternating sample by sample, sync and ${PAUSE}s rest before each"

# Warm-ups (also check that both builds work at all).
for j in "${!NAMES[@]}"; do
	for ((i = 0; i < WARMUP; i++)); do
		sample_build cold "$TMP/w" "$j" || die "${NAMES[$j]}: cold build failed"
		sample_build cached "$TMP/w" "$j" || die "${NAMES[$j]}: cached build failed"
	done
done
for kind in cold cached; do
	for ((i = 0; i < RUNS; i++)); do
		for j in $(order "$i"); do
			sample_build "$kind" "$TMP/s" "$j" || true
		done
	done
done

table "docker build, $STEPS steps, $CONTEXT_MB MiB context (ms)" cold cached

# berth's own CLI against berthd: it sends, for the files berthd kept from
# earlier contexts, their digests instead of their bytes.
BERTH=${BERTH:-$(dirname "$BERTHD")/berth}
if [ -x "$BERTH" ]; then
	berth_build() {
		BERTH_HOST=${HOSTS[0]} BERTH_CONFIG=$TMP/berth-config "$BERTH" build --network none -t "$TAG" "$CTX" >"$TMP/out" 2>&1 </dev/null
	}
	for ((i = 0; i < WARMUP + 2; i++)); do
		berth_build || die "berth build failed: $(tail -n 3 "$TMP/out")"
		sleep 0.5 # berthd keeps the context's files after it answered
	done
	for ((i = 0; i < RUNS; i++)); do
		if [ "$PAUSE" != 0 ]; then
			sync
			sleep "$PAUSE"
		fi
		t0=$EPOCHREALTIME
		berth_build || die "berth build failed: $(tail -n 3 "$TMP/out")"
		t1=$EPOCHREALTIME
		n=$(grep -c 'Using cache' "$TMP/out") || n=0
		[ "$n" = $((STEPS - 1)) ] || die "berth build: $n steps said \"Using cache\", not $((STEPS - 1))"
		echo $((${t1/./} - ${t0/./})) >>"$TMP/s.berthcli"
	done
	sent=$(sed -n 's/^Sending build context to Docker daemon *//p' "$TMP/out")
	read -r n med p90 mn mx < <(stats "$TMP/s.berthcli")
	echo
	echo "== cached build through berth's CLI (context files berthd kept travel as digests; last context sent: $sent)"
	printf '%-22s %-8s %5s %10s %10s %10s %10s\n' WHAT ENGINE N MEDIAN_MS P90_MS MIN_MS MAX_MS
	printf '%-22s %-8s %5d %10s %10s %10s %10s\n' "cached, berth CLI" berthd "$n" "$med" "$p90" "$mn" "$mx"
	if [ ${#NAMES[@]} -gt 1 ]; then
		read -r _ dmed _ < <(stats "$TMP/s.cached.1")
		awk -v a="$dmed" -v b="$med" 'BEGIN { if (b > 0) printf "%-22s dockerd (docker CLI, cached)/berthd (berth CLI) median ratio: %.2fx\n", "cached", a / b }'
	fi
fi

echo
echo "== image $TAG as built (the last cold build, as the cached builds found it)"
printf '%-8s %10s %7s %8s %6s  %s\n' ENGINE SIZE_KB LAYERS HISTORY STEPS "RUN STEPS WROTE (/du; /hi)"
for j in "${!NAMES[@]}"; do
	read -r size layers < <(dc "$j" image inspect -f '{{.Size}} {{len .RootFS.Layers}}' "$TAG") || size=0 layers=-
	hist=$(dc "$j" history -q "$TAG" | wc -l) || hist=-
	steps=$(grep -c '^Step ' "$TMP/build.cold.$j") || steps=0
	wrote=$(dc "$j" run --rm --network none "$TAG" cat /du /hi | tr '\t\n' ' ;' | sed 's/;$//') || wrote="(docker run failed)"
	printf '%-8s %10s %7s %8s %6s  %s\n' "${NAMES[$j]}" "$((size / 1024))" "$layers" "$hist" "$steps" "$wrote"
done
echo "# SIZE_KB: the image's size (docker image inspect .Size); LAYERS: its root filesystem layers;"
echo "#   HISTORY: docker history entries; STEPS: \"Step N/$STEPS\" lines of the build output"

check_fails
