# envy's stdenv setup: the nixpkgs-style bash environment every builder and dev shell of the
# package set starts from. Builders source `$stdenv/setup` and call `genericBuild`;
# `nix print-dev-env` and envy's environment capture source it to produce a dev shell.
#
# Names and behaviour follow nixpkgs' stdenv where the package set needs them: the phases
# (unpack, patch, configure, build, check, install, fixup, installCheck, dist), `runHook`
# with `pre*`/`post*` hooks and `*Hooks` arrays, `nativeBuildInputs`/`buildInputs` (and their
# propagated forms) whose `bin/` joins PATH and whose `nix-support/setup-hook` is sourced,
# `addEnvHooks`, `substitute*`. The header written by the stdenv derivation defines
# `initialPath`, `defaultNativeBuildInputs` and the platform variables before this runs.

__envySavedOpts=$-
__envySavedPipefail=
if shopt -qo pipefail; then __envySavedPipefail=1; fi
set -eu
set -o pipefail

: "${outputs:=out}"
__envyShell=/bin/bash
# Builders get nixpkgs' SHELL; a dev shell (IN_NIX_SHELL, set by `nix print-dev-env` and
# envy's capture) keeps the user's.
if [[ -z ${IN_NIX_SHELL:-} ]]; then export SHELL=$__envyShell; fi
: "${NIX_BUILD_CORES:=1}"
export NIX_BUILD_CORES
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}

# --- hooks -----------------------------------------------------------------------------------

# Run one entry of a hook list: a function, else code to evaluate.
__envyRunHookEntry() {
    local entry=$1
    shift
    if declare -F "$entry" >/dev/null; then
        "$entry" "$@"
    else
        eval "$entry"
    fi
}

# `runHook NAME ARGS…`: the function or code string named NAME, then each entry of the array
# `NAMEHooks` (pushed by setup hooks), in order.
runHook() {
    local hookName=$1
    shift
    if declare -F "$hookName" >/dev/null; then
        "$hookName" "$@"
    elif [[ -n ${!hookName:-} ]]; then
        eval "${!hookName}"
    fi
    local listRef="${hookName}Hooks[@]" entry
    for entry in ${!listRef+"${!listRef}"}; do
        __envyRunHookEntry "$entry" "$@"
    done
    return 0
}

# `addEnvHooks OFFSET FUNCTION…`: call FUNCTION with every dependency's path once the inputs
# are known (nixpkgs' signature; the offset is accepted for compatibility).
envHooks=()
addEnvHooks() {
    shift
    envHooks+=("$@")
}

# --- search paths ----------------------------------------------------------------------------

# `addToSearchPath VAR DIR`: append DIR to the colon list VAR when DIR exists.
addToSearchPath() {
    addToSearchPathWithCustomDelimiter ":" "$@"
}

addToSearchPathWithCustomDelimiter() {
    local delimiter=$1 varName=$2 dir=$3
    if [[ -d $dir ]]; then
        local current=${!varName:-}
        export "$varName=${current:+$current$delimiter}$dir"
    fi
}

# `stripHash PATH`: the file name of a store path without its hash prefix.
stripHash() {
    local name
    name=$(basename "$1")
    if [[ $name =~ ^[0-9a-df-np-sv-z]{32}- ]]; then
        echo "${name:33}"
    else
        echo "$name"
    fi
}

# --- dependencies ----------------------------------------------------------------------------

declare -A __envyInputSeen=()
__envyNativeInputs=()
__envyHostInputs=()

# Record an input and, recursively, what it propagates.
__envyCollectInput() {
    local kind=$1 pkg=$2
    [[ -n $pkg ]] || return 0
    [[ -z ${__envyInputSeen[$kind:$pkg]:-} ]] || return 0
    __envyInputSeen[$kind:$pkg]=1
    if [[ ! -e $pkg ]]; then
        echo "error: build input \`$pkg' does not exist" >&2
        return 1
    fi
    if [[ $kind == native ]]; then __envyNativeInputs+=("$pkg"); else __envyHostInputs+=("$pkg"); fi
    local file dep
    for file in propagated-native-build-inputs propagated-build-inputs; do
        if [[ -f $pkg/nix-support/$file ]]; then
            local propKind=$kind
            [[ $file == propagated-native-build-inputs ]] && propKind=native
            for dep in $(<"$pkg/nix-support/$file"); do
                __envyCollectInput "$propKind" "$dep"
            done
        fi
    done
}

