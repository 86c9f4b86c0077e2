//! The generic cell rate algorithm, on integer time.
//!
//! Each key and quota keeps one number, the theoretical arrival time (TAT): when the key's
//! budget would be full again had it been spent evenly. A request of cost `c` moves the TAT
//! forward by `c` emission intervals; it is admitted if the TAT then lies no further ahead of
//! now than the burst allows. The unit (nanoseconds in memory, microseconds on Redis) is the
//! caller's choice; the arithmetic is identical, so both backends decide the same way.

/// The constants of one quota in some time unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    /// Time between two requests at the sustained rate.
    pub(crate) interval: u64,
    /// How far ahead of now the TAT may run: `burst * interval`.
    pub(crate) capacity: u64,
}

impl Params {
    /// `period` (in the unit) shared by `limit` requests, `burst` at once.
    pub(crate) fn new(period: u128, limit: u32, burst: u32) -> Self {
        // Rounded up so that rounding never admits more than the stated rate.
        let interval = period.div_ceil(u128::from(limit.max(1))).max(1);
        let interval = u64::try_from(interval).unwrap_or(u64::MAX);
        Self {
            interval,
            capacity: interval.saturating_mul(u64::from(burst)),
        }
    }
}

/// What one quota says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Whether the quota admits the request.
    pub(crate) allowed: bool,
    /// The TAT if the request is admitted (only meaningful when `allowed`).
    pub(crate) new_tat: u64,
    /// Time until the budget is full again, after this decision.
    pub(crate) reset: u64,
    /// When refused: time until this request would be admitted; `None` if it never would
    /// (its cost exceeds the burst).
    pub(crate) retry_after: Option<u64>,
}

/// Decides one request of `cost` at `now`, given the stored TAT (`None` for a fresh key).
pub(crate) fn decide(tat: Option<u64>, now: u64, cost: u32, params: Params) -> Verdict {
    let tat = tat.map_or(now, |tat| tat.max(now));
    let ahead = tat - now;
    let increment = params.interval.saturating_mul(u64::from(cost));
    let new_tat = tat.saturating_add(increment);
    let new_ahead = new_tat - now;

    if new_ahead <= params.capacity {
        return Verdict {
            allowed: true,
            new_tat,
            reset: new_ahead,
            retry_after: None,
        };
    }

    let retry_after = (increment <= params.capacity).then(|| new_ahead - params.capacity);
    Verdict {
        allowed: false,
        new_tat: tat,
        reset: ahead,
        retry_after,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: u64 = 1_000_000_000;

    /// Requests of cost 1 still admissible when the TAT lies `reset` ahead of now.
    fn remaining(reset: u64, params: Params) -> u64 {
        params.capacity.saturating_sub(reset) / params.interval
    }

    fn five_per_minute() -> Params {
        Params::new(u128::from(60 * SEC), 5, 5)
    }

    #[test]
    fn burst_then_refusal_then_exact_refill() {
        let p = five_per_minute();
        let mut tat = None;

        // The five of the burst pass at t=0, counting down.
        for left in (0..5).rev() {
            let v = decide(tat, 0, 1, p);
            assert!(v.allowed);
            assert_eq!(remaining(v.reset, p), left);
            tat = Some(v.new_tat);
        }

        // The sixth waits exactly one emission interval, 12 s.
        let v = decide(tat, 0, 1, p);
        assert!(!v.allowed);
        assert_eq!(v.retry_after, Some(12 * SEC));
        assert_eq!(v.reset, 60 * SEC);

        // One nanosecond early is still too early; on the dot it passes.
        assert!(!decide(tat, 12 * SEC - 1, 1, p).allowed);
        assert!(decide(tat, 12 * SEC, 1, p).allowed);
    }

    #[test]
    fn cost_weighs_several_requests() {
        let p = five_per_minute();
        let v = decide(None, 0, 3, p);
        assert!(v.allowed);
        assert_eq!(remaining(v.reset, p), 2);

        // Two left, so a cost of 3 waits for one more interval.
        let refused = decide(Some(v.new_tat), 0, 3, p);
        assert!(!refused.allowed);
        assert_eq!(remaining(refused.reset, p), 2);
        assert_eq!(refused.retry_after, Some(12 * SEC));
    }

    #[test]
    fn a_cost_above_the_burst_never_passes() {
        let v = decide(None, 0, 6, five_per_minute());
        assert!(!v.allowed);
        assert_eq!(v.retry_after, None);
    }

    #[test]
    fn rounding_never_admits_more_than_the_rate() {
        // 3 per 10 s: 3.333.. s per request, rounded up.
        let p = Params::new(u128::from(10 * SEC), 3, 3);
        assert_eq!(p.interval, 3_333_333_334);
    }

    proptest! {
        /// Over any run of arrivals, admitted cost never exceeds burst + elapsed / interval.
        #[test]
        fn never_admits_more_than_burst_plus_refill(
            limit in 1u32..50,
            burst in 1u32..50,
            steps in proptest::collection::vec((0u64..5 * SEC, 1u32..4), 1..200),
        ) {
            let p = Params::new(u128::from(60 * SEC), limit, burst);
            let (mut tat, mut now, mut admitted) = (None, 0u64, 0u64);
            for (gap, cost) in steps {
                now += gap;
                let v = decide(tat, now, cost, p);
                if v.allowed {
                    tat = Some(v.new_tat);
                    admitted += u64::from(cost);
                } else if let Some(wait) = v.retry_after {
                    // Waiting exactly the advertised time is enough.
                    prop_assert!(decide(tat, now + wait, cost, p).allowed);
                    prop_assert!(wait == 0 || !decide(tat, now + wait - 1, cost, p).allowed);
                }
                prop_assert!(admitted <= u64::from(burst) + now / p.interval);
            }
        }

        /// A refusal leaves the state as it was.
        #[test]
        fn refusal_consumes_nothing(ahead in 0u64..120 * SEC, cost in 1u32..10) {
            let p = five_per_minute();
            let v = decide(Some(ahead), 0, cost, p);
            if !v.allowed {
                prop_assert_eq!(v.new_tat, ahead);
            }
        }
    }
}
