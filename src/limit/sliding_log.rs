//! Sliding window log: the exact algorithm. One log of admitted units,
//! shared by every tier, pruned of entries older than the longest window.
//!
//! Tier `i` counts the units with `ts > now - window_i` and admits a
//! request of `cost` when that count plus `cost` is at most `limit_i`, so
//! no window of length `window_i` ever holds more than `limit_i` units.
//!
//! # Stored form
//! Fixed-width decimal records, so the Lua twin (`sliding_log.lua`) reads
//! any record in place and counts a window with a binary search instead of
//! parsing the whole log:
//!
//! ```text
//! sl1:<blocked_until:16><base:16>{<ts:16><cum:16>}*
//! ```
//!
//! Every field is 16 zero-padded digits. Records are one per distinct
//! admitted microsecond, `ts` strictly increasing; `cum` is the running
//! total of units up to and including the record, strictly increasing and
//! above `base` (the total of the records already pruned). The units of a
//! window are `cum(last) - cum(before its first record)`. When `base`
//! passes 2^50 the totals are rebased to 0 (both faces, at the same step).
//!
//! A Redis sorted set would make the Lua face cheaper still, but the pure
//! face could not read it through [`crate::Store::update`]; one string is
//! what both faces share. Its cost is O(limit) bytes per key (32 per
//! record), copied once per write, which is why a log tier's limit is at
//! most [`super::MAX_LOG_LIMIT`].
//!
//! The Rust face checks the whole value (framing, digits, ranges, order);
//! the Lua twin checks the framing and every field it reads (the header
//! and the O(log n) records its binary searches touch): a full check would
//! cost O(n) per decision. A value corrupted inside records it does not
//! read is therefore a `CorruptData` error in process and unspecified (but
//! never a script crash) on Redis.

use bytes::Bytes;

use super::engine::Engine;
use super::state::{corrupt, Form, MAX_COUNT, SAFE_LIMIT};
use super::Rule;
use crate::{LocalValue, Result};

const TAG: &[u8] = b"sl1:";
const FIELD: usize = 16;
const RECORD: usize = 2 * FIELD;
const HEADER: usize = TAG.len() + 2 * FIELD;
/// Cumulative totals are rebased to 0 when the pruned total passes this.
const REBASE: u64 = 1 << 50;

/// `base` and `(ts, cum)` records (see the module docs).
pub(crate) struct SlidingLog {
    base: u64,
    recs: Vec<(u64, u64)>,
}

fn longest(rule: &Rule) -> u64 {
    rule.tiers().iter().map(|t| t.b).max().unwrap_or(0)
}

fn field(raw: &[u8], pos: usize) -> Result<u64> {
    let mut v = 0u64;
    for &b in &raw[pos..pos + FIELD] {
        if !b.is_ascii_digit() {
            return Err(corrupt());
        }
        v = v * 10 + u64::from(b - b'0');
    }
    if v >= SAFE_LIMIT {
        return Err(corrupt());
    }
    Ok(v)
}

fn pad(out: &mut Vec<u8>, v: u64) {
    let mut digits = [b'0'; FIELD];
    let mut x = v;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (x % 10) as u8;
        x /= 10;
    }
    out.extend_from_slice(&digits);
}

impl SlidingLog {
    fn last_cum(&self) -> u64 {
        self.recs.last().map_or(self.base, |r| r.1)
    }

    /// The total before record `j` (`base` for the first).
    fn cum_before(&self, j: usize) -> u64 {
        if j == 0 {
            self.base
        } else {
            self.recs[j - 1].1
        }
    }

    /// The index of the first record inside a window of `w` ending now.
    fn first_in(&self, w: u64, now: u64) -> usize {
        self.recs.partition_point(|r| r.0 + w <= now)
    }

    fn add(&mut self, now: u64, amount: u64) {
        let last = self.last_cum();
        let cum = (last + amount).min(MAX_COUNT);
        match self.recs.last_mut() {
            // A clock behind the newest record records at that record (and
            // a total at its cap stays there).
            Some(r) if r.0 >= now || cum == last => r.1 = cum,
            _ if cum > last => self.recs.push((now, cum)),
            _ => {}
        }
    }
}

impl Engine for SlidingLog {
    fn fresh(_rule: &Rule) -> Self {
        SlidingLog {
            base: 0,
            recs: Vec::new(),
        }
    }

    fn load(_rule: &Rule, raw: &[u8]) -> Result<(u64, Self)> {
        if !raw.starts_with(TAG)
            || raw.len() < HEADER
            || !(raw.len() - HEADER).is_multiple_of(RECORD)
        {
            return Err(corrupt());
        }
        let blocked = field(raw, TAG.len())?;
        let base = field(raw, TAG.len() + FIELD)?;
        // Running totals never pass MAX_COUNT (`add` caps them); one above it
        // would make the next capped write go backwards.
        if base > MAX_COUNT {
            return Err(corrupt());
        }
        let n = (raw.len() - HEADER) / RECORD;
        let mut recs = Vec::with_capacity(n + 1);
        let (mut prev_ts, mut prev_cum) = (None, base);
        for k in 0..n {
            let at = HEADER + k * RECORD;
            let (ts, cum) = (field(raw, at)?, field(raw, at + FIELD)?);
            if prev_ts.is_some_and(|p| ts <= p) || cum <= prev_cum || cum > MAX_COUNT {
                return Err(corrupt());
            }
            recs.push((ts, cum));
            (prev_ts, prev_cum) = (Some(ts), cum);
        }
        Ok((blocked, SlidingLog { base, recs }))
    }

