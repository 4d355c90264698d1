//! The order in which usable accounts are tried: round robin (the seed's behaviour; smooth
//! weighted round robin when accounts have weights), least used (fewest requests in the last
//! minute per unit of weight), or random (weighted). Pure: the pool passes what it knows about
//! each candidate and keeps the round-robin memory.

use std::collections::HashMap;

use rand::Rng;

/// How the pool spreads requests over its accounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// Each usable account in turn (weights give an account more turns)
    #[default]
    RoundRobin,
    /// The account with the fewest requests in the last minute (per unit of weight)
    LeastUsed,
    /// A random account (weights make one more likely)
    Random,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::LeastUsed => "least-used",
            Strategy::Random => "random",
        }
    }
}

/// What the strategy knows about one usable account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i32,
    /// At least 1.
    pub weight: u32,
    /// Requests it started in the last minute.
    pub recent: u32,
    pub in_flight: u32,
    pub last_used_ms: Option<i64>,
}

/// Round-robin memory: smooth weighted round robin (as nginx does it), so that with equal
/// weights every account gets exactly one turn per round and with weights 2:1 the heavier one
/// gets two of every three turns, interleaved rather than in runs.
#[derive(Debug, Default)]
pub struct Rotation {
    current: HashMap<i32, i64>,
}

impl Rotation {
    fn current(&self, id: i32) -> i64 {
        self.current.get(&id).copied().unwrap_or(0)
    }

    /// Records that `chosen` got this turn among `candidates`.
    pub fn chosen(&mut self, chosen: i32, candidates: &[Candidate]) {
        let total: i64 = candidates.iter().map(|c| i64::from(c.weight)).sum();
        for c in candidates {
            *self.current.entry(c.id).or_insert(0) += i64::from(c.weight);
        }
        *self.current.entry(chosen).or_insert(0) -= total;
    }

    /// Forgets accounts that are gone.
    pub fn retain(&mut self, keep: impl Fn(i32) -> bool) {
        self.current.retain(|id, _| keep(*id));
    }
}

/// The ids of `candidates` in the order to try them.
pub fn order(
    strategy: Strategy,
    rotation: &Rotation,
    candidates: &[Candidate],
    rng: &mut impl Rng,
) -> Vec<i32> {
    let mut list: Vec<&Candidate> = candidates.iter().collect();
    match strategy {
        Strategy::RoundRobin => {
            list.sort_by_key(|c| {
                (
                    std::cmp::Reverse(rotation.current(c.id) + i64::from(c.weight)),
                    c.id,
                )
            });
        }
        Strategy::LeastUsed => list.sort_by(|a, b| {
            // recent / weight, compared without division.
            (u64::from(a.recent) * u64::from(b.weight))
                .cmp(&(u64::from(b.recent) * u64::from(a.weight)))
                .then(a.in_flight.cmp(&b.in_flight))
                .then(a.last_used_ms.cmp(&b.last_used_ms))
                .then(a.id.cmp(&b.id))
        }),
        Strategy::Random => {
            // Efraimidis–Spirakis: sorting by u^(1/w) is a weighted random permutation.
            let mut keyed: Vec<(f64, &Candidate)> = list
                .into_iter()
                .map(|c| {
                    (
                        rng.random::<f64>().powf(1.0 / f64::from(c.weight.max(1))),
                        c,
                    )
                })
                .collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
            list = keyed.into_iter().map(|(_, c)| c).collect();
        }
    }
    list.into_iter().map(|c| c.id).collect()
}

/// Requests started in the last minute, in one-second buckets: constant memory however busy
/// the account is.
#[derive(Debug, Clone)]
pub struct RecentCount {
    buckets: [u32; 60],
    /// The second the newest bucket belongs to.
    last_sec: i64,
}

impl Default for RecentCount {
    fn default() -> Self {
        RecentCount {
            buckets: [0; 60],
            last_sec: 0,
        }
    }
}

impl RecentCount {
    fn slot(sec: i64) -> usize {
        sec.rem_euclid(60) as usize
    }

    pub fn add(&mut self, now_ms: i64) {
        let sec = now_ms.div_euclid(1000);
        if sec > self.last_sec {
            if sec - self.last_sec >= 60 {
                self.buckets = [0; 60];
            } else {
                for s in self.last_sec + 1..=sec {
                    self.buckets[Self::slot(s)] = 0;
                }
            }
            self.last_sec = sec;
        }
        // A time before `last_sec` (clock step back) counts in the newest bucket.
        let b = &mut self.buckets[Self::slot(self.last_sec)];
        *b = b.saturating_add(1);
    }

