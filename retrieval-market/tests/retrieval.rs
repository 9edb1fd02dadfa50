//! End-to-end retrieval on loopback: pieces with ranges over HTTP, CARs by root at every
//! DAG scope, the libp2p query and transports protocols, unsealing, and malformed requests.
//!
//! Each test that does not reach under the store (to corrupt a file, say) runs twice, in
//! `sqlite_fs` (the embedded default) and in `postgres_s3` (the piece index in a real
//! PostgreSQL, the pieces in a real S3 server), as several instances would share them.

use market_core::cid::PieceCidExt;
use std::path::PathBuf;
use std::sync::Arc;

use market_core::Cid;
use market_core::host::{Host, HostConfig, PeerAddr};
use market_core::rpc::Service;
use market_core::types::Address;
use market_postgres::testing::PgServer;
use market_postgres::{PgDb, PgPieceIndex};
use piecestore::testing::S3Server;
use piecestore::unixfs::{ImportProfile, import_file};
use piecestore::{
    ByteRange, DealRecord, FsPieceStore, PieceIndex, PieceMeta, PieceReader, PieceStore,
    S3PieceStore, SqlitePieceIndex,
};
use retrieval_market::gateway::DagScope;
use retrieval_market::http::{HttpConfig, router};
use retrieval_market::types::{QueryItemStatus, QueryStatus, TransportProtocol};
use retrieval_market::{RetrievalClient, RetrievalError, RetrievalProvider, UnsealError, Unsealer};
use url::Url;

/// Bytes that do not repeat (xorshift32), so every chunk is a distinct block.
fn pattern(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as u8
        })
        .collect()
}

/// A small, deep DAG: 4 KiB chunks and 8 links per node.
const PROFILE: ImportProfile = ImportProfile {
    chunk_size: 4096,
    max_links: 8,
    ..ImportProfile::KUBO
};

/// Where a fixture keeps its piece and its index.
#[derive(Debug, Clone, Copy)]
enum Backend {
    /// A directory and a SQLite file.
    SqliteFs,
    /// An S3 bucket (s3s-fs) and a Postgres database, each a real server of its own.
    PostgresS3,
}

/// Runs each named `async fn name(backend: Backend)` as a test on both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_fs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::SqliteFs).await
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::PostgresS3).await
                }
            )*
        }
    };
}

on_both_backends!(
    piece_whole_ranged_and_verified,
    piece_chunks_cover_payload_and_padding,
    malformed_piece_requests,
    car_by_root_at_every_scope,
    car_of_large_blocks_is_complete_and_in_order,
    malformed_gateway_requests,
    unsealer_serves_pieces_the_store_dropped,
    query_and_transports_over_libp2p,
    denylisted_pieces_and_roots_get_451,
    directories_plain_and_sharded_resolve_paths,
    trustless_gateway_spec_behaviours,
);

struct Fixture {
    dir: tempfile::TempDir,
    file: Vec<u8>,
    car: Vec<u8>,
    root: Cid,
    meta: PieceMeta,
    store: Arc<dyn PieceStore>,
    /// The filesystem store, for tests that reach under it.
    fs: Option<Arc<FsPieceStore>>,
    index: Arc<dyn PieceIndex>,
    /// The servers of [`Backend::PostgresS3`], stopped when the fixture goes.
    _servers: Option<(PgServer, S3Server)>,
}

impl Fixture {
    async fn new(size: usize) -> Self {
        Self::on(Backend::SqliteFs, size).await
    }

    async fn on(backend: Backend, size: usize) -> Self {
        Self::with_profile(backend, size, PROFILE).await
    }

    async fn with_profile(backend: Backend, size: usize, profile: ImportProfile) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = pattern(size, 0x9e37_79b9);
        let src = dir.path().join("file.bin");
        std::fs::write(&src, &file).unwrap();
        let mut car = Vec::new();
        let report = import_file(&src, profile, &mut car, &mut |_| {}).unwrap();
        Self::stored(backend, dir, file, car, report.root).await
    }

    /// `car` stored as a piece and indexed.
    async fn stored(
        backend: Backend,
        dir: tempfile::TempDir,
        file: Vec<u8>,
        car: Vec<u8>,
        root: Cid,
    ) -> Self {
        let (store, fs, index, servers): (Arc<dyn PieceStore>, _, Arc<dyn PieceIndex>, _) =
            match backend {
                Backend::SqliteFs => {
                    let fs = Arc::new(FsPieceStore::open(dir.path().join("pieces")).unwrap());
                    let index = SqlitePieceIndex::open(&dir.path().join("index.db")).unwrap();
                    (fs.clone(), Some(fs), Arc::new(index), None)
                }
                Backend::PostgresS3 => {
                    let pg = PgServer::start(&dir.path().join("pg"));
                    let db = PgDb::connect(&pg.database("retrieval"), 4).unwrap();
                    let index = PgPieceIndex::open(db).await.unwrap();
                    let s3 = S3Server::start(&dir.path().join("s3"));
                    let bucket = S3PieceStore::open(&s3.bucket("pieces")).unwrap();
                    (Arc::new(bucket), None, Arc::new(index), Some((pg, s3)))
                }
            };
        let meta = store
            .put(Box::pin(std::io::Cursor::new(car.clone())), None)
            .await
            .unwrap();
        piecestore::index_payload(&*index, meta, Box::pin(std::io::Cursor::new(car.clone())))
            .await
            .unwrap();
        Self {
            dir,
            file,
            car,
            root,
            meta,
            store,
            fs,
            index,
            _servers: servers,
        }
    }

    /// The stored piece's file (filesystem fixtures only).
    fn piece_file(&self) -> PathBuf {
        let fs = self.fs.as_ref().expect("a filesystem fixture");
        fs.path_of(&self.meta.piece_cid).unwrap()
    }

    fn provider(&self) -> RetrievalProvider {
        RetrievalProvider::new(
            self.store.clone(),
            self.index.clone(),
            None,
            Address::new_id(1001),
        )
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The unpadded piece: the CAR then zeros.
    fn piece_bytes(&self) -> Vec<u8> {
        let mut b = self.car.clone();
        b.resize(self.meta.padded_size.unpadded().get() as usize, 0);
        b
    }
}

