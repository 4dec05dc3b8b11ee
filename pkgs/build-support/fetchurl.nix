# `fetchurl { url; sha256; name ? …; executable ? false; }`: a fixed-output download by Nix's
# built-in fetcher. Nothing but the hash and name decides its store path. Nix and envy first
# try the hashed mirrors (`hashed-mirrors`, `ENVY_HASHED_MIRRORS`: `<mirror>/sha256/<hex>`),
# then `url`.
{ url, sha256, name ? baseNameOf url, executable ? false }:
derivation {
  inherit name url executable;
  builder = "builtin:fetchurl";
  system = "builtin";
  outputHashMode = if executable then "recursive" else "flat";
  outputHashAlgo = "sha256";
  outputHash = sha256;
  unpack = false;
  urls = [ url ];
  preferLocalBuild = true;
  impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
}