    /// Requests in the minute before `now_ms`.
    pub fn total(&self, now_ms: i64) -> u32 {
        let sec = now_ms.div_euclid(1000);
        let stale = sec.saturating_sub(self.last_sec).max(0);
        if stale >= 60 {
            return 0;
        }
        // Buckets for the seconds after last_sec still hold counts from a minute earlier.
        let mut sum: u32 = self.buckets.iter().sum();
        for s in self.last_sec + 1..=sec {
            sum -= self.buckets[Self::slot(s)];
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn c(id: i32, weight: u32) -> Candidate {
        Candidate {
            id,
            weight,
            recent: 0,
            in_flight: 0,
            last_used_ms: None,
        }
    }

    /// Picks `n` times, always taking the first of the order.
    fn turns(strategy: Strategy, candidates: &[Candidate], n: usize) -> Vec<i32> {
        let mut rotation = Rotation::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        (0..n)
            .map(|_| {
                let first = order(strategy, &rotation, candidates, &mut rng)[0];
                rotation.chosen(first, candidates);
                first
            })
            .collect()
    }

    #[test]
    fn round_robin_takes_turns_and_honours_weights_interleaved() {
        assert_eq!(
            turns(Strategy::RoundRobin, &[c(1, 1), c(2, 1), c(3, 1)], 7),
            [1, 2, 3, 1, 2, 3, 1]
        );
        assert_eq!(
            turns(Strategy::RoundRobin, &[c(1, 2), c(2, 1)], 6),
            [1, 2, 1, 1, 2, 1]
        );
        assert_eq!(
            turns(Strategy::RoundRobin, &[c(1, 5), c(2, 1), c(3, 1)], 7),
            [1, 1, 2, 1, 3, 1, 1]
        );
        // The rest of the order is the failover order: the next in turn first.
        let rotation = Rotation::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let all = [c(1, 1), c(2, 1), c(3, 1)];
        assert_eq!(
            order(Strategy::RoundRobin, &rotation, &all, &mut rng),
            [1, 2, 3]
        );
    }

    #[test]
    fn round_robin_skips_an_account_that_left_and_shares_fairly_without_it() {
        let all = [c(1, 1), c(2, 1), c(3, 1)];
        let without_2 = [c(1, 1), c(3, 1)];
        let mut rotation = Rotation::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut pick = |set: &[Candidate]| {
            let first = order(Strategy::RoundRobin, &rotation, set, &mut rng)[0];
            rotation.chosen(first, set);
            first
        };
        assert_eq!([pick(&all), pick(&all)], [1, 2]);
        let mut counts = [0; 3];
        for _ in 0..10 {
            counts[(pick(&without_2) - 1) as usize] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((4..=6).contains(&counts[0]), "{counts:?}");
        let mut counts = [0; 3];
        for _ in 0..30 {
            counts[(pick(&all) - 1) as usize] += 1;
        }
        assert!(counts.iter().all(|n| (9..=11).contains(n)), "{counts:?}");
    }

    #[test]
    fn least_used_prefers_fewest_recent_per_weight_then_idle_then_oldest() {
        let rotation = Rotation::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut a = c(1, 1);
        a.recent = 4;
        let mut b = c(2, 2);
        b.recent = 6; // 3 per unit of weight, never used: before 5
        let mut d = c(3, 1);
        d.recent = 3;
        d.in_flight = 1;
        let mut e = c(4, 1);
        e.recent = 3;
        e.last_used_ms = Some(10);
        let mut f = c(5, 1);
        f.recent = 3;
        f.last_used_ms = Some(5);
        assert_eq!(
            order(Strategy::LeastUsed, &rotation, &[a, b, d, e, f], &mut rng),
            [2, 5, 4, 3, 1]
        );
    }

    #[test]
    fn random_is_a_permutation_and_follows_the_weights() {
        let rotation = Rotation::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let all = [c(1, 3), c(2, 1)];
        let mut firsts = [0u32; 2];
        for _ in 0..4000 {
            let o = order(Strategy::Random, &rotation, &all, &mut rng);
            let mut sorted = o.clone();
            sorted.sort();
            assert_eq!(sorted, [1, 2]);
            firsts[(o[0] - 1) as usize] += 1;
        }
        // Weight 3 vs 1: about 3 of every 4 first places.
        assert!((2800..3200).contains(&firsts[0]), "{firsts:?}");
    }

    #[test]
    fn recent_count_forgets_after_a_minute() {
        let mut r = RecentCount::default();
        r.add(1_000);
        r.add(1_500);
        r.add(30_000);
        assert_eq!(r.total(30_000), 3);
        assert_eq!(r.total(60_999), 1 + 2);
        assert_eq!(r.total(61_000), 1);
        assert_eq!(r.total(89_999), 1);
        assert_eq!(r.total(90_000), 0);
        r.add(200_000);
        assert_eq!(r.total(200_000), 1);
        // A clock step back still counts.
        r.add(150_000);
        assert_eq!(r.total(200_000), 2);
    }
}
