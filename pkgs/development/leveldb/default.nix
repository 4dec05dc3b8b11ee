# LevelDB 1.23, Google's key-value store: a C++ library (CMake) built static against the set's
# libc++, from its pinned upstream source (Debian's orig tarball is upstream's release).
# `lib/libleveldb.a`, the headers, CMake's `leveldbConfig.cmake` (`find_package(leveldb)`) and
# a `leveldb.pc` for pkg-config (upstream has none).
{ lib, stdenv, fetchurl, cmake }:
stdenv.mkDerivation rec {
  pname = "leveldb";
  version = "1.23";
  src = fetchurl {
    url = "https://deb.debian.org/debian/pool/main/l/leveldb/leveldb_${version}.orig.tar.gz";
    sha256 = "9a37f8a6174f09bd622bc723b55881dc541cd50747cbd08831c2a82d620f6d76";
  };
  nativeBuildInputs = [ cmake ];
  # The tests and benchmarks need googletest/benchmark submodules the release does not ship.
  cmakeFlags = [ "-DLEVELDB_BUILD_TESTS=OFF" "-DLEVELDB_BUILD_BENCHMARKS=OFF" "-DLEVELDB_INSTALL=ON" ];
  enableParallelBuilding = true;
  postInstall = ''
    mkdir -p "$out/lib/pkgconfig"
    cat > "$out/lib/pkgconfig/leveldb.pc" <<EOF
    prefix=$out
    libdir=$out/lib
    includedir=$out/include

    Name: leveldb
    Description: A fast key-value storage library
    Version: ${version}
    Libs: -L$out/lib -lleveldb
    Cflags: -I$out/include
    EOF
  '';
  meta.description = "Fast key-value storage library (static, C++)";
}
