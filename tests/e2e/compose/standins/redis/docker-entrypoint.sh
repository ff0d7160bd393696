#!/bin/sh
# Like the official image's entrypoint: `redis-server` accepts clients from other containers
# (protected mode off unless a config file given as the first argument sets it) and runs as
# the redis user.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" = "redis-server" ]; then
    if ! { [ -f "${2:-}" ] && grep -q '^protected-mode' "$2"; }; then
        set -- "$@" --protected-mode no
    fi
    if [ "$(id -u)" = 0 ]; then
        chown -R redis:redis /data 2>/dev/null || true
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi
exec "$@"
