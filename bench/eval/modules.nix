# lib.evalModules over thousands of options (8000: 2000 submodule-like groups of 4), with
# types, defaults and definitions merged from two modules.
let
  lib = import <nixpkgs-lib>;
  inherit (lib) mkOption types;
  n = 2000;
  names = builtins.genList (i: "opt${toString i}") n;
  optionsModule = {
    options = lib.listToAttrs (
      map (name: {
        inherit name;
        value = {
          enable = mkOption { type = types.bool; default = false; };
          value = mkOption { type = types.int; default = 0; };
          label = mkOption { type = types.str; default = name; };
          tags = mkOption { type = types.listOf types.str; default = [ ]; };
        };
      }) names
    );
  };
  configModule = {
    config = lib.listToAttrs (
      lib.imap0 (i: name: {
        inherit name;
        value = {
          enable = i / 2 * 2 == i;
          value = i;
          tags = [ "a" "b${toString i}" ];
        };
      }) names
    );
  };
  eval = lib.evalModules { modules = [ optionsModule configModule ]; };
in
builtins.length (builtins.filter (x: x.enable) (builtins.attrValues eval.config))
+ builtins.foldl' (acc: x: acc + x.value + builtins.length x.tags) 0 (builtins.attrValues eval.config)
