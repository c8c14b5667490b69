# Switchboard. `make run` starts a server with embedded defaults;
# `make test` runs every check CI runs.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/switchboard

NPM_CI   := npm ci --no-audit --no-fund --loglevel=error

.PHONY: run build test gotest lint openrpc client client-test console-check sdk sdk-test e2e-test bench soak fuzz clean

## run: build and start the server on 127.0.0.1:8080, data in ./switchboard-data
run: build
	$(BIN) serve

## build: compile the binary into bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/switchboard

## test: formatting, vet, staticcheck, every Go test with the race detector, then the TypeScript client, console, SDK and browser checks
test: lint gotest client-test console-check sdk-test e2e-test

gotest:
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## openrpc: regenerate openrpc.json from the method registry
openrpc:
	$(GO) run ./cmd/switchboard openrpc > openrpc.json

## client: regenerate the TypeScript client's typed layer from openrpc.json and rebuild
##   web/client/dist, which the binary embeds and serves at /sdk/; commit the result
client: web/client/node_modules/.package-lock.json
	cd web/client && npm run --silent build

web/client/node_modules/.package-lock.json: web/client/package-lock.json
	cd web/client && $(NPM_CI)

## client-test: the TypeScript client: fails if its generated layer or dist/ is stale, checks its
##   types and its size, then runs its tests against the binary with Node's ws
client-test: build web/client/node_modules/.package-lock.json
	cd web/client && SWITCHBOARD_BIN=$(abspath $(BIN)) npm test --silent

## console-check: type-check the web console's modules (// @ts-check, JSDoc) with web/client's TypeScript;
##   its browser tests are in e2e/test/console.test.mjs (make e2e-test)
console-check: web/client/node_modules/.package-lock.json
	web/client/node_modules/.bin/tsc -p web/console/tsconfig.json

## sdk: generate a TypeScript client from openrpc.json into sdk/generated and compile it
sdk: sdk/node_modules/.package-lock.json
	rm -rf sdk/generated
	cd sdk && npm run --silent generate

# npm ci installs exactly what package-lock.json pins, and again only when
# the lock file changes.
sdk/node_modules/.package-lock.json: sdk/package-lock.json
	cd sdk && $(NPM_CI)

## sdk-test: the generated client, parseOpenRPCDocument and test-coverage against a live server
sdk-test: build sdk
	cd sdk && SWITCHBOARD_BIN=$(abspath $(BIN)) npm test --silent

## e2e-test: probes of a live server with Node's ws and Debian's Chromium (playwright-core)
e2e-test: build e2e/node_modules/.package-lock.json
	cd e2e && SWITCHBOARD_BIN=$(abspath $(BIN)) npm test --silent

e2e/node_modules/.package-lock.json: e2e/package-lock.json
	cd e2e && $(NPM_CI)

## bench: run the benchmarks (see BENCHMARKS.md for how figures are recorded)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.out

## soak: waves of 10,000 WebSockets opened, subscribed and closed for 5 minutes against the
##   binary, publishers running; checks that goroutines and heap come back (BENCHMARKS.md, Soak).
##   Not part of make test. SOAK_DURATION, SOAK_CONNS, SOAK_CHANNELS, SOAK_HOLD and SOAK_RATE
##   change it; SOAK_SERVER_ARGS adds flags to serve (none by default), e.g. to lift a
##   per-IP connection limit, should serve get one, since every connection comes from 127.0.0.1.
SOAK_TIMEOUT ?= 60m
soak:
	SWITCHBOARD_SOAK=1 $(GO) test -run '^TestSoak$$' -count=1 -v -timeout $(SOAK_TIMEOUT) ./bench/

## fuzz: run each fuzz target for FUZZTIME (30s; the hardening runs gave each 10m)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseMessage$$' -fuzztime $(FUZZTIME) ./rpc/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeParams$$' -fuzztime $(FUZZTIME) ./rpc/
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./auth/
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyClaims$$' -fuzztime $(FUZZTIME) ./auth/

clean:
	rm -rf bin bench.out sdk/generated sdk/node_modules e2e/node_modules web/client/node_modules web/client/build
