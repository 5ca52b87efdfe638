//! Movement ops: `reshape`, `permute`, `expand`, `slice`/`narrow`, `cat`, `stack`, `index_select`,
//! `tril`/`triu`, `unsqueeze`, `squeeze`, `flatten`, `repeat`. Reshape shares storage; the others copy
//! (storage is always contiguous).

use crate::autograd::{record, Op, SliceSpec};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::kernels::index;
use crate::kernels::strided::{map1, scatter, Plan};
use crate::ops::converted;
use crate::shape::{as_scalar_dim_error, normalize_dim, numel, split_at_dim, strides};
use crate::storage::try_filled;
use crate::tensor::Tensor;

fn gather(op: &'static str, t: &Tensor, shape: &[usize], st: Vec<usize>, base: usize) -> Result<Tensor> {
    let plan = Plan::new(shape, [st], [base]);
    let storage = crate::with_any!(t.dtype(), T => {
        let s = t.storage();
        T::into_storage(map1(op, shape, s.as_slice::<T>(), &plan, |x: T| x)?)
    });
    Ok(Tensor::from_storage(storage, shape.to_vec()))
}

impl Tensor {
    /// The same elements in `shape` (same count); shares storage.
    ///
    /// # Errors
    /// `Shape` when the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n = numel("reshape", shape, self.dtype().size())?;
        if n != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("shape {shape:?} is invalid for input of size {} (shape {:?})", self.numel(), self.shape()),
            ));
        }
        let out = Tensor::share_storage(self, shape.to_vec());
        Ok(record(out, &[self], || Op::Reshape(shape.to_vec())))
    }

    /// Reshape where one size may be -1 (inferred).
    ///
    /// # Errors
    /// `Shape` for more than one -1, other negative sizes, or a count mismatch.
    pub fn reshape_infer(&self, shape: &[i64]) -> Result<Tensor> {
        let mut infer = None;
        let mut known: usize = 1;
        for (i, &s) in shape.iter().enumerate() {
            if s == -1 {
                if infer.replace(i).is_some() {
                    return Err(Error::shape("reshape", format!("only one dimension can be inferred in {shape:?}")));
                }
            } else if s < 0 {
                return Err(Error::shape("reshape", format!("invalid shape dimension {s} in {shape:?}")));
            } else {
                known = known.saturating_mul(s as usize);
            }
        }
        let mut out: Vec<usize> = shape.iter().map(|&s| s.max(0) as usize).collect();
        if let Some(i) = infer {
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(Error::shape(
                    "reshape",
                    format!("shape {shape:?} is invalid for input of size {} (shape {:?})", self.numel(), self.shape()),
                ));
            }
            out[i] = self.numel() / known;
        }
        self.reshape(&out)
    }

    /// Reorder dims: output dim `i` is input dim `perm[i]`.
    ///
    /// # Errors
    /// `Shape` when `perm` is not a permutation of the dims.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let n = self.ndim();
        let mut seen = vec![false; n];
        if perm.len() != n || perm.iter().any(|&p| p >= n || std::mem::replace(&mut seen[p], true)) {
            return Err(Error::shape(
                "permute",
                format!("{perm:?} is not a permutation of the {n} dims of shape {:?}", self.shape()),
            ));
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return self.reshape(self.shape());
        }
        let st = strides(self.shape());
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape()[p]).collect();
        let out = gather("permute", self, &shape, perm.iter().map(|&p| st[p]).collect(), 0)?;
        Ok(record(out, &[self], || Op::Permute(perm.to_vec())))
    }

    /// Swap two dims.
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim.
    pub fn transpose(&self, d0: i64, d1: i64) -> Result<Tensor> {
        let n = self.ndim();
        // a 0-d tensor takes dims 0 and -1 (PyTorch's rule), and transposing them leaves it as it is
        let dim =
            |d| normalize_dim("transpose", d, n.max(1)).map_err(|e| if n == 0 { as_scalar_dim_error(e) } else { e });
        let (a, b) = (dim(d0)?, dim(d1)?);
        if n == 0 {
            return Ok(self.clone());
        }
        let mut perm: Vec<usize> = (0..n).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Broadcast to `shape` (new leading dims allowed; existing dims must be 1 or equal).
    ///
    /// # Errors
    /// `Shape` when `self` does not broadcast to `shape`.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        let n = self.ndim();
        let bad =
            shape.len() < n || self.shape().iter().enumerate().any(|(i, &s)| s != 1 && s != shape[shape.len() - n + i]);
        if bad {
            return Err(Error::shape("expand", format!("cannot expand shape {:?} to {shape:?}", self.shape())));
        }
        numel("expand", shape, self.dtype().size())?;
        if shape == self.shape() {
            return self.reshape(shape);
        }
        let st = crate::shape::broadcast_strides(self.shape(), shape);
        let out = gather("expand", self, shape, st, 0)?;
        Ok(record(out, &[self], || Op::Expand(shape.to_vec())))
    }

    /// Expand where a size of -1 keeps the existing size.
    ///
    /// # Errors
    /// `Shape` as [`Tensor::expand`].
    pub fn expand_infer(&self, shape: &[i64]) -> Result<Tensor> {
        let lead = shape.len().checked_sub(self.ndim()).ok_or_else(|| {
            Error::shape("expand", format!("cannot expand shape {:?} to {shape:?}: too few dims", self.shape()))
        })?;
        let mut out = Vec::with_capacity(shape.len());
        for (i, &s) in shape.iter().enumerate() {
            out.push(match s {
                -1 if i >= lead => self.shape()[i - lead],
                s if s >= 0 => s as usize,
                _ => return Err(Error::shape("expand", format!("invalid size {s} in {shape:?}"))),
            });
        }
        self.expand(&out)
    }

    /// A strided block: one spec per dim.
    ///
    /// # Errors
    /// `Shape` for a wrong number of specs; `OutOfRange` for a spec that leaves its dim; `InvalidArgument`
    /// for a zero step.
    pub fn slice(&self, specs: &[SliceSpec]) -> Result<Tensor> {
        if specs.len() != self.ndim() {
            return Err(Error::shape(
                "slice",
                format!("{} slices for a tensor of shape {:?}", specs.len(), self.shape()),
            ));
        }
        let st = strides(self.shape());
        let mut base = 0;
        for (d, s) in specs.iter().enumerate() {
            if s.step == 0 {
                return Err(Error::invalid("slice", "slice step must be positive"));
            }
            // checked: `start + (len - 1) * step` of huge arguments must not wrap around into range
            let last = s.len.checked_sub(1).and_then(|l| l.checked_mul(s.step)).and_then(|o| o.checked_add(s.start));
            if s.len > 0 && last.is_none_or(|last| last >= self.shape()[d]) {
                return Err(Error::range(
                    "slice",
                    format!(
                        "{} elements from {} step {} leave dimension {d} of size {}",
                        s.len,
                        s.start,
                        s.step,
                        self.shape()[d]
                    ),
                ));
            }
            base += if s.len > 0 { s.start * st[d] } else { 0 };
        }
        let shape: Vec<usize> = specs.iter().map(|s| s.len).collect();
        if shape == self.shape() {
            return self.reshape(&shape);
        }
        let out = gather("slice", self, &shape, specs.iter().zip(&st).map(|(s, &t)| s.step * t).collect(), base)?;
        Ok(record(out, &[self], || Op::Slice(specs.to_vec())))
    }

    /// `len` elements of `dim` from `start`.
    ///
    /// # Errors
    /// `OutOfRange` when the range leaves the dim.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        let mut specs: Vec<SliceSpec> = self.shape().iter().map(|&s| SliceSpec { start: 0, step: 1, len: s }).collect();
        let d = specs
            .get_mut(dim)
            .ok_or_else(|| Error::range("narrow", format!("no dim {dim} in shape {:?}", self.shape())))?;
        if start + len > d.len {
            return Err(Error::range(
                "narrow",
                format!("range {start}..{} leaves dimension {dim} of size {}", start + len, d.len),
            ));
        }
        *d = SliceSpec { start, step: 1, len };
        self.slice(&specs)
    }

    /// Concatenate along `dim`; dtypes are promoted.
    ///
    /// # Errors
    /// `InvalidArgument` for no tensors; `Shape` when ranks or other dims differ; `OutOfRange` for a bad dim.
    pub fn cat(tensors: &[&Tensor], dim: i64) -> Result<Tensor> {
        let first = tensors.first().ok_or_else(|| Error::invalid("cat", "expected a non-empty list of tensors"))?;
        let d = normalize_dim("cat", dim, first.ndim())?;
        let mut dt = first.dtype();
        let mut total: usize = 0;
        for t in tensors {
            let same = t.ndim() == first.ndim() && (0..t.ndim()).all(|i| i == d || t.shape()[i] == first.shape()[i]);
            if !same {
                return Err(Error::shape(
                    "cat",
                    format!("tensors must match except in dimension {d}: got {:?} and {:?}", first.shape(), t.shape()),
                ));
            }
            dt = DType::promote(dt, t.dtype());
            // checked: the sizes of huge empty tensors could wrap
            total = total.checked_add(t.shape()[d]).ok_or_else(|| {
                Error::invalid("cat", format!("the sizes of dimension {d} add up to more than {}", usize::MAX))
            })?;
        }
        let mut shape = first.shape().to_vec();
        shape[d] = total;
        let conv: Vec<Tensor> = tensors.iter().map(|t| converted(t, dt)).collect::<Result<_>>()?;
        let (outer, _, inner) = split_at_dim(&shape, d);
        let storage = crate::with_any!(dt, T => {
            let n = numel("cat", &shape, std::mem::size_of::<T>())?;
            let mut out = crate::storage::try_with_capacity::<T>("cat", &shape, n)?;
            let guards: Vec<_> = conv.iter().map(|t| t.storage()).collect();
            // an empty result has nothing to copy: its outer count may be huge (zeros(2**50, 0))
            for o in 0..if n == 0 { 0 } else { outer } {
                for (t, g) in conv.iter().zip(&guards) {
                    let blk = t.shape()[d] * inner;
                    out.extend_from_slice(&g.as_slice::<T>()[o * blk..(o + 1) * blk]);
                }
            }
            T::into_storage(out)
        });
        let out = Tensor::from_storage(storage, shape);
        Ok(record(out, tensors, || Op::Cat(d)))
    }

    /// Stack equal-shaped tensors along a new dim.
    ///
    /// # Errors
    /// `Shape` when shapes differ; `OutOfRange` for a bad dim.
    pub fn stack(tensors: &[&Tensor], dim: i64) -> Result<Tensor> {
        let first = tensors.first().ok_or_else(|| Error::invalid("stack", "expected a non-empty list of tensors"))?;
        if let Some(t) = tensors.iter().find(|t| t.shape() != first.shape()) {
            return Err(Error::shape(
                "stack",
                format!("stack expects each tensor to be equal size, got {:?} and {:?}", first.shape(), t.shape()),
            ));
        }
        let d = normalize_dim("stack", dim, first.ndim() + 1)?;
        let un: Vec<Tensor> = tensors.iter().map(|t| t.unsqueeze(d as i64)).collect::<Result<_>>()?;
        Tensor::cat(&un.iter().collect::<Vec<_>>(), d as i64)
    }

    /// Rows of `dim` picked by an int64 index vector (repeats allowed).
    ///
    /// # Errors
    /// `DType` for a non-int64 index; `Shape` for an index that is not 1-D; `OutOfRange` for an index outside
    /// `0..size` (negative too).
    pub fn index_select(&self, dim: i64, idx: &Tensor) -> Result<Tensor> {
        self.index_select_named("index_select", dim, idx)
    }

    pub(crate) fn index_select_named(&self, op: &'static str, dim: i64, idx: &Tensor) -> Result<Tensor> {
        if idx.dtype() != DType::I64 {
            return Err(Error::dtype(op, format!("indices must be an int64 tensor, got {}", idx.dtype())));
        }
        if idx.ndim() > 1 {
            return Err(Error::shape(op, format!("index must be 0-D or 1-D, got shape {:?}", idx.shape())));
        }
        let d = normalize_dim(op, dim, self.ndim())?;
        let size = self.shape()[d];
        let iv = idx.storage();
        let iv = iv.as_slice::<i64>();
        if let Some(&bad) = iv.iter().find(|&&i| i < 0 || i as usize >= size) {
            return Err(Error::range(op, format!("index {bad} is out of range for dimension {d} with size {size}")));
        }
        let mut shape = self.shape().to_vec();
        shape[d] = iv.len();
        let (outer, _, inner) = split_at_dim(self.shape(), d);
        let storage = crate::with_any!(self.dtype(), T => {
            let mut out = try_filled(op, &shape, numel(op, &shape, std::mem::size_of::<T>())?, T::zero())?;
            index::index_select(&mut out, self.storage().as_slice::<T>(), iv, outer, size, inner);
            T::into_storage(out)
        });
        let out = Tensor::from_storage(storage, shape);
        Ok(record(out, &[self, idx], || Op::IndexSelect(d)))
    }

    /// Keep the lower (`upper == false`) or upper triangle of the last two dims relative to diagonal `k`.
    ///
    /// # Errors
    /// `Shape` for fewer than 2 dims.
    pub fn triangle(&self, k: i64, upper: bool) -> Result<Tensor> {
        let op = if upper { "triu" } else { "tril" };
        let n = self.ndim();
        if n < 2 {
            return Err(Error::shape(
                op,
                format!("input must have at least 2 dimensions, got shape {:?}", self.shape()),
            ));
        }
        let (r, c) = (self.shape()[n - 2], self.shape()[n - 1]);
        let storage = crate::with_any!(self.dtype(), T => {
            let mut v = self.storage().as_slice::<T>().to_vec();
            index::triangle(&mut v, r, c, k, upper);
            T::into_storage(v)
        });
        let out = Tensor::from_storage(storage, self.shape().to_vec());
        Ok(record(out, &[self], || Op::Triangle { k, upper }))
    }

    /// Insert a size-1 dim at `dim` (in `-ndim-1..=ndim`).
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim.
    pub fn unsqueeze(&self, dim: i64) -> Result<Tensor> {
        let d = normalize_dim("unsqueeze", dim, self.ndim() + 1)?;
        let mut shape = self.shape().to_vec();
        shape.insert(d, 1);
        self.reshape(&shape)
    }

    /// Remove size-1 dims: those in `dims`, or all when `None`.
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim.
    pub fn squeeze(&self, dims: Option<&[i64]>) -> Result<Tensor> {
        let drop: Vec<usize> = match dims {
            Some(d) if self.ndim() == 0 => {
                for &x in d {
                    normalize_dim("squeeze", x, 1)?;
                }
                vec![]
            }
            Some(d) => crate::shape::normalize_dims("squeeze", d, self.ndim())?,
            None => (0..self.ndim()).collect(),
        };
        let shape: Vec<usize> = self
            .shape()
            .iter()
            .enumerate()
            .filter(|&(i, &s)| !(s == 1 && drop.contains(&i)))
            .map(|(_, &s)| s)
            .collect();
        self.reshape(&shape)
    }

    /// Merge dims `start..=end` into one.
    ///
    /// # Errors
    /// `OutOfRange` for bad dims; `InvalidArgument` when start > end.
    pub fn flatten(&self, start: i64, end: i64) -> Result<Tensor> {
        if self.ndim() == 0 {
            return self.reshape(&[1]);
        }
        let (s, e) = (normalize_dim("flatten", start, self.ndim())?, normalize_dim("flatten", end, self.ndim())?);
        if s > e {
            return Err(Error::invalid("flatten", format!("start_dim {start} cannot come after end_dim {end}")));
        }
        let mut shape = self.shape()[..s].to_vec();
        shape.push(self.shape()[s..=e].iter().product());
        shape.extend_from_slice(&self.shape()[e + 1..]);
        self.reshape(&shape)
    }

    /// Tile the tensor `repeats[i]` times along dim `i` (PyTorch's `repeat`; extra leading repeats add dims).
    ///
    /// # Errors
    /// `Shape` when there are fewer repeats than dims.
    pub fn repeat(&self, repeats: &[usize]) -> Result<Tensor> {
        let n = repeats.len();
        if n < self.ndim() {
            return Err(Error::shape(
                "repeat",
                format!("number of repeats ({n}) can not be smaller than the number of dimensions ({})", self.ndim()),
            ));
        }
        let mut padded = vec![1; n - self.ndim()];
        padded.extend_from_slice(self.shape());
        let mut inter = Vec::with_capacity(2 * n); // (1, s0, 1, s1, ...) expanded to (r0, s0, r1, s1, ...)
        let mut big = Vec::with_capacity(2 * n);
        for (&r, &s) in repeats.iter().zip(&padded) {
            inter.extend([1, s]);
            big.extend([r, s]);
        }
        // checked: `r * s` of huge repeats is an error, never a wrapped (small, wrong) shape
        let out =
            repeats.iter().zip(&padded).map(|(&r, &s)| r.checked_mul(s)).collect::<Option<Vec<usize>>>().ok_or_else(
                || Error::OutOfMemory {
                    op: "repeat",
                    bytes: repeats
                        .iter()
                        .zip(&padded)
                        .fold(self.dtype().size() as u128, |b, (&r, &s)| b.saturating_mul(r as u128 * s as u128)),
                    shape: repeats.iter().zip(&padded).map(|(&r, &s)| r.saturating_mul(s)).collect(),
                },
            )?;
        numel("repeat", &out, self.dtype().size())?;
        self.reshape(&inter)?.expand(&big)?.reshape(&out)
    }
}

