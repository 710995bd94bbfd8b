//! Where the executor meets the ACL: the per-command gate the dispatcher calls for restricted
//! users, the Lua variant the script bridge calls, and ACL LOG entries (with the client's
//! CLIENT LIST line, as Valkey's `addACLLogEntry` records).

use bytes::Bytes;
use slab::Slab;

use super::log::{Context, Entry as LogEntry};
use super::{check, Denied};
use crate::command::Entry;
use crate::exec::{Client, Server};

/// The reply of a command the client's user may not run, or `None` when it may. Logs the
/// refusal. Inside MULTI the context is `multi`; while EXEC runs the queued commands
/// (`deny_blocking`) the rules changed since queueing and Valkey answers differently.
pub fn refuse(
    srv: &mut Server,
    clients: &Slab<Client>,
    idx: usize,
    entry: &Entry,
    args: &[Bytes],
) -> Option<String> {
    let st = &clients[idx].st;
    let user = srv.acl.user(st.user);
    let (denied, pos) = check::check_command(user, entry, args).err()?;
    let in_exec = st.deny_blocking;
    let context = if st.multi.is_some() || in_exec { Context::Multi } else { Context::Toplevel };
    let msg = if in_exec {
        let reason = match denied {
            Denied::Cmd => "no permission to execute the command or subcommand",
            Denied::Key => "no permission to touch the specified keys",
            Denied::Channel => "no permission to access one of the channels used as arguments",
            Denied::Auth => "no permission",
        };
        format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. \
             This command is no longer allowed for the following reason: {reason}"
        )
    } else {
        format!("NOPERM {}", check::message(denied, &user.name, &entry.full_name, &args[pos], false))
    };
    let username = user.name.clone();
    log_denial(srv, clients, idx, denied, context, object(denied, entry, args, pos), username);
    Some(msg)
}

/// A `redis.call` the script's user may not run: the error text, logged with context `lua`.
/// `script` is the script client (it runs as the caller's user), `caller` the real client.
pub fn refuse_in_script(
    srv: &mut Server,
    clients: &Slab<Client>,
    script: usize,
    caller: usize,
    entry: &Entry,
    args: &[Bytes],
) -> Option<String> {
    let id = clients[script].st.user;
    if srv.acl.unrestricted(id) {
        return None;
    }
    let user = srv.acl.user(id);
    let (denied, pos) = check::check_command(user, entry, args).err()?;
    let msg = check::message(denied, &user.name, &entry.full_name, &args[pos], false);
    let username = user.name.clone();
    log_denial(srv, clients, caller, denied, Context::Lua, object(denied, entry, args, pos), username);
    Some(msg)
}

fn object(denied: Denied, entry: &Entry, args: &[Bytes], pos: usize) -> Vec<u8> {
    match denied {
        Denied::Cmd => entry.full_name.as_bytes().to_vec(),
        Denied::Key | Denied::Channel => args[pos].to_vec(),
        Denied::Auth => args[0].to_vec(),
    }
}

/// Records a refusal or a failed authentication in the ACL log and the INFO counters.
pub fn log_denial(
    srv: &mut Server,
    clients: &Slab<Client>,
    idx: usize,
    reason: Denied,
    context: Context,
    object: Vec<u8>,
    username: Vec<u8>,
) {
    srv.acl.stats[match reason {
        Denied::Auth => 0,
        Denied::Cmd => 1,
        Denied::Key => 2,
        Denied::Channel => 3,
    }] += 1;
    let mut cinfo = String::new();
    if let Some(c) = clients.get(idx) {
        crate::command::client_cmd::write_client_info(&mut cinfo, c, srv.now, None);
    }
    let now = crate::util::now_ms();
    srv.acl.log.add(LogEntry {
        count: 1,
        reason,
        context,
        object,
        username,
        ctime: now,
        cinfo,
        entry_id: 0,
        created: now,
    });
}

/// Closes every client of user `id` (deleted, or replaced by ACL LOAD): they fall back to the
/// unauthenticated default user and are closed, the running one after its reply (Valkey's
/// `ACLFreeUserAndKillClients`).
pub fn kill_clients_of(clients: &mut Slab<Client>, me: usize, id: super::UserId) {
    for (i, c) in clients.iter_mut() {
        if c.st.user == id && c.st.id != crate::scripting::eval::SCRIPT_CLIENT_ID {
            c.st.set_user(super::DEFAULT_USER, b"default");
            c.st.authenticated = false;
            if i == me {
                c.st.close_after_reply = true;
            } else {
                c.st.close_asap = true;
            }
        }
    }
}

/// Valkey's `ACLKillPubsubClientsIfNeeded`: after a user's channel rules changed, close its
/// subscribers whose subscriptions the new rules no longer allow.
pub fn kill_pubsub_clients_if_needed(srv: &Server, clients: &mut Slab<Client>, me: usize, id: super::UserId) {
    let user = srv.acl.user(id);
    if user.selectors.iter().any(|s| s.allchannels) {
        return;
    }
    for (i, c) in clients.iter_mut() {
        if c.st.user != id {
            continue;
        }
        let Some(subs) = c.st.subs.as_deref() else { continue };
        let bad = subs.patterns.iter().any(|p| !check::user_channel_allowed(user, p, true))
            || subs.channels.iter().any(|ch| !check::user_channel_allowed(user, ch, false))
            || subs.shard.iter().any(|ch| !check::user_channel_allowed(user, ch, false));
        if bad {
            if i == me {
                c.st.close_after_reply = true;
            } else {
                c.st.close_asap = true;
            }
        }
    }
}
