//! `Db::write`: concurrent writes share transactions, each is on disk when its call returns,
//! and one failing write is rolled back alone.

use std::sync::Arc;

use market_core::db::{Db, DbTaskError, open_migrated};

#[derive(Debug, thiserror::Error)]
enum E {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Task(#[from] DbTaskError),
    #[error("refused {0}")]
    Refused(i64),
}

const MIGRATIONS: &[&str] = &["CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_are_durable_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let db = Arc::new(Db::new(open_migrated(&path, MIGRATIONS).unwrap()));
    let mut tasks = Vec::new();
    for k in 0..400i64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.write(move |c| {
                c.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [k])?;
                // Every seventh write fails after it wrote: its row must not survive.
                if k % 7 == 3 {
                    return Err(E::Refused(k));
                }
                // Every eleventh breaks a constraint (a duplicate key).
                if k % 11 == 5 {
                    c.execute("INSERT INTO t (k, v) VALUES (?1, 'y')", [k])?;
                }
                Ok(k)
            })
            .await
        }));
    }
    let mut ok = Vec::new();
    for (k, t) in tasks.into_iter().enumerate() {
        let k = k as i64;
        match t.await.unwrap() {
            Ok(v) => {
                assert_eq!(v, k);
                ok.push(k);
            }
            Err(E::Refused(r)) => assert_eq!(r, k),
            Err(E::Sqlite(_)) => assert_eq!(k % 11, 5, "{k} failed"),
            Err(e) => panic!("{k}: {e}"),
        }
    }
    let expected: Vec<i64> = (0..400).filter(|k| k % 7 != 3 && k % 11 != 5).collect();
    assert_eq!(ok, expected);
    // What was acknowledged is in the file, read by a fresh connection.
    drop(db);
    let c = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = c.prepare("SELECT k FROM t ORDER BY k").unwrap();
    let stored: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn reads_and_writes_interleave() {
    let db = Db::new(market_core::db::open_in_memory_migrated(MIGRATIONS).unwrap());
    db.write(|c| {
        c.execute("INSERT INTO t VALUES (1, 'a')", [])
            .map_err(E::from)
    })
    .await
    .unwrap();
    let v: String = db
        .call(|c| {
            c.query_row("SELECT v FROM t WHERE k = 1", [], |r| r.get(0))
                .map_err(E::from)
        })
        .await
        .unwrap();
    assert_eq!(v, "a");
}

/// Another connection (a second process, an operator's `sqlite3`) holding the write lock
/// makes a write wait for it (SQLite busy is retried), not fail; both writes are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_out_another_connections_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let db = Db::new(open_migrated(&path, MIGRATIONS).unwrap());
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let other_path = path.clone();
    let holder = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(&other_path).unwrap();
        c.execute_batch("BEGIN IMMEDIATE; INSERT INTO t (k, v) VALUES (1, 'other');")
            .unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        c.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    let r: Result<i64, E> = db
        .write(|c| {
            c.execute("INSERT INTO t (k, v) VALUES (2, 'ours')", [])?;
            Ok(2)
        })
        .await;
    assert_eq!(
        r.unwrap(),
        2,
        "the write failed on the other connection's lock"
    );
    holder.join().unwrap();
    let rows: Vec<(i64, String)> = db
        .call(|c| {
            let mut st = c.prepare("SELECT k, v FROM t ORDER BY k")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, E>(rows)
        })
        .await
        .unwrap();
    assert_eq!(rows, vec![(1, "other".into()), (2, "ours".into())]);
}