# Source an input's setup hook, with `hostOffset` set as nixpkgs does (-1 native, 0 host).
__envyActivateInput() {
    local offset=$1 pkg=$2
    if [[ -f $pkg/nix-support/setup-hook ]]; then
        local hostOffset=$offset targetOffset=$((offset + 1))
        # shellcheck disable=SC1091
        source "$pkg/nix-support/setup-hook"
    fi
}

__envyFindInputs() {
    local pkg
    for pkg in ${defaultNativeBuildInputs:-} ${depsBuildBuild:-} ${nativeBuildInputs:-} ${propagatedNativeBuildInputs:-}; do
        __envyCollectInput native "$pkg"
    done
    for pkg in ${buildInputs:-} ${propagatedBuildInputs:-}; do
        __envyCollectInput host "$pkg"
    done

    local newPath=""
    for pkg in "${__envyNativeInputs[@]}"; do
        __envyActivateInput -1 "$pkg"
        [[ -d $pkg/bin ]] && newPath="${newPath:+$newPath:}$pkg/bin"
    done
    for pkg in "${__envyHostInputs[@]}"; do
        __envyActivateInput 0 "$pkg"
        # Without strict dependencies (not cross compiling) build inputs' tools are usable too.
        if [[ -z ${strictDeps:-} && ${__envyCross:-} != 1 && -d $pkg/bin ]]; then
            newPath="${newPath:+$newPath:}$pkg/bin"
        fi
    done
    PATH="${newPath}${newPath:+${PATH:+:}}${PATH}"

    # Env hooks see nixpkgs' offsets of the dependency: -1 for native inputs, 0 for host ones.
    local hook depHostOffset depTargetOffset
    for pkg in "${__envyNativeInputs[@]}"; do
        depHostOffset=-1 depTargetOffset=0
        for hook in "${envHooks[@]}"; do "$hook" "$pkg"; done
    done
    for pkg in "${__envyHostInputs[@]}"; do
        depHostOffset=0 depTargetOffset=1
        for hook in "${envHooks[@]}"; do "$hook" "$pkg"; done
    done
}

# --- substitution ----------------------------------------------------------------------------

# `substitute IN OUT [--replace OLD NEW | --subst-var NAME | --subst-var-by NAME VALUE]…`
substitute() {
    local input=$1 output=$2
    shift 2
    if [[ ! -f $input ]]; then
        echo "substitute: \`$input' is not a file" >&2
        return 1
    fi
    local content
    content=$(<"$input")$'\n'
    # Keep a missing final newline missing.
    [[ -n $(tail -c1 "$input") ]] && content=${content%$'\n'}
    while (($#)); do
        case $1 in
            --replace | --replace-fail | --replace-quiet)
                content=${content//"$2"/"$3"}
                shift 3
                ;;
            --subst-var)
                if [[ ! $2 =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
                    echo "substitute: \`$2' is not a variable name" >&2
                    return 1
                fi
                content=${content//"@$2@"/"${!2-}"}
                shift 2
                ;;
            --subst-var-by)
                content=${content//"@$2@"/"$3"}
                shift 3
                ;;
            *)
                echo "substitute: unknown argument \`$1'" >&2
                return 1
                ;;
        esac
    done
    printf '%s' "$content" >"$output.tmp"
    mv "$output.tmp" "$output"
}

substituteInPlace() {
    local file=$1
    shift
    substitute "$file" "$file" "$@"
}

# Replace every `@name@` whose variable is set.
substituteAll() {
    local input=$1 output=$2 args=() name
    for name in $(grep -o '@[A-Za-z_][A-Za-z0-9_]*@' "$input" | sort -u | tr -d '@'); do
        if [[ -n ${!name+set} ]]; then args+=(--subst-var "$name"); fi
    done
    substitute "$input" "$output" "${args[@]}"
}

substituteAllInPlace() {
    substituteAll "$1" "$1"
}

# --- phases ----------------------------------------------------------------------------------

unpackFile() {
    local file=$1
    echo "unpacking source archive $file"
    if [[ -n ${unpackCmd:-} ]] || declare -F unpackCmd >/dev/null; then
        curSrc=$file
        runHook unpackCmd "$file"
        return 0
    fi
    if [[ -d $file ]]; then
        cp -pr --reflink=auto -- "$file" "$(stripHash "$file")"
        return 0
    fi
    case $file in
        *.tar | *.tar.* | *.tgz | *.tbz2 | *.tbz | *.txz)
            tar xf "$file" --warning=no-timestamp
            ;;
        *.zip)
            unzip -qq "$file"
            ;;
        *)
            echo "do not know how to unpack source archive \`$file'" >&2
            return 1
            ;;
    esac
}

