# envy hook for xonsh. Install with this line in ~/.xonshrc:
#   execx($(envy hook xonsh))
# Sourcing it again is harmless: the previous envy hook is replaced.
#
# Before each prompt (on_pre_prompt) and on every change of directory (on_chdir),
# `envy export xonsh` prints what to change as a JSON object (a string to set, null to unset);
# the hook sets and deletes those variables in xonsh's environment, which turns PATH-like
# values into its path lists. xonsh cannot run a devShell's shellHook or bash functions: it
# gets its variables.

def __envy_hook(**_):
    import json as _json
    import os as _os
    import subprocess as _subprocess

    env = __xonsh__.env
    child = env.detype()
    child["__ENVY_PID"] = str(_os.getpid())
    try:
        out = _subprocess.run(
            [@ENVY_HOOK@, "export", "xonsh"], env=child, cwd=env.get("PWD") or None,
            stdout=_subprocess.PIPE, check=True,
        ).stdout
        changes = _json.loads(out) if out.strip() else {}
    except Exception:
        # envy said what went wrong on stderr; change nothing.
        return
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value


for __envy_event in (events.on_pre_prompt, events.on_chdir):
    for __envy_old in [h for h in __envy_event if getattr(h, "__name__", "") == "__envy_hook"]:
        __envy_event.discard(__envy_old)
    __envy_event(__envy_hook)
del __envy_event
