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
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Wraps an open connection.
    pub fn new(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    /// Runs `f` on the connection in a blocking task. A panic in an earlier query does not
    /// poison the connection for later ones.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbTaskError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| E::from(DbTaskError(e)))?
    }
}
