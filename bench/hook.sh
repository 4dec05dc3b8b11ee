#!/usr/bin/env bash
# The hook's speed, against its peers measured in the same hyperfine run:
#
# The prompt runs `envy-hook export bash` (the fast path on its own, which hands anything that
# changed to `envy`): that is what is measured as "envy"; `envy export bash` itself is measured
# beside it for scale.
#
#   1. an unchanged prompt: `envy-hook export bash` vs `direnv export bash` in an equivalent
#      allowed directory (a flake with `use flake`), vs the start-up of an empty Rust program
#      (`fn main() {}`, built with envy's release profile: the floor for any Rust hook), with
#      /bin/true beside it;
#   2. entering a cached project: `envy-hook export bash` with no state vs `direnv export bash`
#      with no state in a `use flake` directory;
#   3. entering a project whose devShell needs a 10-second build (a new one each run): the
#      time until the prompt is back. envy starts the build in the background; direnv's
#      `use flake` waits for it.
#
#   bench/hook.sh            # builds envy as install.sh does, prints the table and the ratios
#   RUNS=2000 bench/hook.sh  # more runs for the unchanged-prompt comparison
#
# Targets: unchanged prompt within 1.5x of the empty Rust program and at least 3x faster than
# direnv; cached re-entry at least 20x faster than direnv's `use flake`; the prompt back within
# 50 ms of entering a project with a 10 s build, at least 100x sooner than direnv. The script exits 1
# when a target is missed. Everything runs in a throw-away HOME with an offline Nix store.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-1000}
for tool in hyperfine direnv nix cargo; do
  command -v "$tool" >/dev/null || { echo "bench/hook.sh needs \`$tool\` (scripts/test installs it)" >&2; exit 2; }
done

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# envy is built as install.sh builds it: release, glibc linked statically into a non-PIE
# executable (no dynamic loader, no start-up relocation of a large binary's data). The empty
# program gets the same flags, so the floor is as honest as the comparison.
. bench/lib.sh
log "building envy (release, static) for $HOST"
build_static_envy

W=$(mktemp -d "${TMPDIR:-/tmp}/envy-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

log "building the empty Rust program with envy's release profile"
mkdir -p "$W/empty/src"
cat > "$W/empty/Cargo.toml" <<'EOF'
[package]
name = "empty"
version = "0.1.0"
edition = "2024"

[profile.release]
lto = "thin"
codegen-units = 4
panic = "abort"
EOF
echo 'fn main() {}' > "$W/empty/src/main.rs"
env "$TARGET_FLAGS_VAR=$STATIC_FLAGS" CARGO_TARGET_DIR="$W/empty/target" \
  cargo build --release --quiet --manifest-path "$W/empty/Cargo.toml" --target "$HOST"
EMPTY=$W/empty/target/$HOST/release/empty

# A private world: HOME, XDG dirs, an offline Nix with its own store.
# Both tools get the devShell from the same Nix (envy's cached path never calls a backend).
export ENVY_BACKEND=nix
export HOME=$W/home XDG_CACHE_HOME=$W/home/.cache XDG_DATA_HOME=$W/home/.local/share XDG_CONFIG_HOME=$W/home/.config
export NIX_CONF_DIR=$W/nix-conf
mkdir -p "$HOME" "$NIX_CONF_DIR"
echo '{"flakes":[],"version":2}' > "$NIX_CONF_DIR/registry.json"
cat > "$NIX_CONF_DIR/nix.conf" <<EOF
experimental-features = nix-command flakes
sandbox = false
substituters =
build-users-group =
flake-registry = $NIX_CONF_DIR/registry.json
store = local?store=$W/nix/store&state=$W/nix/state&log=$W/nix/log
EOF

# The same flake for both; direnv loads it with `use flake`.
SYSTEM=$(uname -m)-linux
P=$W/project
mkdir -p "$P"
cat > "$P/flake.nix" <<EOF
{
  outputs = { self }: {
    devShells.$SYSTEM.default = derivation {
      name = "shell";
      system = "$SYSTEM";
      builder = "/bin/bash";
      outputs = [ "out" ];
      PATH = "/usr/bin:/bin";
      FOO = "bar";
      GREETING = "hello";
    };
  };
}
EOF
echo 'use flake' > "$P/.envrc"
cd "$P"
export PWD=$P
direnv allow . 2>/dev/null
"$ENVY" allow 2>/dev/null

# Load both, as a shell with both hooks would have them at an unchanged prompt.
export __ENVY_PID=$$
eval "$(direnv export bash 2>/dev/null)"
# envy builds the devShell in the prompt (ENVY_SYNC=1): with a background build the state
# would say "building", and every measured run after the build's end would take the slow path.
eval "$(ENVY_SYNC=1 "$ENVY" export bash 2>/dev/null)"
case $__ENVY_STATE in "1|A|"*) ;; *) echo "envy did not load the project: __ENVY_STATE=$__ENVY_STATE" >&2; exit 1 ;; esac
[ -z "$("$ENVY_HOOK" export bash 2>&1)" ] || { echo "envy export is not a no-op here" >&2; exit 1; }
# …and the fast path answers it: envy-hook does not hand it to envy.
if command -v strace >/dev/null; then
  ! strace -f -e trace=execve "$ENVY_HOOK" export bash 2>&1 | grep -q "execve(\"$ENVY\"" \
    || { echo "envy-hook took the slow path at an unchanged prompt" >&2; exit 1; }
