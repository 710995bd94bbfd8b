//! The operator's own ACL user is enough to run a cluster: local mode's control loop connects
//! as `shoal-operator` with exactly the rules the Kubernetes operator gives it
//! (`k8s::security::OPERATOR_RULES`), forms a cluster, grows it (slot migrations) and sets users
//! at runtime, against real nodes whose ACL file holds that user. A missing permission in the
//! rules would stall a step here. The user is refused everything else (keys).

mod support;

use std::time::Duration;

use shoal_operator::controlplane::client::NodeClient;
use shoal_operator::controlplane::credentials::Credentials;
use shoal_operator::controlplane::users::DesiredUsers;
use shoal_operator::k8s::security::{acl_file, split_rules, ResolvedUser, OPERATOR_USER};
use shoal_operator::local::LocalCluster;
use support::{config, owning, tick_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_user_runs_a_cluster_with_its_least_privilege_rules() {
    let mut cfg = config("acl", 1);
    let operator = ResolvedUser::operator("op-secret");
    std::fs::create_dir_all(&cfg.dir).expect("dir");
    let file = cfg.dir.join("users.acl");
    std::fs::write(&file, acl_file(&[ResolvedUser::default_user(None), operator.clone()])).expect("acl file");
    cfg.node_args = vec!["--aclfile".into(), file.display().to_string()];
    cfg.credentials = Some(Credentials {
        user: Some(OPERATOR_USER.into()),
        password: Some("op-secret".into()),
        ..Credentials::default()
    });
    let creds = cfg.credentials.clone().expect("credentials");
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(30), "1 shard formed", |c| c.converged() && owning(c) == 1).await;
    c.set_target(2);
    tick_until(&mut c, Duration::from_secs(60), "2 shards", |c| c.converged() && owning(c) == 2).await;

    // As the operator: keys are refused, the control commands are not.
    let addr = c.sup.node(0).expect("node 0").addr.clone();
    let mut nc = NodeClient::connect(&addr, Duration::from_secs(5), &creds).await.expect("connect");
    let err = nc.command_text(&["GET", "k"]).await.expect_err("no keys for the operator");
    assert!(err.to_string().contains("NOPERM"), "{err}");
    assert_eq!(nc.my_id().await.expect("CLUSTER MYID").0.len(), 40);

    // Users set at runtime through the operator's connections, on every node.
    let app = ResolvedUser {
        name: "app".into(),
        enabled: true,
        password: Some("app-pw".into()),
        rules: split_rules("~app:* +@all -@dangerous"),
    };
    let desired = DesiredUsers {
        users: [&operator, &app].iter().map(|u| (u.name.clone(), u.setuser_args())).collect(),
        keep: vec!["default".into()],
    };
    let addrs: Vec<_> = (0..2).map(|i| c.sup.node(i).expect("node").addr.clone()).collect();
    let report = c.sync_users(&addrs, &desired).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.updated.len(), 2);
    // Nothing changed: nothing is written again.
    let again = c.sync_users(&addrs, &desired).await;
    assert!(again.updated.is_empty() && again.failed.is_empty(), "{again:?}");
    for a in &addrs {
        let app_creds = Credentials {
            user: Some("app".into()),
            password: Some("app-pw".into()),
            ..Credentials::default()
        };
        let mut as_app =
            NodeClient::connect(a, Duration::from_secs(5), &app_creds).await.expect("app logs in");
        let denied = as_app.command_text(&["GET", "other:1"]).await.expect_err("outside app:*");
        assert!(denied.to_string().contains("NOPERM"), "{denied}");
    }
    c.shutdown().await;
}
