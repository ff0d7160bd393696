#!/usr/bin/env bash
# connection_reset.sh: a service drops the connection mid-response on a share of its calls.
# Example: connection_reset.sh enable 0.5 --service inventory; connection_reset.sh status; connection_reset.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script connection_reset "a service drops the connection mid-response on a share of its calls"
chaos_fault reset_rate 0.3
chaos_service payments --choice
chaos_main "$@"
