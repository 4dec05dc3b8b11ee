#!/usr/bin/env bash
# Substitution at scale against real Nix 2.8, in one run: a closure of 300 store paths (a
# top path referring to 299 others, which refer to each other as a tree, 64 KiB of data
# each), in a binary cache Nix filled (zstd, signed), served over HTTP on 127.0.0.1 (nginx,
# or python3's http.server when nginx is missing), fetched into an empty store by
#
#   envy store copy --from URL TOP     vs   nix-store --realise TOP  (substituters = URL)
#
# both for the same logical store directory (Nix keeps its files elsewhere with `real=`),
# each store emptied before every run (hyperfine --prepare).
#
#   bench/substitute.sh            # builds target/release/envy first
#   ENVY=path/to/envy bench/substitute.sh   # measure that binary instead (say which in reports)
#
# Target: envy at least as fast as Nix (nix/envy >= 1); the ratio of medians is printed last.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -z "${ENVY:-}" ]; then
  cargo build --release --bin envy >&2
  ENVY=$ROOT/target/release/envy
fi
N=${PATHS:-300}

T=$(mktemp -d /tmp/envy-bench-subst.XXXXXX)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"
}
trap cleanup EXIT
chmod 755 "$T"   # nginx's workers run as nobody
mkdir -p "$T/conf" "$T/home"
cat > "$T/conf/nix.conf" <<CONF
experimental-features = nix-command
sandbox = false
substituters =
build-users-group =
CONF
export NIX_CONF_DIR=$T/conf HOME=$T/home XDG_CACHE_HOME=$T/cache XDG_CONFIG_HOME=$T/config
unset NIX_REMOTE NIX_STORE_DIR ENVY_SUBSTITUTERS ENVY_TRUSTED_PUBLIC_KEYS
S=$T/store
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

log "building $N paths with Nix and copying them into a binary cache"
cat > "$T/closure.nix" <<'NIX'
{ n }:
let
  # p-i refers to p-(i/2): a tree, so the closure is a few levels deep, as real ones are.
  p = i: derivation {
    name = "p-${toString i}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    parent = if i == 0 then "" else p (i / 2);
    args = [ "-c" "mkdir $out; echo $parent > $out/parent; head -c 65536 /dev/urandom > $out/data" ];
  };
  all = builtins.genList p (n - 1);
in derivation {
  name = "top";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  deps = all;
  args = [ "-c" "echo $deps > $out" ];
}
NIX
FILL="local?store=$S&state=$T/fill-state&log=$T/fill-log"
TOP=$(nix-build --store "$FILL" --no-out-link "$T/closure.nix" --arg n "$N" 2>"$T/fill.log") || { tail -20 "$T/fill.log" >&2; exit 1; }
nix key generate-secret --key-name bench-cache-1 > "$T/sk"
PK=$(nix key convert-secret-to-public < "$T/sk")
nix copy --store "$FILL" --to "file://$T/cache?secret-key=$T/sk&store=$S&compression=zstd" "$TOP" 2>>"$T/fill.log"
echo "closure: $(nix-store --store "$FILL" -qR "$TOP" | wc -l) paths, $(du -sh "$T/cache" | cut -f1) in the cache"
chmod -R u+w "$S"; rm -rf "$S" "$T/fill-state" "$T/fill-log"
chmod -R a+rX "$T/cache"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  mkdir -p "$T/nginx"
  cat > "$T/nginx/nginx.conf" <<CONF
daemon off; worker_processes 2; pid $T/nginx/pid; error_log $T/nginx/error.log;
events { worker_connections 256; }
http { access_log off; types { } default_type application/octet-stream;
  client_body_temp_path $T/nginx/body; proxy_temp_path $T/nginx/proxy; fastcgi_temp_path $T/nginx/fcgi;
  uwsgi_temp_path $T/nginx/uwsgi; scgi_temp_path $T/nginx/scgi;
  server { listen 127.0.0.1:$PORT; root $T/cache; } }
CONF
  "$(command -v nginx || echo /usr/sbin/nginx)" -p "$T/nginx" -c "$T/nginx/nginx.conf" 2>/dev/null &
  SERVER=$!
  log "nginx on port $PORT"
else
  python3 -m http.server --bind 127.0.0.1 "$PORT" --directory "$T/cache" >/dev/null 2>&1 &
  SERVER=$!
  log "python3 -m http.server on port $PORT (no nginx)"
fi
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/nix-cache-info" >/dev/null 2>&1 && break; sleep 0.1; done
URL=http://127.0.0.1:$PORT

NIXSTORE="local?store=$S&real=$T/nix-real&state=$T/nix-state&log=$T/nix-log"
export ENVY_STORE_DIR=$S ENVY_STATE_DIR=$T/envy-state
wipe_envy="chmod -R u+w $S $T/envy-state 2>/dev/null || true; rm -rf $S $T/envy-state"
wipe_nix="chmod -R u+w $T/nix-real 2>/dev/null || true; rm -rf $T/nix-real $T/nix-state $T/nix-log $T/cache-home; mkdir -p $T/cache-home"

log "checking both peers once"
eval "$wipe_envy"; ENVY_TRUSTED_PUBLIC_KEYS=$PK "$ENVY" store copy --from "$URL" "$TOP" >/dev/null
test "$(ls "$S" | wc -l)" -ge "$N"
eval "$wipe_nix"
NIX_STORE_DIR=$S XDG_CACHE_HOME=$T/cache-home nix-store --store "$NIXSTORE" --realise "$TOP" \
  --option substituters "$URL" --option trusted-public-keys "$PK" >/dev/null 2>"$T/nix.log" \
  || { tail -5 "$T/nix.log" >&2; exit 1; }
test "$(ls "$T/nix-real" | wc -l)" -ge "$N"

log "measuring"
# NIX_STORE_DIR: Nix's substituter then reads the cache as one for this store directory.
# Nix's narinfo cache lives under XDG_CACHE_HOME: emptied too, so Nix asks the server each run.
hyperfine --warmup 1 --runs "${RUNS:-5}" --export-json "$T/h.json" \
  --prepare "$wipe_envy" -n envy \
  "ENVY_TRUSTED_PUBLIC_KEYS='$PK' $ENVY store copy --from $URL $TOP" \
  --prepare "$wipe_nix" -n nix \
  "NIX_STORE_DIR=$S XDG_CACHE_HOME=$T/cache-home nix-store --store '$NIXSTORE' --realise $TOP --option substituters $URL --option trusted-public-keys '$PK'"
python3 - "$T/h.json" "$N" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
e, n = r["envy"], r["nix"]
print(f"substituting {sys.argv[2]} paths over HTTP: envy {e*1000:.0f} ms, nix-store --realise {n*1000:.0f} ms, "
      f"nix/envy = {n/e:.2f} ({'meets' if n >= e else 'MISSES'} the target of >= 1)")
PY
