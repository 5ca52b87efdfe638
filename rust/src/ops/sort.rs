//! Sorting along a dim: `sort` and `argsort` (every element), `topk` (the `k` largest or smallest). The kernels
//! (`kernels::sort`) work on contiguous rows, so a dim other than the last is moved last and back (two copies).
//! The values are `x.gather(dim, indices)`: their backward adds the gradient back at the indices.
//!
//! Ties and NaN as in `kernels::sort`: NaN ranks above every number, equal values keep the lower index first.
//! `stable` is accepted for PyTorch's signature; every sort here is stable.

use crate::autograd::{record, NoGradGuard, Op};
use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::kernels::sort::{sort_forward, topk_forward};
use crate::shape::{normalize_dim, numel};
use crate::storage::try_filled;
use crate::tensor::Tensor;

/// `x` with `dim` moved last (contiguous rows to sort), a 0-d tensor as shape `[1]`; and whether it moved.
fn rows_last(op: &'static str, x: &Tensor, dim: i64) -> Result<(Tensor, usize, bool)> {
    let _g = NoGradGuard::new();
    let x1 = if x.ndim() == 0 { x.reshape(&[1])? } else { x.detach() };
    let d = normalize_dim(op, dim, x1.ndim())?;
    if x1.shape()[d] > u32::MAX as usize {
        // the kernels keep positions as u32 beside the sort keys
        return Err(Error::unsupported(op, format!("dimension {d} of size {} is too long to sort", x1.shape()[d])));
    }
    let last = x1.ndim() - 1;
    Ok(if d == last { (x1, d, false) } else { (x1.transpose(d as i64, last as i64)?, d, true) })
}

/// Run `kernel(values, indices, rows)` on `xt`'s rows (of its last dim), giving rows of `k`, and put the dim back.
fn by_rows(
    op: &'static str,
    x: &Tensor,
    xt: &Tensor,
    d: usize,
    moved: bool,
    k: usize,
    kernel: &dyn Fn(&mut crate::storage::Storage, &mut [i64]),
) -> Result<(Tensor, Tensor)> {
    let mut shape = xt.shape().to_vec();
    *shape.last_mut().expect("rows_last gives at least one dim") = k;
    let n = numel(op, &shape, xt.dtype().size())?;
    let mut idx = try_filled(op, &shape, n, 0i64)?;
    let mut vals = crate::with_any!(xt.dtype(), T => T::into_storage(try_filled(op, &shape, n, T::zero())?));
    kernel(&mut vals, &mut idx);
    let (mut v, mut i) = (Tensor::from_storage(vals, shape.clone()), Tensor::from_vec(idx, &shape)?);
    let _g = NoGradGuard::new();
    if moved {
        let last = shape.len() as i64 - 1;
        v = v.transpose(d as i64, last)?;
        i = i.transpose(d as i64, last)?;
    }
    if x.ndim() == 0 && k == 1 {
        v = v.reshape(&[])?;
        i = i.reshape(&[])?;
    }
    Ok((v, i))
}

impl Tensor {
    /// The elements sorted along `dim` (ascending, or descending), and the indices they came from.
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim.
    pub fn sort(&self, dim: i64, descending: bool, _stable: bool) -> Result<(Tensor, Tensor)> {
        let (xt, d, moved) = rows_last("sort", self, dim)?;
        let r = *xt.shape().last().expect("at least one dim");
        let (values, indices) = by_rows(
            "sort",
            self,
            &xt,
            d,
            moved,
            r,
            &|vals, idx| crate::with_any!(xt.dtype(), T => sort_forward(vals.as_mut_slice::<T>(), idx, xt.storage().as_slice::<T>(), r, descending)),
        )?;
        let values = record(values, &[self, &indices], || Op::Sort(d));
        Ok((values, indices))
    }

    /// The indices that sort the elements along `dim` (the second result of [`Tensor::sort`]).
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim.
    pub fn argsort(&self, dim: i64, descending: bool, stable: bool) -> Result<Tensor> {
        let _g = NoGradGuard::new();
        Ok(self.sort(dim, descending, stable)?.1)
    }

    /// The `k` largest (or smallest) elements along `dim` and their indices, in rank order when `sorted`,
    /// else in the order of their positions.
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim or `k` outside `0..=size(dim)`.
    pub fn topk(&self, k: i64, dim: i64, largest: bool, sorted: bool) -> Result<(Tensor, Tensor)> {
        let (xt, d, moved) = rows_last("topk", self, dim)?;
        let r = *xt.shape().last().expect("at least one dim");
        let k = usize::try_from(k).ok().filter(|&k| k <= r).ok_or_else(|| {
            Error::range("topk", format!("selected index k = {k} is out of range for dimension {d} of size {r}"))
        })?;
        let (values, indices) = by_rows(
            "topk",
            self,
            &xt,
            d,
            moved,
            k,
            &|vals, idx| crate::with_any!(xt.dtype(), T => topk_forward(vals.as_mut_slice::<T>(), idx, xt.storage().as_slice::<T>(), r, k, largest, sorted)),
        )?;
        let values = record(values, &[self, &indices], || Op::Topk(d));
        Ok((values, indices))
    }
}
