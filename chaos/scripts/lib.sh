# shellcheck shell=bash
# Shared functions of the runbook chaos scripts (sourced, never run).
#
# A script declares its fault family and calls chaos_main:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   chaos_script payment_errors "payments answers a share of its calls with an error"
#   chaos_fault error_rate 0.5                 # the fault `enable` sets, and its default value
#   chaos_service payments                     # fixed service (or chaos_service payments --choice)
#   chaos_value_option --status CODE error_status   # `--status 503` also sets error_status
#   chaos_flag_option --loop crashloop "..."   # `--loop` sets crashloop instead of the main fault
#   chaos_main "$@"
#
# Faults are written the way services/common/faults/store.py writes them: the key
# `chaos:<service>:<fault>[:replica=N][:route=/path]`, a plain-text value, a TTL (SET PX),
# and an entry in the `chaos:audit` stream (action, key, value, ttl_s, who, at), in one
# atomic Lua call. Names, bounds and units come from the catalogue in
# services/common/faults/catalogue.py, read through a python that can import it.

CHAOS_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHAOS_ROOT="$(cd "$CHAOS_LIB_DIR/../.." && pwd)"
CHAOS_AUDIT_STREAM="chaos:audit"
CHAOS_AUDIT_MAXLEN=10000
CHAOS_REDIS_TIMEOUT_S=3
# Only for when no python can import the catalogue (then values are not checked).
CHAOS_FALLBACK_TTL_S=600
CHAOS_FALLBACK_MAX_TTL_S=86400
# services/common/faults/store.py accepts replicas 0..64.
CHAOS_MAX_REPLICA=64

CHAOS_NAME=""
CHAOS_SUMMARY=""
CHAOS_FAULT=""
CHAOS_DEFAULT_VALUE=""
CHAOS_DEFAULT_VALUE_CI=""  # the default under CHAOSLAB_PROFILE=ci, when it differs
CHAOS_SERVICE=""
CHAOS_SERVICE_CHOICE=no
CHAOS_VALUE_OPTS=()   # "option|METAVAR|fault"
CHAOS_FLAG_OPTS=()    # "option|fault|help"
CHAOS_PYTHON=""

# --- declarations -------------------------------------------------------------------------

chaos_script() { CHAOS_NAME="$1"; CHAOS_SUMMARY="$2"; }
# chaos_fault FAULT DEFAULT [CI_DEFAULT]: a value that must sit between two of the profile's
# time scales (a slow-call threshold and a timeout, say) has a default of its own in ci.
chaos_fault() { CHAOS_FAULT="$1"; CHAOS_DEFAULT_VALUE="$2"; CHAOS_DEFAULT_VALUE_CI="${3:-}"; }

chaos_default_value() {  # the default for the profile in CHAOSLAB_PROFILE
    if [[ "${CHAOSLAB_PROFILE:-training}" == ci && -n "$CHAOS_DEFAULT_VALUE_CI" ]]; then
        printf '%s' "$CHAOS_DEFAULT_VALUE_CI"
    else
        printf '%s' "$CHAOS_DEFAULT_VALUE"
    fi
}

chaos_default_text() {  # the default as --help tells it
    printf '%s' "$CHAOS_DEFAULT_VALUE"
    if [[ -n "$CHAOS_DEFAULT_VALUE_CI" ]]; then printf '; %s with CHAOSLAB_PROFILE=ci' "$CHAOS_DEFAULT_VALUE_CI"; fi
}
chaos_service() {
    CHAOS_SERVICE="$1"
    if [[ "${2:-}" == "--choice" ]]; then CHAOS_SERVICE_CHOICE=yes; fi
}
chaos_value_option() { CHAOS_VALUE_OPTS+=("$1|$2|$3"); }
chaos_flag_option() { CHAOS_FLAG_OPTS+=("$1|$2|$3"); }

