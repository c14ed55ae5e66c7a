#!/usr/bin/env bash
# bench-registry.sh - pull and push time of a large multi-layer image
# against a local docker-registry: berthd, next to dockerd when installed.
#
# Usage (as root, after `make build`):
#   hack/bench-registry.sh
#
# What it does:
#   - starts docker-registry (Debian's package: distribution 2.8) on a free
#     loopback port with its storage in a temporary directory, and writes
#     an image of LAYERS layers of LAYER_MB MiB of random data each
#     (gzip -1), uploaded with curl through the registry API;
#   - starts bin/berthd and - when `dockerd` is installed - a dockerd on
#     their own sockets and data roots (dockerd: --bridge=none
#     --iptables=false, its own containerd);
#   - pull: RUNS timed `docker pull` of the image, each after `docker rmi`,
#     engines alternating sample by sample (A B, B A, ...) after one
#     untimed pull each;
#   - push: RUNS timed `docker push` of the pulled image to a repository
#     of a registry whose storage was emptied before the sample (so every
#     layer is compressed and uploaded), engines alternating likewise.
# The timings include the docker CLI's start-up, the same for both.
# Everything is removed at the end, also on failure or Ctrl-C.
#
# Environment:
#   RUNS=5         timed samples per engine and workload (at least 3)
#   LAYERS=4       layers of the image
#   LAYER_MB=50    MiB of random data per layer
#   DOCKER=docker  the docker CLI
#   DOCKERD=dockerd  the comparison daemon; "" (or not installed) skips it
#   BERTHD=bin/berthd
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
LAYERS=${LAYERS:-4}
LAYER_MB=${LAYER_MB:-50}
DOCKER=${DOCKER:-docker}
DOCKERD=${DOCKERD-dockerd}
BERTHD=${BERTHD:-$REPO/bin/berthd}

die() {
	echo "bench-registry.sh: $*" >&2
	exit 2
}

[ "$(id -u)" = 0 ] || die "must run as root"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 3 ] || die "RUNS must be a number >= 3"
[[ "$LAYERS" =~ ^[0-9]+$ ]] && [ "$LAYERS" -ge 1 ] || die "LAYERS must be a number >= 1"
[[ "$LAYER_MB" =~ ^[0-9]+$ ]] && [ "$LAYER_MB" -ge 1 ] || die "LAYER_MB must be a number >= 1"
[ -x "$BERTHD" ] || die "$BERTHD not found: run 'make build' first"
DOCKER=$(command -v "$DOCKER") || die "docker CLI not found"
REGISTRY=$(command -v docker-registry) || die "docker-registry not found: apt-get install docker-registry"
command -v curl >/dev/null || die "curl not found"
DOCKERD_PATH=""
if [ -n "$DOCKERD" ]; then DOCKERD_PATH=$(command -v "$DOCKERD" || true); fi

NAMES=(berthd)
HOSTS=()
PIDS=()
REG_PID=""
TMP=""
CLEANING=0
BENCH_BRIDGE=brbench$((RANDOM % 1000))

dc() {
	local j=$1
	shift
	DOCKER_HOST=${HOSTS[$j]} "$DOCKER" "$@"
}

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