    fn normalize(&mut self, rule: &Rule, now: u64) {
        let j = self.first_in(longest(rule), now);
        if j > 0 {
            self.base = self.recs[j - 1].1;
            self.recs.drain(..j);
        }
        if self.base >= REBASE {
            for r in &mut self.recs {
                r.1 -= self.base;
            }
            self.base = 0;
        }
    }

    fn fits(&self, rule: &Rule, i: usize, now: u64, cost: u64) -> u64 {
        let t = rule.tiers()[i];
        let j = self.first_in(t.b, now);
        let before = self.cum_before(j);
        let count = self.last_cum() - before;
        if count + cost <= t.a {
            return 0;
        }
        // Wait until enough of the oldest units in the window slide out:
        // the first record whose running total covers the excess.
        let target = before + (count + cost - t.a);
        let k = j + self.recs[j..].partition_point(|r| r.1 < target);
        let k = k.min(self.recs.len() - 1);
        self.recs[k].0 + t.b - now
    }

    fn charge(&mut self, _rule: &Rule, now: u64, cost: u64) {
        self.add(now, cost);
    }

    fn uncharge(&mut self, rule: &Rule, now: u64, amount: u64, undo_at: u64) {
        let mut counts: Vec<(u64, u64)> = Vec::with_capacity(self.recs.len());
        let mut prev = self.base;
        for &(ts, cum) in &self.recs {
            counts.push((ts, cum - prev));
            prev = cum;
        }
        let mut left = amount;
        if undo_at > 0 {
            if let Some(e) = counts.iter_mut().find(|(ts, _)| *ts == undo_at) {
                let take = e.1.min(left);
                e.1 -= take;
                left -= take;
            }
            // A charge older than every window is out of the log: nothing
            // of it to give back (the newest units are someone else's).
            if undo_at.saturating_add(longest(rule)) <= now {
                left = 0;
            }
        }
        for e in counts.iter_mut().rev() {
            if left == 0 {
                break;
            }
            let take = e.1.min(left);
            e.1 -= take;
            left -= take;
        }
        self.recs.clear();
        let mut cum = self.base;
        for (ts, c) in counts {
            if c > 0 {
                cum += c;
                self.recs.push((ts, cum));
            }
        }
    }

    fn penalize(&mut self, _rule: &Rule, now: u64, amount: u64) {
        self.add(now, amount);
    }

    fn report(&self, rule: &Rule, i: usize, now: u64) -> (u64, u64) {
        let t = rule.tiers()[i];
        let count = self.last_cum() - self.cum_before(self.first_in(t.b, now));
        let reset = match self.recs.last() {
            Some(&(ts, _)) if ts + t.b > now => ts + t.b - now,
            _ => 0,
        };
        (t.a.saturating_sub(count), reset)
    }

    fn ttl(&self, rule: &Rule, now: u64) -> u64 {
        match self.recs.last() {
            Some(&(ts, _)) => (ts + longest(rule)).saturating_sub(now),
            None => 0,
        }
    }

    /// Always the text form: a log has no fixed size to keep inline.
    fn encode(&self, _rule: &Rule, blocked_until: u64, _form: Form) -> LocalValue {
        let mut out = Vec::with_capacity(HEADER + RECORD * self.recs.len());
        out.extend_from_slice(TAG);
        pad(&mut out, blocked_until);
        pad(&mut out, self.base);
        for &(ts, cum) in &self.recs {
            pad(&mut out, ts);
            pad(&mut out, cum);
        }
        LocalValue::Shared(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn z(v: u64) -> String {
        format!("{v:016}")
    }

    #[test]
    fn load_checks_everything() {
        let rule = Rule::sliding_log(crate::limit::Quota::per_second(5)).unwrap();
        let good = format!("sl1:{}{}{}{}", z(0), z(3), z(10), z(5));
        let (blocked, log) = SlidingLog::load(&rule, good.as_bytes()).unwrap();
        assert_eq!((blocked, log.base, log.recs), (0, 3, vec![(10, 5)]));
        for bad in [
            format!("sl1:{}", z(0)),                          // short header
            format!("sl1:{}{}{}", z(0), z(0), z(1)),          // half a record
            format!("sl1:{}{}{}{}", z(0), z(3), z(10), z(3)), // cum not above base
            format!("sl1:{}{}{}{}{}{}", z(0), z(0), z(10), z(1), z(10), z(2)), // ts repeats
            format!("sl1:{}{}{}{}{}{}", z(0), z(0), z(10), z(2), z(11), z(2)), // cum repeats
            format!("sl1:{}{}", z(0), "00000000000000-1"),    // not a digit
            format!("sl1:{}{}", z(0), "9999999999999999"),    // above 2^53
            format!("sl2:{}{}", z(0), z(0)),                  // another tag
            format!("sl1:{}{}", z(0), z(MAX_COUNT + 1)),      // base above the cap
            format!("sl1:{}{}{}{}", z(0), z(0), z(10), z(MAX_COUNT + 1)), // total above the cap
        ] {
            let e = SlidingLog::load(&rule, bad.as_bytes()).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::CorruptData, "{bad}");
        }
    }

    #[test]
    fn totals_are_rebased_when_large() {
        let rule = Rule::sliding_log(crate::limit::Quota::per_second(5)).unwrap();
        let mut log = SlidingLog {
            base: REBASE - 1,
            recs: vec![(1, REBASE), (2_000_000, REBASE + 3)],
        };
        log.normalize(&rule, 1_500_000);
        assert_eq!((log.base, log.recs.clone()), (0, vec![(2_000_000, 3)]));
    }
}
