#!/usr/bin/env bash
# Installs what `make test` needs and the machine may lack: redis-server
# (Debian package), FerretDB 1.x (Go module, MongoDB wire protocol over
# SQLite), s3s-fs (crate: an S3 server over a directory that checks
# signatures and the expiry of presigned URLs), chromium (Debian package) with
# playwright-core (npm) for the browser tests, helm and Jaeger (Go modules).
# And schemathesis (PyPI, in its own virtualenv) for the contract test.
# Idempotent: anything already present is left alone.
set -euo pipefail

FERRETDB_VERSION="${FERRETDB_VERSION:-v1.24.2}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
S3S_FS_VERSION="${S3S_FS_VERSION:-0.14.1}"
SCHEMATHESIS_VENV="${SCHEMATHESIS_VENV:-$HOME/.cache/chatterbox/schemathesis}"
GOBIN="${GOBIN:-$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# redis-cli (redis-tools, which redis-server depends on) builds the test cluster.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "installing redis-server" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

# A plain `go install .../cmd/ferretdb@v1.24.2` builds a binary that panics at
# start: the module lacks the build/version/version.txt its release builds
# generate. So: fetch the module, copy it, write that file, build.
ferretdb_works() {
  "$GOBIN/ferretdb" --version >/dev/null 2>&1
}
if ! ferretdb_works; then
  echo "building FerretDB $FERRETDB_VERSION (a few minutes the first time)" >&2
  src="$(go mod download -json "github.com/FerretDB/FerretDB@${FERRETDB_VERSION}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  build="$(mktemp -d "${TMPDIR:-/tmp}/ferretdb-build.XXXXXX")"
  trap 'rm -rf "$build"' EXIT
  cp -r "$src/." "$build/"
  chmod -R u+w "$build"
  echo "$FERRETDB_VERSION" >"$build/build/version/version.txt"
  mkdir -p "$GOBIN"
  (cd "$build" && go build -buildvcs=false -o "$GOBIN/ferretdb" ./cmd/ferretdb)
  ferretdb_works || { echo "the FerretDB build does not run" >&2; exit 1; }
fi

# An S3-compatible server for the media tests (later versions need a newer Rust).
if ! command -v s3s-fs >/dev/null 2>&1 && ! [ -x "$HOME/.cargo/bin/s3s-fs" ]; then
  echo "building s3s-fs $S3S_FS_VERSION (a few minutes the first time)" >&2
  cargo install s3s-fs --version "$S3S_FS_VERSION" --locked --features binary -j2
fi

# Headless Chromium (Debian package) and playwright-core (npm, pinned by
# tests/browser/package-lock.json) for the web client's browser tests.
if ! [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "installing chromium" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
browser_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if ! [ -f "$browser_tests/node_modules/playwright-core/package.json" ] \
  || ! cmp -s "$browser_tests/package-lock.json" "$browser_tests/node_modules/.package-lock.json.installed"; then
  echo "installing playwright-core" >&2
  (cd "$browser_tests" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$browser_tests/package-lock.json" "$browser_tests/node_modules/.package-lock.json.installed"
fi

# Jaeger v2, the trace viewer the trace test sends spans to (tools/jaeger pins
# it and everything under it; several minutes to build the first time).
JAEGER_BIN="$GOBIN/jaeger-v1.75.0"
if ! "$JAEGER_BIN" --help >/dev/null 2>&1; then
  echo "building jaeger (tools/jaeger)" >&2
  (cd "$(dirname "$0")/../tools/jaeger" && go build -o "$JAEGER_BIN" github.com/jaegertracing/jaeger/cmd/jaeger)
  "$JAEGER_BIN" --help >/dev/null || { echo "the jaeger build does not run" >&2; exit 1; }
fi

# Helm, for linting and rendering the chart (`go install`, a few minutes the first time).
if ! "$GOBIN/helm" version >/dev/null 2>&1; then
  echo "building helm $HELM_VERSION" >&2
  GOBIN="$GOBIN" go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  "$GOBIN/helm" version >/dev/null || { echo "the helm build does not run" >&2; exit 1; }
fi

# Schemathesis, which checks the running API against /openapi.json
# (tests/api/contract.rs), in a virtualenv of its own, every package pinned
# (scripts/schemathesis-requirements.txt: a floating Hypothesis once broke
# the contract test); installed again whenever that list changes.
schemathesis_lock="$(cd "$(dirname "$0")" && pwd)/schemathesis-requirements.txt"
if ! "$SCHEMATHESIS_VENV/bin/st" --version >/dev/null 2>&1 \
  || ! cmp -s "$schemathesis_lock" "$SCHEMATHESIS_VENV/requirements.installed"; then
  echo "installing schemathesis (scripts/schemathesis-requirements.txt)" >&2
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$SCHEMATHESIS_VENV"
  python3 -m venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/pip" install -q --disable-pip-version-check -r "$schemathesis_lock"
  "$SCHEMATHESIS_VENV/bin/st" --version >/dev/null || { echo "schemathesis does not run" >&2; exit 1; }
  cp "$schemathesis_lock" "$SCHEMATHESIS_VENV/requirements.installed"
fi
