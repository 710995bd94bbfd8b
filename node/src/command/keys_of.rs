//! Which arguments of a command are keys, computed from the command's key specs exactly as
//! Valkey's `getKeysUsingKeySpecs` (db.c) does. Cluster mode hashes these arguments to route a
//! command, and COMMAND GETKEYS / GETKEYSANDFLAGS report them, so the two must agree with
//! Valkey for every command in the table, including its quirks (a keyword search never looks
//! at the last argument, `numkeys` is truncated to 32 bits, out-of-range keys of variadic
//! commands are skipped rather than reported).

use bytes::Bytes;

use super::meta::{BeginSearch, CommandMeta, FindKeys, KeySpec};

/// Why key positions could not be computed; COMMAND GETKEYS reports all of these as
/// `Invalid arguments specified for command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// A spec whose begin-search or find-keys type is unknown.
    #[error("unknown key spec")]
    UnknownSpec,
    /// The `numkeys` argument is not an integer, is negative, or is missing.
    #[error("invalid numkeys")]
    InvalidNumkeys,
    /// The first or last key falls outside the arguments (a syntax error in the command).
    #[error("key positions out of range")]
    OutOfRange,
    /// The spec is marked INCOMPLETE: the keys it found may not be all of them.
    #[error("incomplete key spec")]
    Incomplete,
}

/// One key argument: its index in the argument vector and the flags of the spec that found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef {
    pub pos: usize,
    /// Spec flags as in the table (`RW`, `ACCESS`, ...).
    pub flags: &'static [&'static str],
}

fn has(spec: &KeySpec, flag: &str) -> bool {
    spec.flags.contains(&flag)
}

/// Argument indexes of the keys of `args` (`args[0]` is the command name; for a subcommand
/// `args[1]` is its name), from the key specs of `meta`. Specs flagged NOT_KEY are skipped.
pub fn key_positions(meta: &CommandMeta, args: &[Bytes]) -> Result<Vec<usize>, KeysError> {
    let mut out = Vec::new();
    for_each_key(meta, args, false, |k| out.push(k.pos))?;
    Ok(out)
}

/// Like [`key_positions`], with each key's spec flags.
pub fn key_refs(meta: &CommandMeta, args: &[Bytes]) -> Result<Vec<KeyRef>, KeysError> {
    let mut out = Vec::new();
    for_each_key(meta, args, false, |k| out.push(k))?;
    Ok(out)
}

/// Valkey's `getKeysFromCommandWithSpecs`: key specs when they are reliable, otherwise the
/// command's own key-extraction function. Of the commands Shoal implements SET needs one (its
/// spec has VARIABLE_FLAGS: the flags depend on the GET option), and so do SORT and SORT_RO
/// (their BY/GET and STORE specs are of unknown type). An empty result means
/// "no keys found", which COMMAND GETKEYS reports as an error unless the command has the
/// `no_mandatory_keys` flag.
pub fn command_keys(meta: &CommandMeta, args: &[Bytes]) -> Vec<KeyRef> {
    let mut out = Vec::new();
    command_keys_into(meta, args, &mut out);
    out
}

/// [`command_keys`] appended to `out`, so a hot caller (the ACL check) can reuse a buffer.
pub fn command_keys_into(meta: &CommandMeta, args: &[Bytes], out: &mut Vec<KeyRef>) {
    let has_key_spec = meta.key_specs.iter().any(|s| !has(s, "NOT_KEY"));
    let has_var_flags = meta.key_specs.iter().any(|s| has(s, "VARIABLE_FLAGS"));
    if has_key_spec && !has_var_flags {
        let start = out.len();
        if for_each_key(meta, args, false, |k| out.push(k)).is_ok() {
            return;
        }
        out.truncate(start);
    }
    if meta.name == "set" && has_var_flags {
        out.extend(set_keys(args));
        return;
    }
    match meta.name {
        "sort" => out.extend(sort_keys(args, false)),
        "sort_ro" => out.extend(sort_keys(args, true)),
        _ => {}
    }
}

