#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only when missing.
# Needs root (or sudo) the first time on a fresh machine.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
pg_up=0
(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && pg_up=1 || true
if [ "$pg_up" = 0 ] && [ -z "${TEST_DATABASE_URL:-}${DATABASE_URL:-}" ] \
   && ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${need[*]}"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
