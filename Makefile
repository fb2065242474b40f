# asyncmb: the two set-up commands are `make run` and `make test`.
GO      ?= go
BIN     := bin/asyncmb
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Fuzz time per fuzz target in `make test` (CI runs each briefly).
FUZZTIME ?= 10s

.PHONY: build test vet unit fuzz run bench clean test-cluster

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/asyncmb

vet:
	@out=$$("$$($(GO) env GOROOT)/bin/gofmt" -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...

unit: build
	$(GO) test -count=1 -timeout 30m ./...
	GOEXPERIMENT=simd $(GO) test -count=1 ./kernels/

# Each fuzz target is run on its seed corpus plus FUZZTIME of mutation
# (.ci/fuzz; it retries only Go 1.26's spurious deadline report).
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) .ci/fuzz

test: vet unit fuzz

# The main job: l1-logistic regression on a9a, 1 master + 3 workers over
# loopback TCP, until the output is within 1e-3 (relative) of phi*. The first
# run solves for phi* (about 10 s, then cached).
run: build
	$(BIN) info testdata/a9a
	$(BIN) train --np 4 --data testdata/a9a --loss logistic --reg l1 --lambda 1e-4 \
	  --target 1e-3 --epochs 50 --out out/a9a

# A real Slurm cluster on this machine (3 fake nodes, Debian's slurm-wlm and
# munge) and an sshd on loopback, as root: a9a through srun, sbatch and the ssh
# launcher to the target, then everything is torn down, also when a step fails
# (slurm/testcluster.sh; README "Running on a cluster"). A few minutes.
test-cluster: build
	slurm/testcluster.sh test

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1s ./kernels/ ./data/ ./solver/
	$(BIN) bench parse
	$(BIN) bench kernels
	$(BIN) bench reference
	$(BIN) bench rates
	$(BIN) bench comm
	$(BIN) bench train
	$(BIN) bench simulate

clean:
	rm -rf bin
