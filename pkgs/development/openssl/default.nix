# OpenSSL 3.0 (the LTS series Debian bookworm ships), static, from its pinned upstream source
# (Debian's orig tarball is upstream's, with upstream's signature next to it). Libraries
# (`libssl.a`, `libcrypto.a`), headers, `openssl.pc`/`libssl.pc`/`libcrypto.pc` and the
# `openssl` program; no documentation.
#
# Certificates: OPENSSLDIR is `/etc/ssl`, the directory Debian's `ca-certificates` fills, so
# the program and every program linked with it verify peers with the host's CA store
# (`/etc/ssl/certs`, `/etc/ssl/cert.pem`); `SSL_CERT_FILE`/`SSL_CERT_DIR` override it.
{ lib, stdenv, fetchurl }:
let
  platform = stdenv.hostPlatform;
  target = if platform.isAarch64 then "linux-aarch64" else "linux-x86_64";
in
stdenv.mkDerivation {
  pname = "openssl";
  version = "3.0.20";
  src = fetchurl {
    url = "https://www.openssl.org/source/openssl-3.0.20.tar.gz";
    sha256 = "c80a01dfc70ece4dc21168932c37739042d404d46ccc81a5986dd75314ecda6f";
  };
  # OpenSSL's Configure (perl, from the build machine) reads CC, AR and RANLIB, which the
  # compiler wrapper's setup hook sets for the target.
  configurePhase = ''
    runHook preConfigure
    # musl has no Linux kernel headers: no secure heap (linux/mman.h) and no AF_ALG engine.
    perl ./Configure ${target} no-shared no-tests no-module no-secure-memory no-afalgeng \
      --prefix="$out" --libdir=lib --openssldir=/etc/ssl
    runHook postConfigure
  '';
  buildFlags = [ "build_sw" ];
  installTargets = "install_sw";
  enableParallelBuilding = true;
  meta.description = "A cryptographic library that implements TLS (static)";
}
