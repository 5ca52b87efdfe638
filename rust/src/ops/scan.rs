//! Running sums: `cumsum` along a dim and its backward (`kernels::scan`). Bool and int64 sum to int64, as PyTorch.

use crate::autograd::{record, Op};
use crate::dtype::{DType, Element};
use crate::error::Result;
use crate::kernels::scan::{cumsum_backward as k_backward, cumsum_forward as k_forward, Cumulative};
use crate::ops::converted;
use crate::shape::{normalize_dim, split_at_dim};
use crate::storage::try_filled;
use crate::tensor::Tensor;

fn cumsum_t<T: Cumulative>(x: &Tensor, dim: usize) -> Result<Tensor> {
    let shape = if x.ndim() == 0 { vec![1] } else { x.shape().to_vec() };
    let (outer, r, inner) = split_at_dim(&shape, dim);
    let mut out = try_filled("cumsum", x.shape(), x.numel(), T::zero())?;
    k_forward(&mut out, x.storage().as_slice::<T>(), outer, r, inner);
    Ok(Tensor::from_storage(T::into_storage(out), x.shape().to_vec()))
}

impl Tensor {
    /// `out[..., j, ...] = sum of self[..., :j+1, ...]` along `dim`; bool and int64 give int64.
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim.
    pub fn cumsum(&self, dim: i64) -> Result<Tensor> {
        let d = normalize_dim("cumsum", dim, self.ndim().max(1))?;
        let out = match self.dtype() {
            DType::F32 => cumsum_t::<f32>(self, d)?,
            DType::F64 => cumsum_t::<f64>(self, d)?,
            _ => cumsum_t::<i64>(&converted(self, DType::I64)?, d)?,
        };
        Ok(record(out, &[self], || Op::Cumsum(d)))
    }
}

/// The gradient of `cumsum` along `dim`: the running sum of `g` from the end.
///
/// # Errors
/// `DType` for non-float gradients.
pub fn cumsum_backward(g: &Tensor, dim: usize) -> Result<Tensor> {
    let shape = if g.ndim() == 0 { vec![1] } else { g.shape().to_vec() };
    let (outer, r, inner) = split_at_dim(&shape, dim);
    let storage = crate::with_float!(g.dtype(), "cumsum", T => {
        let mut dx = try_filled("cumsum", g.shape(), g.numel(), T::zero())?;
        k_backward(&mut dx, g.storage().as_slice::<T>(), outer, r, inner);
        T::into_storage(dx)
    });
    Ok(Tensor::from_storage(storage, g.shape().to_vec()))
}
