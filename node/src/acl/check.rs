//! Permission checks (Valkey's `ACLCheckAllUserCommandPerm`): a command is allowed when one
//! selector allows the command, every key it names with the access its key specs declare, and
//! every channel it publishes or subscribes to. When none does, the error reported is the
//! "most relevant" one as Valkey picks it: channel over key over command, and among equals the
//! one found at the latest argument.

use bytes::Bytes;

use super::selector::{Selector, READ, WRITE};
use super::User;
use crate::command::keys_of::{self, KeyRef};
use crate::command::Entry;
use crate::util::glob_match;

/// Why a command was refused; ordered as Valkey's `ACL_DENIED_*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Cmd = 1,
    Key = 2,
    Auth = 3,
    Channel = 4,
}

impl Denied {
    /// ACL LOG's `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Denied::Cmd => "command",
            Denied::Key => "key",
            Denied::Auth => "auth",
            Denied::Channel => "channel",
        }
    }
}

/// A refusal and the argument it is about (0 for the command itself).
pub type Verdict = Result<(), (Denied, usize)>;

/// Valkey's key-spec flags to the permission a key needs.
fn needed(flags: &[&str]) -> u8 {
    let mut p = 0;
    for f in flags {
        match *f {
            "ACCESS" => p |= READ,
            "INSERT" | "DELETE" | "UPDATE" => p |= WRITE,
            _ => {}
        }
    }
    p
}

/// Positions and kinds of the channels a command publishes or subscribes to (Valkey's
/// `getChannelsFromCommand`; unsubscribing is never checked). `pattern`: PSUBSCRIBE.
fn channels(entry: &Entry, argc: usize) -> Option<(std::ops::Range<usize>, bool)> {
    match entry.full_name.as_str() {
        "publish" | "spublish" => Some((1..2.min(argc), false)),
        "subscribe" | "ssubscribe" => Some((1..argc, false)),
        "psubscribe" => Some((1..argc, true)),
        _ => None,
    }
}

/// A channel (or a PSUBSCRIBE pattern, compared literally) against a selector's patterns.
pub fn channel_allowed(list: &[Vec<u8>], channel: &[u8], is_pattern: bool) -> bool {
    list.iter().any(|p| if is_pattern { p == channel } else { glob_match(p, channel, false) })
}

fn key_allowed(s: &Selector, key: &[u8], need: u8) -> bool {
    s.allkeys || s.keys.iter().any(|p| p.perm & need == need && glob_match(&p.pattern, key, false))
}

/// One selector (Valkey's `ACLSelectorCheckCmd`). `keys` is computed once and shared.
fn check_selector(s: &Selector, entry: &Entry, args: &[Bytes], keys: &mut Keys) -> Verdict {
    // The bit test first: it is what almost every command of a restricted user stops at.
    if !s.allcommands && !s.allows(entry.id) && !entry.meta.has_flag("no_auth") {
        let subcommand = entry.full_name.contains('|');
        let first = args.get(if subcommand { 2 } else { 1 });
        let allowed = match (first, s.firstargs.iter().find(|(id, _)| *id == entry.id)) {
            (Some(arg), Some((_, list))) if args.len() >= 2 => {
                list.iter().any(|a| a.eq_ignore_ascii_case(arg))
            }
            _ => false,
        };
        if !allowed {
            return Err((Denied::Cmd, 0));
        }
    }
    if !s.allkeys && keys_of::has_keys(entry.meta) {
        if !keys.done {
            keys_of::command_keys_into(entry.meta, args, &mut keys.list);
            keys.done = true;
        }
        for k in keys.list.iter() {
            if !key_allowed(s, &args[k.pos], needed(k.flags)) {
                return Err((Denied::Key, k.pos));
            }
        }
    }
    if !s.allchannels {
        if let Some((range, pattern)) = channels(entry, args.len()) {
            for i in range {
                if !channel_allowed(&s.channels, &args[i], pattern) {
                    return Err((Denied::Channel, i));
                }
            }
        }
    }
    Ok(())
}

/// The command's keys, computed at most once per check (Valkey's `aclKeyResultCache`).
struct Keys {
    done: bool,
    list: Vec<KeyRef>,
}