/// Valkey's `sortGetKeys` / `sortROGetKeys`: the sorted key, and for SORT the argument after
/// the last `STORE` found by a scan that skips the arguments of LIMIT (2), GET and BY (1).
/// Patterns of BY and GET are not keys here (cluster mode checks them in the command).
fn sort_keys(args: &[Bytes], readonly: bool) -> Vec<KeyRef> {
    if args.len() < 2 {
        return Vec::new();
    }
    let mut keys = vec![KeyRef { pos: 1, flags: &["RO", "ACCESS"] }];
    if readonly {
        return keys;
    }
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if keyword_eq(a, "limit") {
            i += 2;
        } else if keyword_eq(a, "get") || keyword_eq(a, "by") {
            i += 1;
        } else if keyword_eq(a, "store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    if let Some(pos) = store {
        keys.push(KeyRef { pos, flags: &["OW", "UPDATE"] });
    }
    keys
}

/// True when the command may take keys (`doesCommandHaveKeys`).
pub fn has_keys(meta: &CommandMeta) -> bool {
    meta.key_specs.iter().any(|s| !has(s, "NOT_KEY"))
}

/// Valkey's `setGetKeys`: the key is always argument 1; with a `GET` option (compared as C
/// strings, so case-insensitively and up to a NUL byte) it is read as well as written.
fn set_keys(args: &[Bytes]) -> Option<KeyRef> {
    if args.len() < 2 {
        return None;
    }
    let get = args.iter().skip(3).any(|a| {
        let word = a.split(|&b| b == 0).next().unwrap_or(&[]);
        word.eq_ignore_ascii_case(b"get")
    });
    let flags: &'static [&'static str] = if get { &["RW", "ACCESS", "UPDATE"] } else { &["OW", "UPDATE"] };
    Some(KeyRef { pos: 1, flags })
}

/// `strcasecmp` of an argument against a keyword: the argument ends at its first NUL byte.
fn keyword_eq(arg: &[u8], keyword: &str) -> bool {
    let word = arg.split(|&b| b == 0).next().unwrap_or(&[]);
    word.eq_ignore_ascii_case(keyword.as_bytes())
}

/// Where a spec's keys begin, or `None` when its keyword is absent (the spec is skipped).
fn begin(spec: &KeySpec, args: &[Bytes]) -> Result<Option<i64>, KeysError> {
    let argc = args.len() as i64;
    match spec.begin {
        BeginSearch::Index(pos) => Ok(Some(pos as i64)),
        BeginSearch::Keyword { keyword, startfrom } => {
            let startfrom = startfrom as i64;
            let (start, end) = if startfrom > 0 { (startfrom, argc - 1) } else { (argc + startfrom, 1) };
            // As in Valkey, `end` itself is never examined.
            let mut i = start;
            while i != end {
                if i >= argc || i < 1 {
                    break;
                }
                if keyword_eq(&args[i as usize], keyword) {
                    return Ok(Some(i + 1));
                }
                i = if start <= end { i + 1 } else { i - 1 };
            }
            Ok(None)
        }
        BeginSearch::Unknown => Err(KeysError::UnknownSpec),
    }
}

/// The shard channels of SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH: not keys (their specs are
/// NOT_KEY, so COMMAND GETKEYS finds none), yet cluster mode routes these commands by them
/// as Valkey does (`GET_KEYSPEC_INCLUDE_NOT_KEYS`). Empty for every other command.
pub fn shard_channels(meta: &CommandMeta, args: &[Bytes]) -> Vec<KeyRef> {
    let mut out = Vec::new();
    if meta.has_flag("pubsub") && !meta.key_specs.is_empty() {
        let _ = for_each_key(meta, args, true, |k| out.push(k));
    }
    out
}

