//! Shoal as a cache under memory pressure, on real nodes: with `maxmemory` set and a writer
//! that keeps adding new keys, the process RSS stays within 10% of `maxmemory` plus the idle
//! node's RSS; the policies keep what they should (hot keys under LRU/LFU, long TTLs under
//! volatile-ttl, keys without a TTL under volatile-*); noeviction refuses writes with -OOM
//! and keeps every key; INFO reports the limit and the evictions.
//!
//! Every loop is bounded by a count or a deadline; nothing sleeps.

use std::time::{Duration, Instant};

use shoal_e2e::resp::encode_command;
use shoal_e2e::{RawClient, ShoalNode};

const MB: u64 = 1024 * 1024;
/// Commands sent per pipelined batch.
const BATCH: u64 = 256;
/// Upper bound on any single writing phase.
const PHASE_DEADLINE: Duration = Duration::from_secs(240);

/// Resident set size of a process, from `/proc/<pid>/status`.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS line");
    kb * 1024
}

/// One `name:value` field of INFO.
fn info_field(c: &mut RawClient, section: &str, name: &str) -> String {
    let info = c.run(&format!("INFO {section}"));
    let prefix = format!("{name}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("INFO {section} has no {name}:\n{info}"))
        .to_string()
}

fn info_u64(c: &mut RawClient, section: &str, name: &str) -> u64 {
    info_field(c, section, name).parse().expect("numeric INFO field")
}

/// Sends SETs of keys `prefix{from..to}` with `value`, pipelined, `ttl_ms(i)` as PX when
/// given; every reply must be +OK. Calls `each_batch` after every batch.
fn write_keys(
    c: &mut RawClient,
    prefix: &str,
    range: std::ops::Range<u64>,
    value: &[u8],
    ttl_ms: impl Fn(u64) -> Option<u64>,
    mut each_batch: impl FnMut(),
) {
    let deadline = Instant::now() + PHASE_DEADLINE;
    let mut i = range.start;
    while i < range.end {
        assert!(Instant::now() < deadline, "writing took longer than {PHASE_DEADLINE:?}");
        let end = (i + BATCH).min(range.end);
        let mut req = Vec::new();
        for k in i..end {
            let key = format!("{prefix}{k}");
            match ttl_ms(k) {
                Some(ms) => req.extend(encode_command(&[
                    b"SET".as_slice(),
                    key.as_bytes(),
                    value,
                    b"PX",
                    ms.to_string().as_bytes(),
                ])),
                None => req.extend(encode_command(&[b"SET".as_slice(), key.as_bytes(), value])),
            }
        }
        c.send(&req).expect("send batch");
        for _ in i..end {
            let r = c.read_text();
            assert_eq!(r, "+OK\r\n", "writing {prefix}{i}..{end}");
        }
        i = end;
        each_batch();
    }
}

/// Writes about three times `maxmemory` worth of new keys and checks the RSS bound all along:
/// RSS <= idle RSS + 1.10 × maxmemory; then that eviction kept the cache full, not empty.
fn hold_the_bound(policy: &str, maxmemory_mb: u64, io_threads: usize, ttl: bool) {
    let maxmemory = maxmemory_mb * MB;
    let node = ShoalNode::with_io_threads(
        io_threads,
        &["--maxmemory", &format!("{maxmemory_mb}mb"), "--maxmemory-policy", policy],
    );
    let pid = node.pid();
    let mut c = node.connect();
    assert_eq!(c.run("PING"), "+PONG\r\n");
    let idle = rss(pid);
    let bound = idle + maxmemory + maxmemory / 10;
    // Keys without a TTL that a volatile policy must never evict.
    let keep = if ttl { 1000 } else { 0 };
    write_keys(&mut c, "keep:", 0..keep, b"persistent", |_| None, || {});
    // ~100-byte values (as redis-benchmark -d 100); about 3x what fits.
    let value = vec![b'x'; 100];
    let per_key = 150;
    let total = 3 * maxmemory / per_key;
    let mut peak = 0;
    let mut batches = 0u64;
    write_keys(
        &mut c,
        "key:",
        0..total,
        &value,
        // Deadlines spread over one to two hours, in a scrambled order.
        |i| ttl.then(|| 3_600_000 + (i.wrapping_mul(2_654_435_761) % 3_600_000)),
        || {
            batches += 1;
            if batches.is_multiple_of(4) {
                let now = rss(pid);
                peak = peak.max(now);
                assert!(
                    now <= bound,
                    "{policy}: RSS {now} over the bound {bound} (idle {idle}, maxmemory {maxmemory})"
                );
            }
        },
    );
    peak = peak.max(rss(pid));
    let used = info_u64(&mut c, "memory", "used_memory");
    // Any command may evict a little more first: bracket DBSIZE between two readings.
    let evicted_before = info_u64(&mut c, "stats", "evicted_keys");
    let keys = c.run("DBSIZE");
    let keys: u64 = keys.trim_start_matches(':').trim().parse().expect("DBSIZE");
    let evicted = info_u64(&mut c, "stats", "evicted_keys");
    eprintln!(
        "{policy} io-threads {io_threads}: idle RSS {idle}, peak RSS {peak} (bound {bound}), \
         used_memory {used}, {keys} keys kept, {evicted} evicted"
    );
    assert!(peak <= bound);
    assert!(evicted > total / 2, "{policy}: only {evicted} of {total} evicted");
    assert!(used <= maxmemory + maxmemory / 100, "{policy}: used_memory {used} after eviction");
    // The cache stays full: eviction frees what is needed, not far more.
    assert!(keys * per_key > maxmemory / 2, "{policy}: only {keys} keys kept");
    assert!(
        (keys + evicted_before..=keys + evicted).contains(&(total + keep)),
        "{policy}: every key is either kept or evicted"
    );
    if ttl {
        for k in 0..keep {
            assert_eq!(c.run(&format!("EXISTS keep:{k}")), ":1\r\n", "{policy} evicted keep:{k}");
        }
        // volatile-ttl evicts the nearest deadlines first: survivors have the later ones.
        if policy == "volatile-ttl" {
            let mut late = 0;
            let mut seen = 0;
            for _ in 0..200 {
                let key = c.run("RANDOMKEY");
                let Some(name) = key.lines().nth(1) else { continue };
                if name.starts_with("keep:") {
                    continue;
                }
                let ms: i64 =
                    c.run(&format!("PTTL {name}")).trim_start_matches(':').trim().parse().expect("PTTL");
                seen += 1;
                if ms > 3_600_000 + 3_600_000 / 2 {
                    late += 1;
                }
            }
            // Sampling approximates: a perfect order would give 100%, random eviction 50%.
            assert!(late * 10 >= seen * 8, "{policy}: only {late} of {seen} survivors have late deadlines");
        }
    }
}

#[test]
fn allkeys_lru_holds_rss_within_bound() {
    hold_the_bound("allkeys-lru", 32, 1, false);
}

#[test]
fn volatile_ttl_holds_rss_within_bound_and_keeps_late_deadlines() {
    hold_the_bound("volatile-ttl", 32, 2, true);
}

#[test]
fn allkeys_lfu_holds_rss_within_bound() {
    hold_the_bound("allkeys-lfu", 16, 1, false);
}

#[test]
fn allkeys_random_holds_rss_within_bound() {
    hold_the_bound("allkeys-random", 16, 1, false);
}

/// Reads every hot key once; all must answer (they may not have been evicted yet).
fn touch(c: &mut RawClient, hot: u64) -> u64 {
    let mut req = Vec::new();
    for k in 0..hot {
        req.extend(encode_command(&["GET", &format!("hot:{k}")]));
    }
    c.send(&req).expect("send");
    (0..hot).filter(|_| c.read_text().starts_with('$')).count() as u64
}

#[test]
fn lru_keeps_recently_read_keys() {
    let maxmemory = 8 * MB;
    let node = ShoalNode::start(&["--maxmemory", "8mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = node.connect();
    let hot = 500;
    let value = vec![b'v'; 100];
    write_keys(&mut c, "hot:", 0..hot, &value, |_| None, || {});
    // Old cold keys up to three quarters of the limit, no eviction yet.
    let mut old = 0;
    while info_u64(&mut c, "memory", "used_memory") < maxmemory * 3 / 4 {
        write_keys(&mut c, "old:", old..old + 1_000, &value, |_| None, || {});
        old += 1_000;
        assert!(old < 1_000_000, "used_memory does not grow");
    }
    assert_eq!(info_u64(&mut c, "stats", "evicted_keys"), 0);
    // The LRU clock has a one-second resolution: keep reading the hot keys until it has moved
    // on by two seconds, so the old keys are seconds idle and the hot ones are not.
    let start_clock = info_u64(&mut c, "server", "lru_clock");
    let deadline = Instant::now() + PHASE_DEADLINE;
    while info_u64(&mut c, "server", "lru_clock") < start_clock + 2 {
        assert!(Instant::now() < deadline, "the LRU clock did not advance");
        assert_eq!(touch(&mut c, hot), hot);
    }
    // New keys, 90% as many as the old ones: well past the limit, so most old keys must go.
    let new = old * 9 / 10;
    let mut written = 0;
    while written < new {
        write_keys(&mut c, "new:", written..written + 1_000, &value, |_| None, || {});
        written += 1_000;
        touch(&mut c, hot);
    }
    let evicted = info_u64(&mut c, "stats", "evicted_keys");
    assert!(evicted > old / 3, "eviction ran: {evicted} of {old}");
    let hot_alive = touch(&mut c, hot);
    let sample = 1_000;
    let mut old_alive = 0;
    for k in 0..sample {
        if c.run(&format!("EXISTS old:{}", k * (old / sample))) == ":1\r\n" {
            old_alive += 1;
        }
    }
    let hot_rate = hot_alive as f64 / hot as f64;
    let old_rate = old_alive as f64 / sample as f64;
    eprintln!(
        "LRU: {hot_alive}/{hot} hot keys alive, {old_alive}/{sample} old ones; {evicted} evicted of {old}"
    );
    assert!(hot_rate >= 0.95, "hot keys kept: {hot_rate}");
    assert!(hot_rate > 2.0 * old_rate, "hot {hot_rate} vs old {old_rate}");
}

#[test]
fn lfu_keeps_frequently_read_keys() {
    let node = ShoalNode::start(&[
        "--maxmemory",
        "8mb",
        "--maxmemory-policy",
        "allkeys-lfu",
        "--lfu-log-factor",
        "0",
    ]);
    let mut c = node.connect();
    let hot = 500;
    let value = vec![b'v'; 100];
    write_keys(&mut c, "hot:", 0..hot, &value, |_| None, || {});
    for _ in 0..10 {
        assert_eq!(touch(&mut c, hot), hot);
    }
    assert_eq!(c.run("OBJECT FREQ hot:0"), ":15\r\n", "five to start, one per read at factor 0");
    let cold = 150_000;
    write_keys(&mut c, "cold:", 0..cold, &value, |_| None, || {});
    let evicted = info_u64(&mut c, "stats", "evicted_keys");
    assert!(evicted > cold / 2, "eviction ran: {evicted}");
    let hot_alive = touch(&mut c, hot);
    assert!(hot_alive * 10 >= hot * 9, "{hot_alive}/{hot} hot keys kept");
    assert!(c.run("OBJECT IDLETIME hot:0").starts_with("-ERR An LFU maxmemory policy is selected"));
}

#[test]
fn noeviction_refuses_writes_and_keeps_every_key() {
    let node = ShoalNode::start(&["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"]);
    let mut c = node.connect();
    let value = vec![b'v'; 100];
    let deadline = Instant::now() + PHASE_DEADLINE;
    let mut written = 0u64;
    let oom = loop {
        assert!(Instant::now() < deadline, "never ran out of memory");
        let r = c.cmd(&[b"SET".as_slice(), format!("k{written}").as_bytes(), &value]).expect("SET");
        if r != b"+OK\r\n" {
            break String::from_utf8_lossy(&r).into_owned();
        }
        written += 1;
    };
    assert_eq!(oom, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    assert!(written > 10_000, "only {written} keys fit in 4mb");
    // Right at the limit, freed request buffers can bring memory back under it: lower the
    // limit well below the data so every write is refused from here on.
    assert_eq!(c.run("CONFIG SET maxmemory 3mb"), "+OK\r\n");
    assert_eq!(c.run("DBSIZE"), format!(":{written}\r\n"));
    assert!(c.run("INCR counter").starts_with("-OOM"));
    assert!(c.run("SET k0 other").starts_with("-OOM"));
    assert_eq!(c.run("GET k0"), format!("${}\r\n{}\r\n", value.len(), String::from_utf8_lossy(&value)));
    assert_eq!(c.run("DEL k0 k1 k2 k3 k4 k5 k6 k7 k8 k9"), ":10\r\n", "DEL still works");
    assert_eq!(c.run("DBSIZE"), format!(":{}\r\n", written - 10), "nothing was evicted");
    assert_eq!(info_u64(&mut c, "stats", "evicted_keys"), 0);
    // Switching to an evicting policy at run time makes room.
    assert_eq!(c.run("CONFIG SET maxmemory-policy allkeys-random"), "+OK\r\n");
    assert_eq!(c.run("SET again v"), "+OK\r\n");
    assert!(info_u64(&mut c, "stats", "evicted_keys") > 0);
    // One round stops after 500 µs; the executor finishes between commands. INFO's own
    // reply (a few KB, allocated while it runs) is part of the figure it reports.
    let deadline = Instant::now() + PHASE_DEADLINE;
    while info_u64(&mut c, "memory", "used_memory") > 3 * MB + 64 * 1024 {
        assert!(Instant::now() < deadline, "eviction did not bring memory under the limit");
    }
}

#[test]
fn info_reports_limit_policy_and_live_usage() {
    let node = ShoalNode::start(&["--maxmemory", "100mb", "--maxmemory-policy", "volatile-lru"]);
    let mut c = node.connect();
    assert_eq!(info_field(&mut c, "memory", "maxmemory"), "104857600");
    assert_eq!(info_field(&mut c, "memory", "maxmemory_human"), "100.00M");
    assert_eq!(info_field(&mut c, "memory", "maxmemory_policy"), "volatile-lru");
    assert_eq!(info_field(&mut c, "memory", "mem_not_counted_for_evict"), "0");
    let before = info_u64(&mut c, "memory", "used_memory");
    // 10 MB of values: used_memory follows, within the allocator's per-chunk overhead.
    let value = vec![b'x'; 1000];
    write_keys(&mut c, "k", 0..10_000, &value, |_| None, || {});
    let after = info_u64(&mut c, "memory", "used_memory");
    let grown = after - before;
    assert!((10_000_000..13_000_000).contains(&grown), "used_memory grew by {grown}");
    assert_eq!(c.run("FLUSHALL"), "+OK\r\n");
    let flushed = info_u64(&mut c, "memory", "used_memory");
    assert!(flushed < before + 2_000_000, "after FLUSHALL {flushed}, before {before}");
    assert_eq!(c.run("CONFIG SET maxmemory-policy allkeys-lfu"), "+OK\r\n");
    assert_eq!(info_field(&mut c, "memory", "maxmemory_policy"), "allkeys-lfu");
}
