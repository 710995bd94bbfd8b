//! The ACL subcommands that read or change users: SETUSER, DELUSER, GETUSER, LIST, USERS,
//! LOAD and SAVE. Changes follow Valkey: SETUSER is all or nothing and closes subscribers the
//! new channel rules no longer allow; DELUSER and LOAD close the clients of the users they
//! remove. Turning a user `off` only refuses new logins, as in Valkey.

use bytes::Bytes;

use crate::acl::{gate, user, DEFAULT_USER};
use crate::exec::Ctx;

/// ACL SETUSER username [rule ...]
pub fn setuser(ctx: &mut Ctx, args: &[Bytes]) {
    let name = &args[2];
    if crate::acl::has_spaces(name) {
        return ctx.out.err("Usernames can't contain spaces or null characters");
    }
    let rules: Vec<&[u8]> = args[3..].iter().map(|a| a.as_ref()).collect();
    let acl = &ctx.srv.acl;
    let existing = acl.id_of(name);
    let base = existing.map(|id| acl.user(id));
    match user::set_user(ctx.srv.registry, base, name, &rules, acl.pubsub_default_all) {
        Ok(u) => {
            let id = ctx.srv.acl.put(u);
            let me = ctx.me;
            if existing.is_some() {
                // As Valkey: turning a user `off` only stops new logins; its connected
                // clients stay, except subscribers the new channel rules no longer allow.
                gate::kill_pubsub_clients_if_needed(ctx.srv, ctx.clients, me, id);
            }
            ctx.out.ok();
        }
        Err(msg) => ctx.out.err(&msg),
    }
}

/// ACL DELUSER username [username ...]
pub fn deluser(ctx: &mut Ctx, args: &[Bytes]) {
    if args[2..].iter().any(|a| a.as_ref() == b"default") {
        return ctx.out.err("The 'default' user cannot be removed");
    }
    let mut deleted = 0;
    let me = ctx.me;
    for name in &args[2..] {
        if let Some(id) = ctx.srv.acl.remove(name) {
            gate::kill_clients_of(ctx.clients, me, id);
            deleted += 1;
        }
    }
    ctx.out.int(deleted);
}

/// ACL GETUSER username: flags, passwords, the root selector's commands/keys/channels, and
/// the other selectors.
pub fn getuser(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(u) = ctx.srv.acl.by_name(&args[2]) else {
        return ctx.out.null();
    };
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk(b"flags");
    let flags = u.flags();
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"passwords");
    out.array(u.passwords.len());
    for p in &u.passwords {
        out.bulk(p.as_bytes());
    }
    let selector = |out: &mut crate::protocol::Reply, s: &crate::acl::selector::Selector| {
        out.bulk(b"commands");
        out.bulk(s.describe_commands().as_bytes());
        out.bulk(b"keys");
        out.bulk(&s.describe_keys());
        out.bulk(b"channels");
        out.bulk(&s.describe_channels());
    };
    selector(out, u.root());
    out.bulk(b"selectors");
    out.array(u.selectors.len() - 1);
    for s in &u.selectors[1..] {
        out.map(3);
        selector(out, s);
    }
}

/// ACL LIST: every user as an ACL file line, in name order.
pub fn list(ctx: &mut Ctx, _args: &[Bytes]) {
    let lines: Vec<Vec<u8>> = ctx.srv.acl.users().map(|(_, u)| u.config_line()).collect();
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.bulk(&l);
    }
}

/// ACL USERS: the names, in order.
pub fn users(ctx: &mut Ctx, _args: &[Bytes]) {
    let names: Vec<Vec<u8>> = ctx.srv.acl.users().map(|(_, u)| u.name.clone()).collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(&n);
    }
}

const NO_ACLFILE: &str =
    "This instance is not configured to use an ACL file. You may want to specify users via \
     the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a configuration file set) in \
     order to store users in the configuration.";

fn aclfile(ctx: &mut Ctx) -> Option<String> {
    let f = ctx.srv.config.get("aclfile").unwrap_or("").to_string();
    if f.is_empty() {
        ctx.out.err(NO_ACLFILE);
        return None;
    }
    Some(f)
}

/// ACL LOAD: replaces every user from the ACL file, or changes nothing if it has an error.
/// The clients of the replaced users are closed (the default user is updated in place).
pub fn load(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(file) = aclfile(ctx) else { return };
    let registry = ctx.srv.registry;
    match crate::acl::file::load(registry, &file, ctx.srv.acl.pubsub_default_all) {
        Ok(users) => {
            let me = ctx.me;
            let old: Vec<_> =
                ctx.srv.acl.users().map(|(id, _)| id).filter(|&id| id != DEFAULT_USER).collect();
            for id in old {
                gate::kill_clients_of(ctx.clients, me, id);
            }
            ctx.srv.acl.replace_all(registry, users);
            ctx.out.ok();
        }
        Err(msg) => ctx.out.err(&msg),
    }
}

/// ACL SAVE
pub fn save(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(file) = aclfile(ctx) else { return };
    match crate::acl::file::save(&ctx.srv.acl, &file) {
        Ok(()) => ctx.out.ok(),
        Err(e) => {
            log::warn!("Writing ACL file for ACL SAVE: {e}");
            ctx.out.err("There was an error trying to save the ACLs. Please check the server logs for more information");
        }
    }
}
