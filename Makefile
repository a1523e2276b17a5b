# Herald developer entry points. `make run` and `make test` first run
# scripts/services.sh, which installs/starts PostgreSQL and Mosquitto when
# they are not already answering on 127.0.0.1 (see README "Quick start").

SHELL := /bin/bash
GO    ?= go

# Where Herald and the tests find their services. Values already set in the
# environment (or on the make command line) win.
HERALD_DATABASE_URL      ?= postgres://herald:herald@127.0.0.1:5432/herald?sslmode=disable
HERALD_MQTT_URL          ?= tcp://127.0.0.1:1883
HERALD_TEST_DATABASE_URL ?= $(HERALD_DATABASE_URL)
export HERALD_DATABASE_URL HERALD_MQTT_URL HERALD_TEST_DATABASE_URL

TEST_TIMEOUT ?= 20m
TEST_FLAGS   ?=
# HERALD_SKIP_SERVICES=1 skips scripts/services.sh (services managed elsewhere).
HERALD_SKIP_SERVICES ?=

.PHONY: run test test-js bench lint build services fmt vet

# What `herald version` says: set here, at link time. A plain `go build` or
# `go install` falls back to the build information the go command records.
BIN        ?= bin/herald
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS    := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)

# staticcheck is pinned here and fetched through the Go module proxy on first use.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Built, then run in place of the shell (exec): Ctrl-C reaches Herald, which
# shuts down gracefully and exits 0, so make reports no error. (`go run` would
# exit 1 after any interrupt.)
run: services build
	exec $(BIN) serve

# `go test -race` needs a C compiler: --with-cc makes services.sh install gcc
# if it is missing, and --with-node Node.js and npm for the TypeScript client
# (target-specific variables also apply to prerequisites). `make test` runs
# the Go tests, then the TypeScript client's. The Go end-to-end test of the
# players runs the TypeScript client too (it builds clients/js when dist/ is
# missing or older than src/); HERALD_REQUIRE_NODE=1 makes it fail rather than
# skip should Node.js be missing.
test: SERVICES_FLAGS = --with-cc --with-node
test: services
	HERALD_REQUIRE_NODE=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...
	$(TEST_JS)

# `make bench` runs every benchmark scenario of bench/ against a built herald
# process, each next to its baseline in the same run, and prints one table
# (see BENCHMARKS.md). BENCH_SCALE=0.1 is a tenth of every size, BENCH_RUNS
# the runs per scenario (3), BENCH_ONLY a regular expression of scenario
# names, BENCH_PROFILE=DIR CPU profiles of herald during the fan-out, the
# upload and the cron fires. A full run takes about 25 minutes on 2 cores.
BENCH_TIMEOUT ?= 4h
bench: services
	BENCH=1 $(GO) test -count=1 -timeout $(BENCH_TIMEOUT) -run '^TestBench$$' -v ./bench

# The TypeScript client (clients/js) alone: its tests start their own brokers.
TEST_JS = cd clients/js && npm ci --no-audit --no-fund && npm test
test-js: SERVICES_FLAGS = --with-node
test-js: services
	$(TEST_JS)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

services:
ifeq ($(HERALD_SKIP_SERVICES),1)
	@echo "services: HERALD_SKIP_SERVICES=1, not touching local services"
else
	@scripts/services.sh $(SERVICES_FLAGS)
endif

# lint fails on unformatted files, go vet findings and staticcheck findings;
# .ci/run runs it before the tests.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	$(GO) fmt ./...

vet:
	$(GO) vet ./...
