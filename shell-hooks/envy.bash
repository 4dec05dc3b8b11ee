# envy hook for bash. Install with this line in ~/.bashrc:
#   eval "$(envy hook bash)"
# Sourcing it again is harmless: the functions are redefined and the hook is added to
# PROMPT_COMMAND only once.

_envy_hook() {
  local __envy_status=$?
  eval "$(__ENVY_PID=$$ @ENVY_HOOK@ export bash)"
  return $__envy_status
}

# Before the environment redefines shell variables and functions the user already has, keep
# their definitions; _envy_restore_defs puts them back on leaving.
# Usage: _envy_save_defs VAR... -- FUNCTION...
_envy_save_defs() {
  __envy_saved_defs=()
  local __envy_n __envy_fns=
  for __envy_n in "$@"; do
    if [[ $__envy_n == -- ]]; then __envy_fns=1; continue; fi
    if [[ -n $__envy_fns ]]; then
      declare -F "$__envy_n" >/dev/null && __envy_saved_defs+=("$(declare -f "$__envy_n")")
    elif [[ -v $__envy_n ]]; then
      __envy_saved_defs+=("$(declare -p "$__envy_n")")
    fi
  done
}

_envy_restore_defs() {
  local __envy_d
  for __envy_d in ${__envy_saved_defs[@]+"${__envy_saved_defs[@]}"}; do
    # `declare` inside a function makes a local: restore variables globally.
    eval "${__envy_d/#declare /declare -g }"
  done
  __envy_saved_defs=()
}

# Run a devShell's shellHook once, and note what it defined (functions, aliases, exported
# variables) so that _envy_unhook can undo exactly that on leaving.
_envy_shellhook() {
  local __envy_n __envy_fns_before __envy_aliases_before __envy_own __envy_pc
  local -A __envy_env_before=()
  # The hook's own functions and PROMPT_COMMAND are never taken from a devShell: a shellHook
  # that replaced them would turn envy off in this shell, and leaving would never unload.
  __envy_own=$(declare -f _envy_hook _envy_save_defs _envy_restore_defs _envy_shellhook _envy_unhook)
  __envy_pc=$(declare -p PROMPT_COMMAND 2>/dev/null)
  __envy_fns_before=$'\n'"$(compgen -A function)"$'\n'
  __envy_aliases_before=$'\n'"$(compgen -a)"$'\n'
  while IFS= read -r __envy_n; do
    __envy_env_before[$__envy_n]=${!__envy_n}
  done < <(compgen -e)

  eval "$1"

  eval "$__envy_own"
  if [[ $(declare -p PROMPT_COMMAND 2>/dev/null) != "$__envy_pc" ]]; then
    echo "envy: the shellHook changed PROMPT_COMMAND, which runs envy's hook: change undone" >&2
    unset PROMPT_COMMAND
    [[ -z $__envy_pc ]] || eval "${__envy_pc/#declare /declare -g }"
  fi

  __envy_hook_fns=() __envy_hook_aliases=() __envy_hook_vars=()
  while IFS= read -r __envy_n; do
    [[ $__envy_fns_before == *$'\n'"$__envy_n"$'\n'* ]] || __envy_hook_fns+=("$__envy_n")
  done < <(compgen -A function)
  while IFS= read -r __envy_n; do
    [[ $__envy_aliases_before == *$'\n'"$__envy_n"$'\n'* ]] || __envy_hook_aliases+=("$__envy_n")
  done < <(compgen -a)
  # Each changed variable as "NAME=old value" or "NAME" (it was unset).
  while IFS= read -r __envy_n; do
    case $__envy_n in PWD|OLDPWD|SHLVL|_|__ENVY_*) unset '__envy_env_before[$__envy_n]'; continue ;; esac
    if [[ -z ${__envy_env_before[$__envy_n]+set} ]]; then
      __envy_hook_vars+=("$__envy_n")
    elif [[ ${__envy_env_before[$__envy_n]} != "${!__envy_n}" ]]; then
      __envy_hook_vars+=("$__envy_n=${__envy_env_before[$__envy_n]}")
    fi
    unset '__envy_env_before[$__envy_n]'
  done < <(compgen -e)
  for __envy_n in "${!__envy_env_before[@]}"; do
    case $__envy_n in PWD|OLDPWD|SHLVL|_|__ENVY_*) continue ;; esac
    __envy_hook_vars+=("$__envy_n=${__envy_env_before[$__envy_n]}")
  done
}

_envy_unhook() {
  local __envy_v
  for __envy_v in ${__envy_hook_fns[@]+"${__envy_hook_fns[@]}"}; do unset -f "$__envy_v"; done
  for __envy_v in ${__envy_hook_aliases[@]+"${__envy_hook_aliases[@]}"}; do unalias "$__envy_v" 2>/dev/null; done
  for __envy_v in ${__envy_hook_vars[@]+"${__envy_hook_vars[@]}"}; do
    if [[ $__envy_v == *=* ]]; then
      export "${__envy_v%%=*}=${__envy_v#*=}"
    else
      unset -v "$__envy_v"
    fi
  done
  __envy_hook_fns=() __envy_hook_aliases=() __envy_hook_vars=()
}

if [[ -n ${PROMPT_COMMAND+set} && ${PROMPT_COMMAND@a} == *a* ]]; then
  # bash 5.1+: PROMPT_COMMAND may be an array; keep every entry.
  [[ " ${PROMPT_COMMAND[*]} " == *" _envy_hook "* ]] || PROMPT_COMMAND=(_envy_hook "${PROMPT_COMMAND[@]}")
elif [[ ";${PROMPT_COMMAND:-};" != *";_envy_hook;"* ]]; then
  PROMPT_COMMAND="_envy_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
fi
