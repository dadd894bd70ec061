# ConnectHub — the two commands a fresh machine needs: `make run` and `make test`.
# Prerequisites: Go (see go.mod) and Node.js 20+ with npm (for the pinned Azurite).

SHELL      := /bin/bash
GO         ?= go
AZURITE    := tools/node_modules/.bin/azurite-table
VERSION    ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -X github.com/connecthub/connecthub/internal/app.Build=$(VERSION)
# An execution count, not a duration: with a duration, Go 1.26's fuzz coordinator can report its own
# deadline as a failure ("context deadline exceeded", no crasher; go.dev/issue/75804, fixed in 1.27).
FUZZTIME   ?= 50000x
BENCHTIME  ?= 1s

.PHONY: run sandbox test build package bench lint tools clean fuzz soak browser

tools: tools/node_modules/.installed

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	@touch $@

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/handler ./cmd/handler
	$(GO) build -o bin/devhost ./cmd/devhost
	$(GO) build -o bin/connecthub ./cmd/connecthub
	$(GO) build -o bin/withazurite ./cmd/withazurite
	$(GO) build -o bin/sandbox ./cmd/sandbox

# local.settings.json is created once from the sample, with fresh random keys for the local secret file
# and devhost's function/master keys. It is git-ignored.
local.settings.json: local.settings.sample.json
	@if [ -f $@ ]; then echo "local.settings.json exists; compare it with the sample if settings changed"; touch $@; else \
	  sed -e "0,/GENERATED_BY_MAKE_RUN/s##$$(head -c32 /dev/urandom | base64)#" \
	      -e "0,/GENERATED_BY_MAKE_RUN/s##$$(head -c24 /dev/urandom | base64 | tr '+/' '-_')#" \
	      -e "0,/GENERATED_BY_MAKE_RUN/s##$$(head -c24 /dev/urandom | base64 | tr '+/' '-_')#" $< > $@; \
	  echo "created local.settings.json with fresh local keys"; fi

run: build tools local.settings.json
	bin/withazurite -port 10002 -location .azurite -- bin/devhost -handler bin/handler -settings local.settings.json

# sandbox is make run against local fakes of Entra ID, Graph, RingCentral and Salesforce (the tests'
# fakes): bin/sandbox writes sandbox.settings.json (local.settings.json pointed at the fakes), serves its
# control API on 127.0.0.1:7072 and runs devhost with those settings; Ctrl-C stops devhost, the fakes
# and Azurite.
# Same storage and local secret file as make run; the fakes forget everything when stopped.
sandbox: build tools local.settings.json
	bin/withazurite -port 10002 -location .azurite -- bin/sandbox -settings local.settings.json -out sandbox.settings.json -- \
	  bin/devhost -handler bin/handler -settings sandbox.settings.json

# The portal's browser tests drive Debian's Chromium (never a downloaded browser build): installed from
# Debian's packages when missing (root, or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the portal's browser tests"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: tools browser
	$(GO) vet ./...
	$(GO) build -o bin/withazurite ./cmd/withazurite
	bin/withazurite -tls -- $(GO) test -count=1 ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

# The soak (README, "Soak and faults"): 100,000 real encrypted presence notifications through devhost and
# the handler to the fake RingCentral, with a handler kill, a 90-second Table Storage outage and PBX and
# Graph faults on the way; it prints the account and fails on any loss, double application, dead letter
# or parked message. Loopback only, bounded in count and time. `make test` runs a small version.
# Options: make soak SOAKARGS='-soak.notifications=20000 -soak.outage=30s' (see the flags in
# internal/dev/e2e/soak_test.go).
SOAKARGS ?=
soak: tools
	$(GO) build -o bin/withazurite ./cmd/withazurite
	bin/withazurite -- $(GO) test -count=1 -v -timeout 60m -run '^TestSoak$$' ./internal/dev/e2e/ -args \
	  -soak.notifications=100000 -soak.clients=12 -soak.kill=1 -soak.outage=90s -soak.pbx-faults=200 -soak.graph-faults=50 $(SOAKARGS)

# Each fuzz target runs a bounded number of executions (seconds each here); a crash fails the build.
fuzz:
	@set -e; for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed -E 's/func (Fuzz[A-Za-z0-9_]*).*/\1/'); do \
	    echo "fuzz $$t $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$t; done; done

bench: tools
	$(GO) build -o bin/withazurite ./cmd/withazurite
	set -o pipefail; bin/withazurite -- $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m ./... | tee bench.out

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# package builds dist/connecthub.zip exactly as Azure expects: host.json at the root, one folder per
# function, and the linux/amd64 handler with its run bit, no parent folder.
package:
	rm -rf dist/app && mkdir -p dist/app
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o dist/app/handler ./cmd/handler
	cp host.json dist/app/
	cp -r functions/* dist/app/
	$(GO) run ./cmd/pack -dir dist/app -out dist/connecthub.zip

clean:
	rm -rf bin dist bench.out .azurite .sandbox sandbox.settings.json

-include infra/deploy.mk
