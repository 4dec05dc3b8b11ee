//! The hook in real shells: bash, zsh, fish, nushell, elvish and xonsh, each an interactive shell in a private tmux
//! server with its own HOME, XDG directories and offline Nix store. Every scenario runs in
//! every shell (the table at the bottom), as direnv's test suite does. State is read from
//! files the shell writes (`env -0 > file`), never from the screen.

mod common;
#[path = "common/core.rs"]
mod corekit;

use corekit::{Sandbox, Session, Sh, simple_flake, stable, tick, write_stdenv};

fn tools(sh: Sh) -> bool {
    common::have_tool("tmux") && common::have_tool("nix") && common::have_tool(sh.name())
}

/// A sandbox, when the tools `sh` needs are there.
fn sandbox(sh: Sh) -> Option<Sandbox> {
    tools(sh).then(Sandbox::new)
}

/// Entering sets the devShell's variables (PATH prepended), a subdirectory changes nothing,
/// and leaving restores the environment exactly, including a variable the user had set.
fn enter_subdir_leave(sh: Sh) {
    let Some(sb) = sandbox(sh) else {
        return;
    };
    let project = sb.project(
        "proj",
        &simple_flake(
            "bar",
            r#"PATH = "/fixture/bin";
      EXISTING = "from-project";
      WEIRD = "it's \"quoted\" $HOME \${x}\nsecond line";"#,
        ),
    );
    fs_err::create_dir_all(project.join("src/deep")).unwrap();
    sb.envy_ok(&project, &["allow"]);
    let rc = sh.export("EXISTING", "mine");
    let mut s = Session::start_with(&sb, sh, &sb.work, &rc, 1);
    let before = s.env();
    assert_eq!(before.get("FOO"), None);

    s.cd(&project);
    let inside = s.env();
    assert_eq!(
        inside.get("FOO").map(String::as_str),
        Some("bar"),
        "{}",
        s.screen()
    );
    assert_eq!(inside["EXISTING"], "from-project");
    assert_eq!(inside["WEIRD"], "it's \"quoted\" $HOME ${x}\nsecond line");
    assert_eq!(inside["PATH"], format!("/fixture/bin:{}", before["PATH"]));
    assert!(
        inside["__ENVY_STATE"].len() < 400,
        "state is small: {}",
        inside["__ENVY_STATE"]
    );
    for leak in [
        "TMPDIR",
        "NIX_BUILD_TOP",
        "NIX_LOG_FD",
        "out",
        "TERM_PROGRAM",
        "BASH",
        "IFS",
    ] {
        assert_eq!(
            inside.get(leak),
            before.get(leak),
            "`{leak}` leaked from the build"
        );
    }
    assert_eq!(inside["HOME"], before["HOME"]);
    assert_eq!(inside["TERM"], before["TERM"]);

    s.cd(&project.join("src/deep"));
    assert_eq!(
        stable(&s.env()),
        stable(&inside),
        "a subdirectory changes nothing"
    );

    s.cd(&sb.work);
    assert_eq!(
        stable(&s.env()),
        stable(&before),
        "leaving restores the exact environment"
    );
}

/// A project is blocked until `envy allow`; editing `flake.nix` blocks it again (the loaded
/// environment stays) until allowed, then the new value loads.
fn edit_blocks_until_allowed(sh: Sh) {
    let Some(sb) = sandbox(sh) else {
        return;
    };
    let project = sb.project("proj", &simple_flake("one", ""));
    let mut s = Session::start(&sb, sh, &sb.work);
    s.cd(&project);
    assert_eq!(s.env().get("FOO"), None, "not allowed: nothing loads");
    s.run(&format!("{} allow", common::envy_bin().display()));
    assert_eq!(
        s.env().get("FOO").map(String::as_str),
        Some("one"),
        "{}",
        s.screen()
    );

    tick();
    fs_err::write(project.join("flake.nix"), simple_flake("two", "")).unwrap();
    s.prompt();
    let blocked = s.env();
    assert_eq!(
        blocked.get("FOO").map(String::as_str),
        Some("one"),
        "blocked: the allowed environment stays"
    );
    let status = s.output(&format!("{} status --json", common::envy_bin().display()));
    assert!(status.contains("\"shell_status\": \"blocked\""), "{status}");

    s.run(&format!("{} allow", common::envy_bin().display()));
    assert_eq!(s.env().get("FOO").map(String::as_str), Some("two"));
}

