#!/usr/bin/env bash
# Builds envy from this checkout, installs it, and hooks it into your shell.
#
#   ./install.sh                 # install into ~/.local/bin, hook into $SHELL's rc file
#   ENVY_INSTALL_ROOT=/usr/local ./install.sh
#   ENVY_NO_MODIFY_RC=1 ./install.sh   # install only; print the line to add yourself
#
# Safe to run again: the binary is replaced, the rc line is added only once.
set -euo pipefail
cd "$(dirname "$0")"
root=${ENVY_INSTALL_ROOT:-$HOME/.local}

# The hook runs envy at every prompt, so start-up time matters: glibc is linked statically
# (no dynamic loader, ~0.4 ms) into a non-PIE executable (nothing to relocate at start-up, which
# for a binary this size is another ~0.2 ms; Go programs such as direnv are built the same
# way). `--target` keeps these flags off build scripts and proc-macros.
host=$(rustc -vV | sed -n 's/^host: //p')
static=()
case $host in
  *-linux-gnu*) static=("CARGO_TARGET_$(echo "$host" | tr 'a-z-' 'A-Z_')_RUSTFLAGS=-C target-feature=+crt-static -C relocation-model=static") ;;
esac
echo "==> building and installing envy into $root/bin" >&2
env "${static[@]}" cargo install --quiet --locked --force --path . --root "$root" --target "$host"
envy=$root/bin/envy
"$envy" --version >&2

# Use the bare name when the shell will find this binary on PATH, the absolute path otherwise.
exe=envy; [ "$(command -v envy 2>/dev/null)" = "$envy" ] || exe=$envy
shell_name=$(basename "${SHELL:-bash}")
case "$shell_name" in
  zsh)  rc=${ZDOTDIR:-$HOME}/.zshrc;               line="eval \"\$($exe hook zsh)\"" ;;
  fish) rc=$HOME/.config/fish/conf.d/envy.fish;   line="$exe hook fish | source" ;;
  elvish) rc=$HOME/.config/elvish/rc.elv;         line="eval ($exe hook elvish | slurp)" ;;
  xonsh) rc=$HOME/.xonshrc;                        line="execx(\$($exe hook xonsh))" ;;
  # nushell cannot evaluate generated code at start-up: the hook itself goes to an autoload file.
  nu)   rc=${XDG_CONFIG_HOME:-$HOME/.config}/nushell/autoload/envy.nu; line= ;;
  *)    rc=$HOME/.bashrc;                          line="eval \"\$($exe hook bash)\""; shell_name=bash ;;
esac

if [ "$shell_name" = nu ]; then
  if [ -n "${ENVY_NO_MODIFY_RC:-}" ]; then
    echo "==> run this once in nu: $exe hook nu | save -f $rc" >&2
  else
    mkdir -p "$(dirname "$rc")"
    "$envy" hook nu > "$rc.tmp" && mv "$rc.tmp" "$rc"
    echo "==> wrote the nushell hook to $rc" >&2
  fi
elif [ -n "${ENVY_NO_MODIFY_RC:-}" ]; then
  echo "==> add this line to $rc:" >&2
  echo "    $line" >&2
elif [ -f "$rc" ] && grep -qF "envy hook $shell_name" "$rc"; then
  echo "==> $rc already hooks envy" >&2
else
  mkdir -p "$(dirname "$rc")"
  printf '\n# envy: automatic Nix dev-shell environments on cd\n%s\n' "$line" >> "$rc"
  echo "==> added to $rc: $line" >&2
fi
case ":$PATH:" in *":$root/bin:"*) ;; *) echo "==> note: $root/bin is not on your PATH; add it to use \`envy\` by name" >&2 ;; esac
echo "==> done: open a new $shell_name, cd into a project with a flake.nix, and run \`envy allow\`" >&2
