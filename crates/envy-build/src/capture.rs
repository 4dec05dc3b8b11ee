//! Environment capture: run a bash script in exactly the environment a derivation's builder
//! would get (variables, `passAsFile`/structured-attrs files, sandbox, input closure), instead
//! of the derivation's own arguments, and return what the script wrote to its first output.
//!
//! This is how a dev shell's environment is read, like `nix print-dev-env` does with
//! `get-env.sh`: the script sources the derivation's setup and dumps variables and functions
//! as JSON into `${!outputs%% *}` (or simply `$out`). The outputs are redirected into the
//! build directory, so nothing is written to the store and the derivation is not built; its
//! inputs are built first if needed.

use std::collections::BTreeMap;

use envy_store::StorePath;

use crate::builder::{Builder, string_env};
use crate::error::BuildError;
use crate::log::LogDir;

/// File names in the build directory.
pub(crate) const SCRIPT_NAME: &str = ".envy-capture.sh";
/// Where a capture run's outputs go in the build directory: `<prefix><output name>`.
pub const OUTPUT_PREFIX: &str = ".envy-capture-";

/// The replacement builder script.
pub(crate) struct CaptureSetup {
    pub script: String,
}

/// What a capture run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The contents the script wrote to the derivation's first output.
    pub output: Vec<u8>,
    /// Everything it printed (stdout and stderr).
    pub log: Vec<u8>,
}

impl Builder<'_> {
    /// Run `script` with the derivation's builder (which must be a bash) in the derivation's
    /// build environment; build its inputs first.
    ///
    /// # Errors
    /// An input fails to build, the script fails, or it wrote no output.
    pub fn capture(&self, drv_path: &StorePath, script: &str) -> Result<Captured, BuildError> {
        let drv = self.read_derivation(drv_path)?;
        let inputs: Vec<StorePath> = drv.input_drvs.keys().cloned().collect();
        self.build(&inputs)?;
        let closure = self.input_closure(drv_path, &drv)?;
        let outputs = self.output_paths(drv_path, &drv)?;
        let top = self.make_capture_top(&drv.name)?;
        let logs = LogDir::new(top.join("log"));
        let mut log = logs.create(drv_path.base_name())?;
        let setup = CaptureSetup {
            script: script.to_string(),
        };
        let run = self.run_builder(
            drv_path,
            &drv,
            &outputs,
            &closure,
            false,
            &top,
            &mut log,
            Some(&setup),
        );
        let result = run.and_then(|_| {
            let env = string_env(&drv);
            let order: Vec<String> = match env.get("outputs") {
                Some(list) => list.split_whitespace().map(String::from).collect(),
                None => outputs.keys().cloned().collect::<Vec<_>>(),
            };
            let files: BTreeMap<&String, std::path::PathBuf> = order
                .iter()
                .map(|o| (o, top.join("build").join(format!("{OUTPUT_PREFIX}{o}"))))
                .collect();
            let first = order
                .iter()
                .find_map(|o| files.get(o).filter(|p| p.is_file()));
            match first {
                Some(path) => Ok(fs_err::read(path)?),
                None => Err(BuildError::MissingOutput {
                    drv: self.store_dir_print(drv_path),
                    output: order.first().cloned().unwrap_or_default(),
                    path: "(capture output)".into(),
                }),
            }
        });
        drop(log);
        let log_bytes = logs.read(drv_path.base_name()).unwrap_or_default();
        envy_store::local::delete_path(&top)?;
        Ok(Captured {
            output: result?,
            log: log_bytes,
        })
    }
}
