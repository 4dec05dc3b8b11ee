//! Building on Nix build machines (`builders`, in Nix's machine syntax: [`machines`]).
//!
//! [`Farm`] holds the machines of one build: their load, which are down, and their open
//! connections (one per build running there, reused by the next). [`Farm::place`] decides
//! where a derivation builds, by Nix's rules: a machine whose systems include the
//! derivation's, that supports all its `requiredSystemFeatures` and whose mandatory features
//! are all required, with a free slot, preferring the lowest load per speed factor, then the
//! fastest, then the least loaded; locally when no such machine is free and this machine can
//! (its system, a free local slot; `-j 0` has none), or first when the derivation sets
//! `preferLocalBuild`. A machine that cannot be reached is skipped for a minute, with one
//! warning.
//!
//! `ssh://` machines speak the serve protocol (`envy_store::serve`), `ssh-ng://` ones the
//! daemon protocol (`envy_store::daemon`), both over the system `ssh` ([`connection`]).

pub mod connection;
pub mod machines;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use envy_store::{Derivation, StoreDir};

pub use connection::{Connection, RemoteError};
pub use machines::{Machine, MachinesError, Protocol, parse_machines};

/// How long a machine that could not be reached is left alone.
const DOWN_FOR: Duration = Duration::from_secs(60);

/// Where a derivation builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Local,
    Remote(usize),
}

/// Why a derivation cannot build anywhere.
#[derive(Debug)]
pub struct NoPlace {
    pub reason: String,
}

struct Slots {
    local_running: usize,
    loads: Vec<usize>,
    down_until: Vec<Option<Instant>>,
}

/// The machines of one build and their state.
pub struct Farm {
    machines: Vec<Machine>,
    host_system: String,
    local_jobs: usize,
    slots: Mutex<Slots>,
    freed: Condvar,
    pools: Vec<Mutex<Vec<Connection>>>,
    known_hosts_dir: PathBuf,
}

/// What a derivation asks of a machine.
pub struct Needs {
    pub system: String,
    pub features: BTreeSet<String>,
    pub prefer_local: bool,
    /// `builtin:` builders run in envy itself.
    pub builtin: bool,
}

impl Needs {
    #[must_use]
    pub fn of(drv: &Derivation) -> Self {
        let env = |k: &str| {
            drv.env_var(k)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        Self {
            system: String::from_utf8_lossy(&drv.platform).into_owned(),
            features: env("requiredSystemFeatures")
                .map(|f| f.split_whitespace().map(String::from).collect())
                .unwrap_or_default(),
            prefer_local: env("preferLocalBuild").is_some_and(|v| v == "1"),
            builtin: drv.builder.starts_with(b"builtin:"),
        }
    }
}

/// A slot taken by [`Farm::place`]; freed on drop.
pub struct Slot<'f> {
    farm: &'f Farm,
    pub place: Place,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut slots = self.farm.slots.lock().expect("farm slots");
        match self.place {
            Place::Local => slots.local_running -= 1,
            Place::Remote(i) => slots.loads[i] -= 1,
        }
        drop(slots);
        self.farm.freed.notify_all();
    }
}

impl Farm {
    /// `local_jobs` builds at once on this machine (0: none, except `builtin:` ones, which
    /// get one slot). `known_hosts_dir` holds the host keys given in machine lines.
    #[must_use]
    pub fn new(
        machines: Vec<Machine>,
        local_jobs: usize,
        host_system: &str,
        known_hosts_dir: PathBuf,
    ) -> Self {
        let n = machines.len();
        Self {
            host_system: host_system.to_string(),
            local_jobs,
            slots: Mutex::new(Slots {
                local_running: 0,
                loads: vec![0; n],
                down_until: vec![None; n],
            }),
            freed: Condvar::new(),
            pools: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
            machines,
            known_hosts_dir,
        }
    }

    #[must_use]
    pub fn machines(&self) -> &[Machine] {
        &self.machines
    }

    /// How many builds can run at once, here and on the machines.
    #[must_use]
    pub fn capacity(&self, local_jobs: usize) -> usize {
        local_jobs.max(1) + self.machines.iter().map(|m| m.max_jobs).sum::<usize>()
    }

    fn fits(&self, m: &Machine, needs: &Needs) -> bool {
        m.supports_system(&needs.system) && m.fits_features(&needs.features)
    }

