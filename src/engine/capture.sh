# envy's environment capture: the builder script of a dev shell's "-env" derivation (what
# `nix print-dev-env` builds), run with the dev shell derivation's own environment. It sources
# the stdenv's setup as a dev shell would, then writes every variable (with bash's type) and
# every function to the first output, NUL-framed, for envy to read (`capture.rs`). It selects
# exactly what Nix 2.8's get-env.sh selects, so both backends give the same environment.
set -e
export IN_NIX_SHELL=impure
export dontAddDisableDepTrack=1
if [[ -n $stdenv ]]; then
    source "$stdenv/setup"
fi

# Snapshot before this script defines anything of its own.
__envyCaptureVars="$(declare -p)"
__envyCaptureFuncs="$(declare -F)"

__envyCaptureDump() {
    local __envyCaptureLine __envyCaptureName __envyCaptureType __envyCaptureDef __envyCaptureKey
    printf 'envy-dev-env-v1\0'
    while read __envyCaptureLine; do
        [[ $__envyCaptureLine =~ ^declare\ -f\ (.*) ]] || continue
        __envyCaptureName=${BASH_REMATCH[1]}
        __envyCaptureDef=$(declare -f "$__envyCaptureName")
        # The body between the definition's first `{` and its last `}`.
        __envyCaptureDef=${__envyCaptureDef#*\{}
        __envyCaptureDef=${__envyCaptureDef%\}*}
        printf 'F\0%s\0%s\0' "$__envyCaptureName" "$__envyCaptureDef"
    done <<<"$__envyCaptureFuncs"

    while read __envyCaptureLine; do
        [[ $__envyCaptureLine =~ ^declare\ (-[^ ])\ ([^=]*) ]] || continue
        __envyCaptureType=${BASH_REMATCH[1]}
        __envyCaptureName=${BASH_REMATCH[2]}
        case $__envyCaptureName in
            BASH_* | _ | DIRSTACK | EUID | FUNCNAME | HISTCMD | HOSTNAME | GROUPS | PIPESTATUS | PWD | RANDOM | SHLVL | SECONDS) continue ;;
        esac
        case $__envyCaptureType in
            -x) printf 'X\0%s\0%s\0' "$__envyCaptureName" "${!__envyCaptureName}" ;;
            --) printf 'V\0%s\0%s\0' "$__envyCaptureName" "${!__envyCaptureName}" ;;
            -a)
                local -n __envyCaptureArray=$__envyCaptureName
                printf 'A\0%s\0%s\0' "$__envyCaptureName" "${#__envyCaptureArray[@]}"
                if ((${#__envyCaptureArray[@]})); then printf '%s\0' "${__envyCaptureArray[@]}"; fi
                unset -n __envyCaptureArray
                ;;
            -A)
                local -n __envyCaptureAssoc=$__envyCaptureName
                printf 'H\0%s\0%s\0' "$__envyCaptureName" "${#__envyCaptureAssoc[@]}"
                for __envyCaptureKey in "${!__envyCaptureAssoc[@]}"; do
                    printf '%s\0%s\0' "$__envyCaptureKey" "${__envyCaptureAssoc[$__envyCaptureKey]}"
                done
                unset -n __envyCaptureAssoc
                ;;
            # Integer, read-only, name-reference and other attributes: Nix drops these too.
        esac
    done <<<"$__envyCaptureVars"
}

__envyCaptureFirst=1
for __envyCaptureOutput in $outputs; do
    if [[ -n $__envyCaptureFirst ]]; then
        __envyCaptureDump >"${!__envyCaptureOutput}"
        __envyCaptureFirst=
    else
        : >"${!__envyCaptureOutput}"
    fi
done
