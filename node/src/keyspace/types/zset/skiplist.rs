//! The order-statistic index of a sorted set: Valkey's skiplist with spans (`zskiplist`),
//! kept in arenas addressed by `u32` indices instead of pointers, so it needs no `unsafe` and
//! clones with two `Vec` copies. Spans make rank lookups and "element at rank" O(log n);
//! backward links give reverse iteration. Order is (score, member bytes), as Valkey's.
//!
//! Layout for speed: every node's levels sit in one shared array (`lv`), and each link carries
//! the score and level offset of the node it points to, so a descent reads one link per step
//! (one cache miss, like Valkey's inline levels) and touches a node's member only on a score
//! tie.
//!
//! Invariants: the chain at level 0 from the header visits every live node in order; the span
//! of a link counts the level-0 steps it skips; a link's `next_score`/`next_lv` mirror its
//! target; `free` and `free_lv` list dead nodes and dead level blocks (by height).

/// Maximum node level (Valkey's `ZSKIPLIST_MAXLEVEL`).
const MAX_LEVEL: usize = 32;
/// Probability of one more level, as Valkey (`ZSKIPLIST_P`), in 1/4 steps.
const LEVEL_ODDS: u32 = 4;
/// The null link.
pub const NIL: u32 = u32::MAX;
/// The header node's index (its levels start at offset 0).
const HEAD: u32 = 0;

#[derive(Debug, Clone, Copy)]
struct Level {
    next: u32,
    /// Offset of `next`'s levels in `lv`.
    next_lv: u32,
    span: u32,
    /// Score of `next`.
    next_score: f64,
}

const EMPTY: Level = Level { next: NIL, next_lv: 0, span: 0, next_score: 0.0 };

#[derive(Debug, Clone)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    back: u32,
    /// Offset of this node's levels in `lv`, and how many.
    lv: u32,
    height: u8,
}

/// A score interval (`zrangespec`).
#[derive(Debug, Clone, Copy)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    pub fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }

    pub fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }

    /// False when no score can be inside.
    pub fn is_valid(&self) -> bool {
        !(self.min > self.max || (self.min == self.max && (self.minex || self.maxex)))
    }
}

/// One end of a lexicographic interval (`zlexrangespec`).
#[derive(Debug, Clone, PartialEq)]
pub enum LexBound {
    /// `-`
    Min,
    /// `+`
    Max,
    Incl(Box<[u8]>),
    Excl(Box<[u8]>),
}

/// A lexicographic interval.
#[derive(Debug, Clone)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(b) => m >= &b[..],
            LexBound::Excl(b) => m > &b[..],
        }
    }

    pub fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::Max => true,
            LexBound::Min => false,
            LexBound::Incl(b) => m <= &b[..],
            LexBound::Excl(b) => m < &b[..],
        }
    }

    /// False when no member can be inside (Valkey's `sdscmplex` check).
    pub fn is_valid(&self) -> bool {
        use std::cmp::Ordering;
        fn key(b: &LexBound) -> (u8, Option<&[u8]>) {
            match b {
                LexBound::Min => (0, None),
                LexBound::Max => (2, None),
                LexBound::Incl(x) | LexBound::Excl(x) => (1, Some(&x[..])),
            }
        }
        let ord = key(&self.min).cmp(&key(&self.max));
        // `-` and `+` count as exclusive, as in Valkey's `zslParseLexItem`.
        let ex = !matches!(self.min, LexBound::Incl(_)) || !matches!(self.max, LexBound::Incl(_));
        !(ord == Ordering::Greater || (ord == Ordering::Equal && ex))
    }
}

/// The skiplist.
#[derive(Debug, Clone)]
pub struct SkipList {
    nodes: Vec<Node>,
    lv: Vec<Level>,
    free: Vec<u32>,
    free_lv: Vec<Vec<u32>>,
    tail: u32,
    len: usize,
    level: usize,
    rng: u64,
    /// Bytes of all members, so `heap_size` is O(1) (eviction may ask after every write).
    member_bytes: usize,
}

