# envy's package set as a flake. envy materialises this directory together with a generated
# `host-tools.nix` (the host's clang/LLVM tools) and registers it under the flake id `envy`:
#
#   inputs.envy.url = "envy";   # or just take `envy` as an argument of `outputs`
#   outputs = { self, envy }: {
#     devShells.x86_64-linux.default = envy.legacyPackages.x86_64-linux.mkShell { … };
#   };
#
# Its `templates` (written by envy next to a materialised copy, from the repository's
# `templates/`) start a project: `envy init -t c-static`, or `nix flake init -t envy#c-static`.
{
  description = "envy's built-in package set: clang-musl stdenvs, mkShell and friends";

  outputs = { self }:
    let
      hostTools = import ./host-tools.nix;
    in
    {
      legacyPackages.${hostTools.system} = import ./. { inherit hostTools; };
      lib = import ./lib;
      templates = if builtins.pathExists ./templates then import ./templates else { };
    };
}
