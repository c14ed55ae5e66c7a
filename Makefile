# berth build, test and benchmark entry points.
#
#   make build        static binaries in bin/ (berthd, berth, berth-runtime)
#   make demo         build, then run containers with berth-runtime (root)
#   make test         unit tests, and the root integration tests when run as root
#   make conformance  OCI runtime-tools validation: berth-runtime next to runc (root)
#   make bench        container run latency and memory (root): the runtime
#                     alone vs runc/crun, and the engine through the docker
#                     CLI vs dockerd, pull/push of a large image from a
#                     local docker-registry vs dockerd, and cold and cached
#                     image builds vs dockerd; BENCH=runtime, BENCH=engine,
#                     BENCH=registry or BENCH=build runs one
#   make clean        remove bin/

# Never download another Go toolchain: a dependency that needs a newer Go
# must fail the build.
export GOTOOLCHAIN := local

GO ?= go
BIN := bin

# The runtime has one small cgo constructor (namespace entry for exec), so
# it is linked statically with cgo: the binary must run inside containers
# and on hosts without a matching libc.
STATIC_TAGS := netgo osusergo
STATIC_LDFLAGS := -s -w -linkmode external -extldflags "-static"

# The root integration tests share host state (mounts, cgroups, /run) and
# check it for leaks, so test binaries run one at a time.
TEST_FLAGS ?= -count=1 -timeout 15m -p 1

.PHONY: all build demo test conformance bench clean

all: build

build: $(BIN)/berth-runtime $(BIN)/berthd $(BIN)/berth

# Always rebuilt: go build is incremental and knows the dependencies.
.PHONY: $(BIN)/berth-runtime $(BIN)/berthd
$(BIN)/berth-runtime $(BIN)/berthd:
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build -trimpath -tags '$(STATIC_TAGS)' -ldflags '$(STATIC_LDFLAGS)' -o $@ ./cmd/$(notdir $@)
	@file $@ | grep -q 'statically linked' || { echo "$@ is not statically linked:" >&2; file $@ >&2; exit 1; }

# The CLI has no cgo at all.
.PHONY: $(BIN)/berth
$(BIN)/berth:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./cmd/berth

demo: build
	hack/demo.sh

# The end-to-end tests (test/e2e) drive the binaries built here.
test: build
	BERTHD_BIN=$(abspath $(BIN)/berthd) BERTH_BIN=$(abspath $(BIN)/berth) $(GO) test $(TEST_FLAGS) ./...

conformance: build
	hack/runtime-tools.sh $(BIN)/berth-runtime runc

BENCH ?= all

bench: build
ifeq ($(filter $(BENCH),all runtime engine registry build),)
	$(error BENCH must be all, runtime, engine, registry or build)
endif
ifneq ($(filter $(BENCH),all runtime),)
	hack/bench-runtime.sh
endif
ifneq ($(filter $(BENCH),all engine),)
	hack/bench-engine.sh
endif
ifneq ($(filter $(BENCH),all registry),)
	hack/bench-registry.sh
endif
ifneq ($(filter $(BENCH),all build),)
	hack/bench-build.sh
endif

clean:
	rm -rf $(BIN)
