//! Runs every `tests/diff/*.txt` case file against a fresh shoal-node and a fresh reference
//! redis-server and reports every disagreement at once (file:line, command, both replies);
//! `tests/diff-valkey9/*.txt` (commands Redis 7.0 lacks) likewise against Valkey 9.1.
//!
//! `SHOAL_DIFF=<substring>` runs only the files whose name contains it;
//! `SHOAL_DIFF_IO_THREADS=<n>` sets the node's `io-threads` (default 1).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use shoal_e2e::diff::{case_files, parse_cases, run_cases};
use shoal_e2e::{RedisRef, ShoalNode};

/// Files run concurrently; each has its own pair of servers.
const WORKERS: usize = 3;

/// Starts a fresh reference server.
type Reference = dyn Fn() -> RedisRef + Sync;

fn run_file(path: &Path, io_threads: usize, start_reference: &Reference) -> Vec<String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{name}: cannot read: {e}")],
    };
    let cases = match parse_cases(&text) {
        Ok(c) => c,
        Err(e) => return vec![format!("{name}: {e}")],
    };
    let reference = start_reference();
    let mut node = ShoalNode::with_io_threads(io_threads, &[]);
    let out = run_cases(&name, &cases, &node.addr(), &reference.addr());
    node.assert_alive();
    if !out.is_empty() {
        // The node's own account helps when it is the node that went wrong (a closed
        // connection, a refused connect).
        let log = node.log.lines();
        let tail = &log[log.len().saturating_sub(40)..];
        eprintln!(
            "{name}: {} of {} lines differ; the node's log ends:\n{}",
            out.len(),
            cases.len(),
            tail.join("\n")
        );
    }
    out
}

#[test]
fn shoal_agrees_with_redis() {
    run_dir("diff", "redis-server", &|| {
        RedisRef::start()
            .unwrap_or_else(|e| panic!("the differential tests need the reference redis-server: {e}"))
    });
}

/// Commands Redis 7.0 does not have (Valkey 9's) are compared with Valkey 9.1.
#[test]
fn shoal_agrees_with_valkey9() {
    let bin = shoal_e2e::process::valkey9_server_bin().unwrap_or_else(|e| panic!("{e}"));
    run_dir("diff-valkey9", "valkey-server 9", &move || {
        RedisRef::start_bin(&bin, &[]).unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()))
    });
}

fn run_dir(sub: &str, what: &str, start_reference: &Reference) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(sub);
    let filter = std::env::var("SHOAL_DIFF").unwrap_or_default();
    let io_threads = std::env::var("SHOAL_DIFF_IO_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let files: Vec<PathBuf> = case_files(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&filter))
        .collect();
    assert!(!files.is_empty(), "no case files in {}", dir.display());

    let queue = Mutex::new(files.iter());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS.min(files.len()) {
            s.spawn(|| loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(path) = next else { break };
                let found = run_file(path, io_threads, start_reference);
                if let Ok(mut r) = results.lock() {
                    r.push((path.clone(), found));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort();
    let mismatches: Vec<String> = results.into_iter().flat_map(|(_, m)| m).collect();
    assert!(
        mismatches.is_empty(),
        "{} differences from {what} in {} files:\n\n{}",
        mismatches.len(),
        files.len(),
        mismatches.join("\n")
    );
}
