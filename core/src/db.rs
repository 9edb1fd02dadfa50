//! SQLite set-up shared by the market's databases: one way to open and migrate, one way to
//! run a query off the async runtime.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// Opens `path` in WAL mode with `synchronous = FULL` (a write is on disk when the call
/// returns, so state can be acknowledged right after), then applies the `migrations` not yet
/// applied, recording progress in `PRAGMA user_version`. Migrations are append-only.
pub fn open_migrated(path: &Path, migrations: &[&str]) -> rusqlite::Result<Connection> {
    migrate(Connection::open(path)?, migrations)
}

/// [`open_migrated`] for a database that lives in memory (tests, throwaway clients).
pub fn open_in_memory_migrated(migrations: &[&str]) -> rusqlite::Result<Connection> {
    migrate(Connection::open_in_memory()?, migrations)
}

fn migrate(conn: Connection, migrations: &[&str]) -> rusqlite::Result<Connection> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, m) in migrations.iter().enumerate().skip(version.max(0) as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {m}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(conn)
}

/// The blocking task running a query panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("database task failed")]
pub struct DbTaskError(#[source] pub tokio::task::JoinError);

/// One SQLite connection shared by a store's handles; queries run on Tokio's blocking pool
/// so the runtime's workers never wait on the disk. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    /// The `db` label of its latency metric.
    name: &'static str,
    conn: Arc<Mutex<Connection>>,
    /// Writes waiting for the next group commit.
    queue: Arc<Mutex<Vec<Job>>>,
}

/// A queued write: runs inside the group's transaction and returns what reports its result
/// once the group's commit has (or has not) reached the disk.
type Job = Box<dyn FnOnce(Result<&mut Connection, &rusqlite::Error>) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Wraps an open connection.
    pub fn new(conn: Connection) -> Self {
        Self::named("sqlite", conn)
    }

    /// Wraps an open connection whose calls are timed under `db = name`
    /// ([`DB_SECONDS`](crate::metrics::DB_SECONDS)).
    pub fn named(name: &'static str, conn: Connection) -> Self {
        Self {
            name,
            conn: Arc::new(Mutex::new(conn)),
            queue: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Runs the write `f` in a transaction shared with every write queued meanwhile (group
    /// commit), and returns only once that transaction is on disk, so the result can be
    /// acknowledged. Each write runs in its own savepoint: one that fails is rolled back
    /// alone and gets its error; if the commit itself fails, every write of the group gets
    /// that error and none of them is applied. Concurrent writers share one fsync instead
    /// of paying one each.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbTaskError> + From<rusqlite::Error> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn| -> Reply {
            let conn = match conn {
                Ok(conn) => conn,
                Err(e) => {
                    let _ = tx.send(Err(E::from(copy_error(e))));
                    return Box::new(|_| {});
                }
            };
            let result = match conn.savepoint() {
                Ok(sp) => match f(&sp) {
                    Ok(v) => sp.commit().map(|()| v).map_err(E::from),
                    // Dropping the savepoint rolls this write back, and only this one.
                    Err(e) => Err(e),
                },
                Err(e) => Err(E::from(e)),
            };
            Box::new(move |commit: Option<&rusqlite::Error>| {
                let out = match (commit, result) {
                    (Some(e), Ok(_)) => Err(E::from(copy_error(e))),
                    (_, r) => r,
                };
                let _ = tx.send(out);
            })
        });
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(job);
        let (conn, queue) = (self.conn.clone(), self.queue.clone());
        // Whoever holds the connection next commits everything queued so far, this write
        // included unless an earlier holder already took it.
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            let jobs = std::mem::take(&mut *queue.lock().unwrap_or_else(|p| p.into_inner()));
            if jobs.is_empty() {
                return;
            }
            if !guard.is_autocommit() {
                // A holder that panicked mid-group left its transaction open.
                let _ = guard.execute_batch("ROLLBACK");
            }
            if let Err(e) = guard.execute_batch("BEGIN IMMEDIATE") {
                for job in jobs {
                    job(Err(&e))(None);
                }
                return;
            }
            let replies: Vec<Reply> = jobs.into_iter().map(|job| job(Ok(&mut guard))).collect();
            let commit = guard.execute_batch("COMMIT").err();
            if commit.is_some() {
                let _ = guard.execute_batch("ROLLBACK");
            }
            for reply in replies {
                reply(commit.as_ref());
            }
        })
        .await
        .map_err(|e| E::from(DbTaskError(e)))?;
        // The holder that ran this write answered before its task ended, or panicked.
        let out = rx.await.unwrap_or_else(|_| {
            Err(E::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the group commit that held this write failed".into()),
            )))
        });
        crate::metrics::db(self.name, "write", started.elapsed());
        out
    }

    /// Runs `f` on the connection in a blocking task. A panic in an earlier query does not
    /// poison the connection for later ones.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbTaskError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let conn = self.conn.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| E::from(DbTaskError(e)));
        crate::metrics::db(self.name, "call", started.elapsed());
        out?
    }
}

/// The same error for each write of a group whose commit failed.
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            Some(other.to_string()),
        ),
    }
}
