//! The host's keep-alive client: requests reuse connections instead of
//! opening one per request (dynalite keeps connections alive, like AWS).

use serde_json::json;

use ld_dynamodb_host::embed::{Session, StoreConfig};
use ld_dynamodb_tests::proxy::Tunnel;
use ld_dynamodb_tests::*;

/// A fresh dynalite table and a store reaching it through a connection-counting tunnel.
async fn through_tunnel(
    label: &str,
    adjust: impl FnOnce(StoreConfig) -> StoreConfig,
) -> (Tunnel, Session) {
    let backend = Backend::dynalite();
    let (table, _) = fresh_store(&backend, label, None).await;
    let tunnel = Tunnel::start(&backend.endpoint).await;
    let mut config = backend.config(&table, None);
    config = config.with_endpoint(Some(tunnel.endpoint.clone()));
    let config = adjust(config);
    (tunnel, open_config(&config).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_share_one_connection() {
    let (tunnel, mut store) = through_tunnel("pool", |c| c).await;
    for i in 0..20 {
        ok!(store.upsert(
            "features",
            &format!("k{i}"),
            &item(&format!("k{i}"), 1, json!({})).item
        ));
        assert!(ok!(store.get("features", &format!("k{i}"))).is_some());
    }
    assert_eq!(ok!(store.get_all("features")).len(), 20);
    assert_eq!(store.instance().requests_sent(), 41);
    assert_eq!(
        tunnel.connections(),
        1,
        "41 requests over one kept-alive connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_init_batches_open_at_most_the_concurrency() {
    let (tunnel, mut store) =
        through_tunnel("pool-init", |c| c.with_init_concurrency(Some(4))).await;
    let items: Vec<_> = (0..300)
        .map(|i| item(&format!("f{i}"), 1, json!({})))
        .collect();
    for _ in 0..3 {
        ok!(store.init(&[collection("features", items.clone())]));
    }
    // Per Init: 1 Query, 12 batches of 25, 1 marker.
    assert_eq!(store.instance().requests_sent(), 3 * 14);
    let connections = tunnel.connections();
    assert!(
        (2..=4).contains(&connections),
        "batches ran in parallel on at most 4 reused connections ({connections})"
    );
}
