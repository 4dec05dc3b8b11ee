{
  description = "A statically linked C program using OpenSSL, built with clang and musl from envy's package set";

  inputs.envy.url = "envy";

  outputs = { self, envy }: {
    # `cc` is clang with musl; OpenSSL's static libraries reach it through pkg-config
    # (`pkg-config --static --libs openssl`), whose search path the shell sets.
    devShells = builtins.mapAttrs
      (system: pkgs: {
        default = pkgs.mkShell {
          buildInputs = [ pkgs.openssl ];
        };
      })
      envy.legacyPackages;
  };
}
