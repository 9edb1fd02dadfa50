//! SQLite set-up shared by the market's databases.

use std::path::Path;

use rusqlite::Connection;

/// Opens `path` in WAL mode with `synchronous = FULL` (a write is on disk when the call
/// returns, so state can be acknowledged right after), then applies the `migrations` not yet
/// applied, recording progress in `PRAGMA user_version`. Migrations are append-only.
pub fn open_migrated(path: &Path, migrations: &[&str]) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
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
