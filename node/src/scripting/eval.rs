//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, and the bridge through which a script's
//! `redis.call` runs a command: checked as Valkey checks script calls (unknown command, arity,
//! `noscript`, writes from a read-only script, keys of another node), then dispatched as a
//! short-lived script client's command, its reply parsed and converted for Lua.

use bytes::Bytes;
use mlua::{Function, Lua, MultiValue, Table, Value};

use super::convert::{to_arg, to_lua, to_reply};
use super::resp::{self, Resp};
use super::{sha1_hex, Scripting};
use crate::command::Handler;
use crate::exec::client::{Client, ClientState};
use crate::exec::Ctx;
use crate::protocol::Reply;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "eval" => eval,
        "evalsha" => evalsha,
        "eval_ro" => eval_ro,
        "evalsha_ro" => evalsha_ro,
        "script|load" => script_load,
        "script|exists" => script_exists,
        "script|flush" => script_flush,
        "script|kill" => script_kill,
        "script|show" => script_show,
        other => return super::fcall::handler(other),
    })
}

/// The id the script client has (CLIENT ID from a script).
pub(crate) const SCRIPT_CLIENT_ID: u64 = u64::MAX - 1;

fn eval(ctx: &mut Ctx, args: &[Bytes]) {
    let sha = sha1_hex(&args[1]);
    run(ctx, args, sha, Some(&args[1]), false);
}

fn eval_ro(ctx: &mut Ctx, args: &[Bytes]) {
    let sha = sha1_hex(&args[1]);
    run(ctx, args, sha, Some(&args[1]), true);
}

fn evalsha(ctx: &mut Ctx, args: &[Bytes]) {
    let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    run(ctx, args, sha, None, false);
}

fn evalsha_ro(ctx: &mut Ctx, args: &[Bytes]) {
    let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    run(ctx, args, sha, None, true);
}

/// The node's Lua state, created at first use.
pub(super) fn take_scripting(ctx: &mut Ctx) -> Option<Box<Scripting>> {
    match ctx.srv.scripting.take() {
        Some(s) => Some(s),
        None => match Scripting::new() {
            Ok(s) => Some(Box::new(s)),
            Err(e) => {
                ctx.out.err(&e.to_string());
                None
            }
        },
    }
}

/// The numkeys argument at `args[at]` and the keys and arguments after it, or the error sent.
pub(super) fn split_keys<'a>(
    ctx: &mut Ctx,
    args: &'a [Bytes],
    at: usize,
) -> Option<(&'a [Bytes], &'a [Bytes])> {
    let numkeys = ctx.arg_i64(&args[at])?;
    if numkeys < 0 {
        ctx.out.err("Number of keys can't be negative");
        return None;
    }
    if numkeys as usize > args.len() - at - 1 {
        ctx.out.err("Number of keys can't be greater than number of args");
        return None;
    }
    Some(args[at + 1..].split_at(numkeys as usize))
}

/// The `*_RO` refusal of a script or function that may write.
pub(super) const WRITE_FLAG_RO: &str = "Can not execute a script with write flag using *_ro command.";

fn run(ctx: &mut Ctx, args: &[Bytes], sha: String, body: Option<&Bytes>, ro_command: bool) {
    let Some((keys, argv)) = split_keys(ctx, args, 2) else { return };
    let Some(mut sc) = take_scripting(ctx) else { return };
    let script = match body {
        Some(b) => sc.load(&sha, b),
        None => sc.scripts.get(&sha).cloned().ok_or_else(String::new),
    };
    match script {
        Ok(s) => {
            let sc = &mut *sc;
            // With a shebang the flags decide; without one, only the *_RO form is read-only.
            let no_writes = s.flags.as_ref().is_some_and(|f| f.iter().any(|x| x == "no-writes"));
            if ro_command && s.flags.is_some() && !no_writes {
                ctx.out.err(WRITE_FLAG_RO);
            } else {
                let call = Call {
                    func: &s.func,
                    keys,
                    argv,
                    ro: ro_command || no_writes,
                    label: &sha,
                    function: false,
                };
                execute(sc, ctx, call);
            }
        }
        Err(e) if e.is_empty() => ctx.out.error("NOSCRIPT No matching script. Please use EVAL."),
        Err(e) => ctx.out.err(&e),
    }
    ctx.srv.scripting = Some(sc);
}

/// What to run: an EVAL script (`KEYS`/`ARGV` globals) or a function (`(KEYS, ARGV)`).
pub(super) struct Call<'a> {
    pub func: &'a Function,
    pub keys: &'a [Bytes],
    pub argv: &'a [Bytes],
    /// Writes are refused (`*_RO`, `no-writes`).
    pub ro: bool,
    /// The SHA-1 or function name errors name.
    pub label: &'a str,
    pub function: bool,
}

