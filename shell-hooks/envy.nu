# envy hook for nushell. Install it once (it is read at every start):
#   envy hook nu | save -f ($nu.user-autoload-dirs | first | path join envy.nu)
# (make that directory first if it is missing: `mkdir ($nu.user-autoload-dirs | first)`),
# or save it anywhere and `source` it from config.nu. Sourcing it again is harmless: the
# previous envy hook is replaced.
#
# Before each prompt, `envy export nu` prints what to change as a JSON object (a string to
# set, null to unset); the hook applies it with load-env and hide-env. nushell runs its
# env_change hooks at the same point as pre_prompt, so one pre_prompt hook sees every `cd`.
# Neither runs inside a command line (checked with nu 0.108, env_change.PWD included): in
# `cd app; make`, make runs before the hook; `envy exec -- make` does not depend on it.
# PATH stays a list: the value envy gives is split as nushell splits it at start-up.
# nushell cannot run a devShell's shellHook or bash functions: it gets its variables.

def --env __envy_hook [] {
    let last = $env.LAST_EXIT_CODE? | default 0
    # stderr (envy's messages) goes to the terminal; a failure changes nothing.
    let out = with-env { __ENVY_PID: ($nu.pid | into string) } {
        do --ignore-errors { ^@ENVY_HOOK@ export nu } | default "" | into string
    }
    if ($out | str trim | is-not-empty) {
        let changes = $out | from json
        let conversions = $env.ENV_CONVERSIONS? | default {}
        for name in ($changes | columns) {
            let value = $changes | get $name
            if $value == null {
                hide-env --ignore-errors $name
            } else if $name == "PATH" {
                load-env { PATH: ($value | split row (char esep)) }
            } else if ($conversions | get -o $name | get -o from_string) != null {
                load-env { $name: (do ($conversions | get $name | get from_string) $value) }
            } else {
                load-env { $name: $value }
            }
        }
    }
    $env.LAST_EXIT_CODE = $last
}

$env.config.hooks.pre_prompt = (
    $env.config.hooks.pre_prompt
    | where {|h| ($h | describe) !~ '^closure' or not (view source $h | str contains '__envy_hook') }
    | append {|| __envy_hook }
)
