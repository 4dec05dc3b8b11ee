#!/bin/bash
# envy's @lang@ compiler driver for @triple@: the host's clang at the musl @libcVersion@ sysroot
# in the store, linking statically with lld and compiler-rt's builtins.
set -eu -o pipefail

# Clang's own headers stay; the host's system headers and libraries never come in: musl's
# headers are searched last (after the dependencies' `-isystem` directories).
clangArgs=(--target=@triple@ -nostdlibinc -idirafter @libc@/include)
if [[ @lang@ == C++ ]]; then
    # LLVM's libc++ built for musl (`pkgs.libcxx`), never the host's libstdc++: its headers come
    # before clang's own and musl's, as libc++ wraps the C headers.
    clangArgs=(--driver-mode=g++ "${clangArgs[@]}" -nostdinc++ -isystem @libcxx@/include/c++/v1)
fi

link=1 startFiles=1 defaultLibs=1 haveInput=
expectValue=
for arg in "$@"; do
    if [[ -n $expectValue ]]; then
        expectValue=
        continue
    fi
    case $arg in
        -c | -S | -E | -M | -MM | -fsyntax-only | -print-* | --print-* | -dump*) link= ;;
        -shared)
            echo "@targetPrefix@cc: envy's musl toolchain links statically; \`-shared' is not supported" >&2
            exit 1
            ;;
        -nostdlib) startFiles= defaultLibs= ;;
        -nostartfiles) startFiles= ;;
        -nodefaultlibs) defaultLibs= ;;
        -o | -x | -I | -L | -D | -U | -include | -imacros | -isystem | -iquote | -idirafter | \
            -MF | -MT | -MQ | -Xlinker | -Xclang | -Xassembler | -Xpreprocessor | -target | \
            --target | -u | -z | -T | -e | --sysroot | -isysroot | -B | -l | --param)
            expectValue=1
            ;;
        -) haveInput=1 ;;
        -l* | -Wl,*) haveInput=1 ;;
        -*) ;;
        *) haveInput=1 ;;
    esac
done

# Flags of the environment's dependencies (the setup hook collects them), nixpkgs-style.
# shellcheck disable=SC2206
clangArgs+=(${NIX_CFLAGS_COMPILE:-})

before=() after=()
if [[ -n $link && -n $haveInput ]]; then
    # The sysroot keeps clang's own library search paths (the host's /lib/<multiarch>,
    # /usr/lib, gcc's) out: `-lz` must not find the host's glibc-built libz.a.
    clangArgs+=(-static -nostdlib -fuse-ld=lld --ld-path=@lld@ --sysroot=@libc@ -L@libc@/lib)
    # shellcheck disable=SC2206
    clangArgs+=(${NIX_CFLAGS_LINK:-} ${NIX_LDFLAGS:-})
    if [[ -n $startFiles ]]; then before=(@libc@/lib/crt1.o @libc@/lib/crti.o); fi
    if [[ -n $defaultLibs ]]; then
        if [[ @lang@ == C++ ]]; then after+=(-L@libcxx@/lib -lc++ -lc++abi -lunwind); fi
        after+=(-lc @out@/lib/libclang_rt.builtins-@rtArch@.a)
    fi
    if [[ -n $startFiles ]]; then after+=(@libc@/lib/crtn.o); fi
fi

exec @clang@ "${clangArgs[@]}" "${before[@]}" "$@" "${after[@]}"
