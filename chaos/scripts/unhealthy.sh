#!/usr/bin/env bash
# unhealthy.sh: a service's /health answers 503 while it keeps serving (incident worker-unhealthy: use --replica).
# Example: unhealthy.sh enable --replica 1; unhealthy.sh status; unhealthy.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script unhealthy "a service's /health answers 503 while it keeps serving (incident worker-unhealthy: use --replica)"
chaos_fault unhealthy 1
chaos_service payments --choice
chaos_main "$@"
