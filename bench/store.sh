#!/usr/bin/env bash
# envy's store against real Nix 2.8, in one run, on stores of the same kind (the same
# logical store dir; Nix keeps its files elsewhere with `real=`), with hyperfine:
#
#   1. hashing a large tree:   envy store hash       vs  nix-hash --type sha256 --base32
#   2. adding a tree:          envy store add        vs  nix-store --add     (path deleted before each run)
#   3. building a trivial drv: envy build            vs  nix-build           (bench/build.sh, the builder's)
#   4. gc of 10,000 paths:     envy store gc         vs  nix-store --gc      (store restored before each run)
#
#   bench/store.sh            # builds target/release/envy first
#
# Target: envy at least as fast as Nix on each; the ratios (envy/nix, medians) are printed last.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
cargo build --release --bin envy >&2
ENVY=$ROOT/target/release/envy

T=$(mktemp -d /tmp/envy-bench-store.XXXXXX)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
mkdir -p "$T/conf" "$T/home"
cat > "$T/conf/nix.conf" <<CONF
experimental-features = nix-command
sandbox = false
substituters =
build-users-group =
CONF
export NIX_CONF_DIR=$T/conf HOME=$T/home XDG_CACHE_HOME=$T/cache XDG_CONFIG_HOME=$T/config
export ENVY_STORE_DIR=$T/store ENVY_STATE_DIR=$T/state
unset ENVY_SUBSTITUTERS ENVY_TRUSTED_PUBLIC_KEYS
NIXSTORE="local?store=$T/store&real=$T/nix-real&state=$T/nix-state&log=$T/nix-log"
SUMMARY=$T/summary
: > "$SUMMARY"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ratio NAME JSON: append "NAME: envy … ms, nix … ms, envy/nix = r" from hyperfine's medians.
ratio() {
  python3 - "$1" "$2" >> "$SUMMARY" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
r = {x["command"]: x["median"] for x in json.load(open(path))["results"]}
e, n = r["envy"], r["nix"]
print(f"{name:<28} envy {e*1000:9.1f} ms   nix {n*1000:9.1f} ms   envy/nix = {e/n:.2f}  "
      f"({'meets' if e <= n else 'MISSES'} the target)")
PY
}

# tree DIR BIG_FILES BIG_MB SMALL_FILES: a deterministic tree (files, an executable, nested
# directories, symlinks).
tree() {
  python3 - "$@" <<'PY'
import os, sys
root, nbig, big_mb, nsmall = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(root)
block = bytes((i * 2654435761 >> 7) & 0xff for i in range(1 << 20))
for b in range(nbig):
    with open(f"{root}/big{b}.bin", "wb") as f:
        for m in range(big_mb):
            f.write(block[m % 256:] + block[:m % 256])
for s in range(nsmall):
    d = f"{root}/d{s % 50}/e{s % 7}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{s}", "wb") as f:
        f.write(block[s % 4096:(s % 4096) + 512 + (s * 37) % 6000])
with open(f"{root}/run.sh", "w") as f:
    f.write("#!/bin/sh\necho hi\n")
os.chmod(f"{root}/run.sh", 0o755)
os.symlink("run.sh", f"{root}/link")
os.symlink("/nonexistent", f"{root}/dangling")
PY
}

# --- 1. hash -------------------------------------------------------------------------------
log "1/4 hashing a large tree"
tree "$T/large" 3 100 20000
[ "$("$ENVY" store hash "$T/large")" = "$(nix-hash --type sha256 --base32 "$T/large")" ] || { echo "hash mismatch" >&2; exit 1; }
hyperfine -N --warmup 2 --runs 10 --export-json "$T/hash.json" \
  -n envy "$ENVY store hash $T/large" \
  -n nix "nix-hash --type sha256 --base32 $T/large"
ratio "hash ($(du -sh "$T/large" | cut -f1), 20k files)" "$T/hash.json"

# --- 2. add --------------------------------------------------------------------------------
log "2/4 adding a tree"
tree "$T/medium" 1 40 5000
P_ENVY=$("$ENVY" store add "$T/medium")
P_NIX=$(nix-store --store "$NIXSTORE" --add "$T/medium")
[ "$P_ENVY" = "$P_NIX" ] || { echo "add: envy gave $P_ENVY, nix $P_NIX" >&2; exit 1; }
hyperfine -N --warmup 1 --runs 10 --export-json "$T/add.json" \
  --prepare "$ENVY store gc" \
  -n envy "$ENVY store add $T/medium" \
  --prepare "nix-store --store $NIXSTORE --delete $P_NIX" \
  -n nix "nix-store --store $NIXSTORE --add $T/medium"
ratio "add ($(du -sh "$T/medium" | cut -f1), 5k files)" "$T/add.json"

# --- 3. build (the builder's benchmark) ----------------------------------------------------
log "3/4 building a trivial derivation"
if [ -x bench/build.sh ] && "$ENVY" build --help >/dev/null 2>&1; then
  line=$(bash bench/build.sh | tail -n 1)
  echo "build (trivial derivation)   $line" >> "$SUMMARY"
else
  echo "build (trivial derivation)   skipped: \`envy build\` or bench/build.sh is not in this tree" >> "$SUMMARY"
fi

# --- 4. gc of 10,000 paths -----------------------------------------------------------------
log "4/4 gc over 10,000 paths"
N=10000
EXPR="derivation { name = \"gc-bench\"; system = \"x86_64-linux\"; builder = \"/bin/sh\";
  files = map (i: builtins.toFile \"f-\${toString i}\" \"content \${toString i}\\n\") (builtins.genList (x: x) $N); }"
# Nix: a plain local store of its own, with the 10,000 paths (and the unrooted .drv naming them).
GCSTORE="local?store=$T/gc/store&state=$T/gc/state&log=$T/gc/log"
nix-instantiate --store "$GCSTORE" --expr "$EXPR" >/dev/null 2>&1
# envy: the same files in envy's store dir, made by Nix in a diverted store and brought over
# through a binary cache.
DRV=$(nix-instantiate --store "$NIXSTORE" --expr "$EXPR" 2>/dev/null)
mapfile -t PATHS < <(nix-store --store "$NIXSTORE" --query --references "$DRV")
nix copy --store "$NIXSTORE" --to "file://$T/gc-cache?store=$T/store&compression=none" "${PATHS[@]}" 2>/dev/null
"$ENVY" store copy --from "file://$T/gc-cache" "${PATHS[@]}"
for d in store state gc; do cp -a "$T/$d" "$T/snap-$d"; done
# restore DIR…: a prepare command putting the snapshots of DIR… back.
restore() {
  local cmd="" d
  for d in "$@"; do cmd+="chmod -R u+w $T/$d 2>/dev/null; rm -rf $T/$d; cp -a $T/snap-$d $T/$d; "; done
  printf "sh -c '%s'" "$cmd"
}
hyperfine -N --warmup 0 --runs 2 --export-json "$T/gc.json" \
  --prepare "$(restore store state)" \
  -n envy "$ENVY store gc" \
  --prepare "$(restore gc)" \
  -n nix "nix-store --store $GCSTORE --gc"
left_envy=$(find "$T/store" -maxdepth 1 -name '*-f-*' | wc -l)
left_nix=$(find "$T/gc/store" -maxdepth 1 -name '*-f-*' | wc -l)
echo "gc: after the last runs, $left_envy of $N paths remain in envy's store and $left_nix in Nix's" >&2
ratio "gc ($N paths)" "$T/gc.json"

echo
echo "envy vs Nix 2.8 (medians; target: envy/nix <= 1.00)"
cat "$SUMMARY"
