# `mkShell { packages; buildInputs; nativeBuildInputs; inputsFrom; shellHook; … }`: a
# derivation meant for `nix develop` / `envy shell` / envy's hook, as in nixpkgs. `packages`
# join `nativeBuildInputs`; `inputsFrom` contributes the inputs of other derivations (minus
# those derivations themselves) and their shell hooks, which run before this one's.
{ lib, stdenv }:
{ name ? "nix-shell"
, packages ? [ ]
, inputsFrom ? [ ]
, buildInputs ? [ ]
, nativeBuildInputs ? [ ]
, propagatedBuildInputs ? [ ]
, propagatedNativeBuildInputs ? [ ]
, ...
}@attrs:
let
  mergeInputs = attr:
    (attrs.${attr} or [ ])
    ++ lib.subtractLists inputsFrom (lib.flatten (lib.catAttrs attr inputsFrom));
  rest = removeAttrs attrs [
    "name" "packages" "inputsFrom" "buildInputs" "nativeBuildInputs"
    "propagatedBuildInputs" "propagatedNativeBuildInputs" "shellHook"
  ];
in
stdenv.mkDerivation ({
  inherit name;
  buildInputs = mergeInputs "buildInputs";
  nativeBuildInputs = packages ++ mergeInputs "nativeBuildInputs";
  propagatedBuildInputs = mergeInputs "propagatedBuildInputs";
  propagatedNativeBuildInputs = mergeInputs "propagatedNativeBuildInputs";
  shellHook = lib.concatStringsSep "\n" (lib.catAttrs "shellHook" (lib.reverseList inputsFrom ++ [ attrs ]));
  phases = [ "buildPhase" ];
  buildPhase = ''
    {
      echo "This derivation is a development shell: enter it with \`envy shell' or \`nix develop'."
      echo "Building it only records the environment below."
      export
    } >> "$out"
  '';
  preferLocalBuild = true;
} // rest)
