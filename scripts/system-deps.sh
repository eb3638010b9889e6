#!/usr/bin/env bash
# System packages the test suite needs; installs them with apt when they are missing.
set -euo pipefail
missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The production profile's test: Prefect on PostgreSQL; the reverse proxy's `nginx -t`.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "The tests need: ${missing[*]}. Install them (e.g. sudo apt-get install ${missing[*]})," >&2
  echo "or point ORCA_TEST_MYSQL_URL at a MySQL/MariaDB server you own." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