async fn serve(provider: RetrievalProvider, config: HttpConfig) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router(provider, config))
            .await
            .unwrap();
    });
    Url::parse(&format!("http://{addr}/")).unwrap()
}

fn no_progress() -> impl FnMut(u64, Option<u64>) + Send {
    |_, _| {}
}

async fn piece_whole_ranged_and_verified(backend: Backend) {
    let fx = Fixture::on(backend, 300_000).await;
    let url = serve(fx.provider(), HttpConfig::default()).await;
    let piece = fx.meta.piece_cid;
    let expected = fx.piece_bytes();
    let http = reqwest::Client::new();
    let get = |path: String, range: Option<&'static str>| {
        let mut r = http.get(url.join(&path).unwrap());
        if let Some(v) = range {
            r = r.header("Range", v);
        }
        r.send()
    };

    // Whole piece, with booster-http's headers.
    let r = get(format!("piece/{piece}"), None).await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/piece");
    assert_eq!(h["etag"], format!("\"{piece}\""));
    assert_eq!(h["cache-control"], "public, max-age=29030400, immutable");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-length"], expected.len().to_string());
    assert_eq!(r.bytes().await.unwrap(), expected);

    // gzip when asked, with its own ETag (which If-None-Match knows); never for ranges.
    let gz = |range: Option<&str>| {
        let mut r = http
            .get(url.join(&format!("piece/{piece}")).unwrap())
            .header("Accept-Encoding", "gzip");
        if let Some(v) = range {
            r = r.header("Range", v);
        }
        r.send()
    };
    let r = gz(None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["etag"], format!("\"{piece}.gz\""));
    assert!(
        r.headers()["vary"]
            .to_str()
            .unwrap()
            .eq_ignore_ascii_case("accept-encoding")
    );
    let packed = r.bytes().await.unwrap();
    assert!(packed.len() < expected.len());
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&packed[..]),
        &mut unpacked,
    )
    .unwrap();
    assert!(unpacked == expected, "gzip body is not the piece");
    let r = http
        .get(url.join(&format!("piece/{piece}")).unwrap())
        .header("If-None-Match", format!("\"{piece}.gz\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    for range in ["bytes=10-99", "bytes=0-9,20-29"] {
        let r = gz(Some(range)).await.unwrap();
        assert_eq!(r.status(), 206);
        assert!(r.headers().get("content-encoding").is_none(), "{range}");
    }

    // HEAD: headers only.
    let r = http
        .head(url.join(&format!("piece/{piece}")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], expected.len().to_string());

    // One range, crossing from the CAR into the zero padding.
    let r = get(format!("piece/{piece}"), Some("bytes=300000-"))
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 300000-{}/{}", expected.len() - 1, expected.len())
    );
    assert_eq!(r.bytes().await.unwrap(), expected[300_000..]);

    // Several ranges: multipart/byteranges.
    let r = get(format!("piece/{piece}"), Some("bytes=0-9,100-109,-5"))
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap()
        .to_string();
    let declared: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), declared);
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(text.matches(&format!("--{boundary}")).count(), 4);
    let n = expected.len();
    assert!(text.contains(&format!("Content-Range: bytes {}-{}/{n}", n - 5, n - 1)));
    let first = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&body[first..first + 10], &expected[..10]);

    // A v2 piece CID names the same piece.
    let v2 = commp::PieceCidV2::from_v1(&piece, fx.meta.payload_size)
        .unwrap()
        .to_cid();
    let r = get(format!("piece/{v2}"), Some("bytes=0-3")).await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), expected[..4]);

    // The client verifies commP while streaming.
    let client = RetrievalClient::new(None).unwrap();
    let dest = fx.path("piece.out");
    let got = client
        .fetch_piece(&url, &piece, &dest, &mut no_progress())
        .await
        .unwrap();
    assert_eq!(got.piece.piece_cid(), piece);
    assert_eq!(std::fs::read(&dest).unwrap(), expected);
}

/// The chunked piece stream: every range (payload, padding, across both, empty) gives exactly
/// its bytes, in chunks no larger than asked.
async fn piece_chunks_cover_payload_and_padding(backend: Backend) {
    use futures::StreamExt;
    let fx = Fixture::on(backend, 30_000).await;
    let provider = fx.provider();
    let piece = provider.piece(&fx.meta.piece_cid).await.unwrap().unwrap();
    let expected = fx.piece_bytes();
    let (car, end) = (fx.car.len() as u64, expected.len() as u64);
    for (start, stop) in [
        (0, end),
        (0, car),
        (1, car - 1),
        (car - 2_500, (car + end) / 2),
        (car, end),
        (car + 7, end - 3),
        (500, 500),
    ] {
        let mut chunks = provider
            .piece_chunks(&piece, ByteRange::new(start, stop), 1_000)
            .await
            .unwrap();
        let mut got = Vec::new();
        while let Some(c) = chunks.next().await {
            let c = c.unwrap();
            assert!(!c.is_empty() && c.len() <= 1_000, "{}", c.len());
            got.extend_from_slice(&c);
        }
        assert_eq!(
            got,
            expected[start as usize..stop as usize],
            "{start}..{stop}"
        );
    }
    let past = ByteRange::new(0, end + 1);
    assert!(provider.piece_chunks(&piece, past, 1_000).await.is_err());
}

