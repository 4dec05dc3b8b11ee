# The clang-musl compiler wrapper (nixpkgs: `stdenv.cc`): `cc`, `c++`, `cpp`, `ld`, `ar`,
# `ranlib`, `nm`, `strip`, `objcopy`, `objdump`, `readelf` for `targetPlatform`, driving the
# host's clang and lld at `libc` (musl) and, for C++, `libcxx` (LLVM's libc++, libc++abi and
# libunwind), static by default, plus a nixpkgs-style setup hook.
#
# The host tools' paths, versions and content hashes are part of the derivation, so a changed
# host compiler gives a new store path.
{ lib, stdenvNoCC, hostTools, libc, libcxx, buildPlatform, targetPlatform, isCross }:
let
  tools = hostTools.tools;
  clangVersion = tools.clang.version;
  targetPrefix = lib.optionalString isCross "${targetPlatform.config}-";
  # Debian ships compiler-rt per clang major version and per architecture.
  major = builtins.head (builtins.splitVersion clangVersion);
  debArch = if targetPlatform.isAarch64 then "arm64" else "amd64";
  builtinsPackage = "libclang-rt-${major}-dev"
    + lib.optionalString (targetPlatform.linuxArch != buildPlatform.linuxArch) ":${debArch}";
in
stdenvNoCC.mkDerivation {
  name = "${targetPrefix}clang-musl-wrapper-${clangVersion}";
  builder = ./builder.sh;
  inherit libc libcxx targetPrefix builtinsPackage;
  libcVersion = libc.version;
  triple = targetPlatform.config;
  inherit (targetPlatform) rtArch;
  suffixSalt = lib.replaceStrings [ "-" "." ] [ "_" "_" ] targetPlatform.config;
  clang = tools.clang.path;
  lld = tools.lld.path;
  ar = tools.ar.path;
  ranlib = tools.ranlib.path;
  nm = tools.nm.path;
  strip = tools.strip.path;
  objcopy = tools.objcopy.path;
  objdump = tools.objdump.path;
  readelf = tools.readelf.path;
  hostToolIdentities = hostTools.identities;
  wrapperScript = ./cc-wrapper.sh;
  setupHook = ./setup-hook.sh;
  passthru = {
    isClang = true;
    isGNU = false;
    inherit libc libcxx targetPrefix;
    cc = tools.clang // { version = clangVersion; };
    version = clangVersion;
  };
}
