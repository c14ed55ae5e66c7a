#!/usr/bin/env bash
# runtime-tools.sh - run the OCI runtime-tools validation suite against one or
# more OCI runtimes, back to back, and compare them in one table.
#
# Usage (as root):
#   hack/runtime-tools.sh RUNTIME [RUNTIME...]
#   e.g. hack/runtime-tools.sh ./bin/berth-runtime runc
#
# A RUNTIME is a path to a binary or a command name found in PATH. Each one
# must implement the OCI runtime command line (create, start, state, kill,
# delete).
#
# The suite is github.com/opencontainers/runtime-tools at a pinned module
# version, fetched with `go mod download`. runtimetest (the checker that runs
# inside the containers) is built statically, and each validation/<name>
# program into its own binary. Builds are cached under
#   ${BERTH_CACHE:-$HOME/.cache/berth}/runtime-tools/<version>/
#
# Environment:
#   RT_TESTS              space-separated subset of validation names (default: all)
#   RT_TIMEOUT            per test file timeout in seconds (default: 120)
#   RT_RESULTS            results directory (default: a new directory under the cache)
#   RT_REQUIRE_AT_LEAST   name of one of the given runtimes (as printed in the table);
#                         exit 1 when the first runtime passes fewer files than it
#   RT_VERSION            runtime-tools module version (default: the pinned one below)
#   RT_BUILD_ONLY=1       build the suite and exit
#
# Every validation program speaks TAP. This script counts the top-level "ok"
# and "not ok" lines ("ok ... # SKIP" lines are counted as skipped, not ok).
# A file passes when it has no "not ok", exits 0 (a timeout counts as a
# failure), and its plan matches the number of results. The *_fail programs
# signal success by exiting 0 without any result line, and failure by a
# YAML "error" diagnostic.
#
# Output: progress on stderr; on stdout a table (a row per validation file,
# a column per runtime), each runtime's run time, the results directory with
# the raw TAP (<runtime>/<test>.tap and .err), and a final line per runtime:
#   <runtime>: N/M files passed, A assertions ok, B not ok
#
# The validation programs run with their working directory and TMPDIR in a
# scratch directory that is removed at the end; mounts that a runtime leaks
# there are detached first, and the cgroups that the cgroup tests leave
# behind are removed after each runtime.
#
# Exit status: 0 when the run completed (whatever the results), 1 when
# RT_REQUIRE_AT_LEAST is not met, 2 on setup errors.
set -euo pipefail
export LC_ALL=C

readonly MODULE=github.com/opencontainers/runtime-tools
readonly PINNED=v0.9.1-0.20251205004911-5e639034dcdc
VERSION=${RT_VERSION:-$PINNED}
TIMEOUT=${RT_TIMEOUT:-120}
CACHE_ROOT=${BERTH_CACHE:-$HOME/.cache/berth}/runtime-tools
SUITE=$CACHE_ROOT/$VERSION

