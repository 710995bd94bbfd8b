//! Property tests of the request parser. The parser keeps state between calls and hands out
//! ranges into a buffer the caller shrinks after every request, so the properties that
//! matter are about *incremental* use, exactly as `net::ConnIo` drives it: append whatever
//! the socket returned, parse, drop the consumed prefix, repeat.
//!
//! - Any argument vector encoded as a RESP multibulk parses back to itself, whole or split at
//!   arbitrary points, alone or pipelined.
//! - Inline commands (plain words and double-quoted words with `\xHH` escapes) parse back.
//! - For arbitrary bytes, feeding them in arbitrary pieces gives the same requests and the
//!   same error as parsing them in one go, and never panics; every frame stays inside the
//!   buffer and consumes only what it reports.

use proptest::prelude::*;
use shoal_node::protocol::{Frame, Limits, Parser, ProtocolError};

/// What a run of the parser over a byte stream produced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    requests: Vec<Vec<Vec<u8>>>,
    error: Option<ProtocolError>,
}

/// Checks a frame's invariants and returns its arguments as bytes.
fn take(frame: &Frame, buf: &[u8]) -> Vec<Vec<u8>> {
    let consumed = frame.consumed();
    assert!(consumed > 0, "a frame must consume something");
    assert!(consumed <= buf.len(), "consumed {consumed} of {}", buf.len());
    match frame {
        Frame::Multibulk { args, .. } => args
            .iter()
            .map(|r| {
                assert!(r.start <= r.end && r.end <= consumed, "{r:?} outside {consumed}");
                buf[r.clone()].to_vec()
            })
            .collect(),
        Frame::Inline { args, .. } => args.clone(),
    }
}

/// Feeds `data` in pieces of the given sizes (the rest in one piece), as ConnIo does.
fn feed(data: &[u8], cuts: &[usize], auth_required: bool) -> Outcome {
    let mut parser = Parser::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Outcome { requests: Vec::new(), error: None };
    let mut pos = 0;
    let mut cuts = cuts.iter();
    while pos < data.len() {
        let n = cuts.next().map_or(data.len() - pos, |&c| c.clamp(1, data.len() - pos));
        buf.extend_from_slice(&data[pos..pos + n]);
        pos += n;
        loop {
            let _ = parser.pending_bulk(buf.len());
            match parser.parse(&buf, Limits::default(), auth_required) {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    let args = take(&frame, &buf);
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

fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// A double-quoted inline word that decodes to exactly `arg`.
fn quote(arg: &[u8]) -> Vec<u8> {
    let mut v = vec![b'"'];
    for &b in arg {
        v.extend_from_slice(format!("\\x{b:02x}").as_bytes());
    }
    v.push(b'"');
    v
}

fn args_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 1..12)
}

fn cuts_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..24, 0..40)
}

/// Byte soup biased towards RESP punctuation so the parser's branches are reached.
fn garbage_strategy() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"*".to_vec()),
        Just(b"$".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"-".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"'".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\\x4".to_vec()),
        (0u32..40).prop_map(|n| n.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 1..6),
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn multibulk_round_trips_whole_and_split(args in args_strategy(), cuts in cuts_strategy()) {
        let data = encode(&args);
        let whole = feed(&data, &[], false);
        prop_assert_eq!(&whole.requests, &vec![args.clone()]);
        prop_assert_eq!(&whole.error, &None);
        let split = feed(&data, &cuts, false);
        prop_assert_eq!(split, whole);
        // Byte by byte: the parser is asked for more at every byte but the last.
        let ones = vec![1; data.len()];
        prop_assert_eq!(feed(&data, &ones, false).requests, vec![args]);
    }

    #[test]
    fn pipelined_multibulks_round_trip(
        batch in prop::collection::vec(args_strategy(), 1..6),
        cuts in cuts_strategy(),
    ) {
        let data: Vec<u8> = batch.iter().flat_map(|a| encode(a)).collect();
        let got = feed(&data, &cuts, false);
        prop_assert_eq!(got.requests, batch);
        prop_assert_eq!(got.error, None);
    }

    #[test]
    fn inline_words_round_trip(
        words in prop::collection::vec("[a-zA-Z0-9_:.-]{1,12}", 1..8),
        crlf in any::<bool>(),
        cuts in cuts_strategy(),
    ) {
        let mut data = words.join(" ").into_bytes();
        data.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        let want: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        let got = feed(&data, &cuts, false);
        prop_assert_eq!(got.requests, vec![want]);
        prop_assert_eq!(got.error, None);
    }

    #[test]
    fn inline_quoted_binary_round_trips(args in args_strategy(), cuts in cuts_strategy()) {
        let mut data = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                data.push(b' ');
            }
            data.extend_from_slice(&quote(a));
        }
        data.extend_from_slice(b"\r\n");
        let got = feed(&data, &cuts, false);
        prop_assert_eq!(got.requests, vec![args]);
        prop_assert_eq!(got.error, None);
    }

    #[test]
    fn garbage_parses_the_same_in_any_pieces(
        data in garbage_strategy(),
        cuts in cuts_strategy(),
        auth_required in any::<bool>(),
    ) {
        let whole = feed(&data, &[], auth_required);
        let split = feed(&data, &cuts, auth_required);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn random_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..512),
        cuts in cuts_strategy(),
    ) {
        let whole = feed(&data, &[], false);
        let split = feed(&data, &cuts, false);
        prop_assert_eq!(split, whole);
    }
}

#[test]
fn error_texts_survive_incremental_feeding() {
    let got = feed(b"*1\r\n$3\r\nGET\r\n*1\r\n+x\r\n", &[3, 5, 2, 7], false);
    assert_eq!(got.requests, vec![vec![b"GET".to_vec()]]);
    assert_eq!(got.error.map(|e| e.to_string()), Some("Protocol error: expected '$', got '+'".to_string()));
}