    /// Take a slot for a derivation: wait until one that fits is free.
    ///
    /// # Errors
    /// No machine (nor this one) can build it.
    pub fn place(&self, needs: &Needs) -> Result<Slot<'_>, NoPlace> {
        // Nix runs builtins in itself even with `-j 0`, one at a time at least.
        let local_cap = if needs.builtin {
            self.local_jobs.max(1)
        } else if needs.system == self.host_system {
            self.local_jobs
        } else {
            0
        };
        let mut slots = self.slots.lock().expect("farm slots");
        loop {
            let now = Instant::now();
            let local_ok = slots.local_running < local_cap;
            if local_ok && (needs.prefer_local || needs.builtin) {
                slots.local_running += 1;
                return Ok(self.slot(Place::Local));
            }
            let mut fitting = 0;
            let mut best: Option<usize> = None;
            for (i, m) in self.machines.iter().enumerate() {
                if needs.builtin
                    || !self.fits(m, needs)
                    || slots.down_until[i].is_some_and(|t| t > now)
                {
                    continue;
                }
                fitting += 1;
                if slots.loads[i] >= m.max_jobs {
                    continue;
                }
                best = match best {
                    None => Some(i),
                    Some(b) => {
                        let (lm, lb) = (slots.loads[i] as f64, slots.loads[b] as f64);
                        let (sm, sb) = (
                            f64::from(m.speed_factor),
                            f64::from(self.machines[b].speed_factor),
                        );
                        let better = lm / sm < lb / sb
                            || (lm / sm == lb / sb && (sm > sb || (sm == sb && lm < lb)));
                        Some(if better { i } else { b })
                    }
                };
            }
            if let Some(i) = best {
                slots.loads[i] += 1;
                return Ok(self.slot(Place::Remote(i)));
            }
            if local_ok {
                slots.local_running += 1;
                return Ok(self.slot(Place::Local));
            }
            if fitting == 0 && local_cap == 0 {
                return Err(NoPlace {
                    reason: self.no_place_reason(needs),
                });
            }
            // A slot frees when a build ends.
            slots = self.freed.wait(slots).expect("farm slots");
        }
    }

    fn no_place_reason(&self, needs: &Needs) -> String {
        let fitting: Vec<&str> = self
            .machines
            .iter()
            .filter(|m| self.fits(m, needs))
            .map(|m| m.uri.as_str())
            .collect();
        if !fitting.is_empty() {
            return format!(
                "the build machines for `{}` ({}) cannot be reached, and this machine cannot build it",
                needs.system,
                fitting.join(", ")
            );
        }
        let features = if needs.features.is_empty() {
            String::new()
        } else {
            format!(
                " with features {{{}}}",
                needs
                    .features
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if needs.system == self.host_system || needs.builtin {
            format!(
                "no build machine builds `{}`{features} and local builds are off (`-j 0`)",
                needs.system
            )
        } else {
            format!(
                "a `{}` is required, this is a `{}`, and no build machine declares `{}`{features}",
                needs.system, self.host_system, needs.system
            )
        }
    }

    fn slot(&self, place: Place) -> Slot<'_> {
        Slot { farm: self, place }
    }

    /// Leave machine `i` alone for a while. Returns whether it was up until now (so the
    /// caller warns once).
    pub fn mark_down(&self, i: usize) -> bool {
        let mut slots = self.slots.lock().expect("farm slots");
        let now = Instant::now();
        let was_up = slots.down_until[i].is_none_or(|t| t <= now);
        slots.down_until[i] = Some(now + DOWN_FOR);
        drop(slots);
        // Drop its idle connections: they are likely dead too.
        self.pools[i].lock().expect("pool").clear();
        self.freed.notify_all();
        was_up
    }

    /// An idle connection to machine `i`, or a new one.
    ///
    /// # Errors
    /// The machine cannot be reached or does not speak the protocol.
    pub fn connect(&self, i: usize, store_dir: &StoreDir) -> Result<Connection, RemoteError> {
        if let Some(conn) = self.pools[i].lock().expect("pool").pop() {
            return Ok(conn);
        }
        Connection::open(&self.machines[i], store_dir, &self.known_hosts_dir)
    }

    /// Give a connection that finished a command back for the next build on machine `i`.
    pub fn release(&self, i: usize, conn: Connection) {
        self.pools[i].lock().expect("pool").push(conn);
    }
}
