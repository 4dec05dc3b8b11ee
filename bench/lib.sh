# Shared by the bench scripts (sourced, not run; ROOT is the repository): building envy as
# install.sh does, and an offline, sandboxed Nix configuration in a scratch directory.

# The host triple, and the flags install.sh links envy with there: glibc linked statically
# into a non-PIE executable (no dynamic loader, nothing to relocate at start-up).
HOST=$(rustc -vV | sed -n 's/^host: //p')
STATIC_FLAGS=
case $HOST in *-linux-gnu*) STATIC_FLAGS="-C target-feature=+crt-static -C relocation-model=static" ;; esac
TARGET_FLAGS_VAR=CARGO_TARGET_$(echo "$HOST" | tr 'a-z-' 'A-Z_')_RUSTFLAGS

# Build envy as install.sh builds it (release, static) and set ENVY to it, and ENVY_HOOK to
# `envy-hook` beside it: what a user's prompt runs.
build_static_envy() {
  env "$TARGET_FLAGS_VAR=$STATIC_FLAGS" cargo build --release --locked --quiet --bin envy --bin envy-hook --target "$HOST"
  ENVY=$ROOT/target/$HOST/release/envy
  ENVY_HOOK=$ROOT/target/$HOST/release/envy-hook
}

# offline_nix_conf DIR STORE: write DIR/etc/nix.conf (and DIR/registry.json, an empty flake
# registry) for a Nix that builds sandboxed and offline, with no substituters, fetching
# musl's source from the hashed mirror MIRROR, in the store STORE (a `local?…` URL).
offline_nix_conf() {
  local dir=$1 store=$2 sandbox_paths
  mkdir -p "$dir/etc"
  echo '{"flakes":[],"version":2}' > "$dir/registry.json"
  sandbox_paths=$(for p in /bin /lib /lib64 /usr; do [ -e $p ] && printf '%s ' $p; done)
  cat > "$dir/etc/nix.conf" <<CONF
experimental-features = nix-command flakes
sandbox = true
extra-sandbox-paths = $sandbox_paths$MIRROR
substituters =
build-users-group =
flake-registry = $dir/registry.json
hashed-mirrors = file://$MIRROR/
store = $store
CONF
}
