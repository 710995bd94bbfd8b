//! GEO commands (Valkey's `geo.c`): a geo set is a sorted set whose scores are 52-bit
//! interleaved geohashes, so GEOADD is ZADD with computed scores and every other sorted-set
//! command works on geo sets. Split by concern: `hash` (the geohash arithmetic, bit-exact with
//! Valkey), this file (GEOADD, GEODIST, GEOHASH, GEOPOS and the shared argument parsing and
//! reply formatting), `search` (GEOSEARCH, GEOSEARCHSTORE and the GEORADIUS family).

mod hash;
mod search;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use super::sort::strtod::string2d;
use super::Handler;
use crate::exec::Ctx;
use crate::keyspace::node::ValueRef;
use crate::keyspace::types::ZSetValue;
use crate::protocol::Reply;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "geoadd" => geoadd,
        "geodist" => geodist,
        "geohash" => geohash,
        "geopos" => geopos,
        "geosearch" => search::geosearch,
        "geosearchstore" => search::geosearchstore,
        "georadius" => search::georadius,
        "georadius_ro" => search::georadius_ro,
        "georadiusbymember" => search::georadiusbymember,
        "georadiusbymember_ro" => search::georadiusbymember_ro,
        _ => return None,
    })
}

/// `strcasecmp(arg, word) == 0`: the argument as a C string (up to a NUL byte).
fn is(arg: &[u8], word: &str) -> bool {
    let c = arg.iter().position(|&b| b == 0).map_or(arg, |n| &arg[..n]);
    c.eq_ignore_ascii_case(word.as_bytes())
}

/// `getDoubleFromObjectOrReply`: `msg` is the error for a non-number (default: Valkey's).
fn double_arg(ctx: &mut Ctx, arg: &[u8], msg: Option<&str>) -> Option<f64> {
    let v = string2d(arg);
    if v.is_none() {
        ctx.out.err(msg.unwrap_or("value is not a valid float"));
    }
    v
}

/// `extractLongLatOrReply`: a longitude and a latitude within the geohash limits.
fn long_lat(ctx: &mut Ctx, lon: &[u8], lat: &[u8]) -> Option<[f64; 2]> {
    let x = double_arg(ctx, lon, None)?;
    let y = double_arg(ctx, lat, None)?;
    if !(hash::LONG_MIN..=hash::LONG_MAX).contains(&x) || !(hash::LAT_MIN..=hash::LAT_MAX).contains(&y) {
        ctx.out.err(&format!("invalid longitude,latitude pair {x:.6},{y:.6}"));
        return None;
    }
    Some([x, y])
}

/// `extractUnitOrReply`: metres per unit.
fn unit(ctx: &mut Ctx, arg: &[u8]) -> Option<f64> {
    let v = if is(arg, "m") {
        1.0
    } else if is(arg, "km") {
        1000.0
    } else if is(arg, "ft") {
        0.3048
    } else if is(arg, "mi") {
        1609.34
    } else {
        ctx.out.err("unsupported unit provided. please use M, KM, FT, MI");
        return None;
    };
    Some(v)
}

/// `addReplyDoubleDistance`: four decimals, as a bulk string in both protocols.
fn reply_distance(out: &mut Reply, d: f64) {
    out.bulk(format!("{d:.4}").as_bytes());
}

/// `addReplyHumanLongDouble` of a double: `%.17Lf` without trailing zeros (a bulk string in
/// RESP2, a double in RESP3). The double converts to `long double` exactly, so formatting the
/// double with 17 decimals prints the same digits.
fn reply_human(out: &mut Reply, v: f64) {
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        let keep = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(keep);
    }
    if s == "-0" {
        s = "0".into();
    }
    if out.resp3 {
        out.raw(b",");
        out.raw(s.as_bytes());
        out.raw(b"\r\n");
    } else {
        out.bulk(s.as_bytes());
    }
}

