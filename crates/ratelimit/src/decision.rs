//! The answer of a limiter for one request, across all its quotas.

use std::time::Duration;

use smallvec::SmallVec;

use crate::Quota;
use crate::gcra::{self, Params};

/// What one quota said about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaStatus {
    // Kept to 32 bytes: a decision carries one per quota and is returned by value.
    index: u32,
    allowed: bool,
    shadow: bool,
    /// `remaining` is `headroom / interval`, divided only when asked for.
    headroom: u64,
    interval: u64,
    reset_nanos: u64,
    /// `u64::MAX` when waiting never helps.
    retry_after_nanos: u64,
}

impl QuotaStatus {
    /// What `verdict` says, for the quota at `index`.
    fn of(
        index: usize,
        quota: &Quota,
        params: Params,
        verdict: &gcra::Verdict,
        to_nanos: impl Fn(u64) -> u64,
    ) -> Self {
        Self {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            allowed: verdict.allowed,
            shadow: quota.is_shadow(),
            headroom: params.capacity.saturating_sub(verdict.reset),
            interval: params.interval,
            reset_nanos: to_nanos(verdict.reset),
            retry_after_nanos: verdict.retry_after.map_or(u64::MAX, to_nanos),
        }
    }

    /// The position of the quota in the limiter's configuration.
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// Whether this quota admitted the request (a shadow quota may say no without effect).
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// Whether the quota only observes.
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }

    /// Requests of cost 1 left after this decision.
    pub fn remaining(&self) -> u64 {
        self.headroom / self.interval.max(1)
    }

    /// Time until this quota's budget is full again.
    pub fn reset(&self) -> Duration {
        Duration::from_nanos(self.reset_nanos)
    }

    /// When this quota refused: how long until the same request would pass; `None` if its
    /// cost exceeds the quota's burst, so waiting never helps.
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_after_nanos != u64::MAX).then(|| Duration::from_nanos(self.retry_after_nanos))
    }
}

/// Whether a request passes, and what each quota said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub(crate) allowed: bool,
    pub(crate) quotas: SmallVec<[QuotaStatus; 2]>,
}

impl Decision {
    /// Whether every enforced quota admitted the request.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Each quota's status, in configuration order.
    pub fn quotas(&self) -> &[QuotaStatus] {
        &self.quotas
    }

    /// For a refusal: the wait until every refusing quota would admit the request; `None` if
    /// waiting cannot help or the request was allowed.
    pub fn retry_after(&self) -> Option<Duration> {
        if self.allowed {
            return None;
        }
        let mut longest = Duration::ZERO;
        for status in self.quotas.iter().filter(|s| !s.allowed && !s.shadow) {
            longest = longest.max(status.retry_after()?);
        }
        Some(longest)
    }
}

/// A decision plus the TATs to store if it is committed.
#[derive(Debug)]
pub(crate) struct Evaluation {
    pub(crate) decision: Decision,
    /// Per quota, the TAT to store if the decision is committed.
    new_tats: SmallVec<[Option<u64>; 4]>,
}

impl Evaluation {
    /// Decides all `quotas` at once. A quota's TAT is stored only when the whole decision is
    /// allowed and that quota admitted the request: a refusal consumes nothing, and a shadow
    /// quota that would have refused stays as a refusal would have left it.
    pub(crate) fn new(
        quotas: &[Quota],
        tats: impl Iterator<Item = Option<u64>>,
        now: u64,
        cost: u32,
        params: impl Fn(&Quota) -> Params,
        unit_nanos: u64,
    ) -> Self {
        let to_nanos = |units: u64| units.saturating_mul(unit_nanos).min(u64::MAX - 1);
        let mut allowed = true;
        let mut new_tats = SmallVec::new();
        let mut statuses: SmallVec<[QuotaStatus; 2]> = SmallVec::new();

        let tats: SmallVec<[Option<u64>; 4]> = tats.collect();
        for ((index, quota), &tat) in quotas.iter().enumerate().zip(&tats) {
            let params = params(quota);
            let verdict = gcra::decide(tat, now, cost, params);
            allowed &= verdict.allowed || quota.is_shadow();
            statuses.push(QuotaStatus::of(index, quota, params, &verdict, to_nanos));
            new_tats.push(verdict.allowed.then_some(verdict.new_tat));
        }

        // Refused as a whole: quotas that would have admitted it report their unspent state.
        if !allowed {
            for ((status, quota), &tat) in statuses.iter_mut().zip(quotas).zip(&tats) {
                if status.allowed {
                    let params = params(quota);
                    let unspent = gcra::decide(tat, now, 0, params);
                    status.headroom = params.capacity.saturating_sub(unspent.reset);
                    status.reset_nanos = to_nanos(unspent.reset);
                }
            }
        }

        Self {
            decision: Decision {
                allowed,
                quotas: statuses,
            },
            new_tats,
        }
    }

    /// [`Self::new`]'s decision for a single quota in nanoseconds, without the bookkeeping
    /// for several: when one quota is refused, the whole request is, and nothing else reports.
    pub(crate) fn single(quota: &Quota, tat: Option<u64>, now: u64, cost: u32) -> Decision {
        let params = quota.params_nanos();
        let verdict = gcra::decide(tat, now, cost, params);
        let status = QuotaStatus::of(0, quota, params, &verdict, |nanos| nanos.min(u64::MAX - 1));
        let mut quotas = SmallVec::new();
        quotas.push(status);
        Decision {
            allowed: verdict.allowed || quota.is_shadow(),
            quotas,
        }
    }

    /// The TAT to store for quota `i`, if any.
    pub(crate) fn commit(&self, i: usize) -> Option<u64> {
        if !self.decision.allowed {
            return None;
        }
        *self.new_tats.get(i)?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The one-quota shortcut says exactly what the general evaluation says.
        #[test]
        fn a_single_quota_decides_as_the_general_case(
            limit in 1u32..1000,
            burst in 1u32..1000,
            shadow: bool,
            tat in proptest::option::of(0u64..10_000_000_000_000),
            now in 0u64..10_000_000_000_000,
            cost in 0u32..2000,
        ) {
            let quota = Quota::parse(&format!("{limit}/minute"))
                .unwrap()
                .with_burst(burst)
                .unwrap()
                .shadow(shadow);
            let quotas = [quota];
            let general =
                Evaluation::new(&quotas, std::iter::once(tat), now, cost, Quota::params_nanos, 1);
            let single = Evaluation::single(&quotas[0], tat, now, cost);
            prop_assert_eq!(single, general.decision);
        }
    }
}
