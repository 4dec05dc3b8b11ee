{
  description = "A statically linked C++ program (libc++, LevelDB), built with clang and musl from envy's package set";

  inputs.envy.url = "envy";

  outputs = { self, envy }: {
    # `c++` in this shell is clang with LLVM's libc++ for musl: containers, iostreams,
    # exceptions and RTTI, all linked statically; LevelDB comes through pkg-config.
    devShells = builtins.mapAttrs
      (system: pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.leveldb ];
        };
      })
      envy.legacyPackages;
  };
}