async fn malformed_piece_requests(backend: Backend) {
    let fx = Fixture::on(backend, 50_000).await;
    let url = serve(fx.provider(), HttpConfig::default()).await;
    let piece = fx.meta.piece_cid;
    let http = reqwest::Client::new();
    let status = |path: String, range: Option<&'static str>| {
        let mut r = http.get(url.join(&path).unwrap());
        if let Some(v) = range {
            r = r.header("Range", v);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, body) = status("piece/not-a-cid".into(), None).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("invalid piece CID"));
    let (s, _) = status(format!("piece/{}", fx.root), None).await;
    assert_eq!(s, 400, "a payload CID is not a piece CID");
    let unknown = commp::commp(&[7u8; 1000]).unwrap().piece_cid();
    let (s, body) = status(format!("piece/{unknown}"), None).await;
    assert_eq!(s, 404);
    assert!(body.contains("not found"));
    let (s, _) = status(format!("piece/{piece}"), Some("bytes=99999999-")).await;
    assert_eq!(s, 416);
    let (s, _) = status(format!("piece/{piece}"), Some("bytes=9-1")).await;
    assert_eq!(s, 416);
    let (s, _) = status(format!("piece/{piece}"), Some("lines=1-2")).await;
    assert_eq!(s, 416);
    // A 10 KB "CID" gets its refusal without being echoed back whole.
    let long = format!("baga{}", "q".repeat(10_000));
    let (s, body) = status(format!("piece/{long}"), None).await;
    assert_eq!(s, 400);
    assert!(body.len() < 400, "{} bytes echoed", body.len());
}

async fn car_by_root_at_every_scope(backend: Backend) {
    let fx = Fixture::on(backend, 200_000).await;
    let url = serve(fx.provider(), HttpConfig::default()).await;
    let client = RetrievalClient::new(None).unwrap();
    let leaves = 200_000usize.div_ceil(4096);

    // all: the whole DAG, verified and exported to the original file.
    let car = fx.path("all.car");
    let got = client
        .fetch_car(&url, &fx.root, DagScope::All, &car, &mut no_progress())
        .await
        .unwrap();
    assert!(got.blocks as usize > leaves);
    assert_eq!(
        std::fs::read(&car).unwrap(),
        fx.car,
        "same blocks in the same order"
    );
    let out = fx.path("all.out");
    RetrievalClient::export(&car, &fx.root, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), fx.file);

    // HEAD of a CAR: the GET's headers, and no length claimed for a body of unknown size.
    let head_url = url.join(&format!("ipfs/{}?format=car", fx.root)).unwrap();
    let get = reqwest::get(head_url.clone()).await.unwrap();
    let head = reqwest::Client::new().head(head_url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-type"],
        get.headers()["content-type"]
    );
    assert_eq!(head.headers()["etag"], get.headers()["etag"]);
    assert!(
        head.headers().get("content-length").is_none(),
        "{:?}",
        head.headers()
    );

    // entity of a file: the same blocks.
    let car = fx.path("entity.car");
    let got = client
        .fetch_car(&url, &fx.root, DagScope::Entity, &car, &mut no_progress())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&car).unwrap(), fx.car);
    assert!(got.blocks as usize > leaves);

    // block: the root alone.
    let car = fx.path("block.car");
    let got = client
        .fetch_car(&url, &fx.root, DagScope::Block, &car, &mut no_progress())
        .await
        .unwrap();
    assert_eq!(got.blocks, 1);

    // entity-bytes: only the leaves covering the range (plus the nodes above them).
    let http = reqwest::Client::new();
    let r = http
        .get(
            url.join(&format!(
                "ipfs/{}?dag-scope=entity&entity-bytes=0:4095",
                fx.root
            ))
            .unwrap(),
        )
        .header("Accept", "application/vnd.ipld.car")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.ipld.car;version=1;order=dfs")
    );
    let body = r.bytes().await.unwrap();
    let mut n = 0;
    let mut ix = piecestore::CarIndexer::new();
    ix.update(&body, &mut |_| n += 1).unwrap();
    ix.finish().unwrap();
    // Depth 3 over 49 leaves with 8 links: root, one node per level, one leaf.
    assert!((2..=5).contains(&n), "{n} blocks for the first chunk");

    // raw: the root block's bytes.
    let r = http
        .get(url.join(&format!("ipfs/{}", fx.root)).unwrap())
        .header("Accept", "application/vnd.ipld.raw")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/vnd.ipld.raw");
    let block = r.bytes().await.unwrap();
    let root = fx.root;
    piecestore::unixfs::verify_block(&root, &block).unwrap();
}

/// Blocks of 1 MiB: the walk reads ahead fewer blocks than it has links (its byte budget),
/// and the CAR still holds every block once, in order.
async fn car_of_large_blocks_is_complete_and_in_order(backend: Backend) {
    let profile = ImportProfile {
        chunk_size: 1 << 20,
        max_links: 174,
        ..ImportProfile::KUBO
    };
    let fx = Fixture::with_profile(backend, 20 << 20, profile).await;
    let url = serve(fx.provider(), HttpConfig::default()).await;
    let client = RetrievalClient::new(None).unwrap();
    let car = fx.path("all.car");
    let got = client
        .fetch_car(&url, &fx.root, DagScope::All, &car, &mut no_progress())
        .await
        .unwrap();
    assert_eq!(got.blocks, 21, "the root and 20 leaves");
    assert_eq!(std::fs::read(&car).unwrap(), fx.car);

    // Under a tight read budget shared with other retrievals the walk reads ahead less
    // (one 1 MiB block at a time) and the CAR is still whole and in order.
    let tight = fx.provider().with_read_budget(3 << 20);
    let others: Vec<_> = (0..4).map(|_| tight.read_share()).collect();
    assert_eq!(
        others[0].bytes(8 << 20),
        retrieval_market::provider::MIN_CHUNK,
        "four retrievals split 3 MiB down to the floor, and so does a fifth"
    );
    let url = serve(tight.clone(), HttpConfig::default()).await;
    let car = fx.path("tight.car");
    let got = client
        .fetch_car(&url, &fx.root, DagScope::All, &car, &mut no_progress())
        .await
        .unwrap();
    assert_eq!(got.blocks, 21);
    assert_eq!(std::fs::read(&car).unwrap(), fx.car);
    drop(others);
    assert_eq!(
        tight.read_share().bytes(8 << 20),
        1 << 20,
        "alone: a third of 3 MiB"
    );
}

