//! The store database: one SQLite file (WAL mode, so readers never wait for a writer) holding
//! the valid paths, their references, and the outputs of each known derivation. A path is
//! valid exactly when it has a row in `ValidPaths`; rows are only added after the path's
//! contents are complete on disk, in one transaction with their references.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::error::StoreError;
use crate::content_address::ContentAddress;
use crate::hash::Hash;
use crate::path_info::ValidPathInfo;
use crate::store_path::StorePath;

/// Schema version in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS Meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ValidPaths (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    path             TEXT UNIQUE NOT NULL,
    narHash          TEXT NOT NULL,
    narSize          INTEGER NOT NULL,
    registrationTime INTEGER NOT NULL,
    deriver          TEXT,
    ultimate         INTEGER NOT NULL DEFAULT 0,
    sigs             TEXT NOT NULL DEFAULT '',
    ca               TEXT
);
CREATE TABLE IF NOT EXISTS Refs (
    referrer  INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
    reference INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE RESTRICT,
    PRIMARY KEY (referrer, reference)
);
CREATE INDEX IF NOT EXISTS IndexReference ON Refs(reference);
CREATE TABLE IF NOT EXISTS DerivationOutputs (
    drv  INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
    id   TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (drv, id)
);
CREATE INDEX IF NOT EXISTS IndexDerivationOutputs ON DerivationOutputs(path);
";

/// Each valid path with its references and deriver.
pub(crate) type Graph = HashMap<StorePath, (Vec<StorePath>, Option<StorePath>)>;

pub(crate) struct Db {
    conn: Connection,
    path: PathBuf,
}

impl Db {
    fn err(&self) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Open (creating if needed) the database for `store_dir`.
    pub(crate) fn open(path: &Path, store_dir: &str) -> Result<Db, StoreError> {
        let err = |source| StoreError::Db {
            path: path.to_owned(),
            source,
        };
        // Two processes opening a new store at once race on switching it to WAL and on
        // creating the schema, and SQLite reports some of those races as "database is locked"
        // at once instead of waiting: set up under a lock file held only while opening.
        let lock_path = path.with_extension("open-lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::Io {
                path: lock_path.clone(),
                source,
            })?;
        lock.lock().map_err(|source| StoreError::Io {
            path: lock_path.clone(),
            source,
        })?;
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(600)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        // Closing the last connection would checkpoint the WAL into the database with fsyncs,
        // which on ext4 wait for every file written before them (a whole added tree): leave
        // the WAL for the next process, which reads it as it is; auto-checkpoints still run.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(err)?;
        let mut db = Db {
            conn,
            path: path.to_owned(),
        };
        let version: i64 = db
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version < SCHEMA_VERSION {
            let tx = db
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(err)?;
            tx.execute_batch(SCHEMA).map_err(err)?;
            tx.execute(
                "INSERT OR IGNORE INTO Meta (key, value) VALUES ('storeDir', ?1)",
                [store_dir],
            )
            .map_err(err)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        let recorded: String = db
            .conn
            .query_row("SELECT value FROM Meta WHERE key = 'storeDir'", [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        if recorded != store_dir {
            return Err(StoreError::WrongStoreDir {
                state: path.parent().unwrap_or(path).to_owned(),
                recorded,
                requested: store_dir.to_owned(),
            });
        }
        Ok(db)
    }

    fn parse_path(&self, base: &str) -> Result<StorePath, StoreError> {
        StorePath::from_base_name(base).map_err(|source| StoreError::BadStorePath {
            path: base.to_owned(),
            source,
        })
    }

    pub(crate) fn is_valid(&self, path: &StorePath) -> Result<bool, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM ValidPaths WHERE path = ?1")
            .map_err(self.err())?;
        stmt.exists([path.base_name()]).map_err(self.err())
    }

    pub(crate) fn query_info(&self, path: &StorePath) -> Result<Option<ValidPathInfo>, StoreError> {
        let row = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT id, narHash, narSize, registrationTime, deriver, ultimate, sigs, ca \
                     FROM ValidPaths WHERE path = ?1",
                )
                .map_err(self.err())?;
            stmt.query_row([path.base_name()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .optional()
            .map_err(self.err())?
        };
        let Some((id, nar_hash, nar_size, time, deriver, ultimate, sigs, ca)) = row else {
            return Ok(None);
        };
        let bad = |detail: String| StoreError::BadEntry {
            path: path.to_string(),
            detail,
        };
        let nar_hash = Hash::parse_prefixed(&nar_hash).map_err(|e| bad(e.to_string()))?;
        let deriver = deriver.map(|d| self.parse_path(&d)).transpose()?;
        let ca = ca
            .map(|c| ContentAddress::parse(&c).map_err(|e| bad(e.to_string())))
            .transpose()?;
        let mut references = BTreeSet::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT p.path FROM Refs r JOIN ValidPaths p ON p.id = r.reference WHERE r.referrer = ?1")
                .map_err(self.err())?;
            let rows = stmt
                .query_map([id], |r| r.get::<_, String>(0))
                .map_err(self.err())?;
            for row in rows {
                references.insert(self.parse_path(&row.map_err(self.err())?)?);
            }
        }
        Ok(Some(ValidPathInfo {
            path: path.clone(),
            deriver,
            nar_hash,
            nar_size: u64::try_from(nar_size).unwrap_or(0),
            references,
            registration_time: time,
            signatures: sigs.split_whitespace().map(str::to_owned).collect(),
            ca,
            ultimate: ultimate != 0,
        }))
    }

