# One package set: everything built for `hostPlatform` on the build machine (`system`,
# `buildPlatform`). The top level (default.nix) makes the native set and the `pkgsCross`
# sets from this file.
{ lib, system, hostTools, buildPlatform, hostPlatform, nativeSet ? null, pkgsCross }:
let
  isCross = buildPlatform.config != hostPlatform.config;
  makeStdenv = import ./stdenv { inherit lib system buildPlatform hostPlatform; };
in
lib.fix (self: {
  inherit lib hostTools buildPlatform hostPlatform pkgsCross system;
  targetPlatform = self.hostPlatform;
  # Every set here is static musl already.
  pkgsStatic = self;
  buildPackages = if isCross then nativeSet else self;

  runtimeShell = "/bin/bash";
  fetchurl = import ./build-support/fetchurl.nix;

  # Builds without a compiler (the musl source build, the trivial builders) share one stdenv
  # across all sets: the derivation does not depend on the target.
  stdenvNoCC =
    if isCross then nativeSet.stdenvNoCC
    else makeStdenv { name = "stdenv-linux"; };

  musl = import ./development/musl {
    inherit lib hostTools hostPlatform;
    inherit (self) stdenvNoCC fetchurl;
  };

  # The host's CMake, pinned, with nixpkgs' configure hook; a build tool, the same in every set.
  cmake =
    if isCross then nativeSet.cmake
    else import ./development/cmake { inherit hostTools; inherit (self) stdenvNoCC; };

  # LLVM's C++ runtimes (libc++, libc++abi, libunwind) for this set's platform, built straight
  # with the host's clang at musl: what the compiler wrapper links C++ programs with.
  libcxx = import ./development/libcxx {
    inherit lib hostTools hostPlatform;
    inherit (self) stdenvNoCC fetchurl musl;
    cmake = self.buildPackages.cmake;
  };
  llvmPackages = { inherit (self) libcxx; };
  llvmPackages_14 = self.llvmPackages;

  # The compiler wrapper; nixpkgs calls the clang one `clang` and the stdenv's `stdenv.cc`.
  clang = import ./build-support/cc-wrapper {
    inherit lib hostTools buildPlatform isCross;
    inherit (self) stdenvNoCC libcxx;
    libc = self.musl;
    targetPlatform = self.hostPlatform;
  };

  # The stdenv that builds pkg-config itself; every other build and shell also gets the
  # build machine's pkg-config (its setup hook collects PKG_CONFIG_PATH).
  stdenvNoPkgConfig = makeStdenv { name = "stdenv-linux"; cc = self.clang; };
  stdenv = makeStdenv {
    name = "stdenv-linux";
    cc = self.clang;
    extraNativeBuildInputs = [ self.buildPackages.pkg-config ];
  };
  clangStdenv = self.stdenv;

  mkShell = import ./build-support/mk-shell.nix { inherit lib; inherit (self) stdenv; };
  mkShellNoCC = import ./build-support/mk-shell.nix { inherit lib; stdenv = self.stdenvNoCC; };

  inherit (import ./build-support/trivial-builders.nix {
    inherit lib;
    inherit (self) stdenv stdenvNoCC runtimeShell;
  })
    runCommand runCommandCC runCommandNoCC runCommandWith writeTextFile writeText writeScript
    writeScriptBin writeShellScript writeShellScriptBin symlinkJoin;

  # A small C program built with the set's stdenv (nixpkgs has GNU hello under this name).
  hello = import ./development/hello { inherit (self) stdenv; };

  # pkg-config (pkgconf), built without itself.
  pkgconf = import ./development/pkgconf {
    inherit (self) fetchurl;
    stdenv = self.stdenvNoPkgConfig;
  };
  pkg-config = self.pkgconf;
  pkgconfig = self.pkgconf;

  # Static libraries from their pinned upstream sources.
  zlib = import ./development/zlib { inherit lib; inherit (self) stdenv fetchurl; };
  openssl = import ./development/openssl { inherit lib; inherit (self) stdenv fetchurl; };
  openssl_3 = self.openssl;
  zstd = import ./development/zstd { inherit lib; inherit (self) stdenv fetchurl; };
  xz = import ./development/xz { inherit lib; inherit (self) stdenv fetchurl; };
  lzma = self.xz;
  sqlite = import ./development/sqlite { inherit lib; inherit (self) stdenv fetchurl buildPackages; };
  # A C++ library (CMake), linked with the set's libc++.
  leveldb = import ./development/leveldb {
    inherit lib;
    inherit (self) stdenv fetchurl;
    cmake = self.buildPackages.cmake;
  };

  # The host's Go, pinned (`hostTools.optionalTools.go`), with cgo on for this set's platform.
  go = import ./development/go {
    inherit lib hostTools hostPlatform;
    inherit (self) stdenvNoCC;
  };
})