impl Default for SkipList {
    fn default() -> Self {
        SkipList {
            nodes: vec![Node {
                member: Box::default(),
                score: 0.0,
                back: NIL,
                lv: 0,
                height: MAX_LEVEL as u8,
            }],
            lv: vec![EMPTY; MAX_LEVEL],
            free: Vec::new(),
            free_lv: vec![Vec::new(); MAX_LEVEL],
            tail: NIL,
            len: 0,
            level: 1,
            rng: 0x9e37_79b9_7f4a_7c15,
            member_bytes: 0,
        }
    }
}

/// Cursor of a descent: a node and the offset of its levels.
#[derive(Clone, Copy)]
struct At {
    x: u32,
    l: u32,
}

const AT_HEAD: At = At { x: HEAD, l: 0 };

impl SkipList {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn link(&self, at: At, i: usize) -> Level {
        self.lv[at.l as usize + i]
    }

    fn link_mut(&mut self, at: At, i: usize) -> &mut Level {
        &mut self.lv[at.l as usize + i]
    }

    fn member(&self, x: u32) -> &[u8] {
        &self.nodes[x as usize].member
    }

    /// Member and score of a live node.
    pub fn get(&self, x: u32) -> (&[u8], f64) {
        let n = &self.nodes[x as usize];
        (&n.member, n.score)
    }

    /// The first node, or NIL.
    pub fn first(&self) -> u32 {
        self.lv[0].next
    }

    pub fn last(&self) -> u32 {
        self.tail
    }

    /// The node after `x`, or NIL.
    pub fn succ(&self, x: u32) -> u32 {
        self.lv[self.nodes[x as usize].lv as usize].next
    }

    /// The node before `x`, or NIL.
    pub fn pred(&self, x: u32) -> u32 {
        self.nodes[x as usize].back
    }

    fn random_level(&mut self) -> usize {
        // xorshift64*: cheap, deterministic per set, good enough for level choice.
        let mut level = 1;
        loop {
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
            if level < MAX_LEVEL && (r as u32).is_multiple_of(LEVEL_ODDS) {
                level += 1;
            } else {
                return level;
            }
        }
    }

    /// True if the target of link `l` sorts before (score, member).
    fn link_before(&self, l: &Level, score: f64, member: &[u8]) -> bool {
        l.next_score < score || (l.next_score == score && self.member(l.next) < member)
    }

    /// Descends to the last node before (score, member) on every level.
    fn path(&self, score: f64, member: &[u8], rank: Option<&mut [u32; MAX_LEVEL]>) -> [At; MAX_LEVEL] {
        let mut update = [AT_HEAD; MAX_LEVEL];
        let mut ranks = [0u32; MAX_LEVEL];
        let mut at = AT_HEAD;
        for i in (0..self.level).rev() {
            ranks[i] = if i == self.level - 1 { 0 } else { ranks[i + 1] };
            loop {
                let l = self.link(at, i);
                if l.next == NIL || !self.link_before(&l, score, member) {
                    break;
                }
                ranks[i] += l.span;
                at = At { x: l.next, l: l.next_lv };
            }
            update[i] = at;
        }
        if let Some(r) = rank {
            *r = ranks;
        }
        update
    }

    fn alloc_levels(&mut self, height: usize) -> u32 {
        match self.free_lv[height - 1].pop() {
            Some(off) => {
                self.lv[off as usize..off as usize + height].fill(EMPTY);
                off
            }
            None => {
                let off = self.lv.len() as u32;
                self.lv.resize(self.lv.len() + height, EMPTY);
                off
            }
        }
    }

