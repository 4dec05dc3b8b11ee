#!/usr/bin/env bash
# `envy shell` speed, in one run, against its peers measured in the same run:
#   1. the cold build of the host toolchain (musl from source, compiler wrappers, stdenv) by
#      envy's own evaluator and builder, in a fresh envy store and cache — and, for
#      comparison, the same shell built by Nix in a fresh Nix store;
#   2. a warm `envy shell -- true` against `nix develop -c true` on the same shell, cached,
#      and against `bash -c true`, with the ratios. Target: envy within 5x of `bash -c true`.
#
#   bench/shell.sh            # needs hyperfine, nix, clang/lld/llvm and .fixtures/mirror
#
# Everything happens under a temporary directory (HOME, caches, envy's store, the Nix store);
# nothing of the invoking user's is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MIRROR=${ENVY_TEST_MIRROR:-$ROOT/.fixtures/mirror}
MUSL_SHA=7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4
[ -f "$MIRROR/sha256/$MUSL_SHA" ] || { echo "bench: musl's source is not in $MIRROR; run scripts/test once" >&2; exit 1; }
for tool in hyperfine nix clang ld.lld llvm-ar; do
  command -v "$tool" >/dev/null || { echo "bench: \`$tool\` is required" >&2; exit 1; }
done

echo "==> building envy (release)" >&2
cargo build --release --locked --quiet
ENVY=$ROOT/target/release/envy

W=$(mktemp -d "${TMPDIR:-/tmp}/envy-bench-shell.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/home" "$W/cache" "$W/etc"
echo '{"flakes":[],"version":2}' > "$W/registry.json"
sandbox_paths=$(for p in /bin /lib /lib64 /usr; do [ -e $p ] && printf '%s ' $p; done)
cat > "$W/etc/nix.conf" <<CONF
experimental-features = nix-command flakes
sandbox = true
extra-sandbox-paths = $sandbox_paths$MIRROR
substituters =
build-users-group =
flake-registry = $W/registry.json
hashed-mirrors = file://$MIRROR/
store = local?store=$W/store&state=$W/state&log=$W/log
CONF
export HOME=$W/home XDG_CACHE_HOME=$W/cache XDG_DATA_HOME=$W/data NIX_CONF_DIR=$W/etc SHELL=/bin/bash
export ENVY_HASHED_MIRRORS=file://$MIRROR/
unset ENVY_SHELL_BACKEND ENVY_STORE_DIR ENVY_STATE_DIR ENVY_SUBSTITUTERS NIX_REMOTE

seconds_since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

echo "==> cold: the host toolchain from nothing with envy's engine (musl from source included)" >&2
start=$(date +%s.%N)
"$ENVY" shell -- true
cold=$(seconds_since "$start")
builds=$(ls "$W"/data/envy/state/log/drvs/*/* | wc -l)

PKGS=$(echo "$W"/cache/envy/pkgs-v1/*/)
echo "==> cold: the same shell with Nix (nix develop), for comparison" >&2
start=$(date +%s.%N)
nix develop -f "$PKGS/shell.nix" -c true 2>/dev/null
nix_cold=$(seconds_since "$start")

echo "==> warm: envy shell -- true vs nix develop -c true vs bash -c true" >&2
hyperfine --shell=none --warmup 5 --min-runs 30 --export-csv "$W/warm.csv" \
  -n "envy shell -- true" "$ENVY shell -- true" \
  -n "nix develop -c true" "nix develop -f $PKGS/shell.nix -c true" \
  -n "bash -c true" "bash -c true" >&2

mean() { awk -F, -v n="$1" '$1 == n { printf "%.3f", $2 * 1000 }' "$W/warm.csv"; }
envy_ms=$(mean "envy shell -- true")
nix_ms=$(mean "nix develop -c true")
bash_ms=$(mean "bash -c true")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
envy_vs_bash=$(ratio "$envy_ms" "$bash_ms")

echo
echo "envy shell benchmark"
echo "  cold build of the host toolchain (musl included), envy's engine: ${cold} s ($builds derivations built)"
echo "  the same with Nix (nix develop):                             ${nix_cold} s   (nix / envy: $(ratio "$nix_cold" "$cold")x)"
echo "  warm envy shell -- true:  ${envy_ms} ms"
echo "  warm nix develop -c true: ${nix_ms} ms   (nix develop / envy: $(ratio "$nix_ms" "$envy_ms")x)"
echo "  bash -c true:             ${bash_ms} ms  (envy / bash: ${envy_vs_bash}x, target <= 5x)"
if awk -v r="$envy_vs_bash" 'BEGIN { exit !(r <= 5) }'; then
  echo "  target met"
else
  echo "  target MISSED"
  exit 1
fi
