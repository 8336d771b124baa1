# Conclave developer entry points. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-sim test lint typecheck unit sim-check soak bench-sim bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: a real local 3-node cluster: writes, SIGKILL of the leader, failover, data intact
demo: $(STAMP)
	$(BIN)/conclave cluster demo

## demo-sim: a narrated simulated run of a 5-node Raft cluster
demo-sim: $(STAMP)
	$(BIN)/conclave demo

## test: lint, type-check, unit/interaction/architecture tests and a fixed set of simulator seeds
test: $(STAMP) lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

## soak: the long seed sweeps of the Done-when lists (Raft at 3, 5, 7 nodes; decisions; PBFT)
soak: $(STAMP)
	$(BIN)/conclave sim raft --seeds 1000 --nodes 3
	$(BIN)/conclave sim raft --seeds 1000 --nodes 5
	$(BIN)/conclave sim raft --seeds 1000 --nodes 7
	$(BIN)/conclave sim decisions --seeds 500
	$(BIN)/conclave sim pbft --seeds 1000 --f 1
	$(BIN)/conclave sim pbft --seeds 200 --f 2

## bench: side-by-side benchmark against etcd, ZooKeeper and PySyncObj (benchmarks/README.md);
## installs the bench extra and Debian's etcd-server and zookeeper when missing.
## BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--quick"
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	bash benchmarks/install_peers.sh
	$(BIN)/python -m benchmarks run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info test-artifacts
