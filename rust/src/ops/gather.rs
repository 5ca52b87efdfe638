//! Indexing along one dim with an index tensor: `gather`, `scatter`, `scatter_add`, `put` (scatter into the
//! flattened tensor, what `x[key] = value` writes with) and `one_hot`; and the backward of `gather` (also sort's
//! and topk's) and of the scatters. The in-place forms (`scatter_`, `put_`, ...) are in `inplace.rs`.
//!
//! PyTorch's rules: the index is int64 with the input's number of dims, its values in `0..size(dim)` (no
//! negative wrap-around, except in `put`), and no larger than the input (gather) or the source (scatter) in any
//! other dim. A 0-d tensor indexes as one of shape `[1]`.

use crate::autograd::{record, Op, SliceSpec};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::kernels::index::{gather_forward, one_hot_forward, scatter_add_forward, scatter_forward};
use crate::kernels::strided::Plan;
use crate::shape::{normalize_dim, numel, strides};
use crate::storage::{try_filled, try_with_capacity};
use crate::tensor::Tensor;

/// A 0-d shape indexes as `[1]`.
fn nd(shape: &[usize]) -> Vec<usize> {
    if shape.is_empty() {
        vec![1]
    } else {
        shape.to_vec()
    }
}

/// Strides of `shape` with 0 along `dim` (the plan walks the index; the index value picks along `dim`).
fn strides_off_dim(shape: &[usize], dim: usize) -> (Vec<usize>, usize) {
    let mut st = strides(shape);
    let dim_stride = std::mem::replace(&mut st[dim], 0);
    (st, dim_stride)
}

/// Check an index for `op` on `x` along `dim` (against `src` for the scatters); returns the normalized dim.
fn check_index(op: &'static str, x: &Tensor, dim: i64, index: &Tensor, src: Option<&Tensor>) -> Result<usize> {
    if index.dtype() != DType::I64 {
        return Err(Error::dtype(op, format!("expected an int64 index, got {}", index.dtype())));
    }
    let (xs, is) = (nd(x.shape()), nd(index.shape()));
    let d = normalize_dim(op, dim, xs.len())?;
    if x.ndim().max(1) != index.ndim().max(1) {
        return Err(Error::shape(
            op,
            format!(
                "index {:?} must have as many dimensions as the input {:?} (got {} and {})",
                index.shape(),
                x.shape(),
                index.ndim(),
                x.ndim()
            ),
        ));
    }
    if let Some(s) = src {
        let ss = nd(s.shape());
        if ss.len() != is.len() || is.iter().zip(&ss).any(|(i, s)| i > s) {
            return Err(Error::shape(
                op,
                format!("index {:?} is larger than the source {:?} in some dimension", index.shape(), s.shape()),
            ));
        }
        if s.dtype() != x.dtype() {
            return Err(Error::dtype(op, format!("self is {} but the source is {}", x.dtype(), s.dtype())));
        }
    }
    if let Some(k) = (0..xs.len()).find(|&k| k != d && is[k] > xs[k]) {
        return Err(Error::shape(
            op,
            format!(
                "index {:?} is larger than the input {:?} in dimension {k} (only dimension {d} may differ)",
                index.shape(),
                x.shape()
            ),
        ));
    }
    let size = xs[d];
    if let Some(&bad) = index.storage().as_slice::<i64>().iter().find(|&&i| i < 0 || i as usize >= size) {
        return Err(Error::range(op, format!("index {bad} is out of bounds for dimension {d} with size {size}")));
    }
    Ok(d)
}

/// The plan of a scatter of `src` (values at the index's positions) into a tensor of `shape` along `dim`.
fn scatter_plan(index_shape: &[usize], src_shape: &[usize], shape: &[usize], dim: usize) -> (Plan<3>, usize) {
    let (st, dim_stride) = strides_off_dim(&nd(shape), dim);
    let is = nd(index_shape);
    (Plan::new(&is, [strides(&is), strides(&nd(src_shape)), st], [0, 0, 0]), dim_stride)
}

