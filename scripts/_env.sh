# Sourced by quickstart.sh and test.sh: make (or reuse) .venv with torch and nas-gym installed.
# Reinstalls only when pyproject.toml changed since the last install, so reruns start at once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NAS_GYM_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[nas-gym] creating virtual environment $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.nas-gym-installed"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[nas-gym] installing torch and nas-gym[dev] into $VENV (first run: a few minutes)" >&2
  "$VENV/bin/python" -m pip install -qq --upgrade pip
  "$VENV/bin/python" -m pip install -qq torch==2.14.1 torchvision==0.29.1
  "$VENV/bin/python" -m pip install -qq -e "$ROOT[dev]"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
