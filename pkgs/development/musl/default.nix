# musl 1.2.3 from its pinned upstream source, compiled by the host's clang for
# `hostPlatform` (natively or cross) as a static library with its crt files and headers:
# the sysroot of the package set's compiler wrapper.
{ lib, stdenvNoCC, fetchurl, hostTools, hostPlatform }:
let
  tools = hostTools.tools;
  triple = hostPlatform.config;
in
stdenvNoCC.mkDerivation {
  pname = "musl";
  version = "1.2.3";
  src = fetchurl {
    url = "https://musl.libc.org/releases/musl-1.2.3.tar.gz";
    sha256 = "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4";
  };
  configurePlatforms = [ ];
  preConfigure = ''
    # compiler-rt's builtins stand in for libgcc (musl's printf needs 128-bit float helpers).
    LIBCC=$("$clang" --target=${triple} -rtlib=compiler-rt -print-libgcc-file-name)
    configureFlagsArray+=("CC=$clang --target=${triple}" "AR=$ar" "RANLIB=$ranlib" "LIBCC=$LIBCC" "LDFLAGS=-fuse-ld=lld")
  '';
  configureFlags = [ "--target=${triple}" "--disable-shared" "--disable-wrapper" ];
  enableParallelBuilding = true;
  clang = tools.clang.path;
  ar = tools.ar.path;
  ranlib = tools.ranlib.path;
  hostToolIdentities = hostTools.identities;
  passthru.platform = hostPlatform;
}