fi
[ -z "$(direnv export bash 2>/dev/null)" ] || { echo "direnv export is not a no-op here" >&2; exit 1; }

median() { awk -F, -v name="$2" 'NR > 1 && $1 == name { print $4 * 1000 }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "<=") ? r <= t : r >= t; print ok ? "ok" : "MISSED" }'; }

log "unchanged prompt ($RUNS runs each)"
hyperfine -N --warmup 100 --runs "$RUNS" --export-csv "$W/prompt.csv" \
  -n envy "$ENVY_HOOK export bash" \
  -n envy-binary "$ENVY export bash" \
  -n direnv "direnv export bash" \
  -n empty-rust "$EMPTY" \
  -n true /bin/true

log "entering a cached project (envy) vs a use-flake directory (direnv)"
# Both start from "no state here" (the project's environment not yet applied by this tool);
# envy's cache and direnv's profile are warm. `env -u` costs both the same.
hyperfine -N --warmup 3 --runs 40 --export-csv "$W/enter.csv" \
  -n envy-enter "env -u __ENVY_STATE $ENVY_HOOK export bash" \
  -n direnv-enter "env -u DIRENV_DIR -u DIRENV_FILE -u DIRENV_DIFF -u DIRENV_WATCHES direnv export bash"

log "entering a project whose build takes 10 s (a new build each run)"
S=$W/slow
mkdir -p "$S"
cat > "$S/flake.tmpl" <<EOF
{
  outputs = { self }: {
    devShells.$SYSTEM.default = derivation {
      name = "shell";
      system = "$SYSTEM";
      builder = "/bin/bash";
      outputs = [ "out" ];
      PATH = "/usr/bin:/bin";
      SLOW = derivation {
        name = "slow-NONCE";
        system = "$SYSTEM";
        builder = "/bin/bash";
        args = [ "-c" "/usr/bin/sleep 10; echo > \$out" ];
      };
    };
  };
}
EOF
echo 'use flake' > "$S/.envrc"
# Each run gets a devShell nobody built yet, allowed, as after an edit and `envy allow`.
cat > "$W/bump.sh" <<EOF
#!/usr/bin/env bash
set -e
cd "$S"
sed "s/NONCE/\$(date +%s%N)/" flake.tmpl > flake.nix
"$ENVY" allow 2>/dev/null
EOF
chmod +x "$W/bump.sh"
"$W/bump.sh"
(cd "$S" && direnv allow . 2>/dev/null)
cd "$S"
export PWD=$S
# envy: the prompt's slow path finds nothing cached and starts the build in the background.
hyperfine -N --runs 10 --prepare "$W/bump.sh" --export-csv "$W/cold-envy.csv" \
  -n envy-cold "env -u __ENVY_STATE ENVY_SYNC=0 $ENVY_HOOK export bash"
