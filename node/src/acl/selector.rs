//! One ACL selector: which commands (a bitset over the registry's command ids, plus allowed
//! first arguments), which keys (patterns with read/write permissions) and which pub/sub
//! channels. Every user has a root selector and any number of `(...)` selectors; a command
//! is allowed when one selector allows all of it. Ports Valkey's `ACLSetSelector` and
//! `ACLDescribeSelector` rule for rule, quirks included (e.g. `%R` without `~` adds an empty
//! pattern), because `ACL GETUSER` output is compared byte for byte by clients and tests.

use super::AclError;
use crate::command::{Entry, Registry};

/// ACL categories in Valkey's order (ACL CAT, descriptions).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Key permission bits (Valkey's `ACL_READ_PERMISSION` / `ACL_WRITE_PERMISSION`).
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;
pub const ALL: u8 = READ | WRITE;

/// A key pattern and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub perm: u8,
}

impl KeyPattern {
    /// `~pat`, `%R~pat` or `%W~pat`.
    pub fn describe(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.perm {
            ALL => b"~".as_slice(),
            READ => b"%R~",
            _ => b"%W~",
        });
        out.extend_from_slice(&self.pattern);
    }
}

/// One selector (Valkey's `aclSelector`).
#[derive(Debug, Clone)]
pub struct Selector {
    pub root: bool,
    pub allkeys: bool,
    pub allchannels: bool,
    /// Every bit is set and none was cleared since (`SELECTOR_FLAG_ALLCOMMANDS`).
    pub allcommands: bool,
    /// Set by `+@all`/`allcommands`, cleared by `-@all`/`nocommands` only: Valkey's reserved
    /// "future commands" bit, which decides whether descriptions start with `+@all`.
    pub future: bool,
    /// Allowed command ids (the registry's `Entry::id`).
    pub allowed: Vec<u64>,
    /// Commands allowed only with these first arguments (`+select|0`), by command id.
    pub firstargs: Vec<(usize, Vec<Vec<u8>>)>,
    pub keys: Vec<KeyPattern>,
    pub channels: Vec<Vec<u8>>,
    /// The command rules in the order given, minus the ones later rules replaced.
    pub rules: Vec<String>,
}

impl Selector {
    pub fn new(root: bool, ncommands: usize, pubsub_all: bool) -> Selector {
        Selector {
            root,
            allkeys: false,
            allchannels: pubsub_all,
            allcommands: false,
            future: false,
            allowed: vec![0; ncommands.div_ceil(64)],
            firstargs: Vec::new(),
            keys: Vec::new(),
            channels: Vec::new(),
            rules: Vec::new(),
        }
    }

