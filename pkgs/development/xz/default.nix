# XZ Utils 5.4.1, static, from its pinned upstream source (Debian's orig tarball is upstream's
# release): liblzma (`liblzma.a`, headers, `liblzma.pc`) and the `xz` program.
{ lib, stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "xz";
  version = "5.4.1";
  src = fetchurl {
    url = "https://deb.debian.org/debian/pool/main/x/xz-utils/xz-utils_5.4.1.orig.tar.xz";
    sha256 = "5d9827aa1875b21c288f78864bb26d2650b436ea8d2cad364e4921eb6266a5a5";
  };
  configureFlags = [
    "--disable-shared" "--enable-static" "--disable-nls" "--disable-doc"
    "--disable-xzdec" "--disable-lzmadec" "--disable-lzmainfo" "--disable-scripts"
    "--disable-lzma-links"
  ];
  enableParallelBuilding = true;
  # libtool's archive lists build paths; static linking needs only liblzma.a and liblzma.pc.
  postInstall = "rm -f $out/lib/*.la";
  meta.description = "General-purpose data compression with a high ratio (static liblzma)";
}
