//! `multinomial`: category indices drawn from rows of non-negative weights (unnormalized probabilities), from a
//! [`Generator`]. Draws are serial, in row order, so a seeded generator gives the same samples on any number of
//! threads.
//!
//! With replacement (or for one sample) each sample inverts the row's cumulative sum (f64) at a uniform draw. Without replacement
//! the samples are the `num_samples` largest `p_i / E_i` with `E_i ~ Exp(1)` (an exponential race: the same
//! distribution, order included, as drawing one category at a time and removing it; PyTorch samples the same way).

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::ops::converted;
use crate::random::{Generator, Rng};
use crate::storage::try_with_capacity;
use crate::tensor::Tensor;

/// Check one row of weights and write its running sum into `cdf`; returns how many weights are positive.
fn check_row(p: &[f64], cdf: &mut Vec<f64>) -> Result<usize> {
    let op = "multinomial";
    cdf.clear();
    let (mut acc, mut positive, mut bad) = (0.0, 0, false);
    cdf.extend(p.iter().map(|&v| {
        bad |= !(v.is_finite() && v >= 0.0);
        positive += (v > 0.0) as usize;
        acc += v;
        acc
    }));
    if bad {
        return Err(Error::invalid(op, "probability tensor contains either inf, nan or element < 0"));
    }
    if acc <= 0.0 {
        return Err(Error::invalid(op, "invalid multinomial distribution (sum of probabilities <= 0)"));
    }
    Ok(positive)
}

/// `k` draws from the row whose running sum is `cdf`: each the first category whose running sum exceeds a
/// uniform draw times the total (never a category of weight 0).
fn with_replacement(out: &mut Vec<i64>, p: &[f64], cdf: &[f64], k: usize, r: &mut Rng) {
    let total = *cdf.last().expect("rows are not empty");
    for _ in 0..k {
        let u = r.uniform() * total;
        let i = cdf.partition_point(|&c| c <= u);
        // rounding at the top end can give `len`: the last category of positive weight then
        let i = if i < p.len() { i } else { p.iter().rposition(|&v| v > 0.0).expect("the total is positive") };
        out.push(i as i64);
    }
}

fn without_replacement(out: &mut Vec<i64>, p: &[f64], k: usize, keys: &mut Vec<(f64, usize)>, r: &mut Rng) {
    keys.clear();
    // E = -ln(1 - u) ~ Exp(1), u in [0, 1); a weight of 0 gets key 0 and is never among the first k
    keys.extend(p.iter().enumerate().map(|(i, &v)| {
        let e = -(1.0 - r.uniform()).ln();
        (if v > 0.0 { v / e } else { 0.0 }, i)
    }));
    let rank = |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if k < keys.len() {
        keys.select_nth_unstable_by(k - 1, rank);
    }
    keys[..k].sort_unstable_by(rank);
    out.extend(keys[..k].iter().map(|&(_, i)| i as i64));
}

