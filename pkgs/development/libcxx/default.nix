# LLVM's C++ runtimes for musl, static: libc++ (the C++ standard library), libc++abi (its ABI
# layer: exceptions, RTTI) and libunwind (the unwinder exceptions need), from the LLVM source
# matching the host's clang (Debian's llvm-toolchain-14 orig tarball, the llvm-project tree
# of that release). Built with the host's clang straight at the set's musl, as musl itself is:
# the compiler wrapper links every C++ program with these, so it cannot build them.
#
# Outputs `lib/libc++.a`, `lib/libc++abi.a`, `lib/libunwind.a` and the headers under
# `include/c++/v1`.
{ lib, stdenvNoCC, fetchurl, hostTools, hostPlatform, musl, cmake }:
let
  tools = hostTools.tools;
  triple = hostPlatform.config;
  version = "14.0.6";
  major = builtins.head (builtins.splitVersion version);
  hostMajor = builtins.head (builtins.splitVersion tools.clang.version);
  top = "llvm-toolchain-14_${version}";
in
if hostMajor != major then
  throw ''
    envy's package set builds LLVM ${version}'s C++ runtimes, and the host's clang is ${tools.clang.version}
    hint: libc++ must match the compiler's major version; install clang-${major} (Debian bookworm's clang)''
else
stdenvNoCC.mkDerivation {
  pname = "libcxx";
  inherit version;
  src = fetchurl {
    url = "https://deb.debian.org/debian/pool/main/l/llvm-toolchain-14/llvm-toolchain-14_${version}.orig.tar.xz";
    sha256 = "d9bce5f42381d781e273c724db1ab0acd66259bf2782b79891664dbf1953d22c";
  };
  nativeBuildInputs = [ cmake ];
  # Only the runtimes' part of the 1.3 GB tree.
  unpackPhase = ''
    tar -xf "$src" ${lib.concatMapStringsSep " " (d: "${top}/${d}")
      [ "cmake" "runtimes" "libcxx" "libcxxabi" "libunwind" "llvm/cmake" "llvm/utils/llvm-lit" ]}
    sourceRoot=${top}
  '';
  inherit triple musl;
  cpu = hostPlatform.parsed.cpu.name;
  clang = tools.clang.path;
  ar = tools.ar.path;
  ranlib = tools.ranlib.path;
  hostToolIdentities = hostTools.identities;
  configurePhase = ''
    runHook preConfigure
    # musl has no kernel headers; libc++'s atomic waits need only the futex operation numbers.
    mkdir -p ../shim/linux ../bin
    cat > ../shim/linux/futex.h <<'H'
    #pragma once
    #define FUTEX_WAIT 0
    #define FUTEX_WAKE 1
    #define FUTEX_PRIVATE_FLAG 128
    #define FUTEX_WAIT_PRIVATE (FUTEX_WAIT | FUTEX_PRIVATE_FLAG)
    #define FUTEX_WAKE_PRIVATE (FUTEX_WAKE | FUTEX_PRIVATE_FLAG)
    H
    # clang picks its C++ mode from the name it is called by.
    ln -s "$clang" ../bin/clang++
    flags="-nostdlibinc -idirafter $musl/include -isystem $PWD/../shim"
    cmake -S runtimes -B build \
      -DCMAKE_BUILD_TYPE=Release "-DCMAKE_INSTALL_PREFIX=$out" \
      "-DCMAKE_C_COMPILER=$clang" "-DCMAKE_CXX_COMPILER=$PWD/../bin/clang++" "-DCMAKE_ASM_COMPILER=$clang" \
      "-DCMAKE_C_COMPILER_TARGET=$triple" "-DCMAKE_CXX_COMPILER_TARGET=$triple" "-DCMAKE_ASM_COMPILER_TARGET=$triple" \
      "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" "-DCMAKE_ASM_FLAGS=$flags" \
      -DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY \
      "-DCMAKE_AR=$ar" "-DCMAKE_RANLIB=$ranlib" \
      -DCMAKE_SYSTEM_NAME=Linux "-DCMAKE_SYSTEM_PROCESSOR=$cpu" \
      "-DLLVM_ENABLE_RUNTIMES=libcxx;libcxxabi;libunwind" \
      -DLIBCXX_HAS_MUSL_LIBC=ON -DLIBCXX_CXX_ABI=libcxxabi -DLIBCXXABI_USE_LLVM_UNWINDER=ON \
      -DLIBCXX_ENABLE_SHARED=OFF -DLIBCXXABI_ENABLE_SHARED=OFF -DLIBUNWIND_ENABLE_SHARED=OFF \
      -DLIBCXX_USE_COMPILER_RT=ON -DLIBCXXABI_USE_COMPILER_RT=ON -DLIBUNWIND_USE_COMPILER_RT=ON \
      -DLLVM_INCLUDE_TESTS=OFF -DLIBCXX_INCLUDE_TESTS=OFF -DLIBCXXABI_INCLUDE_TESTS=OFF \
      -DLIBUNWIND_INCLUDE_TESTS=OFF -DLIBCXX_INCLUDE_BENCHMARKS=OFF \
      -DLIBCXX_INCLUDE_DOCS=OFF -DLIBUNWIND_INCLUDE_DOCS=OFF
    runHook postConfigure
  '';
  buildPhase = ''
    runHook preBuild
    make -C build -j"$NIX_BUILD_CORES"
    runHook postBuild
  '';
  installPhase = ''
    runHook preInstall
    make -C build install
    runHook postInstall
  '';
  passthru = {
    platform = hostPlatform;
    # What the compiler wrapper links after a C++ program's own libraries.
    libs = [ "-lc++" "-lc++abi" "-lunwind" ];
  };
  meta.description = "LLVM's C++ standard library, ABI library and unwinder (static, musl)";
}
