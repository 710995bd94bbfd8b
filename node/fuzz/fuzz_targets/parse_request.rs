//! Fuzzes the RESP request parser the way `net::ConnIo` drives it: bytes arrive in pieces,
//! each piece is appended to the buffer, complete requests are parsed and their bytes
//! dropped from the front, and the parser keeps its state in between.
//!
//! Checked on every input: no panic; a frame consumes at least one byte and no more than the
//! buffer holds; every argument range lies inside the consumed prefix; and feeding the bytes
//! in pieces yields exactly the requests and the error that parsing them in one go yields.
//!
//! The first bytes of an input steer the run: byte 0 picks `auth_required` and a small or
//! default bulk length limit, bytes 1..4 give the sizes of the pieces (cycled).
//!
//! Run (needs a nightly toolchain and `cargo install cargo-fuzz`):
//!
//! ```text
//! cd node/fuzz
//! cargo +nightly fuzz run parse_request -- -dict=resp.dict -max_total_time=60
//! ```
//!
//! Without cargo-fuzz, `cargo check` here verifies the target builds on stable.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_node::protocol::{Frame, Limits, Parser, ProtocolError};

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    requests: Vec<Vec<Vec<u8>>>,
    error: Option<ProtocolError>,
}

fn check(frame: &Frame, buf: &[u8]) -> Vec<Vec<u8>> {
    let consumed = frame.consumed();
    assert!(
        consumed > 0 && consumed <= buf.len(),
        "consumed {consumed} of {}",
        buf.len()
    );
    match frame {
        Frame::Multibulk { args, .. } => args
            .iter()
            .map(|r| {
                assert!(
                    r.start <= r.end && r.end <= consumed,
                    "{r:?} outside {consumed}"
                );
                buf[r.clone()].to_vec()
            })
            .collect(),
        Frame::Inline { args, .. } => args.clone(),
    }
}

/// Parses `data` fed in pieces whose sizes cycle through `pieces` (empty: all at once).
fn run(data: &[u8], pieces: &[usize], limits: Limits, auth_required: bool) -> Outcome {
    let mut parser = Parser::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Outcome {
        requests: Vec::new(),
        error: None,
    };
    let mut pos = 0;
    let mut k = 0;
    while pos < data.len() {
        let n = match pieces.get(k % pieces.len().max(1)) {
            Some(&p) if !pieces.is_empty() => p.clamp(1, data.len() - pos),
            _ => data.len() - pos,
        };
        k += 1;
        buf.extend_from_slice(&data[pos..pos + n]);
        pos += n;
        loop {
            if let Some(need) = parser.pending_bulk(buf.len()) {
                assert!(need <= limits.max_bulk_len + 2 + buf.len());
            }
            match parser.parse(&buf, limits, auth_required) {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    let args = check(&frame, &buf);
                    if !frame.is_empty() {
                        out.requests.push(args);
                    }
                    buf.drain(..frame.consumed());
                }
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctrl, rest)) = data.split_first() else {
        return;
    };
    let split = rest.len().min(3);
    let (sizes, body) = rest.split_at(split);
    let pieces: Vec<usize> = sizes.iter().map(|&b| usize::from(b % 64) + 1).collect();
    let auth_required = ctrl & 1 != 0;
    let limits = if ctrl & 2 != 0 {
        Limits { max_bulk_len: 16 }
    } else {
        Limits::default()
    };
    let whole = run(body, &[], limits, auth_required);
    let split = run(body, &pieces, limits, auth_required);
    assert_eq!(whole, split);
});
