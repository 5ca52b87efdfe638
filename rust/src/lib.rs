//! # bigcore
//!
//! The engine of bigcore: tensors (float32 fast path, float64 for exact checks, int64 indices, bool masks),
//! reverse-mode autograd that runs the whole backward pass in Rust, and the kernels under them (packed SIMD
//! GEMM with run-time dispatch, softmax, layer norm, cross-entropy, ...), multithreaded on one pool.
//!
//! Without the `python` feature the crate is pure Rust: `cargo test` needs no interpreter and a Rust program can
//! embed it.
//!
//! ```
//! use bigcore::{Tensor, ops};
//!
//! // y = sum(x * x); dy/dx = 2x
//! let x = Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3]).unwrap();
//! x.set_requires_grad(true).unwrap();
//! let y = x.mul(&x).unwrap().sum(None, false).unwrap();
//! bigcore::autograd::backward(&y, None, false).unwrap();
//! assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![2.0, -4.0, 6.0]);
//!
//! let w = ops::randn(&[4, 3], bigcore::DType::F32).unwrap();
//! let h = ops::linalg::linear(&x.to_dtype(bigcore::DType::F32).unwrap(), &w, None).unwrap();
//! assert_eq!(h.shape(), &[4]);
//! ```

pub mod autograd;
pub mod dtype;
pub mod error;
pub mod kernels;
pub mod model;
pub mod ops;
pub mod optim;
pub mod parallel;
pub mod random;
pub mod recycle;
pub mod shape;
pub mod simd;
pub mod storage;
pub mod tensor;

#[cfg(feature = "python")]
mod python;

pub use dtype::{DType, Element, Float};
pub use error::{Error, Result};
pub use tensor::Tensor;
