# SQLite 3.40.1, static, from its pinned source: Debian's orig tarball is SQLite's canonical
# source tree (not the amalgamation), whose build generates `sqlite3.c` with the build
# machine's `tclsh` (Debian: tcl) and compiles its code generators (lemon, mkkeywordhash)
# with the build machine's compiler. The library (`libsqlite3.a`, `sqlite3.h`, `sqlite3.pc`)
# and the `sqlite3` shell, without readline.
{ lib, stdenv, fetchurl, buildPackages }:
stdenv.mkDerivation {
  pname = "sqlite";
  version = "3.40.1";
  src = fetchurl {
    url = "https://deb.debian.org/debian/pool/main/s/sqlite3/sqlite3_3.40.1.orig.tar.xz";
    sha256 = "aaa776260ab4dc976db34aa7891819484c8676b5b2783123ebc6301e2ca5d655";
  };
  # The code generators run during the build: they are built for the build machine.
  BUILD_CC = "${buildPackages.stdenv.cc}/bin/cc";
  preConfigure = ''
    # config.status runs plain `awk`, which Debian makes an alternatives link (/etc), outside
    # envy's build sandbox: the first real awk of the build machine stands in for it.
    mkdir -p "$NIX_BUILD_TOP/.tools"
    for awk in gawk mawk nawk original-awk; do
      if [[ -x /usr/bin/$awk ]]; then ln -sf "/usr/bin/$awk" "$NIX_BUILD_TOP/.tools/awk"; break; fi
    done
    PATH=$NIX_BUILD_TOP/.tools:$PATH
    command -v tclsh >/dev/null || {
      echo "error: building SQLite from its source tree needs the build machine's tclsh" >&2
      echo "hint: install it with \`apt-get install tcl' (Debian/Ubuntu)" >&2
      exit 1
    }
  '';
  configureFlags = [
    "--disable-shared" "--enable-static" "--disable-tcl" "--disable-readline"
    "--disable-editline" "--enable-threadsafe"
    # Without zlib (the shell's optional compression): `sqlite3.pc` then asks for nothing a
    # program linking SQLite alone would lack.
    "ac_cv_search_deflate=no"
  ];
  enableParallelBuilding = true;
  meta.description = "Self-contained SQL database engine (static)";
}