# Every fault the script manages: `disable` and `status` cover all of them.
chaos_family() {
    local spec opt meta fault
    printf '%s\n' "$CHAOS_FAULT"
    for spec in "${CHAOS_VALUE_OPTS[@]+"${CHAOS_VALUE_OPTS[@]}"}"; do
        IFS='|' read -r opt meta fault <<<"$spec"
        printf '%s\n' "$fault"
    done
    for spec in "${CHAOS_FLAG_OPTS[@]+"${CHAOS_FLAG_OPTS[@]}"}"; do
        IFS='|' read -r opt fault meta <<<"$spec"
        printf '%s\n' "$fault"
    done
}

# --- small helpers ------------------------------------------------------------------------

chaos_die() {  # chaos_die STATUS MESSAGE
    printf '%s: %s\n' "$CHAOS_NAME.sh" "$2" >&2
    exit "$1"
}

chaos_redis_url() { printf '%s' "${REDIS_URL:-redis://127.0.0.1:6379/0}"; }

# The URL with any password hidden, for messages.
chaos_redis_url_shown() { chaos_redis_url | sed -E 's#//[^@/]*@#//***@#'; }

chaos_who() {
    local user="${USER:-}"
    if [[ -z "$user" ]]; then user="$(id -un 2>/dev/null || echo unknown)"; fi
    printf 'script:%s:%s' "$CHAOS_NAME" "$user"
}

# --- the catalogue, through python ----------------------------------------------------------

# Prints the catalogue entry of faults (mode describe), or checks values (mode check).
# Exit 10: this python cannot import the catalogue; 2: a value is refused (the message on stdout).
read -r -d '' CHAOS_PY_SNIPPET <<'PY' || true
import sys
sys.path[0] = sys.argv[1]  # the repo, instead of the current directory
try:
    from services.common.web.errors import BadInput
    from services.common.faults.catalogue import CALLERS, DEFAULT_TTL_S, MAX_TTL_S, lookup
except Exception:  # noqa: BLE001 - any failure means "no catalogue here"
    sys.exit(10)


def fmt(x):
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def value_text(f):
    unit = f" {f.unit}" if f.unit else ""
    if f.kind == "rate":
        return f"a number from {fmt(f.low)} to {fmt(f.high)} (the share{unit})"
    if f.kind == "int":
        return f"a whole number from {fmt(f.low)} to {fmt(f.high)}{unit}"
    if f.kind == "float":
        return f"a number from {fmt(f.low)} to {fmt(f.high)}{unit}"
    if f.kind == "bool":
        return "on or off: 1/true or 0/false"
    if f.kind == "status":
        return "one of 500, 502, 503, 504"
    if f.kind == "services":
        return "a comma-separated list of the service's downstreams (" + "; ".join(
            f"{s}: {','.join(d)}" for s, d in CALLERS.items() if s in f.services) + ")"
    return f.kind


def ttl_of(raw, profile):
    if raw == "":
        ttl = DEFAULT_TTL_S.get(profile, DEFAULT_TTL_S["training"])
    else:
        try:
            ttl = float(raw)
        except ValueError:
            ttl = None
        if ttl is None or not 1 <= ttl <= MAX_TTL_S:
            raise BadInput(f"--ttl must be a number of seconds between 1 and {MAX_TTL_S}, not {raw!r}")
    return int(ttl) if float(ttl).is_integer() else ttl


mode, args = sys.argv[2], sys.argv[3:]
try:
    if mode == "describe":  # describe FAULT...
        for name in args:
            f = lookup(name)
            print(f"{name}\t{f.description}\t{value_text(f)}\t{', '.join(f.services)}")
        print(f"ttl\t{DEFAULT_TTL_S['training']}\t{DEFAULT_TTL_S['ci']}\t{MAX_TTL_S}")
    elif mode == "check":  # check PROFILE SERVICE TTL [FAULT VALUE]...
        profile, service, ttl = args[0], args[1], args[2]
        out = [str(ttl_of(ttl, profile))]
        for name, raw in zip(args[3::2], args[4::2]):
            f = lookup(name)
            out.append(f.encode(f.parse(raw, service)))
        print("\n".join(out))
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        sys.exit(1)
except BadInput as exc:
    print(exc.message)  # on stdout: the script shows it as its own message
    sys.exit(2)
PY

