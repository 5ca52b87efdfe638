//! Differentiable operations, by family. Each computes with kernels, records its [`Op`](crate::autograd::Op)
//! on the output, and returns the tensor. Methods on [`Tensor`] follow PyTorch's names.

pub mod attention;
pub mod creation;
pub mod elementwise;
pub mod gather;
pub mod inplace;
pub mod linalg;
pub mod movement;
pub mod multinomial;
pub mod nn;
pub mod recurrent;
pub mod reduce;
pub mod scan;
pub mod sort;

pub use creation::{arange, full, rand, randint, randn, zeros};
pub use elementwise::{pow_base_grad, pow_exponent_grad, unary_backward, Cmp};
pub use multinomial::multinomial;

use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::Tensor;

/// A 0-d tensor holding `v` in `like`'s dtype (float32 if `like` is not float).
pub fn scalar_like(v: f64, like: &Tensor) -> Result<Tensor> {
    let dt = if like.dtype().is_float() { like.dtype() } else { DType::F32 };
    full(&[], v, dt)
}

/// `t` converted to `dt` without recording (the op that uses it records the original).
pub(crate) fn converted(t: &Tensor, dt: DType) -> Result<Tensor> {
    if t.dtype() == dt {
        return Ok(t.clone());
    }
    let _g = crate::autograd::NoGradGuard::new();
    t.to_dtype(dt)
}
