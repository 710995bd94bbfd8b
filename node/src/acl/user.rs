//! An ACL user: on/off, passwords (SHA-256 hex, as Valkey stores them), the payload
//! sanitization flag and its selectors (the first one is the root selector, the rules given
//! outside parentheses). `User::apply` is Valkey's `ACLSetUser`; `describe` is
//! `ACLDescribeUser`, the text `ACL LIST` and `ACL SAVE` write.

use super::selector::{split_rules, Selector};
use super::AclError;
use crate::command::Registry;

#[derive(Debug, Clone)]
pub struct User {
    pub name: Vec<u8>,
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (`Some(true)`) or `skip-sanitize-payload` (`Some(false)`) once
    /// either was given; a new user has neither flag, as in Valkey 8.
    pub sanitize: Option<bool>,
    /// Hex SHA-256 hashes, in the order they were added.
    pub passwords: Vec<String>,
    /// `selectors[0]` is the root selector.
    pub selectors: Vec<Selector>,
}

impl User {
    /// A new user: `off resetchannels -@all` (or `&*` with
    /// `acl-pubsub-default allchannels`).
    pub fn new(name: &[u8], ncommands: usize, pubsub_all: bool) -> User {
        User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true, ncommands, pubsub_all)],
        }
    }

    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    /// May run any command on any key and channel (one selector allows everything).
    pub fn unrestricted(&self) -> bool {
        self.selectors.iter().any(|s| s.allcommands && s.allkeys && s.allchannels)
    }

    /// `pass` opens this user: it is on and `nopass`, or the hash of `pass` is one of its.
    pub fn password_ok(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hashed = super::hash_password(pass);
        // Compare every stored hash in full, whatever matched: no timing hint.
        let mut ok = false;
        for p in &self.passwords {
            let diff = p.bytes().zip(hashed.bytes()).fold(0u8, |d, (a, b)| d | (a ^ b));
            ok |= diff == 0 && p.len() == hashed.len();
        }
        ok
    }

    /// Applies one rule (Valkey's `ACLSetUser`).
    pub fn apply(&mut self, registry: &Registry, op: &[u8], pubsub_all: bool) -> Result<(), AclError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if is("sanitize-payload") {
            self.sanitize = Some(true);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' { super::hash_password(&op[1..]) } else { valid_hash(&op[1..])? };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' { super::hash_password(&op[1..]) } else { valid_hash(&op[1..])? };
            let at = self.passwords.iter().position(|p| *p == hash).ok_or(AclError::NoSuchPassword)?;
            self.passwords.remove(at);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let ncommands = self.selectors[0].allowed.len() * 64;
            let mut s = Selector::new(false, ncommands, pubsub_all);
            for rule in split_rules(&op[1..op.len() - 1]) {
                s.apply(registry, rule)?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            for r in ["resetpass", "resetkeys", "resetchannels"] {
                self.apply(registry, r.as_bytes(), pubsub_all)?;
            }
            if pubsub_all {
                self.apply(registry, b"allchannels", pubsub_all)?;
            }
            for r in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                self.apply(registry, r.as_bytes(), pubsub_all)?;
            }
        } else {
            self.selectors[0].apply(registry, op)?;
        }
        Ok(())
    }

    /// Flags in Valkey's order: `on`/`off`, `nopass`, `skip-sanitize-payload`/`sanitize-payload`.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// The rules that recreate this user (Valkey's `ACLDescribeUser`).
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.flags() {
            out.extend_from_slice(f.as_bytes());
            out.push(b' ');
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p.as_bytes());
            out.push(b' ');
        }
        for s in &self.selectors {
            if s.root {
                s.describe(&mut out);
            } else {
                out.extend_from_slice(b" (");
                s.describe(&mut out);
                out.push(b')');
            }
        }
        out
    }

    /// `user <name> <rules>`, a line of ACL LIST and of the ACL file.
    pub fn config_line(&self) -> Vec<u8> {
        let mut out = b"user ".to_vec();
        out.extend_from_slice(&self.name);
        out.push(b' ');
        out.extend_from_slice(&self.describe());
        out
    }
}

/// Valkey's `ACLCheckPasswordHash`: 64 lower-case hex characters.
fn valid_hash(h: &[u8]) -> Result<String, AclError> {
    if h.len() != 64 || !h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(AclError::BadHash);
    }
    Ok(String::from_utf8_lossy(h).into_owned())
}

/// Valkey's `ACLMergeSelectorArguments`: a selector split over several arguments
/// (`(` ... `)`) is joined with spaces. `Err` holds the index where an unclosed one starts.
pub fn merge_selector_args(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in args.iter().enumerate() {
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                out.push(std::mem::take(sel));
                open = None;
            }
            continue;
        }
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((j, op.to_vec()));
            continue;
        }
        out.push(op.to_vec());
    }
    match open {
        Some((j, _)) => Err(j),
        None => Ok(out),
    }
}

/// Valkey's `ACLStringSetUser`: applies `args` to a copy of `base` (or a new user named
/// `name`), all or nothing. The error is the reply text.
pub fn set_user(
    registry: &Registry,
    base: Option<&User>,
    name: &[u8],
    args: &[&[u8]],
    pubsub_all: bool,
) -> Result<User, String> {
    let merged = merge_selector_args(args).map_err(|j| {
        format!("Unmatched parenthesis in acl selector starting at '{}'.", String::from_utf8_lossy(args[j]))
    })?;
    let mut u = match base {
        Some(b) => b.clone(),
        None => User::new(name, registry.len, pubsub_all),
    };
    for op in &merged {
        if let Err(e) = u.apply(registry, op, pubsub_all) {
            return Err(format!("Error in ACL SETUSER modifier '{}': {e}", String::from_utf8_lossy(op)));
        }
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> User {
        let r = crate::command::registry();
        let args: Vec<&[u8]> = rules.iter().map(|s| s.as_bytes()).collect();
        set_user(r, None, b"u", &args, false).unwrap()
    }

    #[test]
    fn describe_like_valkey() {
        let u = user(&[]);
        assert_eq!(String::from_utf8(u.describe()).unwrap(), "off resetchannels -@all");
        let u = user(&["on", ">p", "~k*", "&ch", "+get", "(", "+set", "~x", ")"]);
        assert_eq!(
            String::from_utf8(u.describe()).unwrap(),
            format!(
                "on #{} ~k* resetchannels &ch -@all +get (~x resetchannels -@all +set)",
                crate::acl::hash_password(b"p")
            )
        );
    }

    #[test]
    fn unmatched_parenthesis() {
        let r = crate::command::registry();
        let e = set_user(r, None, b"u", &[b"(+get".as_slice(), b"~x"], false).unwrap_err();
        assert_eq!(e, "Unmatched parenthesis in acl selector starting at '(+get'.");
    }
}
