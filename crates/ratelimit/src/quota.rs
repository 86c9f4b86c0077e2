//! Quotas as operators write them: `"200/day"`, `"50 per hour"`, `"10/s burst 20"`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::RateLimitError;

/// One limit on how often a key may be served.
///
/// A quota of `limit` per `period` admits `burst` requests at once (by default `burst ==
/// limit`) and then refills continuously, one request every `period / limit`. There are no
/// windows: a client that spent its burst at 23:59 gets one more request per emission interval,
/// not a fresh burst at midnight.
///
/// ```
/// use rampart_ratelimit::Quota;
///
/// let hourly = Quota::parse("50 per hour").unwrap();
/// assert_eq!(hourly.limit(), 50);
/// assert_eq!(hourly.period().as_secs(), 3600);
/// assert_eq!(hourly.name(), "50/hour");
///
/// let bursty = Quota::parse("10/s burst 20").unwrap();
/// assert_eq!(bursty.burst(), 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    name: Arc<str>,
    limit: u32,
    period: Duration,
    burst: u32,
    shadow: bool,
    // Derived from the above, computed once: a 128-bit division per request would cost more
    // than the rest of a decision.
    nanos: crate::gcra::Params,
    micros: crate::gcra::Params,
}

impl Quota {
    /// `limit` requests per `period`, with a burst of `limit`, named after its rate.
    pub fn new(limit: u32, period: Duration) -> Result<Self, RateLimitError> {
        if limit == 0 {
            return Err(RateLimitError::Quota {
                spec: format!("{limit}/{period:?}"),
                reason: "the limit must be at least 1",
            });
        }
        if period.is_zero() {
            return Err(RateLimitError::Quota {
                spec: format!("{limit}/{period:?}"),
                reason: "the period must be longer than zero",
            });
        }
        Ok(Self {
            name: Arc::from(default_name(limit, period)),
            limit,
            period,
            burst: limit,
            shadow: false,
            nanos: crate::gcra::Params::new(period.as_nanos(), limit, limit),
            micros: crate::gcra::Params::new(period.as_micros(), limit, limit),
        })
    }

    /// Parses `"<limit>/<period>"` or `"<limit> per <period>"`, optionally followed by
    /// `"burst <n>"`. The period is a unit (`s`, `second`, `minute`, `min`, `m`, `hour`, `h`,
    /// `day`, `d`, plurals allowed) with an optional count in front (`"100/15m"`).
    pub fn parse(spec: &str) -> Result<Self, RateLimitError> {
        let bad = |reason| RateLimitError::Quota {
            spec: spec.to_owned(),
            reason,
        };

        let lower = spec.trim().to_ascii_lowercase();
        let (rate, burst) = match lower.split_once("burst") {
            Some((rate, burst)) => (rate.trim(), Some(burst.trim())),
            None => (lower.as_str(), None),
        };
        let (limit, period) = rate
            .split_once('/')
            .or_else(|| rate.split_once(" per "))
            .ok_or_else(|| bad("expected `<limit>/<period>` such as `50/hour`"))?;
        let limit: u32 = limit
            .trim()
            .parse()
            .map_err(|_| bad("the limit is not a whole number"))?;
        let period = parse_period(period.trim()).ok_or_else(|| {
            bad("the period is not a duration such as `s`, `minute`, `hour`, `day` or `15m`")
        })?;

        let mut quota =
            Self::new(limit, period).map_err(|_| bad("the limit must be at least 1"))?;
        if let Some(burst) = burst {
            let burst = burst
                .parse()
                .map_err(|_| bad("the burst is not a whole number"))?;
            quota = quota
                .with_burst(burst)
                .map_err(|_| bad("the burst must be at least 1"))?;
        }
        Ok(quota)
    }

    /// Sets how many requests may arrive at once.
    pub fn with_burst(mut self, burst: u32) -> Result<Self, RateLimitError> {
        if burst == 0 {
            return Err(RateLimitError::Quota {
                spec: self.name.to_string(),
                reason: "the burst must be at least 1",
            });
        }
        self.burst = burst;
        self.nanos = crate::gcra::Params::new(self.period.as_nanos(), self.limit, burst);
        self.micros = crate::gcra::Params::new(self.period.as_micros(), self.limit, burst);
        Ok(self)
    }

    /// Renames the quota. The name labels metrics, appears in `RateLimit` headers and, with
    /// the key, identifies the budget: two limiters sharing a store and a quota name share
    /// one budget.
    pub fn with_name(mut self, name: impl Into<Arc<str>>) -> Result<Self, RateLimitError> {
        let name = name.into();
        let printable = name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"');
        if name.is_empty() || !printable || name.contains(['{', '}', '\\']) {
            return Err(RateLimitError::Quota {
                spec: name.to_string(),
                reason: "a quota name must be non-empty printable ASCII without `\"`, `\\`, `{` or `}`",
            });
        }
        self.name = name;
        Ok(self)
    }

