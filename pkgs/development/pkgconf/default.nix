# pkgconf 1.8.1 (nixpkgs' `pkg-config` is a wrapper around it), from its pinned upstream
# source, as a static program. It searches only what `PKG_CONFIG_PATH` names (never the
# host's /usr/lib/pkgconfig), and its setup hook gathers `lib/pkgconfig` and
# `share/pkgconfig` of every dependency into `PKG_CONFIG_PATH`, the way the compiler
# wrapper gathers their include/ and lib/ directories. Debian's orig tarball of pkgconf
# 1.8.1 is the upstream one (`scripts/fill-mirror`).
{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "pkgconf";
  version = "1.8.1";
  src = fetchurl {
    url = "https://distfiles.dereferenced.org/pkgconf/pkgconf-1.8.1.tar.xz";
    sha256 = "644361ada2942be05655d4452eb018791647c31bba429b287f1f68deb2dc6840";
  };
  configureFlags = [
    "--disable-shared"
    "--with-pkg-config-dir=${placeholder "out"}/lib/pkgconfig"
  ];
  enableParallelBuilding = true;
  postInstall = ''
    ln -s pkgconf "$out/bin/pkg-config"
    rm -rf "$out/share/man" "$out/share/doc" "$out/share/aclocal"
  '';
  setupHook = ./setup-hook.sh;
  meta.description = "A package compiler and linker metadata toolkit (pkg-config)";
}
