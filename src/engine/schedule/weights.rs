//! Spreading users (closed model) and arrivals (open model) over flows by weight,
//! deterministically and as evenly as the weights allow: a smooth weighted
//! round-robin sequence, computed once. Weights 3:1 give A A B A, so 8 users are 6
//! and 2, and every prefix of the sequence is as close to 3:1 as it can be.

/// The longest weight cycle kept; larger weight sums are scaled down to fit (the
/// proportions then hold to within 1 in this many).
const MAX_CYCLE: u64 = 10_000;

/// The flow of every user or arrival index.
#[derive(Debug, Clone)]
pub struct FlowTable {
    cycle: Vec<u16>,
}

impl FlowTable {
    /// The table for flows with these weights (a weight of 0 counts as 1).
    pub fn new(weights: &[u32]) -> FlowTable {
        let mut weights: Vec<u64> = weights.iter().map(|w| u64::from(*w).max(1)).collect();
        if weights.is_empty() {
            weights.push(1);
        }
        let sum: u64 = weights.iter().sum();
        if sum > MAX_CYCLE {
            for w in &mut weights {
                *w = (*w * MAX_CYCLE / sum).max(1);
            }
        }
        let total: i64 = weights.iter().sum::<u64>() as i64;
        let mut current = vec![0i64; weights.len()];
        let mut cycle = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0;
            for (i, w) in weights.iter().enumerate() {
                current[i] += *w as i64;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            cycle.push(best as u16);
        }
        FlowTable { cycle }
    }

    /// The flow of user (or arrival) number `index`.
    #[inline]
    pub fn flow_for(&self, index: u64) -> usize {
        self.cycle[(index % self.cycle.len() as u64) as usize] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(t: &FlowTable, n: u64, flows: usize) -> Vec<u64> {
        let mut c = vec![0; flows];
        for i in 0..n {
            c[t.flow_for(i)] += 1;
        }
        c
    }

    #[test]
    fn three_to_one_with_eight_users() {
        let t = FlowTable::new(&[3, 1]);
        assert_eq!(counts(&t, 8, 2), [6, 2]);
        assert_eq!(counts(&t, 4, 2), [3, 1]);
        assert_eq!(counts(&t, 2, 2), [2, 0]);
    }

    #[test]
    fn prefixes_stay_close_to_the_weights() {
        let t = FlowTable::new(&[5, 3, 2]);
        for n in 1..100u64 {
            let c = counts(&t, n, 3);
            for (i, w) in [5.0, 3.0, 2.0].iter().enumerate() {
                let ideal = n as f64 * w / 10.0;
                assert!((c[i] as f64 - ideal).abs() < 1.0 + 1e-9, "n={n} {c:?}");
            }
        }
    }

    #[test]
    fn huge_weights_are_scaled() {
        let t = FlowTable::new(&[u32::MAX, u32::MAX, 0]);
        let c = counts(&t, 10_000, 3);
        assert!(c[0].abs_diff(c[1]) <= 1, "{c:?}");
        assert!(c[2] >= 1);
    }
}
