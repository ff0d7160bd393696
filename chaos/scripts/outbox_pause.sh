#!/usr/bin/env bash
# outbox_pause.sh: the orders outbox relay stops delivering events to notifications; the outbox grows (incident outbox-stuck).
# Example: outbox_pause.sh enable; outbox_pause.sh status; outbox_pause.sh disable
# See --help; the shared logic is in lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chaos_script outbox_pause "the orders outbox relay stops delivering events to notifications; the outbox grows (incident outbox-stuck)"
chaos_fault outbox_paused 1
chaos_service orders
chaos_main "$@"