die() {
	echo "runtime-tools.sh: $*" >&2
	exit 2
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

WORK=""
BUILD_TMP=""
cleanup() {
	local dir
	for dir in "$WORK" "$BUILD_TMP"; do
		[ -n "$dir" ] && [ -d "$dir" ] || continue
		# A runtime that leaks a mount in the host namespace must not make us
		# delete through it: detach anything still mounted below the directory
		# (deepest first), and never cross into another file system.
		awk -v p="$dir/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo |
			sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
		rm -rf --one-file-system "$dir" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case "${1:-}" in
-h | --help)
	usage
	exit 0
	;;
esac

[ "$(id -u)" = 0 ] || die "must run as root"
for tool in go tar timeout awk; do
	command -v "$tool" >/dev/null || die "$tool not found"
done
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "RT_TIMEOUT must be a number of seconds"

# build_suite fills $SUITE with bin/runtimetest, bin/validation/<name> and
# rootfs-amd64.tar.gz, atomically: a partial build is never reused.
build_suite() {
	[ -f "$SUITE/.complete" ] && return 0
	echo "== building $MODULE@$VERSION (cached in $SUITE)" >&2
	mkdir -p "$CACHE_ROOT"
	BUILD_TMP=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
	local moddir
	moddir=$(cd "$BUILD_TMP" && GOFLAGS=-mod=mod GOWORK=off go mod download -json "$MODULE@$VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') ||
		die "go mod download $MODULE@$VERSION failed"
	[ -n "$moddir" ] && [ -d "$moddir" ] || die "go mod download did not report a module directory"

	local src=$BUILD_TMP/src out=$BUILD_TMP/suite
	cp -r "$moddir" "$src"
	chmod -R u+w "$src"
	# The module zip ships vendor/modules.txt without the vendored sources;
	# resolve the dependencies through the module proxy instead.
	rm -rf "$src/vendor"
	mkdir -p "$out/bin/validation"
	(
		cd "$src"
		export GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off
		CGO_ENABLED=0 go build -trimpath -tags 'netgo osusergo' -ldflags '-s -w' \
			-o "$out/bin/runtimetest" ./cmd/runtimetest
		go build -trimpath -o "$out/bin/validation/" ./validation/...
	) >&2 || die "building $MODULE@$VERSION failed"
	file_is_static "$out/bin/runtimetest" || die "runtimetest is not statically linked"
	cp "$src/rootfs-amd64.tar.gz" "$out/"
	echo "$VERSION" >"$out/.complete"

	rm -rf "$SUITE"
	mv "$out" "$SUITE"
	rm -rf "$BUILD_TMP"
	BUILD_TMP=""
}

# file_is_static reports whether an ELF binary has no program interpreter.
file_is_static() {
	if command -v file >/dev/null; then
		file -L "$1" | grep -q 'statically linked'
	else
		if grep -q 'ld-linux' "$1"; then return 1; fi
	fi
}

build_suite
if [ "${RT_BUILD_ONLY:-0}" = 1 ]; then
	echo "runtime-tools $VERSION built in $SUITE"
	exit 0
fi

[ $# -gt 0 ] || {
	usage >&2
	exit 2
}

# Resolve the runtimes to absolute paths (the tests run in another directory)
# and give each a unique display name.
RT_PATHS=()
RT_NAMES=()
for arg in "$@"; do
	if [[ "$arg" == */* ]]; then
		[ -x "$arg" ] && [ -f "$arg" ] || die "runtime $arg: no such executable"
		path=$(realpath "$arg")
	else
		path=$(command -v "$arg") || die "runtime $arg not found in PATH"
		path=$(realpath "$path")
	fi
	name=$(basename "$arg")
	n=2
	base=$name
	while printf '%s\n' "${RT_NAMES[@]}" | grep -qxF -- "$name"; do
		name=$base-$n
		n=$((n + 1))
	done
	RT_PATHS+=("$path")
	RT_NAMES+=("$name")
done

if [ -n "${RT_REQUIRE_AT_LEAST:-}" ]; then
	printf '%s\n' "${RT_NAMES[@]}" | grep -qxF -- "$RT_REQUIRE_AT_LEAST" ||
		die "RT_REQUIRE_AT_LEAST=$RT_REQUIRE_AT_LEAST is not one of: ${RT_NAMES[*]}"
fi

TESTS=()
if [ -n "${RT_TESTS:-}" ]; then
	for t in $RT_TESTS; do
		[ -x "$SUITE/bin/validation/$t" ] || die "no such validation: $t"
		TESTS+=("$t")
	done
else
	for f in "$SUITE"/bin/validation/*; do
		TESTS+=("$(basename "$f")")
	done
fi
[ ${#TESTS[@]} -gt 0 ] || die "no validation programs in $SUITE/bin/validation"

RES=${RT_RESULTS:-$CACHE_ROOT/results/$(date +%Y%m%d-%H%M%S)-$$}
mkdir -p "$RES"

# The validation programs unpack ./rootfs-<arch>.tar.gz and copy ./runtimetest
# from their working directory, and put their bundles under $TMPDIR.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-rt-tools.XXXXXX")
cp "$SUITE/bin/runtimetest" "$SUITE/rootfs-amd64.tar.gz" "$WORK/"
mkdir -p "$WORK/tmp"
# Containers with user namespaces reach their bundles as unprivileged users.
chmod 0755 "$WORK" "$WORK/tmp"

# tap_summary FILE prints "ok skip not_ok plan error": counts of top-level
# result lines ("ok ... # SKIP" counted apart from "ok"), the plan count (-1
# when absent), and whether a YAML/JSON diagnostic carries an "error" key.
# Indented lines (diagnostics, subtests) are ignored for the counts.
tap_summary() {
	awk '
		/^ok( |$)/       { if ($0 ~ /#[[:space:]]*[Ss][Kk][Ii][Pp]/) skip++; else ok++ }
		/^not ok( |$)/   { nok++ }
		/^1\.\.[0-9]+/   { if (plan == "") { p = $1; sub(/^1\.\./, "", p); plan = p + 0 } }
		/^[[:space:]]+"?error"?:/ { err = 1 }
		END { printf "%d %d %d %d %d\n", ok, skip, nok, (plan == "" ? -1 : plan), err }' "$1"
}

# The cgroup tests use these cgroup paths (absolute, and relative to the
# runtime's parent cgroup, which is the root here); runtimes remove the
# containers' own cgroups but may keep the parents. suite_cgroups lists the
# ones that exist, deepest first.
suite_cgroups() {
	local h p
	for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		for p in testdir/cgrouptest/container testdir/cgrouptest testdir cgrouptest; do
			[ -d "$h$p" ] && echo "$h$p"
		done
	done
	return 0
}
PREEXISTING_CGROUPS=$(suite_cgroups)

# remove_suite_cgroups removes the empty suite cgroups that did not exist
# before the run, so that each runtime starts from the same host state.
remove_suite_cgroups() {
	local c
	suite_cgroups | while read -r c; do
		grep -qxF -- "$c" <<<"$PREEXISTING_CGROUPS" || rmdir "$c" 2>/dev/null || true
	done
}

declare -A STATUS
FILES_PASSED=()
ASSERT_OK=()
ASSERT_NOK=()
ASSERT_SKIP=()
ELAPSED=()

echo "== runtime-tools $VERSION, ${#TESTS[@]} validation files, timeout ${TIMEOUT}s per file"
for i in "${!RT_PATHS[@]}"; do
	printf '== %s: %s (%s)\n' "${RT_NAMES[$i]}" "${RT_PATHS[$i]}" \
		"$("${RT_PATHS[$i]}" --version 2>/dev/null | head -n1 || true)"
done

for i in "${!RT_PATHS[@]}"; do
	rt=${RT_PATHS[$i]}
	name=${RT_NAMES[$i]}
	mkdir -p "$RES/$name"
	passed=0 aok=0 askip=0 anok=0
	start=$EPOCHSECONDS
	echo "== running against $name" >&2
	for t in "${TESTS[@]}"; do
		tap=$RES/$name/$t.tap
		rc=0
		(cd "$WORK" && RUNTIME="$rt" TMPDIR="$WORK/tmp" \
			timeout -k 10 "$TIMEOUT" "$SUITE/bin/validation/$t") \
			>"$tap" 2>"$RES/$name/$t.err" </dev/null || rc=$?
		read -r ok skip nok plan err < <(tap_summary "$tap")
		aok=$((aok + ok))
		askip=$((askip + skip))
		anok=$((anok + nok))
		ran=$((ok + skip + nok))
		if [ "$nok" -gt 0 ]; then
			st="FAIL($nok)"
		elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			st="TIMEOUT"
		elif [ "$rc" -ne 0 ]; then
			st="FAIL(rc=$rc)"
		elif [ "$ran" -eq 0 ] && [ "$err" -eq 1 ]; then
			st="FAIL(error)"
		elif [ "$ran" -gt 0 ] && [ "$plan" -ne "$ran" ]; then
			st="FAIL(plan)"
		else
			st="PASS"
		fi
		[ "$st" = PASS ] && passed=$((passed + 1))
		STATUS[$i,$t]=$st
		printf '   %-40s %s\n' "$t" "$st" >&2
	done
	remove_suite_cgroups
	FILES_PASSED[i]=$passed
	ASSERT_OK[i]=$aok
	ASSERT_NOK[i]=$anok
	ASSERT_SKIP[i]=$askip
	ELAPSED[i]=$((EPOCHSECONDS - start))
done

# One table: a row per validation file, a column per runtime.
echo
{
	printf '%-40s' "TEST"
	for name in "${RT_NAMES[@]}"; do printf ' %-16s' "$name"; done
	printf '\n'
	for t in "${TESTS[@]}"; do
		printf '%-40s' "$t"
		for i in "${!RT_NAMES[@]}"; do printf ' %-16s' "${STATUS[$i,$t]}"; done
		printf '\n'
	done
}
echo
for i in "${!RT_NAMES[@]}"; do
	printf '%s: run time %ds, %d assertions skipped\n' \
		"${RT_NAMES[$i]}" "${ELAPSED[$i]}" "${ASSERT_SKIP[$i]}"
done
echo "results (raw TAP): $RES"
for i in "${!RT_NAMES[@]}"; do
	printf '%s: %d/%d files passed, %d assertions ok, %d not ok\n' \
		"${RT_NAMES[$i]}" "${FILES_PASSED[$i]}" "${#TESTS[@]}" \
		"${ASSERT_OK[$i]}" "${ASSERT_NOK[$i]}"
done

if [ -n "${RT_REQUIRE_AT_LEAST:-}" ]; then
	for i in "${!RT_NAMES[@]}"; do
		[ "${RT_NAMES[$i]}" = "$RT_REQUIRE_AT_LEAST" ] || continue
		if [ "${FILES_PASSED[0]}" -lt "${FILES_PASSED[$i]}" ]; then
			echo "${RT_NAMES[0]} passes fewer files than $RT_REQUIRE_AT_LEAST (${FILES_PASSED[0]} < ${FILES_PASSED[$i]})" >&2
			exit 1
		fi
	done
fi
exit 0
