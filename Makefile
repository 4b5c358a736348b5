# ChatterBox: the two commands are `make run` and `make test`.

# One build directory outside the clone, shared by every checkout and by CI,
# so a fresh clone does not rebuild the world.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/chatterbox/target
CARGO ?= cargo
JOBS ?= 2

.PHONY: run test test-deps lint fmt build clean-data help bench chart-lint

help:
	@echo "make run    - build and start the whole suite on http://127.0.0.1:8080 (embedded mode)"
	@echo "make test   - install and start the test servers, then run every test"
	@echo "make lint   - rustfmt check and clippy with warnings as errors"

## The whole suite in one process: SQLite, in-process events, media on disk.
run:
	$(CARGO) run --release -j $(JOBS) --bin chatterbox

build:
	$(CARGO) build -j $(JOBS) --workspace

## redis-server and FerretDB on free loopback ports, then every test
## (tests/deployment.rs renders the chart with helm and checks the manifests).
test: test-deps lint chart-lint
	$(CARGO) build -j $(JOBS) --workspace --tests --bins
	./scripts/with-test-servers.sh $(CARGO) test -j $(JOBS) --workspace --no-fail-fast

test-deps:
	./scripts/install-test-deps.sh

HELM ?= $(shell go env GOPATH 2>/dev/null || echo $$HOME/go)/bin/helm
## helm lint with the default and the production-like values.
chart-lint: test-deps
	$(HELM) lint --strict helm/chatterbox
	$(HELM) lint --strict helm/chatterbox --values helm/chatterbox/ci/production-values.yaml

## Figures, not verdicts (release build): sends and history reads on both
## backends, then WebSocket fan-out with the suite in its own processes.
## BENCH_ARGS go to the HTTP part, REALTIME_ARGS to the real-time part.
BENCH_ARGS ?=
REALTIME_ARGS ?=
bench: test-deps
	$(CARGO) build --release -j $(JOBS) -p chatterbox-bench -p chatterbox --bins
	$(CARGO_TARGET_DIR)/release/chatterbox-bench store
	$(CARGO_TARGET_DIR)/release/chatterbox-bench http --backend embedded $(BENCH_ARGS)
	./scripts/with-test-servers.sh $(CARGO_TARGET_DIR)/release/chatterbox-bench http --backend mongo-redis \
		--sends 300 --concurrency 2 --conversations 10 --messages 2000 --reads 300 --searches 50 $(BENCH_ARGS)
	ulimit -n "$$(ulimit -Hn)"; ./scripts/with-test-servers.sh $(CARGO_TARGET_DIR)/release/chatterbox-bench realtime $(REALTIME_ARGS)
	# The contract, property and fault-drill tests at about ten times their
	# `make test` size, with fresh seeds.
	# The soak's thousand clients need more than the default 1,024 open files.
	ulimit -n "$$(ulimit -Hn)"; CHATTERBOX_SCHEMATHESIS_EXAMPLES=200 CHATTERBOX_SCHEMATHESIS_SEED=random PROPTEST_CASES=5000 \
		CHATTERBOX_DRILL_MESSAGES=2000 CHATTERBOX_SOAK_CLIENTS=1000 CHATTERBOX_SOAK_SECS=60 \
		CHATTERBOX_SOAK_RATE=200 CHATTERBOX_SOAK_LOGINS=50 \
		./scripts/with-test-servers.sh $(CARGO) test -j $(JOBS) --workspace -- --nocapture contract:: properties:: drill_


lint:

	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -j $(JOBS) --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean-data:
	rm -rf ./data
