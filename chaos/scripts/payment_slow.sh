#!/usr/bin/env bash
# payment_slow.sh: payments answers every call late (incident payments-latency; with inventory slow too, cascading-failure).
# Example: payment_slow.sh enable 20000 --jitter 500 --ttl 120; payment_slow.sh status; payment_slow.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script payment_slow "payments answers every call late (incident payments-latency; with inventory slow too, cascading-failure)"
chaos_fault latency_ms 2000
chaos_service payments
chaos_value_option --jitter MS latency_jitter_ms
chaos_main "$@"