async fn malformed_gateway_requests(backend: Backend) {
    let fx = Fixture::on(backend, 20_000).await;
    let url = serve(fx.provider(), HttpConfig::default()).await;
    let http = reqwest::Client::new();
    let get = |path: String, accept: &'static str| {
        let r = http.get(url.join(&path).unwrap()).header("Accept", accept);
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let car = "application/vnd.ipld.car";
    assert_eq!(get("ipfs/zzz".into(), car).await.0, 400);
    assert_eq!(
        get(format!("ipfs/{}?dag-scope=most", fx.root), car).await.0,
        400
    );
    assert_eq!(get(format!("ipfs/{}", fx.root), "text/html").await.0, 406);
    let unknown = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    let (s, body) = get(format!("ipfs/{unknown}"), car).await;
    assert_eq!(s, 404);
    assert!(body.contains("not found"), "{body}");
    let (s, body) = get(format!("ipfs/{}/no/such/path", fx.root), car).await;
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("not a directory"));
    let long = format!("bafy{}", "q".repeat(10_000));
    let (s, body) = get(format!("ipfs/{long}"), car).await;
    assert_eq!(s, 400);
    assert!(body.len() < 400, "{} bytes echoed", body.len());
    let (s, body) = get(
        format!("ipfs/{}?dag-scope={}", fx.root, "x".repeat(10_000)),
        car,
    )
    .await;
    assert_eq!(s, 400);
    assert!(body.len() < 400, "{} bytes echoed", body.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_answers_429() {
    let fx = Fixture::new(4 << 20).await;
    let url = serve(fx.provider(), HttpConfig::default().with_max_concurrent(1)).await;
    let piece_url = url.join(&format!("piece/{}", fx.meta.piece_cid)).unwrap();
    let http = reqwest::Client::new();
    // Hold the first response's body unread so its permit stays taken.
    let first = http.get(piece_url.clone()).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let second = http.get(piece_url.clone()).send().await.unwrap();
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(
        first.bytes().await.unwrap().len() as u64,
        fx.meta.padded_size.unpadded().get()
    );
    // The permit is back once the body is done.
    let mut ok = false;
    for _ in 0..50 {
        if http.head(piece_url.clone()).send().await.unwrap().status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_piece_is_refused_by_the_client() {
    let fx = Fixture::new(100_000).await;
    let path = fx.piece_file();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5000] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let url = serve(fx.provider(), HttpConfig::default()).await;
    let client = RetrievalClient::new(None).unwrap();
    let dest = fx.path("bad.piece");
    let err = client
        .fetch_piece(&url, &fx.meta.piece_cid, &dest, &mut no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, RetrievalError::CommPMismatch { .. }), "{err}");
    assert!(!dest.exists());
    let car = fx.path("bad.car");
    let err = client
        .fetch_car(&url, &fx.root, DagScope::All, &car, &mut no_progress())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RetrievalError::Dag(_) | RetrievalError::Transport(_)),
        "{err}"
    );
    assert!(!car.exists());
}

/// A sealer stand-in keeping unsealed pieces in a directory by sector number.
struct DirUnsealer(PathBuf);

#[async_trait::async_trait]
impl Unsealer for DirUnsealer {
    async fn unsealed(
        &self,
        _piece: &Cid,
        deal: &DealRecord,
        range: ByteRange,
    ) -> Result<Option<PieceReader>, UnsealError> {
        let Ok(bytes) = std::fs::read(self.0.join(deal.sector.to_string())) else {
            return Ok(None);
        };
        let slice = bytes[range.start as usize..range.end as usize].to_vec();
        Ok(Some(Box::pin(std::io::Cursor::new(slice))))
    }
}

async fn unsealer_serves_pieces_the_store_dropped(backend: Backend) {
    let fx = Fixture::on(backend, 60_000).await;
    let piece = fx.meta.piece_cid;
    let sectors = fx.path("sectors");
    std::fs::create_dir_all(&sectors).unwrap();
    std::fs::write(sectors.join("7"), fx.piece_bytes()).unwrap();
    fx.index
        .add_deal(
            &piece,
            DealRecord {
                miner: "f01001".into(),
                deal_id: 42,
                sector: 7,
                offset: 0,
                length: fx.meta.padded_size.get(),
            },
        )
        .await
        .unwrap();
    fx.store.delete(&piece).await.unwrap();
    let provider = RetrievalProvider::new(
        fx.store.clone(),
        fx.index.clone(),
        Some(Arc::new(DirUnsealer(sectors))),
        Address::new_id(1001),
    );
    let url = serve(provider, HttpConfig::default()).await;
    let client = RetrievalClient::new(None).unwrap();
    let dest = fx.path("unsealed.piece");
    client
        .fetch_piece(&url, &piece, &dest, &mut no_progress())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), fx.piece_bytes());
    let car = fx.path("unsealed.car");
    client
        .fetch_car(&url, &fx.root, DagScope::All, &car, &mut no_progress())
        .await
        .unwrap();
}

/// A libp2p host serving the retrieval protocols.
async fn retrieval_host(provider: RetrievalProvider) -> (PeerAddr, Host, Service) {
    let host = Host::start(
        libp2p::identity::Keypair::generate_ed25519(),
        HostConfig::default().with_listen(["/ip4/127.0.0.1/tcp/0".parse().unwrap()]),
    )
    .await
    .unwrap();
    let service = retrieval_market::network::serve(&host, provider).unwrap();
    (host.addr(), host, service)
}

