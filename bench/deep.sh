#!/usr/bin/env bash
# Hostile nesting: envy and Nix 2.8 on inputs nested 10^6 deep (and long left-nested chains),
# each timed once in the same run (each side killed after 60 s: Nix 2.8 takes minutes on
# some). Both should end at once with a value or a clean error (`memory exhausted` at Nix's
# parser limit); this prints each time and envy's ratio to Nix's.
# Not a test: crates/envy-eval/tests/hostile_input.rs checks the outcomes.
#
#   bench/deep.sh          # ENVY=path/to/envy to skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/lib.sh
[ -n "${ENVY:-}" ] || build_static_envy
command -v nix-instantiate >/dev/null || { echo "bench/deep.sh needs nix-instantiate (scripts/test installs it)" >&2; exit 2; }
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
export NIX_STATE_DIR=$D/nix-state NIX_STORE_DIR=$D/nix-store HOME=$D
python3 - "$D" <<'PY'
import sys
d, n = sys.argv[1], 10**6
cases = {
  "lists": "[" * n + "]" * n,
  "parens": "(" * n + "1" + ")" * n,
  "sets": "{a=" * n + "1" + ";}" * n,
  "interpolations": '"${' * n + "1" + '}"' * n,
  "fromJSON": 'builtins.fromJSON "' + "[" * n + "]" * n + '"',
  "negations": "-" * n + "1",
  "lambdas": "x: " * n + "1",
  "sum-1e4": "1+" * 10**4 + "1",
}
for name, text in cases.items():
    open(f"{d}/{name}.nix", "w").write(text)
PY
now() { date +%s.%N; }
printf '%-16s %10s %10s %8s  %s\n' case envy nix ratio "envy's answer"
for f in lists parens sets interpolations fromJSON negations lambdas sum-1e4; do
  t0=$(now); out=$(timeout -s KILL 60 "$ENVY" eval "$D/$f.nix" 2>&1 | grep -m1 -v '^$' | cut -c1-40 || true); t1=$(now)
  timeout -s KILL 60 nix-instantiate --eval "$D/$f.nix" >/dev/null 2>&1 || true; t2=$(now)
  awk -v n="$f" -v a="$t0" -v b="$t1" -v c="$t2" -v o="$out" \
    'BEGIN { e = b - a; x = c - b; printf "%-16s %9.3fs %9.3fs %7.2fx  %s\n", n, e, x, (x > 0 ? e / x : 0), o }'
done
