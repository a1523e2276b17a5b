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

.PHONY: run test test-js lint build services fmt vet

# staticcheck is pinned here and fetched through the Go module proxy on first use.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

run: services
	$(GO) run . serve

# `go test -race` needs a C compiler: --with-cc makes services.sh install gcc
# if it is missing, and --with-node Node.js and npm for the TypeScript client
# (target-specific variables also apply to prerequisites). `make test` runs
# the Go tests, then the TypeScript client's.
test: SERVICES_FLAGS = --with-cc --with-node
test: services
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...
	$(TEST_JS)

# The TypeScript client (clients/js) alone: its tests start their own brokers.
TEST_JS = cd clients/js && npm ci --no-audit --no-fund && npm test
test-js: SERVICES_FLAGS = --with-node
test-js: services
	$(TEST_JS)

build:
	$(GO) build -o bin/herald .

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
