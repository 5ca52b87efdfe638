//! Reductions: `sum`, `mean`, `max`/`min` along a dim (values and indices), `amax`/`amin`, `argmax`/`argmin`,
//! and `sum_to` (the adjoint of broadcasting).

use crate::autograd::{record, Op};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::kernels::reduce as k;
use crate::ops::converted;
use crate::shape::{normalize_dim, normalize_dims, split_at_dim};
use crate::storage::{try_filled, try_with_capacity};
use crate::tensor::Tensor;

/// Sum `data` (of `shape`) over the sorted `dims`, keeping them as size 1.
fn sum_raw<T: Element>(
    data: &[T],
    shape: &[usize],
    dims: &[usize],
    f: fn(&mut [T], &[T], usize, usize, usize),
) -> Result<Vec<T>> {
    let mut cur: Option<Vec<T>> = None; // None: still reading `data`
    let mut cur_shape = shape.to_vec();
    // group runs of adjacent dims: reducing (a..=b) at once is one (outer, R, inner) pass
    let mut i = dims.len();
    while i > 0 {
        let hi = dims[i - 1];
        let mut lo = hi;
        i -= 1;
        while i > 0 && dims[i - 1] + 1 == lo {
            lo -= 1;
            i -= 1;
        }
        let outer: usize = cur_shape[..lo].iter().product();
        let r: usize = cur_shape[lo..=hi].iter().product();
        let inner: usize = cur_shape[hi + 1..].iter().product();
        for s in &mut cur_shape[lo..=hi] {
            *s = 1;
        }
        // (an allocation error names this pass's result shape, with the reduced dims kept as 1)
        let mut out = try_filled("sum", &cur_shape, outer * inner, T::zero())?;
        f(&mut out, cur.as_deref().unwrap_or(data), outer, r, inner);
        cur = Some(out);
    }
    match cur {
        Some(v) => Ok(v),
        None => {
            let mut v = try_with_capacity("sum", shape, data.len())?;
            v.extend_from_slice(data);
            Ok(v)
        }
    }
}

fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &s)| match (dims.contains(&i), keepdim) {
            (false, _) => Some(s),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// The dims a reduction names, normalized. A 0-d tensor takes 0 and -1 (PyTorch's rule: a scalar is treated
/// as having one dimension for dim wrapping), and reducing over them leaves it as it is.
fn reduce_dims(op: &'static str, dims: &[i64], ndim: usize) -> Result<Vec<usize>> {
    if ndim == 0 {
        normalize_dims(op, dims, 1).map_err(crate::shape::as_scalar_dim_error)?;
        return Ok(Vec::new());
    }
    normalize_dims(op, dims, ndim)
}

impl Tensor {
    /// Sum over `dims` (all dims when `None`). Bool and int64 sum to int64.
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim.
    pub fn sum(&self, dims: Option<&[i64]>, keepdim: bool) -> Result<Tensor> {
        let dims = match dims {
            Some(d) => reduce_dims("sum", d, self.ndim())?,
            None => (0..self.ndim()).collect(),
        };
        let out_shape = reduced_shape(self.shape(), &dims, keepdim);
        let storage = match self.dtype() {
            DType::F32 => {
                f32::into_storage(sum_raw(self.storage().as_slice::<f32>(), self.shape(), &dims, k::sum_dim)?)
            }
            DType::F64 => {
                f64::into_storage(sum_raw(self.storage().as_slice::<f64>(), self.shape(), &dims, k::sum_dim)?)
            }
            _ => {
                let c = converted(self, DType::I64)?;
                let v = sum_raw(c.storage().as_slice::<i64>(), self.shape(), &dims, k::sum_dim_i64)?;
                i64::into_storage(v)
            }
        };
        let out = Tensor::from_storage(storage, out_shape);
        Ok(record(out, &[self], || Op::Sum { dims, keepdim }))
    }

    /// Mean over `dims` (all dims when `None`).
    ///
    /// # Errors
    /// `DType` for non-float tensors; `OutOfRange` for a bad dim.
    pub fn mean(&self, dims: Option<&[i64]>, keepdim: bool) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return Err(Error::dtype(
                "mean",
                format!("mean needs a float tensor, got {}; convert with .float()", self.dtype()),
            ));
        }
        let count: usize = match dims {
            Some(d) => reduce_dims("mean", d, self.ndim())?.iter().map(|&i| self.shape()[i]).product(),
            None => self.numel(),
        };
        let s = self.sum(dims, keepdim)?;
        // mean over zero elements is NaN, as 0/0
        s.div(&super::full(&[], count as f64, self.dtype())?)
    }

    /// Max (or min, when `min`) along `dim`: `(values, indices)`.
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim or an empty reduced dim.
    pub fn max_dim(&self, dim: i64, keepdim: bool, min: bool) -> Result<(Tensor, Tensor)> {
        let op = if min { "min" } else { "max" };
        let d = normalize_dim(op, dim, self.ndim().max(1))?;
        let shape: Vec<usize> = if self.ndim() == 0 { vec![1] } else { self.shape().to_vec() };
        let (outer, r, inner) = split_at_dim(&shape, d);
        if r == 0 {
            return Err(Error::range(
                op,
                format!("cannot reduce over dimension {d} of size 0 (shape {:?})", self.shape()),
            ));
        }
        let mut out_shape = reduced_shape(&shape, &[d], keepdim);
        if self.ndim() == 0 {
            out_shape.clear();
        }
        let mut idx = try_filled(op, &out_shape, outer * inner, 0i64)?;
        let storage = crate::with_any!(self.dtype(), T => {
            let mut vals = try_filled(op, &out_shape, outer * inner, T::zero())?;
            k::max_dim(&mut vals, &mut idx, self.storage().as_slice::<T>(), outer, r, inner, min);
            T::into_storage(vals)
        });
        let indices = Tensor::from_storage(i64::into_storage(idx), out_shape.clone());
        let values = Tensor::from_storage(storage, out_shape);
        // the op keeps its own copy: the indices handed back may be written in place before backward
        let saved = || Tensor::from_storage(indices.storage().clone(), indices.shape().to_vec());
        let values = record(values, &[self], || Op::MaxDim { dim: d, keepdim, min, indices: saved() });
        Ok((values, indices))
    }

    /// Max (or min) over several dims, or over all elements when `dims` is `None` (values only).
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim or an empty tensor.
    pub fn amax(&self, dims: Option<&[i64]>, keepdim: bool, min: bool) -> Result<Tensor> {
        let op = if min { "amin" } else { "amax" };
        match dims {
            None => {
                let flat = self.reshape(&[self.numel()])?;
                let (v, _) = flat.max_dim(0, false, min)?;
                if keepdim {
                    v.reshape(&vec![1; self.ndim()])
                } else {
                    Ok(v)
                }
            }
            Some(d) => {
                let dims = reduce_dims(op, d, self.ndim())?;
                let mut cur = self.clone();
                for &dim in dims.iter().rev() {
                    cur = cur.max_dim(dim as i64, true, min)?.0;
                }
                if keepdim {
                    Ok(cur)
                } else {
                    cur.reshape(&reduced_shape(self.shape(), &dims, false))
                }
            }
        }
    }

    /// Index of the max (or min) along `dim`, or in the flattened tensor when `dim` is `None`.
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim or an empty tensor.
    pub fn argmax(&self, dim: Option<i64>, keepdim: bool, min: bool) -> Result<Tensor> {
        let _g = crate::autograd::NoGradGuard::new();
        match dim {
            Some(d) => Ok(self.max_dim(d, keepdim, min)?.1),
            None => {
                let (_, i) = self.reshape(&[self.numel()])?.max_dim(0, false, min)?;
                if keepdim {
                    i.reshape(&vec![1; self.ndim()])
                } else {
                    Ok(i)
                }
            }
        }
    }

    /// Sum a broadcast result back to `shape` (the gradient of broadcasting to `self.shape()`).
    ///
    /// # Errors
    /// `Shape` when `shape` does not broadcast to `self.shape()`.
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let n = self.ndim();
        if shape.len() > n {
            return Err(Error::shape("sum_to", format!("cannot sum shape {:?} to {shape:?}", self.shape())));
        }
        let lead = n - shape.len();
        let mut dims: Vec<i64> = (0..lead as i64).collect();
        for (i, &s) in shape.iter().enumerate() {
            let have = self.shape()[lead + i];
            if s == 1 && have != 1 {
                dims.push((lead + i) as i64);
            } else if s != have {
                return Err(Error::shape("sum_to", format!("cannot sum shape {:?} to {shape:?}", self.shape())));
            }
        }
        self.sum(Some(&dims), true)?.reshape(shape)
    }
}

/// The gradient of `max_dim`/`min_dim`: zeros of `shape` with `g` placed at the picked indices.
///
/// # Errors
/// `DType` for non-float gradients.
pub fn max_backward(g: &Tensor, indices: &Tensor, shape: &[usize], dim: usize) -> Result<Tensor> {
    let full_shape: Vec<usize> = if shape.is_empty() { vec![1] } else { shape.to_vec() };
    let (outer, r, inner) = split_at_dim(&full_shape, dim);
    let storage = crate::with_float!(g.dtype(), "max", T => {
        let mut dx = try_filled("max", shape, outer * r * inner, T::zero())?;
        k::max_dim_backward(&mut dx, g.storage().as_slice::<T>(), indices.storage().as_slice::<i64>(), outer, r, inner);
        T::into_storage(dx)
    });
    Ok(Tensor::from_storage(storage, shape.to_vec()))
}
