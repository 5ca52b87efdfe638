//! Strided iteration: walking an n-d index space in row-major order while tracking the element offset of
//! several operands, each with its own strides (0 on broadcast dims). Elementwise ops, broadcasting, permute,
//! expand and slicing are all a [`Plan`] plus an inner loop.
//!
//! The plan coalesces dims that are contiguous for every operand, so common cases (same shapes, a bias over the
//! last dim) become one or two long runs.

use crate::dtype::Element;
use crate::error::Result;
use crate::parallel;
use crate::storage::try_filled;

/// An iteration over `shape` for `K` operands.
#[derive(Clone, Debug)]
pub struct Plan<const K: usize> {
    shape: Vec<usize>,
    strides: [Vec<usize>; K],
    base: [usize; K],
}

impl<const K: usize> Plan<K> {
    /// A plan over `shape`; operand `k` starts at `base[k]` and moves `strides[k][d]` elements per step of dim `d`.
    pub fn new(shape: &[usize], strides: [Vec<usize>; K], base: [usize; K]) -> Self {
        let mut out_shape: Vec<usize> = Vec::new();
        let mut out_strides: [Vec<usize>; K] = std::array::from_fn(|_| Vec::new());
        for d in 0..shape.len() {
            if shape[d] == 1 {
                continue;
            }
            if !out_shape.is_empty() {
                let n = out_shape.len() - 1;
                // dim n (outer) merges with d (inner) when stepping n once equals stepping d shape[d] times.
                let mergeable = (0..K).all(|k| out_strides[k][n] == strides[k][d] * shape[d]);
                if mergeable {
                    out_shape[n] *= shape[d];
                    for k in 0..K {
                        out_strides[k][n] = strides[k][d];
                    }
                    continue;
                }
            }
            out_shape.push(shape[d]);
            for k in 0..K {
                out_strides[k].push(strides[k][d]);
            }
        }
        if out_shape.is_empty() {
            out_shape.push(1);
            for s in out_strides.iter_mut() {
                s.push(0);
            }
        }
        Plan { shape: out_shape, strides: out_strides, base }
    }

    /// The stride of each operand along the innermost (run) dimension.
    pub fn inner_strides(&self) -> [usize; K] {
        std::array::from_fn(|k| *self.strides[k].last().expect("plans have at least one dim"))
    }

    /// Total number of index positions.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when there is nothing to visit.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call `f(pos, offsets, len)` for each run of positions `pos..pos+len` within `lo..hi`, where the run moves
    /// along the innermost dim and `offsets[k]` is operand `k`'s offset at `pos`.
    pub fn for_runs(&self, lo: usize, hi: usize, mut f: impl FnMut(usize, [usize; K], usize)) {
        if lo >= hi {
            return;
        }
        let n = self.shape.len();
        let inner = self.shape[n - 1];
        let mut idx = vec![0usize; n];
        let mut rem = lo;
        for d in (0..n).rev() {
            idx[d] = rem % self.shape[d];
            rem /= self.shape[d];
        }
        let mut offs: [usize; K] =
            std::array::from_fn(|k| self.base[k] + (0..n).map(|d| idx[d] * self.strides[k][d]).sum::<usize>());
        let mut pos = lo;
        while pos < hi {
            let len = (inner - idx[n - 1]).min(hi - pos);
            f(pos, offs, len);
            pos += len;
            idx[n - 1] += len;
            for (o, s) in offs.iter_mut().zip(&self.strides) {
                *o += len * s[n - 1];
            }
            if idx[n - 1] < inner {
                continue;
            }
            // carry into outer dims
            for (o, s) in offs.iter_mut().zip(&self.strides) {
                *o -= inner * s[n - 1];
            }
            idx[n - 1] = 0;
            for d in (0..n - 1).rev() {
                idx[d] += 1;
                for (o, s) in offs.iter_mut().zip(&self.strides) {
                    *o += s[d];
                }
                if idx[d] < self.shape[d] {
                    break;
                }
                for (o, s) in offs.iter_mut().zip(&self.strides) {
                    *o -= self.shape[d] * s[d];
                }
                idx[d] = 0;
            }
        }
    }
}

