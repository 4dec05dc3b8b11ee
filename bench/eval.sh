#!/usr/bin/env bash
# envy's evaluator against Nix 2.8 (`nix-instantiate` from Debian's nix-bin), measured in the
# same hyperfine run on the same files: `envy eval --strict FILE` vs
# `nix-instantiate --eval --strict FILE`, with peak memory (max RSS) beside the time.
#
# Workloads (bench/eval/*.nix and the nixpkgs library of ../shared/bench-data):
#   fib           recursion-heavy: naive Fibonacci
#   attrs-lists   attribute sets and lists: listToAttrs, mapAttrs, //, sort, concatLists
#   modules       lib.evalModules over 8000 options
#   systems       lib.systems.elaborate over every example platform
#   lib-systems   nixpkgs lib's own test file lib/tests/systems.nix
#   lib-misc      nixpkgs lib's own test file lib/tests/misc.nix (its one test that needs the
#                 rest of nixpkgs sees a stub: `(import ../.. {}).hello` is a string)
#
#   bench/eval.sh            # prints the table; exits 1 when envy is not faster on every one
#   RUNS=20 bench/eval.sh    # more runs per workload
#
# Outputs are compared first: a workload only counts when both print the same result.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-10}
for tool in hyperfine nix-instantiate cargo; do
  command -v "$tool" >/dev/null || { echo "bench/eval.sh needs \`$tool\` (scripts/test installs it)" >&2; exit 2; }
done
SHARED=${ENVY_TEST_SHARED:-$(cd "$ROOT/.." && pwd)/shared}
LIB=$SHARED/bench-data/nixpkgs-lib-2022/lib
[ -d "$LIB" ] || { echo "bench/eval.sh needs the nixpkgs lib in $LIB" >&2; exit 2; }

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

log "building envy (cargo build --release -p envy)"
cargo build --release --quiet -p envy
ENVY=$ROOT/target/release/envy

W=$(mktemp -d "${TMPDIR:-/tmp}/envy-bench-eval.XXXXXX")
trap 'rm -rf "$W"' EXIT
# A private world for both: HOME, XDG dirs, an offline Nix config and a throw-away store.
export HOME=$W/home XDG_CACHE_HOME=$W/home/.cache XDG_DATA_HOME=$W/home/.local/share XDG_CONFIG_HOME=$W/home/.config
export NIX_CONF_DIR=$W/nix-conf NIX_PATH=
mkdir -p "$HOME" "$NIX_CONF_DIR" "$W/store"
echo '{"flakes":[],"version":2}' > "$W/registry.json"
printf 'sandbox = false\nsubstituters =\nbuild-users-group =\nflake-registry = %s\n' "$W/registry.json" > "$NIX_CONF_DIR/nix.conf"
NIX_STORE="local?store=$W/store/nix/store&state=$W/store/state&log=$W/store/log"

# nixpkgs' lib as lib/tests/misc.nix expects to find it (`../..` is nixpkgs).
mkdir -p "$W/nixpkgs"
ln -s "$LIB" "$W/nixpkgs/lib"
echo '{ ... }: { hello = "/nix/store/00000000000000000000000000000000-hello-2.12"; }' > "$W/nixpkgs/default.nix"

declare -a NAMES FILES
add() { NAMES+=("$1"); FILES+=("$2"); }
add fib "$ROOT/bench/eval/fib.nix"
add attrs-lists "$ROOT/bench/eval/attrs-lists.nix"
add modules "$ROOT/bench/eval/modules.nix"
add systems "$ROOT/bench/eval/systems.nix"
add lib-systems "$W/nixpkgs/lib/tests/systems.nix"
add lib-misc "$W/nixpkgs/lib/tests/misc.nix"

envy_cmd() { echo "$ENVY eval --strict --store-dir $W/store/nix/store --read-only -I nixpkgs-lib=$LIB $1"; }
nix_cmd() { echo "nix-instantiate --store '$NIX_STORE' --eval --strict -I nixpkgs-lib=$LIB $1"; }

# Commands are shell words (hyperfine -N splits them the same way); `exec` so that the measured
# process is the evaluator itself.
run() { bash -c "exec $1"; }
peak_kb() { /usr/bin/time -f %M -o "$W/rss" bash -c "exec $1 >/dev/null 2>&1"; cat "$W/rss"; }

# Time is hyperfine's median wall-clock time; CPU is the mean user+system time (less sensitive
# to other load on a shared machine); RSS is the peak resident memory of one run.
printf '\n%-12s %10s %10s %8s | %10s %10s %8s | %10s %10s\n' workload 'envy' 'nix' 'nix/envy' \
  'envy CPU' 'nix CPU' 'nix/envy' 'envy RSS' 'nix RSS'
failed=0
for i in "${!NAMES[@]}"; do
  name=${NAMES[$i]} file=${FILES[$i]}
  e=$(envy_cmd "$file") n=$(nix_cmd "$file")
  if [ "$(run "$e" 2>&1)" != "$(run "$n" 2>&1)" ]; then
    echo "$name: envy and nix print different results" >&2
    failed=1
    continue
  fi
  hyperfine -N --warmup 2 --runs "$RUNS" --export-csv "$W/$name.csv" "$e" "$n" >/dev/null 2>&1
  # CSV: command,mean,stddev,median,user,system,min,max (seconds)
  read -r te tn ce cn < <(awk -F, 'NR==2{e=$4; ce=$5+$6} NR==3{n=$4; cn=$5+$6} END{print e, n, ce, cn}' "$W/$name.csv")
  re=$(peak_kb "$e") rn=$(peak_kb "$n")
  ratio=$(awk -v e="$te" -v n="$tn" 'BEGIN{printf "%.2f", n/e}')
  cratio=$(awk -v e="$ce" -v n="$cn" 'BEGIN{printf "%.2f", n/e}')
  ms() { awk -v t="$1" 'BEGIN{printf "%.1fms", t*1000}'; }
  printf '%-12s %10s %10s %7sx | %10s %10s %7sx | %8sKB %8sKB\n' "$name" "$(ms "$te")" "$(ms "$tn")" "$ratio" \
    "$(ms "$ce")" "$(ms "$cn")" "$cratio" "$re" "$rn"
  awk -v r="$ratio" 'BEGIN{exit !(r > 1.0)}' || failed=1
done
echo
if [ "$failed" = 0 ]; then
  echo "envy is faster than Nix 2.8 on every workload"
else
  echo "target missed: envy must be faster than Nix 2.8 on every workload" >&2
  exit 1
fi
