//! Picking the next token from a row of logits, as Hugging Face's generation does: temperature, then top-k, then
//! top-p (nucleus) filtering, then a draw from the softmax of what is left; or the arg-max (greedy, the first of
//! equal maxima, as `argmax`). One row at a time, f64 arithmetic on any input dtype.
//!
//! Not here: the model or the loop around it (`model/kv.rs`, `python/bigcore/models/generation.py`).

use crate::dtype::Float;
use crate::random::Rng;

/// How to pick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Divides the logits; 0 means greedy.
    pub temperature: f64,
    /// Keep the `k` largest logits (ties at the k-th value kept too); `None` keeps all.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most probable tokens whose probability reaches `p` (at least one); `None`
    /// keeps all.
    pub top_p: Option<f64>,
    /// Draw from the distribution; `false` picks the arg-max.
    pub do_sample: bool,
}

/// The index of the first largest value (NaN counts as largest, as `argmax`).
fn argmax<T: Float>(row: &[T]) -> usize {
    let mut best = 0;
    for (j, &x) in row.iter().enumerate() {
        if x.is_nan() {
            return j;
        }
        if x > row[best] {
            best = j;
        }
    }
    best
}

/// The next token of one row of logits.
pub fn sample_row<T: Float>(row: &[T], s: &Sampling, rng: &mut Rng) -> usize {
    if !s.do_sample || s.temperature == 0.0 || row.len() <= 1 {
        return argmax(row);
    }
    let mut z: Vec<f64> = row.iter().map(|x| x.to_f64() / s.temperature).collect();
    if let Some(k) = s.top_k.filter(|&k| k < z.len()) {
        let mut sorted = z.clone();
        sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
        let kth = sorted[k - 1];
        z.iter_mut().filter(|x| **x < kth).for_each(|x| *x = f64::NEG_INFINITY);
    }
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut p: Vec<f64> = z.iter().map(|&x| (x - m).exp()).collect();
    let sum: f64 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= sum);
    if let Some(top_p) = s.top_p.filter(|&t| t < 1.0) {
        // most probable first; keep tokens until the kept mass reaches top_p (ties by index)
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        let mut mass = 0.0;
        let mut keep = order.len();
        for (n, &j) in order.iter().enumerate() {
            mass += p[j];
            if mass >= top_p {
                keep = n + 1;
                break;
            }
        }
        for &j in &order[keep..] {
            p[j] = 0.0;
        }
        let kept: f64 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= kept);
    }
    let u = rng.uniform();
    let mut acc = 0.0;
    let mut last = 0;
    for (j, &pj) in p.iter().enumerate() {
        if pj > 0.0 {
            acc += pj;
            last = j;
            if u < acc {
                return j;
            }
        }
    }
    last // rounding left u above the total: the last token with mass
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(row: &[f64], s: Sampling, draws: usize) -> Vec<usize> {
        let mut rng = Rng::seeded(3);
        let mut c = vec![0; row.len()];
        for _ in 0..draws {
            c[sample_row(row, &s, &mut rng)] += 1;
        }
        c
    }

    #[test]
    fn greedy_picks_the_first_maximum() {
        let s = Sampling { temperature: 1.0, top_k: None, top_p: None, do_sample: false };
        let mut rng = Rng::seeded(0);
        assert_eq!(sample_row(&[0.5, 2.0, 2.0, -1.0], &s, &mut rng), 1);
        let zero_t = Sampling { temperature: 0.0, do_sample: true, ..s };
        assert_eq!(sample_row(&[0.5, 2.0, 3.0f32, -1.0], &zero_t, &mut rng), 2);
    }

    #[test]
    fn draws_follow_the_filtered_softmax() {
        let row = [1.0f64.ln(), 2.0f64.ln(), 3.0f64.ln(), 4.0f64.ln()]; // probabilities 0.1, 0.2, 0.3, 0.4
        let n = 40_000;
        let all = Sampling { temperature: 1.0, top_k: None, top_p: None, do_sample: true };
        let want = [0.1, 0.2, 0.3, 0.4];
        for (c, w) in counts(&row, all, n).iter().zip(want) {
            let f = *c as f64 / n as f64;
            assert!((f - w).abs() < 5.0 * (w * (1.0 - w) / n as f64).sqrt(), "{f} vs {w}");
        }
        // top-k 2: 3/7 and 4/7
        let c = counts(&row, Sampling { top_k: Some(2), ..all }, n);
        assert_eq!((c[0], c[1]), (0, 0));
        assert!((c[3] as f64 / n as f64 - 4.0 / 7.0).abs() < 0.02);
        // top-p 0.6: 0.4 + 0.3 reaches it, the rest is dropped
        let c = counts(&row, Sampling { top_p: Some(0.6), ..all }, n);
        assert_eq!((c[0], c[1]), (0, 0));
        // top-p smaller than the largest probability keeps exactly one token
        assert_eq!(counts(&row, Sampling { top_p: Some(0.1), ..all }, 100)[3], 100);
        // temperature 0.5 squares the odds: 16/30 for the largest
        let c = counts(&row, Sampling { temperature: 0.5, ..all }, n);
        assert!((c[3] as f64 / n as f64 - 16.0 / 30.0).abs() < 0.02);
    }
}
