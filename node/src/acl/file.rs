//! The ACL file (`aclfile`, ACL LOAD / ACL SAVE) and `user` directives of the config file.
//! Loading is all or nothing, as Valkey's `ACLLoadFromFile`: every line is checked, every
//! error collected into one message, and the running users stay as they were if any line is
//! bad. Saving writes a temporary file, syncs it and renames it over the old one.

use std::io::Write;
use std::path::Path;

use super::user::{merge_selector_args, User};
use super::{Acl, AclError};
use crate::command::Registry;

/// Parses ACL file text into users; `Err` is the whole error reply of ACL LOAD.
pub fn parse(registry: &Registry, filename: &str, text: &str, pubsub_all: bool) -> Result<Vec<User>, String> {
    let mut errors = String::new();
    let mut users: Vec<User> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let linenum = i + 1;
        let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        if line.is_empty() {
            continue;
        }
        let argv: Vec<&[u8]> = line.as_bytes().split(|&b| b == b' ').collect();
        if argv[0] != b"user" || argv.len() < 2 {
            errors.push_str(&format!(
                "{filename}:{linenum} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = argv[1];
        if super::has_spaces(name) {
            errors.push_str(&format!(
                "'{filename}:{linenum}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        if users.iter().any(|u| u.name == name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {linenum}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        let mut u = User::new(name, registry.len, pubsub_all);
        let merged = match merge_selector_args(&argv[2..]) {
            Ok(m) => m,
            Err(_) => {
                errors.push_str(&format!(
                    "{filename}:{linenum}: Unmatched parenthesis in selector definition."
                ));
                Vec::new()
            }
        };
        let mut syntax_error = false;
        for op in merged {
            let op: Vec<u8> = trim_bytes(&op, b"\t\r\n").to_vec();
            if let Err(e) = u.apply(registry, &op, pubsub_all) {
                if e == AclError::UnknownCommand {
                    errors.push_str(&format!(
                        "{filename}:{linenum}: Error in applying operation '{}': {e}. ",
                        String::from_utf8_lossy(&op)
                    ));
                } else if !syntax_error {
                    errors.push_str(&format!("{filename}:{linenum}: {e}. "));
                    syntax_error = true;
                }
            }
        }
        users.push(u);
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        Err(errors)
    }
}

/// `strerror` text of an I/O error, without Rust's ` (os error N)` suffix.
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn trim_bytes<'a>(mut s: &'a [u8], set: &[u8]) -> &'a [u8] {
    while let Some((f, rest)) = s.split_first() {
        if !set.contains(f) {
            break;
        }
        s = rest;
    }
    while let Some((l, rest)) = s.split_last() {
        if !set.contains(l) {
            break;
        }
        s = rest;
    }
    s
}

/// Reads and parses the ACL file.
pub fn load(registry: &Registry, filename: &str, pubsub_all: bool) -> Result<Vec<User>, String> {
    let text = std::fs::read(filename)
        .map_err(|e| format!("Error loading ACLs, opening file '{filename}': {}", strerror(&e)))?;
    parse(registry, filename, &String::from_utf8_lossy(&text), pubsub_all)
}

/// Writes every user to `filename` (ACL SAVE), atomically.
pub fn save(acl: &Acl, filename: &str) -> std::io::Result<()> {
    let mut text = Vec::new();
    for (_, u) in acl.users() {
        text.extend_from_slice(&u.config_line());
        text.push(b'\n');
    }
    let tmp = format!("{filename}.tmp-{}-{}", std::process::id(), crate::util::now_ms());
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, filename)?;
        if let Some(dir) = Path::new(filename).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Startup (Valkey's `ACLLoadUsersAtStartup`): `requirepass`, then the `user` directives or
/// the ACL file (not both).
pub fn load_at_startup(
    acl: &mut Acl,
    registry: &Registry,
    config: &crate::config::Config,
) -> Result<(), AclError> {
    acl.pubsub_default_all = config.get("acl-pubsub-default") == Some("allchannels");
    acl.log.max_len = config.get_i64("acllog-max-len").max(0) as usize;
    acl.set_requirepass(registry, config.get("requirepass").unwrap_or(""));
    let aclfile = config.get("aclfile").unwrap_or("");
    if !aclfile.is_empty() && !config.users.is_empty() {
        return Err(AclError::Load(
            "Configuring Valkey with users defined in valkey.conf and at the same setting an ACL file path is \
             invalid. This setup is very likely to lead to configuration errors and security holes, please \
             define either an ACL file or declare users directly in your valkey.conf, but not both."
                .into(),
        ));
    }
    let mut seen: Vec<&[u8]> = Vec::new();
    for words in &config.users {
        let Some((name, rules)) = words.split_first() else { continue };
        if seen.contains(&name.as_bytes()) {
            return Err(AclError::Duplicate);
        }
        seen.push(name.as_bytes());
        if super::has_spaces(name.as_bytes()) {
            return Err(AclError::Load("Spaces not allowed in ACL usernames".into()));
        }
        let rules: Vec<&[u8]> = rules.iter().map(|r| r.as_bytes()).collect();
        let merged = merge_selector_args(&rules).map_err(|j| {
            AclError::Load(format!(
                "Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(rules[j])
            ))
        })?;
        let mut u = match acl.by_name(name.as_bytes()) {
            Some(existing) => {
                let mut u = existing.clone();
                let _ = u.apply(registry, b"reset", acl.pubsub_default_all);
                u
            }
            None => User::new(name.as_bytes(), registry.len, acl.pubsub_default_all),
        };
        for op in &merged {
            u.apply(registry, op, acl.pubsub_default_all).map_err(|e| {
                AclError::Load(format!(
                    "Error loading ACL rule '{}' for the user named '{name}': {e}",
                    String::from_utf8_lossy(op)
                ))
            })?;
        }
        if !u.enabled {
            log::info!(
                "The user '{name}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error."
            );
        }
        acl.put(u);
    }
    if !aclfile.is_empty() {
        let users = load(registry, aclfile, acl.pubsub_default_all)
            .map_err(|e| AclError::Load(format!("Aborting startup because of ACL errors: {e}")))?;
        acl.replace_all(registry, users);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_collects_every_error() {
        let r = crate::command::registry();
        let text = "user a on >x ~* +@all\n\nuser b on +nosuch bad\nuser a off\nfoo\n";
        let e = parse(r, "users.acl", text, false).unwrap_err();
        assert_eq!(
            e,
            "users.acl:3: Error in applying operation '+nosuch': Unknown command or category name in ACL. \
             users.acl:3: Syntax error. WARNING: Duplicate user 'a' found on line 4. \
             users.acl:5 should start with user keyword followed by the username. \
             WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        );
        let ok = parse(r, "users.acl", "user a on nopass ~* &* +@all\r\n", false).unwrap();
        assert_eq!(ok[0].config_line(), b"user a on nopass ~* &* +@all".to_vec());
    }
}
