# Setup hook of envy's clang-musl wrapper for @triple@, with nixpkgs' cc-wrapper conventions:
# the compiler and binutils variables, the target marker variable, and NIX_CFLAGS_COMPILE /
# NIX_LDFLAGS gathering every dependency's include/ and lib/ (read by the wrapper).

envyCcWrapperAddFlags() {
    # Build-platform tools of a cross environment have no business in the target's flags.
    if [[ ${depHostOffset:-0} == -1 && ${__envyCross:-} == 1 ]]; then return 0; fi
    if [[ $1 == @out@ ]]; then return 0; fi
    if [[ -d $1/include ]]; then NIX_CFLAGS_COMPILE+=" -isystem $1/include"; fi
    if [[ -d $1/lib ]]; then NIX_LDFLAGS+=" -L$1/lib"; fi
}
addEnvHooks "$hostOffset" envyCcWrapperAddFlags

export NIX_CFLAGS_COMPILE=${NIX_CFLAGS_COMPILE:-}
export NIX_LDFLAGS=${NIX_LDFLAGS:-}
export NIX_CC=@out@
export NIX_CC_WRAPPER_TARGET_HOST_@suffixSalt@=1
export CC=@targetPrefix@cc
export CXX=@targetPrefix@c++
export AR=@targetPrefix@ar
export LD=@targetPrefix@ld
export NM=@targetPrefix@nm
export RANLIB=@targetPrefix@ranlib
export STRIP=@targetPrefix@strip
export OBJCOPY=@targetPrefix@objcopy
export OBJDUMP=@targetPrefix@objdump
export READELF=@targetPrefix@readelf
