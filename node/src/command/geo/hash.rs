//! The geohash arithmetic of Valkey's `geohash.c` and `geohash_helper.c`, ported operation
//! for operation so scores, decoded coordinates, distances and the set of candidate boxes are
//! bit-identical: a point is a 52-bit score (26 bits of longitude and latitude interleaved,
//! latitude limited to the Web Mercator range ±85.05112878); a radius or box search covers
//! its area with the box containing the centre plus its 8 neighbours, at a precision (step)
//! estimated from the radius and dropped by one when a neighbour would not reach the area's
//! edge. Distances are haversine on a sphere of radius 6372797.560856 m.

/// Valkey's `GEO_STEP_MAX`: 26 bits per coordinate, 52 in all.
pub const STEP_MAX: u8 = 26;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;

const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(a: f64) -> f64 {
    a * D_R
}

fn rad_deg(a: f64) -> f64 {
    a / D_R
}

/// Interleaved bits at a precision of `step` bits per coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bits {
    pub bits: u64,
    pub step: u8,
}

impl Bits {
    /// Valkey's `HASHISZERO`: a neighbour that was excluded from the search.
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// The area a hash covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

pub const WGS84_LONG: Range = Range { min: LONG_MIN, max: LONG_MAX };
pub const WGS84_LAT: Range = Range { min: LAT_MIN, max: LAT_MAX };

/// Bits of `x` to even positions and bits of `y` to odd positions.
fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] =
        [0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (u64::from(xlo), u64::from(ylo));
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

/// The inverse: even bits to the low half, odd bits to the high half.
fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (interleaved, interleaved >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// `geohashEncode`: `None` outside the valid ranges (or a step out of 1..=32).
pub fn encode(long_range: Range, lat_range: Range, longitude: f64, latitude: f64, step: u8) -> Option<Bits> {
    if step > 32 || step == 0 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    let scale = (1u64 << step) as f64;
    lat_offset *= scale;
    long_offset *= scale;
    Some(Bits { bits: interleave64(lat_offset as u32, long_offset as u32), step })
}

/// `geohashEncodeWGS84` at full precision.
pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<Bits> {
    encode(WGS84_LONG, WGS84_LAT, longitude, latitude, step)
}

/// `geohashDecode`: the area a hash covers (`None` for a zero hash).
pub fn decode(long_range: Range, lat_range: Range, hash: Bits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    // As in C, `ilato + 1` is 32-bit arithmetic.
    Some(Area {
        latitude: Range {
            min: lat_range.min + (f64::from(ilato) / div) * lat_scale,
            max: lat_range.min + (f64::from(ilato.wrapping_add(1)) / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (f64::from(ilono) / div) * long_scale,
            max: long_range.min + (f64::from(ilono.wrapping_add(1)) / div) * long_scale,
        },
    })
}

/// `geohashDecodeAreaToLongLat`: the area's centre, clamped to the valid ranges.
pub fn area_center(area: &Area) -> [f64; 2] {
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    [lon, lat]
}

/// C's `(uint64_t)` of a double as x86-64 compilers emit it (any score can be asked for,
/// not only geo scores): truncation, with out-of-range values mapped as `cvttsd2si` does.
fn c_u64(x: f64) -> u64 {
    const TWO63: f64 = 9223372036854775808.0;
    const INDEFINITE: u64 = 1 << 63;
    let cvt = |v: f64| if v > -TWO63 - 1.0 && v < TWO63 { v as i64 as u64 } else { INDEFINITE };
    // NaN takes the first branch, as `comisd` reports it unordered.
    if x < TWO63 || x.is_nan() {
        cvt(x)
    } else {
        cvt(x - TWO63) ^ INDEFINITE
    }
}

/// Valkey's `decodeGeohash`: the coordinates a sorted-set score stands for.
pub fn decode_score(score: f64) -> Option<[f64; 2]> {
    let hash = Bits { bits: c_u64(score), step: STEP_MAX };
    decode(WGS84_LONG, WGS84_LAT, hash).map(|a| area_center(&a))
}

/// The score of a point (`geohashAlign52Bits` of its full-precision hash).
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(align52)
}

/// `geohashAlign52Bits`.
pub fn align52(hash: Bits) -> u64 {
    hash.bits << (52 - u32::from(hash.step) * 2)
}

fn move_x(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let mut x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let y = hash.bits & 0x5555555555555555;
    let zz = 0x5555555555555555u64 >> shift;
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaaaaaaaaaaaaaau64 >> shift;
    hash.bits = x | y;
}

fn move_y(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = hash.bits & 0x5555555555555555;
    let zz = 0xaaaaaaaaaaaaaaaau64 >> shift;
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555555555555555u64 >> shift;
    hash.bits = x | y;
}

/// The 8 neighbours, in Valkey's search order after the centre: north, south, east, west,
/// north-east, north-west, south-east, south-west.
pub fn neighbors(hash: Bits) -> [Bits; 8] {
    let at = |dx: i8, dy: i8| {
        let mut h = hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    [at(0, 1), at(0, -1), at(1, 0), at(-1, 0), at(1, 1), at(-1, 1), at(1, -1), at(-1, -1)]
}

/// `geohashEstimateStepsByRadius`.
pub fn estimate_steps_by_radius(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// A search area (Valkey's `GeoShape`): a circle or an axis-aligned box around `xy`, sizes
/// in the request's unit, `conversion` metres per unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub xy: [f64; 2],
    pub conversion: f64,
    pub kind: ShapeKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShapeKind {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// `geohashBoundingBox`: min longitude, min latitude, max longitude, max latitude.
pub fn bounding_box(shape: &Shape) -> [f64; 4] {
    let [longitude, latitude] = shape.xy;
    let (height, width) = match shape.kind {
        ShapeKind::Radius(r) => (shape.conversion * r, shape.conversion * r),
        ShapeKind::Box { width, height } => (shape.conversion * height / 2.0, shape.conversion * width / 2.0),
    };
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
    let long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
    let southern = latitude < 0.0;
    let d = if southern { long_delta_bottom } else { long_delta_top };
    [longitude - d, latitude - lat_delta, longitude + d, latitude + lat_delta]
}

/// The boxes to scan (Valkey's `GeoHashRadius`): the centre box and its neighbours, those
/// that cannot hold a match zeroed.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub hash: Bits,
    pub neighbors: [Bits; 8],
}

/// `geohashCalculateAreasByShapeWGS84`.
pub fn areas_by_shape(shape: &Shape) -> Areas {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(shape);
    let [longitude, latitude] = shape.xy;
    let radius_meters = match shape.kind {
        ShapeKind::Radius(r) => r,
        ShapeKind::Box { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;
    let mut steps = estimate_steps_by_radius(radius_meters, latitude);
    let at = |steps: u8| {
        let hash = encode_wgs84(longitude, latitude, steps).unwrap_or_default();
        let hash = Bits { step: steps, ..hash };
        (hash, neighbors(hash), decode(WGS84_LONG, WGS84_LAT, hash))
    };
    let (mut hash, mut nb, mut area) = at(steps);
    // [north, south, east, west] are nb[0..4].
    let dec = |h: Bits| decode(WGS84_LONG, WGS84_LAT, h);
    let mut decrease = false;
    if let (Some(n), Some(s), Some(e), Some(w)) = (dec(nb[0]), dec(nb[1]), dec(nb[2]), dec(nb[3])) {
        decrease = n.latitude.max < max_lat
            || s.latitude.min > min_lat
            || e.longitude.max < max_lon
            || w.longitude.min > min_lon;
    }
    if steps > 1 && decrease {
        steps -= 1;
        (hash, nb, area) = at(steps);
    }
    if steps >= 2 {
        if let Some(area) = area {
            const N: usize = 0;
            const S: usize = 1;
            const E: usize = 2;
            const W: usize = 3;
            const NE: usize = 4;
            const NW: usize = 5;
            const SE: usize = 6;
            const SW: usize = 7;
            let zero =
                |nb: &mut [Bits; 8], idx: [usize; 3]| idx.iter().for_each(|&i| nb[i] = Bits::default());
            if area.latitude.min < min_lat {
                zero(&mut nb, [S, SW, SE]);
            }
            if area.latitude.max > max_lat {
                zero(&mut nb, [N, NE, NW]);
            }
            if area.longitude.min < min_lon {
                zero(&mut nb, [W, SW, NW]);
            }
            if area.longitude.max > max_lon {
                zero(&mut nb, [E, SE, NE]);
            }
        }
    }
    Areas { hash, neighbors: nb }
}

/// `geohashGetLatDistance`: the distance along a meridian.
fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// `geohashGetDistance`: haversine great-circle distance in metres.
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// `geohashGetDistanceIfInRectangle`: the distance from the box centre `(x1, y1)` to
/// `(x2, y2)` if the point is inside the `width_m` x `height_m` box.
pub fn distance_if_in_rectangle(
    width_m: f64,
    height_m: f64,
    x1: f64,
    y1: f64,
    x2: f64,
    y2: f64,
) -> Option<f64> {
    if lat_distance(y2, y1) > height_m / 2.0 {
        return None;
    }
    if distance(x2, y2, x1, y2) > width_m / 2.0 {
        return None;
    }
    Some(distance(x1, y1, x2, y2))
}
