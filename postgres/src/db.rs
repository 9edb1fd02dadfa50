//! The connection pool and migrations.

use deadpool_postgres::{Config, ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The URL or pool settings are unusable.
    #[error("postgres config: {0}")]
    Config(String),
    /// No connection could be had from the pool (the server is down or refusing).
    #[error("postgres connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("postgres: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// One schema change of a component, applied once, in order.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3…: never reused, never edited once released.
    pub version: i32,
    /// The statements (several, separated by `;`).
    pub sql: &'static str,
}

/// A pooled Postgres database. Cheap to clone.
#[derive(Clone)]
pub struct PgDb {
    pool: Pool,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb")
            .field("status", &self.pool.status())
            .finish()
    }
}

impl PgDb {
    /// A pool of at most `max_connections` to `url` (`postgres://user:pass@host:5432/db`).
    /// Connections are made on demand; call [`ping`](Self::ping) to check the server now.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, PgError> {
        let mut cfg = Config::new();
        cfg.url = Some(url.to_string());
        cfg.manager = Some(ManagerConfig {
            // A connection whose socket closed (a server restart) is dropped at checkout;
            // no test query per checkout, which would double every call's round trips.
            recycling_method: RecyclingMethod::Fast,
        });
        cfg.pool = Some(PoolConfig::new(max_connections.max(1)));
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1), NoTls)
            .map_err(|e| PgError::Config(e.to_string()))?;
        Ok(Self { pool })
    }

    /// A connection from the pool.
    pub async fn conn(&self) -> Result<deadpool_postgres::Object, PgError> {
        Ok(self.pool.get().await?)
    }

    /// One round trip: fails when the server cannot be reached or refuses us.
    pub async fn ping(&self) -> Result<(), PgError> {
        self.conn().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Applies `component`'s migrations not applied yet, each in its own transaction with
    /// its record in `market_migrations`. Instances starting together may race: the record's
    /// primary key makes the loser wait for the winner and then skip the version.
    pub async fn migrate(&self, component: &str, migrations: &[Migration]) -> Result<(), PgError> {
        let mut c = self.conn().await?;
        // Two instances creating the table at once: the loser fails on the catalog (a unique
        // violation, or "type already exists" for the table's row type) once the winner
        // commits, so the table exists and a second try sees it.
        let mut attempts = 0;
        loop {
            match c
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS market_migrations (
                        component  TEXT NOT NULL,
                        version    INTEGER NOT NULL,
                        applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                        PRIMARY KEY (component, version)
                    )",
                )
                .await
            {
                Ok(()) => break,
                Err(e) if attempts < 3 && is_creation_race(&e) => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
        for m in migrations {
            let tx = c.transaction().await?;
            let claimed = tx
                .execute(
                    "INSERT INTO market_migrations (component, version) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[&component, &m.version],
                )
                .await?;
            if claimed == 0 {
                tx.rollback().await?;
                continue;
            }
            tx.batch_execute(m.sql).await?;
            tx.commit().await?;
            tracing::info!(component, version = m.version, "postgres migration applied");
        }
        Ok(())
    }
}

/// Whether `e` is what the loser of two concurrent `CREATE ... IF NOT EXISTS` gets.
fn is_creation_race(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::UNIQUE_VIOLATION
            || *c == SqlState::DUPLICATE_OBJECT
            || *c == SqlState::DUPLICATE_TABLE
    )
}

/// Seconds since the Unix epoch, as the tables' `created_at` and `updated_at` keep them.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
