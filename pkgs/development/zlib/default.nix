# zlib 1.2.13, static, from its pinned source: Debian's `1.2.13.dfsg` orig tarball, which is
# upstream's zlib-1.2.13.tar.gz without `contrib/` (Debian's Files-Excluded; the build uses
# none of it), fetched from Debian's archive (`scripts/fill-mirror` puts it in a mirror).
# `pkg-config --static --libs zlib` gives `-L…/lib -lz`.
{ lib, stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "zlib";
  version = "1.2.13";
  src = fetchurl {
    url = "https://deb.debian.org/debian/pool/main/z/zlib/zlib_1.2.13.dfsg.orig.tar.bz2";
    sha256 = "71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1";
  };
  # zlib's own configure script, not autoconf: no --build/--host; it reads CC, AR, RANLIB.
  configurePlatforms = [ ];
  configureFlags = [ "--static" ];
  enableParallelBuilding = true;
  meta.description = "Lossless data-compression library";
}
