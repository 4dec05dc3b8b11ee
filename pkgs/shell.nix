# The environment `envy shell` enters: a `mkShell` with the compiler for `target` and the
# packages named by `-p` (attribute paths into the set for that target, like "musl",
# "hello" or "buildPackages.hello").
#
#   import ./shell.nix { target = "aarch64-unknown-linux-musl"; packages = [ "hello" ]; … }
{ target ? null, packages ? [ ], ... }@args:
let
  top = import ./. (removeAttrs args [ "target" "packages" ]);
  lib = top.lib;
  sets = [ top ] ++ builtins.attrValues top.pkgsCross;
  # Targets are named by their full triple or the short form (`aarch64-linux-musl`).
  named = s: [ s.hostPlatform.config "${s.hostPlatform.parsed.cpu.name}-linux-musl" ];
  matching = builtins.filter (s: builtins.elem target (named s)) sets;
  pkgs =
    if target == null then top
    else if matching != [ ] then builtins.head matching
    else throw "envy shell: unknown target `${target}' (known: ${lib.concatMapStringsSep ", " (s: s.hostPlatform.config) sets})";
  lookup = attrPath:
    lib.attrByPath (lib.splitString "." attrPath) (throw "envy shell: the package set has no `${attrPath}'") pkgs;
  # Without nixpkgs' splicing, the slot follows the name: `buildPackages.*` are tools for the
  # build machine (native inputs); everything else is built for the target (build inputs:
  # its headers and libraries reach the compiler; in a native shell its programs are on PATH).
  isTool = p: lib.hasPrefix "buildPackages." p;
in
pkgs.mkShell {
  name = "envy-shell-${pkgs.hostPlatform.config}";
  nativeBuildInputs = map lookup (builtins.filter isTool packages);
  buildInputs = map lookup (builtins.filter (p: !isTool p) packages);
}
