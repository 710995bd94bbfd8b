//! GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and their _RO forms: Valkey's
//! `georadiusGeneric`, one parser and one search for all six. The search scans the score
//! ranges of the centre box and its neighbours (`hash::areas_by_shape`) in Valkey's order,
//! keeps the points inside the circle or box, optionally sorts them by distance (stable, as
//! glibc's `qsort`), and replies or stores them. Without ASC/DESC the order is the scan
//! order, which is deterministic and the same as Valkey's.

use bytes::Bytes;

use super::hash::{self, Areas, Bits, Shape, ShapeKind};
use super::{double_arg, is, long_lat, reply_distance, reply_human, unit};
use crate::exec::Ctx;
use crate::keyspace::node::ValueRef;
use crate::keyspace::types::zset::{ScoreRange, NIL};
use crate::keyspace::types::ZSetValue;

/// Which command runs (Valkey's `RADIUS_*` / `GEOSEARCH*` flags).
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Radius,
    RadiusRo,
    ByMember,
    ByMemberRo,
    Search,
    SearchStore,
}

impl Variant {
    fn no_store(self) -> bool {
        matches!(self, Variant::RadiusRo | Variant::ByMemberRo)
    }
    fn search(self) -> bool {
        matches!(self, Variant::Search | Variant::SearchStore)
    }
}

/// GEORADIUS key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH]
/// [COUNT count [ANY]] [ASC|DESC] [STORE key|STOREDIST key]
pub fn georadius(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 1, Variant::Radius);
}

pub fn georadius_ro(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 1, Variant::RadiusRo);
}

/// GEORADIUSBYMEMBER key member radius M|KM|FT|MI [options as GEORADIUS]
pub fn georadiusbymember(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 1, Variant::ByMember);
}

pub fn georadiusbymember_ro(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 1, Variant::ByMemberRo);
}

/// GEOSEARCH key FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius unit|BYBOX
/// width height unit [ASC|DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]
pub fn geosearch(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 1, Variant::Search);
}

/// GEOSEARCHSTORE destination source [GEOSEARCH's area options] [ASC|DESC] [COUNT count [ANY]]
/// [STOREDIST]
pub fn geosearchstore(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 2, Variant::SearchStore);
}

#[derive(Clone, Copy, PartialEq)]
enum Order {
    None,
    Asc,
    Desc,
}

/// One match (Valkey's `geoPoint`).
struct Point {
    member: Box<[u8]>,
    xy: [f64; 2],
    dist: f64,
    score: f64,
}

/// The sorted set at `key`, without side effects (after the read lookup).
fn zset_at<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<&'a ZSetValue> {
    match ctx.db().peek(key) {
        Some(ValueRef::ZSet(z)) => Some(z),
        _ => None,
    }
}

/// `longLatFromMember`: the position of a member, replying Valkey's error if it has none.
fn member_xy(ctx: &mut Ctx, key: &[u8], member: &[u8]) -> Option<[f64; 2]> {
    let xy = zset_at(ctx, key).and_then(|z| z.score(member)).and_then(hash::decode_score);
    if xy.is_none() {
        ctx.out.err("could not decode requested zset member");
    }
    xy
}

/// `extractDistanceOrReply`: a radius and its unit.
fn radius(ctx: &mut Ctx, num: &[u8], u: &[u8]) -> Option<(f64, f64)> {
    let r = double_arg(ctx, num, Some("need numeric radius"))?;
    if r < 0.0 {
        ctx.out.err("radius cannot be negative");
        return None;
    }
    Some((r, unit(ctx, u)?))
}