# Runs the snippet with the first python that can import the catalogue:
# $CHAOSLAB_PYTHON, the repo's .venv/bin/python, python3. Returns 10 when none can.
chaos_py() {
    local py status
    if [[ -n "$CHAOS_PYTHON" ]]; then
        "$CHAOS_PYTHON" -c "$CHAOS_PY_SNIPPET" "$CHAOS_ROOT" "$@"
        return
    fi
    for py in "${CHAOSLAB_PYTHON:-}" "$CHAOS_ROOT/.venv/bin/python" python3; do
        if [[ -z "$py" ]] || ! command -v "$py" >/dev/null 2>&1; then continue; fi
        status=0
        "$py" -c "$CHAOS_PY_SNIPPET" "$CHAOS_ROOT" "$@" || status=$?
        if [[ "$status" -ne 10 ]]; then
            CHAOS_PYTHON="$py"
            return "$status"
        fi
    done
    return 10
}

# --- redis ------------------------------------------------------------------------------

chaos_rcli() {
    local cmd=(redis-cli --no-auth-warning -e -u "$(chaos_redis_url)")
    if command -v timeout >/dev/null 2>&1; then
        cmd=(timeout "$CHAOS_REDIS_TIMEOUT_S" "${cmd[@]}")
    fi
    "${cmd[@]}" "$@"
}

chaos_require_redis() {
    local out status=0
    command -v redis-cli >/dev/null 2>&1 ||
        chaos_die 3 "redis-cli is not installed (Debian/Ubuntu: apt-get install redis-tools; macOS: brew install redis)"
    out="$(chaos_rcli PING 2>&1)" || status=$?
    if [[ "$status" -eq 124 ]]; then
        chaos_die 3 "Redis at $(chaos_redis_url_shown) did not answer within ${CHAOS_REDIS_TIMEOUT_S} s (is it running? set REDIS_URL)"
    fi
    if [[ "$status" -ne 0 || "$out" != *PONG* ]]; then
        out="$(printf '%s' "$out" | tr '\n' ' ')"
        chaos_die 3 "Redis at $(chaos_redis_url_shown) is unreachable: ${out% } (is it running? set REDIS_URL)"
    fi
}

# SET each key with its value and a TTL, and audit it, atomically.
# KEYS: audit stream, key...; ARGV: who, maxlen, px, ttl_s, value...
read -r -d '' CHAOS_LUA_SET <<'LUA' || true
local t = redis.call('TIME')
local at = string.format('%d.%03d', tonumber(t[1]), math.floor(tonumber(t[2]) / 1000))
for i = 2, #KEYS do
  local value = ARGV[i + 3]
  redis.call('SET', KEYS[i], value, 'PX', ARGV[3])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'action', 'set', 'key', KEYS[i],
             'value', value, 'ttl_s', ARGV[4], 'who', ARGV[1], 'at', at)
end
return #KEYS - 1
LUA

# DEL each key and audit the ones that existed; returns the keys deleted.
# KEYS: audit stream, key...; ARGV: who, maxlen
read -r -d '' CHAOS_LUA_CLEAR <<'LUA' || true
local t = redis.call('TIME')
local at = string.format('%d.%03d', tonumber(t[1]), math.floor(tonumber(t[2]) / 1000))
local gone = {}
for i = 2, #KEYS do
  if redis.call('DEL', KEYS[i]) == 1 then
    gone[#gone + 1] = KEYS[i]
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'action', 'clear', 'key', KEYS[i],
               'value', '', 'ttl_s', '', 'who', ARGV[1], 'at', at)
  end
end
return gone
LUA

