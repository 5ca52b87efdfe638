//! Scalar activation functions shared by the elementwise ops and the fused kernels (LSTM gates).

use crate::dtype::Float;

/// `1 / (1 + e^-x)`, computed without overflow for large negative `x`.
#[inline(always)]
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}
