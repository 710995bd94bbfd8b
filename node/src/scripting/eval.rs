//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, and the bridge through which a script's
//! `redis.call` runs a command: checked as Valkey checks script calls (unknown command, arity,
//! `noscript`, writes from a read-only script, keys of another node), then dispatched as a
//! short-lived script client's command, its reply parsed and converted for Lua.

use bytes::Bytes;
use mlua::{Function, Lua, Table, Value};

use super::bridge::{ClearRunning, Running, RUNNING};
use super::convert::{to_arg, to_lua, to_reply};
use super::resp::{self, Resp};
use super::{sha1_hex, Scripting};
use crate::command::Handler;
use crate::exec::client::{Client, ClientState};
use crate::exec::Ctx;

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
        "script|help" => script_help,
        "script|debug" => script_debug,
        other => return super::fcall::handler(other),
    })
}

/// The id the script client has (CLIENT ID from a script).
pub const SCRIPT_CLIENT_ID: u64 = u64::MAX - 1;

fn eval(ctx: &mut Ctx, args: &[Bytes]) {
    let sha = sha1_hex(&args[1]);
    run(ctx, args, &sha, Some(&args[1]), false);
}

fn eval_ro(ctx: &mut Ctx, args: &[Bytes]) {
    let sha = sha1_hex(&args[1]);
    run(ctx, args, &sha, Some(&args[1]), true);
}

fn evalsha(ctx: &mut Ctx, args: &[Bytes]) {
    with_sha(&args[1], |sha| run(ctx, args, sha, None, false));
}

fn evalsha_ro(ctx: &mut Ctx, args: &[Bytes]) {
    with_sha(&args[1], |sha| run(ctx, args, sha, None, true));
}

/// The SHA-1 argument in lower case, without an allocation in the usual (40 bytes) case.
fn with_sha<R>(arg: &[u8], f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 40];
    if arg.len() == buf.len() {
        buf.copy_from_slice(arg);
        buf.make_ascii_lowercase();
        if let Ok(sha) = std::str::from_utf8(&buf) {
            return f(sha);
        }
    }
    f(&String::from_utf8_lossy(arg).to_ascii_lowercase())
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

