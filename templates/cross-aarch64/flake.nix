{
  description = "A static C program for aarch64 Linux, cross-compiled with clang and musl from envy's package set";

  inputs.envy.url = "envy";

  outputs = { self, envy }: {
    # `cc` (and `$CC`, `aarch64-unknown-linux-musl-cc`) in this shell builds static aarch64
    # binaries on any machine; `make run` runs them under `qemu-aarch64-static`.
    devShells = builtins.mapAttrs
      (system: pkgs: {
        default = pkgs.pkgsCross.aarch64-multiplatform-musl.mkShell {
          packages = [ ];
        };
      })
      envy.legacyPackages;
  };
}
