# ChatterBox: the two commands are `make run` and `make test`.

# One build directory outside the clone, shared by every checkout and by CI,
# so a fresh clone does not rebuild the world.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/chatterbox/target
CARGO ?= cargo
JOBS ?= 2

.PHONY: run test test-deps lint fmt build clean-data help bench

help:
	@echo "make run    - build and start the whole suite on http://127.0.0.1:8080 (embedded mode)"
	@echo "make test   - install and start the test servers, then run every test"
	@echo "make lint   - rustfmt check and clippy with warnings as errors"

## The whole suite in one process: SQLite, in-process events, media on disk.
run:
	$(CARGO) run --release -j $(JOBS) --bin chatterbox

build:
	$(CARGO) build -j $(JOBS) --workspace

## redis-server and FerretDB on free loopback ports, then every test.
test: test-deps lint
	$(CARGO) build -j $(JOBS) --workspace --tests --bins
	./scripts/with-test-servers.sh $(CARGO) test -j $(JOBS) --workspace --no-fail-fast

test-deps:
	./scripts/install-test-deps.sh

## Figures, not verdicts: sends and history reads on both backends (release build).
BENCH_ARGS ?=
bench: test-deps
	$(CARGO) build --release -j $(JOBS) -p chatterbox-bench
	$(CARGO_TARGET_DIR)/release/chatterbox-bench --backend embedded $(BENCH_ARGS)
	./scripts/with-test-servers.sh $(CARGO_TARGET_DIR)/release/chatterbox-bench --backend mongo-redis \
		--sends 300 --concurrency 8 --conversations 10 --messages 2000 --reads 300 $(BENCH_ARGS)


lint:

	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -j $(JOBS) --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean-data:
	rm -rf ./data