async fn query_and_transports_over_libp2p(backend: Backend) {
    let fx = Fixture::on(backend, 30_000).await;
    let provider = fx.provider();
    let url = serve(provider.clone(), HttpConfig::default()).await;
    provider.set_transports(vec![TransportProtocol::new(
        "http",
        &[retrieval_market::client::url_to_multiaddr(&url).unwrap()],
    )]);
    let (peer, _host, _service) = retrieval_host(provider).await;
    let client_host = Host::dialer(
        libp2p::identity::Keypair::generate_ed25519(),
        HostConfig::default(),
    )
    .unwrap();
    let client = RetrievalClient::new(Some(client_host.clone())).unwrap();

    let answer = client.query(&peer, fx.root, None).await.unwrap();
    assert_eq!(answer.status, QueryStatus::AVAILABLE);
    assert_eq!(answer.piece_cid_found, QueryItemStatus::AVAILABLE);
    assert_eq!(answer.size, fx.meta.padded_size.unpadded().get());
    assert_eq!(answer.payment_address, Address::new_id(1001));
    assert_eq!(answer.max_payment_interval, 1 << 20);

    let other_piece = commp::commp(&[1u8; 500]).unwrap().piece_cid();
    let answer = client
        .query(&peer, fx.root, Some(other_piece))
        .await
        .unwrap();
    assert_eq!(answer.status, QueryStatus::UNAVAILABLE);
    let unknown: Cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        .parse()
        .unwrap();
    let answer = client.query(&peer, unknown, None).await.unwrap();
    assert_eq!(answer.status, QueryStatus::UNAVAILABLE);
    assert!(answer.message.contains("not found"));

    assert_eq!(client.http_url(&peer).await.unwrap(), url);

    // A Lotus inline root (a 126-byte identity multihash, as `lotus client import` gives every
    // file of (1 MiB, 2 MiB]) is a legal payload CID: it gets an answer, not a reset.
    let inline = Cid::new_v1(
        0x55,
        market_core::cid::Multihash::wrap(0, &[9u8; 126]).unwrap(),
    );
    let answer = client.query(&peer, inline, None).await.unwrap();
    assert_ne!(answer.status, QueryStatus::ERROR);

    // Bytes that are no query get an error answer naming the reason.
    let mut stream = client_host
        .open(&peer, retrieval_market::network::QUERY_PROTOCOL)
        .await
        .unwrap();
    use futures::AsyncWriteExt;
    stream.write_all(&[0xa1, 0x61, b'x', 0x01]).await.unwrap();
    stream.flush().await.unwrap();
    let bytes = market_core::cbor::read_item(&mut stream, 1 << 16)
        .await
        .unwrap();
    let answer: retrieval_market::types::QueryResponse =
        market_core::cbor::from_slice(&bytes, 1 << 16).unwrap();
    assert_eq!(answer.status, QueryStatus::ERROR);
    assert!(
        answer.message.contains("malformed query"),
        "{}",
        answer.message
    );
}

async fn denylisted_pieces_and_roots_get_451(backend: Backend) {
    use retrieval_market::denylist::{Denylist, anchor};
    let fx = Fixture::on(backend, 50_000).await;
    let list = Denylist::new();
    let url = serve(
        fx.provider(),
        HttpConfig::default().with_denylist(Some(list.clone())),
    )
    .await;
    let piece = fx.meta.piece_cid;
    let v2 = commp::PieceCidV2::from_v1(&piece, fx.meta.payload_size)
        .unwrap()
        .to_cid();
    let status = |path: String| {
        let u = url.join(&path).unwrap();
        async move { reqwest::get(u).await.unwrap().status().as_u16() }
    };
    let root_path = format!("ipfs/{}?format=car", fx.root);

    // Until a list is loaded nothing is served.
    assert_eq!(status(format!("piece/{piece}")).await, 503);
    let r = reqwest::get(url.join(&root_path).unwrap()).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "30");

    // A list file naming the payload root (as its CIDv1 anchor), loaded like a URL would be.
    let file = fx.path("denylist.json");
    let entry = |c: &Cid| format!("{{\"anchor\":\"{}\"}}", hex::encode(anchor(c)));
    std::fs::write(&file, format!("[{}]", entry(&fx.root))).unwrap();
    let http = reqwest::Client::new();
    let sources = vec![file.to_string_lossy().into_owned()];
    assert_eq!(list.load(&http, &sources).await.unwrap(), 1);
    assert_eq!(status(root_path.clone()).await, 451);
    assert_eq!(status(format!("piece/{piece}")).await, 200);

    // The piece listed by its v1 CID is refused under v1 and v2; the root is served again.
    std::fs::write(&file, format!("[{}]", entry(&piece))).unwrap();
    list.load(&http, &sources).await.unwrap();
    assert_eq!(status(format!("piece/{piece}")).await, 451);
    assert_eq!(status(format!("piece/{v2}")).await, 451);
    assert_eq!(status(root_path.clone()).await, 200);

    // A block deep in the DAG: the root's own block is served, a CAR reaching the listed
    // block breaks off rather than ending short, and the block itself gets 451.
    let mut blocks = Vec::new();
    let mut indexer = piecestore::CarIndexer::new();
    indexer
        .update(&fx.car, &mut |e| blocks.push(e.cid))
        .unwrap();
    let leaf = *blocks.last().unwrap();
    std::fs::write(&file, format!("[{}]", entry(&leaf))).unwrap();
    list.load(&http, &sources).await.unwrap();
    assert_eq!(status(format!("{root_path}&dag-scope=block")).await, 200);
    let r = reqwest::get(url.join(&root_path).unwrap()).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.bytes().await.is_err(),
        "a CAR through a listed block must break off"
    );
    assert_eq!(status(format!("ipfs/{leaf}?format=raw")).await, 451);

    // A list that no longer parses leaves the one in force.
    std::fs::write(&file, "[{").unwrap();
    assert!(list.load(&http, &sources).await.is_err());
    assert_eq!(status(format!("ipfs/{leaf}?format=raw")).await, 451);
}

