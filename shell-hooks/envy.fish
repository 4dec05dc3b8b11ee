# envy hook for fish. Install with this line in ~/.config/fish/config.fish (or a file in
# ~/.config/fish/conf.d/):
#   envy hook fish | source
# Sourcing it again is harmless: the functions are redefined in place.

# Before each prompt.
function __envy_prompt_hook --on-event fish_prompt
    __ENVY_PID=$fish_pid @ENVY_HOOK@ export fish | source
end

# On every change of directory, also inside scripts and functions (`cd dir; and make`).
function __envy_pwd_hook --on-variable PWD
    status --is-command-substitution; and return
    __ENVY_PID=$fish_pid @ENVY_HOOK@ export fish | source
end
