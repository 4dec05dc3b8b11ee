{
  description = "A statically linked C program, built with clang and musl from envy's package set";

  inputs.envy.url = "envy";

  outputs = { self, envy }: {
    # `cc` in this shell is clang with musl: everything it links is static.
    devShells = builtins.mapAttrs
      (system: pkgs: {
        default = pkgs.mkShell {
          packages = [ ];
        };
      })
      envy.legacyPackages;
  };
}
