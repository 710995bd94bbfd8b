//! FCALL, FCALL_RO and FUNCTION LOAD / LIST / DELETE / FLUSH / STATS / KILL, with Valkey's
//! replies and errors (the libraries themselves: `functions`).

use bytes::Bytes;

use super::eval::{execute, split_keys, take_scripting, Call, WRITE_FLAG_RO};
use crate::command::Handler;
use crate::exec::Ctx;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "fcall" => fcall,
        "fcall_ro" => fcall_ro,
        "function|load" => function_load,
        "function|list" => function_list,
        "function|delete" => function_delete,
        "function|flush" => function_flush,
        "function|stats" => function_stats,
        "function|kill" => function_kill,
        "function|dump" => function_dump,
        "function|restore" => function_restore,
        "function|help" => function_help,
        _ => return None,
    })
}

fn fcall(ctx: &mut Ctx, args: &[Bytes]) {
    call(ctx, args, false);
}

fn fcall_ro(ctx: &mut Ctx, args: &[Bytes]) {
    call(ctx, args, true);
}

fn call(ctx: &mut Ctx, args: &[Bytes], ro_command: bool) {
    let Some((keys, argv)) = split_keys(ctx, args, 2) else { return };
    let name = String::from_utf8_lossy(&args[1]).into_owned();
    let Some(mut sc) = ctx.srv.scripting.take() else {
        return ctx.out.err("Function not found");
    };
    let found = sc
        .functions
        .functions
        .get(&name)
        .map(|def| (def.func.clone(), def.flags.iter().any(|f| f == "no-writes")));
    match found {
        None => ctx.out.err("Function not found"),
        Some((_, no_writes)) if ro_command && !no_writes => ctx.out.err(WRITE_FLAG_RO),
        Some((func, no_writes)) => {
            let call =
                Call { func: &func, keys, argv, ro: no_writes, label: &name, function: true, command: args };
            execute(&mut sc, ctx, call);
        }
    }
    ctx.srv.scripting = Some(sc);
}

/// FUNCTION LOAD [REPLACE] code
fn function_load(ctx: &mut Ctx, args: &[Bytes]) {
    let (replace, code) = match args {
        [_, _, code] => (false, code),
        [_, _, flag, code] if flag.eq_ignore_ascii_case(b"replace") => (true, code),
        [_, _, flag, _] => {
            return ctx.out.err(&format!("Unknown option given: {}", String::from_utf8_lossy(flag)))
        }
        _ => return ctx.wrong_arity(),
    };
    let Some(mut sc) = take_scripting(ctx) else { return };
    match sc.load_library(code, replace) {
        Ok(name) => ctx.out.bulk(name.as_bytes()),
        Err(e) => ctx.out.err(&e),
    }
    ctx.srv.scripting = Some(sc);
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
fn function_list(ctx: &mut Ctx, args: &[Bytes]) {
    let (mut pattern, mut with_code) = (None, false);
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"withcode") && !with_code {
            with_code = true;
            i += 1;
        } else if args[i].eq_ignore_ascii_case(b"libraryname") && pattern.is_none() && i + 1 < args.len() {
            pattern = Some(args[i + 1].clone());
            i += 2;
        } else {
            return ctx.out.err(&format!("Unknown argument {}", String::from_utf8_lossy(&args[i])));
        }
    }
    let Some(sc) = ctx.srv.scripting.as_ref() else {
        return ctx.out.array(0);
    };
    let libs: Vec<_> = sc
        .functions
        .libraries
        .values()
        .filter(|l| pattern.as_ref().is_none_or(|p| crate::util::glob_match(p, l.name.as_bytes(), false)))
        .collect();
    let out = &mut *ctx.out;
    out.array(libs.len());
    for lib in libs {
        out.map(3 + usize::from(with_code));
        out.bulk(b"library_name");
        out.bulk(lib.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in &lib.functions {
            let Some(def) = sc.functions.functions.get(f) else { continue };
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.as_bytes());
            out.bulk(b"description");
            match &def.description {
                Some(d) => out.bulk(d.as_bytes()),
                None => out.null(),
            }
            out.bulk(b"flags");
            out.set(def.flags.len());
            for fl in &def.flags {
                out.simple(fl);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
}

/// FUNCTION DELETE library
fn function_delete(ctx: &mut Ctx, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    match ctx.srv.scripting.as_mut().map(|s| s.delete_library(&name)) {
        Some(true) => ctx.out.ok(),
        _ => ctx.out.err("Library not found"),
    }
}

/// FUNCTION FLUSH [ASYNC|SYNC]
fn function_flush(ctx: &mut Ctx, args: &[Bytes]) {
    match args {
        [_, _] => {}
        [_, _, mode] if mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async") => {}
        [_, _, _] => return ctx.out.err("FUNCTION FLUSH only supports SYNC|ASYNC option"),
        _ => {
            return ctx.out.err(&format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                crate::exec::dispatch::truncate_lossy(&args[1], 128)
            ))
        }
    }
    if let Some(sc) = ctx.srv.scripting.as_mut() {
        sc.flush_functions();
    }
    ctx.out.ok();
}

/// FUNCTION STATS: the running function (while one is busy) and what is loaded. While an EVAL
/// script is busy it is refused, as Valkey does.
fn function_stats(ctx: &mut Ctx, _args: &[Bytes]) {
    let busy = ctx.srv.script_busy.as_deref();
    if let Some(b) = busy.filter(|b| b.function.is_none()) {
        return ctx.out.error(b.refusal());
    }
    let (libs, funcs) = match busy {
        Some(b) => (b.libraries, b.functions),
        None => ctx
            .srv
            .scripting
            .as_ref()
            .map_or((0, 0), |s| (s.functions.libraries.len(), s.functions.functions.len())),
    };
    let running = busy.and_then(|b| b.function.as_ref().map(|f| (f, b.started.elapsed())));
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    match running {
        Some(((name, command), elapsed)) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name.as_bytes());
            out.bulk(b"command");
            out.array(command.len());
            for a in command {
                out.bulk(a);
            }
            out.bulk(b"duration_ms");
            out.int(elapsed.as_millis() as i64);
        }
        None => out.null(),
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(libs as i64);
    out.bulk(b"functions_count");
    out.int(funcs as i64);
}

