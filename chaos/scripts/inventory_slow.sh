#!/usr/bin/env bash
# inventory_slow.sh: inventory answers every call late: slow for orders' breaker, within its timeout (with payments hanging: cascading-failure).
# Example: inventory_slow.sh enable; inventory_slow.sh enable 2500 --ttl 120; inventory_slow.sh status; inventory_slow.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script inventory_slow "inventory answers every call late: slow for orders' breaker, within its timeout (with payments hanging: cascading-failure)"
# Between orders' breaker_slow_call_s and downstream_timeout_s: 2-3 s in training, 1-1.5 s in ci.
chaos_fault latency_ms 2000 1250
chaos_service inventory
chaos_value_option --jitter MS latency_jitter_ms
chaos_main "$@"