    #[inline]
    pub fn allows(&self, id: usize) -> bool {
        self.allowed.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        let Some(w) = self.allowed.get_mut(id / 64) else { return };
        if on {
            *w |= 1 << (id % 64);
        } else {
            *w &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    /// Valkey's `ACLChangeSelectorPerm`: the command, and all its subcommands.
    fn change_perm(&mut self, e: &Entry, on: bool) {
        self.set_bit(e.id, on);
        self.firstargs.retain(|(id, _)| *id != e.id);
        for s in e.subs.values() {
            self.set_bit(s.id, on);
        }
    }

    fn set_category(&mut self, registry: &Registry, cat: &str, on: bool) {
        for e in registry.commands.values() {
            if e.meta.acl.contains(&cat) {
                self.change_perm(e, on);
            }
            for s in e.subs.values() {
                if s.meta.acl.contains(&cat) {
                    self.change_perm(s, on);
                }
            }
        }
    }

    /// Valkey's `ACLUpdateCommandRules`: drop the rules this one replaces (itself, or its
    /// subcommands' rules), then append it.
    fn update_rules(&mut self, rule: &str, allow: bool) {
        let rule = rule.to_ascii_lowercase();
        self.rules.retain(|r| {
            let body = &r[1..];
            !(body == rule
                || (body.len() > rule.len()
                    && body.starts_with(&rule)
                    && body.as_bytes()[rule.len()] == b'|'))
        });
        self.rules.push(format!("{}{rule}", if allow { '+' } else { '-' }));
    }

    fn reset_commands(&mut self, on: bool) {
        let fill = if on { u64::MAX } else { 0 };
        self.allowed.iter_mut().for_each(|w| *w = fill);
        self.allcommands = on;
        self.future = on;
        self.rules.clear();
        self.firstargs.clear();
    }

    /// Applies one selector rule (Valkey's `ACLSetSelector`).
    pub fn apply(&mut self, registry: &Registry, op: &[u8]) -> Result<(), AclError> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("allkeys") || is("~*") {
            self.allkeys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if is("allchannels") || is("&*") {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.reset_commands(true);
        } else if is("nocommands") || is("-@all") {
            self.reset_commands(false);
        } else if op[0] == b'~' || op[0] == b'%' {
            self.add_key_pattern(op)?;
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(AclError::AfterAllChannels);
            }
            let pat = &op[1..];
            if super::has_spaces(pat) {
                return Err(AclError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pat) {
                self.channels.push(pat.to_vec());
            }
            self.allchannels = false;
        } else if op[0] == b'+' && op.get(1) != Some(&b'@') {
            self.allow_command(registry, &op[1..])?;
        } else if op[0] == b'-' && op.get(1) != Some(&b'@') {
            let e = lookup(registry, &op[1..]).ok_or(AclError::UnknownCommand)?;
            self.change_perm(e, false);
            self.update_rules(&e.full_name, false);
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let name = String::from_utf8_lossy(&op[2..]).to_ascii_lowercase();
            let cat = CATEGORIES.iter().find(|c| **c == name).ok_or(AclError::UnknownCommand)?;
            self.update_rules(&String::from_utf8_lossy(&op[1..]), op[0] == b'+');
            self.set_category(registry, cat, op[0] == b'+');
        } else {
            return Err(AclError::Syntax);
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), AclError> {
        if self.allkeys {
            return Err(AclError::AfterAllKeys);
        }
        let mut perm = 0;
        let mut offset = 1;
        if op[0] == b'%' {
            let mut ok = true;
            while offset < op.len() {
                let c = op[offset].to_ascii_uppercase();
                if c == b'R' && perm & READ == 0 {
                    perm |= READ;
                } else if c == b'W' && perm & WRITE == 0 {
                    perm |= WRITE;
                } else if op[offset] == b'~' {
                    offset += 1;
                    break;
                } else {
                    ok = false;
                    break;
                }
                offset += 1;
            }
            if perm == 0 || !ok {
                return Err(AclError::Syntax);
            }
        } else {
            perm = ALL;
        }
        let pat = &op[offset.min(op.len())..];
        if super::has_spaces(pat) {
            return Err(AclError::Syntax);
        }
        match self.keys.iter_mut().find(|k| k.pattern == pat) {
            Some(k) => k.perm |= perm,
            None => self.keys.push(KeyPattern { pattern: pat.to_vec(), perm }),
        }
        self.allkeys = false;
        Ok(())
    }

    /// `+cmd`, `+cmd|sub`, `+cmd|firstarg`.
    fn allow_command(&mut self, registry: &Registry, name: &[u8]) -> Result<(), AclError> {
        let Some(bar) = name.iter().rposition(|&b| b == b'|') else {
            let e = lookup(registry, name).ok_or(AclError::UnknownCommand)?;
            self.change_perm(e, true);
            self.update_rules(&e.full_name, true);
            return Ok(());
        };
        let (cmd, sub) = (&name[..bar], &name[bar + 1..]);
        let e = lookup(registry, cmd).ok_or(AclError::UnknownCommand)?;
        if e.full_name.contains('|') {
            return Err(AclError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(AclError::Syntax);
        }
        if !e.subs.is_empty() {
            let s = lookup(registry, name).ok_or(AclError::UnknownCommand)?;
            self.change_perm(s, true);
        } else {
            let id = e.id;
            match self.firstargs.iter_mut().find(|(i, _)| *i == id) {
                Some((_, list)) => {
                    if !list.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                        list.push(sub.to_vec());
                    }
                }
                None => self.firstargs.push((id, vec![sub.to_vec()])),
            }
        }
        self.update_rules(&String::from_utf8_lossy(name), true);
        Ok(())
    }

    /// `+@all ...` or `-@all ...` (Valkey's `ACLDescribeSelectorCommandRules`).
    pub fn describe_commands(&self) -> String {
        let mut s = String::from(if self.future { "+@all" } else { "-@all" });
        for r in &self.rules {
            s.push(' ');
            s.push_str(r);
        }
        s
    }

    /// Keys, channels and commands as one rule string (Valkey's `ACLDescribeSelector`).
    pub fn describe(&self, out: &mut Vec<u8>) {
        if self.allkeys {
            out.extend_from_slice(b"~* ");
        } else {
            for k in &self.keys {
                k.describe(out);
                out.push(b' ');
            }
        }
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                out.push(b'&');
                out.extend_from_slice(c);
                out.push(b' ');
            }
        }
        out.extend_from_slice(self.describe_commands().as_bytes());
    }

    /// GETUSER's `keys` field.
    pub fn describe_keys(&self) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            k.describe(&mut out);
        }
        out
    }

    /// GETUSER's `channels` field.
    pub fn describe_channels(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }
}

/// Valkey's `ACLLookupCommand`: `name` or `name|sub`, case-insensitively; one level only.
pub fn lookup<'r>(registry: &'r Registry, name: &[u8]) -> Option<&'r Entry> {
    let mut parts = name.split(|&b| b == b'|');
    let first = parts.next()?;
    let e = registry.lookup(first)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(e),
        (Some(sub), None) if !e.subs.is_empty() => e.sub(sub),
        _ => None,
    }
}

/// Splits a rule string on spaces, as the rules were given (for `(...)` selectors).
pub fn split_rules(s: &[u8]) -> Vec<&[u8]> {
    s.split(|&b| b == b' ').filter(|w| !w.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(ops: &[&str]) -> Selector {
        let r = crate::command::registry();
        let mut s = Selector::new(true, r.len, false);
        for op in ops {
            s.apply(r, op.as_bytes()).unwrap();
        }
        s
    }

    #[test]
    fn rules_replace_earlier_ones() {
        let s = sel(&["+@all", "-@dangerous", "+get", "-get", "+config|get", "-config"]);
        assert_eq!(s.describe_commands(), "+@all -@dangerous -get -config");
        let s = sel(&["-@all", "+SELECT|0", "+select|1"]);
        assert_eq!(s.describe_commands(), "-@all +select|0 +select|1");
    }

    #[test]
    fn key_patterns_merge_permissions() {
        let s = sel(&["%R~foo", "%W~foo", "%R~bar", "~baz"]);
        assert_eq!(s.describe_keys(), b"~foo %R~bar ~baz".to_vec());
    }

    #[test]
    fn bad_rules() {
        let r = crate::command::registry();
        let mut s = Selector::new(true, r.len, false);
        assert_eq!(s.apply(r, b"+nosuch"), Err(AclError::UnknownCommand));
        assert_eq!(s.apply(r, b"%X~a"), Err(AclError::Syntax));
        assert_eq!(s.apply(r, b"+config|get|x"), Err(AclError::FirstArgOfSubcommand));
        s.apply(r, b"allkeys").unwrap();
        assert_eq!(s.apply(r, b"~a"), Err(AclError::AfterAllKeys));
    }
}