impl Tensor {
    /// `out[p] = self[p with p[dim] = index[p]]`: the elements picked along `dim`; the result has the index's shape.
    ///
    /// # Errors
    /// `DType` for a non-int64 index; `Shape` for an index of another rank or larger than `self` outside `dim`;
    /// `OutOfRange` for a bad dim or an index value outside `0..size(dim)`.
    pub fn gather(&self, dim: i64, index: &Tensor) -> Result<Tensor> {
        let d = check_index("gather", self, dim, index, None)?;
        let (st, dim_stride) = strides_off_dim(&nd(self.shape()), d);
        let is = nd(index.shape());
        let plan = Plan::new(&is, [strides(&is), st], [0, 0]);
        let n = numel("gather", index.shape(), self.dtype().size())?;
        let storage = crate::with_any!(self.dtype(), T => {
            let mut out = try_filled("gather", index.shape(), n, T::zero())?;
            gather_forward(&mut out, self.storage().as_slice::<T>(), index.storage().as_slice::<i64>(), &plan, dim_stride);
            T::into_storage(out)
        });
        let out = Tensor::from_storage(storage, index.shape().to_vec());
        Ok(record(out, &[self, index], || Op::Gather(d)))
    }

    /// A copy of `self` with `out[p with p[dim] = index[p]] = src[p]` for every position `p` of the index.
    /// A target written twice keeps the last write (PyTorch leaves it unspecified).
    ///
    /// # Errors
    /// As [`Tensor::gather`]; `Shape` for an index larger than `src`; `DType` when `src` has another dtype.
    pub fn scatter(&self, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let d = check_index("scatter", self, dim, index, Some(src))?;
        let (plan, dim_stride) = scatter_plan(index.shape(), src.shape(), self.shape(), d);
        let storage = crate::with_any!(self.dtype(), T => {
            let mut out = copy_of::<T>("scatter", self)?;
            scatter_forward(&mut out, src.storage().as_slice::<T>(), index.storage().as_slice::<i64>(), &plan, dim_stride);
            T::into_storage(out)
        });
        let out = Tensor::from_storage(storage, self.shape().to_vec());
        Ok(record(out, &[self, index, src], || Op::Scatter(d)))
    }

    /// A copy of `self` with `out[p with p[dim] = index[p]] += src[p]` (repeated targets add up).
    ///
    /// # Errors
    /// As [`Tensor::scatter`]; `DType` for bool tensors.
    pub fn scatter_add(&self, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let op = "scatter_add";
        let d = check_index(op, self, dim, index, Some(src))?;
        let (plan, dim_stride) = scatter_plan(index.shape(), src.shape(), self.shape(), d);
        let idx = index.storage();
        let storage = match self.dtype() {
            DType::F32 => scatter_add_t::<f32>(self, src, idx.as_slice(), &plan, dim_stride)?,
            DType::F64 => scatter_add_t::<f64>(self, src, idx.as_slice(), &plan, dim_stride)?,
            DType::I64 => scatter_add_t::<i64>(self, src, idx.as_slice(), &plan, dim_stride)?,
            DType::Bool => return Err(Error::dtype(op, "scatter_add of bool tensors is not supported")),
        };
        let out = Tensor::from_storage(storage, self.shape().to_vec());
        Ok(record(out, &[self, index, src], || Op::ScatterAdd(d)))
    }

    /// A copy of `self` with `source`'s elements written at the positions `index` of the flattened tensor
    /// (added there when `accumulate`): PyTorch's `put`. Negative positions count from the end.
    ///
    /// # Errors
    /// `DType` for a non-int64 index or a source of another dtype; `Shape` when index and source hold different
    /// numbers of elements; `OutOfRange` for a position outside the tensor.
    pub fn put(&self, index: &Tensor, source: &Tensor, accumulate: bool) -> Result<Tensor> {
        let op = "put";
        if index.dtype() != DType::I64 {
            return Err(Error::dtype(op, format!("expected an int64 index, got {}", index.dtype())));
        }
        if index.numel() != source.numel() {
            return Err(Error::shape(
                op,
                format!(
                    "index {:?} and source {:?} must have the same number of elements",
                    index.shape(),
                    source.shape()
                ),
            ));
        }
        let (n, m) = (self.numel() as i64, index.numel());
        let wrapped = {
            let iv = index.storage();
            let iv = iv.as_slice::<i64>();
            if let Some(&bad) = iv.iter().find(|&&i| i < -n || i >= n) {
                return Err(Error::range(
                    op,
                    format!("index {bad} is out of bounds for a tensor of {n} elements (shape {:?})", self.shape()),
                ));
            }
            let mut w = try_with_capacity::<i64>(op, &[m], m)?;
            w.extend(iv.iter().map(|&i| if i < 0 { i + n } else { i }));
            Tensor::from_vec(w, &[m])?
        };
        let flat = self.reshape(&[self.numel()])?;
        let src = source.reshape(&[m])?;
        let out = if accumulate { flat.scatter_add(0, &wrapped, &src)? } else { flat.scatter(0, &wrapped, &src)? };
        out.reshape(self.shape())
    }

