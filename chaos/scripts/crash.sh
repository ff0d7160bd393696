#!/usr/bin/env bash
# crash.sh: a service process exits once and supervision restarts it; with --loop it exits again at every start until cleared (incident crashloop).
# Example: crash.sh enable --loop --service orders; crash.sh status; crash.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script crash "a service process exits once and supervision restarts it; with --loop it exits again at every start until cleared (incident crashloop)"
chaos_fault crash 1
chaos_service payments --choice
chaos_flag_option --loop crashloop "exit at every start until cleared"
chaos_main "$@"
