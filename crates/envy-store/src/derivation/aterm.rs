//! The ATerm text of a derivation, exactly as Nix prints and parses it:
//! `Derive([outputs],[inputDrvs],[inputSrcs],"platform","builder",[args],[env])`, or
//! `DrvWithVersion("xp-dyn-drv",…)` when inputs use dynamic-derivation outputs. Strings escape
//! `"`, `\`, newline, carriage return and tab; everything else is written raw, bytes included.

use std::collections::BTreeMap;

use super::{Derivation, DerivationError, DerivationOutput, OutputSet};
use crate::content_address::{ContentAddress, ContentAddressMethod};
use crate::hash::Hash;
use crate::store_dir::{StoreDir, output_path_name};
use crate::store_path::StorePath;

/// The only format version envy (like Nix) knows besides plain `Derive`.
const DYN_DRV_VERSION: &str = "xp-dyn-drv";

fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

fn push_list<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

fn push_output_set(out: &mut Vec<u8>, set: &OutputSet) {
    if set.dynamic.is_empty() {
        push_list(out, &set.outputs, |out, o| push_string(out, o.as_bytes()));
    } else {
        out.push(b'(');
        push_list(out, &set.outputs, |out, o| push_string(out, o.as_bytes()));
        out.push(b',');
        push_list(out, &set.dynamic, |out, (name, child)| {
            out.push(b'(');
            push_string(out, name.as_bytes());
            out.push(b',');
            push_output_set(out, child);
            out.push(b')');
        });
        out.push(b')');
    }
}

impl Derivation {
    /// The `.drv` file's text.
    #[must_use]
    pub fn to_aterm(&self, store_dir: &StoreDir) -> Vec<u8> {
        let inputs: Vec<(String, &OutputSet)> = self
            .input_drvs
            .iter()
            .map(|(path, set)| (store_dir.print(path), set))
            .collect();
        self.print(store_dir, false, &inputs)
    }

    /// The text that is hashed for input-addressed output paths: input derivations replaced by
    /// their hashes modulo (`inputs`, keyed by lower-case hex), and with `mask_outputs` the
    /// output paths and the environment variables named after outputs blanked.
    #[must_use]
    pub fn to_aterm_modulo(
        &self,
        store_dir: &StoreDir,
        mask_outputs: bool,
        inputs: &BTreeMap<String, OutputSet>,
    ) -> Vec<u8> {
        let inputs: Vec<(String, &OutputSet)> =
            inputs.iter().map(|(k, v)| (k.clone(), v)).collect();
        self.print(store_dir, mask_outputs, &inputs)
    }

    fn print(
        &self,
        store_dir: &StoreDir,
        mask_outputs: bool,
        inputs: &[(String, &OutputSet)],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        if inputs.iter().any(|(_, set)| !set.dynamic.is_empty()) {
            out.extend_from_slice(b"DrvWithVersion(");
            push_string(&mut out, DYN_DRV_VERSION.as_bytes());
            out.push(b',');
        } else {
            out.extend_from_slice(b"Derive(");
        }
        push_list(&mut out, &self.outputs, |out, (name, output)| {
            let (path, algo, hash) = match output {
                DerivationOutput::InputAddressed(path) => {
                    let path = if mask_outputs {
                        String::new()
                    } else {
                        store_dir.print(path)
                    };
                    (path, String::new(), String::new())
                }
                DerivationOutput::CaFixed(ca) => {
                    let path = if mask_outputs {
                        String::new()
                    } else {
                        match store_dir.make_fixed_output_path_from_ca(
                            &output_path_name(&self.name, name),
                            ca,
                            [],
                            false,
                        ) {
                            Ok(path) => store_dir.print(&path),
                            // An invalid name cannot be written; Nix would have failed earlier.
                            Err(_) => String::new(),
                        }
                    };
                    (
                        path,
                        ca.method.print_with_algo(ca.hash.algo()),
                        ca.hash.to_hex(),
                    )
                }
                DerivationOutput::CaFloating { method, algo } => {
                    (String::new(), method.print_with_algo(*algo), String::new())
                }
                DerivationOutput::Deferred => (String::new(), String::new(), String::new()),
                DerivationOutput::Impure { method, algo } => (
                    String::new(),
                    method.print_with_algo(*algo),
                    "impure".to_owned(),
                ),
            };
            out.push(b'(');
            push_string(out, name.as_bytes());
            for field in [path, algo, hash] {
                out.push(b',');
                push_string(out, field.as_bytes());
            }
            out.push(b')');
        });
        out.push(b',');
        let mut sorted: Vec<&(String, &OutputSet)> = inputs.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        push_list(&mut out, sorted, |out, (key, set)| {
            out.push(b'(');
            push_string(out, key.as_bytes());
            out.push(b',');
            push_output_set(out, set);
            out.push(b')');
        });
        out.push(b',');
        push_list(&mut out, &self.input_srcs, |out, p| {
            push_string(out, store_dir.print(p).as_bytes())
        });
        out.push(b',');
        push_string(&mut out, &self.platform);
        out.push(b',');
        push_string(&mut out, &self.builder);
        out.push(b',');
        push_list(&mut out, &self.args, |out, a| push_string(out, a));
        out.push(b',');
        push_list(&mut out, &self.env, |out, (k, v)| {
            out.push(b'(');
            push_string(out, k);
            out.push(b',');
            let masked =
                mask_outputs && std::str::from_utf8(k).is_ok_and(|k| self.outputs.contains_key(k));
            push_string(out, if masked { b"" } else { v });
            out.push(b')');
        });
        out.push(b')');
        out
    }

