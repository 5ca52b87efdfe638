//! Sorting kernels on contiguous rows of `R` elements: `sort` (every element, stable) and `topk` (the `k`
//! largest or smallest), each giving the values and the positions they came from. Their backward is the
//! adjoint of picking elements at indices, `index::scatter_add_forward`, called by the op.
//!
//! Order: NaN ranks above every number (ascending sorts put NaNs last, descending first; `topk(largest)` picks
//! them first), as PyTorch; -0.0 equals 0.0. Ties keep the lower index first, in either direction: `sort` is
//! stable, and `topk` breaks ties by index, so its result is one deterministic answer among the ones PyTorch
//! allows. Rows longer than `u32::MAX` are not supported (positions are kept as u32 beside the keys).

use crate::dtype::Element;
use crate::parallel::{self, Rows};

/// An element type with an order-preserving map to `u64`: the kernels sort `(key, position)` pairs of plain
/// integers (a total order, so an unstable sort gives the stable result) instead of calling a float comparison.
pub trait SortKey: Element {
    /// `a < b` exactly when `key(a) < key(b)`; NaNs map above everything, and -0.0 equal to 0.0.
    fn key(self) -> u64;
}

// IEEE bits made monotonic: negatives flipped entirely, positives with the sign bit set; `+ 0.0` turns -0.0
// into 0.0 first.
impl SortKey for f32 {
    fn key(self) -> u64 {
        if self.is_nan() {
            return u64::MAX;
        }
        let b = (self + 0.0).to_bits();
        (if b >> 31 == 1 { !b } else { b | 1 << 31 }) as u64
    }
}

impl SortKey for f64 {
    fn key(self) -> u64 {
        if self.is_nan() {
            return u64::MAX;
        }
        let b = (self + 0.0).to_bits();
        if b >> 63 == 1 {
            !b
        } else {
            b | 1 << 63
        }
    }
}

impl SortKey for i64 {
    fn key(self) -> u64 {
        (self as u64) ^ (1 << 63)
    }
}

impl SortKey for bool {
    fn key(self) -> u64 {
        self as u64
    }
}

/// Rows per parallel task: enough that a task's work (about `r log r` per row) is worth a hand-off.
fn min_rows(r: usize) -> usize {
    (4096 / r.max(1)).max(1)
}

/// `(rank key, position)` of each element of `row`: ascending keys order the elements as wanted (largest first
/// when `descending`), positions break ties toward the lower index.
fn keyed<T: SortKey>(pairs: &mut Vec<(u64, u32)>, row: &[T], descending: bool) {
    pairs.clear();
    let flip = if descending { u64::MAX } else { 0 };
    pairs.extend(row.iter().enumerate().map(|(j, &v)| (v.key() ^ flip, j as u32)));
}

/// Sort each row of `x` (rows of `r`): `values` the sorted elements, `indices` their positions in the row.
/// Ascending unless `descending`; stable in both directions (equal elements keep their order).
pub fn sort_forward<T: SortKey>(values: &mut [T], indices: &mut [i64], x: &[T], r: usize, descending: bool) {
    if r == 0 {
        return;
    }
    let parts = (Rows::new(values, r), Rows::new(indices, r));
    parallel::for_row_parts(parts, r * (usize::BITS - r.leading_zeros()) as usize, min_rows(r), |first, (v, i)| {
        let (v, i) = (v.into_slice(), i.into_slice());
        let mut pairs = Vec::with_capacity(r);
        for (row, (vr, ir)) in v.chunks_exact_mut(r).zip(i.chunks_exact_mut(r)).enumerate() {
            let src = &x[(first + row) * r..(first + row + 1) * r];
            keyed(&mut pairs, src, descending);
            pairs.sort_unstable();
            for ((out, slot), &(_, j)) in vr.iter_mut().zip(ir.iter_mut()).zip(pairs.iter()) {
                *out = src[j as usize];
                *slot = j as i64;
            }
        }
    });
}

