#!/usr/bin/env bash
# demo.sh — what berth does today, end to end, on a fresh machine (as root):
# build berth-runtime, make a busybox bundle, run a container that shows its
# namespaces, limits and security settings, then serve HTTP from a detached
# container and fetch the page from the host.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }
BB=$(command -v busybox || true)
[ -n "$BB" ] || { echo "demo.sh: busybox not found (apt-get install busybox-static)" >&2; exit 1; }

make -s build >/dev/null
RT=$PWD/bin/berth-runtime
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-demo.XXXXXX")
ROOT=$WORK/state
cleanup() {
	"$RT" --root "$ROOT" delete -f demo-web >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# A busybox root filesystem.
B=$WORK/bundle
mkdir -p "$B/rootfs"/{bin,etc,proc,sys,dev,tmp,www}
cp "$BB" "$B/rootfs/bin/busybox"
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -sf busybox "$B/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$B/rootfs/etc/passwd"
echo 'root:x:0:' >"$B/rootfs/etc/group"
echo '<h1>hello from a berth container</h1>' >"$B/rootfs/www/index.html"

(cd "$B" && "$RT" spec --seccomp default)
# Run a command in the default spec (new pid/mount/ipc/uts/net/cgroup namespaces).
edit() { # edit ARGS-JSON TERMINAL NETNS
	python3 - "$B/config.json" "$1" "$2" "$3" <<'PY'
import json, sys
path, args, terminal, netns = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "true", sys.argv[4] == "true"
spec = json.load(open(path))
spec["process"]["args"] = args
spec["process"]["terminal"] = terminal
spec["hostname"] = "berth-demo"
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if netns or n["type"] != "network"]
spec["linux"].setdefault("resources", {})["memory"] = {"limit": 64 << 20}
spec["linux"]["resources"]["pids"] = {"limit": 64}
json.dump(spec, open(path, "w"), indent=1)
PY
}

echo "== berth-runtime run: a container looking at itself"
edit '["sh","-c","echo \"pid: $$  hostname: $(hostname)\"; id; grep -E \"^(CapEff|Seccomp|NoNewPrivs)\" /proc/self/status; echo \"memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)\"; echo \"pids limit: $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)\""]' false true
"$RT" --root "$ROOT" run -b "$B" demo-look

echo
echo "== berth-runtime run -d: busybox httpd on the host network, port 18080"
edit '["httpd","-f","-p","18080","-h","/www"]' false false
"$RT" --root "$ROOT" run -d -b "$B" demo-web </dev/null
"$RT" --root "$ROOT" state demo-web
for _ in $(seq 50); do curl -fsS http://127.0.0.1:18080/ 2>/dev/null && break; sleep 0.1; done
"$RT" --root "$ROOT" ps demo-web
"$RT" --root "$ROOT" kill demo-web KILL
sleep 0.2
"$RT" --root "$ROOT" delete demo-web
echo "== done"
