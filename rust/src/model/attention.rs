//! Causal self-attention on the (B, T, 3C) output of a fused QKV projection, heads read in place (q, k, v are
//! column blocks of each row), output written as (B, T, C) with heads side by side: what the fused GPT needs.
//!
//! One task per (batch, head); each query row is handled with O(T) memory (scores of one row at a time), the
//! log-sum-exp of each row saved for the backward, which recomputes the probabilities from it.

use crate::dtype::Float;
use crate::parallel;

/// A raw pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T, usize);
// SAFETY: each use writes elements no other task writes (see the uses).
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// `len` elements from `at`.
    ///
    /// # Safety
    /// `at + len` is inside the buffer, and no other live slice covers those elements.
    unsafe fn slice<'a>(self, at: usize, len: usize) -> &'a mut [T] {
        assert!(at + len <= self.1, "attention: {at} + {len} past {}", self.1);
        // SAFETY: in bounds (checked); exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(at), len) }
    }
}

/// `atty[b, t, h] = softmax(q k^T / sqrt(HS), causal) v` for every head; `lse[b, h, t]` saved.
#[allow(clippy::too_many_arguments)]
pub fn causal_attention_forward<T: Float>(
    atty: &mut [T],
    lse: &mut [T],
    qkv: &[T],
    b: usize,
    t: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = T::from_f64(1.0 / (hs as f64).sqrt());
    let (out, lse_p) = (Shared(atty.as_mut_ptr(), atty.len()), Shared(lse.as_mut_ptr(), lse.len()));
    parallel::run(b * nh, |task| {
        let (bi, h) = (task / nh, task % nh);
        let mut scores = vec![T::ZERO; t];
        let row = |ti: usize, part: usize| &qkv[(bi * t + ti) * 3 * c + part * c + h * hs..][..hs];
        for i in 0..t {
            let q = row(i, 0);
            let mut m = T::NEG_INFINITY;
            for (j, s) in scores[..=i].iter_mut().enumerate() {
                *s = q.iter().zip(row(j, 1)).map(|(&a, &b)| a * b).sum::<T>() * scale;
                m = m.max_nan(*s);
            }
            let mut sum = T::ZERO;
            for s in &mut scores[..=i] {
                *s = (*s - m).exp();
                sum += *s;
            }
            // SAFETY: task (bi, h) alone writes row i's columns h*hs.. of batch bi and lse[bi, h, i].
            let (o, l) = unsafe { (out.slice((bi * t + i) * c + h * hs, hs), lse_p.slice((bi * nh + h) * t + i, 1)) };
            o.iter_mut().for_each(|x| *x = T::ZERO);
            let inv = T::ONE / sum;
            for (j, &p) in scores[..=i].iter().enumerate() {
                for (x, &vv) in o.iter_mut().zip(row(j, 2)) {
                    *x += p * inv * vv;
                }
            }
            l[0] = m + sum.ln();
        }
    });
}

/// Gradients into `dqkv` (B, T, 3C), accumulated, from `datty` (B, T, C).
#[allow(clippy::too_many_arguments)]
pub fn causal_attention_backward<T: Float>(
    dqkv: &mut [T],
    datty: &[T],
    qkv: &[T],
    atty: &[T],
    lse: &[T],
    b: usize,
    t: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = T::from_f64(1.0 / (hs as f64).sqrt());
    let dp = Shared(dqkv.as_mut_ptr(), dqkv.len());
    parallel::run(b * nh, |task| {
        let (bi, h) = (task / nh, task % nh);
        let at = |ti: usize, part: usize| (bi * t + ti) * 3 * c + part * c + h * hs;
        let row = |ti: usize, part: usize| &qkv[at(ti, part)..][..hs];
        let dout = |ti: usize| &datty[(bi * t + ti) * c + h * hs..][..hs];
        for i in 0..t {
            let q = row(i, 0);
            let l = lse[(bi * nh + h) * t + i];
            // D_i = dout_i . out_i
            let di: T = dout(i).iter().zip(&atty[(bi * t + i) * c + h * hs..][..hs]).map(|(&a, &b)| a * b).sum();
            for j in 0..=i {
                let s = q.iter().zip(row(j, 1)).map(|(&a, &b)| a * b).sum::<T>() * scale;
                let p = (s - l).exp();
                let dpij: T = dout(i).iter().zip(row(j, 2)).map(|(&a, &b)| a * b).sum();
                let ds = p * (dpij - di) * scale;
                // SAFETY: task (bi, h) alone writes the q, k and v columns of head h in batch bi's rows; the three
                // slices are disjoint column blocks (or rows i != j), and each lives only for these statements.
                unsafe {
                    for (dv, &g) in dp.slice(at(j, 2), hs).iter_mut().zip(dout(i)) {
                        *dv += p * g;
                    }
                    for (dq, &k) in dp.slice(at(i, 0), hs).iter_mut().zip(row(j, 1)) {
                        *dq += ds * k;
                    }
                    for (dk, &qv) in dp.slice(at(j, 1), hs).iter_mut().zip(q) {
                        *dk += ds * qv;
                    }
                }
            }
        }
    });
}
