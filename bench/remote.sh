#!/usr/bin/env bash
# Remote builds against real Nix 2.8, in one run: a 20-derivation chain (each step a /bin/sh
# builder whose output refers to the previous step's) built with `-j 0` on a Nix build
# machine, i.e. nothing built locally, by
#
#   envy build --builders 'ssh://farm x86_64-linux - 1 1' -j 0 chain.nix
#   nix-build  --builders 'ssh://farm x86_64-linux - 1 1' -j 0 chain.nix
#
# The machine is a real sshd on 127.0.0.1 (a free port, a throwaway host key and client key)
# whose forced command runs Nix 2.8's `nix-store --serve --write` on a private store with the
# same store dir as the local stores (its files elsewhere, `real=`), as tests/common/sshd.rs
# sets it up. Each run gets a fresh local store (envy's, or Nix's) and a new seed in the
# chain, so nothing is cached anywhere (the machine's store keeps the earlier runs' chains,
# which share nothing with the next one). envy and Nix alternate, one run each per round; after
# every run the script checks that the machine's store has all 20 outputs and that the local
# store got them (and that Nix really asked the machine: the forced command logs each
# session). Everything lives in a temp dir; nothing of the user's (~/.ssh, nix.conf, stores)
# is read or touched.
#
#   bench/remote.sh                  # builds envy as install.sh does first
#   ENVY=path/to/envy bench/remote.sh   # measure that binary instead (say which in reports)
#   RUNS=9 bench/remote.sh           # runs per side (default 7)
#
# Target: envy at least as fast as Nix (nix/envy >= 1, medians); exits 1 when missed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/lib.sh
[ -n "${ENVY:-}" ] || build_static_envy >&2
RUNS=${RUNS:-7}
N=20
for tool in nix-build nix-store ssh ssh-keygen /usr/sbin/sshd python3; do
  command -v "$tool" >/dev/null || { echo "bench/remote.sh needs $tool (scripts/test installs it: nix-bin, openssh-server)" >&2; exit 2; }
done

T=$(mktemp -d /tmp/envy-bench-remote.XXXXXX)
SSHD=
cleanup() {
  [ -n "$SSHD" ] && kill "$SSHD" 2>/dev/null && wait "$SSHD" 2>/dev/null || true
  chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"
}
trap cleanup EXIT
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
S=$T/store   # the store dir of all three stores (envy's, local Nix's, the machine's)
M=$T/machine # the machine: sshd's files, its Nix configuration, its store's files
mkdir -p "$M/nixconf" "$T/conf" "$T/home"
# Only this run's settings: no user nix.conf, ssh config, caches or stores.
export HOME=$T/home XDG_CACHE_HOME=$T/cache XDG_CONFIG_HOME=$T/config XDG_DATA_HOME=$T/data
unset NIX_REMOTE NIX_PATH NIX_STORE_DIR NIX_STATE_DIR NIX_LOG_DIR ENVY_BUILDERS \
  ENVY_SUBSTITUTERS ENVY_TRUSTED_PUBLIC_KEYS ENVY_PUSH_TO SSH_AUTH_SOCK

