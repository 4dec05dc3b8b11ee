# envy hook for zsh. Install with this line in ~/.zshrc:
#   eval "$(envy hook zsh)"
# Sourcing it again is harmless: the functions are redefined and the hook is added to
# precmd_functions and chpwd_functions only once.

_envy_hook() {
  local __envy_status=$?
  eval "$(__ENVY_PID=$$ @ENVY_HOOK@ export zsh)"
  return $__envy_status
}

# Before the environment redefines shell variables and functions the user already has, keep
# their definitions; _envy_restore_defs puts them back on leaving.
# Usage: _envy_save_defs VAR... -- FUNCTION...
_envy_save_defs() {
  typeset -ga __envy_saved_vars __envy_saved_fns
  __envy_saved_vars=() __envy_saved_fns=()
  local __envy_n __envy_f=
  for __envy_n in "$@"; do
    if [[ $__envy_n == -- ]]; then __envy_f=1; continue; fi
    if [[ -n $__envy_f ]]; then
      (( ${+functions[$__envy_n]} )) && __envy_saved_fns+=("$__envy_n" "${functions[$__envy_n]}")
    elif (( ${+parameters[$__envy_n]} )); then
      __envy_saved_vars+=("$(typeset -p -- "$__envy_n")")
    fi
  done
}

_envy_restore_defs() {
  local __envy_d __envy_i
  for __envy_d in "${(@)__envy_saved_vars}"; do
    # `typeset` inside a function makes a local: restore variables globally.
    eval "${__envy_d/#typeset /typeset -g }"
  done
  for (( __envy_i = 1; __envy_i < ${#__envy_saved_fns}; __envy_i += 2 )); do
    functions[${__envy_saved_fns[__envy_i]}]=${__envy_saved_fns[__envy_i+1]}
  done
  __envy_saved_vars=() __envy_saved_fns=()
}

# Run a devShell's shellHook once, and note what it defined (functions, aliases, exported
# variables) so that _envy_unhook can undo exactly that on leaving.
_envy_shellhook() {
  local __envy_n __envy_f __envy_own_hooks
  local -a __envy_fns_before __envy_aliases_before
  local -A __envy_env_before __envy_own
  # The hook's own functions and hook arrays are never taken from a devShell: a shellHook that
  # replaced them would turn envy off in this shell, and leaving would never unload.
  for __envy_f in _envy_hook _envy_save_defs _envy_restore_defs _envy_shellhook _envy_unhook; do
    __envy_own[$__envy_f]=${functions[$__envy_f]}
  done
  __envy_own_hooks="$(typeset -p precmd_functions chpwd_functions 2>/dev/null)"
  __envy_fns_before=(${(k)functions})
  __envy_aliases_before=(${(k)aliases})
  for __envy_n in ${(k)parameters[(R)*export*]}; do
    __envy_env_before[$__envy_n]=${(P)__envy_n}
  done

  eval "$1"

  for __envy_f in ${(k)__envy_own}; do
    functions[$__envy_f]=${__envy_own[$__envy_f]}
  done
  if [[ "$(typeset -p precmd_functions chpwd_functions 2>/dev/null)" != "$__envy_own_hooks" ]]; then
    echo "envy: the shellHook changed precmd_functions or chpwd_functions, which run envy's hook: change undone" >&2
    eval "${__envy_own_hooks//typeset /typeset -g }"
  fi

  typeset -ga __envy_hook_fns __envy_hook_aliases __envy_hook_vars
  local -a __envy_fns_after __envy_aliases_after
  __envy_fns_after=(${(k)functions})
  __envy_aliases_after=(${(k)aliases})
  __envy_hook_fns=(${__envy_fns_after:|__envy_fns_before})
  __envy_hook_aliases=(${__envy_aliases_after:|__envy_aliases_before})
  __envy_hook_vars=()
  # Each changed variable as "NAME=old value" or "NAME" (it was unset).
  for __envy_n in ${(k)parameters[(R)*export*]}; do
    case $__envy_n in PWD|OLDPWD|SHLVL|_|__ENVY_*) unset "__envy_env_before[$__envy_n]"; continue ;; esac
    if (( ! ${+__envy_env_before[$__envy_n]} )); then
      __envy_hook_vars+=("$__envy_n")
    elif [[ ${__envy_env_before[$__envy_n]} != "${(P)__envy_n}" ]]; then
      __envy_hook_vars+=("$__envy_n=${__envy_env_before[$__envy_n]}")
    fi
    unset "__envy_env_before[$__envy_n]"
  done
  for __envy_n in ${(k)__envy_env_before}; do
    case $__envy_n in PWD|OLDPWD|SHLVL|_|__ENVY_*) continue ;; esac
    __envy_hook_vars+=("$__envy_n=${__envy_env_before[$__envy_n]}")
  done
}

_envy_unhook() {
  local __envy_v
  for __envy_v in "${(@)__envy_hook_fns}"; do unfunction -- "$__envy_v" 2>/dev/null; done
  for __envy_v in "${(@)__envy_hook_aliases}"; do unalias -- "$__envy_v" 2>/dev/null; done
  for __envy_v in "${(@)__envy_hook_vars}"; do
    if [[ $__envy_v == *=* ]]; then
      export "${__envy_v%%=*}=${__envy_v#*=}"
    else
      unset -v "$__envy_v"
    fi
  done
  __envy_hook_fns=() __envy_hook_aliases=() __envy_hook_vars=()
}

typeset -ag precmd_functions chpwd_functions
(( ${precmd_functions[(Ie)_envy_hook]} )) || precmd_functions=(_envy_hook $precmd_functions)
(( ${chpwd_functions[(Ie)_envy_hook]} )) || chpwd_functions=(_envy_hook $chpwd_functions)
