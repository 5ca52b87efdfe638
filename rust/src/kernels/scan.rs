//! Running sums along one dim of a contiguous tensor viewed as (outer, R, inner): `cumsum` and its backward,
//! the running sum taken from the other end. Floats accumulate in f64 (as the sum reductions do), so a float32
//! running sum stays within float32 rounding of the exact one however long the dim; int64 wraps as PyTorch's.
//! Split over threads by whole (R, inner) blocks, so results do not depend on the thread count.

use crate::dtype::Element;
use crate::parallel;

/// An element type a running sum can be taken of: floats through an f64 accumulator, int64 exactly.
pub trait Cumulative: Element {
    /// The accumulator.
    type Acc: Copy + Send;
    /// Zero.
    const ACC_ZERO: Self::Acc;
    /// `acc + v`.
    fn accumulate(acc: Self::Acc, v: Self) -> Self::Acc;
    /// The accumulator as an element.
    fn finish(acc: Self::Acc) -> Self;
}

impl Cumulative for f32 {
    type Acc = f64;
    const ACC_ZERO: f64 = 0.0;
    fn accumulate(acc: f64, v: f32) -> f64 {
        acc + v as f64
    }
    fn finish(acc: f64) -> f32 {
        acc as f32
    }
}

impl Cumulative for f64 {
    type Acc = f64;
    const ACC_ZERO: f64 = 0.0;
    fn accumulate(acc: f64, v: f64) -> f64 {
        acc + v
    }
    fn finish(acc: f64) -> f64 {
        acc
    }
}

impl Cumulative for i64 {
    type Acc = i64;
    const ACC_ZERO: i64 = 0;
    fn accumulate(acc: i64, v: i64) -> i64 {
        acc.wrapping_add(v)
    }
    fn finish(acc: i64) -> i64 {
        acc
    }
}

/// Run `sum(block_out, block_in, acc)` over each (R, inner) block, blocks spread over the pool.
fn per_block<T: Cumulative>(
    out: &mut [T],
    x: &[T],
    r: usize,
    inner: usize,
    sum: impl Fn(&mut [T], &[T], &mut [T::Acc]) + Sync,
) {
    let block = r * inner;
    if block == 0 {
        return;
    }
    parallel::for_rows(out, block, 1, |first, blocks| {
        let mut acc = vec![T::ACC_ZERO; inner];
        for (b, ob) in blocks.chunks_exact_mut(block).enumerate() {
            acc.fill(T::ACC_ZERO);
            sum(ob, &x[(first + b) * block..(first + b + 1) * block], &mut acc);
        }
    });
}

/// `out[o, j, i] = sum_{s <= j} x[o, s, i]`.
pub fn cumsum_forward<T: Cumulative>(out: &mut [T], x: &[T], _outer: usize, r: usize, inner: usize) {
    per_block(out, x, r, inner, |ob, xb, acc| {
        for (orow, xrow) in ob.chunks_exact_mut(inner).zip(xb.chunks_exact(inner)) {
            for ((o, &v), a) in orow.iter_mut().zip(xrow).zip(acc.iter_mut()) {
                *a = T::accumulate(*a, v);
                *o = T::finish(*a);
            }
        }
    });
}

/// `dx[o, j, i] += sum_{s >= j} dout[o, s, i]`: the adjoint of [`cumsum_forward`].
pub fn cumsum_backward<T: Cumulative + std::ops::AddAssign>(
    dx: &mut [T],
    dout: &[T],
    _outer: usize,
    r: usize,
    inner: usize,
) {
    per_block(dx, dout, r, inner, |db, gb, acc| {
        for (drow, grow) in db.chunks_exact_mut(inner).rev().zip(gb.chunks_exact(inner).rev()) {
            for ((d, &g), a) in drow.iter_mut().zip(grow).zip(acc.iter_mut()) {
                *a = T::accumulate(*a, g);
                *d += T::finish(*a);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumsum_runs_along_the_middle_dim_and_back() {
        // x (2, 3, 2) = 0..12; along dim 1
        let x: Vec<f64> = (0..12).map(f64::from).collect();
        let mut y = vec![0.0; 12];
        cumsum_forward(&mut y, &x, 2, 3, 2);
        assert_eq!(y, [0.0, 1.0, 2.0, 4.0, 6.0, 9.0, 6.0, 7.0, 14.0, 16.0, 24.0, 27.0]);
        // d/dx_j of sum_j' g_j' y_j' = sum_{j' >= j} g_j'; accumulated onto 1
        let mut dx = vec![1.0; 12];
        cumsum_backward(&mut dx, &[1.0; 12], 2, 3, 2);
        assert_eq!(dx, [4.0, 4.0, 3.0, 3.0, 2.0, 2.0, 4.0, 4.0, 3.0, 3.0, 2.0, 2.0]);
    }
}