/// Siblings swap environments; the innermost of nested projects wins; back out to the outer.
fn siblings_and_nested(sh: Sh) {
    let Some(sb) = sandbox(sh) else {
        return;
    };
    let a = sb.project("a", &simple_flake("a", "A_ONLY = \"1\";"));
    let b = sb.project("b", &simple_flake("b", ""));
    let inner = sb.project("a/inner", &simple_flake("inner", ""));
    for p in [&a, &b, &inner] {
        sb.envy_ok(p, &["allow"]);
    }
    let mut s = Session::start(&sb, sh, &sb.work);
    let before = s.env();

    s.cd(&a);
    let env = s.env();
    assert_eq!(
        (env["FOO"].as_str(), env.get("A_ONLY").map(String::as_str)),
        ("a", Some("1"))
    );

    s.cd(&b);
    let env = s.env();
    assert_eq!(
        (env["FOO"].as_str(), env.get("A_ONLY")),
        ("b", None),
        "sibling unloads a, loads b"
    );

    s.cd(&inner);
    let env = s.env();
    assert_eq!(
        (env["FOO"].as_str(), env.get("A_ONLY")),
        ("inner", None),
        "the inner project wins"
    );

    s.cd(&a);
    assert_eq!(s.env()["FOO"], "a");

    s.cd(&sb.work);
    assert_eq!(stable(&s.env()), stable(&before));
}

/// The hook keeps `$?`, both when it loads something and when nothing changed.
fn exit_status_preserved(sh: Sh) {
    let Some(sb) = sandbox(sh) else {
        return;
    };
    let project = sb.project("proj", &simple_flake("x", ""));
    sb.envy_ok(&project, &["allow"]);
    let mut s = Session::start(&sb, sh, &sb.work);
    let cd = format!("cd {}", project.display());
    let fail = if sh == Sh::Nu { "^false" } else { "false" };
    s.run_last(&format!("{cd}; {fail}"));
    let loaded = s.output(&format!("echo {}", sh.status_var()));
    s.run_last(fail);
    let unchanged = s.output(&format!("echo {}", sh.status_var()));
    assert_eq!((loaded.trim(), unchanged.trim()), ("1", "1"));
    assert_eq!(s.env()["FOO"], "x");
}

