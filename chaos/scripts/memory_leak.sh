#!/usr/bin/env bash
# memory_leak.sh: a service leaks memory every second, kept until it is restarted (incident memory-leak).
# Example: memory_leak.sh enable 10 --service orders; memory_leak.sh status; memory_leak.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script memory_leak "a service leaks memory every second, kept until it is restarted (incident memory-leak)"
chaos_fault memory_leak_mb_s 5
chaos_service payments --choice
chaos_main "$@"
