#!/usr/bin/env bash
# inventory_lock.sh: inventory holds its stock row locks this long per reservation, so reservations queue behind them (incident inventory-lock).
# Example: inventory_lock.sh enable 5000; inventory_lock.sh status; inventory_lock.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script inventory_lock "inventory holds its stock row locks this long per reservation, so reservations queue behind them (incident inventory-lock)"
chaos_fault lock_contention_ms 2000
chaos_service inventory
chaos_main "$@"