/// Runs `f` on the sorted set at `key` (`None` if missing) after a read lookup; replies
/// WRONGTYPE and returns `None` for other types.
fn with_zset<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&ZSetValue>) -> R) -> Option<R> {
    match ctx.lookup_read(key) {
        None => Some(f(None)),
        Some(e) => match e.value() {
            ValueRef::ZSet(z) => Some(f(Some(z))),
            _ => {
                ctx.wrong_type();
                None
            }
        },
    }
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [longitude latitude member ...]
pub fn geoadd(ctx: &mut Ctx, args: &[Bytes]) {
    let (mut nx, mut xx) = (false, false);
    let mut first = 2;
    while first < args.len() {
        let a = &args[first];
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if !is(a, "ch") {
            break;
        }
        first += 1;
    }
    if !(args.len() - first).is_multiple_of(3) || (xx && nx) {
        ctx.syntax_error();
        return;
    }
    // As Valkey, run ZADD with the options and a score for each point.
    let mut zargs = Vec::with_capacity(first + (args.len() - first) / 3 * 2);
    zargs.push(Bytes::from_static(b"zadd"));
    zargs.extend_from_slice(&args[1..first]);
    for p in args[first..].chunks(3) {
        let Some([x, y]) = long_lat(ctx, &p[0], &p[1]) else { return };
        let score = hash::score_of(x, y).unwrap_or(0);
        zargs.push(Bytes::from(score.to_string()));
        zargs.push(p[2].clone());
    }
    if let Some(zadd) = super::zset::handler("zadd") {
        zadd(ctx, &zargs);
    }
}

/// GEODIST key member1 member2 [M|KM|FT|MI]
pub fn geodist(ctx: &mut Ctx, args: &[Bytes]) {
    let to_meter = match args.len() {
        5 => match unit(ctx, &args[4]) {
            Some(u) => u,
            None => return,
        },
        n if n > 5 => return ctx.syntax_error(),
        _ => 1.0,
    };
    let Some(found) = with_zset(ctx, &args[1], |z| {
        z.map(|z| {
            let a = z.score(&args[2]).and_then(hash::decode_score);
            let b = z.score(&args[3]).and_then(hash::decode_score);
            a.zip(b)
        })
    }) else {
        return;
    };
    match found.flatten() {
        Some((a, b)) => reply_distance(ctx.out, hash::distance(a[0], a[1], b[0], b[1]) / to_meter),
        None => ctx.out.null(),
    }
}

/// The 11-character standard geohash of a score: decoded, then re-encoded with the standard
/// latitude range ±90 (Valkey's internal range is the Mercator one); the 11th character is
/// always `0` (52 bits make 10.4 characters).
fn standard_geohash(score: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let [x, y] = hash::decode_score(score)?;
    let ranges = (hash::Range { min: -180.0, max: 180.0 }, hash::Range { min: -90.0, max: 90.0 });
    let h = hash::encode(ranges.0, ranges.1, x, y, 26)?;
    let mut buf = [b'0'; 11];
    for (i, c) in buf.iter_mut().enumerate().take(10) {
        *c = ALPHABET[((h.bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    Some(buf)
}

/// GEOHASH key [member ...]
pub fn geohash(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(hashes) = with_zset(ctx, &args[1], |z| {
        args[2..].iter().map(|m| z.and_then(|z| z.score(m)).and_then(standard_geohash)).collect::<Vec<_>>()
    }) else {
        return;
    };
    ctx.out.array(hashes.len());
    for h in hashes {
        match h {
            Some(h) => ctx.out.bulk(&h),
            None => ctx.out.null(),
        }
    }
}

/// GEOPOS key [member ...]
pub fn geopos(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(points) = with_zset(ctx, &args[1], |z| {
        args[2..].iter().map(|m| z.and_then(|z| z.score(m)).and_then(hash::decode_score)).collect::<Vec<_>>()
    }) else {
        return;
    };
    ctx.out.array(points.len());
    for p in points {
        match p {
            Some([x, y]) => {
                ctx.out.array(2);
                reply_human(ctx.out, x);
                reply_human(ctx.out, y);
            }
            None => ctx.out.null_array(),
        }
    }
}
