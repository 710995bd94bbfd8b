//! ACL users, as Valkey 8 has them: every connection runs as a user, and every command is
//! checked against that user's selectors before it runs (`exec::dispatch`, the script bridge).
//!
//! Why this shape:
//! - Users live in one table owned by the executor (`Acl`), addressed by a small id that each
//!   client carries. A `SETUSER` changes the user in place, so its connected clients see the
//!   new rules at their next command, as in Valkey where clients point at the user struct.
//! - Each selector keeps a bitset of allowed command ids (the registry's dense `Entry::id`,
//!   subcommands included), so the command check is one bit test. A user that can run
//!   everything on every key and channel (the default `on nopass ~* &* +@all`) is flagged
//!   `unrestricted`: the dispatcher then pays one branch and nothing else.
//! - Rules are kept as the ordered list of command rules the user gave (Valkey's
//!   `command_rules`), which is what `ACL GETUSER` / `ACL LIST` print.
//!
//! Modules: `user` (users, passwords, flags), `selector` (command, key and channel rules),
//! `check` (permission checks), `log` (ACL LOG), `file` (aclfile, `user` directives).

pub mod check;
pub mod file;
pub mod gate;
pub mod log;
pub mod selector;
pub mod user;

use std::collections::BTreeMap;

use crate::command::Registry;

pub use check::{Denied, Verdict};
pub use user::User;

/// Index of a user in `Acl::users`. The default user is always `DEFAULT_USER`.
pub type UserId = u32;

/// The `default` user's id: it can be neither deleted nor moved.
pub const DEFAULT_USER: UserId = 0;

/// Errors of rule parsing and ACL file handling; their texts are Valkey's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("Unknown command or category name in ACL")]
    UnknownCommand,
    #[error("Syntax error")]
    Syntax,
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    AfterAllKeys,
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    AfterAllChannels,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error(
        "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
    )]
    BadHash,
    #[error("Duplicate user found. A user can only be defined once in config files")]
    Duplicate,
    #[error("Allowing first-arg of a subcommand is not supported")]
    FirstArgOfSubcommand,
    /// A whole-file or startup failure, already worded.
    #[error("{0}")]
    Load(String),
}

/// The users, the ACL log and the settings they depend on.
pub struct Acl {
    /// Users by id; `None` is a deleted user's free slot.
    users: Vec<Option<User>>,
    /// Ids by name, in name order (ACL LIST / USERS order, as Valkey's radix tree).
    names: BTreeMap<Vec<u8>, UserId>,
    /// `unrestricted[id]`: the user may run anything (see the module docs). Kept next to the
    /// users so the dispatcher's test is one load.
    unrestricted: Vec<bool>,
    pub log: log::AclLog,
    /// `acl-pubsub-default allchannels`: new selectors start with `&*`.
    pub pubsub_default_all: bool,
    /// Number of registry entries (bits per selector).
    pub ncommands: usize,
    /// `auth failures`, `invalid command/key/channel accesses` (INFO stats).
    pub stats: [u64; 4],
}

impl Acl {
    /// The initial state: only `default`, `on nopass ~* &* +@all`.
    pub fn new(registry: &Registry) -> Acl {
        let mut acl = Acl {
            users: Vec::new(),
            names: BTreeMap::new(),
            unrestricted: Vec::new(),
            log: log::AclLog::default(),
            pubsub_default_all: false,
            ncommands: registry.len,
            stats: [0; 4],
        };
        let default = acl.default_user_template(registry);
        acl.insert(default);
        acl
    }

