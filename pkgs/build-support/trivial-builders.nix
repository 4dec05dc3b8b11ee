# nixpkgs' trivial builders: `runCommand`, `runCommandCC`, `runCommandNoCC`, `writeTextFile`
# and the `write*` helpers built on it, `symlinkJoin`.
{ lib, stdenv, stdenvNoCC, runtimeShell }:
rec {
  # `runCommand name env script`: a derivation whose builder runs `script` (bash, with the
  # stdenv's setup sourced) to produce `$out`.
  runCommandWith = { stdenv, name, derivationArgs ? { } }: buildCommand:
    stdenv.mkDerivation ({ inherit name buildCommand; preferLocalBuild = true; } // derivationArgs);
  runCommand = name: env: runCommandWith { stdenv = stdenvNoCC; inherit name; derivationArgs = env; };
  runCommandNoCC = runCommand;
  runCommandCC = name: env: runCommandWith { inherit stdenv name; derivationArgs = env; };

  # `writeTextFile { name; text; executable ? false; destination ? ""; checkPhase ? ""; }`
  writeTextFile = { name, text, executable ? false, destination ? "", checkPhase ? "" }:
    runCommand name { inherit text executable checkPhase destination; } ''
      target=$out$destination
      mkdir -p "$(dirname "$target")"
      printf '%s' "$text" > "$target"
      if [[ -n $executable ]]; then chmod +x "$target"; fi
      eval "$checkPhase"
    '';
  writeText = name: text: writeTextFile { inherit name text; };
  writeScript = name: text: writeTextFile { inherit name text; executable = true; };
  writeScriptBin = name: text: writeTextFile { inherit name text; executable = true; destination = "/bin/${name}"; };
  writeShellScript = name: text: writeTextFile {
    inherit name;
    executable = true;
    text = "#!${runtimeShell}\n${text}\n";
    checkPhase = "${runtimeShell} -n \"$target\"";
  };
  writeShellScriptBin = name: text: writeTextFile {
    inherit name;
    executable = true;
    destination = "/bin/${name}";
    text = "#!${runtimeShell}\n${text}\n";
    checkPhase = "${runtimeShell} -n \"$target\"";
  };

  # `symlinkJoin { name; paths; }`: one tree of symlinks into every path.
  symlinkJoin = { name, paths, postBuild ? "", ... }@args:
    runCommand name (removeAttrs args [ "name" "paths" "postBuild" ] // { inherit paths postBuild; }) ''
      mkdir -p "$out"
      for p in $paths; do
        (cd "$p" && find . -mindepth 1 -type d -printf '%P\n' | while read -r d; do mkdir -p "$out/$d"; done
         find . -mindepth 1 ! -type d -printf '%P\n' | while read -r f; do ln -sf "$p/$f" "$out/$f"; done)
      done
      eval "$postBuild"
    '';
}
