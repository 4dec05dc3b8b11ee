# envy's package set: the stdenvs, compiler wrappers and helpers that `envy shell` and project
# flakes build on, with nixpkgs' names (`stdenv`, `clangStdenv`, `mkShell`, `runCommand`,
# `writeShellScriptBin`, `pkgsStatic`, `pkgsCross.musl64`,
# `pkgsCross.aarch64-multiplatform-musl`, `musl`, `lib`, …).
#
#   import <envy-pkgs> { system = "x86_64-linux"; hostTools = …; }
#
# `hostTools` describes the host's clang/LLVM tools as envy discovered them (the Nix language
# cannot run `clang --version`): `{ tools = { clang = { path; realPath; version; sha256; };
# lld = …; ar = …; ranlib = …; nm = …; strip = …; objcopy = …; objdump = …; readelf = …; }; }`.
# When it is not given, `./host-tools.nix` (written by envy next to a materialised copy of
# this set) is used.
{ hostTools ? (if builtins.pathExists ./host-tools.nix then import ./host-tools.nix else null)
, system ? (if hostTools != null && hostTools ? system then hostTools.system else builtins.currentSystem)
}:
let
  lib = import ./lib;
  platforms = import ./platforms.nix;

  checkedHostTools =
    if hostTools == null then
      throw ''
        envy's package set needs the host's clang and LLVM tools, discovered by envy
        (`envy shell` does this); on Debian install them with `apt-get install clang lld llvm`''
    else
      hostTools // {
        # One line per tool; part of every derivation that runs them, so a changed host
        # compiler gives new store paths.
        identities = lib.concatMapStringsSep "\n"
          (name: let t = hostTools.tools.${name}; in "${name} ${t.path} ${t.realPath} ${t.version} ${t.sha256}")
          (builtins.attrNames hostTools.tools);
      };

  cpu = builtins.match "(x86_64|aarch64)-linux" system;
  buildPlatform =
    if cpu == null then throw "envy's package set supports x86_64-linux and aarch64-linux, not `${system}'"
    else platforms.${builtins.head cpu};

  mkSet = hostPlatform: import ./package-set.nix {
    inherit lib system buildPlatform hostPlatform pkgsCross;
    hostTools = checkedHostTools;
    nativeSet = native;
  };

  native = mkSet buildPlatform;
  cross = platform: if platform.config == buildPlatform.config then native else mkSet platform;

  pkgsCross = {
    musl64 = cross platforms.x86_64;
    aarch64-multiplatform-musl = cross platforms.aarch64;
  };
in
native
