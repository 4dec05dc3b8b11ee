//! Reading `flake.nix` with envy's evaluator: the file is evaluated where Nix evaluates it —
//! at its (lazily mounted) store path, so relative paths inside it mean what they mean to
//! Nix — and its top-level attributes are handed to [`FlakeNix::from_parts`] as data.
//! Error messages name the user's file, not the store path.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use envy_eval::{Evaluator, Pos, Value};
use envy_fetch::SourceTree;

use crate::FlakeError;
use crate::flake_nix::FlakeNixParts;
use crate::lock::FlakeNixReader;
use crate::mounts::Mounts;
use crate::nix_value::{render, to_json};

/// A [`FlakeNixReader`] on an evaluator.
pub struct EvalReader<'e> {
    ev: RefCell<&'e mut Evaluator>,
    mounts: Rc<Mounts>,
}

impl<'e> EvalReader<'e> {
    /// Read with `ev`, mounting trees in `mounts` (which `ev`'s I/O serves).
    pub fn new(ev: &'e mut Evaluator, mounts: Rc<Mounts>) -> EvalReader<'e> {
        EvalReader {
            ev: RefCell::new(ev),
            mounts,
        }
    }

    /// The evaluator back.
    pub fn into_inner(self) -> &'e mut Evaluator {
        self.ev.into_inner()
    }
}

/// `message` with the store path of `tree` replaced by where the tree really is.
pub(crate) fn user_paths(message: &str, store_path: &str, tree: &SourceTree) -> String {
    message.replace(store_path, &tree.root().display().to_string())
}

impl FlakeNixReader for EvalReader<'_> {
    fn pinned(&self, path: &Path) -> Option<Option<Vec<u8>>> {
        self.mounts.pinned(path)
    }

    fn read_parts(
        &self,
        tree: &SourceTree,
        subdir: &str,
        _display: &Path,
    ) -> Result<FlakeNixParts, FlakeError> {
        let base = self.mounts.mount(tree);
        let mut file = Path::new(&base).to_path_buf();
        if !subdir.is_empty() {
            file.push(subdir);
        }
        file.push("flake.nix");
        let mut ev = self.ev.borrow_mut();
        let ev: &mut Evaluator = &mut ev;
        let err = |e: Box<envy_eval::EvalError>| FlakeError::Eval {
            message: user_paths(&render(&e), &base, tree),
        };
        let v = ev.eval_file(&file).map_err(err)?;
        let attrs = ev
            .force_attrs(
                &v,
                Pos::NONE,
                "while evaluating the top-level of `flake.nix`",
            )
            .map_err(err)?;
        let mut parts = FlakeNixParts {
            attr_names: attrs.iter().map(|a| a.name.as_str().to_string()).collect(),
            ..Default::default()
        };
        for a in attrs.iter() {
            match a.name.as_str() {
                "description" => {
                    parts.description = Some(to_json(ev, &a.value, a.pos).map_err(err)?)
                }
                "inputs" => parts.inputs = Some(to_json(ev, &a.value, a.pos).map_err(err)?),
                "nixConfig" => parts.nix_config = Some(to_json(ev, &a.value, a.pos).map_err(err)?),
                "outputs" => {
                    let f = ev.force(&a.value, a.pos).map_err(err)?;
                    parts.outputs_is_function = Some(f.is_function());
                    if let Value::Lambda(closure) = &f
                        && let Some(formals) = &closure.def.formals
                    {
                        parts.output_formals = formals
                            .entries
                            .iter()
                            .map(|f| f.name.as_str().to_string())
                            .collect();
                    }
                }
                _ => {}
            }
        }
        Ok(parts)
    }
}