/// Sourcing the hook twice installs it once; existing prompt commands keep running.
fn hook_sourced_twice(sh: Sh) {
    let Some(sb) = sandbox(sh) else {
        return;
    };
    let project = sb.project("proj", &simple_flake("x", r#"PATH = "/fixture/bin";"#));
    sb.envy_ok(&project, &["allow"]);
    let rc = match sh {
        Sh::Bash => "PROMPT_COMMAND='__user_pc=$((__user_pc+1))'",
        Sh::Zsh => {
            "__user_pc=0; __user_precmd() { __user_pc=$((__user_pc+1)); }; precmd_functions=(__user_precmd)"
        }
        Sh::Fish => {
            "set -g __user_pc 0; function __user_prompt --on-event fish_prompt; set -g __user_pc (math $__user_pc + 1); end"
        }
        // These count prompts in a file: a shell variable of theirs would be exported.
        Sh::Nu => {
            "$env.config.hooks.pre_prompt = [{|| 'x' | save -a ($env.HOME | path join user-pc) }]"
        }
        Sh::Elvish => "set edit:before-readline = [{ echo x >> $E:HOME/user-pc }]",
        Sh::Xonsh => {
            "@events.on_pre_prompt\ndef __user_prompt(**_):\n    open($HOME + '/user-pc', 'a').write('x')\n"
        }
    };
    let mut s = Session::start_with(&sb, sh, &sb.work, rc, 2);
    let before = s.env();
    s.cd(&project);
    let env = s.env();
    assert_eq!(
        env["PATH"],
        format!("/fixture/bin:{}", before["PATH"]),
        "the environment is applied once"
    );
    let hooks = match sh {
        Sh::Bash => s.output("echo \"$PROMPT_COMMAND\""),
        Sh::Zsh => s.output("echo $precmd_functions / $chpwd_functions"),
        Sh::Fish => s.output("functions --handlers"),
        Sh::Nu => s.output("echo ($env.config.hooks.pre_prompt | length)"),
        Sh::Elvish => s.output("echo (count $edit:before-readline) / (count $after-chdir)"),
        Sh::Xonsh => s.output("echo @(len(events.on_pre_prompt)) / @(len(events.on_chdir))"),
    };
    match sh {
        Sh::Bash => assert_eq!(hooks.trim(), "_envy_hook;__user_pc=$((__user_pc+1))"),
        Sh::Zsh => assert_eq!(hooks.trim(), "_envy_hook __user_precmd / _envy_hook"),
        Sh::Fish => {
            assert_eq!(hooks.matches("__envy_prompt_hook").count(), 1, "{hooks}");
            assert_eq!(hooks.matches("__envy_pwd_hook").count(), 1, "{hooks}");
        }
        Sh::Nu => assert_eq!(hooks.trim(), "2"),
        Sh::Elvish => assert_eq!(hooks.trim(), "2 / 1"),
        Sh::Xonsh => assert_eq!(hooks.trim(), "2 / 1"),
    }
    let count = match sh {
        Sh::Bash | Sh::Zsh | Sh::Fish => s.output("echo $__user_pc"),
        _ => fs_err::read_to_string(sb.home.join("user-pc"))
            .unwrap_or_default()
            .len()
            .to_string(),
    };
    assert!(
        count.trim().parse::<u32>().unwrap_or(0) >= 3,
        "the user's prompt command still runs: {count}"
    );
    s.cd(&sb.work);
    assert_eq!(stable(&s.env()), stable(&before));
}

/// Bash and zsh: the shellHook runs once on entry, its functions and aliases stay available,
/// bashFunctions become functions (a user's own function of the same name comes back on
/// leaving), and leaving removes them all along with what the hook exported. Fish gets the
/// variables only.
fn shell_hook_and_functions(sh: Sh) {
    let Some(sb) = sandbox(sh) else {
        return;
    };
    let project = sb.project(
        "proj",
        &simple_flake(
            "bar",
            r#"stdenv = ./stdenv;
      shellHook = ''
        hello() { echo "hello from $FOO"; }
        alias hh='echo alias-works'
        export HOOK_VAR=from-hook
        export EXISTING=changed-by-hook
        echo ran >> "$HOME/hook-runs"
      '';"#,
        ),
    );
    write_stdenv(
        &project,
        "greet() {\n  echo \"greet $1\"\n}\nsetupVar=from-setup\n",
    );
    sb.envy_ok(&project, &["allow"]);
    let rc = match sh {
        Sh::Bash | Sh::Zsh => "export EXISTING=mine; greet() { echo user-greet; }".to_string(),
        _ => sh.export("EXISTING", "mine"),
    };
    let mut s = Session::start_with(&sb, sh, &sb.work, &rc, 1);
    let before = s.env();
    s.cd(&project);
    let inside = s.env();
    assert_eq!(inside["FOO"], "bar");
    if sh.runs_shell_hooks() {
        assert_eq!(s.output("hello").trim(), "hello from bar", "{}", s.screen());
        assert_eq!(s.output("greet world").trim(), "greet world");
        assert_eq!(s.output("hh").trim(), "alias-works");
        assert_eq!(s.output("echo $setupVar").trim(), "from-setup");
        assert_eq!(inside["HOOK_VAR"], "from-hook");
        assert_eq!(inside["EXISTING"], "changed-by-hook");
        s.cd(&project.join("stdenv"));
        let runs = fs_err::read_to_string(sb.home.join("hook-runs")).unwrap();
        assert_eq!(runs.lines().count(), 1, "the shellHook runs once per entry");
    } else {
        assert_eq!(inside.get("HOOK_VAR"), None);
        assert!(
            !sb.home.join("hook-runs").exists(),
            "fish never runs a bash shellHook"
        );
    }

    s.cd(&sb.work);
    assert_eq!(
        stable(&s.env()),
        stable(&before),
        "leaving undoes the hook's exports too"
    );
    if sh.runs_shell_hooks() {
        let hello = s.output("type hello");
        assert!(!hello.contains("hello from"), "hello is gone: {hello}");
        assert!(s.output("hh").contains("not found"), "the alias is gone");
        assert_eq!(
            s.output("greet world").trim(),
            "user-greet",
            "the user's own function is back"
        );
        assert_eq!(s.output("echo \"[$setupVar]\"").trim(), "[]");
    }
}

/// A flake that stops evaluating keeps the last good environment and a working prompt; once
/// fixed, the new environment loads. The broken file is one `flake.nix` imports, which the
/// Nix backend reports as read (so editing it is noticed without a new allow).
fn broken_flake_keeps_last_good(sh: Sh) {
    let Some(sb) = sandbox(sh) else {
        return;
    };
    let project = sb.project("proj", &simple_flake("good", "BAR = import ./extra.nix;"));
    fs_err::write(project.join("extra.nix"), "\"from-extra\"\n").unwrap();
    sb.envy_ok(&project, &["allow"]);
    let mut s = Session::start(&sb, sh, &sb.work);
    s.cd(&project);
    let good = s.env();
    assert_eq!(
        (good["FOO"].as_str(), good["BAR"].as_str()),
        ("good", "from-extra")
    );

    tick();
    fs_err::write(project.join("extra.nix"), "\"broken\" +\n").unwrap();
    s.prompt();
    let (mut after, mut good) = (stable(&s.env()), stable(&good));
    let status = (after.remove("__ENVY_STATE"), good.remove("__ENVY_STATE"));
    assert_eq!(after, good, "the last good environment stays");
    assert!(
        status.0.unwrap().starts_with("1|F|"),
        "the state says failed"
    );
    assert_eq!(s.output("echo prompt-works").trim(), "prompt-works");
    let status = s.output(&format!("{} status --json", common::envy_bin().display()));
    assert!(status.contains("\"shell_status\": \"failed\""), "{status}");

    tick();
    fs_err::write(project.join("extra.nix"), "\"fixed\"\n").unwrap();
    s.prompt();
    let fixed = s.env();
    assert_eq!(fixed["BAR"], "fixed", "{}", s.screen());
}

/// `envy use NAME` switches the devShell at the next prompt; `envy rollback` goes back a
/// generation at the next prompt.
fn use_and_rollback(sh: Sh) {
    let Some(sb) = sandbox(sh) else {
        return;
    };
    let project = sb.project(
        "proj",
        &corekit::flake(&[
            ("default", "FOO = \"default\";"),
            ("ci", "FOO = \"ci\"; CI_ONLY = \"1\";"),
        ]),
    );
    sb.envy_ok(&project, &["allow"]);
    let envy = common::envy_bin().display().to_string();
    let mut s = Session::start(&sb, sh, &project);
    assert_eq!(s.env()["FOO"], "default");
    s.run(&format!("{envy} use ci"));
    let env = s.env();
    assert_eq!(
        (env["FOO"].as_str(), env.get("CI_ONLY").map(String::as_str)),
        ("ci", Some("1"))
    );
    s.run(&format!("{envy} rollback"));
    let env = s.env();
    assert_eq!(
        (env["FOO"].as_str(), env.get("CI_ONLY")),
        ("default", None),
        "rolled back to generation 1"
    );
    s.run(&format!("{envy} use default"));
    assert_eq!(s.env()["FOO"], "default");
}

/// `envy exec DIR -- CMD` from the shell, outside the project: CMD gets the devShell's
/// variables, the shell keeps its own.
fn exec_from_the_shell(sh: Sh) {
    let Some(sb) = sandbox(sh) else {
        return;
    };
    let project = sb.project("proj", &simple_flake("bar", ""));
    sb.envy_ok(&project, &["allow"]);
    let mut s = Session::start(&sb, sh, &sb.work);
    let before = s.env();
    let envy = common::envy_bin().display().to_string();
    let out = s.output(&format!(
        "{envy} exec {} -- printenv FOO",
        project.display()
    ));
    assert_eq!(out.lines().last(), Some("bar"), "{out}");
    assert_eq!(stable(&s.env()), stable(&before), "the shell is untouched");
}

macro_rules! shell_tests {
    ($module:ident, $shell:ident: $($scenario:ident),* $(,)?) => {
        mod $module {
            $(#[test] fn $scenario() { super::$scenario(super::Sh::$shell) })*
        }
    };
}

/// elvish and xonsh have no `$?` (elvish raises exceptions; xonsh keeps it in its history):
/// they have every scenario but exit_status_preserved.
macro_rules! all_shell_tests {
    ($($scenario:ident),* $(,)?) => {
        shell_tests!(bash, Bash: exit_status_preserved, $($scenario),*);
        shell_tests!(zsh, Zsh: exit_status_preserved, $($scenario),*);
        shell_tests!(fish, Fish: exit_status_preserved, $($scenario),*);
        shell_tests!(nu, Nu: exit_status_preserved, $($scenario),*);
        shell_tests!(elvish, Elvish: $($scenario),*);
        shell_tests!(xonsh, Xonsh: $($scenario),*);
    };
}

all_shell_tests!(
    enter_subdir_leave,
    exec_from_the_shell,
    edit_blocks_until_allowed,
    siblings_and_nested,
    hook_sourced_twice,
    shell_hook_and_functions,
    broken_flake_keeps_last_good,
    use_and_rollback,
);
