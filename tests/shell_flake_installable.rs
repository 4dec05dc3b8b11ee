//! `envy shell FLAKE#ATTR…`: a flake's package, evaluated and built by envy's own engine, joins
//! the toolchain shell's PATH (as with `nix shell`); a missing attribute is a clear error.
//!
//! Uses the shared toolchain store (`common/toolchain.rs`), so the toolchain is not rebuilt.

mod common;
#[path = "common/toolchain.rs"]
mod toolchain;

use toolchain::{Sandbox, assert_success, have_toolchain_prerequisites};

/// This machine's Nix system, e.g. `x86_64-linux`.
fn system() -> String {
    format!("{}-linux", std::env::consts::ARCH)
}

/// A flake without inputs whose `hello` package is a `/bin/sh` builder writing
/// `$out/bin/hello-envy`.
fn flake(system: &str) -> String {
    format!(
        r#"{{
  outputs = {{ self }}: {{
    packages.{system}.hello = derivation {{
      name = "hello-envy"; system = "{system}"; builder = "/bin/sh";
      args = [ "-c" "/bin/mkdir -p $out/bin && printf '#!/bin/sh\necho hello from the flake\n' > $out/bin/hello-envy && /bin/chmod +x $out/bin/hello-envy" ];
    }};
  }};
}}
"#
    )
}

#[test]
fn a_flake_package_joins_the_shells_path() {
    if !have_toolchain_prerequisites(&[]) {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.write("flake.nix", &flake(&system()));

    let out = sandbox
        .envy(&["shell", ".#hello", "--", "hello-envy"])
        .output()
        .unwrap();
    assert_success(&out, "envy shell .#hello -- hello-envy");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the flake\n"
    );

    // In front of the toolchain's PATH, which is still there (`cc` is the wrapper).
    let out = sandbox
        .envy(&[
            "shell",
            ".#hello",
            "--",
            "bash",
            "-c",
            "command -v hello-envy; command -v cc",
        ])
        .output()
        .unwrap();
    assert_success(&out, "envy shell .#hello -- bash -c …");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].ends_with("-hello-envy/bin/hello-envy"), "{stdout}");
    let store = toolchain::shared_store().store_dir.display().to_string();
    assert!(lines[0].starts_with(&store), "{stdout}");
    assert!(
        lines[1].starts_with(&store),
        "cc is not the toolchain's: {stdout}"
    );
}

#[test]
fn a_missing_attribute_names_the_flake_and_the_attribute() {
    if !have_toolchain_prerequisites(&[]) {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.write("flake.nix", &flake(&system()));

    let out = sandbox
        .envy(&["shell", ".#missing", "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "`envy shell .#missing` succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`.#missing`"), "{stderr}");
    assert!(
        stderr.contains(&format!("packages.{}.missing", system())),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    // Told before the toolchain part: no shell was evaluated or built.
    assert!(sandbox.stats().is_empty(), "{:?}", sandbox.stats());

    // Not an installable at all: told before anything is built.
    let out = sandbox
        .envy(&["shell", "hello", "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`hello` is not a flake installable") && stderr.contains("-p hello"),
        "{stderr}"
    );
}
