# `hello`: prints "Hello, world!" — a C program compiled and installed by the set's stdenv,
# the smallest check that `stdenv.mkDerivation` and the compiler wrapper work together.
{ stdenv }:
stdenv.mkDerivation {
  pname = "hello";
  version = "1.0";
  src = ./src;
  makeFlags = [ "PREFIX=$(out)" ];
  meta.description = "A program that prints a friendly greeting";
}