    /// In shadow mode the quota is decided, counted and logged, but never refuses.
    #[must_use]
    pub fn shadow(mut self, shadow: bool) -> Self {
        self.shadow = shadow;
        self
    }

    /// The quota's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// Requests per period.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The period the limit is counted over.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Requests admitted at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Whether the quota only observes.
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }

    /// The GCRA parameters in nanoseconds.
    pub(crate) fn params_nanos(&self) -> crate::gcra::Params {
        self.nanos
    }

    /// The GCRA parameters in microseconds, the resolution of Redis `TIME`.
    #[cfg(feature = "redis")]
    pub(crate) fn params_micros(&self) -> crate::gcra::Params {
        self.micros
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

/// A quota as configuration files write it: a bare string, or a table with a name.
///
/// ```toml
/// quotas = ["200/day", { name = "hourly", rate = "50/hour", burst = 10, shadow = true }]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum QuotaConfig {
    /// `"50/hour"`, named after its rate.
    Rate(String),
    /// A quota with its options spelled out.
    Table {
        /// The name in headers and metrics; defaults to the rate.
        #[serde(default)]
        name: Option<String>,
        /// `"50/hour"`, `"10 per second"`.
        rate: String,
        /// Requests admitted at once; defaults to the limit.
        #[serde(default)]
        burst: Option<u32>,
        /// Observe only, never refuse.
        #[serde(default)]
        shadow: bool,
    },
}

impl QuotaConfig {
    /// Checks and converts into a [`Quota`].
    pub fn to_quota(&self) -> Result<Quota, RateLimitError> {
        match self {
            Self::Rate(spec) => Quota::parse(spec),
            Self::Table {
                name,
                rate,
                burst,
                shadow,
            } => {
                let mut quota = Quota::parse(rate)?.shadow(*shadow);
                if let Some(burst) = burst {
                    quota = quota.with_burst(*burst)?;
                }
                if let Some(name) = name {
                    quota = quota.with_name(name.as_str())?;
                }
                Ok(quota)
            }
        }
    }
}

fn parse_period(text: &str) -> Option<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (count, unit) = text.split_at(split);
    let count: u64 = if count.is_empty() {
        1
    } else {
        count.parse().ok()?
    };
    let seconds = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        _ => return None,
    };
    let total = count.checked_mul(seconds)?;
    (total > 0).then(|| Duration::from_secs(total))
}

fn default_name(limit: u32, period: Duration) -> String {
    let secs = period.as_secs();
    if period.subsec_nanos() != 0 {
        return format!("{limit}/{}ms", period.as_millis());
    }
    let unit = match secs {
        1 => "second".to_owned(),
        60 => "minute".to_owned(),
        3_600 => "hour".to_owned(),
        86_400 => "day".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    };
    format!("{limit}/{unit}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_write() {
        for (spec, limit, secs, name) in [
            ("200/day", 200, 86_400, "200/day"),
            ("50 per hour", 50, 3_600, "50/hour"),
            ("5/minute", 5, 60, "5/minute"),
            ("10/s", 10, 1, "10/second"),
            ("100/15m", 100, 900, "100/15m"),
            ("  7 PER Days ", 7, 86_400, "7/day"),
        ] {
            let quota = Quota::parse(spec).unwrap();
            assert_eq!(
                (quota.limit(), quota.period().as_secs()),
                (limit, secs),
                "{spec}"
            );
            assert_eq!(quota.burst(), limit, "{spec}");
            assert_eq!(quota.name(), name, "{spec}");
        }
    }

    #[test]
    fn parses_a_burst() {
        let quota = Quota::parse("10/s burst 3").unwrap();
        assert_eq!((quota.limit(), quota.burst()), (10, 3));
    }

    #[test]
    fn refuses_nonsense_with_the_spec_in_the_message() {
        for spec in [
            "",
            "fast",
            "0/s",
            "10/fortnight",
            "10/0s",
            "-1/s",
            "10/s burst 0",
            "x/s",
        ] {
            let err = Quota::parse(spec).unwrap_err();
            assert!(err.to_string().contains(spec.trim()), "{spec}: {err}");
        }
    }

    #[test]
    fn table_form_sets_name_burst_and_shadow() {
        let config: QuotaConfig = toml::from_str::<toml::Table>(
            r#"q = { name = "hourly", rate = "50/hour", burst = 10, shadow = true }"#,
        )
        .unwrap()["q"]
            .clone()
            .try_into()
            .unwrap();
        let quota = config.to_quota().unwrap();
        assert_eq!(quota.name(), "hourly");
        assert_eq!(
            (quota.limit(), quota.burst(), quota.is_shadow()),
            (50, 10, true)
        );
    }

    #[test]
    fn names_must_fit_in_a_header_and_a_redis_key() {
        let quota = Quota::parse("1/s").unwrap();
        assert!(quota.clone().with_name("a\"b").is_err());
        assert!(quota.clone().with_name("{x}").is_err());
        assert!(quota.with_name("hourly").is_ok());
    }
}
