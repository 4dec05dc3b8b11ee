# The part of nixpkgs' `lib` that envy's package set uses, with nixpkgs' names and meanings,
# so project flakes written against nixpkgs read the same here. Only core builtins are used,
# so both real Nix and envy's evaluator can evaluate it.
let
  inherit (builtins)
    attrNames attrValues concatLists concatStringsSep elem filter foldl' genList head
    isAttrs isList isString length listToAttrs map mapAttrs replaceStrings stringLength
    substring tail
    ;
in
rec {
  inherit
    attrNames attrValues concatStringsSep elem filter foldl' head isAttrs isList isString
    length listToAttrs map mapAttrs replaceStrings tail
    ;

  # --- functions --------------------------------------------------------------------------
  id = x: x;
  const = x: _: x;
  fix = f: let x = f x; in x;
  # `extends overlay base`: the fixed point of `base` with `overlay` applied on top.
  extends = overlay: base: final: let prev = base final; in prev // overlay final prev;

  # --- lists ------------------------------------------------------------------------------
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  concatMap = f: xs: concatLists (map f xs);
  flatten = x: if isList x then concatMap flatten x else [ x ];
  last = xs: builtins.elemAt xs (length xs - 1);
  reverseList = xs: let n = length xs; in genList (i: builtins.elemAt xs (n - i - 1)) n;
  unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
  subtractLists = remove: filter (x: !(elem x remove));
  catAttrs = builtins.catAttrs;
  range = first: lastN: if first > lastN then [ ] else genList (i: first + i) (lastN - first + 1);
  toList = x: if isList x then x else [ x ];
  any = builtins.any;
  all = builtins.all;

  # --- attribute sets ---------------------------------------------------------------------
  optionalAttrs = cond: attrs: if cond then attrs else { };
  filterAttrs = pred: set:
    listToAttrs (concatMap (name: optional (pred name set.${name}) { inherit name; value = set.${name}; }) (attrNames set));
  mapAttrsToList = f: set: map (name: f name set.${name}) (attrNames set);
  mapAttrs' = f: set: listToAttrs (mapAttrsToList f set);
  nameValuePair = name: value: { inherit name value; };
  genAttrs = names: f: listToAttrs (map (name: { inherit name; value = f name; }) names);
  recursiveUpdate = lhs: rhs:
    lhs // mapAttrs (name: value:
      if isAttrs value && lhs ? ${name} && isAttrs lhs.${name} && !(isDerivation value)
      then recursiveUpdate lhs.${name} value
      else value) rhs;
  attrByPath = path: default: set:
    if path == [ ] then set
    else if isAttrs set && set ? ${head path} then attrByPath (tail path) default set.${head path}
    else default;
  getAttrFromPath = path: set: attrByPath path (throw "cannot find attribute `${concatStringsSep "." path}'") set;

  # --- strings ----------------------------------------------------------------------------
  optionalString = cond: s: if cond then s else "";
  concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);
  concatMapStrings = f: xs: concatStringsSep "" (map f xs);
  concatStrings = concatStringsSep "";
  hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
  hasSuffix = suf: s:
    let ls = stringLength s; lf = stringLength suf; in
    lf <= ls && substring (ls - lf) lf s == suf;
  removePrefix = pre: s:
    if hasPrefix pre s then substring (stringLength pre) (stringLength s - stringLength pre) s else s;
  removeSuffix = suf: s:
    if hasSuffix suf s then substring 0 (stringLength s - stringLength suf) s else s;
  escapeShellArg = arg: "'${replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
  escapeShellArgs = concatMapStringsSep " " escapeShellArg;
  # `splitString sep s`: the pieces of `s` between occurrences of the literal `sep`.
  splitString = sep: s: filter isString (builtins.split (escapeRegex sep) s);
  escapeRegex = replaceStrings
    [ "\\" "[" "{" "(" ")" "^" "$" "|" "*" "+" "?" "." ]
    [ "\\\\" "\\[" "\\{" "\\(" "\\)" "\\^" "\\$" "\\|" "\\*" "\\+" "\\?" "\\." ];
  toUpper = replaceStrings lowerChars upperChars;
  toLower = replaceStrings upperChars lowerChars;
  lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];

  # --- derivations and search paths -------------------------------------------------------
  isDerivation = x: isAttrs x && x ? type && x.type == "derivation";
  # The named output of a package when it has one, else its default output.
  getOutput = output: pkg: if pkg ? outputSpecified && pkg.outputSpecified then pkg else pkg.${output} or pkg.out or pkg;
  getBin = getOutput "bin";
  getLib = getOutput "lib";
  getDev = getOutput "dev";
  makeSearchPath = subDir: paths: concatStringsSep ":" (map (p: "${p}/${subDir}") (filter (p: p != null) paths));
  makeSearchPathOutput = output: subDir: pkgs: makeSearchPath subDir (map (getOutput output) pkgs);
  makeBinPath = makeSearchPathOutput "bin" "bin";
  makeLibraryPath = makeSearchPathOutput "lib" "lib";
  makeIncludePath = makeSearchPathOutput "dev" "include";

  # --- versions ---------------------------------------------------------------------------
  versionOlder = a: b: builtins.compareVersions a b < 0;
  versionAtLeast = a: b: !(versionOlder a b);
  getName = x: (builtins.parseDrvName (x.name or x)).name;
  getVersion = x: (builtins.parseDrvName (x.name or x)).version;

  # `makeOverridable f args`: `f args` with `.override newArgs` to call `f` again.
  makeOverridable = f: args:
    let result = f args; in
    if isAttrs result then result // { override = newArgs: makeOverridable f (args // (if builtins.isFunction newArgs then newArgs args else newArgs)); }
    else result;
}