thread_local! {
    /// The key list's buffer, reused: a check on the hot path allocates nothing.
    static KEYS: std::cell::Cell<Vec<KeyRef>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Checks a whole command for a user over all its selectors.
pub fn check_command(u: &User, entry: &Entry, args: &[Bytes]) -> Verdict {
    let mut list = KEYS.take();
    list.clear();
    let mut keys = Keys { done: false, list };
    let mut worst = (Denied::Cmd, 0);
    let mut verdict = None;
    for s in &u.selectors {
        match check_selector(s, entry, args, &mut keys) {
            Ok(()) => {
                verdict = Some(Ok(()));
                break;
            }
            Err((d, pos)) => {
                if d > worst.0 || (d == worst.0 && pos > worst.1) {
                    worst = (d, pos);
                }
            }
        }
    }
    KEYS.set(keys.list);
    verdict.unwrap_or(Err(worst))
}

/// Valkey's `ACLUserCheckChannelPerm`, for pub/sub permission changes.
pub fn user_channel_allowed(u: &User, channel: &[u8], is_pattern: bool) -> bool {
    u.selectors.iter().any(|s| s.allchannels || channel_allowed(&s.channels, channel, is_pattern))
}

/// Valkey's `getAclErrorMessage`; `verbose` (ACL DRYRUN) names the key or channel.
pub fn message(d: Denied, user: &[u8], cmd: &str, arg: &[u8], verbose: bool) -> String {
    let user = String::from_utf8_lossy(user);
    match d {
        Denied::Cmd | Denied::Auth => format!("User {user} has no permissions to run the '{cmd}' command"),
        Denied::Key if verbose => {
            format!("User {user} has no permissions to access the '{}' key", String::from_utf8_lossy(arg))
        }
        Denied::Key => "No permissions to access a key".into(),
        Denied::Channel if verbose => {
            format!("User {user} has no permissions to access the '{}' channel", String::from_utf8_lossy(arg))
        }
        Denied::Channel => "No permissions to access a channel".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    fn check(rules: &[&str], cmd: &str) -> Verdict {
        let r = crate::command::registry();
        let rules: Vec<&[u8]> = rules.iter().map(|s| s.as_bytes()).collect();
        let u = super::super::user::set_user(r, None, b"u", &rules, false).unwrap();
        let a = args(cmd);
        let mut e = r.lookup(&a[0]).unwrap();
        if !e.subs.is_empty() {
            e = e.sub(&a[1]).unwrap();
        }
        check_command(&u, e, &a)
    }

    #[test]
    fn commands_keys_channels() {
        assert_eq!(check(&["+get", "~a*"], "get abc"), Ok(()));
        assert_eq!(check(&["+get", "~a*"], "get b"), Err((Denied::Key, 1)));
        assert_eq!(check(&["+get", "~a*"], "set a 1"), Err((Denied::Cmd, 0)));
        assert_eq!(check(&["+@all", "%R~r*"], "set r 1"), Err((Denied::Key, 1)));
        assert_eq!(check(&["+@all", "%R~r*"], "get r"), Ok(()));
        assert_eq!(check(&["+@all", "&news.*"], "publish news.1 x"), Ok(()));
        assert_eq!(check(&["+@all", "&news.*"], "psubscribe news.*"), Ok(()));
        assert_eq!(check(&["+@all", "&news.*"], "psubscribe news.1"), Err((Denied::Channel, 1)));
        assert_eq!(check(&["+@all", "~*", "-config|set"], "config set a b"), Err((Denied::Cmd, 0)));
        assert_eq!(check(&["-@all", "+select|0"], "select 0"), Ok(()));
        assert_eq!(check(&["-@all", "+select|0"], "select 1"), Err((Denied::Cmd, 0)));
        // A second selector allows what the root one does not.
        assert_eq!(check(&["+get", "~a", "(+set ~b)"], "set b 1"), Ok(()));
        assert_eq!(check(&["+get", "~a", "(+set ~b)"], "set a 1"), Err((Denied::Key, 1)));
    }
}
