//! Lua scripting (EVAL and friends) with Valkey's semantics: Lua 5.1, the `redis` / `server`
//! API, its reply conversions and error formats, a sandbox (no `os`, `io`, `loadfile`,
//! `dofile`; globals read-only, unknown globals an error), scripts cached by SHA-1.
//!
//! One Lua state lives on the executor thread, created at the first script. A script runs
//! atomically: it is a command like any other, and the commands it calls go through the same
//! dispatch as a client's (as a short-lived script client), so their checks, statistics,
//! keyspace notifications and replication are the usual ones. The writes a script makes reach
//! replicas as their effects, wrapped in MULTI/EXEC.
//!
//! - [`resp`]: parses a called command's reply for Lua.
//! - [`convert`]: Lua <-> reply conversions.
//! - [`eval`]: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT and the `redis.call` bridge.
//! - [`busy`]: scripts past `busy-reply-threshold`: serving others, SCRIPT KILL.

mod bridge;
pub mod busy;
pub mod convert;
pub mod eval;
pub mod fcall;
pub mod functions;
pub mod libs;
pub mod resp;
pub mod structlib;

use std::collections::HashMap;

use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, StdLib, Table};

pub use busy::Guard;

/// The error handler every script runs under (Valkey's `__redis__err__handler`): turns an
/// error into `{err=..., source=..., line=...}`, the position being the script's own line,
/// not that of a C function (`redis.call`).
const ERR_HANDLER: &str = r#"
local getinfo = debug.getinfo
local errmsg = ...
return function(err)
  local level = 2
  local i = getinfo(level, 'nSl')
  while i and (i.what == 'C' or i.source == '=shoal') do
    level = level + 1
    i = getinfo(level, 'nSl')
  end
  if type(err) == 'userdata' then
    local msg, positioned = errmsg(err)
    if positioned and i then
      msg = i.short_src .. ':' .. i.currentline .. ': ' .. msg
    end
    err = {err = 'ERR ' .. msg}
  elseif type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
"#;

/// Makes the globals read-only and reading an unknown one an error, as Valkey does.
const PROTECT_GLOBALS: &str = r#"
local mt = {}
setmetatable(_G, mt)
mt.__newindex = function(t, n, v)
  error('Attempt to modify a readonly table', 2)
end
mt.__index = function(t, n)
  error("Script attempted to access nonexistent global variable '" .. tostring(n) .. "'", 2)
end
"#;

/// A cached EVAL script.
#[derive(Clone)]
pub struct Script {
    pub func: Function,
    pub body: Bytes,
    pub flags: Option<Vec<String>>,
}

/// Errors while setting Lua up (never expected: the code above is fixed).
#[derive(Debug, thiserror::Error)]
#[error("Lua setup failed: {0}")]
pub struct SetupError(#[from] mlua::Error);

/// The Lua state and the scripts loaded into it.
pub struct Scripting {
    pub lua: Lua,
    /// SHA-1 (lower-case hex) → compiled function, its source and its shebang flags (`None`:
    /// no shebang).
    scripts: HashMap<String, std::rc::Rc<Script>>,
    /// Bytes of script sources held (INFO `used_memory_scripts`).
    pub source_bytes: usize,
    err_handler: Function,
    xpcall: Function,
    /// The running script's clock, whether it wrote, whether it was killed (see `busy`).
    pub guard: std::sync::Arc<Guard>,
    /// FUNCTION libraries and their functions.
    pub functions: functions::Functions,
    /// The client scripts' commands run as, kept between scripts.
    client: Option<crate::exec::Client>,
    /// `runner(f, handler, withargs, keys, args)`: xpcall with or without `(KEYS, ARGV)`.
    runner: Function,
    /// The globals table (EVAL sets KEYS and ARGV in it).
    globals: Table,
}

/// Calls a script (no arguments) or a function (`KEYS`, `ARGV`) under the error handler.
const RUNNER: &str = r#"
local xpcall = xpcall
return function(f, handler, withargs, k, a)
  if withargs then
    return xpcall(function() return f(k, a) end, handler)
  end
  return xpcall(f, handler)
end
"#;

/// Most memory the Lua heap may use.
const LUA_MEMORY_LIMIT: usize = 1 << 30;

/// Lifts the Lua heap bound while Shoal's own code (not the script's) builds Lua values: the
/// KEYS/ARGV tables, a called command's reply. With a bound set, mlua runs every table and
/// string creation under `lua_pcall` with a fresh C closure (an allocation for the collector
/// each) in case the allocation fails; without one it pushes them directly. What Shoal builds
/// is bounded by the request and the keyspace, and the script's own code runs bounded again.
pub(crate) struct Unbounded<'a>(&'a Lua);

impl<'a> Unbounded<'a> {
    pub fn new(lua: &'a Lua) -> Self {
        let _ = lua.set_memory_limit(0);
        Unbounded(lua)
    }
}

