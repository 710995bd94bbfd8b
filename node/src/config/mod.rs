//! Node configuration, Valkey-style: `shoal-node [shoal.conf] [--directive value ...]`, the
//! same directive names as valkey.conf, `CONFIG GET/SET/REWRITE`. Values are kept in their
//! canonical text form (what `CONFIG GET` shows); the hot paths read a typed snapshot.

pub mod pubsub;
pub mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use table::{Directive, Kind, DIRECTIVES};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("\n*** FATAL CONFIG FILE ERROR (Shoal {version}) ***\nReading the configuration file, at line {line}\n>>> '{text}'\n{reason}")]
    Bad { version: &'static str, line: usize, text: String, reason: String },
    #[error("cannot read config file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The node's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// The file the node was started with, for CONFIG REWRITE.
    pub file: Option<PathBuf>,
    /// `user <name> <rules>...` lines, in order (loaded by `acl::file::load_at_startup`).
    pub users: Vec<Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        let values = DIRECTIVES.iter().map(|d| (d.name, d.default.to_string())).collect();
        Config { values, file: None, users: Vec::new() }
    }
}

fn bad(line: usize, text: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Bad { version: crate::VERSION, line, text: text.to_string(), reason: reason.into() }
}

impl Config {
    /// Builds the configuration from the command line (without the program name).
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let mut rest = args;
        let mut text = String::new();
        if let Some(first) = rest.first() {
            if !first.starts_with("--") {
                let path = PathBuf::from(first);
                text = std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::Io { path: path.clone(), source })?;
                cfg.file = Some(std::fs::canonicalize(&path).unwrap_or(path));
                rest = &rest[1..];
            }
        }
        // Command-line options are appended to the file, one directive per `--name`, as
        // valkey-server does.
        let mut cli = String::new();
        for arg in rest {
            if let Some(name) = arg.strip_prefix("--") {
                if !cli.is_empty() {
                    cli.push('\n');
                }
                cli.push_str(name);
            } else {
                cli.push(' ');
                cli.push_str(&quote(arg));
            }
        }
        text.push('\n');
        text.push_str(&cli);
        cfg.load_str(&text)?;
        Ok(cfg)
    }

    /// Applies directives from config-file text.
    pub fn load_str(&mut self, text: &str) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(words) = crate::protocol::parse::split_args(line.as_bytes()) else {
                return Err(bad(i + 1, line, "Unbalanced quotes in configuration line"));
            };
            let words: Vec<String> = words.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
            let Some((name, args)) = words.split_first() else {
                continue;
            };
            if name.eq_ignore_ascii_case("include") {
                continue;
            }
            if name.eq_ignore_ascii_case("user") {
                if args.is_empty() {
                    return Err(bad(i + 1, line, "wrong number of arguments"));
                }
                self.users.push(args.to_vec());
                continue;
            }
            let Some(dir) = table::find(name) else {
                return Err(bad(i + 1, line, "Bad directive or wrong number of arguments"));
            };
            let value = if matches!(dir.kind, Kind::Str) {
                args.join(" ")
            } else if args.len() == 1 {
                args[0].clone()
            } else {
                return Err(bad(i + 1, line, "wrong number of arguments"));
            };
            let canon = table::normalize(dir, &value).map_err(|e| bad(i + 1, line, e))?;
            let canon = self.merged(dir, &value, canon).map_err(|e| bad(i + 1, line, e))?;
            self.values.insert(dir.name, canon);
        }
        Ok(())
    }

    /// `client-output-buffer-limit` changes only the classes a value names: merge it over the
    /// current value. Every other directive's canonical form stands alone.
    fn merged(&self, dir: &Directive, raw: &str, canon: String) -> Result<String, String> {
        if dir.name != "client-output-buffer-limit" {
            return Ok(canon);
        }
        pubsub::merge_obuf(self.values.get(dir.name).map_or(dir.default, String::as_str), raw)
    }

    /// The canonical value of a directive.
    pub fn get(&self, name: &str) -> Option<&str> {
        let d = table::find(name)?;
        self.values.get(d.name).map(String::as_str)
    }

    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name) == Some("yes")
    }

    /// Every `(name, value)` whose name matches the glob (aliases matched too, reported under
    /// the name asked for when the pattern has no wildcard).
    pub fn matching(&self, pattern: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for d in DIRECTIVES {
            let v = self.values.get(d.name).cloned().unwrap_or_default();
            if crate::util::glob_match(pattern, d.name.as_bytes(), true) {
                out.push((d.name.to_string(), v.clone()));
            }
            if let Some(a) = d.alias {
                if crate::util::glob_match(pattern, a.as_bytes(), true) {
                    out.push((a.to_string(), v));
                }
            }
        }
        out
    }

    /// Sets several directives at once: all are validated first, and nothing changes if one is
    /// invalid. Returns the previous values so the caller can roll back if applying fails.
    pub fn set_many(
        &mut self,
        pairs: &[(String, String)],
    ) -> Result<Vec<(&'static str, String)>, (String, String)> {
        let mut staged: Vec<(&'static str, String)> = Vec::new();
        for (name, value) in pairs {
            let Some(dir) = table::find(name) else {
                return Err((
                    name.clone(),
                    format!("Unknown option or number of arguments for CONFIG SET - '{name}'"),
                ));
            };
            if staged.iter().any(|(n, _)| *n == dir.name) {
                return Err((name.clone(), "duplicate parameter".into()));
            }
            if !dir.mutable {
                return Err((name.clone(), "can't set immutable config".into()));
            }
            let canon = table::normalize(dir, value).map_err(|e| (name.clone(), e))?;
            let canon = self.merged(dir, value, canon).map_err(|e| (name.clone(), e))?;
            staged.push((dir.name, canon));
        }
        let mut old = Vec::new();
        for (name, v) in staged {
            old.push((name, self.values.insert(name, v).unwrap_or_default()));
        }
        Ok(old)
    }

    /// Restores values returned by [`Config::set_many`].
    pub fn restore(&mut self, old: Vec<(&'static str, String)>) {
        for (name, v) in old {
            self.values.insert(name, v);
        }
    }

    /// CONFIG REWRITE: rewrites the startup file so it reflects the running configuration,
    /// keeping comments and the order of existing lines.
    pub fn rewrite(&self) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Err("The server is running without a config file".into());
        };
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let text = self.rewritten(&old);
        write_atomic(path, &text).map_err(|e| format!("Rewriting config file: {e}"))
    }

    fn rewritten(&self, old: &str) -> String {
        let mut done = std::collections::HashSet::new();
        let mut out = String::new();
        for line in old.lines() {
            let t = line.trim();
            let name = t.split_whitespace().next().unwrap_or("");
            if t.starts_with('#') || t.is_empty() {
                if t != "# Generated by CONFIG REWRITE" {
                    out.push_str(line);
                    out.push('\n');
                }
                continue;
            }
            match table::find(name) {
                Some(d) if done.insert(d.name) => {
                    let v = &self.values[d.name];
                    if v != d.default || !t.is_empty() {
                        out.push_str(&format!("{} {}\n", d.name, quote(v)));
                    }
                }
                Some(_) => {}
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        let mut header = false;
        for d in DIRECTIVES {
            let v = &self.values[d.name];
            if !done.contains(d.name) && v != d.default {
                if !header {
                    out.push_str("# Generated by CONFIG REWRITE\n");
                    header = true;
                }
                out.push_str(&format!("{} {}\n", d.name, quote(v)));
            }
        }
        out
    }
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp-rewrite");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Quotes a value for a config line when it needs it.
fn quote(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\') {
        return v.to_string();
    }
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cli_overrides() {
        let c = Config::from_args(&args(&["--port", "0", "--maxmemory", "1mb", "--save", ""])).unwrap();
        assert_eq!(c.get("port"), Some("0"));
        assert_eq!(c.get("maxmemory"), Some("1048576"));
        assert_eq!(c.get("save"), Some(""));
    }

    #[test]
    fn unknown_directive_is_fatal() {
        let e = Config::from_args(&args(&["--no-such", "1"])).unwrap_err().to_string();
        assert!(e.contains("Bad directive"), "{e}");
        let e = Config::from_args(&args(&["--port", "99999"])).unwrap_err().to_string();
        assert!(e.contains("between 0 and 65535"), "{e}");
    }

    #[test]
    fn set_many_is_atomic() {
        let mut c = Config::default();
        let err = c.set_many(&[("maxmemory".into(), "10mb".into()), ("hz".into(), "-1".into())]).unwrap_err();
        assert_eq!(err.0, "hz");
        assert_eq!(c.get("maxmemory"), Some("0"));
        c.set_many(&[("maxmemory".into(), "10mb".into()), ("hz".into(), "20".into())]).unwrap();
        assert_eq!(c.get("maxmemory"), Some("10485760"));
        assert_eq!(c.get("hz"), Some("20"));
    }

    #[test]
    fn hz_is_clamped_and_ints_take_no_units() {
        let mut c = Config::default();
        c.set_many(&[("hz".into(), "0".into())]).unwrap();
        assert_eq!(c.get("hz"), Some("1"));
        c.set_many(&[("hz".into(), "100000".into())]).unwrap();
        assert_eq!(c.get("hz"), Some("500"));
        assert_eq!(c.set_many(&[("timeout".into(), "1k".into())]).unwrap_err().0, "timeout");
        c.set_many(&[("maxmemory".into(), "".into())]).unwrap();
        assert_eq!(c.get("maxmemory"), Some("0"));
    }

    #[test]
    fn rewrite_keeps_comments_and_appends() {
        let mut c = Config::default();
        c.load_str("# hello\nport 7000\n").unwrap();
        c.set_many(&[("hz".into(), "20".into())]).unwrap();
        let text = c.rewritten("# hello\nport 7000\n");
        assert_eq!(text, "# hello\nport 7000\n# Generated by CONFIG REWRITE\nhz 20\n");
    }
}
