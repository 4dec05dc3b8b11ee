# `cmake`: the host's CMake (Debian: cmake), found on PATH by envy and pinned like Go: its
# path, version and content hash are part of this derivation. Its setup hook makes CMake the
# configure step of every build that has it in `nativeBuildInputs` (nixpkgs' convention:
# `cmakeFlags`, `dontUseCmakeConfigure`, a `build/` directory) and gathers the inputs into
# `CMAKE_PREFIX_PATH`, so `find_package` finds the set's libraries in builds and shells.
{ stdenvNoCC, hostTools }:
let
  cmake = hostTools.optionalTools.cmake or (throw ''
    envy's package set: `cmake` is the host's CMake, and there is none on PATH
    hint: install it with `apt-get install cmake` (Debian/Ubuntu)'');
in
stdenvNoCC.mkDerivation {
  pname = "cmake";
  inherit (cmake) version;
  cmakePath = cmake.path;
  cmakeRealPath = cmake.realPath;
  cmakeSha256 = cmake.sha256;
  dontUnpack = true;
  installPhase = ''
    mkdir -p "$out/bin"
    root=$(dirname "$cmakeRealPath")
    for tool in cmake ctest cpack; do
      if [[ -x $root/$tool ]]; then
        printf '#!/bin/sh\nexec %q "$@"\n' "$root/$tool" > "$out/bin/$tool"
        chmod +x "$out/bin/$tool"
      fi
    done
  '';
  setupHook = ./setup-hook.sh;
  meta.description = "Cross-platform build-system generator (the host's CMake, pinned)";
}
