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
#
# The daemon plumbing (start, cleanup) is hack/lib/engines.sh, shared with
# bench-engine.sh and bench-build.sh.
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
LAYERS=${LAYERS:-4}
LAYER_MB=${LAYER_MB:-50}
DOCKER=${DOCKER:-docker}
DOCKERD=${DOCKERD-dockerd}
BERTHD=${BERTHD:-$REPO/bin/berthd}

# shellcheck source-path=SCRIPTDIR source=lib/engines.sh
. "$REPO/hack/lib/engines.sh"

[ "$(id -u)" = 0 ] || die "must run as root"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 3 ] || die "RUNS must be a number >= 3"
[[ "$LAYERS" =~ ^[0-9]+$ ]] && [ "$LAYERS" -ge 1 ] || die "LAYERS must be a number >= 1"
[[ "$LAYER_MB" =~ ^[0-9]+$ ]] && [ "$LAYER_MB" -ge 1 ] || die "LAYER_MB must be a number >= 1"
find_engines
REGISTRY=$(command -v docker-registry) || die "docker-registry not found: apt-get install docker-registry"
command -v curl >/dev/null || die "curl not found"

REG_PID=""
# cleanup_first_hook: run by cleanup (hack/lib/engines.sh) before the daemons.
cleanup_first_hook() {
	stop_pid "$REG_PID"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_tmp berth-rbench

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

# push_sample J N: run after start_registry (in this shell, which owns the
# registry process).
push_sample() {
	local j=$1 n=$2 t0 t1
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
start_daemons
if [ -n "$DOCKERD_PATH" ]; then
	echo "== engines: berthd ($("$BERTHD" --version 2>/dev/null | head -1)) and $("$DOCKERD_PATH" --version)"
else
	echo "== engines: berthd only (no dockerd)"
fi

declare -A SAMPLES
for j in "${!NAMES[@]}"; do pull_sample "$j" >/dev/null; done
for ((r = 0; r < RUNS; r++)); do
	for j in $(order "$r"); do
		SAMPLES[pull$j]+="$(pull_sample "$j") "
	done
done
for ((r = 0; r < RUNS; r++)); do
	for j in $(order "$r"); do
		start_registry
		SAMPLES[push$j]+="$(push_sample "$j" "$r$j") "
	done
done

echo
printf '%-6s %-8s %10s   %s\n' workload engine "median s" samples
for w in pull push; do
	declare -A MED=()
	for j in "${!NAMES[@]}"; do
		MED[$j]=$(tr ' ' '\n' <<<"${SAMPLES[$w$j]}" | grep . | median)
		printf '%-6s %-8s %10s   %s\n' "$w" "${NAMES[$j]}" "${MED[$j]}" "${SAMPLES[$w$j]}"
	done
	if [ ${#NAMES[@]} = 2 ]; then
		printf '%-6s ratio berthd/dockerd: %s\n' "$w" "$(awk -v a="${MED[0]}" -v b="${MED[1]}" 'BEGIN { printf "%.2f", a / b }')"
	fi
done