cleanup() {
	local rc=$? j p
	[ "$CLEANING" = 1 ] && return
	CLEANING=1
	trap '' INT TERM
	for j in "${!PIDS[@]}"; do
		stop_pid "${PIDS[$j]}"
	done
	stop_pid "$REG_PID"
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		# containerd and shims of the bench's dockerd.
		for p in /proc/[0-9]*; do
			[ "${p#/proc/}" = "$$" ] && continue
			tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$TMP/" && kill -KILL "${p#/proc/}" 2>/dev/null
		done
		sleep 0.2
		awk -v p="$TMP/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo |
			sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
		rm -rf --one-file-system "$TMP" || echo "bench-registry.sh: could not remove $TMP" >&2
	fi
	ip link del "$BENCH_BRIDGE" 2>/dev/null || true
	if command -v nft >/dev/null; then nft delete table inet "berth_$BENCH_BRIDGE" 2>/dev/null || true; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TMP=$(mktemp -d /tmp/berth-rbench.XXXXXX)
chmod 0755 "$TMP"
export DOCKER_CONFIG=$TMP/cli
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
mkdir -p "$DOCKER_CONFIG"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT

# start_registry: a registry with empty storage.
start_registry() {
	stop_pid "$REG_PID"
	rm -rf "$TMP/registry"
	mkdir -p "$TMP/registry"
	cat >"$TMP/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $TMP/registry/data
http:
  addr: $REG
EOF
	"$REGISTRY" serve "$TMP/registry/config.yml" >>"$TMP/registry.log" 2>&1 </dev/null &
	REG_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		curl -fs "http://$REG/v2/" >/dev/null && return 0
		sleep 0.1
	done
	tail -n 20 "$TMP/registry.log" >&2
	die "docker-registry did not start"
}

# upload_blob FILE DIGEST: a monolithic upload to repository bench.
upload_blob() {
	local loc
	loc=$(curl -fsS -X POST -D - -o /dev/null "http://$REG/v2/bench/blobs/uploads/" |
		awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')
	case $loc in http*) ;; *) loc=http://$REG$loc ;; esac
	case $loc in *\?*) loc="$loc&digest=$2" ;; *) loc="$loc?digest=$2" ;; esac
	curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" "$loc" >/dev/null
}

# make_image: LAYERS random layers, a config and a schema2 manifest.
make_image() {
	local i d=$TMP/img diffids="" layers="" diffid digest size
	mkdir -p "$d"
	for ((i = 0; i < LAYERS; i++)); do
		mkdir -p "$d/l$i"
		head -c "$((LAYER_MB << 20))" /dev/urandom >"$d/l$i/data$i"
		tar -C "$d/l$i" --numeric-owner -cf "$d/l$i.tar" .
		rm -rf "$d/l$i"
		diffid=sha256:$(sha256sum "$d/l$i.tar" | cut -d' ' -f1)
		gzip -1 -n <"$d/l$i.tar" >"$d/l$i.tgz"
		rm "$d/l$i.tar"
		digest=sha256:$(sha256sum "$d/l$i.tgz" | cut -d' ' -f1)
		size=$(stat -c %s "$d/l$i.tgz")
		upload_blob "$d/l$i.tgz" "$digest"
		diffids+="${diffids:+,}\"$diffid\""
		layers+="${layers:+,}{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":$size,\"digest\":\"$digest\"}"
	done
	printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/data0"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffids" >"$d/config.json"
	digest=sha256:$(sha256sum "$d/config.json" | cut -d' ' -f1)
	size=$(stat -c %s "$d/config.json")
	upload_blob "$d/config.json" "$digest"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%s,"digest":"%s"},"layers":[%s]}' \
		"$size" "$digest" "$layers" >"$d/manifest.json"
	curl -fsS -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
		--data-binary "@$d/manifest.json" "http://$REG/v2/bench/manifests/latest" >/dev/null
	rm -rf "$d"
}

wait_ping() {
	local j=$1 log=$2 i
	for ((i = 0; i < 300; i++)); do
		dc "$j" version --format '{{.Server.Version}}' >/dev/null 2>&1 && return 0
		kill -0 "${PIDS[$j]}" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$log" >&2
	die "${NAMES[$j]} did not start"
}

start_berthd() {
	local d=$TMP/b
	mkdir -p "$d"
	echo '{}' >"$d/daemon.json"
	HOSTS[0]=unix://$d/berthd.sock
	"$BERTHD" -H "${HOSTS[0]}" --data-root "$d/data" --exec-root "$d/exec" --bridge "$BENCH_BRIDGE" \
		--pidfile "$d/berthd.pid" --config-file "$d/daemon.json" >"$d/berthd.log" 2>&1 </dev/null &
	PIDS[0]=$!
	wait_ping 0 "$d/berthd.log"
}