/// A stand-in provider forwarding `/piece/` to `target`: it records each request's `Range`
/// and, with `cut_after`, breaks every body off after that many bytes.
async fn proxy(
    target: Url,
    cut_after: Option<usize>,
    ranges: Arc<std::sync::Mutex<Vec<Option<String>>>>,
) -> Url {
    use axum::http::HeaderMap;
    use futures::StreamExt;
    let app = axum::Router::new().route(
        "/piece/{cid}",
        axum::routing::get(
            move |axum::extract::Path(cid): axum::extract::Path<String>, headers: HeaderMap| {
                let (target, ranges) = (target.clone(), ranges.clone());
                async move {
                    let range = headers
                        .get("range")
                        .map(|v| v.to_str().unwrap().to_string());
                    ranges.lock().unwrap().push(range.clone());
                    let mut req =
                        reqwest::Client::new().get(target.join(&format!("piece/{cid}")).unwrap());
                    if let Some(r) = range {
                        req = req.header("range", r);
                    }
                    let resp = req.send().await.unwrap();
                    let mut out = axum::http::Response::builder().status(resp.status().as_u16());
                    for (k, v) in resp.headers() {
                        out = out.header(k.as_str(), v.as_bytes());
                    }
                    let mut sent = 0usize;
                    let body = resp.bytes_stream().map(move |chunk| {
                        let chunk = chunk.map_err(std::io::Error::other)?;
                        match cut_after {
                            Some(n) if sent + chunk.len() > n => {
                                Err(std::io::Error::other("cut off"))
                            }
                            _ => {
                                sent += chunk.len();
                                Ok(chunk)
                            }
                        }
                    });
                    out.body(axum::body::Body::from_stream(body)).unwrap()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Url::parse(&format!("http://{addr}/")).unwrap()
}

/// A piece from several providers: a dead one is skipped, one that breaks off mid-body is
/// continued by the next with a Range from the byte it stopped at, one serving other bytes is
/// caught by commP and the next starts over; and when all fail, each failure is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piece_fetch_falls_back_and_resumes_across_providers() {
    use retrieval_market::client::HttpProvider;
    let fx = Fixture::new(300_000).await;
    let piece = fx.meta.piece_cid;
    let good = serve(fx.provider(), HttpConfig::default()).await;
    let log = || Arc::new(std::sync::Mutex::new(Vec::new()));
    let (cut_log, good_log) = (log(), log());
    let cutter = proxy(good.clone(), Some(100_000), cut_log.clone()).await;
    let recorded = proxy(good.clone(), None, good_log.clone()).await;
    let dead = Url::parse(&format!("http://127.0.0.1:{}/", free_port())).unwrap();
    let p = |id: &str, u: &Url| HttpProvider::new(id, u.clone());
    let client = RetrievalClient::new(None).unwrap();
    let dest = fx.path("resumed.piece");
    let (got, used) = client
        .fetch_piece_from(
            &[p("dead", &dead), p("cutter", &cutter), p("good", &recorded)],
            &piece,
            &dest,
            &mut no_progress(),
        )
        .await
        .unwrap();
    assert_eq!(used, 2);
    assert_eq!(got.piece.piece_cid(), piece);
    assert_eq!(std::fs::read(&dest).unwrap(), fx.piece_bytes());
    assert_eq!(*cut_log.lock().unwrap(), [None]);
    let resumed = good_log.lock().unwrap().clone();
    assert_eq!(resumed.len(), 1);
    let from: u64 = resumed[0]
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not resumed with a Range: {resumed:?}"));
    assert!(from > 0 && from <= 100_000, "resumed at {from}");

    // Other bytes (a corrupted copy) first: caught, and the next provider starts over.
    let bad = Fixture::new(300_000).await;
    let path = bad.piece_file();
    let mut bytes = std::fs::read(&path).unwrap();
    // Past where the cutter stops, so that continuing from it is caught too.
    bytes[200_000] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let corrupt = serve(bad.provider(), HttpConfig::default()).await;
    let dest = fx.path("restarted.piece");
    let (_, used) = client
        .fetch_piece_from(
            &[p("corrupt", &corrupt), p("good", &good)],
            &piece,
            &dest,
            &mut no_progress(),
        )
        .await
        .unwrap();
    assert_eq!(used, 1);
    assert_eq!(std::fs::read(&dest).unwrap(), fx.piece_bytes());

    // Nobody delivers: every failure is named, nothing is left behind.
    let dest = fx.path("failed.piece");
    let err = client
        .fetch_piece_from(
            &[
                p("dead", &dead),
                p("cutter", &cutter),
                p("corrupt", &corrupt),
            ],
            &piece,
            &dest,
            &mut no_progress(),
        )
        .await
        .unwrap_err();
    let RetrievalError::AllProvidersFailed(failures) = &err else {
        panic!("{err}");
    };
    let names: Vec<_> = failures.iter().map(|f| f.provider.as_str()).collect();
    assert_eq!(names, ["dead", "cutter", "corrupt"]);
    assert!(matches!(
        failures[2].error,
        RetrievalError::CommPMismatch { .. }
    ));
    assert!(!dest.exists());
    assert!(!fx.path("failed.piece.partial").exists());
    let err = client
        .fetch_piece_from(&[], &piece, &dest, &mut no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, RetrievalError::NoProviders), "{err}");

    // CARs fall back too.
    let car = fx.path("fallback.car");
    let (f, used) = client
        .fetch_car_from(
            &[p("dead", &dead), p("corrupt", &corrupt), p("good", &good)],
            &fx.root,
            DagScope::All,
            &car,
            &mut no_progress(),
        )
        .await
        .unwrap();
    assert_eq!(used, 2);
    assert!(f.blocks > 10);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The blocks of a CAR body in order.
fn car_sections(car: &[u8]) -> Vec<(Cid, Vec<u8>)> {
    let mut at = Vec::new();
    let mut ix = piecestore::CarIndexer::new();
    ix.update(car, &mut |e| at.push((e.cid, e.offset, e.size)))
        .unwrap();
    ix.finish().unwrap();
    at.into_iter()
        .map(|(c, o, s)| {
            let data = car[o as usize..(o + s) as usize].to_vec();
            piecestore::unixfs::verify_block(&c, &data).unwrap();
            (c, data)
        })
        .collect()
}

fn unixfs_kind(cid: &Cid, data: &[u8]) -> Option<piecestore::dagpb::UnixFsKind> {
    (cid.codec() == piecestore::dagpb::DAG_PB).then(|| {
        let node = piecestore::unixfs::decode_node(cid, data).unwrap();
        piecestore::unixfs::decode_unixfs(cid, &node).unwrap().kind
    })
}

/// A stored directory tree, one subdirectory of it HAMT-sharded: paths resolve through
/// plain and sharded directories with the blocks of the path in the CAR, `entity` of a
/// sharded directory is its shard nodes, and the client writes the whole tree back out.
async fn directories_plain_and_sharded_resolve_paths(backend: Backend) {
    use piecestore::dagpb::UnixFsKind;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tree");
    std::fs::create_dir_all(src.join("big")).unwrap();
    std::fs::create_dir_all(src.join("docs")).unwrap();
    for i in 0..300 {
        std::fs::write(
            src.join(format!("big/file-{i:03}.txt")),
            format!("entry {i}\n"),
        )
        .unwrap();
    }
    std::fs::write(src.join("docs/readme.txt"), "read me\n").unwrap();
    let data = pattern(50_000, 7);
    std::fs::write(src.join("data.bin"), &data).unwrap();
    let profile = ImportProfile {
        shard_above: 4096,
        ..PROFILE
    };
    let mut car = Vec::new();
    let report = piecestore::directory::import_dir(&src, profile, &mut car, &mut |_| {}).unwrap();
    let fx = Fixture::stored(backend, dir, Vec::new(), car.clone(), report.root).await;
    let url = serve(fx.provider(), HttpConfig::default()).await;
    let http = reqwest::Client::new();
    let car_of = |path: String| {
        let url = url.join(&path).unwrap();
        let http = http.clone();
        async move {
            let r = http
                .get(url)
                .header("Accept", "application/vnd.ipld.car")
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.bytes().await.unwrap().to_vec())
        }
    };
    let shards: Vec<Cid> = car_sections(&car)
        .into_iter()
        .filter(|(c, d)| unixfs_kind(c, d) == Some(UnixFsKind::HamtShard))
        .map(|(c, _)| c)
        .collect();
    assert!(shards.len() > 1, "big/ has sub-shards");
    let root = report.root;

    // A file through the sharded directory: root, big's shards on the way, the file.
    let (status, body) = car_of(format!("ipfs/{root}/big/file-123.txt")).await;
    assert_eq!(status, 200);
    let blocks = car_sections(&body);
    assert_eq!(blocks[0].0, root);
    let (last, last_data) = blocks.last().unwrap();
    assert_eq!(last_data, b"entry 123\n");
    assert_eq!(last.codec(), piecestore::dagpb::RAW);
    let on_path = &blocks[1..blocks.len() - 1];
    assert!(!on_path.is_empty());
    assert!(on_path.iter().all(|(c, _)| shards.contains(c)));

    // A name the shard does not hold, and a path under a file.
    let (status, _) = car_of(format!("ipfs/{root}/big/file-300.txt")).await;
    assert_eq!(status, 404);
    let (status, _) = car_of(format!("ipfs/{root}/docs/readme.txt/x")).await;
    assert_eq!(status, 404);

    // entity of the sharded directory: the path, then every shard node and no entry.
    let (status, body) = car_of(format!("ipfs/{root}/big?dag-scope=entity")).await;
    assert_eq!(status, 200);
    let blocks = car_sections(&body);
    assert_eq!(blocks[0].0, root);
    let mut got: Vec<Cid> = blocks[1..].iter().map(|(c, _)| *c).collect();
    got.sort();
    let mut want = shards.clone();
    want.sort();
    assert_eq!(got, want);

    // block of it: the path and its root shard alone.
    let (status, body) = car_of(format!("ipfs/{root}/big?dag-scope=block")).await;
    assert_eq!(status, 200);
    let blocks = car_sections(&body);
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        unixfs_kind(&blocks[1].0, &blocks[1].1),
        Some(UnixFsKind::HamtShard)
    );

    // A multi-block file through a plain directory, by entity-bytes.
    let (status, body) = car_of(format!(
        "ipfs/{root}/data.bin?dag-scope=entity&entity-bytes=0:99"
    ))
    .await;
    assert_eq!(status, 200);
    let blocks = car_sections(&body);
    assert_eq!(blocks[0].0, root);
    assert!(blocks.len() < 50_000 / 4096, "only the first leaf's branch");

    // The whole tree: same CAR, exported back to the same files.
    let client = RetrievalClient::new(None).unwrap();
    let all = fx.path("all.car");
    client
        .fetch_car(&url, &root, DagScope::All, &all, &mut no_progress())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&all).unwrap(), car);
    let out = fx.path("out");
    let tree = RetrievalClient::export(&all, &root, &out).await.unwrap();
    assert_eq!((tree.files, tree.directories), (302, 3));
    assert_eq!(std::fs::read(out.join("data.bin")).unwrap(), data);
    assert_eq!(
        std::fs::read_to_string(out.join("big/file-042.txt")).unwrap(),
        "entry 42\n"
    );
    assert!(!fx.path("out.partial").exists());
}

