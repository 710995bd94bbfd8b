//! ACL CAT / DELUSER / DRYRUN / GENPASS / GETUSER / HELP / LIST / LOAD / LOG / SAVE / SETUSER /
//! USERS / WHOAMI, with Valkey's replies and error texts. The users themselves live in
//! `acl`; `users.rs` holds the commands that change them.
//!
//! ```text
//! ACL SETUSER username [rule ...]
//! ACL GETUSER username
//! ACL LOG [count | RESET]
//! ```

mod users;

use bytes::Bytes;

use super::Handler;
use crate::acl::selector::CATEGORIES;
use crate::exec::Ctx;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "acl|cat" => cat,
        "acl|deluser" => users::deluser,
        "acl|dryrun" => dryrun,
        "acl|genpass" => genpass,
        "acl|getuser" => users::getuser,
        "acl|help" => help,
        "acl|list" => users::list,
        "acl|load" => users::load,
        "acl|log" => log,
        "acl|save" => users::save,
        "acl|setuser" => users::setuser,
        "acl|users" => users::users,
        "acl|whoami" => whoami,
        _ => return None,
    })
}

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

fn help(ctx: &mut Ctx, args: &[Bytes]) {
    super::server::reply_help(ctx, &args[0], HELP);
}

/// ACL WHOAMI
fn whoami(ctx: &mut Ctx, _args: &[Bytes]) {
    let name = ctx.client().user_name.clone();
    ctx.out.bulk(&name);
}

/// ACL CAT [category]: the categories, or the commands (and subcommands) of one, in the
/// command table's order.
fn cat(ctx: &mut Ctx, args: &[Bytes]) {
    match args {
        [_, _] => {
            ctx.out.array(CATEGORIES.len());
            for c in CATEGORIES {
                ctx.out.bulk(c.as_bytes());
            }
        }
        [_, _, name] => {
            let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
            let Some(cat) = CATEGORIES.iter().find(|c| **c == lower) else {
                let shown = crate::exec::dispatch::truncate_lossy(name, 128);
                return ctx.out.err(&format!("Unknown category '{shown}'"));
            };
            let mut names = Vec::new();
            for meta in super::table::COMMANDS {
                if meta.acl.contains(cat) {
                    names.push(meta.name.to_string());
                }
                for s in meta.subcommands {
                    if s.acl.contains(cat) {
                        names.push(format!("{}|{}", meta.name, s.name));
                    }
                }
            }
            ctx.out.array(names.len());
            for n in names {
                ctx.out.bulk(n.as_bytes());
            }
        }
        _ => subcommand_syntax(ctx, args),
    }
}

/// Valkey's `addReplySubcommandSyntaxError`, for the variadic subcommands given too much.
fn subcommand_syntax(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = crate::exec::dispatch::truncate_lossy(&args[1], 128);
    ctx.out.err(&format!("unknown subcommand or wrong number of arguments for '{sub}'. Try ACL HELP."));
}

/// ACL GENPASS [bits]: random hex from the kernel's generator.
fn genpass(ctx: &mut Ctx, args: &[Bytes]) {
    const MAX_BITS: i64 = 4096;
    if args.len() > 3 {
        return subcommand_syntax(ctx, args);
    }
    let bits = match args.get(2) {
        None => 256,
        Some(a) => match ctx.arg_i64(a) {
            Some(b) => b,
            None => return,
        },
    };
    if bits <= 0 || bits > MAX_BITS {
        return ctx.out.err(&format!(
            "ACL GENPASS argument must be the number of bits for the output password, a positive number up to {MAX_BITS}"
        ));
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut raw = vec![0u8; chars.div_ceil(2)];
    let filled =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut raw));
    if filled.is_err() {
        raw.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    let mut hex = String::with_capacity(raw.len() * 2);
    for b in raw {
        hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    hex.truncate(chars);
    ctx.out.bulk(hex.as_bytes());
}

/// ACL LOG [count | RESET]
fn log(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 3 {
        return subcommand_syntax(ctx, args);
    }
    let mut count = 10;
    match args.get(2) {
        Some(a) if a.eq_ignore_ascii_case(b"reset") => {
            ctx.srv.acl.log.reset();
            return ctx.out.ok();
        }
        Some(a) => match ctx.arg_i64(a) {
            Some(n) => count = n.max(0) as usize,
            None => return,
        },
        None => {}
    }
    let now = crate::util::now_ms();
    ctx.srv.acl.log.reply(ctx.out, count, now);
}

/// ACL DRYRUN username command [arg ...]: `+OK`, or the verbose refusal as a bulk string.
fn dryrun(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() < 4 {
        return ctx.wrong_arity();
    }
    let Some(id) = ctx.srv.acl.id_of(&args[2]) else {
        return ctx.out.err(&format!("User '{}' not found", String::from_utf8_lossy(&args[2])));
    };
    let cmd = &args[3..];
    let registry = ctx.srv.registry;
    let entry = registry.lookup(&cmd[0]).and_then(|e| match (e.subs.is_empty(), cmd.get(1)) {
        (false, Some(sub)) => e.sub(sub),
        _ => Some(e),
    });
    let Some(entry) = entry else {
        return ctx.out.err(&format!("Command '{}' not found", String::from_utf8_lossy(&cmd[0])));
    };
    let (arity, n) = (entry.meta.arity, cmd.len() as i32);
    if (arity > 0 && n != arity) || n < -arity {
        return ctx.out.err(&format!("wrong number of arguments for '{}' command", entry.full_name));
    }
    let user = ctx.srv.acl.user(id);
    match crate::acl::check::check_command(user, entry, cmd) {
        Ok(()) => ctx.out.ok(),
        Err((d, pos)) => {
            let msg = crate::acl::check::message(d, &user.name, &entry.full_name, &cmd[pos], true);
            ctx.out.bulk(msg.as_bytes());
        }
    }
}