unpackPhase() {
    runHook preUnpack
    local sources=${srcs:-${src:-}}
    if [[ -z $sources ]]; then
        echo "variable \$src or \$srcs should point to the source" >&2
        return 1
    fi
    local before after dir
    before=$(find . -mindepth 1 -maxdepth 1 -type d | sort)
    for dir in $sources; do
        unpackFile "$dir"
    done
    after=$(find . -mindepth 1 -maxdepth 1 -type d | sort)
    if [[ -z ${sourceRoot:-} ]]; then
        local new
        new=$(comm -13 <(echo "$before") <(echo "$after"))
        if [[ -z $new ]]; then
            echo "unpacker produced no directory" >&2
            return 1
        elif [[ $(echo "$new" | wc -l) -ne 1 ]]; then
            echo "unpacker produced multiple directories (set sourceRoot): $new" >&2
            return 1
        fi
        sourceRoot=${new#./}
    fi
    echo "source root is $sourceRoot"
    if [[ -z ${dontMakeSourcesWritable:-} ]]; then
        chmod -R u+w -- "$sourceRoot"
    fi
    runHook postUnpack
}

patchPhase() {
    runHook prePatch
    local p
    for p in ${patches:-}; do
        echo "applying patch $p"
        case $p in
            *.gz) gzip -dc "$p" ;;
            *.xz) xz -dc "$p" ;;
            *.bz2) bzip2 -dc "$p" ;;
            *) cat "$p" ;;
        esac | patch ${patchFlags:--p1}
    done
    runHook postPatch
}

configurePhase() {
    runHook preConfigure
    if [[ -z ${configureScript:-} && -x ./configure ]]; then
        configureScript=./configure
    fi
    if [[ -n ${configureScript:-} ]]; then
        local flags=()
        if [[ -z ${dontAddPrefix:-} ]]; then flags+=("${prefixKey:---prefix=}$prefix"); fi
        # shellcheck disable=SC2206
        flags+=(${configureFlags:-})
        if declare -p configureFlagsArray &>/dev/null; then flags+=("${configureFlagsArray[@]}"); fi
        echo "configure flags: ${flags[*]}"
        $configureScript "${flags[@]}"
    else
        echo "no configure script, doing nothing"
    fi
    runHook postConfigure
}

# Make's common flags: parallelism, then the derivation's makeFlags.
__envyMakeFlags() {
    __flags=()
    if [[ -n ${enableParallelBuilding:-} ]]; then
        __flags+=("-j$NIX_BUILD_CORES")
    fi
    __flags+=("SHELL=$__envyShell")
    # shellcheck disable=SC2206
    __flags+=(${makeFlags:-})
    if declare -p makeFlagsArray &>/dev/null; then __flags+=("${makeFlagsArray[@]}"); fi
}

__envyHaveMakefile() {
    [[ -n ${makefile:-} || -e Makefile || -e makefile || -e GNUmakefile ]]
}

buildPhase() {
    runHook preBuild
    if [[ -z ${makeFlags:-} ]] && ! __envyHaveMakefile; then
        echo "no Makefile, doing nothing"
    else
        local __flags
        __envyMakeFlags
        # shellcheck disable=SC2206
        __flags+=(${buildFlags:-})
        make ${makefile:+-f "$makefile"} "${__flags[@]}"
    fi
    runHook postBuild
}

checkPhase() {
    runHook preCheck
    if __envyHaveMakefile; then
        local __flags
        __envyMakeFlags
        # shellcheck disable=SC2206
        __flags+=(${checkFlags:-} ${checkTarget:-check})
        make ${makefile:+-f "$makefile"} "${__flags[@]}"
    else
        echo "no Makefile, no check"
    fi
    runHook postCheck
}

