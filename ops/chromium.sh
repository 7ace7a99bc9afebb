#!/usr/bin/env bash
# The browser the analyst inbox's tests drive (tests/e2e/test_ui_browser.py): Debian's
# Chromium, through Playwright (which cannot download a browser of its own here).
set -euo pipefail

JALYTICS_LOG_TAG=chromium
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<USAGE
Usage: ops/chromium.sh COMMAND
  path     print the Chromium binary to use (CHROMIUM_BIN, else chromium on PATH)
  install  the same, installing Debian's chromium package first when run as root and missing
USAGE
}

find_chromium() {
    local found="${CHROMIUM_BIN:-$(command -v chromium || true)}"
    if [[ -z "$found" ]]; then
        apt_install_missing "${1:-}" chromium --no-install-recommends
        found="$(command -v chromium || true)"
    fi
    [[ -x "$found" ]] || die "chromium not found (apt-get install -y chromium, or set CHROMIUM_BIN)"
    printf '%s\n' "$found"
}

case "${1:-}" in
    path) find_chromium ;;
    install) find_chromium install ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
