# seccomp-shim: run `make help` for the targets.
PREFIX    ?= /usr/local
GO        ?= go
BIN       ?= bin
BINARIES  := $(BIN)/seccomp-shim $(BIN)/seccomp-hook $(BIN)/seccomp-agent $(BIN)/seccomp-install
# Every binary is static: no dynamic loader at every container start (about
# 1 ms on a small VM), nothing of the node's libc needed. No binary links
# libseccomp: syscall names come from pkg/unotify/syscalls_gen.go.
# netgo, osusergo: the pure Go resolver and user lookup, nothing of glibc's
# NSS. urfave_cli_no_docs: no man-page renderer (blackfriday), whose init
# costs the shim about 0.3 ms at every start.
TAGS      := netgo,osusergo,urfave_cli_no_docs
# seccomp-shim runs three times per container start. Its only C is the
# pass-through constructor (cmd/shim/passthrough.c), which must run before
# the Go runtime, so it needs cgo and a libc: musl (musl-gcc, from
# musl-tools), because a static glibc's start-up is about 0.6 ms on a VM
# (some 80 cpuid instructions sizing the caches, each a trap to the
# hypervisor) and musl's 0.05 ms (docs/benchmarks.md).
# seccomp-hook and seccomp-install have no C at all: pure Go, no C compiler.
# seccomp-agent keeps a static glibc: its fast path (internal/fastpath) is a
# C thread built and tested on glibc, and it starts once per node, not once
# per container, so musl would gain it nothing.
MUSL_CC   ?= musl-gcc
GO_CGO    := $(GO) build -trimpath -tags $(TAGS) -ldflags '-linkmode external -extldflags "-static"'
GO_PURE   := CGO_ENABLED=0 $(GO) build -trimpath -tags $(TAGS)

.PHONY: help build test unit e2e lint fuzz bench demo install uninstall clean deps newstack

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: $(BINARIES) ## build bin/seccomp-shim, -hook, -agent and -install (BIN=dir to build elsewhere)

$(BIN)/seccomp-shim: FORCE
	@command -v $(MUSL_CC) >/dev/null || { echo "make: seccomp-shim is built with musl, and $(MUSL_CC) is not installed: apt-get install musl-tools (or make deps; MUSL_CC=... names another musl compiler)" >&2; exit 1; }
	CC=$(MUSL_CC) $(GO_CGO) -o $@ ./cmd/shim
$(BIN)/seccomp-hook: FORCE
	$(GO_PURE) -o $@ ./cmd/hook
$(BIN)/seccomp-agent: FORCE
	$(GO_CGO) -o $@ ./cmd/agent
$(BIN)/seccomp-install: FORCE
	$(GO_PURE) -o $@ ./cmd/install
FORCE:

deps: ## install the Debian packages that building and the tests need (root)
	./scripts/deps.sh

# Today's stack (containerd 2.4, runc 1.3, crictl) for the NRI and new-stack
# e2e tests: built once into NEWSTACK_CACHE (a few minutes the first time,
# nothing after); `make test NEWSTACK=` skips those tests instead.
NEWSTACK_CACHE ?= /var/cache/seccomp-shim-newstack
NEWSTACK       ?= $(NEWSTACK_CACHE)

newstack: ## build containerd 2.4, runc 1.3 and crictl once into NEWSTACK_CACHE (root)
	NEWSTACK_CACHE=$(NEWSTACK_CACHE) ./scripts/newstack.sh

test: deps build $(if $(NEWSTACK),newstack) ## every test: unit, fuzz seeds, e2e on Debian's engines and on today's stack (e2e needs root)
	SECCOMP_SHIM_NEWSTACK=$(NEWSTACK) $(GO) test -count=1 ./...

unit: ## run the unit tests only (no root needed)
	$(GO) test -short -count=1 ./pkg/... ./internal/... ./cmd/...

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	./scripts/fuzz.sh $(or $(FUZZTIME),30s)

bench: deps build ## container start through the shim vs runc (root); see docs/benchmarks.md
	./bench/start.sh

demo: deps build ## run a container under the shim and show a denied syscall (root)
	./scripts/demo.sh

# One installer: make install and uninstall are seccomp-install's (docs/install.md).
# DESTDIR: a tree to install into instead of /; INSTALL_FLAGS: more of its
# flags, such as --engines=containerd or --systemd=false.
ROOT := $(if $(DESTDIR),$(abspath $(DESTDIR)),/)

install: build ## seccomp-install install: binaries in PREFIX/bin, the policy, the agent's units, each engine's registration
	$(BIN)/seccomp-install --root $(ROOT) --prefix $(PREFIX) --bin $(BIN) $(INSTALL_FLAGS) install

uninstall: ## seccomp-install uninstall, the installed copy: what install added goes, the policy stays
	$(ROOT)$(PREFIX)/bin/seccomp-install --root $(ROOT) $(INSTALL_FLAGS) uninstall

clean: ## remove build outputs
	rm -rf bin
