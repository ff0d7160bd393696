#!/usr/bin/env bash
# payment_hang.sh: payments leaves a share of its calls unanswered until the caller gives up (incident cascading-failure).
# Example: payment_hang.sh enable 0.5; payment_hang.sh status; payment_hang.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script payment_hang "payments leaves a share of its calls unanswered until the caller gives up (incident cascading-failure)"
chaos_fault hang_rate 1.0
chaos_service payments
chaos_main "$@"
