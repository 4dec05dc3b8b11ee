# Zstandard 1.5.4, static, from its pinned source: Debian's `1.5.4+dfsg2` orig tarball, which is
# upstream's release without Windows build files and CI configuration (Debian's
# Files-Excluded; the build uses none of them). The library (`libzstd.a`, headers,
# `libzstd.pc`) and the `zstd` program.
{ lib, stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "zstd";
  version = "1.5.4";
  src = fetchurl {
    url = "https://deb.debian.org/debian/pool/main/libz/libzstd/libzstd_1.5.4+dfsg2.orig.tar.xz";
    sha256 = "8cf4bbb65e77ec348d052c8d6230eba66d435bddf64c8b5be2fcb16880c19953";
  };
  # Plain Makefiles reading CC and AR; no threads pool in the program keeps it simple.
  dontConfigure = true;
  enableParallelBuilding = true;
  buildPhase = ''
    runHook preBuild
    make -j"$NIX_BUILD_CORES" -C lib libzstd.a libzstd.pc PREFIX="$out"
    make -j"$NIX_BUILD_CORES" -C programs zstd
    runHook postBuild
  '';
  installPhase = ''
    runHook preInstall
    make -C lib install-static install-includes install-pc PREFIX="$out"
    install -Dm755 programs/zstd "$out/bin/zstd"
    runHook postInstall
  '';
  meta.description = "Zstandard real-time compression library (static)";
}
