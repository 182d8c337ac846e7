//! Fixed window: per tier, the start of the current window (aligned to
//! the Unix epoch) and the units counted in it.
//!
//! Never more than `limit` per aligned window; across a boundary up to
//! `2 * limit` in a span of one window, as every fixed window. If the
//! clock goes back into an earlier window, the later window keeps counting
//! (it does not restart). The Lua twin is `fixed_window.lua`.

use super::engine::Engine;
use super::state::{encode_fixed_as, parse_fixed, Form, MAX_COUNT, MAX_FIXED_FIELDS};
use super::{Rule, MAX_TIERS};
use crate::{LocalValue, Result};

const TAG: &[u8] = b"fw1";

/// Per tier: window start (µs) and count.
pub(crate) struct FixedWindow {
    start: [u64; MAX_TIERS],
    count: [u64; MAX_TIERS],
}

impl Engine for FixedWindow {
    fn fresh(_rule: &Rule) -> Self {
        FixedWindow {
            start: [0; MAX_TIERS],
            count: [0; MAX_TIERS],
        }
    }

    fn load(rule: &Rule, raw: &[u8]) -> Result<(u64, Self)> {
        let n = rule.tiers().len();
        let mut v = [0; MAX_FIXED_FIELDS];
        let mut s = Self::fresh(rule);
        if parse_fixed(raw, TAG, 2, n, &mut v)? {
            for i in 0..n {
                s.start[i] = v[1 + 2 * i];
                s.count[i] = v[2 + 2 * i];
            }
        }
        Ok((v[0], s))
    }

    fn normalize(&mut self, rule: &Rule, now: u64) {
        for (i, t) in rule.tiers().iter().enumerate() {
            let aligned = now - now % t.b;
            if self.start[i] < aligned {
                self.start[i] = aligned;
                self.count[i] = 0;
            }
        }
    }

    fn fits(&self, rule: &Rule, i: usize, now: u64, cost: u64) -> u64 {
        let t = rule.tiers()[i];
        if self.count[i] + cost <= t.a {
            0
        } else {
            self.start[i] + t.b - now
        }
    }

    fn charge(&mut self, rule: &Rule, _now: u64, cost: u64) {
        for c in &mut self.count[..rule.tiers().len()] {
            *c += cost;
        }
    }

    fn uncharge(&mut self, rule: &Rule, _now: u64, amount: u64, undo_at: u64) {
        let n = rule.tiers().len();
        for (c, &start) in self.count[..n].iter_mut().zip(&self.start[..n]) {
            // A charge made in an earlier window is no longer counted:
            // nothing of it to give back.
            if undo_at == 0 || undo_at >= start {
                *c -= (*c).min(amount);
            }
        }
    }

    fn penalize(&mut self, rule: &Rule, _now: u64, amount: u64) {
        for c in &mut self.count[..rule.tiers().len()] {
            *c = (*c + amount).min(MAX_COUNT);
        }
    }

    fn report(&self, rule: &Rule, i: usize, now: u64) -> (u64, u64) {
        let t = rule.tiers()[i];
        let remaining = t.a.saturating_sub(self.count[i]);
        let reset = if self.count[i] > 0 {
            self.start[i] + t.b - now
        } else {
            0
        };
        (remaining, reset)
    }

    fn ttl(&self, rule: &Rule, now: u64) -> u64 {
        let mut ttl = 0;
        for (i, t) in rule.tiers().iter().enumerate() {
            if self.count[i] > 0 {
                ttl = ttl.max(self.start[i] + t.b - now);
            }
        }
        ttl
    }

    fn encode(&self, rule: &Rule, blocked_until: u64, form: Form) -> LocalValue {
        let n = rule.tiers().len();
        let mut f = [blocked_until; 1 + 2 * MAX_TIERS];
        for i in 0..n {
            f[1 + 2 * i] = self.start[i];
            f[2 + 2 * i] = self.count[i];
        }
        encode_fixed_as::<{ 4 + 17 * (1 + 2 * MAX_TIERS) }>(form, TAG, &f[..1 + 2 * n])
    }
}
