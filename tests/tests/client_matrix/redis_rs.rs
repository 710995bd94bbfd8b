//! The client matrix with the `redis` crate's async cluster client (`cluster-async`), in
//! this process: the same scenarios as the scripts, results in the same JSON shape. The
//! scenarios run on their own thread and runtime; the migration scenario asks the test thread
//! (which owns the cluster) to move the slot through a channel, and keeps writing until told
//! it moved. redis 0.27's async cluster client has no pub/sub API, so those scenarios are
//! reported as skipped.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncCommands, ProtocolVersion, Value};
use serde_json::json;

use super::driver::Results;
use shoal_e2e::cluster::key_slot;

const NO_PUBSUB: &str = "redis 0.27's async cluster client has no pub/sub API";

type R<T> = Result<T, String>;

fn check(cond: bool, msg: impl Into<String>) -> R<()> {
    if cond {
        Ok(())
    } else {
        Err(msg.into())
    }
}

fn e(err: redis::RedisError) -> String {
    err.to_string()
}

/// Runs every scenario against the cluster at `seed`; `migrate` asks the test thread to move
/// the slot of `tag`, which sets `migrated` when done.
pub fn run(seed: u16, resp: u8, tag: String, migrate: Sender<()>, migrated: Arc<AtomicBool>) -> Results {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let proto = if resp == 3 { ProtocolVersion::RESP3 } else { ProtocolVersion::RESP2 };
        let client = ClusterClient::builder(vec![format!("redis://127.0.0.1:{seed}")])
            .use_protocol(proto)
            .build()
            .expect("cluster client");
        let mut c = client.get_async_connection().await.expect("connect");
        let blocker = client.get_async_connection().await.expect("connect");
        let mut results = Results::new();
        let mut record = |name: &str, r: R<String>| {
            let v = match r {
                Ok(d) => json!({"ok": true, "detail": d}),
                Err(d) => json!({"ok": false, "detail": d}),
            };
            results.insert(name.to_string(), v);
        };
        record("discovery", discovery(&mut c).await);
        record("keys", keys(&mut c).await);
        record("pipeline", pipeline(&mut c).await);
        record("transaction", transaction(&mut c).await);
        record("scan", scan(&mut c).await);
        record("blpop", blpop(&mut c, blocker).await);
        record("migration", migration(&mut c, &tag, &migrate, &migrated).await);
        for name in ["pubsub", "sharded_pubsub", "sharded_pubsub_slot_move"] {
            results.insert(name.into(), json!({"ok": false, "skipped": true, "detail": NO_PUBSUB}));
        }
        results
    })
}

/// Node address -> reply of `cmd` on every primary.
async fn on_primaries(c: &mut ClusterConnection, cmd: &redis::Cmd) -> R<Vec<(String, Value)>> {
    let v = c
        .route_command(cmd, RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)))
        .await
        .map_err(e)?;
    let Value::Map(pairs) = v else { return Err(format!("per-node replies: {v:?}")) };
    pairs
        .into_iter()
        .map(|(k, v)| match k {
            Value::BulkString(b) => Ok((String::from_utf8_lossy(&b).into_owned(), v)),
            other => Err(format!("node address {other:?}")),
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

async fn discovery(c: &mut ClusterConnection) -> R<String> {
    let n = on_primaries(c, &redis::cmd("PING")).await?.len();
    check(n == 3, format!("discovered {n} primaries, want 3"))?;
    Ok(format!("{n} primaries"))
}

async fn keys(c: &mut ClusterConnection) -> R<String> {
    let keys: Vec<String> = (0..1000).map(|i| format!("mx:key:{i}")).collect();
    for k in &keys {
        let () = c.set(k, format!("v{k}")).await.map_err(e)?;
    }
    for k in &keys {
        let v: Option<String> = c.get(k).await.map_err(e)?;
        check(v.as_deref() == Some(format!("v{k}").as_str()), format!("GET {k}: {v:?}"))?;
    }
    let slots: BTreeSet<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
    check(slots.len() > 900, format!("only {} slots", slots.len()))?;
    Ok(format!("1000 keys over {} slots", slots.len()))
}

async fn pipeline(c: &mut ClusterConnection) -> R<String> {
    let keys: Vec<String> = (0..100).map(|i| format!("{{mx:pipe}}{i}")).collect();
    let mut p = redis::pipe();
    for k in &keys {
        p.set(k, format!("v-{k}")).ignore();
    }
    for k in &keys {
        p.get(k);
    }
    let got: Vec<String> = p.query_async(c).await.map_err(e)?;
    let want: Vec<String> = keys.iter().map(|k| format!("v-{k}")).collect();
    check(got == want, format!("pipelined GETs: {:?}", &got[..got.len().min(3)]))?;
    Ok("100 SET + 100 GET in one pipeline".into())
}

async fn transaction(c: &mut ClusterConnection) -> R<String> {
    let keys = ["{mx:tx}a", "{mx:tx}b", "{mx:tx}c"];
    let first = incr_in_multi(c, &keys).await?;
    let second = incr_in_multi(c, &keys).await?;
    check(first.len() == 3 && first.iter().all(|x| *x == first[0]), format!("first EXEC {first:?}"))?;
    let want: Vec<i64> = first.iter().map(|x| x + 1).collect();
    check(second == want, format!("second EXEC {second:?} after {first:?}"))?;
    Ok("MULTI/EXEC of 3 INCR twice".into())
}

async fn incr_in_multi(c: &mut ClusterConnection, keys: &[&str]) -> R<Vec<i64>> {
    let mut p = redis::pipe();
    p.atomic();
    for k in keys {
        p.incr(k, 1);
    }
    p.query_async(c).await.map_err(e)
}

async fn scan(c: &mut ClusterConnection) -> R<String> {
    let want: BTreeSet<String> = (0..300).map(|i| format!("mx:scan:{i}")).collect();
    for k in &want {
        let () = c.set(k, "1").await.map_err(e)?;
    }
    let mut got = Vec::new();
    for (addr, _) in on_primaries(c, &redis::cmd("PING")).await? {
        let (host, port) = addr.rsplit_once(':').ok_or(addr.clone())?;
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.to_string(),
            port: port.parse().map_err(|_| addr.clone())?,
        });
        let mut cursor = 0u64;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor).arg("MATCH").arg("mx:scan:*").arg("COUNT").arg(100);
            let v = c.route_command(&cmd, route.clone()).await.map_err(e)?;
            let (next, keys): (u64, Vec<String>) = redis::from_redis_value(&v).map_err(e)?;
            got.extend(keys);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    check(got.len() == want.len(), format!("SCAN returned {} keys, want {}", got.len(), want.len()))?;
    check(got.iter().cloned().collect::<BTreeSet<_>>() == want, "SCAN key set differs")?;
    Ok(format!("{} keys over every primary", got.len()))
}