/// The gradient of a slice: zeros of `shape` with `g` written at the sliced positions.
///
/// # Errors
/// `DType` for non-float gradients.
pub fn slice_backward(g: &Tensor, shape: &[usize], specs: &[SliceSpec]) -> Result<Tensor> {
    let st = strides(shape);
    let base: usize = specs.iter().zip(&st).map(|(s, &t)| if s.len > 0 { s.start * t } else { 0 }).sum();
    let plan = Plan::new(g.shape(), [specs.iter().zip(&st).map(|(s, &t)| s.step * t).collect()], [base]);
    let storage = crate::with_float!(g.dtype(), "slice", T => {
        let mut dx = try_filled("slice", shape, numel("slice", shape, std::mem::size_of::<T>())?, T::zero())?;
        scatter(&mut dx, &plan, g.storage().as_slice::<T>());
        T::into_storage(dx)
    });
    Ok(Tensor::from_storage(storage, shape.to_vec()))
}

/// The gradient of `index_select`: zeros of `shape` with `g`'s rows added at the indices.
///
/// # Errors
/// `DType` for non-float gradients.
pub fn index_select_backward(g: &Tensor, idx: &Tensor, shape: &[usize], dim: usize) -> Result<Tensor> {
    let (outer, size, inner) = split_at_dim(shape, dim);
    let storage = crate::with_float!(g.dtype(), "index_select", T => {
        let mut dx = try_filled("index_select", shape, numel("index_select", shape, std::mem::size_of::<T>())?, T::zero())?;
        index::index_add(&mut dx, g.storage().as_slice::<T>(), idx.storage().as_slice::<i64>(), outer, size, inner);
        T::into_storage(dx)
    });
    Ok(Tensor::from_storage(storage, shape.to_vec()))
}