log "starting the build machine (sshd on 127.0.0.1, Nix 2.8's nix-store --serve --write)"
ssh-keygen -q -t ed25519 -N '' -f "$M/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$M/client_key"
mkdir -p /run/sshd   # sshd's privilege separation directory
# The machine's Nix: offline, builds as root's (no build users), sandboxed with the host's
# /bin /usr /lib /lib64 inside (the builders are /bin/sh with host tools). The sandbox is not
# optional: a store whose files are not at its store dir (`real=`) builds in a chroot anyway,
# which without these paths has no /bin/sh.
cat > "$M/nixconf/nix.conf" <<CONF
experimental-features = nix-command
substituters =
build-users-group =
sandbox = true
sandbox-paths = /bin /usr /lib /lib64
CONF
REMOTE="local?store=$S&real=$M/rreal&state=$M/rstate&log=$M/rlog"
cat > "$M/serve" <<SH
#!/bin/sh
export NIX_CONF_DIR='$M/nixconf' HOME='$M' XDG_CACHE_HOME='$M/cache'
echo "\$SSH_ORIGINAL_COMMAND" >> '$M/commands'
case "\$SSH_ORIGINAL_COMMAND" in
*nix-store*--serve*) exec nix-store --serve --write --store '$REMOTE' ;;
*) echo "unexpected command: \$SSH_ORIGINAL_COMMAND" >&2; exit 1 ;;
esac
SH
chmod 755 "$M/serve"
echo "command=\"$M/serve\",no-pty $(cat "$M/client_key.pub")" > "$M/authorized_keys"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$M/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $M/host_key
AuthorizedKeysFile $M/authorized_keys
PermitRootLogin prohibit-password
StrictModes no
PasswordAuthentication no
UsePAM no
PidFile $M/sshd.pid
CONF
/usr/sbin/sshd -f "$M/sshd_config" -D -e 2>"$M/sshd.log" &
SSHD=$!
# The machine syntax has no port: the alias `farm` in an ssh config of this run, passed to
# both clients as NIX_SSHOPTS (Nix's build hook and envy both add it to their ssh command).
# ssh reads ~/.ssh/config from the passwd entry's home, not $HOME, hence `-F`.
cat > "$M/ssh_config" <<CONF
Host farm
  HostName 127.0.0.1
  Port $PORT
  User $(id -un)
  IdentityFile $M/client_key
  IdentitiesOnly yes
  StrictHostKeyChecking yes
  UserKnownHostsFile $M/known_hosts
  HostKeyAlias farm
  BatchMode yes
CONF
echo "farm $(cut -d' ' -f1,2 "$M/host_key.pub")" > "$M/known_hosts"
export NIX_SSHOPTS="-F $M/ssh_config"
for _ in $(seq 200); do
  # The forced command logs the session (and refuses `true`): sshd is up and the key works.
  ssh $NIX_SSHOPTS farm true 2>/dev/null </dev/null || true
  [ -s "$M/commands" ] && break; sleep 0.05
done
[ -s "$M/commands" ] || { echo "sshd did not start:"; cat "$M/sshd.log"; exit 1; } >&2
: > "$M/commands"
BUILDERS="ssh://farm $(uname -m)-linux - 1 1"

# The chain: step i's output names step i-1's (a reference, so each build's input closure is
# the whole chain so far, as a real dependency chain's is). SEED makes every run's chain new.
chain() {
  cat > "$T/chain.nix" <<NIX
let
  step = i: derivation {
    name = "chain-\${toString i}";
    system = "$(uname -m)-linux";
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    prev = if i == 0 then "" else step (i - 1);
    args = [ "-c" "echo $1 \${toString i} \$prev > \$out" ];
  };
in step $((N - 1))
NIX
}

# Nix, the client: an offline configuration of this run; its local store is a plain store at
# the shared store dir. Nix 2.8's build hook (`nix __build-remote`, started per build)
# ignores `--store` and opens the store from NIX_STORE_DIR / NIX_STATE_DIR, so the local
# Nix store is given that way (its files then live in $S itself, as envy's do: the two are
# never there at once, each run starts from an empty $S). Nothing else is needed with Nix 2.8
# as both client and machine: the serve protocol's `--write` imports the client's paths
# unsigned (`nix-store --serve --write` trusts its caller), the hook imports the machine's
# outputs into the local store without signatures, builders-use-substitutes is moot with no
# substituters, and root owns both stores (no trusted-users).
cat > "$T/conf/nix.conf" <<CONF
experimental-features = nix-command
substituters =
build-users-group =
sandbox = false
CONF
NIXENV=(NIX_CONF_DIR="$T/conf" NIX_STORE_DIR="$S" NIX_STATE_DIR="$T/nix-state" NIX_LOG_DIR="$T/nix-log")
# envy, the client: its own store at the same store dir.
ENVYENV=(ENVY_STORE_DIR="$S" ENVY_STATE_DIR="$T/envy-state")

