# `stdenv.mkDerivation`, nixpkgs-compatible for what the package set and project shells use:
# `name` or `pname`+`version`, `outputs`, the phase switches and hooks (strings in the
# environment), `nativeBuildInputs`/`buildInputs` and their propagated forms, `builder`
# (a script that sources `$stdenv/setup`), `passthru`, `meta`, `overrideAttrs`.
#
# For a cross stdenv, autoconf-style `--build`/`--host` flags are prepended to
# `configureFlags` (`configurePlatforms = [ ]` turns that off), as nixpkgs does.
{ lib, system, buildPlatform, hostPlatform, stdenv }:
let
  isCross = buildPlatform.config != hostPlatform.config;

  # Attributes that shape the Nix value but never reach the builder's environment.
  nixOnly = [ "passthru" "meta" "pos" "configurePlatforms" "checkInputs" "nativeCheckInputs" "builder" "args" ];

  mkDerivation = attrs:
    let
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      passthru = attrs.passthru or { };
      doCheck = attrs.doCheck or false;
      configurePlatforms = attrs.configurePlatforms or (if isCross then [ "build" "host" ] else [ ]);
      platformFlags =
        lib.optional (builtins.elem "build" configurePlatforms) "--build=${buildPlatform.config}"
        ++ lib.optional (builtins.elem "host" configurePlatforms) "--host=${hostPlatform.config}";

      env = lib.filterAttrs (_: v: v != null) (removeAttrs attrs nixOnly) // {
        inherit name system stdenv;
        builder = stdenv.shell;
        args = attrs.args or [ "-e" (attrs.builder or ./default-builder.sh) ];
        outputs = attrs.outputs or [ "out" ];
        nativeBuildInputs = (attrs.nativeBuildInputs or [ ])
          ++ lib.optionals doCheck (attrs.nativeCheckInputs or [ ]);
        buildInputs = (attrs.buildInputs or [ ]) ++ lib.optionals doCheck (attrs.checkInputs or [ ]);
      } // lib.optionalAttrs (platformFlags != [ ] || attrs ? configureFlags) {
        configureFlags = platformFlags ++ lib.toList (attrs.configureFlags or [ ]);
      };

      drv = derivation env;
    in
    drv // passthru // {
      inherit passthru;
      meta = attrs.meta or { };
      overrideAttrs = f: mkDerivation (attrs // (if builtins.isFunction f then f attrs else f));
    };
in
mkDerivation
