# Shared by scripts/serve and scripts/test: create .venv and (re)install when pyproject changes.
# Usage: source scripts/_venv.sh EXTRAS   (EXTRAS is "" or "[test]")
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "ccbridge needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
extras=${1:-}
stamp=".venv/.installed${extras}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing ccbridge${extras} into .venv (first run takes a minute)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${extras}"
  echo "$want" > "$stamp"
fi
