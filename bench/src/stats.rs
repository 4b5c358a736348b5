//! Latency samples and their summary.

use std::time::Duration;

/// What a scenario measured.
#[derive(Debug)]
pub struct Summary {
    /// Requests completed.
    pub count: usize,
    /// Requests that failed, and the first failure's reason.
    pub failed: (usize, Option<String>),
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Slowest request.
    pub max: Duration,
    /// Server CPU time over the run, when it could be told apart from the
    /// load generator's.
    pub server_cpu: Option<Duration>,
}

impl Summary {
    /// Summarises `samples` taken over `elapsed`.
    pub fn of(mut samples: Vec<Duration>, failures: Vec<String>, elapsed: Duration) -> Self {
        samples.sort_unstable();
        let at = |q: f64| samples.get(((samples.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default();
        let failed = (failures.len(), failures.into_iter().next());
        Self {
            failed,
            count: samples.len(),
            elapsed,
            p50: at(0.50),
            p99: at(0.99),
            max: samples.last().copied().unwrap_or_default(),
            server_cpu: None,
        }
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// One line of the report.
    pub fn line(&self, name: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut line = format!(
            "{name:<44} {:>8} ops {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            self.count,
            self.rate(),
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        );
        if let Some(cpu) = self.server_cpu {
            let per_op = cpu.as_secs_f64() * 1e6 / self.count.max(1) as f64;
            line.push_str(&format!("  server CPU {per_op:>6.0} µs/op"));
        }
        if let (n @ 1.., Some(first)) = &self.failed {
            line.push_str(&format!("  FAILED {n} (first: {first})"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_from_sorted_samples() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(samples, Vec::new(), Duration::from_secs(2));
        assert_eq!(
            (s.p50, s.p99, s.max),
            (Duration::from_millis(51), Duration::from_millis(99), Duration::from_millis(100))
        );
        assert!((s.rate() - 50.0).abs() < 1e-9);
    }
}
