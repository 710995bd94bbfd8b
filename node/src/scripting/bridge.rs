//! `redis.call` and `redis.pcall`, written against the Lua C API.
//!
//! They are the hot path of every script, so they skip mlua's callback machinery (a
//! `MultiValue` of owned values per call, registry references for every value, a protected call
//! per table or string built): the arguments are read straight off the Lua stack, the command
//! runs through the executor's dispatch as the script client's, and the common replies
//! (integer, bulk, status, error) are pushed straight back. Other replies (arrays, maps, RESP3
//! types) go through an mlua converter.
//!
//! They are C functions rather than Lua ones so that a script's `return redis.call(...)`, a
//! tail call, keeps the script's frame: errors then name the script's own line, as Valkey's.
//!
//! Lua raises errors with `longjmp`, which must not cross a Rust frame that owns something. So
//! each call is split: [`run`] (all the Rust work, no Lua call that can raise) returns plain
//! data, and only then are values pushed, from frames that hold nothing but borrows.

use std::cell::UnsafeCell;
use std::ffi::c_int;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use mlua::{ffi, lua_State};

use super::Guard;
use crate::exec::Ctx;
use crate::protocol::Reply;

/// The running script, for the bridge and the busy hook.
#[derive(Clone, Copy)]
pub(super) struct Running {
    /// The `&mut Ctx` of the EVAL/FCALL command.
    pub ctx: *mut (),
    /// The script client's index.
    pub idx: usize,
    /// Writes are refused (read-only script).
    pub ro: bool,
    /// The script's guard (clock, writes, protocol).
    pub guard: *const Guard,
    /// The call being run (read only by the busy hook).
    pub call: *const super::eval::Call<'static>,
    /// Libraries and functions loaded (FUNCTION STATS while the state is in use).
    pub loaded: (usize, usize),
}

std::thread_local! {
    pub(super) static RUNNING: std::cell::Cell<Option<Running>> = const { std::cell::Cell::new(None) };
    /// The reply buffer every call reuses (a fresh one costs a 16 KiB allocation per call).
    static SCRATCH: UnsafeCell<Reply> = UnsafeCell::new(Reply::new(false));
}

/// Clears `RUNNING` when the script returns or unwinds.
pub(super) struct ClearRunning;

impl Drop for ClearRunning {
    fn drop(&mut self) {
        RUNNING.set(None);
    }
}

/// Registry key of the converter for replies the bridge does not push itself.
pub(super) const CONVERT_KEY: &std::ffi::CStr = c"shoal.convert";

/// What [`run`] did: the reply is in the scratch buffer, or the call was refused.
enum Outcome {
    Reply {
        resp3: bool,
    },
    Refused(&'static [u8]),
    /// Refused with a message built at run time, left in the scratch reply's buffer (so no
    /// owned value lives in a frame a Lua error may skip).
    RefusedScratch,
}

/// `redis.call`: the reply, or the error table raised as the script's error.
///
/// # Safety
/// Called by Lua as a C function.
pub(super) unsafe extern "C-unwind" fn redis_call(state: *mut lua_State) -> c_int {
    // SAFETY: `state` is the live state calling us; `call` leaves (ok, value) on the stack and
    // `lua_error` raises the `{err=...}` table on top. Nothing here owns memory.
    unsafe {
        call(state);
        let ok = ffi::lua_toboolean(state, -2) != 0;
        ffi::lua_remove(state, -2);
        if !ok {
            ffi::lua_error(state);
        }
    }
    1
}

/// `redis.pcall`: the reply, or the error table as a value.
///
/// # Safety
/// Called by Lua as a C function.
pub(super) unsafe extern "C-unwind" fn redis_pcall(state: *mut lua_State) -> c_int {
    // SAFETY: as in `redis_call`.
    unsafe {
        call(state);
        ffi::lua_remove(state, -2);
    }
    1
}

/// Runs the call whose arguments are the whole stack and pushes `(ok, value)`.
///
/// # Safety
/// `state` is a live Lua state inside a C function call.
unsafe fn call(state: *mut lua_State) {
    // SAFETY: reading the stack raises nothing (see `run`).
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { run(state) }));
    let outcome = match outcome {
        Ok(o) => o,
        Err(panic) => {
            drop(panic);
            Outcome::Refused(b"ERR internal error while running the command")
        }
    };
    // SAFETY: from here on this frame holds no owned value, so a raised error skips nothing;
    // the scratch reply is a thread-local, not re-entered (scripts cannot run scripts).
    unsafe {
        match outcome {
            Outcome::Refused(msg) => push_error(state, msg),
            Outcome::RefusedScratch => SCRATCH.with(|s| push_error(state, &(*s.get()).buf)),
            Outcome::Reply { resp3 } => SCRATCH.with(|s| push_reply(state, &(*s.get()).buf, resp3)),
        }
    }
}