    /// Register paths (already complete on disk) in one transaction. Each reference must be
    /// valid already or in the same batch; paths already valid keep their row and gain any
    /// new signatures.
    pub(crate) fn register(&mut self, infos: &[ValidPathInfo]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Db {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let batch: BTreeSet<&StorePath> = infos.iter().map(|i| &i.path).collect();
        {
            let mut exists = tx
                .prepare_cached("SELECT id, sigs FROM ValidPaths WHERE path = ?1")
                .map_err(err)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO ValidPaths (path, narHash, narSize, registrationTime, deriver, ultimate, sigs, ca) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err)?;
            let mut set_sigs = tx
                .prepare_cached("UPDATE ValidPaths SET sigs = ?2 WHERE id = ?1")
                .map_err(err)?;
            let mut newly = Vec::new();
            for info in infos {
                let found: Option<(i64, String)> = exists
                    .query_row([info.path.base_name()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(err)?;
                if let Some((id, sigs)) = found {
                    let mut all: BTreeSet<&str> = sigs.split_whitespace().collect();
                    let before = all.len();
                    all.extend(info.signatures.iter().map(String::as_str));
                    if all.len() != before {
                        set_sigs
                            .execute(params![id, all.into_iter().collect::<Vec<_>>().join(" ")])
                            .map_err(err)?;
                    }
                    continue;
                }
                insert
                    .execute(params![
                        info.path.base_name(),
                        info.nar_hash.to_prefixed_nix32(),
                        i64::try_from(info.nar_size).unwrap_or(i64::MAX),
                        info.registration_time,
                        info.deriver.as_ref().map(StorePath::base_name),
                        i64::from(info.ultimate),
                        info.signatures
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(" "),
                        info.ca.map(|c| c.to_string()),
                    ])
                    .map_err(err)?;
                newly.push(info);
            }
            let mut id_of = tx
                .prepare_cached("SELECT id FROM ValidPaths WHERE path = ?1")
                .map_err(err)?;
            let mut add_ref = tx
                .prepare_cached("INSERT OR IGNORE INTO Refs (referrer, reference) VALUES (?1, ?2)")
                .map_err(err)?;
            for info in newly {
                let referrer: i64 = id_of
                    .query_row([info.path.base_name()], |r| r.get(0))
                    .map_err(err)?;
                for reference in &info.references {
                    let id: Option<i64> = id_of
                        .query_row([reference.base_name()], |r| r.get(0))
                        .optional()
                        .map_err(err)?;
                    let Some(id) = id else {
                        debug_assert!(!batch.contains(reference));
                        return Err(StoreError::MissingReference {
                            path: info.path.to_string(),
                            reference: reference.to_string(),
                        });
                    };
                    add_ref.execute(params![referrer, id]).map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }

    /// Record a derivation's output paths (the derivation must be valid).
    pub(crate) fn register_drv_outputs(
        &mut self,
        drv: &StorePath,
        outputs: &BTreeMap<String, StorePath>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Db {
            path: path.clone(),
            source,
        };
        // Immediate: a deferred transaction that reads and then writes fails at once with
        // "database is locked" when another connection wrote in between (WAL mode).
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        {
            let id: i64 = tx
                .query_row(
                    "SELECT id FROM ValidPaths WHERE path = ?1",
                    [drv.base_name()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?
                .ok_or_else(|| StoreError::InvalidPath {
                    path: drv.to_string(),
                })?;
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO DerivationOutputs (drv, id, path) VALUES (?1, ?2, ?3)",
                )
                .map_err(err)?;
            for (name, out) in outputs {
                stmt.execute(params![id, name, out.base_name()])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// A derivation's recorded outputs.
    pub(crate) fn drv_outputs(
        &self,
        drv: &StorePath,
    ) -> Result<BTreeMap<String, StorePath>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT o.id, o.path FROM DerivationOutputs o JOIN ValidPaths v ON v.id = o.drv WHERE v.path = ?1",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([drv.base_name()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(self.err())?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (name, path) = row.map_err(self.err())?;
            out.insert(name, self.parse_path(&path)?);
        }
        Ok(out)
    }

    /// The valid path with this hash part, if any.
    pub(crate) fn path_from_hash_part(
        &self,
        hash_part: &str,
    ) -> Result<Option<StorePath>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path FROM ValidPaths WHERE path >= ?1 ORDER BY path LIMIT 1")
            .map_err(self.err())?;
        let found: Option<String> = stmt
            .query_row([hash_part], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        match found {
            Some(p)
                if p.starts_with(hash_part) && p.as_bytes().get(hash_part.len()) == Some(&b'-') =>
            {
                Ok(Some(self.parse_path(&p)?))
            }
            _ => Ok(None),
        }
    }

    /// Valid paths referring to `path`.
    pub(crate) fn referrers(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.path FROM Refs r JOIN ValidPaths p ON p.id = r.referrer \
                 JOIN ValidPaths q ON q.id = r.reference WHERE q.path = ?1",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([path.base_name()], |r| r.get::<_, String>(0))
            .map_err(self.err())?;
        let mut out = BTreeSet::new();
        for row in rows {
            out.insert(self.parse_path(&row.map_err(self.err())?)?);
        }
        Ok(out)
    }

    /// Every valid path with its references and deriver: the graph gc walks.
    pub(crate) fn graph(&self) -> Result<Graph, StoreError> {
        let mut ids: HashMap<i64, StorePath> = HashMap::new();
        let mut graph = HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT id, path, deriver FROM ValidPaths")
                .map_err(self.err())?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .map_err(self.err())?;
            for row in rows {
                let (id, path, deriver) = row.map_err(self.err())?;
                let path = self.parse_path(&path)?;
                let deriver = deriver.and_then(|d| StorePath::from_base_name(&d).ok());
                ids.insert(id, path.clone());
                graph.insert(path, (Vec::new(), deriver));
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT referrer, reference FROM Refs")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .map_err(self.err())?;
        for row in rows {
            let (from, to) = row.map_err(self.err())?;
            if let (Some(from), Some(to)) = (ids.get(&from), ids.get(&to))
                && let Some(entry) = graph.get_mut(from)
            {
                entry.0.push(to.clone());
            }
        }
        Ok(graph)
    }

    /// Every valid path.
    pub(crate) fn all_valid(&self) -> Result<Vec<StorePath>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path FROM ValidPaths ORDER BY path")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            out.push(self.parse_path(&row.map_err(self.err())?)?);
        }
        Ok(out)
    }

    /// Make paths invalid (gc). The caller guarantees no remaining valid path refers to them.
    pub(crate) fn invalidate(&mut self, paths: &[StorePath]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Db {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        {
            // Drop references among the doomed first, then the rows themselves.
            let mut refs = tx
                .prepare_cached(
                    "DELETE FROM Refs WHERE referrer = (SELECT id FROM ValidPaths WHERE path = ?1)",
                )
                .map_err(err)?;
            for p in paths {
                refs.execute([p.base_name()]).map_err(err)?;
            }
            let mut rows = tx
                .prepare_cached("DELETE FROM ValidPaths WHERE path = ?1")
                .map_err(err)?;
            for p in paths {
                rows.execute([p.base_name()]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }
}
