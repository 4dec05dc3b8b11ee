# Attribute-set- and list-heavy: building, merging, mapping and folding big sets and lists.
let
  n = 50000;
  xs = builtins.genList (i: { name = "k${toString i}"; value = i * 2; }) n;
  set = builtins.listToAttrs xs;
  bumped = builtins.mapAttrs (k: v: v + 1) set;
  sum = builtins.foldl' (acc: k: acc + bumped.${k}) 0 (builtins.attrNames bumped);
  evens = builtins.filter (x: x.value / 4 * 4 == x.value) xs;
  merged = builtins.foldl' (acc: x: acc // { ${x.name} = x.value; }) { } (
    builtins.genList (i: { name = "m${toString (i / 10)}"; value = i; }) 5000
  );
  sorted = builtins.sort (a: b: a.value > b.value) (builtins.genList (i: { value = (i * 7919) - (i / 13 * 13 * 7919); }) 20000);
  concat = builtins.concatLists (builtins.genList (i: builtins.genList (j: i + j) 10) 5000);
in
{
  inherit sum;
  evens = builtins.length evens;
  merged = builtins.length (builtins.attrNames merged);
  first = (builtins.head sorted).value;
  concat = builtins.foldl' (a: b: a + b) 0 concat;
}