fn function_help(ctx: &mut Ctx, _args: &[Bytes]) {
    crate::command::server::reply_help_ending(
        ctx,
        b"function",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
        "    Prints this help.",
    );
}

/// FUNCTION KILL (see `busy`).
fn function_kill(ctx: &mut Ctx, _args: &[Bytes]) {
    super::busy::kill(ctx, false);
}

/// FUNCTION DUMP: every library as a FUNCTION2 record, then the RDB version (10, which Redis
/// 7.0 and every Valkey restore) and the CRC-64, as Valkey's payload.
fn function_dump(ctx: &mut Ctx, _args: &[Bytes]) {
    let mut out = Vec::new();
    if let Some(sc) = ctx.srv.scripting.as_ref() {
        for lib in sc.functions.libraries.values() {
            out.push(crate::replication::rdb::opcodes::FUNCTION2);
            crate::replication::rdb::value::put_str(&mut out, &lib.code, false);
        }
    }
    out.extend_from_slice(&crate::replication::rdb::DEFAULT_VERSION.to_le_bytes());
    let crc = crate::replication::rdb::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    ctx.out.bulk(&out);
}

/// The library codes of a FUNCTION DUMP payload, or `None` when it is not one.
fn dumped_libraries(payload: &[u8]) -> Option<Vec<Bytes>> {
    let n = payload.len();
    if n < 10 {
        return None;
    }
    let version = u16::from_le_bytes([payload[n - 10], payload[n - 9]]);
    let crc = u64::from_le_bytes(payload[n - 8..].try_into().ok()?);
    if !crate::replication::rdb::version_accepted(u32::from(version), false)
        && !crate::replication::rdb::VALKEY_VERSIONS.contains(&version)
    {
        return None;
    }
    if crc != 0 && crc != crate::replication::rdb::crc64(&payload[..n - 8]) {
        return None;
    }
    let mut c = crate::replication::rdb::cursor::Cursor::new(&payload[..n - 10]);
    let mut libs = Vec::new();
    while !c.is_empty() {
        if c.byte().ok()? != crate::replication::rdb::opcodes::FUNCTION2 {
            return None;
        }
        libs.push(Bytes::from(c.bytes().ok()?.into_owned()));
    }
    Some(libs)
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
fn function_restore(ctx: &mut Ctx, args: &[Bytes]) {
    let policy = match args.get(3) {
        None => "append",
        Some(p) if args.len() == 4 && p.eq_ignore_ascii_case(b"flush") => "flush",
        Some(p) if args.len() == 4 && p.eq_ignore_ascii_case(b"append") => "append",
        Some(p) if args.len() == 4 && p.eq_ignore_ascii_case(b"replace") => "replace",
        Some(_) => {
            return ctx
                .out
                .err("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
        }
    };
    let Some(libs) = dumped_libraries(&args[2]) else {
        return ctx.out.err("DUMP payload version or checksum are wrong");
    };
    let Some(mut sc) = take_scripting(ctx) else { return };
    // All or nothing: the libraries are loaded into a copy of the current set first.
    let saved = std::mem::take(&mut sc.functions);
    if policy != "flush" {
        sc.functions = saved.clone();
    }
    let mut failed = None;
    for code in &libs {
        if let Err(e) = sc.load_library(code, policy == "replace") {
            failed = Some(e);
            break;
        }
    }
    match failed {
        Some(e) => {
            sc.functions = saved;
            // RESTORE words a conflict without the quotes LOAD uses (Valkey's texts).
            let e = e.replacen("Library '", "Library ", 1).replacen("' already exists", " already exists", 1);
            ctx.out.err(&e);
        }
        None => ctx.out.ok(),
    }
    ctx.srv.scripting = Some(sc);
}
