# Setup hook of envy's cmake: the target's dependencies join CMAKE_PREFIX_PATH, and a build
# without its own configurePhase configures with CMake in `build/` (nixpkgs' cmake hook:
# `cmakeFlags`, `cmakeFlagsArray`, `cmakeBuildType`, `dontUseCmakeConfigure`). Static only:
# BUILD_SHARED_LIBS is off, and a cross build names the target system so CMake cross-compiles.

envyCmakeAddPrefix() {
    if [[ ${depHostOffset:-0} == -1 && ${__envyCross:-} == 1 ]]; then return 0; fi
    if [[ $1 == @out@ ]]; then return 0; fi
    addToSearchPath CMAKE_PREFIX_PATH "$1"
}
addEnvHooks "$hostOffset" envyCmakeAddPrefix
export CMAKE_PREFIX_PATH=${CMAKE_PREFIX_PATH:-}

cmakeConfigurePhase() {
    runHook preConfigure
    local flags=(
        "-DCMAKE_INSTALL_PREFIX=$prefix"
        "-DCMAKE_BUILD_TYPE=${cmakeBuildType:-Release}"
        -DCMAKE_INSTALL_LIBDIR=lib
        -DCMAKE_INSTALL_INCLUDEDIR=include
        -DCMAKE_INSTALL_BINDIR=bin
        -DBUILD_SHARED_LIBS=OFF
        -DCMAKE_POSITION_INDEPENDENT_CODE=OFF
        -DBUILD_TESTING=OFF
        "-DCMAKE_C_COMPILER=${CC:-cc}"
        "-DCMAKE_CXX_COMPILER=${CXX:-c++}"
    )
    if [[ -n ${AR:-} ]]; then flags+=("-DCMAKE_AR=$(command -v "$AR")"); fi
    if [[ -n ${RANLIB:-} ]]; then flags+=("-DCMAKE_RANLIB=$(command -v "$RANLIB")"); fi
    if [[ ${__envyCross:-} == 1 ]]; then
        # The compiler wrapper's target prefix names the CPU (`aarch64-unknown-linux-musl-cc`).
        flags+=(-DCMAKE_SYSTEM_NAME=Linux "-DCMAKE_SYSTEM_PROCESSOR=${CC%%-*}")
    fi
    mkdir -p "${cmakeBuildDir:-build}"
    cd "${cmakeBuildDir:-build}"
    # shellcheck disable=SC2206
    flags+=(${cmakeFlags:-})
    if declare -p cmakeFlagsArray &>/dev/null; then flags+=("${cmakeFlagsArray[@]}"); fi
    echo "cmake flags: ${flags[*]}"
    cmake .. "${flags[@]}"
    runHook postConfigure
}

if [[ -z ${dontUseCmakeConfigure:-} && -z ${configurePhase:-} ]]; then
    configurePhase=cmakeConfigurePhase
fi
