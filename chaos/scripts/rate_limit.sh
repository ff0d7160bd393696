#!/usr/bin/env bash
# rate_limit.sh: the gateway's per-client rate limit is set far too low, so good clients get 429 (incident rate-limit-misconfig).
# Example: rate_limit.sh enable 0.5; rate_limit.sh status; rate_limit.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script rate_limit "the gateway's per-client rate limit is set far too low, so good clients get 429 (incident rate-limit-misconfig)"
chaos_fault rate_limit_rps 1
chaos_service gateway
chaos_main "$@"