installPhase() {
    runHook preInstall
    mkdir -p "$prefix"
    if __envyHaveMakefile; then
        local __flags
        __envyMakeFlags
        # shellcheck disable=SC2206
        __flags+=(${installFlags:-} ${installTargets:-install})
        make ${makefile:+-f "$makefile"} "${__flags[@]}"
    fi
    runHook postInstall
}

# Record what an output hands on to its dependents: propagated inputs and the setup hook.
fixupPhase() {
    runHook preFixup
    local output
    for output in $outputs; do
        [[ -e ${!output} ]] || continue
        chmod -R u+w -- "${!output}" 2>/dev/null || true
    done
    if [[ -n ${propagatedBuildInputs:-} ]]; then
        mkdir -p "$out/nix-support"
        echo "$propagatedBuildInputs" >"$out/nix-support/propagated-build-inputs"
    fi
    if [[ -n ${propagatedNativeBuildInputs:-} ]]; then
        mkdir -p "$out/nix-support"
        echo "$propagatedNativeBuildInputs" >"$out/nix-support/propagated-native-build-inputs"
    fi
    if [[ -n ${setupHook:-} ]]; then
        mkdir -p "$out/nix-support"
        substituteAll "$setupHook" "$out/nix-support/setup-hook"
    fi
    runHook postFixup
}

installCheckPhase() {
    runHook preInstallCheck
    if __envyHaveMakefile; then
        local __flags
        __envyMakeFlags
        # shellcheck disable=SC2206
        __flags+=(${installCheckFlags:-} ${installCheckTarget:-installcheck})
        make ${makefile:+-f "$makefile"} "${__flags[@]}"
    fi
    runHook postInstallCheck
}

distPhase() {
    runHook preDist
    runHook postDist
}

# Whether a phase runs, from the usual `dont*`/`do*` switches.
__envyPhaseEnabled() {
    case $1 in
        unpackPhase) [[ -z ${dontUnpack:-} ]] ;;
        patchPhase) [[ -z ${dontPatch:-} ]] ;;
        configurePhase) [[ -z ${dontConfigure:-} ]] ;;
        buildPhase) [[ -z ${dontBuild:-} ]] ;;
        checkPhase) [[ -n ${doCheck:-} ]] ;;
        installPhase) [[ -z ${dontInstall:-} ]] ;;
        fixupPhase) [[ -z ${dontFixup:-} ]] ;;
        installCheckPhase) [[ -n ${doInstallCheck:-} ]] ;;
        distPhase) [[ -n ${doDist:-} ]] ;;
        *) true ;;
    esac
}

genericBuild() {
    if [[ -n ${buildCommandPath:-} ]]; then
        # shellcheck disable=SC1090
        source "$buildCommandPath"
        return
    fi
    if [[ -n ${buildCommand:-} ]]; then
        eval "$buildCommand"
        return
    fi
    local allPhases=${phases:-"${prePhases:-} unpackPhase patchPhase ${preConfigurePhases:-} configurePhase ${preBuildPhases:-} buildPhase checkPhase ${preInstallPhases:-} installPhase ${preFixupPhases:-} fixupPhase installCheckPhase ${preDistPhases:-} distPhase ${postPhases:-}"}
    local curPhase
    for curPhase in $allPhases; do
        # A phase listed explicitly in `phases` always runs, as in nixpkgs.
        if [[ -z ${phases:-} ]] && ! __envyPhaseEnabled "$curPhase"; then continue; fi
        echo "Running phase: $curPhase"
        if [[ -n ${!curPhase:-} ]]; then
            eval "${!curPhase}"
        else
            "$curPhase"
        fi
        if [[ $curPhase == unpackPhase ]]; then
            cd -- "${sourceRoot:-.}"
        fi
    done
}

# --- start -----------------------------------------------------------------------------------

PATH=
for __envyDir in ${initialPath:-}; do
    addToSearchPath PATH "$__envyDir"
done
unset __envyDir
export PATH

: "${prefix:=${out:-}}"

runHook preHook
__envyFindInputs
runHook postHook

# Leave the shell options as the caller had them (`nix print-dev-env` sources this file).
[[ $__envySavedOpts == *e* ]] || set +e
[[ $__envySavedOpts == *u* ]] || set +u
[[ -n $__envySavedPipefail ]] || set +o pipefail
unset __envySavedOpts __envySavedPipefail