async fn blocked_clients(c: &mut ClusterConnection) -> R<i64> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("clients");
    let mut n = 0;
    for (_, v) in on_primaries(c, &cmd).await? {
        let t = text(&v);
        n += t
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|x| x.trim().parse::<i64>().ok())
            .unwrap_or(0);
    }
    Ok(n)
}

async fn blpop(c: &mut ClusterConnection, mut blocker: ClusterConnection) -> R<String> {
    let key = "{mx:bl}list";
    let popped = tokio::spawn(async move {
        let r: redis::RedisResult<Option<(String, String)>> = blocker.blpop(key, 20.0).await;
        r
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while blocked_clients(c).await? < 1 {
        check(Instant::now() < deadline, "timed out waiting for the BLPOP to block")?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _: i64 = c.rpush(key, "woken").await.map_err(e)?;
    let r = popped.await.map_err(|x| x.to_string())?.map_err(e)?;
    check(r == Some((key.to_string(), "woken".to_string())), format!("BLPOP returned {r:?}"))?;
    Ok("woken by RPUSH from another connection".into())
}

async fn migration(
    c: &mut ClusterConnection,
    tag: &str,
    migrate: &Sender<()>,
    migrated: &AtomicBool,
) -> R<String> {
    let mut acked: HashMap<String, String> = HashMap::new();
    let mut errors = Vec::new();
    let (mut n, mut after, mut signalled) = (0usize, 0, false);
    let started = Instant::now();
    while after < 300 {
        let key = if n.is_multiple_of(2) {
            format!("{{{tag}}}mx:w:{}", n % 400)
        } else {
            format!("mx:w:{}", n % 997)
        };
        let val = n.to_string();
        match c.set::<_, _, ()>(&key, &val).await {
            Ok(()) => {
                acked.insert(key, val);
            }
            Err(err) => errors.push(format!("SET {key}: {err}")),
        }
        n += 1;
        if !signalled && n >= 300 {
            signalled = true;
            migrate.send(()).map_err(|x| x.to_string())?;
        }
        if signalled && migrated.load(Ordering::Acquire) {
            after += 1;
        }
        check(started.elapsed() < Duration::from_secs(50), format!("no migration after {n} writes"))?;
    }
    let mut lost = 0;
    for (k, v) in &acked {
        let got: Option<String> = c.get(k).await.map_err(e)?;
        if got.as_deref() != Some(v.as_str()) {
            lost += 1;
        }
    }
    check(lost == 0, format!("{lost} of {} acknowledged writes lost", acked.len()))?;
    check(errors.is_empty(), format!("{} errors: {:?}", errors.len(), &errors[..errors.len().min(3)]))?;
    Ok(format!("{n} writes, {} keys acknowledged, 0 lost, 0 errors", acked.len()))
}