    /// Inserts a member that is not present yet.
    pub fn insert(&mut self, score: f64, member: Box<[u8]>) {
        let mut rank = [0u32; MAX_LEVEL];
        let mut update = self.path(score, &member, Some(&mut rank));
        let level = self.random_level();
        if level > self.level {
            for i in self.level..level {
                rank[i] = 0;
                update[i] = AT_HEAD;
                self.lv[i].span = self.len as u32;
            }
            self.level = level;
        }
        let nl = self.alloc_levels(level);
        self.member_bytes += member.len();
        let node = Node {
            member,
            score,
            back: if update[0].x == HEAD { NIL } else { update[0].x },
            lv: nl,
            height: level as u8,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let me = At { x: idx, l: nl };
        for (i, &u) in update.iter().enumerate().take(level) {
            let old = self.link(u, i);
            let gap = rank[0] - rank[i];
            *self.link_mut(me, i) = Level { span: old.span - gap, ..old };
            *self.link_mut(u, i) = Level { next: idx, next_lv: nl, span: gap + 1, next_score: score };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(level) {
            self.link_mut(u, i).span += 1;
        }
        match self.link(me, 0).next {
            NIL => self.tail = idx,
            n => self.nodes[n as usize].back = idx,
        }
        self.len += 1;
    }

    /// Removes (score, member); returns the stored member if it was there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> Option<Box<[u8]>> {
        let update = self.path(score, member, None);
        let x = self.link(update[0], 0).next;
        if x == NIL {
            return None;
        }
        let n = &self.nodes[x as usize];
        if n.score != score || &n.member[..] != member {
            return None;
        }
        Some(self.unlink(x, &update))
    }

    fn unlink(&mut self, x: u32, update: &[At; MAX_LEVEL]) -> Box<[u8]> {
        let (xl, height) = (self.nodes[x as usize].lv, self.nodes[x as usize].height as usize);
        let me = At { x, l: xl };
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let ul = self.link(u, i);
            if ul.next == x {
                let xlink = self.link(me, i);
                *self.link_mut(u, i) = Level { span: ul.span + xlink.span - 1, ..xlink };
            } else {
                self.link_mut(u, i).span -= 1;
            }
        }
        let back = self.nodes[x as usize].back;
        match self.link(me, 0).next {
            NIL => self.tail = back,
            n => self.nodes[n as usize].back = back,
        }
        while self.level > 1 && self.lv[self.level - 1].next == NIL {
            self.level -= 1;
        }
        self.len -= 1;
        self.free_lv[height - 1].push(xl);
        self.free.push(x);
        let m = std::mem::take(&mut self.nodes[x as usize].member);
        self.member_bytes -= m.len();
        m
    }

