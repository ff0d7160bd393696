#!/usr/bin/env bash
# cpu_burn.sh: a service burns a share of one CPU core, so it answers slower (performance degradation).
# Example: cpu_burn.sh enable 50 --service inventory; cpu_burn.sh status; cpu_burn.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script cpu_burn "a service burns a share of one CPU core, so it answers slower (performance degradation)"
chaos_fault cpu_burn_pct 80
chaos_service payments --choice
chaos_main "$@"
