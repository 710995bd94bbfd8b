//! CLIENT KILL, old form (`CLIENT KILL ip:port`, replies +OK or an error) and new form (filters
//! ID, ADDR, LADDR, TYPE, USER, SKIPME, MAXAGE; replies the number killed).
//!
//! Other clients are only marked `close_asap`: the executor closes them as soon as their I/O
//! half is home. The running client is marked `close_after_reply` instead, so it still gets
//! this command's reply, as in Valkey.

use std::time::Instant;

use bytes::Bytes;

use super::list::ClientType;
use crate::exec::Ctx;

/// Which clients to kill; every given filter must match.
struct Filter<'a> {
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    ty: Option<ClientType>,
    user: Option<crate::acl::UserId>,
    id: Option<u64>,
    skipme: bool,
    max_age: Option<u64>,
}

pub fn kill(ctx: &mut Ctx, args: &[Bytes]) {
    let old_form = args.len() == 3;
    let Some(f) = parse(ctx, args) else {
        return;
    };
    let now = Instant::now();
    let me = ctx.me;
    let mut killed = 0;
    let mut kill_me = false;
    for (i, c) in ctx.clients.iter_mut() {
        let ty = ClientType::of(c);
        let st = &mut c.st;
        // Already killed by an earlier command: Valkey would have freed it.
        if st.close_asap
            || f.addr.is_some_and(|a| a != st.addr.as_bytes())
            || f.laddr.is_some_and(|a| a != st.laddr.as_bytes())
            || f.ty.is_some_and(|t| t != ty)
            || f.user.is_some_and(|u| u != st.user)
            || f.id.is_some_and(|id| id != st.id)
            || (i == me && f.skipme)
            || f.max_age.is_some_and(|m| now.saturating_duration_since(st.created).as_secs() < m)
        {
            continue;
        }
        if i == me {
            kill_me = true;
        } else {
            st.close_asap = true;
            ctx.srv.kill_pending = true;
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            ctx.out.err("No such client");
        } else {
            ctx.out.ok();
        }
    } else {
        ctx.out.int(killed);
    }
    if kill_me {
        ctx.client().close_after_reply = true;
    }
}

