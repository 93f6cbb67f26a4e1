#!/usr/bin/env bash
# Debian packages the tests need: headless Chromium for browser tests, a CJK font so
# Chinese renders in screenshots and PDFs, poppler-utils to turn PDFs into pictures,
# redis-server for the Redis job queue test.
# zbar-tools to decode the QR codes of notice boards.
# postgresql + postgresql-15-postgis-3 (server binaries and pg_dump/pg_restore) for the
# second run of the suite on PostgreSQL/PostGIS (scripts/pg-test.sh) and backups.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fc-list 2>/dev/null | grep -qiE 'Noto (Sans|Serif) CJK|WenQuanYi' || missing+=(fonts-noto-cjk)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || missing+=(postgresql-15-postgis-3)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
