//! Timing helpers: medians and percentiles of samples, and a loop that
//! repeats an operation for a time budget.

use std::time::{Duration, Instant};

/// Samples taken at least, whatever the budget.
pub const SAMPLES_MIN: usize = 5;
/// Samples taken at most, whatever the budget.
pub const SAMPLES_MAX: usize = 200_000;

/// The `p`-th percentile (0..=100, nearest rank) of `samples`; `None` if empty.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 100.0) / 100.0 * s.len() as f64).ceil() as usize;
    Some(s[rank.clamp(1, s.len()) - 1])
}

/// The median of `samples` (the 50th percentile, nearest rank).
pub fn median(samples: &[f64]) -> Option<f64> {
    percentile(samples, 50.0)
}

/// Call `f` (which performs `ops` operations per call) over and over for
/// about `budget` (at least [`SAMPLES_MIN`] calls after two warm-up calls)
/// and return the median time of one operation in microseconds.
pub fn median_us_per_op(budget: Duration, ops: usize, mut f: impl FnMut()) -> f64 {
    let ops = ops.max(1) as f64;
    f();
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while (start.elapsed() < budget || samples.len() < SAMPLES_MIN) && samples.len() < SAMPLES_MAX {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64() * 1e6 / ops);
    }
    median(&samples).unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(median(&s), Some(50.0));
        assert_eq!(percentile(&s, 99.0), Some(99.0));
        assert_eq!(percentile(&s, 100.0), Some(100.0));
        assert_eq!(percentile(&s, 0.0), Some(1.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn the_loop_takes_at_least_the_minimum_samples() {
        let mut n = 0;
        let us = median_us_per_op(Duration::ZERO, 4, || n += 1);
        assert!(n >= SAMPLES_MIN + 2);
        assert!(us >= 0.0);
    }
}
