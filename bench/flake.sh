#!/usr/bin/env bash
# Entering a flake project, in one run, against the peers measured in the same run:
#   envy (embedded backend, no Nix involved) on a project whose devShell uses the package
#   set's clang-musl stdenv, cold (no cached environment: evaluation, then the environment of
#   the unchanged devShell derivation read back, as Nix reuses its `-env` output; its inputs
#   are built and captured once beforehand) and warm (the environment cached), against `nix print-dev-env`
#   (2.8, with and without its evaluation cache) and direnv's `use flake` on the same devShell
#   built by Nix. Target: warm entry at least 20x faster than direnv with `use flake`.
#
#   bench/flake.sh            # needs hyperfine, nix, direnv, git, clang/lld/llvm, .fixtures/mirror
#
# Everything happens under a temporary directory (HOME, caches, stores); nothing of the
# invoking user's is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MIRROR=${ENVY_TEST_MIRROR:-$ROOT/.fixtures/mirror}
MUSL_SHA=7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4
[ -f "$MIRROR/sha256/$MUSL_SHA" ] || { echo "bench: musl's source is not in $MIRROR; run scripts/test once" >&2; exit 1; }
for tool in hyperfine nix direnv git clang ld.lld llvm-ar; do
  command -v "$tool" >/dev/null || { echo "bench: \`$tool\` is required" >&2; exit 1; }
done

# Built as install.sh builds it, which is what a user's prompt runs; the same artifact as
# bench/hook.sh.
. bench/lib.sh
echo "==> building envy (release, as install.sh does)" >&2
build_static_envy

