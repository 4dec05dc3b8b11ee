# Builds the clang-musl wrapper: cc/c++ driver scripts, binutils links under plain and
# target-prefixed names, compiler-rt's builtins for the target, and the setup hook (written
# by the fixup phase from `setupHook`).
source $stdenv/setup

mkdir -p "$out/bin" "$out/lib" "$out/nix-support"

builtins=$("$clang" "--target=$triple" -rtlib=compiler-rt -print-libgcc-file-name)
if [[ ! -f $builtins ]]; then
    echo "error: compiler-rt builtins for \`$triple' not found at \`$builtins'" >&2
    echo "hint: install the Debian package ${builtinsPackage} (apt-get install ${builtinsPackage})" >&2
    exit 1
fi
cp "$builtins" "$out/lib/libclang_rt.builtins-$rtArch.a"

for lang in C C++; do
    name=cc
    [[ $lang == C++ ]] && name=c++
    substitute "$wrapperScript" "$out/bin/$name" \
        --subst-var-by lang "$lang" \
        --subst-var triple --subst-var libc --subst-var libcVersion --subst-var lld \
        --subst-var clang --subst-var out --subst-var rtArch --subst-var targetPrefix \
        --subst-var libcxx
    chmod +x "$out/bin/$name"
done
ln -s cc "$out/bin/clang"
ln -s c++ "$out/bin/clang++"
printf '#!/bin/bash\nexec %s -E "$@"\n' "$out/bin/cc" > "$out/bin/cpp"
chmod +x "$out/bin/cpp"

# The LLVM binutils pick their personality from the name they are called by.
ln -s "$lld" "$out/bin/ld"
ln -s "$ar" "$out/bin/ar"
ln -s "$ranlib" "$out/bin/ranlib"
ln -s "$nm" "$out/bin/nm"
ln -s "$strip" "$out/bin/strip"
ln -s "$objcopy" "$out/bin/objcopy"
ln -s "$objdump" "$out/bin/objdump"
ln -s "$readelf" "$out/bin/readelf"

# Every tool also under the target-prefixed name that cross builds look for.
for tool in cc c++ clang clang++ cpp ld ar ranlib nm strip objcopy objdump readelf; do
    ln -s "$tool" "$out/bin/$triple-$tool"
done

echo "$libc" > "$out/nix-support/orig-libc"
echo "$clang" > "$out/nix-support/orig-cc"
echo "$libcxx" > "$out/nix-support/orig-libcxx"
fixupPhase