    /// `out[..., c] = (self[...] == c)`: int64 ids as one-hot rows of `num_classes` (int64); `num_classes` -1
    /// means the largest id plus one.
    ///
    /// # Errors
    /// `DType` for non-int64 ids; `OutOfRange` for an id outside `0..num_classes`; `InvalidArgument` for
    /// `num_classes` below -1 or -1 with no ids to infer it from.
    pub fn one_hot(&self, num_classes: i64) -> Result<Tensor> {
        let op = "one_hot";
        if self.dtype() != DType::I64 {
            return Err(Error::dtype(op, format!("one_hot is only applicable to int64 tensors, got {}", self.dtype())));
        }
        let ids = self.storage();
        let ids = ids.as_slice::<i64>();
        let c = match num_classes {
            -1 => match ids.iter().max() {
                None => return Err(Error::invalid(op, "can not infer the number of classes from an empty tensor")),
                Some(&m) => m.max(-1) + 1,
            },
            c if c < -1 => return Err(Error::invalid(op, format!("num_classes must be -1 or positive, got {c}"))),
            c => c,
        };
        if let Some(&bad) = ids.iter().find(|&&i| i < 0 || i >= c) {
            return Err(Error::range(op, format!("class value {bad} is outside 0..{c} (num_classes = {c})")));
        }
        let mut shape = self.shape().to_vec();
        shape.push(c as usize);
        let mut out = try_filled(op, &shape, numel(op, &shape, 8)?, 0i64)?;
        one_hot_forward(&mut out, ids, c as usize);
        Ok(Tensor::from_storage(i64::into_storage(out), shape))
    }
}

/// A fresh copy of `t`'s elements.
fn copy_of<T: Element>(op: &'static str, t: &Tensor) -> Result<Vec<T>> {
    let mut v = try_with_capacity(op, t.shape(), t.numel())?;
    v.extend_from_slice(t.storage().as_slice::<T>());
    Ok(v)
}

fn scatter_add_t<T: Element + std::ops::AddAssign>(
    x: &Tensor,
    src: &Tensor,
    index: &[i64],
    plan: &Plan<3>,
    dim_stride: usize,
) -> Result<crate::storage::Storage> {
    let mut out = copy_of::<T>("scatter_add", x)?;
    scatter_add_forward(&mut out, src.storage().as_slice::<T>(), index, plan, dim_stride);
    Ok(T::into_storage(out))
}

/// The gradient of `x.gather(dim, index)` for `x` of `shape`: zeros with `g` added at the gathered positions.
///
/// # Errors
/// `DType` for non-float gradients.
pub fn gather_backward(g: &Tensor, index: &Tensor, shape: &[usize], dim: usize) -> Result<Tensor> {
    let (plan, dim_stride) = scatter_plan(index.shape(), g.shape(), shape, dim);
    let storage = crate::with_float!(g.dtype(), "gather", T => {
        let mut dx = try_filled("gather", shape, numel("gather", shape, std::mem::size_of::<T>())?, T::zero())?;
        scatter_add_forward(&mut dx, g.storage().as_slice::<T>(), index.storage().as_slice::<i64>(), &plan, dim_stride);
        T::into_storage(dx)
    });
    Ok(Tensor::from_storage(storage, shape.to_vec()))
}

/// The gradients of `scatter`/`scatter_add` (`op`) with inputs `[x, index, src]`: `x`'s is `g` (with zeros where
/// `scatter` overwrote), `src`'s is `g` gathered at the written positions (zeros where `src` is larger than the
/// index).
///
/// # Errors
/// Propagates shape and dtype errors.
pub fn scatter_backward(op: &Op, g: &Tensor, inputs: &[Tensor], dim: usize) -> Result<Vec<Option<Tensor>>> {
    let (x, index, src) = (&inputs[0], &inputs[1], &inputs[2]);
    let dx = match (x.requires_grad(), op) {
        (false, _) => None,
        (true, Op::Scatter(_)) => {
            let zeros = crate::ops::zeros(index.shape(), g.dtype())?;
            Some(g.scatter(dim as i64, index, &zeros)?)
        }
        (true, _) => Some(g.clone()),
    };
    let dsrc = if src.requires_grad() {
        let picked = g.gather(dim as i64, index)?;
        Some(if index.shape() == src.shape() {
            picked
        } else {
            let specs: Vec<SliceSpec> =
                nd(index.shape()).iter().map(|&len| SliceSpec { start: 0, step: 1, len }).collect();
            crate::ops::movement::slice_backward(&picked.reshape(&nd(index.shape()))?, &nd(src.shape()), &specs)?
                .reshape(src.shape())?
        })
    } else {
        None
    };
    Ok(vec![dx, None, dsrc])
}
