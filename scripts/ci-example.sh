#!/bin/sh
# Share builds through a team binary cache: CI builds once and pushes, developers substitute.
#
#   scripts/ci-example.sh ci    # on the CI runner: build with the team cache as substituter
#                               # and push target (every path built is signed and uploaded)
#   scripts/ci-example.sh dev   # on a developer machine: get the same outputs from the cache,
#                               # building nothing locally (`-j 0` makes a cache miss an error)
#
# Settings (environment):
#   ENVY                    the envy binary (default: `envy` on PATH)
#   ENVY_STORE_DIR          the store directory, the same on CI and every developer machine
#                           (store paths embed it), e.g. /opt/envy/store
#   CACHE_URL               the team cache, e.g. https://cache.example.org (nginx with WebDAV PUT)
#   CACHE_PUBLIC_KEY        its public key, `name:base64` (from `envy store generate-key`)
#   CACHE_SECRET_KEY_FILE   ci only: the secret key file pushed paths are signed with
#   TARGET                  what to build: a .nix file (default: default.nix) or FLAKE#ATTR
#   SHELL_PROJECT           optional: a flake project whose devShell is built too
#                           (`envy print-dev-env` there), so `cd` into it substitutes
#
# The same lines work in config.toml instead of the environment:
#   substituters = ["https://cache.example.org"]
#   trusted-public-keys = ["cache.example.org-1:…"]
#   post-build-push = "https://cache.example.org"        # CI only
#   push-secret-key-file = "/run/secrets/cache.sec"      # CI only
set -eu

mode=${1:-}
case $mode in
ci | dev) ;;
*)
    echo "usage: $0 ci|dev   (settings in the environment, see the top of this script)" >&2
    exit 2
    ;;
esac
ENVY=${ENVY:-envy}
TARGET=${TARGET:-default.nix}
: "${CACHE_URL:?set CACHE_URL to the team cache, e.g. https://cache.example.org}"
: "${CACHE_PUBLIC_KEY:?set CACHE_PUBLIC_KEY to the cache's public key (name:base64)}"
: "${ENVY_STORE_DIR:?set ENVY_STORE_DIR to the store directory CI and developers share}"
export ENVY_STORE_DIR

# Both sides substitute from the team cache and trust its key.
export ENVY_SUBSTITUTERS="$CACHE_URL"
export ENVY_TRUSTED_PUBLIC_KEYS="$CACHE_PUBLIC_KEY"

case $mode in
ci)
    : "${CACHE_SECRET_KEY_FILE:?set CACHE_SECRET_KEY_FILE to the key pushed paths are signed with}"
    # Every path built (not substituted) is pushed with its closure while the build goes on;
    # envy waits for the uploads at the end. A failed upload is a warning, not a failed job.
    export ENVY_PUSH_TO="$CACHE_URL"
    export ENVY_PUSH_SECRET_KEY_FILE="$CACHE_SECRET_KEY_FILE"
    "$ENVY" build --no-out-link "$TARGET"
    if [ -n "${SHELL_PROJECT:-}" ]; then
        ENVY_BACKEND=embedded "$ENVY" print-dev-env "$SHELL_PROJECT" >/dev/null
    fi
    # Whatever an upload left behind (the cache was down, say) goes now; a failure here
    # fails the job, so a cache that stays down is noticed.
    "$ENVY" store push "$CACHE_URL"
    ;;
dev)
    # Nothing may build here: every output must come from the cache.
    "$ENVY" build -j 0 --no-out-link "$TARGET"
    if [ -n "${SHELL_PROJECT:-}" ]; then
        ENVY_BACKEND=embedded "$ENVY" print-dev-env "$SHELL_PROJECT" >/dev/null
    fi
    ;;
esac