impl Drop for Unbounded<'_> {
    fn drop(&mut self) {
        let _ = self.0.set_memory_limit(LUA_MEMORY_LIMIT);
    }
}

impl Scripting {
    pub fn new() -> Result<Scripting, SetupError> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: the `debug` library (the unsafe part) is only reachable by the error handler,
        // which keeps `debug.getinfo` alone; `debug` leaves the globals below, before any
        // script can run, exactly as Valkey does.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::default()) };
        let g = lua.globals();
        let errmsg = lua.create_function(|_, v: mlua::Value| {
            let msg = rust_error_message(&v);
            // Library errors (`luaL_error` in Valkey's C libraries) carry the script position.
            Ok(match msg.strip_prefix(libs::POSITIONED) {
                Some(m) => (m.to_string(), true),
                None => (msg, false),
            })
        })?;
        let err_handler: Function = lua.load(ERR_HANDLER).set_name("=shoal").call(errmsg)?;
        let xpcall: Function = g.get("xpcall")?;
        let runner: Function = lua.load(RUNNER).set_name("=shoal").eval()?;
        // SAFETY: both functions follow the Lua C API (see `bridge`).
        let (call, pcall) = unsafe {
            (lua.create_c_function(bridge::redis_call)?, lua.create_c_function(bridge::redis_pcall)?)
        };
        let convert = lua.create_function(eval::convert_reply)?;
        lua.set_named_registry_value(bridge::CONVERT_KEY.to_str().unwrap_or("shoal.convert"), convert)?;
        let guard = std::sync::Arc::new(Guard::default());
        let redis = eval::api_table(&lua, call, pcall, guard.clone())?;
        g.raw_set("redis", redis.clone())?;
        g.raw_set("server", redis)?;
        // The sandbox: what Valkey removes.
        for name in
            ["debug", "loadfile", "dofile", "print", "module", "require", "load", "setfenv", "getfenv"]
        {
            g.raw_set(name, mlua::Value::Nil)?;
        }
        libs::register(&lua)?;
        lua.load(PROTECT_GLOBALS).set_name("=shoal").exec()?;
        lua.set_memory_limit(LUA_MEMORY_LIMIT)?;
        // A script past busy-reply-threshold serves the other clients from its hook (`busy`).
        busy::install_hook(&lua, guard.clone(), false);
        Ok(Scripting {
            lua,
            scripts: HashMap::new(),
            source_bytes: 0,
            err_handler,
            xpcall,
            guard,
            functions: Default::default(),
            runner,
            client: None,
            globals: g,
        })
    }

    /// Number of cached scripts (INFO `number_of_cached_scripts`).
    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    pub fn contains(&self, sha: &str) -> bool {
        self.scripts.contains_key(sha)
    }

    /// Compiles and caches `body` under `sha` (no-op if cached). The error is Valkey's text.
    pub fn load(&mut self, sha: &str, body: &Bytes) -> Result<std::rc::Rc<Script>, String> {
        if let Some(s) = self.scripts.get(sha) {
            return Ok(s.clone());
        }
        // A `#!lua flags=...` line: the code after it (from its newline, so lines keep their
        // numbers, as in Valkey).
        let (flags, code) = match functions::eval_shebang(body)? {
            Some((flags, rest)) => (Some(flags), rest.to_vec()),
            None => (None, body.to_vec()),
        };
        let func = self
            .lua
            .load(&code[..])
            .set_name("@user_script")
            .into_function()
            .map_err(|e| format!("Error compiling script (new function): {}", compile_message(&e)))?;
        self.source_bytes += body.len();
        let script = std::rc::Rc::new(Script { func, body: body.clone(), flags });
        self.scripts.insert(sha.to_string(), script.clone());
        Ok(script)
    }

    /// A cached script's source (SCRIPT SHOW).
    pub fn body(&self, sha: &str) -> Option<&Bytes> {
        self.scripts.get(sha).map(|s| &s.body)
    }

    /// SCRIPT FLUSH.
    pub fn flush(&mut self) {
        self.scripts.clear();
        self.source_bytes = 0;
        let _ = self.lua.gc_collect();
    }
}

/// The message of an error a Rust function of the API raised, without mlua's decorations
/// (the "runtime error:" prefix and the traceback a callback error carries).
fn rust_error_message(v: &mlua::Value) -> String {
    fn inner(e: &mlua::Error) -> String {
        match e {
            mlua::Error::CallbackError { cause, .. } => inner(cause),
            mlua::Error::RuntimeError(m) => m.clone(),
            other => other.to_string(),
        }
    }
    match v {
        mlua::Value::Error(e) => inner(e),
        other => format!("{other:?}"),
    }
}

/// The message of a compile error without mlua's decorations.
fn compile_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Lower-case hex SHA-1 of a script body.
pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}
