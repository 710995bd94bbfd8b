//! Differential cases: `tests/diff/*.txt` files of commands run against shoal-node and the
//! reference redis-server, comparing replies byte for byte (or by shape, or as sorted
//! multisets, when a line says so). The format is documented in `tests/diff/README.md`.

use std::fmt::Write as _;
use std::path::Path;

use shoal_node::protocol::parse::split_args;

use crate::client::{Addr, RawClient};
use crate::resp::{self, Value};

/// How a line's replies are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Raw RESP bytes must be identical.
    Exact,
    /// `~ `: only the reply's type and aggregate lengths, recursively.
    Shape,
    /// `sort `: aggregates compared as sorted multisets (see [`normalize_sorted`]).
    Sorted,
}

/// One command line of a case file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub line: usize,
    pub text: String,
    pub args: Vec<Vec<u8>>,
    pub compare: Compare,
}

/// Parses a case file. Errors name the line.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (compare, rest) = if let Some(rest) = trimmed.strip_prefix("~ ") {
            (Compare::Shape, rest)
        } else if let Some(rest) = trimmed.strip_prefix("sort ") {
            (Compare::Sorted, rest)
        } else {
            (Compare::Exact, trimmed)
        };
        let args =
            split_args(rest.as_bytes()).ok_or_else(|| format!("line {line}: unbalanced quotes: {raw}"))?;
        if args.is_empty() {
            return Err(format!("line {line}: marker without a command: {raw}"));
        }
        cases.push(Case { line, text: trimmed.to_string(), args, compare });
    }
    Ok(cases)
}

/// The type-and-shape skeleton of a reply: type bytes and aggregate lengths, no contents.
pub fn shape(v: &Value) -> String {
    let mut s = String::new();
    shape_into(v, &mut s);
    s
}

fn shape_into(v: &Value, s: &mut String) {
    s.push(char::from(v.kind()));
    match v {
        Value::Line(..) => {}
        Value::Blob(_, None) | Value::Agg(_, None) => s.push_str("null"),
        Value::Blob(_, Some(_)) => {}
        Value::Agg(_, Some(kids)) => {
            let _ = write!(s, "{}[", kids.len());
            for k in kids {
                shape_into(k, s);
                s.push(' ');
            }
            s.push(']');
        }
    }
}

/// A canonical text for `sort` comparisons. Scalars are their exact RESP bytes. An aggregate
/// whose children are all scalars, or all aggregates, becomes the sorted list of its
/// (normalised) children: KEYS, SMEMBERS, nested pairs. An aggregate mixing both keeps its order,
/// with scalars reduced to their shape: SCAN's `[cursor, [keys]]` compares the cursor's type
/// only and the keys as a multiset. Maps are sorted by key-value pair.
pub fn normalize_sorted(v: &Value) -> String {
    match v {
        Value::Line(..) | Value::Blob(..) | Value::Agg(_, None) => resp::escape(&v.to_bytes()),
        Value::Agg(kind, Some(kids)) => {
            let is_agg = |k: &Value| matches!(k, Value::Agg(_, Some(_)));
            let mut parts: Vec<String> = if matches!(kind, b'%') {
                kids.chunks(2)
                    .map(|p| p.iter().map(normalize_sorted).collect::<Vec<_>>().join(" => "))
                    .collect()
            } else if kids.iter().all(is_agg) || !kids.iter().any(is_agg) {
                kids.iter().map(normalize_sorted).collect()
            } else {
                let ordered = kids
                    .iter()
                    .map(|k| if is_agg(k) { normalize_sorted(k) } else { shape(k) })
                    .collect::<Vec<_>>();
                return format!("{}{}({})", char::from(*kind), kids.len(), ordered.join(", "));
            };
            parts.sort();
            format!("{}{}{{{}}}", char::from(*kind), kids.len(), parts.join(", "))
        }
    }
}

/// A reply, or what went wrong instead.
pub type Outcome = Result<Vec<u8>, String>;

/// True if the two outcomes agree under `compare`.
pub fn agree(compare: Compare, a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            if compare == Compare::Exact {
                return a == b;
            }
            let (Ok(Some((va, _))), Ok(Some((vb, _)))) = (resp::parse(a), resp::parse(b)) else {
                return false;
            };
            match compare {
                Compare::Shape => shape(&va) == shape(&vb),
                _ => normalize_sorted(&va) == normalize_sorted(&vb),
            }
        }
        // Both sides closing the connection (e.g. after QUIT) is agreement.
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

