# envy hook for elvish. Install with this line in ~/.config/elvish/rc.elv:
#   eval (envy hook elvish | slurp)
# Sourcing it again is harmless: the previous envy hook is replaced.
#
# Before each prompt (edit:before-readline) and after every change of directory, also inside
# functions (after-chdir), `envy export elvish` prints what to change as a JSON object (a
# string to set, null to unset); the hook applies it with set-env and unset-env ($paths
# follows $E:PATH). elvish cannot run a devShell's shellHook or bash functions: it gets its
# variables.

use str

var __envy_hook~ = {|@_|
  var out = ''
  try {
    tmp E:__ENVY_PID = (to-string $pid)
    set out = (@ENVY_HOOK@ export elvish | slurp)
  } catch {
    # envy said what went wrong on stderr; change nothing.
  }
  if (not (eq (str:trim-space $out) '')) {
    var changes = (echo $out | from-json)
    keys $changes | each {|name|
      var value = $changes[$name]
      if (eq $value $nil) {
        unset-env $name
      } else {
        set-env $name $value
      }
    }
  }
}

fn __envy-not-ours {|f|
  try {
    not (str:contains $f[body] '__envy_hook')
  } catch {
    put $true
  }
}

set edit:before-readline = [(each {|f| if (__envy-not-ours $f) { put $f } } $edit:before-readline) {|| __envy_hook }]
set after-chdir = [(each {|f| if (__envy-not-ours $f) { put $f } } $after-chdir) {|dir| __envy_hook }]