    fn default_user_template(&self, registry: &Registry) -> User {
        let mut u = User::new(b"default", self.ncommands, self.pubsub_default_all);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(registry, op.as_bytes(), self.pubsub_default_all);
        }
        u
    }

    fn insert(&mut self, user: User) -> UserId {
        let name = user.name.clone();
        let free = self.users.iter().position(Option::is_none);
        let id = match free {
            Some(i) => i,
            None => {
                self.users.push(None);
                self.unrestricted.push(false);
                self.users.len() - 1
            }
        };
        self.unrestricted[id] = user.unrestricted();
        self.users[id] = Some(user);
        self.names.insert(name, id as UserId);
        id as UserId
    }

    /// The user with this id; a deleted id reads as `default` (its clients are being closed).
    pub fn user(&self, id: UserId) -> &User {
        match self.users.get(id as usize) {
            Some(Some(u)) => u,
            _ => self.users[DEFAULT_USER as usize].as_ref().expect("the default user exists"),
        }
    }

    /// True when the user may run every command on every key and channel.
    #[inline]
    pub fn unrestricted(&self, id: UserId) -> bool {
        self.unrestricted.get(id as usize).copied().unwrap_or(false)
    }

    pub fn id_of(&self, name: &[u8]) -> Option<UserId> {
        self.names.get(name).copied()
    }

    pub fn by_name(&self, name: &[u8]) -> Option<&User> {
        self.id_of(name).map(|id| self.user(id))
    }

    /// Users in name order.
    pub fn users(&self) -> impl Iterator<Item = (UserId, &User)> {
        self.names.values().map(move |&id| (id, self.user(id)))
    }

    /// Replaces (or creates) a user with `user`; returns its id.
    pub fn put(&mut self, user: User) -> UserId {
        match self.id_of(&user.name) {
            Some(id) => {
                self.unrestricted[id as usize] = user.unrestricted();
                self.users[id as usize] = Some(user);
                id
            }
            None => self.insert(user),
        }
    }

    /// Deletes a user (never `default`); returns its former id.
    pub fn remove(&mut self, name: &[u8]) -> Option<UserId> {
        if name == b"default" {
            return None;
        }
        let id = self.names.remove(name)?;
        self.users[id as usize] = None;
        self.unrestricted[id as usize] = false;
        Some(id)
    }

    /// Valkey's `authRequired` for a client that never authenticated: the default user has a
    /// password or is off.
    pub fn auth_required(&self) -> bool {
        let d = self.user(DEFAULT_USER);
        !d.nopass || !d.enabled
    }

    /// Valkey's `ACLCheckUserCredentials`: the id of the user when `pass` opens it.
    pub fn check_credentials(&self, name: &[u8], pass: &[u8]) -> Option<UserId> {
        let id = self.id_of(name)?;
        self.user(id).password_ok(pass).then_some(id)
    }

    /// `requirepass`: the default user's password (`resetpass` then `>pass`, or `nopass` when
    /// empty), as Valkey's `ACLUpdateDefaultUserPassword`.
    pub fn set_requirepass(&mut self, registry: &Registry, pass: &str) {
        let mut u = self.user(DEFAULT_USER).clone();
        let _ = u.apply(registry, b"resetpass", self.pubsub_default_all);
        if pass.is_empty() {
            let _ = u.apply(registry, b"nopass", self.pubsub_default_all);
        } else {
            let mut op = b">".to_vec();
            op.extend_from_slice(pass.as_bytes());
            let _ = u.apply(registry, &op, self.pubsub_default_all);
        }
        self.put(u);
    }

    /// Replaces every user with `users` (ACL LOAD, the ACL file at startup); a missing
    /// `default` gets the initial one. The caller closes the old users' clients first.
    pub fn replace_all(&mut self, registry: &Registry, users: Vec<User>) {
        let (defaults, rest): (Vec<User>, Vec<User>) = users.into_iter().partition(|u| u.name == b"default");
        let default = defaults.into_iter().next().unwrap_or_else(|| self.default_user_template(registry));
        self.users.clear();
        self.unrestricted.clear();
        self.names.clear();
        self.insert(default);
        for u in rest {
            self.insert(u);
        }
    }
}

/// SHA-256 of a password as lower-case hex, Valkey's `ACLHashPassword`.
pub fn hash_password(pass: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(pass);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    s
}

/// Valkey's `ACLStringHasSpaces`: usernames and patterns may not contain whitespace or NUL.
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c == 0 || c == b' ' || (b'\t'..=b'\r').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_matches_valkey() {
        // `ACL SETUSER u >foo` then `ACL GETUSER u` shows this hash in Valkey.
        assert_eq!(hash_password(b"foo"), "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
    }

    #[test]
    fn default_user_is_unrestricted_and_open() {
        let acl = Acl::new(crate::command::registry());
        assert!(acl.unrestricted(DEFAULT_USER));
        assert!(!acl.auth_required());
    }
}
