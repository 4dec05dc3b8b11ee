# `makeStdenv`: a stdenv derivation (its `$out/setup` is setup.sh behind a generated header)
# and its Nix-side attributes (`mkDerivation`, `cc`, the platforms), as in nixpkgs.
#
# The build machine's base tools (bash, coreutils, make, tar, sed, grep, …) come from the
# host's /usr/bin and /bin: they are the `initialPath`, and builds see them through the
# sandbox's extra paths. The compiler is the cc wrapper given as `cc` (null: no compiler);
# `extraNativeBuildInputs` join it in every build and shell of the stdenv (pkg-config).
{ lib, system, buildPlatform, hostPlatform, targetPlatform ? hostPlatform }:
{ name, cc ? null, extraNativeBuildInputs ? [ ] }:
let
  isCross = buildPlatform.config != hostPlatform.config;
  shell = "/bin/bash";

  drv = derivation {
    inherit name system;
    builder = shell;
    args = [
      "-e"
      "-c"
      ''
        mkdir -p "$out"
        {
          printf 'initialPath=%q\n' "$initialPath"
          printf 'defaultNativeBuildInputs=%q\n' "$defaultNativeBuildInputs"
          printf '__envyCross=%q\n' "$cross"
          cat "$setup"
        } > "$out/setup"
      ''
    ];
    setup = ./setup.sh;
    initialPath = "/usr/bin /bin";
    defaultNativeBuildInputs = (if cc == null then [ ] else [ cc ]) ++ extraNativeBuildInputs;
    cross = if isCross then "1" else "";
    PATH = "/usr/bin:/bin";
  };

  self = drv // {
    inherit cc shell isCross buildPlatform hostPlatform targetPlatform system;
    inherit (hostPlatform) isLinux isDarwin;
    isClang = cc != null;
    mkDerivation = import ./make-derivation.nix { inherit lib system buildPlatform hostPlatform; stdenv = self; };
  };
in
self