    /// Parse a `.drv` file's text. `name` is the derivation name (the `.drv` file's name without
    /// `.drv`); it is needed to check fixed-output paths.
    pub fn parse(
        store_dir: &StoreDir,
        text: &[u8],
        name: &str,
    ) -> Result<Derivation, DerivationError> {
        Parser {
            s: text,
            pos: 0,
            store_dir,
        }
        .derivation(name)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    store_dir: &'a StoreDir,
}

impl Parser<'_> {
    fn syntax(&self, expected: &str) -> DerivationError {
        DerivationError::Syntax {
            pos: self.pos,
            expected: expected.to_owned(),
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.pos..].starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, lit: &str) -> Result<(), DerivationError> {
        if self.eat(lit) {
            Ok(())
        } else {
            Err(self.syntax(&format!("`{lit}`")))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn string(&mut self) -> Result<Vec<u8>, DerivationError> {
        self.expect("\"")?;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.syntax("closing `\"`"));
            };
            self.pos += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.syntax("escaped character"));
                    };
                    self.pos += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        other => other,
                    });
                }
                _ => out.push(c),
            }
        }
    }

    fn text(&mut self, what: &'static str) -> Result<String, DerivationError> {
        let pos = self.pos;
        String::from_utf8(self.string()?).map_err(|_| DerivationError::NotUtf8 { pos, what })
    }

    fn path(&mut self) -> Result<StorePath, DerivationError> {
        let pos = self.pos;
        let text = self.text("store path")?;
        self.store_path(text, pos)
    }

    fn store_path(&self, text: String, pos: usize) -> Result<StorePath, DerivationError> {
        if !text.starts_with('/') {
            return Err(DerivationError::Syntax {
                pos,
                expected: "an absolute store path".to_owned(),
            });
        }
        self.store_dir
            .parse(&text)
            .map_err(|source| DerivationError::BadPath { path: text, source })
    }

    /// `[item,item,…]`.
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DerivationError>,
    ) -> Result<Vec<T>, DerivationError> {
        self.expect("[")?;
        let mut items = Vec::new();
        if self.eat("]") {
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat("]") {
                return Ok(items);
            }
            self.expect(",")?;
        }
    }

    fn derivation(&mut self, name: &str) -> Result<Derivation, DerivationError> {
        let dynamic_allowed = if self.eat("Derive(") {
            false
        } else if self.eat("DrvWithVersion(") {
            let version = self.text("version")?;
            if version != DYN_DRV_VERSION {
                return Err(DerivationError::UnknownVersion { version });
            }
            self.expect(",")?;
            true
        } else {
            return Err(self.syntax("`Derive(` or `DrvWithVersion(`"));
        };
        let mut drv = Derivation {
            name: name.to_owned(),
            ..Derivation::default()
        };
        for (output_name, output) in self.list(|p| p.output(name))? {
            drv.outputs.insert(output_name, output);
        }
        self.expect(",")?;
        let inputs = self.list(|p| {
            p.expect("(")?;
            let path = p.path()?;
            p.expect(",")?;
            let set = p.output_set(dynamic_allowed, &path)?;
            p.expect(")")?;
            Ok((path, set))
        })?;
        drv.input_drvs.extend(inputs);
        self.expect(",")?;
        drv.input_srcs.extend(self.list(Self::path)?);
        self.expect(",")?;
        drv.platform = self.string()?;
        self.expect(",")?;
        drv.builder = self.string()?;
        self.expect(",")?;
        drv.args = self.list(Self::string)?;
        self.expect(",")?;
        let env = self.list(|p| {
            p.expect("(")?;
            let k = p.string()?;
            p.expect(",")?;
            let v = p.string()?;
            p.expect(")")?;
            Ok((k, v))
        })?;
        drv.env.extend(env);
        self.expect(")")?;
        if self.pos != self.s.len() {
            return Err(self.syntax("end of input"));
        }
        Ok(drv)
    }

    fn output(&mut self, drv_name: &str) -> Result<(String, DerivationOutput), DerivationError> {
        self.expect("(")?;
        let name = self.text("output name")?;
        self.expect(",")?;
        let path_pos = self.pos;
        let path = self.text("output path")?;
        self.expect(",")?;
        let algo = self.text("output hash algorithm")?;
        self.expect(",")?;
        let hash = self.text("output hash")?;
        self.expect(")")?;
        let bad_hash = |source| DerivationError::BadHash {
            name: drv_name.to_owned(),
            output: name.clone(),
            source,
        };
        let output = if algo.is_empty() {
            if path.is_empty() {
                DerivationOutput::Deferred
            } else {
                DerivationOutput::InputAddressed(self.store_path(path, path_pos)?)
            }
        } else {
            let (method, algo) = ContentAddressMethod::parse_with_algo(&algo).map_err(bad_hash)?;
            if hash == "impure" {
                DerivationOutput::Impure { method, algo }
            } else if hash.is_empty() {
                DerivationOutput::CaFloating { method, algo }
            } else {
                let hash = Hash::parse_bare(&hash, algo).map_err(bad_hash)?;
                let ca = ContentAddress { method, hash };
                let stated = self.store_path(path, path_pos)?;
                let expected = self
                    .store_dir
                    .make_fixed_output_path_from_ca(
                        &output_path_name(drv_name, &name),
                        &ca,
                        [],
                        false,
                    )
                    .map_err(|source| DerivationError::BadName {
                        name: drv_name.to_owned(),
                        source,
                    })?;
                if stated != expected {
                    return Err(DerivationError::FixedPathMismatch {
                        name: drv_name.to_owned(),
                        output: name,
                        found: self.store_dir.print(&stated),
                        expected: self.store_dir.print(&expected),
                    });
                }
                DerivationOutput::CaFixed(ca)
            }
        };
        Ok((name, output))
    }

    fn output_set(
        &mut self,
        dynamic_allowed: bool,
        path: &StorePath,
    ) -> Result<OutputSet, DerivationError> {
        match self.peek() {
            Some(b'[') => Ok(OutputSet::of(self.list(|p| p.text("output name"))?)),
            Some(b'(') if !dynamic_allowed => Err(DerivationError::DynamicWithoutVersion {
                path: self.store_dir.print(path),
            }),
            Some(b'(') => {
                self.pos += 1;
                let outputs = self.list(|p| p.text("output name"))?;
                self.expect(",")?;
                let children = self.list(|p| {
                    p.expect("(")?;
                    let name = p.text("output name")?;
                    p.expect(",")?;
                    let child = p.output_set(true, path)?;
                    p.expect(")")?;
                    Ok((name, child))
                })?;
                self.expect(")")?;
                Ok(OutputSet {
                    outputs: outputs.into_iter().collect(),
                    dynamic: children.into_iter().collect(),
                })
            }
            _ => Err(self.syntax("`[` or `(`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd() -> StoreDir {
        StoreDir::nix_default()
    }

    #[test]
    fn round_trips_escapes_and_bytes() {
        let text: &[u8] = b"Derive([(\"out\",\"/nix/store/hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv\",\"\",\"\")],[],[],\"x86_64-linux\",\"/bin/sh\",[\"-c\",\"a\\\"b\\\\c\\nd\\re\\tf\xff\"],[(\"k\",\"\xe9\")])";
        let drv = Derivation::parse(&sd(), text, "triv").unwrap();
        assert_eq!(drv.args[1], b"a\"b\\c\nd\re\tf\xff");
        assert_eq!(drv.env[b"k".as_slice()], b"\xe9");
        assert_eq!(drv.to_aterm(&sd()), text);
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            &b"Derive("[..],
            b"Derive([],[],[],\"\",\"\",[],[])x",
            b"Derive([],[],[\"nix/store/hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv\"],\"\",\"\",[],[])",
            b"Derive([],[],[\"/gnu/store/hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv\"],\"\",\"\",[],[])",
            b"Derive([(\"out\",\"\",\"sha257\",\"\")],[],[],\"\",\"\",[],[])",
            b"Derive([],[],[],\"\",\"\",[],[(\"a\",\"b)])",
        ] {
            assert!(
                Derivation::parse(&sd(), bad, "x").is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
