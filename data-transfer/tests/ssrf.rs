//! SSRF: a deal URL cannot make the provider reach its own network, whatever the spelling of
//! the address (IPv4 in IPv6, short and numeric IPv4 forms, NAT64, 6to4) and even when a name
//! that passed admission resolves to a private address when the connection is made (DNS
//! rebinding: names are judged at every resolution, and the connection goes only to the
//! addresses judged).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use data_transfer::{
    AddressPolicy, TransferConfig, TransferError, TransferId, TransferManager, TransferRequest,
    is_public,
};

const PEER: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

#[test]
fn addresses_by_every_spelling() {
    let private = [
        "127.0.0.1",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "198.18.0.1",
        "192.0.2.1",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "::10.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1.2.3.4",
        "2002:7f00:1::",
        "2002:a00:1::1",
        "2001:0:4136:e378::1",
        "2001:db8::1",
        "fe80::1",
        "fd00::1",
        "fc00::1",
        "ff02::1",
    ];
    for a in private {
        let ip: IpAddr = a.parse().unwrap();
        assert!(!is_public(ip), "{a} must not be public");
        assert!(
            matches!(
                AddressPolicy::default().check(ip),
                Err(TransferError::ForbiddenAddress(_))
            ),
            "{a}"
        );
        assert!(AddressPolicy::allowing_private().allows(ip), "{a}");
    }
    let public = [
        "1.1.1.1",
        "8.8.8.8",
        "100.128.0.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ];
    for a in public {
        assert!(is_public(a.parse().unwrap()), "{a} is public");
    }
}

/// A loopback server that counts the connections it accepts.
async fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (port, seen)
}

#[tokio::test]
async fn urls_to_private_networks_are_refused_and_never_connected() {
    let dir = tempfile::tempdir().unwrap();
    let strict = TransferManager::open(TransferConfig::new(dir.path().join("s")), None)
        .await
        .unwrap();
    let (port, seen) = counting_server().await;

    // IP literals, in every spelling a URL parser accepts, are refused at admission.
    for u in [
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
        format!("http://[::ffff:7f00:1]:{port}/x"),
        format!("http://[::127.0.0.1]:{port}/x"),
        format!("http://[64:ff9b::7f00:1]:{port}/x"),
        format!("http://[2002:7f00:1::]:{port}/x"),
        format!("http://127.1:{port}/x"),
        format!("http://2130706433:{port}/x"),
        format!("http://0x7f000001:{port}/x"),
        format!("http://0177.0.0.1:{port}/x"),
        format!("http://0:{port}/x"),
        format!("https://[::1]:{port}/x"),
        "http://169.254.169.254/latest/meta-data/iam".to_string(),
        "http://[::ffff:a9fe:a9fe]/latest/meta-data".to_string(),
        format!("libp2p:///ip6/::ffff:127.0.0.1/tcp/{port}/p2p/{PEER}"),
        format!("libp2p:///ip4/127.0.0.1/tcp/{port}/p2p/{PEER}"),
        format!("libp2p:///ip6/64:ff9b::a00:1/tcp/{port}/p2p/{PEER}"),
    ] {
        let err = strict.check(&u, 100).await.unwrap_err();
        assert!(
            matches!(err, TransferError::ForbiddenAddress(_)),
            "{u}: {err}"
        );
    }

    // A name is admitted (it could resolve anywhere by the time it is fetched) but refused
    // when resolved for the connection, every time: the names that resolve to loopback here
    // stand for a rebinding name whose second answer is private.
    for (i, host) in ["localhost", "LOCALHOST", "Localhost"].iter().enumerate() {
        let id = TransferId::new(format!("dns{i}")).unwrap();
        strict
            .start(TransferRequest {
                id: id.clone(),
                url: format!("http://{host}:{port}/x.car"),
                headers: vec![],
                size: 100,
                padded_size: None,
            })
            .await
            .unwrap();
        let err = tokio::time::timeout(Duration::from_secs(60), strict.wait(&id))
            .await
            .expect("a refused transfer ends")
            .unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{host}: {err}");
    }
    // A libp2p address with a DNS part is resolved once, judged, and dialled by the IP judged.
    let p = AddressPolicy::default();
    let dns: libp2p::Multiaddr = format!("/dns4/localhost/tcp/{port}").parse().unwrap();
    assert!(matches!(
        p.resolve_multiaddr(&dns).await.unwrap_err(),
        TransferError::ForbiddenAddress(_)
    ));
    let resolved = AddressPolicy::allowing_private()
        .resolve_multiaddr(&dns)
        .await
        .unwrap();
    assert_eq!(resolved.to_string(), format!("/ip4/127.0.0.1/tcp/{port}"));

    // Nothing ever reached the server.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "a refused URL was connected to"
    );
}
