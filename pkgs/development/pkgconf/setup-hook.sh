# Setup hook of pkgconf (pkg-config): every dependency's `lib/pkgconfig` and
# `share/pkgconfig` join PKG_CONFIG_PATH, as the compiler wrapper's hook gathers include/
# and lib/ into NIX_CFLAGS_COMPILE and NIX_LDFLAGS.

envyPkgConfigAddPath() {
    # Build-platform tools of a cross environment have no business in the target's flags.
    if [[ ${depHostOffset:-0} == -1 && ${__envyCross:-} == 1 ]]; then return 0; fi
    if [[ $1 == @out@ ]]; then return 0; fi
    addToSearchPath PKG_CONFIG_PATH "$1/lib/pkgconfig"
    addToSearchPath PKG_CONFIG_PATH "$1/share/pkgconfig"
}
addEnvHooks "$hostOffset" envyPkgConfigAddPath

export PKG_CONFIG=pkg-config
export PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-}
