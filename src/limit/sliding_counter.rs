//! Sliding window counter: per tier, the start of the current aligned
//! window, the previous window's count and the current one's.
//!
//! The load of the last `window` is estimated as
//! `floor(prev * (W - e) / W) + cur`, where `e` is the time elapsed in the
//! current window, counted in steps of `step` µs (`W` and `e` in steps:
//! see [`super::Rule`] for how the step is chosen so every product stays
//! below 2^53). A request of `cost` fits when the estimate plus `cost` is
//! at most `limit`. See the module docs of [`super`] for the error bound.
//! The Lua twin is `sliding_counter.lua`.

use super::engine::Engine;
use super::state::{encode_fixed_as, parse_fixed, Form, MAX_FIXED_FIELDS};
use super::{Rule, Tier, MAX_TIERS};
use crate::{LocalValue, Result};

const TAG: &[u8] = b"sc1";

/// Per tier: window start (µs), previous and current counts.
pub(crate) struct SlidingCounter {
    start: [u64; MAX_TIERS],
    prev: [u64; MAX_TIERS],
    cur: [u64; MAX_TIERS],
}

/// The smallest number of steps `e` into a window at which
/// `floor(p * (w - e) / w) <= room` (`w` in steps).
fn wait_steps(p: u64, room: u64, w: u64) -> u64 {
    if p == 0 {
        return 0;
    }
    let m = ((room + 1) * w - 1) / p;
    w.saturating_sub(m)
}

impl SlidingCounter {
    /// Steps elapsed in tier `i`'s current window (0 if the clock is behind it).
    fn elapsed(&self, t: &Tier, i: usize, now: u64) -> u64 {
        now.saturating_sub(self.start[i]) / t.c
    }

    fn weighted(&self, t: &Tier, i: usize, now: u64) -> u64 {
        let w = t.b / t.c;
        self.prev[i] * (w - self.elapsed(t, i, now)) / w
    }
}

impl Engine for SlidingCounter {
    fn fresh(_rule: &Rule) -> Self {
        SlidingCounter {
            start: [0; MAX_TIERS],
            prev: [0; MAX_TIERS],
            cur: [0; MAX_TIERS],
        }
    }

    fn load(rule: &Rule, raw: &[u8]) -> Result<(u64, Self)> {
        let n = rule.tiers().len();
        let mut v = [0; MAX_FIXED_FIELDS];
        let mut s = Self::fresh(rule);
        if parse_fixed(raw, TAG, 3, n, &mut v)? {
            // Counts above two windows' worth only come from a foreign
            // writer; clamping them keeps every product exact.
            for (i, t) in rule.tiers().iter().enumerate() {
                s.start[i] = v[1 + 3 * i];
                s.prev[i] = v[2 + 3 * i].min(2 * t.a);
                s.cur[i] = v[3 + 3 * i].min(2 * t.a);
            }
        }
        Ok((v[0], s))
    }

    fn normalize(&mut self, rule: &Rule, now: u64) {
        for (i, t) in rule.tiers().iter().enumerate() {
            let aligned = now - now % t.b;
            if self.start[i] < aligned {
                self.prev[i] = if aligned - self.start[i] == t.b {
                    self.cur[i]
                } else {
                    0
                };
                self.cur[i] = 0;
                self.start[i] = aligned;
            }
        }
    }

    fn fits(&self, rule: &Rule, i: usize, now: u64, cost: u64) -> u64 {
        let t = rule.tiers()[i];
        let (limit, cur) = (t.a, self.cur[i]);
        if self.weighted(&t, i, now) + cur + cost <= limit {
            return 0;
        }
        let w = t.b / t.c;
        if cur + cost <= limit {
            // Later in this window, once enough of the previous one has
            // slid out.
            let steps = wait_steps(self.prev[i], limit - cur - cost, w);
            self.start[i] + steps * t.c - now
        } else {
            // In the next window, where this window's count is the previous.
            let steps = wait_steps(cur, limit - cost, w);
            self.start[i] + t.b + steps * t.c - now
        }
    }

    fn charge(&mut self, rule: &Rule, _now: u64, cost: u64) {
        for c in &mut self.cur[..rule.tiers().len()] {
            *c += cost;
        }
    }

    fn uncharge(&mut self, rule: &Rule, _now: u64, amount: u64, undo_at: u64) {
        for (i, t) in rule.tiers().iter().enumerate() {
            if undo_at == 0 {
                // No charge named: the newest units first.
                let take = self.cur[i].min(amount);
                self.cur[i] -= take;
                let rest = amount - take;
                self.prev[i] -= self.prev[i].min(rest);
            } else if undo_at >= self.start[i] {
                // The charge is in the current window.
                self.cur[i] -= self.cur[i].min(amount);
            } else if undo_at + t.b >= self.start[i] {
                // In the previous one, which still weighs in.
                self.prev[i] -= self.prev[i].min(amount);
            }
            // Older: no longer counted, nothing to give back.
        }
    }

    fn penalize(&mut self, rule: &Rule, _now: u64, amount: u64) {
        // At most two windows' worth: keeps every product exact in Lua.
        for (i, t) in rule.tiers().iter().enumerate() {
            self.cur[i] = (self.cur[i] + amount).min(2 * t.a);
        }
    }

    fn report(&self, rule: &Rule, i: usize, now: u64) -> (u64, u64) {
        let t = rule.tiers()[i];
        let used = self.weighted(&t, i, now) + self.cur[i];
        let remaining = t.a.saturating_sub(used);
        let w = t.b / t.c;
        let reset = if self.cur[i] > 0 {
            self.start[i] + t.b + wait_steps(self.cur[i], 0, w) * t.c - now
        } else {
            (self.start[i] + wait_steps(self.prev[i], 0, w) * t.c).saturating_sub(now)
        };
        (remaining, reset)
    }

    fn ttl(&self, rule: &Rule, now: u64) -> u64 {
        let mut ttl = 0;
        for (i, t) in rule.tiers().iter().enumerate() {
            if self.prev[i] > 0 || self.cur[i] > 0 {
                ttl = ttl.max(self.start[i] + 2 * t.b - now);
            }
        }
        ttl
    }

    fn encode(&self, rule: &Rule, blocked_until: u64, form: Form) -> LocalValue {
        let n = rule.tiers().len();
        let mut f = [blocked_until; MAX_FIXED_FIELDS];
        for i in 0..n {
            f[1 + 3 * i] = self.start[i];
            f[2 + 3 * i] = self.prev[i];
            f[3 + 3 * i] = self.cur[i];
        }
        encode_fixed_as::<{ 4 + 17 * MAX_FIXED_FIELDS }>(form, TAG, &f[..1 + 3 * n])
    }
}

#[cfg(test)]
mod tests {
    use super::wait_steps;

    #[test]
    fn wait_steps_is_the_first_step_under_the_room() {
        for p in 0..20u64 {
            for room in 0..20u64 {
                let w = 10;
                let want = (0..=w).find(|e| p * (w - e) / w <= room).unwrap();
                assert_eq!(wait_steps(p, room, w), want, "p={p} room={room}");
            }
        }
    }
}
