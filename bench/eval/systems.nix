# lib.systems.elaborate over every example platform, fully evaluated (examples this 2022 lib
# cannot elaborate are reported as failures by both evaluators alike).
let
  lib = import <nixpkgs-lib>;
  elaborated = s: builtins.removeAttrs (lib.systems.elaborate s) [ "emulator" "emulatorAvailable" "isCompatible" "rust" ];
in
lib.mapAttrs (n: s: let r = builtins.tryEval (builtins.deepSeq (elaborated s) (elaborated s)); in if r.success then r.value else "failed") lib.systems.examples