/// The trustless-gateway spec's behaviours, one by one: the probe CID, format negotiation
/// (400 with neither `format` nor `Accept`), `dups` (n unless asked, `car-dups` winning over
/// `Accept`), `entity-bytes` implying `entity` and ignored on a directory, no path for raw
/// blocks, `only-if-cached`, `/ipns/`, headers, and 404 for an unknown root.
async fn trustless_gateway_spec_behaviours(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tree");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), "same\n").unwrap();
    std::fs::write(src.join("b.txt"), "same\n").unwrap();
    std::fs::write(src.join("c.bin"), pattern(40_000, 5)).unwrap();
    let mut car = Vec::new();
    let report = piecestore::directory::import_dir(&src, PROFILE, &mut car, &mut |_| {}).unwrap();
    let fx = Fixture::stored(backend, dir, Vec::new(), car, report.root).await;
    let url = serve(fx.provider(), HttpConfig::default()).await;
    let root = report.root;
    let http = reqwest::Client::new();
    let get = |path: String, accept: Option<&'static str>| {
        let mut r = http.get(url.join(&path).unwrap());
        if let Some(a) = accept {
            r = r.header("Accept", a);
        }
        async move {
            let r = r.send().await.unwrap();
            let (status, headers) = (r.status(), r.headers().clone());
            (status, headers, r.bytes().await.unwrap().to_vec())
        }
    };
    const CAR: Option<&str> = Some("application/vnd.ipld.car");

    // The probe: the empty identity CID.
    let (s, h, body) = get("ipfs/bafkqaaa?format=raw".into(), None).await;
    assert_eq!((s.as_u16(), body.len()), (200, 0));
    assert_eq!(h["content-type"], "application/vnd.ipld.raw");
    let (s, _, body) = get("ipfs/bafkqaaa?format=car".into(), None).await;
    assert_eq!(s, 200);
    let mut ix = piecestore::CarIndexer::new();
    let mut n = 0;
    ix.update(&body, &mut |_| n += 1).unwrap();
    assert_eq!(
        ix.finish().unwrap(),
        vec!["bafkqaaa".parse::<Cid>().unwrap()]
    );
    assert_eq!(n, 0, "no identity block in a CAR");

    // Neither format nor Accept: 400 (sent by hand: HTTP clients add `Accept: */*`).
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(
        format!("GET /ipfs/{root} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // A wildcard gets a CAR, with every parameter spelled out.
    let (s, h, _) = get(format!("ipfs/{root}"), Some("*/*")).await;
    assert_eq!(s, 200);
    assert_eq!(
        h["content-type"],
        "application/vnd.ipld.car;version=1;order=dfs;dups=n"
    );
    assert_eq!(
        h["content-disposition"],
        format!("attachment; filename=\"{root}.car\"").as_str()
    );

    // dups: the repeated leaf once unless asked for, and the query wins over Accept.
    let leaf = piecestore::unixfs::block_cid(
        piecestore::dagpb::RAW,
        piecestore::unixfs::DagHash::Sha256,
        0,
        b"same\n",
    );
    let count = |body: &[u8]| {
        car_sections(body)
            .iter()
            .filter(|(c, _)| *c == leaf)
            .count()
    };
    let (_, h, body) = get(format!("ipfs/{root}"), CAR).await;
    assert_eq!(count(&body), 1);
    assert!(h["content-type"].to_str().unwrap().ends_with("dups=n"));
    let (_, h, body) = get(
        format!("ipfs/{root}"),
        Some("application/vnd.ipld.car;version=1;order=dfs;dups=y"),
    )
    .await;
    assert_eq!(count(&body), 2);
    assert!(h["content-type"].to_str().unwrap().ends_with("dups=y"));
    let (_, h, body) = get(
        format!("ipfs/{root}?car-dups=n"),
        Some("application/vnd.ipld.car;dups=y"),
    )
    .await;
    assert_eq!(count(&body), 1);
    assert!(h["content-type"].to_str().unwrap().ends_with("dups=n"));
    let (s, _, _) = get(format!("ipfs/{root}?format=car&car-version=2"), None).await;
    assert_eq!(s, 406);

    // entity-bytes implies entity; ETags differ by scope and range.
    let (s, h_all, all) = get(format!("ipfs/{root}/c.bin"), CAR).await;
    assert_eq!(s, 200);
    let (s, h_range, ranged) = get(format!("ipfs/{root}/c.bin?entity-bytes=0:10"), CAR).await;
    assert_eq!(s, 200);
    assert!(car_sections(&ranged).len() < car_sections(&all).len());
    assert_ne!(h_all["etag"], h_range["etag"]);
    let (_, h_entity, _) = get(format!("ipfs/{root}/c.bin?dag-scope=entity"), CAR).await;
    assert_ne!(h_entity["etag"], h_all["etag"]);
    assert_ne!(h_entity["etag"], h_range["etag"]);
    // On a directory entity-bytes means nothing: the same blocks as entity.
    let (_, _, entity) = get(format!("ipfs/{root}?dag-scope=entity"), CAR).await;
    let (s, _, with_range) = get(format!("ipfs/{root}?entity-bytes=5:10"), CAR).await;
    assert_eq!(s, 200);
    assert_eq!(entity, with_range);
    assert_eq!(car_sections(&entity).len(), 1, "the directory node alone");

    // A raw block is asked for by CID alone.
    let (s, _, _) = get(format!("ipfs/{root}/a.txt?format=raw"), None).await;
    assert_eq!(s, 400);
    let (s, h, body) = get(format!("ipfs/{leaf}"), Some("application/vnd.ipld.raw")).await;
    assert_eq!((s.as_u16(), &body[..]), (200, &b"same\n"[..]));
    assert_eq!(
        h["content-disposition"],
        format!("attachment; filename=\"{leaf}.bin\"").as_str()
    );

    // only-if-cached: 412 for a root that is not here, the content for one that is.
    let unknown = piecestore::unixfs::block_cid(
        piecestore::dagpb::RAW,
        piecestore::unixfs::DagHash::Sha256,
        0,
        b"not stored",
    );
    let cached = |cid: Cid| {
        http.get(url.join(&format!("ipfs/{cid}?format=car")).unwrap())
            .header("Cache-Control", "only-if-cached")
            .send()
    };
    assert_eq!(cached(unknown).await.unwrap().status(), 412);
    assert_eq!(cached(root).await.unwrap().status(), 200);
    // Without it, an unknown root is 404, for GET and HEAD alike.
    let (s, _, _) = get(format!("ipfs/{unknown}"), CAR).await;
    assert_eq!(s, 404);
    let head = http
        .head(url.join(&format!("ipfs/{unknown}?format=car")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404);

    // IPNS is not served.
    let (s, _, _) = get(
        "ipns/k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8".into(),
        None,
    )
    .await;
    assert_eq!(s, 501);
}
