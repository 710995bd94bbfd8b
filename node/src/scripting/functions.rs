//! Functions (Valkey 7+): libraries of Lua code loaded once with `FUNCTION LOAD`, each
//! registering named functions that `FCALL` / `FCALL_RO` run with `(KEYS, ARGV)`.
//!
//! A library's code starts with `#!lua name=<library>` and runs once, at load, in an
//! environment of its own whose `redis` offers only `register_function`, `log` and the
//! constants (so `redis.call` at load is an error, as in Valkey); afterwards its `redis` is
//! the full API, which the registered functions see when called. FUNCTION LOAD, DELETE, FLUSH
//! and RESTORE reach replicas as they were sent.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use mlua::{Function, Table, Value};

use super::Scripting;

/// Flags a function (or an EVAL script's shebang) may declare.
pub const FLAGS: &[&str] = &["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"];

/// One loaded library.
#[derive(Clone)]
pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: Vec<String>,
}

/// One registered function.
#[derive(Clone)]
pub struct FunctionDef {
    pub library: String,
    /// Shared, so FCALL takes it without a Lua reference clone.
    pub func: std::rc::Rc<Function>,
    pub flags: Vec<String>,
    pub description: Option<String>,
}

/// Libraries and their functions.
#[derive(Default, Clone)]
pub struct Functions {
    pub libraries: BTreeMap<String, Library>,
    pub functions: HashMap<String, FunctionDef>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

const BAD_NAME: &str =
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// The library name from `#!lua name=<name>`, and the code after that line.
pub fn parse_header(code: &[u8]) -> Result<(String, &[u8]), String> {
    let Some(rest) = code.strip_prefix(b"#!") else {
        return Err("Missing library metadata".into());
    };
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let line = String::from_utf8_lossy(&rest[..end]).into_owned();
    let body = rest.get(end..).unwrap_or(&[]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or("");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    let mut name = None;
    for p in parts {
        match p.strip_prefix("name=") {
            Some(n) => name = Some(n.to_string()),
            None => return Err(format!("Invalid metadata value given: {p}")),
        }
    }
    let name = name.ok_or("Library name was not given")?;
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    Ok((name, body))
}

/// One `register_function` call: name, callback, flags, description.
type Registration = (String, Function, Vec<String>, Option<String>);

/// A shebang's flags and the code after its line.
type Shebang<'a> = (Vec<String>, &'a [u8]);

/// What a library's code registered while it ran.
#[derive(Default)]
struct Registered {
    functions: Vec<Registration>,
    error: Option<String>,
}

impl Scripting {
    /// FUNCTION LOAD [REPLACE]: returns the library name or Valkey's error text.
    pub fn load_library(&mut self, code: &Bytes, replace: bool) -> Result<String, String> {
        let (name, body) = parse_header(code)?;
        if self.functions.libraries.contains_key(&name) && !replace {
            return Err(format!("Library '{name}' already exists"));
        }
        let registered = self.run_library(body).map_err(|e| format!("Error registering functions: {e}"))?;
        if registered.is_empty() {
            return Err("No functions registered".into());
        }
        for (f, ..) in &registered {
            if let Some(existing) = self.functions.functions.get(f) {
                if existing.library != name {
                    return Err(format!("Function {f} already exists"));
                }
            }
        }
        self.delete_library(&name);
        let mut names = Vec::new();
        for (f, func, flags, description) in registered {
            names.push(f.clone());
            self.functions
                .functions
                .insert(f, FunctionDef { library: name.clone(), func: func.into(), flags, description });
        }
        self.functions
            .libraries
            .insert(name.clone(), Library { name: name.clone(), code: code.clone(), functions: names });
        Ok(name)
    }

    /// Removes a library and its functions; false if there was none.
    pub fn delete_library(&mut self, name: &str) -> bool {
        let Some(lib) = self.functions.libraries.remove(name) else { return false };
        for f in lib.functions {
            self.functions.functions.remove(&f);
        }
        true
    }

    /// Runs a library's code in its own environment and collects what it registered.
    fn run_library(&self, body: &[u8]) -> Result<Vec<Registration>, String> {
        let lua = &self.lua;
        let lua_err = |e: mlua::Error| e.to_string();
        let reg = std::rc::Rc::new(std::cell::RefCell::new(Registered::default()));
        let env = lua.create_table().map_err(lua_err)?;
        let meta = lua.create_table().map_err(lua_err)?;
        meta.raw_set("__index", lua.globals()).map_err(lua_err)?;
        env.set_metatable(Some(meta));
        let loader = self.loader_api(&reg).map_err(lua_err)?;
        env.raw_set("redis", loader.clone()).map_err(lua_err)?;
        env.raw_set("server", loader).map_err(lua_err)?;
        let chunk = lua
            .load(body)
            .set_name("@user_function")
            .set_environment(env.clone())
            .into_function()
            .map_err(|e| format!("Error compiling function: {}", super::compile_message(&e)))?;
        let run: mlua::Result<(bool, Value)> = self.xpcall.call((chunk, self.err_handler.clone()));
        match run {
            Ok((true, _)) => {}
            Ok((false, Value::Table(t))) => {
                let msg = t.raw_get::<mlua::String>("err").map(|s| s.to_string_lossy()).unwrap_or_default();
                return Err(msg);
            }
            Ok((false, other)) => return Err(format!("{other:?}")),
            Err(e) => return Err(e.to_string()),
        }
        if let Some(e) = reg.borrow_mut().error.take() {
            return Err(e);
        }
        // From now on the library's functions see the full API.
        let redis: Table = lua.globals().raw_get("redis").map_err(lua_err)?;
        env.raw_set("redis", redis.clone()).map_err(lua_err)?;
        env.raw_set("server", redis).map_err(lua_err)?;
        let out = std::mem::take(&mut reg.borrow_mut().functions);
        Ok(out)
    }

