#!/usr/bin/env bash
# db_pool_hold.sh: a service takes connections from its database pool and holds them, so requests wait on the pool (incident db-pool-exhaustion).
# Example: db_pool_hold.sh enable 10 --service payments; db_pool_hold.sh status; db_pool_hold.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script db_pool_hold "a service takes connections from its database pool and holds them, so requests wait on the pool (incident db-pool-exhaustion)"
chaos_fault db_pool_hold 10
chaos_service orders --choice
chaos_main "$@"