# key, value and PTTL of each key that exists.
read -r -d '' CHAOS_LUA_STATUS <<'LUA' || true
local out = {}
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value then
    out[#out + 1] = KEYS[i]
    out[#out + 1] = value
    out[#out + 1] = redis.call('PTTL', KEYS[i])
  end
end
return out
LUA

chaos_key() {  # chaos_key SERVICE FAULT REPLICA ROUTE  (as faults.redis_key)
    local key="chaos:$1:$2"
    if [[ -n "$3" ]]; then key+=":replica=$3"; fi
    if [[ -n "$4" ]]; then key+=":route=$4"; fi
    printf '%s' "$key"
}

# The keys of the script's faults that exist now (unscoped and scoped), for one service
# or (service "*") every service, narrowed to a replica and/or route when given.
chaos_find_keys() {  # chaos_find_keys SERVICE REPLICA ROUTE
    local service="$1" replica="$2" route="$3" fault key rest svc name scope out
    while IFS= read -r fault; do
        out="$(chaos_rcli --scan --pattern "chaos:$service:$fault*" 2>&1)" ||
            chaos_die 3 "scanning Redis at $(chaos_redis_url_shown) failed: $out"
        while IFS= read -r key; do
            [[ -n "$key" ]] || continue
            rest="${key#chaos:}"
            svc="${rest%%:*}"
            rest="${rest#*:}"
            name="${rest%%:*}"
            [[ "$name" == "$fault" ]] || continue           # crash* also matches crashloop
            [[ "$service" == "*" || "$svc" == "$service" ]] || continue
            scope=""
            if [[ "$rest" == *:* ]]; then scope=":${rest#*:}"; fi
            if [[ -n "$scope" && "$scope" != :replica=* && "$scope" != :route=* ]]; then continue; fi
            if [[ -n "$replica" && "$scope" != ":replica=$replica" && "$scope" != ":replica=$replica:route="* ]]; then
                continue
            fi
            if [[ -n "$route" && "$scope" != *":route=$route" ]]; then continue; fi
            printf '%s\n' "$key"
        done <<<"$out"
    done < <(chaos_family)
}

# --- usage ------------------------------------------------------------------------------

chaos_usage() {
    local service_opt="" spec opt meta fault help_text described line name what value services
    local ttl_training="$CHAOS_FALLBACK_TTL_S" ttl_ci="" ttl_max="$CHAOS_FALLBACK_MAX_TTL_S"
    local svc_shown="$CHAOS_SERVICE" extra_enable="" family=()
    if [[ "$CHAOS_SERVICE_CHOICE" == yes ]]; then
        service_opt=" [--service NAME]"
        svc_shown="<service>"
    fi
    for spec in "${CHAOS_VALUE_OPTS[@]+"${CHAOS_VALUE_OPTS[@]}"}"; do
        IFS='|' read -r opt meta fault <<<"$spec"
        extra_enable+=" [$opt $meta]"
    done
    for spec in "${CHAOS_FLAG_OPTS[@]+"${CHAOS_FLAG_OPTS[@]}"}"; do
        IFS='|' read -r opt fault help_text <<<"$spec"
        extra_enable+=" [$opt]"
    done
    cat <<EOF
$CHAOS_NAME.sh: $CHAOS_SUMMARY

Usage:
  $CHAOS_NAME.sh enable [VALUE]$extra_enable$service_opt [--ttl SECONDS] [--replica N] [--route /path]
  $CHAOS_NAME.sh disable$service_opt [--replica N] [--route /path]
  $CHAOS_NAME.sh status$service_opt [--replica N] [--route /path]
  $CHAOS_NAME.sh --help

Redis keys (REDIS_URL=$(chaos_redis_url_shown)):
EOF
    mapfile -t family < <(chaos_family)
    described="$(chaos_py describe "${family[@]}" 2>/dev/null)" || described=""
    while IFS= read -r fault; do
        printf '  chaos:%s:%s[:replica=N][:route=/path]' "$svc_shown" "$fault"
        if [[ "$fault" == "$CHAOS_FAULT" ]]; then
            printf '  (enable; default value %s)\n' "$(chaos_default_text)"
        else
            for spec in "${CHAOS_VALUE_OPTS[@]+"${CHAOS_VALUE_OPTS[@]}"}"; do
                IFS='|' read -r opt meta name <<<"$spec"
                if [[ "$name" == "$fault" ]]; then printf '  (enable %s %s)\n' "$opt" "$meta"; fi
            done
            for spec in "${CHAOS_FLAG_OPTS[@]+"${CHAOS_FLAG_OPTS[@]}"}"; do
                IFS='|' read -r opt name help_text <<<"$spec"
                if [[ "$name" == "$fault" ]]; then printf '  (enable %s: %s)\n' "$opt" "$help_text"; fi
            done
        fi
        while IFS=$'\t' read -r name what value services; do
            if [[ "$name" == "$fault" ]]; then
                printf '      what:       %s\n      value:      %s\n      applies to: %s\n' \
                    "$what" "$value" "$services"
            fi
        done <<<"$described"
    done < <(printf '%s\n' "${family[@]}")
    if [[ -n "$described" ]]; then
        while IFS=$'\t' read -r line ttl_training ttl_ci ttl_max; do
            [[ "$line" == ttl ]] && break
        done <<<"$described"
    else
        printf '      (bounds and units: no python here can import services/common/faults/catalogue.py)\n'
    fi
    cat <<EOF

Options:
  VALUE            the fault's value (default $(chaos_default_text)), checked against the catalogue bounds
EOF
    for spec in "${CHAOS_VALUE_OPTS[@]+"${CHAOS_VALUE_OPTS[@]}"}"; do
        IFS='|' read -r opt meta fault <<<"$spec"
        printf '  %-16s also set chaos:%s:%s to %s\n' "$opt $meta" "$svc_shown" "$fault" "$meta"
    done
    for spec in "${CHAOS_FLAG_OPTS[@]+"${CHAOS_FLAG_OPTS[@]}"}"; do
        IFS='|' read -r opt fault help_text <<<"$spec"
        printf '  %-16s set chaos:%s:%s instead of %s\n' "$opt" "$svc_shown" "$fault" "$CHAOS_FAULT"
    done
    if [[ "$CHAOS_SERVICE_CHOICE" == yes ]]; then
        printf '  %-16s the service (default %s for enable; every service for disable and status)\n' \
            "--service NAME" "$CHAOS_SERVICE"
    fi
    cat <<EOF
  --ttl SECONDS    the fault switches itself off after this long (default ${ttl_training} s${ttl_ci:+; ${ttl_ci} s with CHAOSLAB_PROFILE=ci}; at most ${ttl_max} s)
  --replica N      only replica N (0..$CHAOS_MAX_REPLICA) of the service
  --route /path    only requests under this path
  disable          deletes the keys above, scoped ones included (narrowed by --replica/--route)
  status           prints each key set, its value and remaining TTL, or "off"

Every change is recorded in the $CHAOS_AUDIT_STREAM stream (who=$(chaos_who)).
Exit status: 0 done, 2 bad usage or value (nothing set), 3 redis-cli missing or Redis unreachable.
EOF
}

# --- actions ------------------------------------------------------------------------------

chaos_enable() {  # chaos_enable SERVICE REPLICA ROUTE TTL FAULT VALUE [FAULT VALUE]...
    local service="$1" replica="$2" route="$3" ttl="$4" checked status=0 px i
    shift 4
    local pairs=("$@") keys=() values=() lines=()
    checked="$(chaos_py check "${CHAOSLAB_PROFILE:-training}" "$service" "$ttl" "${pairs[@]}")" || status=$?
    if [[ "$status" -eq 2 ]]; then
        chaos_die 2 "$checked"
    elif [[ "$status" -ne 0 ]]; then
        printf '%s.sh: warning: no python here can import services/common/faults/catalogue.py; ' "$CHAOS_NAME" >&2
        printf 'values are written unchecked\n' >&2
        if [[ -z "$ttl" ]]; then ttl="$CHAOS_FALLBACK_TTL_S"; fi
        if [[ ! "$ttl" =~ ^[0-9]+$ ]] || ((10#$ttl < 1 || 10#$ttl > CHAOS_FALLBACK_MAX_TTL_S)); then
            chaos_die 2 "--ttl must be a whole number of seconds between 1 and $CHAOS_FALLBACK_MAX_TTL_S, not '$ttl'"
        fi
        ttl="$((10#$ttl))"
        checked="$ttl"
        for ((i = 1; i < ${#pairs[@]}; i += 2)); do
            if [[ -z "${pairs[i]}" || "${pairs[i]}" =~ [[:space:]] ]]; then
                chaos_die 2 "${pairs[i - 1]} needs a value without spaces, not '${pairs[i]}'"
            fi
            checked+=$'\n'"${pairs[i]}"
        done
    fi
    mapfile -t lines <<<"$checked"
    ttl="${lines[0]}"
    px="$(awk -v t="$ttl" 'BEGIN { printf "%d", t * 1000 }')"
    for ((i = 0; i < ${#pairs[@]}; i += 2)); do
        keys+=("$(chaos_key "$service" "${pairs[i]}" "$replica" "$route")")
        values+=("${lines[i / 2 + 1]}")
    done
    chaos_require_redis
    local out
    out="$(chaos_rcli EVAL "$CHAOS_LUA_SET" "$((${#keys[@]} + 1))" "$CHAOS_AUDIT_STREAM" "${keys[@]}" \
        "$(chaos_who)" "$CHAOS_AUDIT_MAXLEN" "$px" "$ttl" "${values[@]}" 2>&1)" ||
        chaos_die 3 "setting the fault in Redis at $(chaos_redis_url_shown) failed: $out"
    for ((i = 0; i < ${#keys[@]}; i++)); do
        printf 'set %s = %s (ttl %s s)\n' "${keys[i]}" "${values[i]}" "$ttl"
    done
}

chaos_disable() {  # chaos_disable SERVICE REPLICA ROUTE
    local keys=() out
    chaos_require_redis
    out="$(chaos_find_keys "$1" "$2" "$3")"
    [[ -z "$out" ]] || mapfile -t keys < <(printf '%s\n' "$out" | sort -u)
    if [[ ${#keys[@]} -eq 0 ]]; then
        echo "already off: no key to clear"
        return 0
    fi
    out="$(chaos_rcli EVAL "$CHAOS_LUA_CLEAR" "$((${#keys[@]} + 1))" "$CHAOS_AUDIT_STREAM" "${keys[@]}" \
        "$(chaos_who)" "$CHAOS_AUDIT_MAXLEN" 2>&1)" ||
        chaos_die 3 "clearing the fault in Redis at $(chaos_redis_url_shown) failed: $out"
    if [[ -z "$out" ]]; then
        echo "already off: no key to clear"
        return 0
    fi
    mapfile -t keys <<<"$out"
    printf 'cleared %s\n' "${keys[@]}"
}

chaos_status() {  # chaos_status SERVICE REPLICA ROUTE
    local keys=() out lines=() i pttl left
    chaos_require_redis
    out="$(chaos_find_keys "$1" "$2" "$3")"
    [[ -z "$out" ]] || mapfile -t keys < <(printf '%s\n' "$out" | sort -u)
    if [[ ${#keys[@]} -gt 0 ]]; then
        out="$(chaos_rcli EVAL "$CHAOS_LUA_STATUS" "${#keys[@]}" "${keys[@]}" 2>&1)" ||
            chaos_die 3 "reading Redis at $(chaos_redis_url_shown) failed: $out"
        [[ -z "$out" ]] || mapfile -t lines <<<"$out"
    fi
    if [[ ${#lines[@]} -lt 3 ]]; then
        echo "off"
        return 0
    fi
    for ((i = 0; i + 2 < ${#lines[@]}; i += 3)); do
        pttl="${lines[i + 2]}"
        if [[ "$pttl" -lt 0 ]]; then
            left="no ttl: stays until disabled"
        else
            left="ttl $((pttl / 1000)).$(((pttl % 1000) / 100)) s"
        fi
        printf '%s = %s (%s)\n' "${lines[i]}" "${lines[i + 1]}" "$left"
    done
}

# --- entry point ----------------------------------------------------------------------------

chaos_main() {
    local action="${1:-}" value="" have_value=no ttl="" replica="" route="" service=""
    local opt arg spec o meta fault help_text matched extras=() main_fault="$CHAOS_FAULT"
    case "$action" in
        -h | --help | help)
            chaos_usage
            exit 0
            ;;
        "")
            chaos_usage >&2
            exit 2
            ;;
        enable | disable | status) shift ;;
        *) chaos_die 2 "unknown action '$action': use enable, disable or status (see --help)" ;;
    esac
    while [[ $# -gt 0 ]]; do
        opt="$1"
        arg=""
        if [[ "$opt" == --*=* ]]; then
            arg="${opt#*=}"
            opt="${opt%%=*}"
            set -- "$opt" "$arg" "${@:2}"
        fi
        case "$opt" in
            -h | --help)
                chaos_usage
                exit 0
                ;;
            --ttl | --replica | --route | --service)
                [[ $# -ge 2 ]] || chaos_die 2 "$opt needs a value (see --help)"
                case "$opt" in
                    --ttl) ttl="$2" ;;
                    --replica) replica="$2" ;;
                    --route) route="$2" ;;
                    --service)
                        [[ "$CHAOS_SERVICE_CHOICE" == yes ]] ||
                            chaos_die 2 "--service is not an option here: this script is for $CHAOS_SERVICE"
                        service="$2"
                        ;;
                esac
                shift 2
                continue
                ;;
        esac
        matched=no
        for spec in "${CHAOS_VALUE_OPTS[@]+"${CHAOS_VALUE_OPTS[@]}"}"; do
            IFS='|' read -r o meta fault <<<"$spec"
            if [[ "$opt" == "$o" ]]; then
                [[ $# -ge 2 ]] || chaos_die 2 "$opt needs a value ($meta; see --help)"
                [[ "$action" == enable ]] || chaos_die 2 "$opt only goes with enable"
                extras+=("$fault" "$2")
                matched=2
            fi
        done
        for spec in "${CHAOS_FLAG_OPTS[@]+"${CHAOS_FLAG_OPTS[@]}"}"; do
            IFS='|' read -r o fault help_text <<<"$spec"
            if [[ "$opt" == "$o" ]]; then
                [[ "$action" == enable ]] || chaos_die 2 "$opt only goes with enable"
                main_fault="$fault"
                matched=1
            fi
        done
        if [[ "$matched" != no ]]; then
            shift "$matched"
            continue
        fi
        if [[ "$opt" == -* && ! "$opt" =~ ^-[0-9.] ]]; then
            chaos_die 2 "unknown option '$opt' (see --help)"
        fi
        [[ "$action" == enable ]] || chaos_die 2 "$action takes no value, got '$opt'"
        [[ "$have_value" == no ]] || chaos_die 2 "enable takes one value, got '$value' and '$opt'"
        value="$opt"
        have_value=yes
        shift
    done
    if [[ -n "$replica" ]]; then
        if [[ ! "$replica" =~ ^[0-9]+$ ]] || ((10#$replica > CHAOS_MAX_REPLICA)); then
            chaos_die 2 "--replica must be a whole number between 0 and $CHAOS_MAX_REPLICA, not '$replica'"
        fi
        replica="$((10#$replica))"
    fi
    if [[ -n "$route" && ( "$route" != /* || "$route" =~ [[:space:]] ) ]]; then
        chaos_die 2 "--route must be a path starting with '/', not '$route'"
    fi
    if [[ -n "$service" && ! "$service" =~ ^[a-z][a-z0-9_-]*$ ]]; then
        chaos_die 2 "--service must be a service name such as $CHAOS_SERVICE, not '$service'"
    fi
    if [[ -n "$ttl" && "$action" != enable ]]; then
        chaos_die 2 "--ttl only goes with enable"
    fi
    case "$action" in
        enable)
            if [[ "$have_value" == no ]]; then value="$(chaos_default_value)"; fi
            chaos_enable "${service:-$CHAOS_SERVICE}" "$replica" "$route" "$ttl" \
                "$main_fault" "$value" "${extras[@]+"${extras[@]}"}"
            ;;
        disable | status)
            if [[ -z "$service" ]]; then
                if [[ "$CHAOS_SERVICE_CHOICE" == yes ]]; then service="*"; else service="$CHAOS_SERVICE"; fi
            fi
            "chaos_$action" "$service" "$replica" "$route"
            ;;
    esac
}
