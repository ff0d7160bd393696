#!/usr/bin/env bash
# partition.sh: a service cannot reach the listed downstreams: connection refused, as in a network partition.
# Example: partition.sh enable inventory,payments; partition.sh status; partition.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script partition "a service cannot reach the listed downstreams: connection refused, as in a network partition"
chaos_fault block payments
chaos_service orders --choice
chaos_main "$@"