W=$(mktemp -d "${TMPDIR:-/tmp}/envy-bench-flake.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/home" "$W/cache" "$W/config" "$W/data" "$W/etc"
offline_nix_conf "$W" "local?store=$W/nix/store&state=$W/nix/state&log=$W/nix/log"
export HOME=$W/home XDG_CACHE_HOME=$W/cache XDG_CONFIG_HOME=$W/config XDG_DATA_HOME=$W/data
export NIX_CONF_DIR=$W/etc SHELL=/bin/bash ENVY_HASHED_MIRRORS=$MIRROR ENVY_PROGRESS=none ENVY_QUIET=1
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
unset ENVY_BACKEND ENVY_CACHE_DIR ENVY_STORE_DIR ENVY_STATE_DIR NIX_REMOTE __ENVY_STATE DIRENV_DIFF DIRENV_DIR DIRENV_WATCHES

# The project: a git repository whose devShell (in shell.nix) uses the clang-musl stdenv.
project() { # DIR FLAKE_INPUT_URL
  mkdir -p "$1"
  cat > "$1/flake.nix" <<NIX
{
  inputs.envy.url = "$2";
  outputs = { self, envy }: {
    devShells.x86_64-linux.default = import ./shell.nix { pkgs = envy.legacyPackages.x86_64-linux; };
  };
}
NIX
  printf '{ pkgs }: pkgs.mkShell { name = "bench"; FOO = import ./value.nix; shellHook = "echo entered"; }\n' > "$1/shell.nix"
  printf '"bench"\n' > "$1/value.nix"
  git -C "$1" init -q && git -C "$1" add -A && git -C "$1" commit -qm init
}

P=$W/envy-project
project "$P" envy
(cd "$P" && "$ENVY" allow >/dev/null)
echo "==> building the clang-musl devShell's inputs with envy (once; musl from source)" >&2
start=$(date +%s.%N)
(cd "$P" && "$ENVY" print-dev-env --json >/dev/null)
end=$(date +%s.%N)
first=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')

# The same devShell for Nix and direnv: the same package set, as a path input, built by Nix.
PKGS=$(sed -n 's/.*"path": "\(.*\)",/\1/p' "$P/flake.lock" | head -1)
[ -d "$PKGS" ] || { echo "bench: cannot find the package set envy locked" >&2; exit 1; }
N=$W/nix-project
project "$N" "path:$PKGS"
(cd "$N" && nix flake lock 2>/dev/null && git add flake.lock && git commit -qm lock)
echo "==> building the same devShell with Nix (once)" >&2
nix print-dev-env "$N" >/dev/null
D=$W/direnv-project
cp -a "$N" "$D"
echo 'use flake' > "$D/.envrc"
direnv allow "$D" >/dev/null 2>&1
(cd "$D" && direnv export bash >/dev/null 2>&1)

ENV_CACHE=$XDG_CACHE_HOME/envy/env-v1
echo "==> measuring" >&2
# Warm entries must not evaluate: check it before timing them. A cold entry logs one
# evaluation (so the log works), warm entries none; with strace, a warm entry also runs no
# other program and opens nothing in envy's store (no store database, no sqlite).
export ENVY_EVAL_LOG=$W/evals.log
: > "$W/evals.log"
rm -rf "$ENV_CACHE"
(cd "$P" && env PWD="$P" "$ENVY" export bash >/dev/null)
[ "$(wc -l < "$W/evals.log")" -eq 1 ] || { echo "bench: a cold entry did not log its evaluation" >&2; exit 1; }
for _ in 1 2 3; do (cd "$P" && env PWD="$P" "$ENVY" export bash >/dev/null); done
[ "$(wc -l < "$W/evals.log")" -eq 1 ] || { echo "bench: warm entries evaluated the flake again" >&2; exit 1; }
unset ENVY_EVAL_LOG
if command -v strace >/dev/null; then
  (cd "$P" && env PWD="$P" strace -f -qq -e trace=execve,open,openat -o "$W/warm.trace" "$ENVY" export bash >/dev/null)
  execs=$(grep -c 'execve(' "$W/warm.trace" || true)
  store_opens=$(grep -cE "\"$XDG_DATA_HOME/envy/(store|state)|\.sqlite" "$W/warm.trace" || true)
  [ "$execs" = 1 ] && [ "$store_opens" = 0 ] || {
    echo "bench: a warm entry ran $execs programs and opened $store_opens store files (see $W/warm.trace)" >&2
    trap - EXIT
    exit 1
  }
  (cd "$P" && env PWD="$P" strace -f -c -o "$W/warm.count" "$ENVY" export bash >/dev/null)
  warm_syscalls=$(awk '$NF == "total" { print $4 }' "$W/warm.count")
fi
# One `--prepare` per command (a single one would apply to every command).
hyperfine --shell=none --warmup 3 --min-runs 20 --export-csv "$W/entry.csv" \
  --prepare "rm -rf $ENV_CACHE" --prepare true --prepare true --prepare true --prepare true \
  -n "envy cold" "env --chdir=$P PWD=$P $ENVY export bash" \
  -n "envy warm" "env --chdir=$P PWD=$P $ENVY export bash" \
  -n "nix print-dev-env (no eval cache)" "nix print-dev-env --no-eval-cache $N" \
  -n "nix print-dev-env" "nix print-dev-env $N" \
  -n "direnv use flake" "env --chdir=$D direnv export bash" >&2

# Medians: this machine is shared, and a few slow outliers would otherwise decide the ratio.
mean() { awk -F, -v n="$1" '$1 == n { printf "%.3f", $4 * 1000 }' "$W/entry.csv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
cold=$(mean "envy cold"); warm=$(mean "envy warm")
nixc=$(mean "nix print-dev-env (no eval cache)"); nixw=$(mean "nix print-dev-env")
direnv_ms=$(mean "direnv use flake")
vs_direnv=$(ratio "$direnv_ms" "$warm")

echo
echo "entering a clang-musl flake project (medians)"
echo "  first entry with an empty store (envy builds musl, the wrapper, the stdenv): ${first} s"
echo "  envy cold (evaluate, no cache):   ${cold} ms   (nix print-dev-env --no-eval-cache: ${nixc} ms, $(ratio "$nixc" "$cold")x envy)"
echo "  envy warm (cached environment):   ${warm} ms   (${warm_syscalls:-?} system calls, no evaluation, no store access)"
echo "  nix print-dev-env (eval cache):   ${nixw} ms   ($(ratio "$nixw" "$warm")x envy warm)"
echo "  direnv with use flake:            ${direnv_ms} ms   (${vs_direnv}x envy warm, target >= 20x)"
if awk -v r="$vs_direnv" 'BEGIN { exit !(r >= 20) }'; then
  echo "  target met"
else
  echo "  target MISSED"
  exit 1
fi
