{
  description = "A development shell from envy's package set";

  # envy's built-in package set (clang + musl stdenvs, mkShell, …), registered as `envy`.
  inputs.envy.url = "envy";

  outputs = { self, envy }: {
    devShells = builtins.mapAttrs
      (system: pkgs: {
        default = pkgs.mkShell {
          # Packages from envy's set, e.g. `pkgs.hello`.
          packages = [ ];
          shellHook = ''
            echo "envy: development shell for ${system}"
          '';
        };
      })
      envy.legacyPackages;
  };
}
