#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv in .venv with the package and its dev tools.
# Re-runs are cheap: pip only runs when pyproject.toml or constraints.txt changed since the
# last install.
set -euo pipefail
JALYTICS_LOG_TAG=python
# shellcheck source=ops/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENV="$JALYTICS_ROOT/.venv"
STAMP="$VENV/.jalytics-installed"
PYTHON="${PYTHON:-python3}"

require_cmd "$PYTHON" "Python 3.11+ is required"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11+ is required, found $("$PYTHON" --version)"

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
# Every dependency at the version constraints.txt pins (`make lock` rewrites it).
LOCK="$JALYTICS_ROOT/constraints.txt"
want="$(cat "$JALYTICS_ROOT/pyproject.toml" "$LOCK" | sha256sum | cut -d' ' -f1)"
if [[ "$(first_line "$STAMP")" != "$want" ]]; then
    log "installing jalytics and its dev dependencies (versions from constraints.txt)"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet -c "$LOCK" -e "${JALYTICS_ROOT}[dev]"
    printf '%s\n' "$want" >"$STAMP"
fi
