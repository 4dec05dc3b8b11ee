//! The build sandbox, observed from builders: `$HOME` is invisible, a listener on the host's
//! 127.0.0.1 is unreachable, while a fixed-output derivation reaches a loopback server and a
//! `file://` source. And without namespaces envy still builds, with a warning.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::build::{BuildEnv, assert_success, have_sandbox};

fn expr(home_secret: &str, port: u16, file_url: &str, fixed_hash: &str) -> String {
    format!(
        r#"
let sh = name: script: extra: derivation ({{
  inherit name; system = "x86_64-linux"; builder = "/bin/bash";
  args = [ "-c" ("export PATH=/usr/bin:/bin; " + script) ];
}} // extra);
in {{
  home = sh "home" ''if cat {home_secret} 2>/dev/null; then echo LEAKED; else echo hidden; fi > $out'' {{}};
  net = sh "net" ''if (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; then echo REACHED; else echo unreachable; fi > $out'' {{}};
  fodnet = sh "fodnet" ''exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'GET / HTTP/1.0\r\n\r\n' >&3; sed '1,/^\r$/d' <&3 > $out'' {{
    outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "{fixed_hash}";
  }};
  fodfile = derivation {{
    name = "fodfile"; system = "builtin"; builder = "builtin:fetchurl"; url = "{file_url}";
    outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "{fixed_hash}";
  }};
}}
"#
    )
}

const BODY: &[u8] = b"fixed\n";
const BODY_HASH: &str = "sha256-DDBxQY5jVuYUiYyE7QZMqV6IVRvAgRtTS98ZUuza5TQ=";

#[test]
fn sandbox_hides_home_and_host_network_but_fixed_outputs_reach_loopback() {
    if !common::have_tool("nix-instantiate") || !have_sandbox() {
        return;
    }
    let env = BuildEnv::new();
    let secret = env.path("home/secret");
    fs_err::write(&secret, "top secret").unwrap();
    let source = env.path("source-file");
    fs_err::write(&source, BODY).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let text = expr(
        &secret.display().to_string(),
        port,
        &format!("file://{}", source.display()),
        BODY_HASH,
    );
    let build = |attr: &str| {
        let drv = env.instantiate(&text, attr);
        let out = env
            .envy()
            .env("ENVY_SANDBOX", "true")
            .args(["build", "--no-out-link"])
            .arg(&drv)
            .output()
            .unwrap();
        assert_success(&out, attr);
        let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
        fs_err::read_to_string(path).unwrap()
    };
    assert_eq!(build("home"), "hidden\n");
    listener.set_nonblocking(true).unwrap();
    assert_eq!(build("net"), "unreachable\n");
    assert!(
        listener.accept().is_err(),
        "the sandboxed builder connected to the host"
    );

    // A fixed-output derivation shares the host network: serve BODY once on the listener.
    listener.set_nonblocking(false).unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        read_request(&mut conn);
        conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\n")
            .unwrap();
        conn.write_all(BODY).unwrap();
    });
    assert_eq!(build("fodnet").as_bytes(), BODY);
    server.join().unwrap();
    assert_eq!(build("fodfile").as_bytes(), BODY);
}

/// Read an HTTP request up to its blank line.
///
/// Regression: the server used to answer after a single `read`. bash's `printf` sends the
/// request line and the blank line in two writes (its stdout is line-buffered); when the
/// server's read ran between them (likely under CPU load) it closed the connection with the
/// blank line unread, the kernel answered with a reset, and the builder's `sed` failed with
/// "Connection reset by peer" after reading the body, failing the build now and then.
fn read_request(conn: &mut std::net::TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 512];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the request ended early: {request:?}");
        request.extend_from_slice(&buf[..n]);
    }
}

/// Where the kernel refuses user namespaces (here: a user namespace whose limit on nested
/// ones is 0), `ENVY_SANDBOX=auto` builds anyway and says so; `true` refuses.
#[test]
fn without_namespaces_builds_unsandboxed_with_a_warning() {
    if !common::have_tool("nix-instantiate") || !common::have_tool("unshare") || !have_sandbox() {
        return;
    }
    let env = BuildEnv::new();
    let text = expr("/nonexistent", 1, "file:///nonexistent", BODY_HASH);
    let drv = env.instantiate(&text, "home");
    let run = |mode: &str| {
        let mut cmd = env.envy();
        let envy = common::envy_bin();
        cmd.env("ENVY_SANDBOX", mode);
        let script = format!(
            "echo 0 > /proc/sys/user/max_user_namespaces && exec {} build --no-out-link {}",
            envy.display(),
            drv.display()
        );
        let mut unshare = std::process::Command::new("unshare");
        unshare.args(["-Ur", "sh", "-c", &script]);
        unshare.env_clear();
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                unshare.env(k, v);
            }
        }
        unshare.current_dir(env.path("work")).output().unwrap()
    };
    let strict = run("true");
    assert!(!strict.status.success());
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(stderr.contains("namespaces are unavailable"), "{stderr}");
    let out = run("auto");
    assert_success(&out, "unsandboxed build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: building without a sandbox"),
        "{stderr}"
    );
}