wipe_local() {
  chmod -R u+w "$S" 2>/dev/null || true
  rm -rf "$S" "$T/envy-state" "$T/nix-state" "$T/nix-log"
}

now() { date +%s%N; }
# run SIDE ROUND: one timed build of a new chain; appends its time (ms) to $T/SIDE.times.
run() {
  local side=$1 round=$2 out t0 t1 seed
  seed=$side-$round-$RANDOM$RANDOM
  wipe_local
  chain "$seed"
  : > "$M/commands"
  t0=$(now)
  case $side in
  envy) out=$(env "${ENVYENV[@]}" "$ENVY" build --no-out-link --builders "$BUILDERS" -j 0 "$T/chain.nix" 2>"$T/err") ;;
  nix) out=$(env "${NIXENV[@]}" nix-build --no-out-link --builders "$BUILDERS" -j 0 "$T/chain.nix" 2>"$T/err") ;;
  esac || { echo "$side failed:"; tail -20 "$T/err"; exit 1; } >&2
  t1=$(now)
  echo $(((t1 - t0) / 1000000)) >> "$T/$side.times"
  check "$side" "$out" "$seed"
  SESSIONS[$side]=$(grep -c . "$M/commands" || true)
}

# check SIDE OUT SEED: the machine has all N outputs, valid; the local store has them valid,
# with the right contents; the client reached the machine.
check() {
  local side=$1 out=$2 seed=$3 closure n
  closure=$(NIX_CONF_DIR="$M/nixconf" nix-store --store "$REMOTE" -qR "$out" 2>/dev/null) \
    || { echo "$side: the machine's store does not have $out" >&2; exit 1; }
  n=$(echo "$closure" | wc -l)
  [ "$n" -eq "$N" ] || { echo "$side: the machine has $n paths of the chain, not $N" >&2; exit 1; }
  case $side in
  envy) n=$(env "${ENVYENV[@]}" "$ENVY" store path-info -r "$out" | wc -l)
        env "${ENVYENV[@]}" "$ENVY" store verify >/dev/null 2>"$T/err" || { echo "envy store verify:"; cat "$T/err"; exit 1; } >&2 ;;
  nix) n=$(env "${NIXENV[@]}" nix-store -qR "$out" | wc -l) ;;
  esac
  [ "$n" -eq "$N" ] || { echo "$side: the local store has $n paths of the chain, not $N" >&2; exit 1; }
  grep -q "^$seed $((N - 1)) $S/" "$out" || { echo "$side: $out does not hold the chain's last step" >&2; exit 1; }
  grep -q 'nix-store --serve --write' "$M/commands" || { echo "$side never reached the machine" >&2; exit 1; }
}

declare -A SESSIONS
log "measuring: $RUNS runs each, envy and Nix alternating, a new chain every run"
: > "$T/envy.times"; : > "$T/nix.times"
for round in $(seq "$RUNS"); do
  if [ $((round % 2)) = 1 ]; then run envy "$round"; run nix "$round"; else run nix "$round"; run envy "$round"; fi
  echo "  round $round: envy $(tail -1 "$T/envy.times") ms (${SESSIONS[envy]} ssh sessions)," \
    "nix-build $(tail -1 "$T/nix.times") ms (${SESSIONS[nix]} ssh sessions)" >&2
done

python3 - "$T/envy.times" "$T/nix.times" "$N" <<'PY'
import statistics, sys
e = statistics.median(int(x) for x in open(sys.argv[1]))
n = statistics.median(int(x) for x in open(sys.argv[2]))
ok = n >= e
print(f"building a {sys.argv[3]}-derivation chain with -j 0 on a build machine (ssh://, Nix 2.8 there): "
      f"envy {e:.0f} ms, nix-build {n:.0f} ms (medians), nix/envy = {n/e:.2f} "
      f"({'meets' if ok else 'MISSES'} the target of >= 1)")
sys.exit(0 if ok else 1)
PY