fn run(ctx: &mut Ctx, args: &[Bytes], sha: &str, body: Option<&Bytes>, ro_command: bool) {
    let Some((keys, argv)) = split_keys(ctx, args, 2) else { return };
    let Some(mut sc) = take_scripting(ctx) else { return };
    let script = match body {
        Some(b) => sc.load(sha, b),
        None => sc.scripts.get(sha).cloned().ok_or_else(String::new),
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
                    label: sha,
                    function: false,
                    command: args,
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
    /// The whole command (FUNCTION STATS shows a busy function's).
    pub command: &'a [Bytes],
}

/// A fresh script client (in the caller's database for each script).
fn script_client() -> Client {
    let mut st = ClientState::new(SCRIPT_CLIENT_ID, String::new(), String::new(), -1, true);
    st.deny_blocking = true;
    st.name = Some(Bytes::from_static(b"lua"));
    Client::detached(st)
}

/// Runs a compiled script or function and writes its reply.
pub(super) fn execute(sc: &mut Scripting, ctx: &mut Ctx, call: Call<'_>) {
    let Call { func: f, keys, argv, ro, label: sha, function, .. } = call;
    let lua = &sc.lua;
    let unbounded = super::Unbounded::new(lua);
    let list = |items: &[Bytes]| -> mlua::Result<Table> {
        let t = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, it) in items.iter().enumerate() {
            t.raw_set(i + 1, lua.create_string(it)?)?;
        }
        Ok(t)
    };
    // EVAL's KEYS and ARGV are globals; a function gets them as arguments.
    let prepared = list(keys).and_then(|k| Ok((k, list(argv)?))).and_then(|(k, a)| {
        if function {
            return Ok((Value::Table(k), Value::Table(a)));
        }
        sc.globals.raw_set("KEYS", k)?;
        sc.globals.raw_set("ARGV", a)?;
        Ok((Value::Nil, Value::Nil))
    });
    let (keys_t, argv_t) = match prepared {
        Ok(x) => x,
        Err(e) => return ctx.out.err(&format!("Error running script: {e}")),
    };
    // The script client is kept between scripts (no allocation per call), reset each time.
    let mut client = sc.client.take().unwrap_or_else(script_client);
    client.st.db = ctx.clients[ctx.me].st.db;
    // Scripts run as the caller's user (checked in the bridge, context `lua`).
    let (user, name) = (ctx.clients[ctx.me].st.user, ctx.clients[ctx.me].st.user_name.clone());
    client.st.set_user(user, &name);
    client.st.resp3 = false;
    client.st.reply_mode = crate::exec::ReplyMode::On;
    let idx = ctx.clients.insert(client);
    // Writes reach replicas as the commands' effects inside MULTI/EXEC (unless the script
    // runs inside a transaction, which already has them).
    let wrap = !ctx.srv.repl.in_exec();
    if wrap {
        crate::replication::primary::exec_begin(ctx.srv);
    }
    // Where this script's effects start in the stream: a shutdown that cuts it short drops them.
    let stream_mark = ctx.srv.repl.mark();
    sc.guard.start(ctx.srv.busy_reply_ms);
    // The bridge reaches this call's context through RUNNING for exactly as long as Lua runs.
    RUNNING.set(Some(Running {
        ctx: ctx as *mut Ctx<'_> as *mut (),
        idx,
        ro,
        guard: &*sc.guard,
        call: (&call as *const Call<'_>).cast::<Call<'static>>(),
        loaded: (sc.functions.libraries.len(), sc.functions.functions.len()),
    }));
    let clear = ClearRunning;
    drop(unbounded);
    let outcome = sc.runner.call::<(bool, Value)>((f, &sc.err_handler, function, keys_t, argv_t));
    drop(clear);
    if ctx.srv.script_busy.take().is_some() {
        after_busy(sc, ctx, stream_mark);
    }
    if wrap {
        crate::replication::primary::exec_end(ctx.srv);
    }
    sc.client = Some(ctx.clients.remove(idx));
    if sc.guard.forced.load(std::sync::atomic::Ordering::Relaxed) {
        // Cut short by a shutdown: as when Valkey exits mid-script, the caller gets no reply.
        ctx.clients[ctx.me].st.close_asap = true;
        return;
    }
    let _unbounded = super::Unbounded::new(&sc.lua);
    let resp3 = ctx.clients[ctx.me].st.resp3;
    ctx.out.resp3 = resp3;
    match outcome {
        Ok((true, v)) => to_reply(&v, ctx.out, sc.guard.resp3.load(std::sync::atomic::Ordering::Relaxed)),
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

/// The busy hook: the first time, makes the script visible to other clients as busy (Valkey's
/// "slow script" warning); every time, serves them once. A shutdown stops the script.
pub(super) fn serve_while_busy(guard: &std::sync::Arc<super::Guard>) {
    let Some(r) = RUNNING.get() else { return };
    // SAFETY: as in `bridge_function`: `execute` set this pointer from its `&mut Ctx` for the
    // duration of the Lua call that runs this hook, and the hook never runs while the bridge
    // holds the context (hooks fire on Lua instructions, the bridge is a Rust function).
    let ctx = unsafe { &mut *(r.ctx as *mut Ctx<'_>) };
    let entering = ctx.srv.script_busy.is_none();
    if entering {
        // SAFETY: `call` points at `execute`'s argument, alive for the whole Lua call.
        let call = unsafe { &*r.call };
        let elapsed = crate::util::now_ms() - guard.started_ms.load(std::sync::atomic::Ordering::Relaxed);
        let kill = if call.function { "FUNCTION KILL" } else { "SCRIPT KILL" };
        log::warn!(
            "Slow script detected: still in execution after {elapsed} milliseconds. You can try killing the script using the {kill} command. Script name is: {}.",
            call.label
        );
        ctx.srv.script_busy = Some(Box::new(super::busy::BusyScript {
            guard: guard.clone(),
            function: call.function.then(|| (call.label.to_string(), call.command.to_vec())),
            started: std::time::Instant::now() - std::time::Duration::from_millis(elapsed.max(0) as u64),
            libraries: r.loaded.0,
            functions: r.loaded.1,
        }));
    }
    crate::exec::executor::serve_while_busy(ctx.srv, ctx.clients, ctx.me, entering);
    if ctx.srv.shutdown.is_some() {
        // SIGTERM while busy (SHUTDOWN NOSAVE already set these): the node stops, the script first.
        use std::sync::atomic::Ordering::Relaxed;
        guard.forced.store(true, Relaxed);
        guard.killed.store(true, Relaxed);
    }
}

/// A script that was busy ended: the normal hook again, and a script a shutdown cut short
/// leaves no effect in the replication stream (the node stops without them, as Valkey does).
fn after_busy(sc: &mut Scripting, ctx: &mut Ctx, mark: crate::replication::primary::StreamMark) {
    use std::sync::atomic::Ordering::Relaxed;
    if sc.guard.line_mode.load(Relaxed) {
        super::busy::install_hook(&sc.lua, sc.guard.clone(), false);
    }
    if sc.guard.forced.load(Relaxed) {
        ctx.srv.repl.rewind(mark);
    }
}

/// `{err = msg}` as `redis.pcall` returns it.
fn err_value(lua: &Lua, msg: &[u8]) -> mlua::Result<(bool, Value)> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set("err", lua.create_string(msg)?)?;
    Ok((false, Value::Table(t)))
}

/// The bridge's converter for replies it does not push itself (arrays, maps, RESP3 types):
/// `(reply bytes, resp3)` to `(true, value)` or `(false, {err=...})`.
pub(super) fn convert_reply(lua: &Lua, (reply, resp3): (mlua::String, bool)) -> mlua::Result<(bool, Value)> {
    let _unbounded = super::Unbounded::new(lua);
    match resp::parse(&reply.as_bytes()) {
        Resp::Error(e) => err_value(lua, &e),
        other => Ok((true, to_lua(lua, other, resp3)?)),
    }
}

/// The `redis` (and `server`) table.
pub fn api_table(
    lua: &Lua,
    call: Function,
    pcall: Function,
    guard: std::sync::Arc<super::Guard>,
) -> mlua::Result<Table> {
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
    t.raw_set(
        "setresp",
        lua.create_function(move |_, v: i64| {
            if v != 2 && v != 3 {
                return Err(mlua::Error::RuntimeError("RESP version must be 2 or 3.".into()));
            }
            guard.resp3.store(v == 3, std::sync::atomic::Ordering::Relaxed);
            Ok(())
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

fn script_help(ctx: &mut Ctx, _args: &[Bytes]) {
    crate::command::server::reply_help_ending(
        ctx,
        b"script",
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
        "    Prints this help.",
    );
}

/// SCRIPT DEBUG: Shoal has no Lua debugger (Valkey's LDB); NO, the default, is accepted.
fn script_debug(ctx: &mut Ctx, args: &[Bytes]) {
    let mode = &args[2];
    if mode.eq_ignore_ascii_case(b"no") {
        ctx.out.ok();
    } else if mode.eq_ignore_ascii_case(b"yes") || mode.eq_ignore_ascii_case(b"sync") {
        ctx.out.err("SCRIPT DEBUG is not supported: Shoal has no Lua debugger (see docs/compat.md)");
    } else {
        ctx.out.err("Use SCRIPT DEBUG YES/SYNC/NO");
    }
}

/// SCRIPT KILL: scripts run to completion on the executor, so none is ever running when
/// this command is read.
fn script_kill(ctx: &mut Ctx, _args: &[Bytes]) {
    super::busy::kill(ctx, true);
}
