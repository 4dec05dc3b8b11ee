//! `flake show`: the flake's outputs as a tree (or JSON), classified the way Nix 2.8's
//! `nix flake show` does — packages, development environments, checks, apps, templates,
//! overlays, NixOS modules; `legacyPackages` below the system level is omitted (with a
//! warning) since evaluating it can be huge.

use envy_eval::symbol::Sym;
use envy_eval::{EvalResult, Evaluator, Pos, Value};
use serde_json::{Map, Value as Json};

const TREE_CONN: &str = "├───";
const TREE_LAST: &str = "└───";
const TREE_LINE: &str = "│   ";
const TREE_NULL: &str = "    ";

/// What `show` produced.
#[derive(Debug, Default)]
pub struct Shown {
    /// The text lines (after the flake's URL line).
    pub lines: Vec<String>,
    /// The JSON form.
    pub json: Json,
    /// Warnings (`… omitted (use '--legacy' to show)`).
    pub warnings: Vec<String>,
}

struct Show<'a> {
    ev: &'a mut Evaluator,
    color: bool,
    out: Shown,
}

fn bold(color: bool, s: &str) -> String {
    if color {
        format!("\x1b[1m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn warn(color: bool, s: &str) -> String {
    if color {
        format!("\x1b[35;1m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

impl Show<'_> {
    fn attrs(&mut self, v: &Value) -> EvalResult<Option<envy_eval::value::AttrSet>> {
        match self.ev.force(v, Pos::NONE)? {
            Value::Attrs(a) => Ok(Some(a)),
            _ => Ok(None),
        }
    }

    fn string_attr(&mut self, v: &Value, name: &str) -> EvalResult<Option<String>> {
        let Some(a) = self.attrs(v)? else {
            return Ok(None);
        };
        match a.get(Sym::new(name)) {
            Some(x) => {
                let x = x.clone();
                match self.ev.force(&x, Pos::NONE)? {
                    Value::String(s) => Ok(Some(s.to_str_lossy().into_owned())),
                    _ => Ok(None),
                }
            }
            None => Ok(None),
        }
    }

    fn is_derivation(&mut self, v: &Value) -> EvalResult<bool> {
        Ok(self.string_attr(v, "type")?.as_deref() == Some("derivation"))
    }

    fn visit(&mut self, v: &Value, path: &[String], header: &str, next: &str) -> EvalResult<Json> {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let recurse_here = p.is_empty()
            || (p.len() == 1
                && matches!(
                    p[0],
                    "defaultPackage"
                        | "devShell"
                        | "formatter"
                        | "nixosConfigurations"
                        | "nixosModules"
                        | "defaultApp"
                        | "templates"
                        | "overlays"
                ))
            || ((p.len() == 1 || p.len() == 2)
                && matches!(p[0], "checks" | "packages" | "devShells" | "apps"));
        if recurse_here {
            return self.recurse(v, path, header, next);
        }
        let is_drv_slot = (p.len() == 3 && matches!(p[0], "checks" | "packages" | "devShells"))
            || (p.len() == 2 && matches!(p[0], "defaultPackage" | "devShell" | "formatter"));
        if is_drv_slot || (p[0] == "hydraJobs" && self.is_derivation(v)?) {
            if !self.is_derivation(v)? {
                return Err(envy_eval::EvalError::eval(format!(
                    "flake output attribute `{}` is not a derivation",
                    path.join(".")
                )));
            }
            return self.derivation(v, &p, header);
        }
        if p[0] == "hydraJobs" {
            return self.recurse(v, path, header, next);
        }
        if p[0] == "legacyPackages" {
            if p.len() == 1 {
                return self.recurse(v, path, header, next);
            }
            self.out.warnings.push(format!(
                "{header} {} (use '--legacy' to show)",
                warn(self.color, "omitted")
            ));
            return Ok(Json::Object(Map::new()));
        }
        if (p.len() == 2 && p[0] == "defaultApp") || (p.len() == 3 && p[0] == "apps") {
            if self.string_attr(v, "type")?.as_deref() != Some("app") {
                return Err(envy_eval::EvalError::eval("not an app definition"));
            }
            self.out.lines.push(format!("{header}: app"));
            return Ok(serde_json::json!({ "type": "app" }));
        }
        if (p.len() == 1 && p[0] == "defaultTemplate") || (p.len() == 2 && p[0] == "templates") {
            let d = self.string_attr(v, "description")?.unwrap_or_default();
            self.out
                .lines
                .push(format!("{header}: template: {}", bold(self.color, &d)));
            return Ok(serde_json::json!({ "type": "template", "description": d }));
        }
        let (ty, desc) =
            if (p.len() == 1 && p[0] == "overlay") || (p.len() == 2 && p[0] == "overlays") {
                ("nixpkgs-overlay", "Nixpkgs overlay")
            } else if p.len() == 2 && p[0] == "nixosConfigurations" {
                ("nixos-configuration", "NixOS configuration")
            } else if (p.len() == 1 && p[0] == "nixosModule")
                || (p.len() == 2 && p[0] == "nixosModules")
            {
                ("nixos-module", "NixOS module")
            } else {
                ("unknown", "unknown")
            };
        self.out
            .lines
            .push(format!("{header}: {}", warn(self.color, desc)));
        Ok(serde_json::json!({ "type": ty }))
    }

    fn derivation(&mut self, v: &Value, p: &[&str], header: &str) -> EvalResult<Json> {
        let name = self.string_attr(v, "name")?.unwrap_or_default();
        let what = if (p.len() == 2 && p[0] == "devShell") || (p.len() >= 2 && p[0] == "devShells")
        {
            "development environment"
        } else if (p.len() == 3 && p[0] == "checks") || p[0] == "hydraJobs" {
            "derivation"
        } else {
            "package"
        };
        self.out.lines.push(format!("{header}: {what} '{name}'"));
        Ok(serde_json::json!({ "type": "derivation", "name": name }))
    }

    fn recurse(
        &mut self,
        v: &Value,
        path: &[String],
        header: &str,
        next: &str,
    ) -> EvalResult<Json> {
        if !path.is_empty() {
            self.out.lines.push(header.to_string());
        }
        let Some(a) = self.attrs(v)? else {
            return Ok(Json::Object(Map::new()));
        };
        let entries: Vec<(String, Value)> = a
            .sorted_by_name()
            .into_iter()
            .map(|x| (x.name.as_str().to_string(), x.value.clone()))
            .collect();
        let mut out = Map::new();
        for (i, (name, value)) in entries.iter().enumerate() {
            let last = i + 1 == entries.len();
            let h = format!(
                "{next}{}{}",
                if last { TREE_LAST } else { TREE_CONN },
                bold(self.color, name)
            );
            let n = format!("{next}{}", if last { TREE_NULL } else { TREE_LINE });
            let mut p = path.to_vec();
            p.push(name.clone());
            let j = self.visit(value, &p, &h, &n)?;
            out.insert(name.clone(), j);
        }
        Ok(Json::Object(out))
    }
}

/// Show `outputs` (a flake's value: its outputs are all attributes but the flake's own
/// `inputs`, `outputs`, `sourceInfo` and source attributes are skipped by taking `outputs`).
pub fn show(ev: &mut Evaluator, outputs: &Value, color: bool) -> EvalResult<Shown> {
    let mut s = Show {
        ev,
        color,
        out: Shown::default(),
    };
    let json = s.visit(outputs, &[], "", "")?;
    s.out.json = json;
    Ok(s.out)
}