/// `extractBoxOrReply`: width, height and their unit.
fn bybox(ctx: &mut Ctx, w: &[u8], h: &[u8], u: &[u8]) -> Option<(f64, f64, f64)> {
    let w = double_arg(ctx, w, Some("need numeric width"))?;
    let h = double_arg(ctx, h, Some("need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        ctx.out.err("height or width cannot be negative");
        return None;
    }
    Some((w, h, unit(ctx, u)?))
}

fn generic(ctx: &mut Ctx, args: &[Bytes], src: usize, v: Variant) {
    let key = &args[src];
    let exists = match ctx.lookup_read(key) {
        None => false,
        Some(e) if matches!(e.value(), ValueRef::ZSet(_)) => true,
        Some(_) => return ctx.wrong_type(),
    };
    let mut shape = Shape { xy: [0.0, 0.0], conversion: 0.0, kind: ShapeKind::Radius(0.0) };
    let mut store: Option<Bytes> = None;
    let base = match v {
        Variant::Radius | Variant::RadiusRo => {
            let Some(xy) = long_lat(ctx, &args[2], &args[3]) else { return };
            let Some((r, conv)) = radius(ctx, &args[4], &args[5]) else { return };
            shape = Shape { xy, conversion: conv, kind: ShapeKind::Radius(r) };
            6
        }
        // Without a source key the arguments are still parsed, to pick the reply.
        Variant::ByMember | Variant::ByMemberRo if !exists => 5,
        Variant::ByMember | Variant::ByMemberRo => {
            let Some(xy) = member_xy(ctx, key, &args[2]) else { return };
            let Some((r, conv)) = radius(ctx, &args[3], &args[4]) else { return };
            shape = Shape { xy, conversion: conv, kind: ShapeKind::Radius(r) };
            5
        }
        Variant::Search => 2,
        Variant::SearchStore => {
            store = Some(args[1].clone());
            3
        }
    };
    let (mut withdist, mut withhash, mut withcoord) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox_) = (false, false, false, false);
    let mut order = Order::None;
    let mut any = false;
    let mut storedist = false;
    let mut count: i64 = 0;
    let remaining = args.len().saturating_sub(base);
    let mut i = 0;
    while i < remaining {
        let a = &args[base + i];
        let arg = |k: usize| &args[base + i + k];
        if is(a, "withdist") {
            withdist = true;
        } else if is(a, "withhash") {
            withhash = true;
        } else if is(a, "withcoord") {
            withcoord = true;
        } else if is(a, "any") {
            any = true;
        } else if is(a, "asc") {
            order = Order::Asc;
        } else if is(a, "desc") {
            order = Order::Desc;
        } else if is(a, "count") && i + 1 < remaining {
            let Some(n) = ctx.arg_i64(arg(1)) else { return };
            if n <= 0 {
                return ctx.out.err("COUNT must be > 0");
            }
            count = n;
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && i + 1 < remaining && !v.no_store() && !v.search()
        {
            store = Some(arg(1).clone());
            storedist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && v == Variant::SearchStore {
            storedist = true;
        } else if is(a, "frommember") && i + 1 < remaining && v.search() && !fromloc {
            if exists {
                let Some(xy) = member_xy(ctx, key, arg(1)) else { return };
                shape.xy = xy;
            }
            frommember = true;
            i += 1;
        } else if is(a, "fromlonlat") && i + 2 < remaining && v.search() && !frommember {
            let Some(xy) = long_lat(ctx, arg(1), arg(2)) else { return };
            shape.xy = xy;
            fromloc = true;
            i += 2;
        } else if is(a, "byradius") && i + 2 < remaining && v.search() && !bybox_ {
            let Some((r, conv)) = radius(ctx, arg(1), arg(2)) else { return };
            shape.conversion = conv;
            shape.kind = ShapeKind::Radius(r);
            byradius = true;
            i += 2;
        } else if is(a, "bybox") && i + 3 < remaining && v.search() && !byradius {
            let Some((w, h, conv)) = bybox(ctx, arg(1), arg(2), arg(3)) else { return };
            shape.conversion = conv;
            shape.kind = ShapeKind::Box { width: w, height: h };
            bybox_ = true;
            i += 3;
        } else {
            return ctx.syntax_error();
        }
        i += 1;
    }
    if store.is_some() && (withdist || withhash || withcoord) {
        let what = if v == Variant::SearchStore { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return ctx
            .out
            .err(&format!("{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"));
    }
    let name = || {
        let c = args[0].iter().position(|&b| b == 0).map_or(&args[0][..], |n| &args[0][..n]);
        String::from_utf8_lossy(c).into_owned()
    };
    if v.search() && !(frommember || fromloc) {
        let msg = format!("exactly one of FROMMEMBER or FROMLONLAT can be specified for {}", name());
        return ctx.out.err(&msg);
    }
    if v.search() && !(byradius || bybox_) {
        let msg = format!("exactly one of BYRADIUS and BYBOX can be specified for {}", name());
        return ctx.out.err(&msg);
    }
    if any && count == 0 {
        return ctx.out.err("the ANY argument requires COUNT argument");
    }
    if !exists {
        match store {
            Some(dst) => super::super::zset::store(ctx, &dst, ZSetValue::default(), ""),
            None => ctx.out.array(0),
        }
        return;
    }
    // COUNT returns the closest matches unless ANY says any matches will do.
    if count != 0 && order == Order::None && !any {
        order = Order::Asc;
    }
    let areas = hash::areas_by_shape(&shape);
    let limit = if any { count as usize } else { 0 };
    let mut points = match zset_at(ctx, key) {
        Some(z) => members_of_all_neighbors(z, &areas, &shape, limit),
        None => Vec::new(),
    };
    match order {
        Order::Asc => points.sort_by(|a, b| a.dist.partial_cmp(&b.dist).unwrap_or(std::cmp::Ordering::Equal)),
        Order::Desc => {
            points.sort_by(|a, b| b.dist.partial_cmp(&a.dist).unwrap_or(std::cmp::Ordering::Equal))
        }
        Order::None => {}
    }
    let returned = if count == 0 || (points.len() as i64) < count { points.len() } else { count as usize };
    points.truncate(returned);
    match store {
        None => {
            let options = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
            let out = &mut *ctx.out;
            out.array(points.len());
            for p in &points {
                if options > 0 {
                    out.array(options + 1);
                }
                out.bulk(&p.member);
                if withdist {
                    reply_distance(out, p.dist / shape.conversion);
                }
                if withhash {
                    out.int(p.score as i64);
                }
                if withcoord {
                    out.array(2);
                    reply_human(out, p.xy[0]);
                    reply_human(out, p.xy[1]);
                }
            }
        }
        Some(dst) => {
            let mut z = ZSetValue::default();
            for p in &points {
                z.insert_scored(&p.member, if storedist { p.dist / shape.conversion } else { p.score });
            }
            let event = if v.search() { "geosearchstore" } else { "georadiusstore" };
            super::super::zset::store(ctx, &dst, z, event);
        }
    }
}

/// Valkey's `membersOfAllNeighbors`: the centre box, then its neighbours; a box equal to the
/// last one scanned is skipped (as in Valkey, the centre is never compared with), and the
/// scan stops once `limit` matches (ANY) are found.
fn members_of_all_neighbors(z: &ZSetValue, areas: &Areas, shape: &Shape, limit: usize) -> Vec<Point> {
    let mut boxes = [Bits::default(); 9];
    boxes[0] = areas.hash;
    boxes[1..].copy_from_slice(&areas.neighbors);
    let mut out = Vec::new();
    let mut last = 0;
    for i in 0..boxes.len() {
        if boxes[i].is_zero() {
            continue;
        }
        if last != 0 && boxes[i] == boxes[last] {
            continue;
        }
        if !out.is_empty() && limit != 0 && out.len() >= limit {
            break;
        }
        members_of_box(z, boxes[i], shape, &mut out, limit);
        last = i;
    }
    out
}

/// The members whose scores fall in a box's range `[min, max)`, kept if inside the shape.
fn members_of_box(z: &ZSetValue, b: Bits, shape: &Shape, out: &mut Vec<Point>, limit: usize) {
    let min = hash::align52(b) as f64;
    let max = hash::align52(Bits { bits: b.bits.wrapping_add(1), step: b.step }) as f64;
    let range = ScoreRange { min, max, minex: false, maxex: true };
    let first = z.first_in_score(&range);
    if first == NIL {
        return;
    }
    for (m, score) in z.iter_from(first) {
        if score >= max {
            break;
        }
        if let Some(p) = within(shape, m, score) {
            out.push(p);
        }
        if !out.is_empty() && limit != 0 && out.len() >= limit {
            break;
        }
    }
}

/// Valkey's `geoAppendIfWithinShape`.
fn within(shape: &Shape, member: &[u8], score: f64) -> Option<Point> {
    let xy = hash::decode_score(score)?;
    let dist = match shape.kind {
        ShapeKind::Radius(r) => {
            let d = hash::distance(shape.xy[0], shape.xy[1], xy[0], xy[1]);
            if d > r * shape.conversion {
                return None;
            }
            d
        }
        ShapeKind::Box { width, height } => hash::distance_if_in_rectangle(
            width * shape.conversion,
            height * shape.conversion,
            shape.xy[0],
            shape.xy[1],
            xy[0],
            xy[1],
        )?,
    };
    Some(Point { member: member.into(), xy, dist, score })
}