/// Reads the arguments, checks the call as Valkey does and dispatches it into the scratch
/// reply. Calls no Lua function that can raise an error.
///
/// # Safety
/// `state` is a live Lua state inside a C function call.
unsafe fn run(state: *mut lua_State) -> Outcome {
    let Some(r) = RUNNING.get() else {
        return Outcome::Refused(b"ERR redis.call is only available while a script runs");
    };
    // SAFETY: `lua_gettop`, `lua_type`, `lua_tolstring` of a string and `lua_tonumber` neither
    // allocate nor raise.
    let argv = unsafe {
        let n = ffi::lua_gettop(state);
        if n == 0 {
            return Outcome::Refused(b"ERR Please specify at least one argument for this redis lib call");
        }
        let mut argv = Vec::with_capacity(n as usize);
        for i in 1..=n {
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(state, i, &mut len);
                    argv.push(Bytes::copy_from_slice(std::slice::from_raw_parts(p as *const u8, len)));
                }
                ffi::LUA_TNUMBER => argv.push(number_arg(ffi::lua_tonumber(state, i))),
                _ => {
                    return Outcome::Refused(
                        b"ERR Lua redis lib command arguments must be strings or integers",
                    )
                }
            }
        }
        argv
    };
    // SAFETY: `execute` set these pointers from its `&mut Ctx` and its script's guard for the
    // duration of the Lua call this runs inside; nothing else uses them meanwhile (the busy
    // hook runs on Lua instructions, never inside this C function).
    let (ctx, guard) = unsafe { (&mut *(r.ctx as *mut Ctx<'_>), &*r.guard) };
    // SAFETY: the scratch reply is only used here and in `call` after this returned.
    SCRATCH.with(|s| command(ctx, r.idx, r.ro, guard, unsafe { &mut *s.get() }, &argv))
}

/// A number argument as Valkey's scripts send it: integral values as integers, others as Lua
/// prints them (`%.14g`).
fn number_arg(n: f64) -> Bytes {
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        let i = n as i64;
        if (n - i as f64).abs() < f64::EPSILON {
            return Bytes::from(itoa::Buffer::new().format(i).as_bytes().to_vec());
        }
    }
    Bytes::from(super::convert::lua_number(n))
}

/// Checks one call (unknown command, arity, `noscript`, writes from a read-only script, keys of
/// another node) and runs it as the script client's command.
fn command(ctx: &mut Ctx, idx: usize, ro: bool, guard: &Guard, reply: &mut Reply, argv: &[Bytes]) -> Outcome {
    let registry = ctx.srv.registry;
    let Some(mut entry) = registry.lookup(&argv[0]) else {
        return Outcome::Refused(b"ERR Unknown Redis command called from script");
    };
    if let (false, Some(sub)) = (entry.subs.is_empty(), argv.get(1)) {
        if let Some(s) = entry.sub(sub) {
            entry = s;
        }
    }
    let (arity, n) = (entry.meta.arity, argv.len() as i32);
    if (arity > 0 && n != arity) || n < -arity {
        return Outcome::Refused(b"ERR Wrong number of args calling Redis command from script");
    }
    if entry.meta.has_flag("noscript") {
        return Outcome::Refused(b"ERR This Redis command is not allowed from script");
    }
    // ACL (Valkey's `scriptVerifyACL`): as the calling user, logged with context `lua`.
    let caller = ctx.me;
    if let Some(msg) = crate::acl::gate::refuse_in_script(ctx.srv, ctx.clients, idx, caller, entry, argv) {
        reply.buf.clear();
        reply.buf.extend_from_slice(b"ERR ACL failure in script: ");
        reply.buf.extend_from_slice(msg.as_bytes());
        return Outcome::RefusedScratch;
    }
    let write = entry.meta.has_flag("write");
    if ro && write {
        return Outcome::Refused(b"ERR Write commands are not allowed from read-only scripts.");
    }
    if ctx.srv.cluster.is_some() && !keys_are_local(ctx, entry.meta, argv) {
        return Outcome::Refused(b"ERR Script attempted to access a non local key in a cluster node");
    }
    if write {
        guard.wrote.store(true, Relaxed);
    }
    let resp3 = guard.resp3.load(Relaxed);
    ctx.clients[idx].st.resp3 = resp3;
    if reply.buf.capacity() > 1 << 20 {
        // A huge reply once: do not keep its buffer for every later call.
        *reply = Reply::new(resp3);
    }
    reply.buf.clear();
    reply.resp3 = resp3;
    crate::exec::dispatch::dispatch(ctx.srv, ctx.clients, reply, idx, argv);
    Outcome::Reply { resp3 }
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

/// Pushes `false, {err = msg}`.
///
/// # Safety
/// `state` is a live Lua state with room for 3 more values (Lua guarantees 20 to a C function).
unsafe fn push_error(state: *mut lua_State, msg: &[u8]) {
    // SAFETY: see the function's contract; the pushes may raise only a memory error, and the
    // caller's frames hold no owned values.
    unsafe {
        ffi::lua_pushboolean(state, 0);
        push_one_field(state, c"err", msg);
    }
}

/// Pushes `{name = text}`.
///
/// # Safety
/// As `push_error`.
unsafe fn push_one_field(state: *mut lua_State, name: &std::ffi::CStr, text: &[u8]) {
    // SAFETY: see `push_error`.
    unsafe {
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_pushlstring(state, text.as_ptr() as *const _, text.len());
        ffi::lua_setfield(state, -2, name.as_ptr());
    }
}

/// Pushes `(ok, value)` for a reply: integers, bulks, statuses and errors directly, the rest
/// through the converter (`convert::to_lua`).
///
/// # Safety
/// As `push_error`.
unsafe fn push_reply(state: *mut lua_State, buf: &[u8], resp3: bool) {
    let line_end = buf.windows(2).position(|w| w == b"\r\n");
    let int = |line: &[u8]| std::str::from_utf8(line).ok()?.parse::<i64>().ok();
    // SAFETY: see `push_error`.
    unsafe {
        if let (Some(end), Some(&kind)) = (line_end, buf.first()) {
            let line = &buf[1..end];
            match kind {
                b':' => {
                    if let Some(n) = int(line) {
                        ffi::lua_pushboolean(state, 1);
                        ffi::lua_pushinteger(state, n as ffi::lua_Integer);
                        return;
                    }
                }
                b'$' => {
                    if let Some(n) = int(line).filter(|&n| n >= 0 && buf.len() >= end + 4 + n as usize) {
                        let body = &buf[end + 2..end + 2 + n as usize];
                        ffi::lua_pushboolean(state, 1);
                        ffi::lua_pushlstring(state, body.as_ptr() as *const _, body.len());
                        return;
                    }
                }
                b'+' => {
                    ffi::lua_pushboolean(state, 1);
                    push_one_field(state, c"ok", line);
                    return;
                }
                b'-' => return push_error(state, line),
                _ => {}
            }
        }
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, CONVERT_KEY.as_ptr());
        ffi::lua_pushlstring(state, buf.as_ptr() as *const _, buf.len());
        ffi::lua_pushboolean(state, c_int::from(resp3));
        ffi::lua_call(state, 2, 2);
    }
}
