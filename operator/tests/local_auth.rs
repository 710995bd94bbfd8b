//! A password-protected cluster (`requirepass` on every node) run by local mode: the control
//! loop authenticates, forms the cluster and moves slots between the nodes (whose migration
//! connections authenticate too), and keys written before the move are all served after it by
//! a cluster client that sends the password; a client without it gets `-NOAUTH`.

mod support;

use std::time::Duration;

use shoal_operator::controlplane::client::NodeClient;
use shoal_operator::local::LocalCluster;
use support::{config, owning, tick_until};

const PASSWORD: &str = "p@ss word:/%";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_protected_cluster_forms_and_resizes() {
    let mut cfg = config("auth", 1);
    cfg.requirepass = Some(PASSWORD.to_string());
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(20), "1 shard formed", |c| c.converged() && owning(c) == 1).await;
    let port = c.endpoint().expect("endpoint").port;
    let addr = c.sup.node(0).expect("node 0").addr.clone();

    // Without the password: refused. With it: the node answers.
    match NodeClient::connect(&addr, Duration::from_secs(5), &Default::default()).await {
        Ok(mut nc) => {
            let err = nc.my_id().await.expect_err("no password");
            assert!(err.to_string().contains("NOAUTH"), "{err}");
        }
        Err(e) => assert!(e.to_string().contains("NOAUTH"), "{e}"),
    }
    let mut nc = NodeClient::connect(
        &addr,
        Duration::from_secs(5),
        &shoal_operator::controlplane::credentials::Credentials::password(Some(PASSWORD.into())),
    )
    .await
    .expect("connect");
    assert_eq!(nc.my_id().await.expect("id").0.len(), 40);

    let url = format!("redis://:{}@127.0.0.1:{port}/", "p%40ss%20word%3A%2F%25");
    let client = redis::cluster::ClusterClient::new(vec![url]).expect("client");
    let mut conn = client.get_async_connection().await.expect("cluster connection");
    for i in 0..500 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg(i).query_async(&mut conn).await.expect("SET");
    }

    // Grow to 2 shards: slots (and their keys) move from node 0 to node 1 over authenticated
    // node-to-node connections.
    c.set_target(2);
    tick_until(&mut c, Duration::from_secs(30), "2 shards", |c| c.converged() && owning(c) == 2).await;
    let mut conn = client.get_async_connection().await.expect("cluster connection after the move");
    for i in 0..500 {
        let v: Option<i64> =
            redis::cmd("GET").arg(format!("k{i}")).query_async(&mut conn).await.expect("GET");
        assert_eq!(v, Some(i), "key k{i}");
    }
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
