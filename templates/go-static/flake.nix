{
  description = "A statically linked Go program that calls C (cgo), built with clang and musl from envy's package set";

  inputs.envy.url = "envy";

  outputs = { self, envy }: {
    # `go` is the host's Go (pinned by envy), with cgo on; `CC` is clang with musl, so
    # `go build -ldflags '-extldflags "-static"'` links everything statically.
    devShells = builtins.mapAttrs
      (system: pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.go ];
        };
      })
      envy.legacyPackages;
  };
}