fn for_each_key(
    meta: &CommandMeta,
    args: &[Bytes],
    not_keys: bool,
    mut emit: impl FnMut(KeyRef),
) -> Result<(), KeysError> {
    let argc = args.len() as i64;
    for spec in meta.key_specs {
        if has(spec, "NOT_KEY") && !not_keys {
            continue;
        }
        let Some(mut first) = begin(spec, args)? else {
            continue;
        };
        let (last, step) = match spec.find {
            FindKeys::Range { lastkey, step, limit } => {
                let lastkey = lastkey as i64;
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    // Valkey asserts lastkey == -1 here: "every limit-th of the rest".
                    first + ((argc - first) / limit as i64 + lastkey)
                };
                (last, step)
            }
            FindKeys::Keynum { keynumidx, firstkey, step } => {
                let idx = first + keynumidx as i64;
                if keynumidx as i64 >= argc || idx < 0 || idx >= argc {
                    return Err(KeysError::InvalidNumkeys);
                }
                let numkeys = match crate::util::parse_i64(&args[idx as usize]) {
                    Some(n) if n >= 0 => n,
                    _ => return Err(KeysError::InvalidNumkeys),
                };
                first += firstkey as i64;
                // Valkey adds `(int)numkeys` keys `step` apart (MSETEX's pairs): the count is
                // truncated to 32 bits.
                (first + ((numkeys as i32) as i64 - 1) * (step as i64).max(1), step)
            }
            FindKeys::Unknown => return Err(KeysError::UnknownSpec),
        };
        if last >= argc || last < first || first >= argc {
            return Err(KeysError::OutOfRange);
        }
        let step = (step as i64).max(1);
        let mut i = first;
        while i <= last {
            // `last < argc` was checked, so every position is inside the arguments; Valkey
            // skips out-of-range ones for variadic commands instead of failing.
            if i >= 0 {
                emit(KeyRef { pos: i as usize, flags: spec.flags });
            }
            i += step;
        }
        if has(spec, "INCOMPLETE") {
            return Err(KeysError::Incomplete);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::table::COMMANDS;

    fn meta(name: &str) -> &'static CommandMeta {
        let (cmd, sub) = match name.split_once('|') {
            Some((c, s)) => (c, Some(s)),
            None => (name, None),
        };
        let m = COMMANDS.iter().find(|m| m.name == cmd).unwrap_or_else(|| panic!("no {cmd}"));
        match sub {
            Some(s) => m.subcommands.iter().find(|m| m.name == s).unwrap_or_else(|| panic!("no {name}")),
            None => m,
        }
    }

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    fn keys(name: &str, line: &str) -> Result<Vec<usize>, KeysError> {
        key_positions(meta(name), &args(line))
    }

    fn synthetic(key_specs: &'static [KeySpec]) -> CommandMeta {
        CommandMeta {
            name: "synthetic",
            arity: -2,
            flags: &[],
            acl: &[],
            tips: &[],
            key_specs,
            first_key: 0,
            last_key: 0,
            step: 0,
            group: "generic",
            since: "1.0.0",
            summary: "",
            complexity: "",
            args: &[],
            subcommands: &[],
        }
    }

    #[test]
    fn single_and_fixed_keys() {
        assert_eq!(keys("get", "GET k"), Ok(vec![1]));
        assert_eq!(keys("set", "SET k v"), Ok(vec![1]));
        assert_eq!(keys("set", "SET k v GET EX 10"), Ok(vec![1]));
        assert_eq!(keys("getex", "GETEX k PERSIST"), Ok(vec![1]));
        assert_eq!(keys("lcs", "LCS a b LEN"), Ok(vec![1, 2]));
        assert_eq!(keys("copy", "COPY a b DB 1 REPLACE"), Ok(vec![1, 2]));
        assert_eq!(keys("rename", "RENAME a b"), Ok(vec![1, 2]));
        assert_eq!(keys("renamenx", "RENAMENX a b"), Ok(vec![1, 2]));
        assert_eq!(keys("move", "MOVE a 1"), Ok(vec![1]));
        assert_eq!(keys("ping", "PING"), Ok(vec![]));
    }

    #[test]
    fn variadic_keys() {
        assert_eq!(keys("mget", "MGET a b c"), Ok(vec![1, 2, 3]));
        assert_eq!(keys("del", "DEL a"), Ok(vec![1]));
        assert_eq!(keys("unlink", "UNLINK a b"), Ok(vec![1, 2]));
        assert_eq!(keys("exists", "EXISTS a b a"), Ok(vec![1, 2, 3]));
        assert_eq!(keys("touch", "TOUCH a b"), Ok(vec![1, 2]));
        assert_eq!(keys("mset", "MSET a 1 b 2 c 3"), Ok(vec![1, 3, 5]));
        assert_eq!(keys("msetnx", "MSETNX a 1 b 2"), Ok(vec![1, 3]));
        // An odd MSET still yields the keys at the even steps before the end.
        assert_eq!(keys("mset", "MSET a 1 b"), Ok(vec![1, 3]));
    }

    #[test]
    fn subcommand_keys() {
        assert_eq!(keys("object|encoding", "OBJECT ENCODING k"), Ok(vec![2]));
        assert_eq!(keys("object|freq", "OBJECT FREQ k"), Ok(vec![2]));
        assert_eq!(keys("memory|usage", "MEMORY USAGE k SAMPLES 5"), Ok(vec![2]));
        assert_eq!(keys("config|get", "CONFIG GET maxmemory"), Ok(vec![]));
    }

    #[test]
    fn every_table_command_is_consistent_with_its_legacy_triple() {
        // For commands whose keys are a plain range, the specs and the (first, last, step)
        // triple COMMAND INFO reports must find the same keys.
        for m in COMMANDS.iter().chain(COMMANDS.iter().flat_map(|m| m.subcommands)) {
            // NOT_KEY specs (the shard channels of SPUBLISH) find no keys, whatever the triple.
            if m.first_key == 0 || m.key_specs.len() != 1 || m.key_specs[0].flags.contains(&"NOT_KEY") {
                continue;
            }
            let n = if m.arity > 0 { m.arity as usize } else { 7 };
            let a: Vec<Bytes> = (0..n).map(|i| Bytes::from(format!("a{i}"))).collect();
            let got = key_positions(m, &a).unwrap_or_default();
            let last = if m.last_key < 0 { n as i32 + m.last_key } else { m.last_key };
            let want: Vec<usize> =
                (m.first_key..=last).step_by(m.step as usize).map(|i| i as usize).collect();
            assert_eq!(got, want, "{}", m.name);
        }
    }

    static KEYNUM: &[KeySpec] = &[KeySpec {
        flags: &["RW"],
        begin: BeginSearch::Index(2),
        find: FindKeys::Keynum { keynumidx: 0, firstkey: 1, step: 1 },
    }];

    #[test]
    fn keynum_specs() {
        // EVAL script numkeys key... arg...
        let m = synthetic(KEYNUM);
        assert_eq!(key_positions(&m, &args("EVAL s 2 a b x")), Ok(vec![3, 4]));
        // No keys at all is "out of range" too: Valkey then falls back to the command's own
        // key function.
        assert_eq!(key_positions(&m, &args("EVAL s 0 x")), Err(KeysError::OutOfRange));
        assert_eq!(key_positions(&m, &args("EVAL s 0")), Err(KeysError::OutOfRange));
        assert_eq!(key_positions(&m, &args("EVAL s 3 a b")), Err(KeysError::OutOfRange));
        assert_eq!(key_positions(&m, &args("EVAL s -1 a")), Err(KeysError::InvalidNumkeys));
        assert_eq!(key_positions(&m, &args("EVAL s x a")), Err(KeysError::InvalidNumkeys));
        assert_eq!(key_positions(&m, &args("EVAL s")), Err(KeysError::InvalidNumkeys));
        // numkeys is truncated to 32 bits: 2^32 + 1 means one key.
        assert_eq!(key_positions(&m, &args("EVAL s 4294967297 a b")), Ok(vec![3]));
    }

    static KEYWORD: &[KeySpec] = &[
        KeySpec {
            flags: &["RO"],
            begin: BeginSearch::Keyword { keyword: "STREAMS", startfrom: 1 },
            find: FindKeys::Range { lastkey: -1, step: 1, limit: 2 },
        },
        KeySpec {
            flags: &["OW"],
            begin: BeginSearch::Keyword { keyword: "STORE", startfrom: -2 },
            find: FindKeys::Range { lastkey: 0, step: 1, limit: 0 },
        },
    ];

    #[test]
    fn keyword_specs() {
        let m = synthetic(KEYWORD);
        // XREAD COUNT 2 STREAMS a b 0 0: half of what follows STREAMS.
        assert_eq!(key_positions(&m, &args("XREAD COUNT 2 STREAMS a b 0 0")), Ok(vec![4, 5]));
        assert_eq!(key_positions(&m, &args("XREAD streams a 0")), Ok(vec![2]));
        // Keyword absent: the spec contributes nothing.
        assert_eq!(key_positions(&m, &args("XREAD COUNT 2")), Ok(vec![]));
        // The last argument is never taken as the keyword.
        assert_eq!(key_positions(&m, &args("XREAD a STREAMS")), Ok(vec![]));
        // Searching backwards from the second-to-last argument, argument 1 is never looked at.
        assert_eq!(key_positions(&m, &args("X a STORE d")), Ok(vec![3]));
        assert_eq!(key_positions(&m, &args("X STORE d")), Ok(vec![]));
        // A keyword followed by NUL and more bytes matches, as strcasecmp stops at the NUL.
        let a = vec![
            Bytes::from_static(b"X"),
            Bytes::from_static(b"streams\0junk"),
            Bytes::from_static(b"k"),
            Bytes::from_static(b"0"),
        ];
        assert_eq!(key_positions(&m, &a), Ok(vec![2]));
    }

    static INCOMPLETE: &[KeySpec] = &[KeySpec {
        flags: &["RO", "INCOMPLETE"],
        begin: BeginSearch::Index(1),
        find: FindKeys::Range { lastkey: 0, step: 1, limit: 0 },
    }];

    static NOT_KEY_AND_NEG: &[KeySpec] = &[
        KeySpec {
            flags: &["NOT_KEY"],
            begin: BeginSearch::Index(1),
            find: FindKeys::Range { lastkey: 0, step: 1, limit: 0 },
        },
        KeySpec {
            flags: &["RW"],
            begin: BeginSearch::Index(2),
            find: FindKeys::Range { lastkey: -2, step: 1, limit: 0 },
        },
    ];

    static UNKNOWN: &[KeySpec] =
        &[KeySpec { flags: &["RW"], begin: BeginSearch::Unknown, find: FindKeys::Unknown }];

    #[test]
    fn incomplete_not_key_negative_unknown() {
        let m = synthetic(INCOMPLETE);
        assert_eq!(key_positions(&m, &args("SORT k")), Err(KeysError::Incomplete));
        let m = synthetic(NOT_KEY_AND_NEG);
        // lastkey -2: up to the second-to-last argument.
        assert_eq!(key_positions(&m, &args("X c a b z")), Ok(vec![2, 3]));
        assert_eq!(key_positions(&m, &args("X c z")), Err(KeysError::OutOfRange));
        let m = synthetic(UNKNOWN);
        assert_eq!(key_positions(&m, &args("X a")), Err(KeysError::UnknownSpec));
        assert!(command_keys(&m, &args("X a")).is_empty());
    }

    #[test]
    fn set_flags_depend_on_get() {
        let m = meta("set");
        let k = command_keys(m, &args("SET k v"));
        assert_eq!(k, vec![KeyRef { pos: 1, flags: &["OW", "UPDATE"] }]);
        let k = command_keys(m, &args("SET k v gEt"));
        assert_eq!(k[0].flags, &["RW", "ACCESS", "UPDATE"]);
        // Too few arguments: no key rather than a position past the end.
        assert!(command_keys(m, &args("SET")).is_empty());
        // GET as the value does not count.
        let k = command_keys(m, &args("SET k get"));
        assert_eq!(k[0].flags, &["OW", "UPDATE"]);
    }

    #[test]
    fn never_panics_on_short_or_odd_arguments() {
        for m in COMMANDS.iter().chain(COMMANDS.iter().flat_map(|m| m.subcommands)) {
            for n in 0..6 {
                let a: Vec<Bytes> = (0..n).map(|_| Bytes::from_static(b"-7")).collect();
                let _ = key_positions(m, &a);
                let _ = command_keys(m, &a);
            }
        }
    }
}
