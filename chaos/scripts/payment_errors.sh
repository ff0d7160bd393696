#!/usr/bin/env bash
# payment_errors.sh: payments answers a share of its calls with an injected error (incidents payments-errors and retry-amplification; with --replica, worker-unhealthy).
# Example: payment_errors.sh enable 0.9 --status 503; payment_errors.sh status; payment_errors.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script payment_errors "payments answers a share of its calls with an injected error (incidents payments-errors and retry-amplification; with --replica, worker-unhealthy)"
chaos_fault error_rate 0.5
chaos_service payments
chaos_value_option --status CODE error_status
chaos_main "$@"
