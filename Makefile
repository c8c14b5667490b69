# Switchboard. `make run` starts a server with embedded defaults;
# `make test` runs every check CI runs.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/switchboard

.PHONY: run build test lint openrpc bench fuzz clean

## run: build and start the server on 127.0.0.1:8080, data in ./switchboard-data
run: build
	$(BIN) serve

## build: compile the binary into bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/switchboard

## test: formatting, vet, staticcheck, then every test with the race detector
test: lint
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## openrpc: regenerate openrpc.json from the method registry
openrpc:
	$(GO) run ./cmd/switchboard openrpc > openrpc.json

## bench: run the benchmarks (see BENCHMARKS.md for how figures are recorded)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.out

## fuzz: fuzz the incoming-frame decoder for 30 seconds
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseMessage -fuzztime 30s ./rpc/

clean:
	rm -rf bin bench.out
