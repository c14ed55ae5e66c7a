#!/usr/bin/env bash
# demo.sh — what berth does today, end to end, on a fresh machine (as root):
# build berthd and the berth CLI, start a daemon, make an image offline from
# the host's static busybox, build an image from a Dockerfile on it, run
# containers with `berth` and with the docker CLI, serve HTTP from a
# detached container of the built image and fetch the page through a
# published port.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }
BB=$(command -v busybox || true)
[ -n "$BB" ] || { echo "demo.sh: busybox not found (apt-get install busybox-static)" >&2; exit 1; }

make -s build >/dev/null
BIN=$PWD/bin
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-demo.XXXXXX")
export BERTH_HOST=unix://$WORK/berth.sock
berth() { "$BIN/berth" "$@"; }
step() { printf '\n== %s\n' "$*"; }

cleanup() {
	set +e
	berth rm -f web db >/dev/null 2>&1
	berth network prune -f >/dev/null 2>&1
	[ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
	ip link del "$BRIDGE" 2>/dev/null
	grep -q " $WORK/" /proc/self/mountinfo && awk -v w="$WORK/" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
	rm -rf "$WORK"
}
trap cleanup EXIT

step "start berthd (socket $WORK/berth.sock, data root $WORK/data)"
echo '{}' >"$WORK/daemon.json"
BRIDGE=bdemo$((RANDOM % 1000))
"$BIN/berthd" -H "$BERTH_HOST" --data-root "$WORK/data" --exec-root "$WORK/exec" --bridge "$BRIDGE" \
	--pidfile "$WORK/berthd.pid" --config-file "$WORK/daemon.json" >"$WORK/berthd.log" 2>&1 &
DAEMON=$!
for _ in $(seq 100); do berth version >/dev/null 2>&1 && break; sleep 0.05; done
berth version --format 'client {{.Client.Version}}, server {{.Server.Version}} (API {{.Server.APIVersion}})'

step "make an image offline: a root filesystem from the host's static busybox, imported"
R=$WORK/rootfs
mkdir -p "$R"/{bin,etc,tmp,www}
cp "$BB" "$R/bin/busybox"
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"
echo '<h1>hello from a berth container</h1>' >"$R/www/index.html"
tar -C "$R" -cf "$WORK/busybox.tar" .
berth import -c 'CMD ["sh"]' -m "busybox from the host" "$WORK/busybox.tar" busybox
berth images

step "berth run: a container looking at itself"
berth run --rm --memory 64m --pids-limit 64 busybox sh -c '
echo "pid: $$  hostname: $(hostname)"; id
grep -E "^(CapEff|Seccomp|NoNewPrivs)" /proc/self/status
echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "pids limit: $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"'

step "exit codes pass through (exit 3), and docker's 127 for a missing command"
set +e
berth run --rm busybox sh -c 'exit 3'; echo "exit code: $?"
berth run --rm busybox no-such-command 2>&1 | grep -v -e '^$' -e '--help' ; echo "exit code: ${PIPESTATUS[0]}"
set -e

step "berth build: an image from a Dockerfile (the page, the server's command, the port)"
B=$WORK/web
mkdir -p "$B"
echo '<h1>hello from a berth container, built from a Dockerfile</h1>' >"$B/index.html"
cat >"$B/Dockerfile" <<'DOCKERFILE'
FROM busybox
LABEL demo=berth
WORKDIR /www
COPY index.html .
RUN echo "built on $(date -u +%F)" > /www/built.txt
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
DOCKERFILE
berth build -t web "$B"
berth history web

PORT=$((20000 + RANDOM % 10000))
step "serve HTTP from a detached container of that image on the default bridge, published with -p $PORT:80"
berth run -d --name web -p "$PORT:80" web
berth port web
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/" 2>/dev/null && break; sleep 0.1; done
HOSTIP=$(ip -4 -o addr show scope global 2>/dev/null | awk '$2 !~ /^(berth|br-|veth|docker)/ {sub("/.*", "", $4); print $4; exit}')
if [ -n "$HOSTIP" ]; then
	echo "and through the host's address $HOSTIP:"
	curl -fsS "http://$HOSTIP:$PORT/"
fi

step "a user-defined network: containers find each other by name (embedded DNS)"
berth network create demo-net >/dev/null
berth run -d --name db --network demo-net busybox sleep 300 >/dev/null
berth run --rm --network demo-net busybox sh -c 'nslookup db 127.0.0.11 | grep -A1 '^Name:'; ping -c1 -W2 db | head -2'
berth rm -f db >/dev/null
berth network rm demo-net

if command -v docker >/dev/null; then
	step "the same daemon through the docker CLI"
	DOCKER_HOST=$BERTH_HOST docker ps
	DOCKER_HOST=$BERTH_HOST docker exec web sh -c 'echo "exec in $(hostname): $(ls /www)"'
	DOCKER_HOST=$BERTH_HOST docker top web
fi

step "stop and remove"
berth rm -f web
berth ps -a
echo
echo "demo finished"