# direnv with `use flake` builds before the prompt comes back (few runs: each takes 10 s+).
hyperfine -N --runs 3 --prepare "$W/bump.sh" --export-csv "$W/cold-direnv.csv" \
  -n direnv-cold "env -u DIRENV_DIR -u DIRENV_FILE -u DIRENV_DIFF -u DIRENV_WATCHES direnv export bash"
# The background builds envy started end on their own; let the last one finish.
"$ENVY" wait >/dev/null 2>&1 || true
cd "$P"
export PWD=$P

envy_ms=$(median "$W/prompt.csv" envy)
binary_ms=$(median "$W/prompt.csv" envy-binary)
direnv_ms=$(median "$W/prompt.csv" direnv)
empty_ms=$(median "$W/prompt.csv" empty-rust)
true_ms=$(median "$W/prompt.csv" true)
enter_ms=$(median "$W/enter.csv" envy-enter)
denter_ms=$(median "$W/enter.csv" direnv-enter)
cold_ms=$(median "$W/cold-envy.csv" envy-cold)
dcold_ms=$(median "$W/cold-direnv.csv" direnv-cold)

r_empty=$(ratio "$envy_ms" "$empty_ms")
r_direnv=$(ratio "$direnv_ms" "$envy_ms")
r_enter=$(ratio "$denter_ms" "$enter_ms")
r_cold=$(ratio "$dcold_ms" "$cold_ms")
printf '\nmedians (ms): envy %.3f  direnv %.3f  empty-rust %.3f  /bin/true %.3f  |  enter: envy %.3f  direnv %.3f\n' \
  "$envy_ms" "$direnv_ms" "$empty_ms" "$true_ms" "$enter_ms" "$denter_ms"
printf '%-48s %8s  %-10s %s\n' "ratio" "value" "target" "verdict"
printf '%-48s %7sx  %-10s %s\n' "unchanged prompt: envy / empty Rust program" "$r_empty" "<= 1.5x" "$(verdict "$r_empty" 1.5 '<=')"
printf '%-48s %7sx  %-10s %s\n' "unchanged prompt: direnv / envy" "$r_direnv" ">= 3x" "$(verdict "$r_direnv" 3 '>=')"
printf '%-48s %7sx  %-10s %s\n' "cached re-entry: direnv use flake / envy" "$r_enter" ">= 20x" "$(verdict "$r_enter" 20 '>=')"
printf '%-48s %6.1fms  %-10s %s\n' "10 s build: time to the prompt (envy)" "$cold_ms" "<= 50 ms" "$(verdict "$cold_ms" 50 '<=')"
printf '%-48s %7sx  %-10s %s\n' "10 s build: direnv use flake / envy" "$r_cold" ">= 100x" "$(verdict "$r_cold" 100 '>=')"
printf '%-48s %7sx\n' "(for scale) empty Rust program / /bin/true" "$(ratio "$empty_ms" "$true_ms")"
printf '%-48s %7sx  (%.3f ms)\n' "(for scale) envy itself, not envy-hook / empty" "$(ratio "$binary_ms" "$empty_ms")" "$binary_ms"

[ "$(verdict "$r_empty" 1.5 '<=')" = ok ] && [ "$(verdict "$r_direnv" 3 '>=')" = ok ] && [ "$(verdict "$r_enter" 20 '>=')" = ok ] \
  && [ "$(verdict "$cold_ms" 50 '<=')" = ok ] && [ "$(verdict "$r_cold" 100 '>=')" = ok ]
