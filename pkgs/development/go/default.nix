# `go`: the host's Go toolchain (Debian: golang-go), found on PATH by envy and pinned like
# clang: its path, version and content hash are part of this derivation. `bin/go` and
# `bin/gofmt` run it; the setup hook turns cgo on and points Go at the set's platform
# (`GOOS=linux`, `GOARCH` of the target), so with the compiler wrapper's `CC`
#
#   go build -ldflags '-extldflags "-static"'
#
# gives a static binary that calls C through musl, for the host or (in an aarch64 shell) for
# aarch64.
{ lib, stdenvNoCC, hostTools, hostPlatform }:
let
  go = hostTools.optionalTools.go or (throw ''
    envy's package set: `go` is the host's Go, and there is none on PATH
    hint: install it with `apt-get install golang-go` (Debian/Ubuntu)'');
  goarch = if hostPlatform.isAarch64 then "arm64" else "amd64";
in
stdenvNoCC.mkDerivation {
  pname = "go";
  inherit (go) version;
  goPath = go.path;
  goRealPath = go.realPath;
  goSha256 = go.sha256;
  inherit goarch;
  dontUnpack = true;
  installPhase = ''
    mkdir -p "$out/bin"
    root=$(dirname "$(dirname "$goRealPath")")
    for tool in go gofmt; do
      if [[ -x $root/bin/$tool ]]; then
        printf '#!/bin/sh\nexec %q "$@"\n' "$root/bin/$tool" > "$out/bin/$tool"
        chmod +x "$out/bin/$tool"
      fi
    done
  '';
  setupHook = ./setup-hook.sh;
  passthru.goRoot = go.realPath;
  meta.description = "The Go programming language (the host's toolchain, pinned)";
}