fn show(o: &Outcome) -> String {
    match o {
        Ok(raw) => format!("\"{}\"", resp::escape(raw)),
        Err(e) => format!("<{e}>"),
    }
}

/// One side of the comparison: a connection that is reopened after an I/O failure.
struct Side {
    addr: Addr,
    conn: Option<RawClient>,
}

impl Side {
    fn run(&mut self, args: &[Vec<u8>]) -> Outcome {
        if self.conn.is_none() {
            self.conn = Some(RawClient::connect(&self.addr).map_err(|e| format!("connect: {e}"))?);
        }
        let Some(c) = self.conn.as_mut() else {
            return Err("not connected".into());
        };
        match c.cmd(args) {
            Ok(raw) => Ok(raw),
            Err(e) => {
                self.conn = None;
                Err(match e.kind() {
                    std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe => "connection closed".to_string(),
                    _ => format!("I/O error: {e}"),
                })
            }
        }
    }
}

/// Runs `cases` on one fresh connection to each server and returns a description of every
/// disagreement, prefixed with `file:line`.
pub fn run_cases(file: &str, cases: &[Case], shoal: &Addr, reference: &Addr) -> Vec<String> {
    let mut a = Side { addr: shoal.clone(), conn: None };
    let mut b = Side { addr: reference.clone(), conn: None };
    let mut mismatches = Vec::new();
    for case in cases {
        let got = a.run(&case.args);
        let want = b.run(&case.args);
        if !agree(case.compare, &got, &want) {
            let how = match case.compare {
                Compare::Exact => "",
                Compare::Shape => " (shape)",
                Compare::Sorted => " (sorted)",
            };
            mismatches.push(format!(
                "{file}:{}: {}{how}\n    shoal: {}\n    redis: {}",
                case.line,
                case.text,
                show(&got),
                show(&want)
            ));
        }
    }
    mismatches
}

/// The `*.txt` case files of a directory, sorted by name.
pub fn case_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(raw: &[u8]) -> Value {
        resp::parse(raw).unwrap().unwrap().0
    }

    #[test]
    fn parses_markers_comments_and_quotes() {
        let cases = parse_cases("# c\n\nSET \"a\\x00\" 1\n~ TTL k\nsort KEYS *\n").unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0].args, vec![b"SET".to_vec(), b"a\0".to_vec(), b"1".to_vec()]);
        assert_eq!(cases[0].line, 3);
        assert_eq!(cases[1].compare, Compare::Shape);
        assert_eq!(cases[2].compare, Compare::Sorted);
        assert!(parse_cases("SET \"a\n").unwrap_err().contains("line 1"));
    }

    #[test]
    fn shape_ignores_contents() {
        assert_eq!(shape(&v(b":1\r\n")), shape(&v(b":99\r\n")));
        assert_ne!(shape(&v(b":1\r\n")), shape(&v(b"$1\r\n1\r\n")));
        assert_ne!(shape(&v(b"*1\r\n:1\r\n")), shape(&v(b"*2\r\n:1\r\n:2\r\n")));
        assert_ne!(shape(&v(b"$-1\r\n")), shape(&v(b"$0\r\n\r\n")));
    }

    #[test]
    fn sorted_compares_multisets() {
        let a = v(b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n");
        let b = v(b"*3\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\na\r\n");
        let c = v(b"*3\r\n$1\r\nb\r\n$1\r\nb\r\n$1\r\na\r\n");
        assert_eq!(normalize_sorted(&a), normalize_sorted(&b));
        assert_ne!(normalize_sorted(&a), normalize_sorted(&c));
        // SCAN: cursor by shape, keys as a multiset.
        let s1 = v(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n");
        let s2 = v(b"*2\r\n$2\r\n17\r\n*2\r\n$1\r\ny\r\n$1\r\nx\r\n");
        assert_eq!(normalize_sorted(&s1), normalize_sorted(&s2));
        let s3 = v(b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\ny\r\n");
        assert_ne!(normalize_sorted(&s1), normalize_sorted(&s3));
    }

    #[test]
    fn errors_agree_only_with_the_same_error() {
        let closed: Outcome = Err("connection closed".into());
        assert!(agree(Compare::Exact, &closed, &closed.clone()));
        assert!(!agree(Compare::Exact, &closed, &Ok(b"+OK\r\n".to_vec())));
    }
}