    /// The `redis` a library sees while it loads.
    fn loader_api(&self, reg: &std::rc::Rc<std::cell::RefCell<Registered>>) -> mlua::Result<Table> {
        let lua = &self.lua;
        let t = lua.create_table()?;
        let full: Table = lua.globals().raw_get("redis")?;
        for name in [
            "log",
            "LOG_DEBUG",
            "LOG_VERBOSE",
            "LOG_NOTICE",
            "LOG_WARNING",
            "REDIS_VERSION",
            "REDIS_VERSION_NUM",
            "setresp",
        ] {
            t.raw_set(name, full.raw_get::<Value>(name)?)?;
        }
        let r = reg.clone();
        t.raw_set(
            "register_function",
            lua.create_function(move |_, args: mlua::MultiValue| {
                let res = parse_registration(&args);
                let mut reg = r.borrow_mut();
                match res {
                    Ok(f) => {
                        if reg.functions.iter().any(|x| x.0 == f.0) {
                            return Err(mlua::Error::RuntimeError(
                                "Function already exists in the library".into(),
                            ));
                        }
                        reg.functions.push(f);
                        Ok(())
                    }
                    Err(e) => Err(mlua::Error::RuntimeError(e)),
                }
            })?,
        )?;
        // Anything else (`redis.call` above all) is an error at load time.
        let meta = lua.create_table()?;
        meta.raw_set(
            "__index",
            lua.create_function(|_, (_t, k): (Value, Value)| -> mlua::Result<Value> {
                let name = match k {
                    Value::String(s) => s.to_string_lossy(),
                    other => format!("{other:?}"),
                };
                Err(mlua::Error::RuntimeError(format!(
                    "{}Script attempted to access nonexistent global variable '{name}'",
                    super::libs::POSITIONED
                )))
            })?,
        )?;
        t.set_metatable(Some(meta));
        Ok(t)
    }

    /// FUNCTION FLUSH.
    pub fn flush_functions(&mut self) {
        self.functions = Functions::default();
    }
}

/// `register_function(name, callback)` or `register_function{function_name=, callback=,
/// flags=, description=}`.
fn parse_registration(
    args: &mlua::MultiValue,
) -> Result<(String, Function, Vec<String>, Option<String>), String> {
    let wrong = || "wrong number of arguments to redis.register_function".to_string();
    let (name, func, flags, description) = match (args.len(), args.front()) {
        (1, Some(Value::Table(t))) => {
            let name = t.raw_get::<Value>("function_name").map_err(|e| e.to_string())?;
            let func = t.raw_get::<Value>("callback").map_err(|e| e.to_string())?;
            let flags = t.raw_get::<Value>("flags").map_err(|e| e.to_string())?;
            let desc = t.raw_get::<Value>("description").map_err(|e| e.to_string())?;
            (name, func, flags, desc)
        }
        (2, _) => (args[0].clone(), args[1].clone(), Value::Nil, Value::Nil),
        _ => return Err(wrong()),
    };
    let Value::String(name) = name else {
        return Err("function_name argument given to redis.register_function must be a string".into());
    };
    let name = name.to_string_lossy();
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    let Value::Function(func) = func else {
        return Err("callback argument given to redis.register_function must be a function".into());
    };
    let mut out_flags = Vec::new();
    match flags {
        Value::Nil => {}
        Value::Table(t) => {
            for v in t.sequence_values::<Value>() {
                match v {
                    Ok(Value::String(s)) if FLAGS.contains(&s.to_string_lossy().as_str()) => out_flags.push(s.to_string_lossy()),
                    Ok(Value::String(s)) => return Err(format!("unknown flag given: {}", s.to_string_lossy())),
                    _ => return Err("flags argument to redis.register_function must be a table representing function flags".into()),
                }
            }
        }
        _ => {
            return Err(
                "flags argument to redis.register_function must be a table representing function flags"
                    .into(),
            )
        }
    }
    let description = match description {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Nil => None,
        _ => return Err("description argument given to redis.register_function must be a string".into()),
    };
    Ok((name, func, out_flags, description))
}

/// `#!lua [flags=a,b]` at the top of an EVAL script: its flags and the code after the line.
/// `None` for a script without a shebang (Valkey then applies the old, flag-less rules).
pub fn eval_shebang(body: &[u8]) -> Result<Option<Shebang<'_>>, String> {
    let Some(rest) = body.strip_prefix(b"#!") else { return Ok(None) };
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let line = String::from_utf8_lossy(&rest[..end]).into_owned();
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or("");
    if engine != "lua" {
        return Err(format!("Unexpected engine in script shebang: #!{line}"));
    }
    let mut flags = Vec::new();
    for p in parts {
        let Some(list) = p.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {p}"));
        };
        for f in list.split(',').filter(|f| !f.is_empty()) {
            if !FLAGS.contains(&f) {
                return Err(format!("Unexpected flag in script shebang: {f}"));
            }
            flags.push(f.to_string());
        }
    }
    Ok(Some((flags, rest.get(end..).unwrap_or(&[]))))
}
