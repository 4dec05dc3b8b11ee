#!/usr/bin/env bash
# Build a trivial derivation with envy and with real Nix 2.8 (`nix-build`), each sandboxed,
# in a private store of the same kind (same store dir, its own state), in one hyperfine run;
# prints the ratio. Both build the same .drv (no evaluation timed); every timed run really
# builds: the output is deleted (and invalidated) before each one.
#
#   bench/build.sh            # uses target/release/envy (builds it if missing)
#
# Target: envy at least as fast as nix-build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -x target/release/envy ] || cargo build --release --bin envy
ENVY=$ROOT/target/release/envy

T=$(mktemp -d /tmp/envy-bench-build.XXXXXX)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
mkdir -p "$T/conf" "$T/home" "$T/store"
cat > "$T/conf/nix.conf" <<CONF
experimental-features = nix-command
sandbox = true
extra-sandbox-paths = /bin /usr /lib /lib64
substituters =
build-users-group =
CONF
export NIX_CONF_DIR=$T/conf HOME=$T/home XDG_CACHE_HOME=$T/cache
export ENVY_STORE_DIR=$T/store ENVY_STATE_DIR=$T/state
NIXSTORE="local?store=$T/store&real=$T/nix-real&state=$T/nix-state&log=$T/nix-log"
cat > "$T/triv.nix" <<'NIX'
derivation { name = "triv"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo hello > $out" ]; }
NIX
DRV=$(nix-instantiate --store "$NIXSTORE" "$T/triv.nix")
DRV_FILE=$T/nix-real/$(basename "$DRV")
OUT=$(nix-build --store "$NIXSTORE" "$T/triv.nix" --no-out-link)
"$ENVY" build --no-out-link "$DRV_FILE" >/dev/null
BASE=$(basename "$OUT")

# Invalidate envy's output as gc would: its row in the store database, then its files.
cat > "$T/invalidate.py" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA foreign_keys = ON")
db.execute("DELETE FROM ValidPaths WHERE path = ?", (sys.argv[2],))
db.commit()
PY
hyperfine --warmup 3 --runs 30 -N --export-json "$T/result.json" \
  --prepare "sh -c 'python3 $T/invalidate.py $T/state/db-v1.sqlite $BASE; chmod -R u+w $T/store/$BASE 2>/dev/null; rm -rf $T/store/$BASE'" \
  -n envy "$ENVY build --no-out-link $DRV_FILE" \
  --prepare "nix-store --store $NIXSTORE --delete $OUT" \
  -n nix-build "nix-build --store $NIXSTORE $DRV --no-out-link"

python3 - "$T/result.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
e, n = r["envy"], r["nix-build"]
print(f"envy build {e*1000:.1f} ms, nix-build {n*1000:.1f} ms (medians): envy/nix = {e/n:.2f}"
      f" ({'meets' if e <= n else 'misses'} the target: envy at least as fast)")
PY
