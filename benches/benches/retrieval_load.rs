//! Load, not a benchmark: 100 clients fetch a 64 MiB piece through `/piece` at once, first
//! with a concurrency limit of 100 (every one must get all its bytes), then with a limit of
//! 50 (those over it must get 429 with `Retry-After`, the rest all their bytes). Prints
//! errors, per-request completion percentiles, aggregate throughput and peak memory.
//!
//!   cargo bench -p benches --bench retrieval_load

use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{peak_rss_mib, write_splitmix64_file};
use futures::StreamExt;
use piecestore::{FsPieceStore, PieceIndex, PieceStore, SqlitePieceIndex};
use retrieval_market::RetrievalProvider;
use retrieval_market::http::{HttpConfig, router};

const CLIENTS: usize = 100;

/// What one client got.
enum Got {
    /// All the bytes, in this time.
    Whole(Duration),
    /// 429 with a `Retry-After`.
    Busy,
    /// Anything else.
    Error(String),
}

async fn fetch(http: reqwest::Client, url: String, want: u64) -> Got {
    let t = Instant::now();
    let resp = match http.get(&url).send().await {
        Ok(r) => r,
        Err(e) => return Got::Error(e.to_string()),
    };
    match resp.status().as_u16() {
        200 => {}
        429 if resp.headers().contains_key("retry-after") => return Got::Busy,
        s => return Got::Error(format!("HTTP {s}")),
    }
    let mut body = resp.bytes_stream();
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => n += c.len() as u64,
            Err(e) => return Got::Error(e.to_string()),
        }
    }
    if n == want {
        Got::Whole(t.elapsed())
    } else {
        Got::Error(format!("{n} of {want} bytes"))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

fn main() {
    // As the binaries do: peak RSS is read at the end.
    market_core::process::limit_malloc_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsPieceStore::open(dir.path().join("pieces")).unwrap());
    let index: Arc<dyn PieceIndex> =
        Arc::new(SqlitePieceIndex::open(&dir.path().join("index.db")).unwrap());
    // A 64 MiB piece: 63.5 MiB of payload.
    let payload = dir.path().join("payload.bin");
    write_splitmix64_file(&payload, 127 << 19, 3).unwrap();
    let piece = rt.block_on(async {
        let f = tokio::fs::File::open(&payload).await.unwrap();
        store.put(Box::pin(f), None).await.unwrap()
    });
    let want = piece.padded_size.unpadded().get();
    let mut failed = false;
    for limit in [CLIENTS, CLIENTS / 2] {
        let provider = RetrievalProvider::new(
            store.clone(),
            index.clone(),
            None,
            storage_market::types::Address::new_id(1000),
        );
        let config = HttpConfig::default().with_max_concurrent(limit);
        let url = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = router(provider, config);
            let limits = market_core::http::ServerLimits::default();
            tokio::spawn(market_core::http::serve(listener, app, limits));
            format!("http://{addr}/piece/{}", piece.piece_cid)
        });
        let (got, wall) = rt.block_on(async {
            let start = Instant::now();
            let tasks: Vec<_> = (0..CLIENTS)
                .map(|_| tokio::spawn(fetch(reqwest::Client::new(), url.clone(), want)))
                .collect();
            let mut got = Vec::new();
            for t in tasks {
                got.push(t.await.unwrap());
            }
            (got, start.elapsed())
        });
        let mut times: Vec<Duration> = got
            .iter()
            .filter_map(|g| match g {
                Got::Whole(d) => Some(*d),
                _ => None,
            })
            .collect();
        times.sort();
        let busy = got.iter().filter(|g| matches!(g, Got::Busy)).count();
        let errors: Vec<&String> = got
            .iter()
            .filter_map(|g| match g {
                Got::Error(e) => Some(e),
                _ => None,
            })
            .collect();
        let bytes = times.len() as f64 * want as f64;
        println!(
            "limit {limit}, {CLIENTS} clients at once, 64 MiB piece: {} whole, {busy} got 429 \
             with Retry-After, {} errors; completion p50 {:.0} ms, p99 {:.0} ms; {:.2} GiB/s \
             aggregate over {:.2} s; peak RSS {} MiB",
            times.len(),
            errors.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            bytes / wall.as_secs_f64() / f64::from(1u32 << 30),
            wall.as_secs_f64(),
            peak_rss_mib(),
        );
        for e in errors.iter().take(5) {
            eprintln!("error: {e}");
        }
        // Below the limit nobody is refused; above it, only the excess is, and only with 429.
        let expected_busy_ok = if limit >= CLIENTS {
            busy == 0
        } else {
            busy > 0
        };
        failed |= !errors.is_empty() || !expected_busy_ok || times.len() + busy != CLIENTS;
    }
    if failed {
        std::process::exit(1);
    }
}
