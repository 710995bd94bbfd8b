//! The running script's [`Guard`], and long scripts as Valkey handles them. A script is atomic, so while it runs no other command
//! can. Past `busy-reply-threshold` (alias `lua-time-limit`) the script enters Valkey's
//! timed-out mode: from its instruction hook the executor serves the other clients, answering
//! `-BUSY` to everything except the few commands flagged `allow_busy` (SCRIPT KILL, FUNCTION
//! KILL, SHUTDOWN NOSAVE, AUTH, HELLO, MULTI, ...). SCRIPT KILL / FUNCTION KILL stop a script
//! that has not written (one that has would leave half its effects: `-UNKILLABLE`); SHUTDOWN
//! NOSAVE and SIGTERM stop any script and the node with it, and the effects of a script cut
//! short that way never reach a replica.
//!
//! The hook fires every 100k Lua instructions. Once a script is killed it fires on every line,
//! so a script that catches the error with `pcall` is stopped again at its next line.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mlua::{HookTriggers, Lua, VmState};

use crate::exec::Ctx;

/// The reply to other commands while an EVAL script is busy.
pub const SLOW_EVAL: &str =
    "BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// The reply to other commands while a function is busy.
pub const SLOW_FUNCTION: &str =
    "BUSY Valkey is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
/// The error a killed script (or function: Valkey says SCRIPT KILL for both) fails with.
pub const KILLED: &str = "Script killed by user with SCRIPT KILL...";

const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";

/// Instructions between two runs of the hook while a script is not killed.
const HOOK_INSTRUCTIONS: u32 = 100_000;

/// The running script's state, shared by the executor side and the instruction hook.
#[derive(Default)]
pub struct Guard {
    /// When the script started (ms since the Unix epoch) and `busy-reply-threshold` in ms.
    pub started_ms: AtomicI64,
    pub limit_ms: AtomicI64,
    /// The script ran a write: SCRIPT KILL would break its atomicity, so it refuses.
    pub wrote: AtomicBool,
    /// Past the threshold: other clients are being served.
    pub busy: AtomicBool,
    /// SCRIPT KILL, FUNCTION KILL or a shutdown asked the script to stop.
    pub killed: AtomicBool,
    /// Stopped by a shutdown, writes or not: its effects are not propagated.
    pub forced: AtomicBool,
    /// The hook runs every line (after a kill).
    pub line_mode: AtomicBool,
    /// The script chose RESP3 (`redis.setresp(3)`) for what its calls return.
    pub resp3: AtomicBool,
}

impl Guard {
    /// A new script starts.
    pub fn start(&self, limit_ms: i64) {
        self.started_ms.store(crate::util::now_ms(), Relaxed);
        self.limit_ms.store(limit_ms.max(0), Relaxed);
        self.wrote.store(false, Relaxed);
        self.busy.store(false, Relaxed);
        self.killed.store(false, Relaxed);
        self.forced.store(false, Relaxed);
        self.resp3.store(false, Relaxed);
    }
}

/// What the other clients see of a busy script (`Server::script_busy`).
pub struct BusyScript {
    pub guard: Arc<Guard>,
    /// FCALL's function name and command (FUNCTION STATS); `None` for EVAL.
    pub function: Option<(String, Vec<Bytes>)>,
    pub started: Instant,
    /// Libraries and functions loaded (FUNCTION STATS while the state is in use).
    pub libraries: usize,
    pub functions: usize,
}

impl BusyScript {
    /// The `-BUSY` error for commands refused meanwhile.
    pub fn refusal(&self) -> &'static str {
        if self.function.is_some() {
            SLOW_FUNCTION
        } else {
            SLOW_EVAL
        }
    }
}

/// Installs the hook: every 100k instructions, or every line once the script is killed.
pub fn install_hook(lua: &Lua, guard: Arc<Guard>, every_line: bool) {
    guard.line_mode.store(every_line, Relaxed);
    let triggers = if every_line {
        HookTriggers::new().every_line()
    } else {
        HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS)
    };
    lua.set_hook(triggers, move |lua, debug| hook(lua, &guard, &debug));
}

fn hook(lua: &Lua, guard: &Arc<Guard>, debug: &mlua::Debug) -> mlua::Result<VmState> {
    if !guard.killed.load(Relaxed) {
        if !guard.busy.load(Relaxed) {
            let elapsed = crate::util::now_ms() - guard.started_ms.load(Relaxed);
            if elapsed < guard.limit_ms.load(Relaxed) {
                return Ok(VmState::Continue);
            }
            guard.busy.store(true, Relaxed);
        }
        super::eval::serve_while_busy(guard);
        if !guard.killed.load(Relaxed) {
            return Ok(VmState::Continue);
        }
    }
    // Killed. Shoal's own chunks (the error handler, the runner) finish unhindered, so the
    // error reaches the caller with the script's position.
    if debug.source().source.as_deref() == Some("=shoal") {
        return Ok(VmState::Continue);
    }
    if !guard.line_mode.load(Relaxed) {
        install_hook(lua, guard.clone(), true);
    }
    Err(mlua::Error::RuntimeError(KILLED.into()))
}

/// SCRIPT KILL (`eval`) and FUNCTION KILL, with Valkey's checks in Valkey's order.
pub fn kill(ctx: &mut Ctx, eval: bool) {
    let Some(busy) = ctx.srv.script_busy.as_ref() else {
        return ctx.out.error(NOTBUSY);
    };
    if busy.guard.wrote.load(Relaxed) {
        return ctx.out.error(UNKILLABLE);
    }
    match (eval, busy.function.is_some()) {
        // SCRIPT KILL does not stop a function, nor FUNCTION KILL a script.
        (true, true) => ctx.out.error(SLOW_FUNCTION),
        (false, false) => ctx.out.error(SLOW_EVAL),
        _ => {
            busy.guard.killed.store(true, Relaxed);
            ctx.out.ok();
        }
    }
}

/// SHUTDOWN while a script is busy: only NOSAVE may stop the node, and it stops the script too.
/// Returns whether the shutdown may go ahead (the error is sent otherwise).
pub fn shutdown(ctx: &mut Ctx, nosave: bool) -> bool {
    let Some(busy) = ctx.srv.script_busy.as_ref() else { return true };
    if !nosave {
        ctx.out.error(busy.refusal());
        return false;
    }
    busy.guard.forced.store(true, Relaxed);
    busy.guard.killed.store(true, Relaxed);
    true
}