/// `out[i] = f(a[..])` over a one-operand plan (gather: permute, slice, expand, cast).
///
/// # Errors
/// `OutOfMemory` when the output cannot be allocated.
pub fn map1<A: Element, O: Element>(
    op: &'static str,
    shape: &[usize],
    a: &[A],
    plan: &Plan<1>,
    f: impl Fn(A) -> O + Sync,
) -> Result<Vec<O>> {
    let mut out = try_filled(op, shape, plan.len(), O::zero())?;
    let [sa] = plan.inner_strides();
    parallel::for_chunks(&mut out, 4096, |lo, ch| {
        plan.for_runs(lo, lo + ch.len(), |pos, [oa], len| {
            let dst = &mut ch[pos - lo..pos - lo + len];
            if sa == 1 {
                for (d, &x) in dst.iter_mut().zip(&a[oa..oa + len]) {
                    *d = f(x);
                }
            } else {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = f(a[oa + j * sa]);
                }
            }
        })
    });
    Ok(out)
}

/// `out[i] = f(a[..], b[..])` over a two-operand plan (binary ops with broadcasting).
///
/// # Errors
/// `OutOfMemory` when the output cannot be allocated.
pub fn map2<A: Element, B: Element, O: Element>(
    op: &'static str,
    shape: &[usize],
    a: &[A],
    b: &[B],
    plan: &Plan<2>,
    f: impl Fn(A, B) -> O + Sync,
) -> Result<Vec<O>> {
    let mut out = try_filled(op, shape, plan.len(), O::zero())?;
    let [sa, sb] = plan.inner_strides();
    parallel::for_chunks(&mut out, 4096, |lo, ch| {
        plan.for_runs(lo, lo + ch.len(), |pos, [oa, ob], len| {
            let dst = &mut ch[pos - lo..pos - lo + len];
            match (sa, sb) {
                (1, 1) => {
                    for ((d, &x), &y) in dst.iter_mut().zip(&a[oa..oa + len]).zip(&b[ob..ob + len]) {
                        *d = f(x, y);
                    }
                }
                (1, 0) => {
                    let y = b[ob];
                    for (d, &x) in dst.iter_mut().zip(&a[oa..oa + len]) {
                        *d = f(x, y);
                    }
                }
                (0, 1) => {
                    let x = a[oa];
                    for (d, &y) in dst.iter_mut().zip(&b[ob..ob + len]) {
                        *d = f(x, y);
                    }
                }
                _ => {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = f(a[oa + j * sa], b[ob + j * sb]);
                    }
                }
            }
        })
    });
    Ok(out)
}

/// `out[i] = f(a[..], b[..], c[..])` over a three-operand plan (`where`, fused backward formulas).
///
/// # Errors
/// `OutOfMemory` when the output cannot be allocated.
pub fn map3<A: Element, B: Element, C: Element, O: Element>(
    op: &'static str,
    shape: &[usize],
    (a, b, c): (&[A], &[B], &[C]),
    plan: &Plan<3>,
    f: impl Fn(A, B, C) -> O + Sync,
) -> Result<Vec<O>> {
    let mut out = try_filled(op, shape, plan.len(), O::zero())?;
    let [sa, sb, sc] = plan.inner_strides();
    parallel::for_chunks(&mut out, 4096, |lo, ch| {
        plan.for_runs(lo, lo + ch.len(), |pos, [oa, ob, oc], len| {
            let dst = &mut ch[pos - lo..pos - lo + len];
            for (j, d) in dst.iter_mut().enumerate() {
                *d = f(a[oa + j * sa], b[ob + j * sb], c[oc + j * sc]);
            }
        })
    });
    Ok(out)
}

/// Write `src` (contiguous, in plan order) into `dst` at the plan's offsets: the adjoint of [`map1`] for
/// injective plans (slicing with positive steps).
pub fn scatter<T: Element>(dst: &mut [T], plan: &Plan<1>, src: &[T]) {
    let [sd] = plan.inner_strides();
    plan.for_runs(0, plan.len(), |pos, [od], len| {
        for j in 0..len {
            dst[od + j * sd] = src[pos + j];
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_plan_visits_in_row_major_output_order() {
        // a (2,3) read as its transpose (3,2): strides (1, 3)
        let a = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
        let p = Plan::new(&[3, 2], [vec![1, 3]], [0]);
        let out = map1("t", &[3, 2], &a, &p, |x| x).unwrap();
        assert_eq!(out, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn runs_split_at_arbitrary_bounds() {
        let p = Plan::new(&[3, 5, 7], [vec![35, 7, 1], vec![0, 1, 0]], [0, 0]);
        let mut seen = vec![];
        p.for_runs(4, 97, |pos, [oa, ob], len| {
            for j in 0..len {
                seen.push((pos + j, oa + j, ob));
            }
        });
        let want: Vec<_> = (4..97).map(|i| (i, i, (i / 7) % 5)).collect();
        assert_eq!(seen, want);
    }
}