/// Parses the filters, replying the error and returning `None` on bad input.
fn parse<'a>(ctx: &mut Ctx, args: &'a [Bytes]) -> Option<Filter<'a>> {
    let mut f =
        Filter { addr: None, laddr: None, ty: None, user: None, id: None, skipme: true, max_age: None };
    if args.len() == 3 {
        // With the old form you can kill yourself.
        f.addr = Some(&args[2]);
        f.skipme = false;
        return Some(f);
    }
    let mut i = 2;
    while i < args.len() {
        let opt = &args[i];
        let Some(val) = args.get(i + 1) else {
            ctx.syntax_error();
            return None;
        };
        if opt.eq_ignore_ascii_case(b"id") {
            match crate::util::parse_i64(val) {
                Some(id) if id >= 1 => f.id = Some(id as u64),
                _ => {
                    ctx.out.err("client-id should be greater than 0");
                    return None;
                }
            }
        } else if opt.eq_ignore_ascii_case(b"maxage") {
            match crate::util::parse_i64(val) {
                None => {
                    ctx.out.err("maxage is not an integer or out of range");
                    return None;
                }
                Some(m) if m <= 0 => {
                    ctx.out.err("maxage should be greater than 0");
                    return None;
                }
                Some(m) => f.max_age = Some(m as u64),
            }
        } else if opt.eq_ignore_ascii_case(b"type") {
            match ClientType::parse(val) {
                Some(t) => f.ty = Some(t),
                None => {
                    let msg = format!("Unknown client type '{}'", String::from_utf8_lossy(val));
                    ctx.out.err(&msg);
                    return None;
                }
            }
        } else if opt.eq_ignore_ascii_case(b"addr") {
            f.addr = Some(val);
        } else if opt.eq_ignore_ascii_case(b"laddr") {
            f.laddr = Some(val);
        } else if opt.eq_ignore_ascii_case(b"user") {
            match ctx.srv.acl.id_of(val) {
                Some(id) => f.user = Some(id),
                None => {
                    let msg = format!("No such user '{}'", String::from_utf8_lossy(val));
                    ctx.out.err(&msg);
                    return None;
                }
            }
        } else if opt.eq_ignore_ascii_case(b"skipme") {
            if val.eq_ignore_ascii_case(b"yes") {
                f.skipme = true;
            } else if val.eq_ignore_ascii_case(b"no") {
                f.skipme = false;
            } else {
                ctx.syntax_error();
                return None;
            }
        } else {
            ctx.syntax_error();
            return None;
        }
        i += 2;
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use crate::exec::testing::Harness;

    #[test]
    fn errors() {
        let mut h = Harness::default();
        assert_eq!(h.run("CLIENT KILL 1.2.3.4:5"), "-ERR No such client\r\n");
        assert_eq!(h.run("CLIENT KILL ID 0"), "-ERR client-id should be greater than 0\r\n");
        assert_eq!(h.run("CLIENT KILL ID x"), "-ERR client-id should be greater than 0\r\n");
        assert_eq!(h.run("CLIENT KILL ID 1 SKIPME"), "-ERR syntax error\r\n");
        assert_eq!(h.run("CLIENT KILL TYPE foo x"), "-ERR Unknown client type 'foo'\r\n");
        assert_eq!(h.run("CLIENT KILL USER bob"), "-ERR No such user 'bob'\r\n");
        assert_eq!(h.run("CLIENT KILL USER default SKIPME maybe"), "-ERR syntax error\r\n");
        assert_eq!(h.run("CLIENT KILL FOO bar"), "-ERR syntax error\r\n");
        assert_eq!(h.run("CLIENT KILL MAXAGE x"), "-ERR maxage is not an integer or out of range\r\n");
        assert_eq!(h.run("CLIENT KILL MAXAGE 0"), "-ERR maxage should be greater than 0\r\n");
        assert_eq!(h.run("CLIENT KILL ID 999"), ":0\r\n");
        assert_eq!(h.run("CLIENT KILL"), "-ERR wrong number of arguments for 'client|kill' command\r\n");
        assert!(!h.clients[0].st.close_after_reply);
    }

    #[test]
    fn kill_others_by_filters() {
        let mut h = Harness::default();
        let b = h.add_client();
        let c = h.add_client();
        assert_eq!(h.run("CLIENT KILL ID 2"), ":1\r\n");
        assert!(h.clients[b].st.close_asap);
        assert!(!h.clients[c].st.close_asap);
        // A killed client is gone: not listed, not killed twice.
        assert_eq!(h.run("CLIENT KILL ID 2"), ":0\r\n");
        assert_eq!(h.run("CLIENT LIST ID 2"), "$0\r\n\r\n");
        assert_eq!(h.run("CLIENT KILL ADDR 127.0.0.1:3"), ":1\r\n");
        assert!(h.clients[c].st.close_asap);
        assert!(!h.clients[0].st.close_after_reply);
    }

    #[test]
    fn skipme_and_self() {
        let mut h = Harness::default();
        let b = h.add_client();
        assert_eq!(h.run("CLIENT KILL USER default"), ":1\r\n");
        assert!(h.clients[b].st.close_asap);
        assert!(!h.clients[0].st.close_after_reply);
        assert_eq!(h.run("CLIENT KILL TYPE normal SKIPME no"), ":1\r\n");
        assert!(h.clients[0].st.close_after_reply);
        assert!(!h.clients[0].st.close_asap);
    }

    #[test]
    fn old_form_kills_self() {
        let mut h = Harness::default();
        assert_eq!(h.run("CLIENT KILL 127.0.0.1:1"), "+OK\r\n");
        assert!(h.clients[0].st.close_after_reply);
    }

    #[test]
    fn laddr_and_maxage() {
        let mut h = Harness::default();
        let b = h.add_client();
        assert_eq!(h.run("CLIENT KILL MAXAGE 100"), ":0\r\n");
        assert_eq!(h.run("CLIENT KILL LADDR 127.0.0.1:6379"), ":1\r\n");
        assert!(h.clients[b].st.close_asap);
    }
}
