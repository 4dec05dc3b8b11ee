# The value of a locked flake, with Nix's `call-flake.nix` semantics (as of Nix 2.8): every
# lock node's source is fetched when first used, its flake.nix imported and its `outputs`
# called with its inputs and itself. `self` is `outputs // sourceInfo // { inputs; outputs;
# sourceInfo; }`; a `flake = false` input is its `sourceInfo`.
#
# lockJson: the lock file; rootSrc: the root's sourceInfo; rootSubdir: where its flake.nix is;
# parents: for relative `path:` nodes, the key of the node that declares them.
lockJson: rootSrc: rootSubdir: parents:
let
  lock = builtins.fromJSON lockJson;

  # An input spec is a node key or a `follows` path from the root.
  resolve = spec: if builtins.isList spec then follow lock.root spec else spec;
  follow = key: path:
    if path == [ ] then key
    else follow (resolve lock.nodes.${key}.inputs.${builtins.head path}) (builtins.tail path);

  nodes = builtins.mapAttrs
    (key: node:
      let
        isRoot = key == lock.root;
        locked = node.locked or { };
        subdir = if isRoot then rootSubdir else locked.dir or "";
        relative = !isRoot && (locked.type or "") == "path"
          && builtins.substring 0 1 locked.path != "/";
        parent = nodes.${parents.${key}};
        parentDir = parent.sourceInfo.outPath
          + (if parent.subdir == "" then "" else "/" + parent.subdir);
        sourceInfo =
          if isRoot then rootSrc
          else builtins.fetchTree ((node.info or { }) // removeAttrs locked [ "dir" ]
            // (if relative then { path = parentDir + "/" + locked.path; } else { }));
        dir = sourceInfo.outPath + (if subdir == "" then "" else "/" + subdir);
        flake = import (dir + "/flake.nix");
        inputs = builtins.mapAttrs (name: spec: nodes.${resolve spec}.value) (node.inputs or { });
        outputs = flake.outputs (inputs // { self = result; });
        result = outputs // sourceInfo // { inherit inputs outputs sourceInfo; };
      in
      {
        inherit sourceInfo subdir;
        value =
          if node.flake or true then
            assert builtins.isFunction flake.outputs; result
          else sourceInfo;
      })
    lock.nodes;
in
nodes.${lock.root}.value