std::thread_local! {
    /// The running script's context for the bridge: (`*mut Ctx`, script client index, read-only).
    static RUNNING: std::cell::Cell<Option<(*mut (), usize, bool)>> = const { std::cell::Cell::new(None) };
}

/// Clears `RUNNING` when the script returns or unwinds.
struct ClearRunning;

impl Drop for ClearRunning {
    fn drop(&mut self) {
        RUNNING.set(None);
    }
}

/// A fresh script client (in the caller's database for each script).
fn script_client() -> Client {
    let mut st = ClientState::new(SCRIPT_CLIENT_ID, String::new(), String::new(), -1, true);
    st.deny_blocking = true;
    st.name = Some(Bytes::from_static(b"lua"));
    Client::detached(st)
}

/// The bridge `redis.call` and `redis.pcall` call (`bridge.f`), created once with the state.
pub fn bridge_function(
    lua: &Lua,
    bridge: Table,
    guard: std::sync::Arc<super::Guard>,
) -> mlua::Result<Function> {
    // One reply buffer for every call (a fresh one would cost a 16 KiB allocation per call).
    let scratch = std::cell::RefCell::new(Reply::new(false));
    lua.create_function(move |lua, args: MultiValue| {
        let Some((p, idx, ro)) = RUNNING.get() else {
            return err_value(lua, b"ERR redis.call is only available while a script runs");
        };
        // SAFETY: `execute` stores this pointer from its `&mut Ctx` only for the duration of the
        // Lua call on this thread, and uses `ctx` again only after that call returned; Lua runs
        // this function only from inside that call, and never re-entrantly (a script cannot
        // run EVAL or FCALL: both are `noscript`). So this is the only live reference.
        let ctx = unsafe { &mut *(p as *mut Ctx<'_>) };
        let mut reply = scratch.try_borrow_mut().map_err(|_| mlua::Error::RecursiveMutCallback)?;
        call_command(lua, ctx, (idx, ro), &bridge, &guard, &mut reply, args)
    })
}

/// Runs a compiled script or function and writes its reply.
pub(super) fn execute(sc: &mut Scripting, ctx: &mut Ctx, call: Call<'_>) {
    let Call { func: f, keys, argv, ro, label: sha, function } = call;
    let lua = &sc.lua;
    let list = |items: &[Bytes]| -> mlua::Result<Table> {
        let t = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, it) in items.iter().enumerate() {
            t.raw_set(i + 1, lua.create_string(it)?)?;
        }
        Ok(t)
    };
    let prepared = list(keys).and_then(|k| Ok((k, list(argv)?))).and_then(|(k, a)| {
        if !function {
            lua.globals().raw_set("KEYS", k.clone())?;
            lua.globals().raw_set("ARGV", a.clone())?;
        }
        sc.bridge.raw_set("resp", 2)?;
        Ok((k, a))
    });
    let (keys_t, argv_t) = match prepared {
        Ok(x) => x,
        Err(e) => return ctx.out.err(&format!("Error running script: {e}")),
    };
    // The script client is kept between scripts (no allocation per call), reset each time.
    let mut client = sc.client.take().unwrap_or_else(script_client);
    client.st.db = ctx.clients[ctx.me].st.db;
    client.st.resp3 = false;
    client.st.reply_mode = crate::exec::ReplyMode::On;
    let idx = ctx.clients.insert(client);
    // Writes reach replicas as the commands' effects inside MULTI/EXEC (unless the script
    // runs inside a transaction, which already has them).
    let wrap = !ctx.srv.repl.in_exec();
    if wrap {
        crate::replication::primary::exec_begin(ctx.srv);
    }
    {
        use std::sync::atomic::Ordering::Relaxed;
        sc.guard.started_ms.store(crate::util::now_ms(), Relaxed);
        sc.guard.limit_ms.store(ctx.srv.config.get_i64("busy-reply-threshold").max(0), Relaxed);
        sc.guard.wrote.store(false, Relaxed);
    }
    // The bridge reaches this call's context through RUNNING for exactly as long as Lua runs.
    RUNNING.set(Some((ctx as *mut Ctx<'_> as *mut (), idx, ro)));
    let clear = ClearRunning;
    let outcome =
        sc.runner.call::<(bool, Value)>((f.clone(), sc.err_handler.clone(), function, keys_t, argv_t));
    drop(clear);
    if wrap {
        crate::replication::primary::exec_end(ctx.srv);
    }
    sc.client = Some(ctx.clients.remove(idx));
    let resp3 = ctx.clients[ctx.me].st.resp3;
    ctx.out.resp3 = resp3;
    match outcome {
        Ok((true, v)) => to_reply(&v, ctx.out),
        Ok((false, Value::Table(t))) => {
            let msg =
                t.raw_get::<mlua::String>("err").map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned());
            let msg = msg.unwrap_or_else(|_| "ERR unknown error".into());
            let line = t.raw_get::<i64>("line").ok();
            let source = t
                .raw_get::<mlua::String>("source")
                .ok()
                .map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned());
            let text = match (source, line) {
                (Some(src), Some(line)) => format!("{msg} script: {sha}, on {src}:{line}."),
                _ => msg,
            };
            ctx.out.error(&text.replace(['\r', '\n'], " "));
        }
        Ok((false, other)) => ctx.out.err(&format!("Error running script {sha}: {other:?}")),
        Err(e) => ctx.out.err(&format!("Error running script {sha}: {e}")),
    }
}

/// `{err = msg}` as `redis.pcall` returns it.
fn err_value(lua: &Lua, msg: &[u8]) -> mlua::Result<(bool, Value)> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set("err", lua.create_string(msg)?)?;
    Ok((false, Value::Table(t)))
}

/// One `redis.call` / `redis.pcall`: `(true, reply)` or `(false, {err=...})`.
fn call_command(
    lua: &Lua,
    ctx: &mut Ctx,
    (idx, ro): (usize, bool),
    bridge: &Table,
    guard: &super::Guard,
    reply: &mut Reply,
    args: MultiValue,
) -> mlua::Result<(bool, Value)> {
    if args.is_empty() {
        return err_value(lua, b"ERR Please specify at least one argument for this redis lib call");
    }
    let mut argv = Vec::with_capacity(args.len());
    for v in args.iter() {
        match to_arg(v) {
            Some(b) => argv.push(b),
            None => {
                return err_value(lua, b"ERR Lua redis lib command arguments must be strings or integers")
            }
        }
    }
    let registry = ctx.srv.registry;
    let Some(mut entry) = registry.lookup(&argv[0]) else {
        return err_value(lua, b"ERR Unknown Redis command called from script");
    };
    if let (false, Some(sub)) = (entry.subs.is_empty(), argv.get(1)) {
        if let Some(s) = entry.sub(sub) {
            entry = s;
        }
    }
    let (arity, n) = (entry.meta.arity, argv.len() as i32);
    if (arity > 0 && n != arity) || n < -arity {
        return err_value(lua, b"ERR Wrong number of args calling Redis command from script");
    }
    if entry.meta.has_flag("noscript") {
        return err_value(lua, b"ERR This Redis command is not allowed from script");
    }
    if ro && entry.meta.has_flag("write") {
        return err_value(lua, b"ERR Write commands are not allowed from read-only scripts.");
    }
    if ctx.srv.cluster.is_some() && !keys_are_local(ctx, entry.meta, &argv) {
        return err_value(lua, b"ERR Script attempted to access a non local key in a cluster node");
    }
    if entry.meta.has_flag("write") {
        guard.wrote.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let resp3 = bridge.raw_get::<i64>("resp").unwrap_or(2) == 3;
    ctx.clients[idx].st.resp3 = resp3;
    if reply.buf.capacity() > 1 << 20 {
        // A huge reply once: do not keep its buffer for every later call.
        *reply = Reply::new(resp3);
    }
    reply.buf.clear();
    reply.resp3 = resp3;
    crate::exec::dispatch::dispatch(ctx.srv, ctx.clients, reply, idx, &argv);
    // The common replies straight into Lua values; the rest through the parser.
    if let Some(v) = super::convert::scalar_to_lua(lua, &reply.buf)? {
        return Ok((true, v));
    }
    match resp::parse(&reply.buf) {
        Resp::Error(e) => err_value(lua, &e),
        other => Ok((true, to_lua(lua, other, resp3)?)),
    }
}

/// Cluster mode: every key the command names must be in a slot this node's shard serves
/// (a replica runs read-only scripts for READONLY clients).
fn keys_are_local(ctx: &Ctx, meta: &crate::command::meta::CommandMeta, argv: &[Bytes]) -> bool {
    let Some(cl) = ctx.srv.cluster.as_ref() else { return true };
    let mine = cl.me().map(|(shard, _)| shard);
    crate::command::keys_of::command_keys(meta, argv)
        .iter()
        .all(|k| mine.is_some() && cl.shard_of(crate::keyspace::slot::key_slot(&argv[k.pos])) == mine)
}

/// The `redis` (and `server`) table.
pub fn api_table(lua: &Lua, call: Function, pcall: Function, bridge: &Table) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("call", call)?;
    t.raw_set("pcall", pcall)?;
    t.raw_set(
        "error_reply",
        lua.create_function(|lua, v: Value| {
            let Value::String(s) = v else {
                return err_value(lua, b"ERR wrong number or type of arguments").map(|r| r.1);
            };
            let s = s.as_bytes();
            // "-CODE msg" keeps its code; anything else becomes "ERR msg".
            let msg = match s.strip_prefix(b"-") {
                Some(rest) if rest.contains(&b' ') => rest.to_vec(),
                Some(rest) => [b"ERR ".as_slice(), rest].concat(),
                None => [b"ERR ".as_slice(), &s[..]].concat(),
            };
            err_value(lua, &msg).map(|r| r.1)
        })?,
    )?;
    t.raw_set(
        "status_reply",
        lua.create_function(|lua, v: Value| {
            let Value::String(s) = v else {
                return err_value(lua, b"ERR wrong number or type of arguments").map(|r| r.1);
            };
            let r = lua.create_table_with_capacity(0, 1)?;
            r.raw_set("ok", s)?;
            Ok(Value::Table(r))
        })?,
    )?;
    t.raw_set(
        "sha1hex",
        lua.create_function(|lua, v: Value| match v {
            Value::String(s) => lua.create_string(sha1_hex(&s.as_bytes())),
            Value::Integer(n) => lua.create_string(sha1_hex(n.to_string().as_bytes())),
            Value::Number(f) => lua.create_string(sha1_hex(super::convert::lua_number(f).as_bytes())),
            _ => Err(mlua::Error::RuntimeError("wrong number of arguments".into())),
        })?,
    )?;
    t.raw_set(
        "log",
        lua.create_function(|_, (level, parts): (i64, mlua::Variadic<Value>)| {
            let text: Vec<String> =
                parts.iter().filter_map(to_arg).map(|b| String::from_utf8_lossy(&b).into_owned()).collect();
            let text = text.join(" ");
            match level {
                0 => log::debug!("{text}"),
                1 | 2 => log::info!("{text}"),
                3 => log::warn!("{text}"),
                _ => return Err(mlua::Error::RuntimeError("Invalid debug level.".into())),
            }
            Ok(())
        })?,
    )?;
    let b = bridge.clone();
    t.raw_set(
        "setresp",
        lua.create_function(move |_, v: i64| {
            if v != 2 && v != 3 {
                return Err(mlua::Error::RuntimeError("RESP version must be 2 or 3.".into()));
            }
            b.raw_set("resp", v)
        })?,
    )?;
    // Scripts always replicate as effects (Valkey 7+): these are kept for old scripts.
    t.raw_set("set_repl", lua.create_function(|_, _v: Value| Ok(()))?)?;
    t.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    for (name, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        t.raw_set(name, v)?;
    }
    t.raw_set("REDIS_VERSION", crate::REDIS_VERSION)?;
    let num =
        crate::REDIS_VERSION.split('.').filter_map(|p| p.parse::<i64>().ok()).fold(0, |acc, p| acc * 256 + p);
    t.raw_set("REDIS_VERSION_NUM", num)?;
    Ok(t)
}

/// SCRIPT LOAD script
fn script_load(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(mut sc) = take_scripting(ctx) else { return };
    let sha = sha1_hex(&args[2]);
    match sc.load(&sha, &args[2]) {
        Ok(_) => ctx.out.bulk(sha.as_bytes()),
        Err(e) => ctx.out.err(&e),
    }
    ctx.srv.scripting = Some(sc);
}

/// SCRIPT EXISTS sha [sha ...]
fn script_exists(ctx: &mut Ctx, args: &[Bytes]) {
    let found: Vec<bool> = args[2..]
        .iter()
        .map(|a| {
            let sha = String::from_utf8_lossy(a).to_ascii_lowercase();
            ctx.srv.scripting.as_ref().is_some_and(|s| s.contains(&sha))
        })
        .collect();
    ctx.out.array(found.len());
    for f in found {
        ctx.out.int(i64::from(f));
    }
}

/// SCRIPT FLUSH [ASYNC|SYNC]
fn script_flush(ctx: &mut Ctx, args: &[Bytes]) {
    if let Some(mode) = args.get(2) {
        if args.len() > 3 || !(mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync")) {
            return ctx.out.err("SCRIPT FLUSH only support SYNC|ASYNC option");
        }
    }
    if let Some(sc) = ctx.srv.scripting.as_mut() {
        sc.flush();
    }
    ctx.out.ok();
}

/// SCRIPT SHOW sha
fn script_show(ctx: &mut Ctx, args: &[Bytes]) {
    let sha = String::from_utf8_lossy(&args[2]).to_ascii_lowercase();
    match ctx.srv.scripting.as_ref().and_then(|s| s.body(&sha)).cloned() {
        Some(body) => ctx.out.bulk(&body),
        None => ctx.out.error("NOSCRIPT No matching script. Please use EVAL."),
    }
}

/// SCRIPT KILL: scripts run to completion on the executor, so none is ever running when
/// this command is read.
fn script_kill(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.error("NOTBUSY No scripts in execution right now.");
}
