# The platforms envy's package set builds for, in the shape of nixpkgs' `stdenv.hostPlatform`
# (the attributes nixpkgs users reach for). Every platform is Linux, musl and static.
let
  mk = { cpu, linuxArch, qemuArch }: rec {
    config = "${cpu}-unknown-linux-musl";
    system = "${cpu}-linux";
    parsed = {
      cpu.name = cpu;
      kernel.name = "linux";
      abi.name = "musl";
    };
    inherit linuxArch qemuArch;
    # compiler-rt's name for the architecture (`libclang_rt.builtins-<rtArch>.a`).
    rtArch = cpu;
    libc = "musl";
    isLinux = true;
    isDarwin = false;
    isMusl = true;
    isStatic = true;
    isx86_64 = cpu == "x86_64";
    isAarch64 = cpu == "aarch64";
    is64bit = true;
    isLittleEndian = true;
    # The user-mode emulator that runs this platform's binaries on another machine.
    emulatorName = "qemu-${qemuArch}-static";
  };
in
{
  x86_64 = mk { cpu = "x86_64"; linuxArch = "x86_64"; qemuArch = "x86_64"; };
  aarch64 = mk { cpu = "aarch64"; linuxArch = "arm64"; qemuArch = "aarch64"; };
}
