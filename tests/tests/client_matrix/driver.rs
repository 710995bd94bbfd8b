//! The client matrix's driver side: a 3-shard cluster per client, the slot the client's
//! migration scenario writes to, the live migration of that slot when the client asks for it
//! (`MIGRATE` on its stdout, answered with `MIGRATED` on its stdin once the control plane
//! has pushed the new owner), and the checks on the JSON the client prints at the end.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Map, Value};
use shoal_e2e::cluster::{key_slot, migrations, wait_for, Assignment, Cluster};
use shoal_e2e::process::Log;

/// The scenarios every client runs, in order (tests/node/matrix_common.js,
/// tests/python/matrix_common.py, client_matrix/redis_rs.rs).
pub const SCENARIOS: &[&str] = &[
    "discovery",
    "keys",
    "pipeline",
    "transaction",
    "scan",
    "blpop",
    "pubsub",
    "sharded_pubsub",
    "migration",
    "sharded_pubsub_slot_move",
];

/// How long one client's whole run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

pub type Results = Map<String, Value>;

/// One client's cluster and the slot its migration scenario moves (node 0 -> node 1).
pub struct Run {
    pub cluster: Cluster,
    /// A hash tag whose slot is `slot`.
    pub tag: String,
    pub slot: u16,
    migrated: bool,
}

impl Run {
    pub fn new() -> Run {
        let cluster = Cluster::start(3);
        let tag = (0..)
            .map(|i| format!("mx{i}"))
            .find(|t| cluster.owner(key_slot(t.as_bytes())) == 0)
            .expect("a tag on node 0");
        let slot = key_slot(tag.as_bytes());
        Run { cluster, tag, slot, migrated: false }
    }

    pub fn seed(&self) -> String {
        self.cluster.node(0).port().to_string()
    }

    /// Moves `slot` from node 0 to node 1 as the control plane does: MIGRATESLOTS on the
    /// source, wait for the job to succeed, then push the topology with the new owner.
    pub fn migrate(&mut self) {
        let (from, to) = (self.cluster.node(0), self.cluster.node(1));
        let s = self.slot;
        let r = from.run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE {s} {s} NODE {}", to.id));
        assert_eq!(r, "+OK\r\n", "MIGRATESLOTS {s}");
        let state = wait_for(Duration::from_secs(60), "the export to finish", || {
            let job = migrations(from)
                .into_iter()
                .rev()
                .find(|j| j.get("operation").is_some_and(|o| o == "EXPORT"))?;
            let st = job.get("state")?.clone();
            ["success", "failed", "cancelled"].contains(&st.as_str()).then_some(st)
        });
        assert_eq!(state, "success", "migration of slot {s}");
        let mut next: Assignment = Vec::new();
        for &(lo, hi, owner) in &self.cluster.assignment {
            if (lo..=hi).contains(&s) {
                if lo < s {
                    next.push((lo, s - 1, owner));
                }
                next.push((s, s, 1));
                if s < hi {
                    next.push((s + 1, hi, owner));
                }
            } else {
                next.push((lo, hi, owner));
            }
        }
        self.cluster.push(next);
        self.migrated = true;
    }

    /// After the run: the slot moved, its keys are all on the new owner.
    pub fn assert_slot_moved(&self) {
        assert!(self.migrated, "the client never asked for the migration");
        let count = |i: usize| self.cluster.node(i).run(&format!("CLUSTER COUNTKEYSINSLOT {}", self.slot));
        assert_eq!(count(0), ":0\r\n", "the source kept keys of slot {}", self.slot);
        assert_ne!(count(1), ":0\r\n", "the target has no keys of slot {}", self.slot);
    }

    /// Runs a client script (`args` after the program) to its end, doing the migration when
    /// it asks; returns its results.
    pub fn run_script(&mut self, program: &str, args: &[String]) -> Results {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {program} {args:?}: {e}"));
        let (out, err) = (Log::default(), Log::default());
        out.attach(child.stdout.take().expect("stdout"));
        err.attach(child.stderr.take().expect("stderr"));
        let mut stdin = child.stdin.take().expect("stdin");
        let first = out.wait_for(RUN_TIMEOUT, |l| (l == "MIGRATE" || l.starts_with("RESULT ")).then_some(()));
        if first.is_some() && out.lines().iter().any(|l| l == "MIGRATE") {
            self.migrate();
            stdin.write_all(b"MIGRATED\n").expect("telling the client");
            stdin.flush().expect("flush");
        }
        let result = out.wait_for(RUN_TIMEOUT, |l| l.strip_prefix("RESULT ").map(str::to_string));
        let closed = out.wait_closed(Duration::from_secs(30));
        if !closed {
            let _ = child.kill();
        }
        let status = child.wait().expect("waiting for the client");
        let (o, e) = (out.lines().join("\n"), err.lines().join("\n"));
        let result =
            result.unwrap_or_else(|| panic!("{program} {args:?} printed no RESULT ({status}):\n{o}\n{e}"));
        assert!(status.success(), "{program} {args:?} exited with {status}:\n{o}\n{e}");
        match serde_json::from_str::<Value>(&result) {
            Ok(Value::Object(m)) => m,
            other => panic!("RESULT is not a JSON object: {other:?}\n{result}"),
        }
    }
}

/// `tests/node/<script>`, checking the packages are installed.
pub fn node_script(script: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/node");
    assert!(
        Path::new(dir).join("node_modules/ioredis").exists(),
        "Node.js packages missing: run `npm ci` in tests/node (scripts/test.sh does)"
    );
    format!("{dir}/{script}")
}

/// The test venv's Python if there is one (scripts/test.sh makes it), else `python3`.
pub fn python() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/test-venv/bin/python");
    if Path::new(venv).exists() {
        venv.to_string()
    } else {
        "python3".to_string()
    }
}

pub fn python_script(script: &str) -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/python/").to_string() + script
}

/// What a scenario is expected to do for a client: pass, be skipped by the client script
/// (no API for it), or fail the way it fails against Valkey 9.1 too (a client limitation,
/// documented in docs/cluster-clients.md; the detail must contain the given text).
pub enum Expect {
    Pass,
    Skipped,
    ClientFailure(&'static str),
}

/// Prints the client's row and asserts every scenario against `expect` (default: Pass).
pub fn assert_results(client: &str, results: &Results, expect: &[(&str, Expect)]) {
    println!("{client}:");
    for name in SCENARIOS {
        let r = results.get(*name).unwrap_or_else(|| panic!("{client}: no result for {name}: {results:?}"));
        let ok = r["ok"].as_bool() == Some(true);
        let detail = r["detail"].as_str().unwrap_or("");
        println!("  {name:26} {} {detail}", if ok { "ok  " } else { "FAIL" });
    }
    for name in SCENARIOS {
        let r = &results[*name];
        let ok = r["ok"].as_bool() == Some(true);
        let skipped = r["skipped"].as_bool() == Some(true);
        let detail = r["detail"].as_str().unwrap_or("");
        match expect.iter().find(|e| e.0 == *name).map(|e| &e.1).unwrap_or(&Expect::Pass) {
            Expect::Pass => assert!(ok, "{client}: {name} failed: {detail}"),
            Expect::Skipped => assert!(skipped, "{client}: {name} should be skipped: {r}"),
            Expect::ClientFailure(why) => assert!(
                !ok && detail.contains(why),
                "{client}: {name} was expected to fail as on Valkey ({why}), got: {r} \
                 (if the client fixed it, update the expectation and docs/cluster-clients.md)"
            ),
        }
    }
}