start_dockerd() {
	local d=$TMP/d
	mkdir -p "$d"
	echo '{}' >"$d/daemon.json"
	NAMES[1]=dockerd
	HOSTS[1]=unix://$d/docker.sock
	local args=(-H "${HOSTS[1]}" --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid"
		--config-file "$d/daemon.json" --bridge=none --iptables=false --ip-masq=false --ip-forward=false --log-level=warn)
	if [ -S /run/containerd/containerd.sock ]; then
		unshare -m --propagation private -- sh -c \
			'mount -t tmpfs -o size=1m tmpfs /run/containerd && exec "$0" "$@"' \
			"$DOCKERD_PATH" "${args[@]}" >"$d/dockerd.log" 2>&1 </dev/null &
	else
		"$DOCKERD_PATH" "${args[@]}" >"$d/dockerd.log" 2>&1 </dev/null &
	fi
	PIDS[1]=$!
	wait_ping 1 "$d/dockerd.log"
}

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

IMAGE=$REG/bench:latest

pull_sample() {
	local j=$1 t0 t1
	dc "$j" rmi -f "$IMAGE" >/dev/null 2>&1 || true
	t0=$(now)
	dc "$j" pull -q "$IMAGE" >/dev/null
	t1=$(now)
	elapsed "$t0" "$t1"
}

push_sample() {
	local j=$1 n=$2 t0 t1
	start_registry
	dc "$j" tag "$IMAGE" "$REG/pushed$n:latest"
	t0=$(now)
	dc "$j" push "$REG/pushed$n:latest" >/dev/null
	t1=$(now)
	dc "$j" rmi "$REG/pushed$n:latest" >/dev/null
	elapsed "$t0" "$t1"
}

start_registry
echo "== image: $LAYERS layers x $LAYER_MB MiB of random data (gzip -1) in docker-registry at $REG"
make_image
start_berthd
ENGINES=(0)
if [ -n "$DOCKERD_PATH" ]; then
	start_dockerd
	ENGINES=(0 1)
	echo "== engines: berthd ($("$BERTHD" --version 2>/dev/null | head -1)) and $("$DOCKERD_PATH" --version)"
else
	echo "== engines: berthd only (no dockerd)"
fi

declare -A SAMPLES
for j in "${ENGINES[@]}"; do pull_sample "$j" >/dev/null; done
for ((r = 0; r < RUNS; r++)); do
	order=("${ENGINES[@]}")
	if ((r % 2)) && [ ${#ENGINES[@]} = 2 ]; then order=(1 0); fi
	for j in "${order[@]}"; do
		SAMPLES[pull$j]+="$(pull_sample "$j") "
	done
done
for ((r = 0; r < RUNS; r++)); do
	order=("${ENGINES[@]}")
	if ((r % 2)) && [ ${#ENGINES[@]} = 2 ]; then order=(1 0); fi
	for j in "${order[@]}"; do
		SAMPLES[push$j]+="$(push_sample "$j" "$r$j") "
	done
done

echo
printf '%-6s %-8s %10s   %s\n' workload engine "median s" samples
for w in pull push; do
	declare -A MED=()
	for j in "${ENGINES[@]}"; do
		MED[$j]=$(tr ' ' '\n' <<<"${SAMPLES[$w$j]}" | grep . | median)
		printf '%-6s %-8s %10s   %s\n' "$w" "${NAMES[$j]}" "${MED[$j]}" "${SAMPLES[$w$j]}"
	done
	if [ ${#ENGINES[@]} = 2 ]; then
		printf '%-6s ratio berthd/dockerd: %s\n' "$w" "$(awk -v a="${MED[0]}" -v b="${MED[1]}" 'BEGIN { printf "%.2f", a / b }')"
	fi
done