    /// 1-based rank of (score, member), 0 if absent.
    pub fn rank(&self, score: f64, member: &[u8]) -> usize {
        let mut rank = 0usize;
        let mut at = AT_HEAD;
        let mut at_score = f64::NAN;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(at, i);
                if l.next == NIL
                    || !(l.next_score < score || (l.next_score == score && self.member(l.next) <= member))
                {
                    break;
                }
                rank += l.span as usize;
                at = At { x: l.next, l: l.next_lv };
                at_score = l.next_score;
            }
            // Only a node with the same score can be the member: compare bytes only then.
            if at.x != HEAD && at_score == score && self.member(at.x) == member {
                return rank;
            }
        }
        0
    }

    /// The node at 1-based `rank`, or NIL.
    pub fn at_rank(&self, rank: usize) -> u32 {
        if rank == 0 || rank > self.len {
            return NIL;
        }
        let mut traversed = 0usize;
        let mut at = AT_HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(at, i);
                if l.next == NIL || traversed + l.span as usize > rank {
                    break;
                }
                traversed += l.span as usize;
                at = At { x: l.next, l: l.next_lv };
            }
            if traversed == rank {
                return at.x;
            }
        }
        NIL
    }

    /// Descends while `go(link)` holds; returns the last node reached.
    fn descend(&self, go: impl Fn(&Level) -> bool) -> u32 {
        let mut at = AT_HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(at, i);
                if l.next == NIL || !go(&l) {
                    break;
                }
                at = At { x: l.next, l: l.next_lv };
            }
        }
        at.x
    }

    /// The first node with a score in range, or NIL.
    pub fn first_in_score(&self, r: &ScoreRange) -> u32 {
        if !r.is_valid() || self.is_empty() {
            return NIL;
        }
        let x = self.succ(self.descend(|l| !r.gte_min(l.next_score)));
        if x == NIL || !r.lte_max(self.nodes[x as usize].score) {
            return NIL;
        }
        x
    }

    /// The last node with a score in range, or NIL.
    pub fn last_in_score(&self, r: &ScoreRange) -> u32 {
        if !r.is_valid() || self.is_empty() {
            return NIL;
        }
        let x = self.descend(|l| r.lte_max(l.next_score));
        if x == HEAD || !r.gte_min(self.nodes[x as usize].score) {
            return NIL;
        }
        x
    }

    /// The first node with a member in range, or NIL.
    pub fn first_in_lex(&self, r: &LexRange) -> u32 {
        if !r.is_valid() || self.is_empty() {
            return NIL;
        }
        let x = self.succ(self.descend(|l| !r.gte_min(self.member(l.next))));
        if x == NIL || !r.lte_max(self.member(x)) {
            return NIL;
        }
        x
    }

    /// The last node with a member in range, or NIL.
    pub fn last_in_lex(&self, r: &LexRange) -> u32 {
        if !r.is_valid() || self.is_empty() {
            return NIL;
        }
        let x = self.descend(|l| r.lte_max(self.member(l.next)));
        if x == HEAD || !r.gte_min(self.member(x)) {
            return NIL;
        }
        x
    }

    /// 1-based rank of a live node.
    pub fn rank_of(&self, x: u32) -> usize {
        let n = &self.nodes[x as usize];
        self.rank(n.score, &n.member)
    }

    /// Approximate heap bytes: nodes, levels and members. O(1).
    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.lv.capacity() * std::mem::size_of::<Level>()
            + self.member_bytes
            + self.free.capacity() * 4
    }

    /// Bytes of all members.
    pub fn member_bytes(&self) -> usize {
        self.member_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(s: &SkipList) -> Vec<(Vec<u8>, f64)> {
        let mut out = Vec::new();
        let mut x = s.first();
        while x != NIL {
            let (m, sc) = s.get(x);
            out.push((m.to_vec(), sc));
            x = s.succ(x);
        }
        out
    }

    #[test]
    fn ranks_agree_with_a_sorted_vector_through_inserts_and_removes() {
        let mut s = SkipList::default();
        let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
        let mut seed = 7u64;
        for step in 0..3000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = (seed >> 33) % 500;
            let score = (v % 37) as f64;
            let member = format!("m{v}").into_bytes();
            if let Some(i) = model.iter().position(|(_, m)| *m == member) {
                let (sc, _) = model.remove(i);
                assert!(s.remove(sc, &member).is_some(), "step {step}");
            } else {
                s.insert(score, member.clone().into());
                model.push((score, member));
                model.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            }
            assert_eq!(s.len(), model.len());
        }
        let got = collect(&s);
        let want: Vec<_> = model.iter().map(|(sc, m)| (m.clone(), *sc)).collect();
        assert_eq!(got, want);
        for (i, (sc, m)) in model.iter().enumerate() {
            assert_eq!(s.rank(*sc, m), i + 1);
            assert_eq!(s.get(s.at_rank(i + 1)).0, &m[..]);
        }
        assert_eq!(s.at_rank(model.len() + 1), NIL);
        // Backward links mirror the forward chain.
        let mut back = Vec::new();
        let mut x = s.last();
        while x != NIL {
            back.push(s.get(x).0.to_vec());
            x = s.pred(x);
        }
        back.reverse();
        assert_eq!(back, want.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn score_and_lex_ranges_find_their_ends() {
        let mut s = SkipList::default();
        for (i, m) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            s.insert(i as f64, m.as_bytes().into());
        }
        let r = ScoreRange { min: 1.0, max: 3.0, minex: true, maxex: false };
        assert_eq!(s.get(s.first_in_score(&r)).0, b"c");
        assert_eq!(s.get(s.last_in_score(&r)).0, b"d");
        let r = ScoreRange { min: 10.0, max: 20.0, minex: false, maxex: false };
        assert_eq!(s.first_in_score(&r), NIL);
        assert_eq!(s.last_in_score(&r), NIL);
        let mut z = SkipList::default();
        for m in ["a", "b", "c", "d"] {
            z.insert(0.0, m.as_bytes().into());
        }
        let r = LexRange { min: LexBound::Excl(b"a"[..].into()), max: LexBound::Incl(b"c"[..].into()) };
        assert_eq!(z.get(z.first_in_lex(&r)).0, b"b");
        assert_eq!(z.get(z.last_in_lex(&r)).0, b"c");
        let r = LexRange { min: LexBound::Max, max: LexBound::Min };
        assert_eq!(z.first_in_lex(&r), NIL);
    }
}
