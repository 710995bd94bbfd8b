//! Moving values between names and databases: RENAME, RENAMENX, COPY, MOVE. The TTL travels
//! with the value; the access time restarts, as Valkey's `dbAdd` does.

use bytes::Bytes;

use super::{cstr, db_index_arg, dispose, single_cluster_db, LAZY_SERVER_DEL};
use crate::exec::notify::{class, emit_in};
use crate::exec::Ctx;

const SAME_OBJECT: &str = "source and destination objects are the same";

/// RENAME key newkey
pub fn rename(ctx: &mut Ctx, args: &[Bytes]) {
    rename_generic(ctx, args, false);
}

/// RENAMENX key newkey
pub fn renamenx(ctx: &mut Ctx, args: &[Bytes]) {
    rename_generic(ctx, args, true);
}

fn rename_generic(ctx: &mut Ctx, args: &[Bytes], nx: bool) {
    let (src, dst) = (&args[1], &args[2]);
    if ctx.lookup_write(src).is_none() {
        ctx.out.err("no such key");
        return;
    }
    if src == dst {
        // Same name: nothing to do, but the key had to exist.
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return;
    }
    let now = ctx.now_ms;
    let clock = ctx.clock();
    let i = ctx.clients[ctx.me].st.db;
    let db = &mut ctx.srv.dbs[i];
    if db.contains(dst, now) && nx {
        ctx.out.int(0);
        return;
    }
    let Some(entry) = db.remove(src) else {
        ctx.out.err("no such key");
        return;
    };
    let at = entry.expire_at();
    let old = db.set(dst, entry.into_value(), at, clock);
    if let Some(old) = old {
        dispose(ctx.srv, old, LAZY_SERVER_DEL);
    }
    ctx.notify(class::GENERIC, "rename_from", src);
    ctx.notify(class::GENERIC, "rename_to", dst);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
}

/// COPY source destination [DB destination-db] [REPLACE]
pub fn copy(ctx: &mut Ctx, args: &[Bytes]) {
    let src_db = ctx.clients[ctx.me].st.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        let opt = cstr(&args[j]);
        if opt.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if opt.eq_ignore_ascii_case(b"db") && j + 1 < args.len() {
            let Some(d) = db_index_arg(ctx, &args[j + 1]) else {
                return;
            };
            dst_db = d;
            j += 1;
        } else {
            ctx.syntax_error();
            return;
        }
        j += 1;
    }
    if single_cluster_db(ctx.srv) && (src_db != 0 || dst_db != 0) {
        ctx.out.err("Copying to another database is not allowed in cluster mode");
        return;
    }
    let (src, dst) = (&args[1], &args[2]);
    if src_db == dst_db && src == dst {
        ctx.out.err(SAME_OBJECT);
        return;
    }
    let Some(e) = ctx.lookup_read(src) else {
        ctx.out.int(0);
        return;
    };
    let (value, expire_at) = (e.value().to_owned(), e.expire_at());
    let now = ctx.now_ms;
    let clock = ctx.clock();
    let target = &mut ctx.srv.dbs[dst_db];
    if target.contains(dst, now) && !replace {
        ctx.out.int(0);
        return;
    }
    if let Some(old) = target.set(dst, value, expire_at, clock) {
        dispose(ctx.srv, old, LAZY_SERVER_DEL);
    }
    emit_in(ctx, dst_db, class::GENERIC, "copy_to", dst);
    ctx.out.int(1);
}

/// MOVE key db
pub fn move_(ctx: &mut Ctx, args: &[Bytes]) {
    if single_cluster_db(ctx.srv) {
        ctx.out.err("MOVE is not allowed in cluster mode");
        return;
    }
    let Some(dst_db) = db_index_arg(ctx, &args[2]) else {
        return;
    };
    let src_db = ctx.clients[ctx.me].st.db;
    if src_db == dst_db {
        ctx.out.err(SAME_OBJECT);
        return;
    }
    let key = &args[1];
    if ctx.lookup_write(key).is_none() {
        ctx.out.int(0);
        return;
    }
    let now = ctx.now_ms;
    let clock = ctx.clock();
    if ctx.srv.dbs[dst_db].contains(key, now) {
        ctx.out.int(0);
        return;
    }
    match ctx.srv.dbs[src_db].remove(key) {
        Some(e) => {
            let at = e.expire_at();
            ctx.srv.dbs[dst_db].set(key, e.into_value(), at, clock);
            emit_in(ctx, src_db, class::GENERIC, "move_from", key);
            emit_in(ctx, dst_db, class::GENERIC, "move_to", key);
            ctx.out.int(1);
        }
        None => ctx.out.int(0),
    }
}
