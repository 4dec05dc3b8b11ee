//! `allowedReferences`, `allowedRequisites`, `disallowedReferences`, `disallowedRequisites`
//! and structured attrs' `outputChecks`: a build whose outputs break them fails with Nix's
//! message and leaves nothing valid (nor on disk); one that keeps them registers as usual.

mod common;

use common::Fixture;
use envy_build::{Builder, NoProgress, SandboxMode};
use envy_store::StorePath;

/// `base` ← `mid` ← (the derivation under test, which refers to `mid` only).
struct World {
    fx: Fixture,
    mid_drv: StorePath,
    base: String,
    mid: String,
}

fn world() -> World {
    let mut fx = Fixture::new(SandboxMode::Auto);
    let base_drv = fx.drv("base", "echo base > $out", &[], &[], None);
    let base = fx.drv_out(&base_drv);
    let mid_drv = fx.drv(
        "mid",
        "echo $base > $out",
        &[("base", &base)],
        &[&base_drv],
        None,
    );
    let mid = fx.drv_out(&mid_drv);
    World {
        fx,
        mid_drv,
        base,
        mid,
    }
}

impl World {
    /// Build a derivation whose `out` holds `$mid`, with these extra attributes.
    fn build(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<String, String> {
        let mid = self.mid.clone();
        let mut env = vec![("mid", mid.as_str())];
        env.extend_from_slice(attrs);
        let drv = self
            .fx
            .drv(name, "echo $mid > $out", &env, &[&self.mid_drv], None);
        self.run(&drv)
    }

    fn run(&self, drv: &StorePath) -> Result<String, String> {
        let out = self.fx.drv_out(drv);
        let result = Builder::new(&self.fx.store, &self.fx.config, &NoProgress)
            .build(std::slice::from_ref(drv))
            .map(|_| out.clone())
            .map_err(|e| e.to_string());
        if result.is_err() {
            let path = StorePath::from_base_name(out.rsplit('/').next().unwrap()).unwrap();
            assert!(!self.fx.store.is_valid(&path).unwrap(), "{out} is valid");
            assert!(
                !std::path::Path::new(&out).exists(),
                "{out} was left behind"
            );
        }
        result
    }
}

fn rejected(out: &str, paths: &[&str]) -> String {
    let list: String = paths.iter().map(|p| format!("\n  {p}")).collect();
    format!("output `{out}` is not allowed to refer to the following paths:{list}")
}

#[test]
fn plain_reference_checks() {
    let mut w = world();
    let (base, mid) = (w.base.clone(), w.mid.clone());

    // Present but empty: nothing allowed.
    let err = w.build("empty", &[("allowedReferences", "")]).unwrap_err();
    let out = err.split('`').nth(1).unwrap().to_string();
    assert_eq!(err, rejected(&out, &[&mid]));
    // Absent: anything goes; listed: fine.
    w.build("absent", &[]).unwrap();
    w.build("listed", &[("allowedReferences", &mid)]).unwrap();

    let err = w
        .build(
            "denied",
            &[("disallowedReferences", &format!("{base} {mid}"))],
        )
        .unwrap_err();
    assert!(err.ends_with(&format!("paths:\n  {mid}")), "{err}");
    // `base` is only a requisite, so a references check lets it through.
    w.build("indirect", &[("disallowedReferences", &base)])
        .unwrap();

    let err = w
        .build("requisites", &[("allowedRequisites", &mid)])
        .unwrap_err();
    assert!(err.ends_with(&format!("paths:\n  {base}")), "{err}");
    w.build(
        "requisites-ok",
        &[("allowedRequisites", &format!("{mid} {base}"))],
    )
    .unwrap();
    let err = w
        .build("no-base", &[("disallowedRequisites", &base)])
        .unwrap_err();
    let out = err.split('`').nth(1).unwrap().to_string();
    assert_eq!(err, rejected(&out, &[&base]));

    let err = w
        .build("bad-spec", &[("allowedReferences", "nonsense")])
        .unwrap_err();
    assert_eq!(
        err,
        "derivation contains an illegal reference specifier `nonsense`"
    );
}

/// Output names stand for the derivation's own outputs; references between outputs count.
#[test]
fn output_names_in_specs() {
    let mut w = world();
    let script = "/bin/mkdir $out $dev; echo $dev > $out/dev-path; echo none > $dev/x";
    let drv = w.fx.drv_outputs(
        "split",
        script,
        &[("allowedReferences", "out")],
        &[],
        &["out", "dev"],
        None,
    );
    let err = w.run(&drv).unwrap_err();
    // `out` refers to `dev`, which is not `out`: rejected (`dev` refers to nothing).
    let dev = w.fx.drv_output(&drv, "dev");
    let out = w.fx.drv_output(&drv, "out");
    assert_eq!(err, rejected(&out, &[&dev]));
    let drv = w.fx.drv_outputs(
        "split2",
        script,
        &[("allowedReferences", "dev")],
        &[],
        &["out", "dev"],
        None,
    );
    w.run(&drv).unwrap();

    // Outputs referring to each other cannot be registered: rejected before any check.
    let drv = w.fx.drv_outputs(
        "cycle",
        "echo $dev > $out; echo $out > $dev",
        &[],
        &[],
        &["out", "dev"],
        None,
    );
    assert_eq!(
        w.run(&drv).unwrap_err(),
        format!(
            "cycle detected in build of `{}` in the references of output `dev` from output `out`",
            w.fx.dir().print(&drv)
        )
    );
}

/// `__structuredAttrs`: `outputChecks.<output>`, with sizes.
#[test]
fn structured_output_checks() {
    let mut w = world();
    let mid = w.mid.clone();
    let mut make = |name: &str, checks: &str| {
        let json =
            format!(r#"{{"name":"{name}","mid":"{mid}","outputChecks":{{"out":{checks}}}}}"#);
        let drv =
            w.fx.drv(name, "", &[("__json", &json)], &[&w.mid_drv], None);
        let mut parsed = w.fx.store.read_derivation(&drv).unwrap();
        parsed.builder = b"/bin/bash".to_vec();
        parsed.args = vec![
            b"-c".to_vec(),
            b"source .attrs.sh; echo $mid > ${outputs[out]}".to_vec(),
        ];
        parsed.env.retain(|k, _| k == b"__json");
        w.fx.write(parsed)
    };
    let ok = make(
        "fine",
        &format!(r#"{{"allowedReferences":["{mid}"],"maxSize":1000}}"#),
    );
    let empty = make("empty", r#"{"allowedReferences":[]}"#);
    let small = make("small", r#"{"maxSize":10}"#);
    let closure = make("closure", r#"{"maxClosureSize":100}"#);
    let bad = make("bad", r#"{"allowedReferences":"out"}"#);
    w.run(&ok).unwrap();
    let err = w.run(&empty).unwrap_err();
    let out = w.fx.drv_out(&empty);
    assert_eq!(err, rejected(&out, &[&mid]));
    let err = w.run(&small).unwrap_err();
    assert!(
        err.starts_with(&format!("path `{}` is too large at ", w.fx.drv_out(&small)))
            && err.ends_with(" bytes; limit is 10 bytes"),
        "{err}"
    );
    let err = w.run(&closure).unwrap_err();
    assert!(
        err.starts_with(&format!(
            "closure of path `{}` is too large at ",
            w.fx.drv_out(&closure)
        )) && err.ends_with(" bytes; limit is 100 bytes"),
        "{err}"
    );
    let err = w.run(&bad).unwrap_err();
    assert!(
        err.ends_with("must be a list of strings") && err.contains("`allowedReferences`"),
        "{err}"
    );
}