/// `num_samples` category indices per row of `probs` (1-D: one row, 2-D: one per row), int64 of shape
/// `(num_samples,)` or `(rows, num_samples)`.
///
/// # Errors
/// `DType` for non-float weights; `Shape` for other ranks; `InvalidArgument` for no categories, a non-positive
/// `num_samples`, more samples than categories with positive weight without replacement, or a row with a
/// negative, infinite or NaN weight or a zero sum.
pub fn multinomial(probs: &Tensor, num_samples: i64, replacement: bool, gen: &Generator) -> Result<Tensor> {
    let op = "multinomial";
    if !probs.dtype().is_float() {
        return Err(Error::dtype(op, format!("expected a float tensor of probabilities, got {}", probs.dtype())));
    }
    if probs.ndim() != 1 && probs.ndim() != 2 {
        return Err(Error::shape(op, format!("prob_dist must be 1 or 2 dim, got shape {:?}", probs.shape())));
    }
    let n = *probs.shape().last().expect("1 or 2 dims");
    let rows = if probs.ndim() == 2 { probs.shape()[0] } else { 1 };
    if n == 0 {
        return Err(Error::invalid(op, "cannot sample from a distribution with no categories"));
    }
    let k = usize::try_from(num_samples)
        .ok()
        .filter(|&k| k > 0)
        .ok_or_else(|| Error::invalid(op, format!("cannot sample n_sample <= 0 samples (got {num_samples})")))?;
    if !replacement && k > n {
        return Err(Error::invalid(
            op,
            format!("cannot sample n_sample > prob_dist.size(-1) samples without replacement ({k} > {n})"),
        ));
    }
    let shape = if probs.ndim() == 2 { vec![rows, k] } else { vec![k] };
    let p64 = converted(probs, DType::F64)?;
    let p = p64.storage();
    let p = p.as_slice::<f64>();
    let mut cdfs = Vec::with_capacity(rows);
    for row in p.chunks_exact(n) {
        let mut cdf = try_with_capacity::<f64>(op, &[n], n)?;
        let positive = check_row(row, &mut cdf)?;
        if !replacement && positive < k {
            return Err(Error::invalid(
                op,
                format!(
                    "invalid multinomial distribution (with replacement=False, not enough non-negative category to \
                     sample): {positive} categories with positive probability for {k} samples"
                ),
            ));
        }
        cdfs.push(cdf);
    }
    let mut out = try_with_capacity::<i64>(op, &shape, rows * k)?;
    gen.with(|r| {
        let mut keys = Vec::new();
        for (row, cdf) in p.chunks_exact(n).zip(&cdfs) {
            // one sample is the same distribution either way: the cheap inversion
            if replacement || k == 1 {
                with_replacement(&mut out, row, cdf, k, r);
            } else {
                without_replacement(&mut out, row, k, &mut keys, r);
            }
        }
    });
    Ok(Tensor::from_storage(i64::into_storage(out), shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probs(v: &[f64], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape).unwrap()
    }

    #[test]
    fn with_replacement_follows_the_weights_and_never_picks_a_zero() {
        // weights 1:0:3 over 40,000 draws: counts of 10,000 and 30,000 within 5 sd (sqrt(40000 * .25 * .75) = 87)
        let g = Generator::new(5);
        let s = multinomial(&probs(&[1.0, 0.0, 3.0], &[3]), 40_000, true, &g).unwrap().to_vec::<i64>().unwrap();
        let count = |c| s.iter().filter(|&&v| v == c).count();
        assert_eq!(count(1), 0);
        assert!(count(0).abs_diff(10_000) < 5 * 87 && count(2).abs_diff(30_000) < 5 * 87, "{}", count(0));
    }

    #[test]
    fn without_replacement_draws_distinct_categories_first_by_weight() {
        // rows of 4 with one zero weight: 3 samples are the 3 positive categories; the heaviest comes first
        // in about 0.9 / (0.9 + 0.05 + 0.05) of 2,000 rows (sd sqrt(2000 * .9 * .1) = 13.4)
        let row = [0.05, 0.0, 0.9, 0.05];
        let p = probs(&row.repeat(2000), &[2000, 4]);
        let s = multinomial(&p, 3, false, &Generator::new(9)).unwrap().to_vec::<i64>().unwrap();
        for r in s.chunks(3) {
            let mut sorted = r.to_vec();
            sorted.sort();
            assert_eq!(sorted, [0, 2, 3]);
        }
        let first = s.chunks(3).filter(|r| r[0] == 2).count();
        assert!(first.abs_diff(1800) < 5 * 14, "{first}");
    }

    #[test]
    fn bad_distributions_are_errors() {
        let g = Generator::new(1);
        for (p, k, repl) in [
            (vec![0.0, 0.0], 1, true),
            (vec![1.0, -1.0], 1, true),
            (vec![1.0, f64::NAN], 1, true),
            (vec![1.0, 0.0], 2, false),
            (vec![1.0], 2, false),
            (vec![1.0], 0, true),
        ] {
            let n = p.len();
            assert!(matches!(multinomial(&probs(&p, &[n]), k, repl, &g), Err(Error::InvalidArgument { .. })), "{p:?}");
        }
        let i = Tensor::from_vec(vec![1i64], &[1]).unwrap();
        assert!(matches!(multinomial(&i, 1, true, &g), Err(Error::DType { .. })));
    }

    #[test]
    fn a_seeded_generator_repeats_its_samples() {
        let p = probs(&[0.2, 0.3, 0.5, 0.1, 0.1, 0.8], &[2, 3]);
        let a = multinomial(&p, 5, true, &Generator::new(3)).unwrap().to_vec::<i64>().unwrap();
        let b = multinomial(&p, 5, true, &Generator::new(3)).unwrap().to_vec::<i64>().unwrap();
        assert_eq!(a, b);
    }
}
