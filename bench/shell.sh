#!/usr/bin/env bash
# `envy shell` speed, in one run, against its peers measured in the same run:
#   1. the cold build of the host toolchain (musl from source, compiler wrappers, stdenv) by
#      envy's own evaluator and builder, in a fresh envy store and cache — and, for
#      comparison, the same shell built by Nix (`nix develop`) in a fresh Nix store;
#   2. a warm `envy shell -- true` against `nix develop -c true` on the same shell, cached
#      (a flake, so Nix's evaluation cache applies, and its environment already built), and
#      against `bash -c true`, with the ratios. Target: envy within 5x of `bash -c true`;
#   3. the cold build of each library of the package set (PACKAGES, default `zlib openssl
#      leveldb zstd xz sqlite`; libc++ is part of the toolchain) on top of that toolchain:
#      `envy build -A` against `nix-build -A` of the same package-set file.
#
#   bench/shell.sh            # needs hyperfine, nix, clang/lld/llvm and .fixtures/mirror
#   RUNS=100 bench/shell.sh   # more warm runs (default 50)
#
# envy is built as install.sh builds it (release, glibc linked statically, non-PIE). Everything
# happens under a temporary directory (HOME, caches, envy's store, the Nix store); nothing of
# the invoking user's is touched. Exits 1 when the target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-50}
MIRROR=${ENVY_TEST_MIRROR:-$ROOT/.fixtures/mirror}
[ -d "$MIRROR/sha256" ] || { echo "bench/shell.sh: no hashed mirror at $MIRROR; run scripts/fill-mirror $MIRROR" >&2; exit 2; }
scripts/fill-mirror "$MIRROR"
for tool in hyperfine nix clang ld.lld llvm-ar cargo; do
  command -v "$tool" >/dev/null || { echo "bench/shell.sh needs \`$tool\` (scripts/test installs it)" >&2; exit 2; }
done

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

. bench/lib.sh
log "building envy (release, static, as install.sh does) for $HOST"
build_static_envy

W=$(mktemp -d "${TMPDIR:-/tmp}/envy-bench-shell.XXXXXX")
trap 'chmod -R u+w "$W" 2>/dev/null; rm -rf "$W"' EXIT
mkdir -p "$W/home" "$W/cache" "$W/etc"
offline_nix_conf "$W" "local?store=$W/store&state=$W/state&log=$W/log"
export HOME=$W/home XDG_CACHE_HOME=$W/cache XDG_DATA_HOME=$W/data XDG_STATE_HOME=$W/xdg-state
export XDG_CONFIG_HOME=$W/config NIX_CONF_DIR=$W/etc SHELL=/bin/bash
export ENVY_HASHED_MIRRORS=file://$MIRROR/
unset ENVY_SHELL_BACKEND ENVY_STORE_DIR ENVY_STATE_DIR ENVY_SUBSTITUTERS NIX_REMOTE NIX_PATH

seconds_since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

log "cold: the host toolchain from nothing with envy's engine (musl from source included)"
start=$(date +%s.%N)
"$ENVY" shell -- true
cold=$(seconds_since "$start")
builds=$(find "$W/data/envy/state/log/drvs" -type f | wc -l)

# The same shell for Nix, as a flake (Nix caches flake evaluations) over the package set envy
# materialised.
PKGS=$(echo "$W"/cache/envy/pkgs-v1/*/)
PKGS=${PKGS%/} # a Nix path literal must not end in a slash
SYSTEM=$(sed -n 's/.*system = "\([^"]*\)".*/\1/p' "$PKGS/host-tools.nix" | head -n1)
mkdir -p "$W/nix-shell"
cat > "$W/nix-shell/flake.nix" <<FLAKE
{
  inputs.envy.url = "path:$PKGS";
  outputs = { self, envy }: {
    devShells.$SYSTEM.default = import "\${envy}/shell.nix" { };
  };
}
FLAKE
log "cold: the same shell with Nix (nix develop), for comparison"
start=$(date +%s.%N)
nix develop "path:$W/nix-shell" -c true 2>"$W/nix-cold.log" || { cat "$W/nix-cold.log" >&2; exit 1; }
nix_cold=$(seconds_since "$start")

# Each library cold, on the toolchain both stores have by now (pkgconf is part of the stdenv).
PACKAGES=${PACKAGES:-zlib openssl leveldb zstd xz sqlite}
cat > "$W/pkgs.nix" <<NIX
import $PKGS { }
NIX
pkg_rows=()
for attr in $PACKAGES; do
  log "cold: $attr with envy build and with nix-build"
  start=$(date +%s.%N)
  "$ENVY" build --no-out-link -A "$attr" "$W/pkgs.nix" >/dev/null
  envy_s=$(seconds_since "$start")
  start=$(date +%s.%N)
  nix-build --no-out-link -A "$attr" "$W/pkgs.nix" >/dev/null 2>"$W/nix-$attr.log" || { cat "$W/nix-$attr.log" >&2; exit 1; }
  nix_s=$(seconds_since "$start")
  pkg_rows+=("$attr $envy_s $nix_s")
done

log "warm: envy shell -- true vs nix develop -c true vs bash -c true ($RUNS runs each)"
hyperfine --shell=none --warmup 5 --runs "$RUNS" --export-csv "$W/warm.csv" \
  -n "envy shell -- true" "$ENVY shell -- true" \
  -n "nix develop -c true" "nix develop path:$W/nix-shell -c true" \
  -n "bash -c true" "bash -c true" >&2

# Milliseconds from hyperfine's CSV: column 2 is the mean, 3 the standard deviation, 4 the
# median. The ratios use medians: on a machine whose cores are shared, a few runs stall for
# tens of milliseconds and swing a mean of a few milliseconds; the means are printed too.
stat_of() { awk -F, -v n="$1" -v c="$2" '$1 == n { printf "%.2f", $c * 1000 }' "$W/warm.csv"; }
line() { echo "median $(stat_of "$1" 4) ms (mean $(stat_of "$1" 2) ± $(stat_of "$1" 3))"; }
envy_ms=$(stat_of "envy shell -- true" 4)
nix_ms=$(stat_of "nix develop -c true" 4)
bash_ms=$(stat_of "bash -c true" 4)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
envy_vs_bash=$(ratio "$envy_ms" "$bash_ms")

echo
echo "envy shell benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(uname -m)), envy $(git rev-parse --short HEAD)"
echo "  cold host toolchain (musl included), envy's engine: ${cold} s, $builds derivations built"
echo "  the same shell cold with nix develop:              ${nix_cold} s (nix / envy: $(ratio "$nix_cold" "$cold")x)"
for row in "${pkg_rows[@]}"; do
  read -r attr envy_s nix_s <<<"$row"
  echo "  cold $attr: envy build ${envy_s} s, nix-build ${nix_s} s (nix / envy: $(ratio "$nix_s" "$envy_s")x)"
done
echo "  warm envy shell -- true:   $(line "envy shell -- true")"
echo "  warm nix develop -c true:  $(line "nix develop -c true"); nix develop / envy: $(ratio "$nix_ms" "$envy_ms")x"
echo "  bash -c true:              $(line "bash -c true"); envy / bash: ${envy_vs_bash}x (target <= 5x)"
if awk -v r="$envy_vs_bash" 'BEGIN { exit !(r <= 5) }'; then
  echo "  target met"
else
  echo "  target MISSED"
  exit 1
fi