/// The `k` largest (or, unless `largest`, smallest) elements of each row of `x` (rows of `r`, `k <= r`):
/// `values` and `indices` are rows of `k`, in rank order when `sorted`, else in the order of their positions.
pub fn topk_forward<T: SortKey>(
    values: &mut [T],
    indices: &mut [i64],
    x: &[T],
    r: usize,
    k: usize,
    largest: bool,
    sorted: bool,
) {
    if k == 0 || r == 0 {
        return;
    }
    let parts = (Rows::new(values, k), Rows::new(indices, k));
    parallel::for_row_parts(parts, r, min_rows(r), |first, (v, i)| {
        let (v, i) = (v.into_slice(), i.into_slice());
        let mut pairs = Vec::with_capacity(r);
        for (row, (vr, ir)) in v.chunks_exact_mut(k).zip(i.chunks_exact_mut(k)).enumerate() {
            let src = &x[(first + row) * r..(first + row + 1) * r];
            keyed(&mut pairs, src, largest);
            if k < r {
                pairs.select_nth_unstable(k - 1);
            }
            let top = &mut pairs[..k];
            if sorted {
                top.sort_unstable();
            } else {
                top.sort_unstable_by_key(|&(_, j)| j);
            }
            for ((out, slot), &(_, j)) in vr.iter_mut().zip(ir.iter_mut()).zip(top.iter()) {
                *out = src[j as usize];
                *slot = j as i64;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_is_stable_both_ways_and_puts_nan_last_ascending() {
        let x = [2.0f64, f64::NAN, 1.0, 2.0, -1.0, 1.0];
        let (mut v, mut i) = ([0.0; 6], [0i64; 6]);
        sort_forward(&mut v, &mut i, &x, 6, false);
        assert_eq!(i, [4, 2, 5, 0, 3, 1]);
        assert!(v[5].is_nan() && v[..5] == [-1.0, 1.0, 1.0, 2.0, 2.0]);
        sort_forward(&mut v, &mut i, &x, 6, true);
        assert_eq!(i, [1, 0, 3, 2, 5, 4]);
    }

    #[test]
    fn keys_order_floats_with_nan_on_top_and_signed_zeros_equal() {
        let xs = [f64::NEG_INFINITY, -2.5, -1e-300, 0.0, 1e-300, 3.0, f64::INFINITY];
        assert!(xs.windows(2).all(|w| w[0].key() < w[1].key()));
        assert!(xs.iter().all(|&x| x.key() < f64::NAN.key()) && (-f64::NAN).key() == f64::NAN.key());
        assert_eq!((-0.0f64).key(), 0.0f64.key());
        let ys = [f32::NEG_INFINITY, -2.5, -1e-30, 0.0, 1e-30, 3.0, f32::INFINITY];
        assert!(ys.windows(2).all(|w| w[0].key() < w[1].key()) && ys[6].key() < f32::NAN.key());
        assert_eq!((-0.0f32).key(), 0.0f32.key());
        assert!([i64::MIN, -1, 0, 1, i64::MAX].windows(2).all(|w| w[0].key() < w[1].key()));
    }

    #[test]
    fn topk_breaks_ties_by_position_and_keeps_positions_unsorted() {
        // rows of 5: [3, 1, 3, 0, 3] and [5, 4, 3, 2, 1]
        let x = [3i64, 1, 3, 0, 3, 5, 4, 3, 2, 1];
        let (mut v, mut i) = ([0i64; 4], [0i64; 4]);
        topk_forward(&mut v, &mut i, &x, 5, 2, true, true);
        assert_eq!((v, i), ([3, 3, 5, 4], [0, 2, 0, 1]));
        topk_forward(&mut v, &mut i, &x, 5, 2, false, true);
        assert_eq!((v, i), ([0, 1, 1, 2], [3, 1, 4, 3]));
        topk_forward(&mut v, &mut i, &x, 5, 2, false, false);
        assert_eq!((v, i), ([1, 0, 2, 1], [1, 3, 3, 4]));
    }
}
