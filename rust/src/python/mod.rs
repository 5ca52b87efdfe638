//! The Python extension module `bigcore._core`: the only place pyo3 and numpy appear.
//!
//! `tensor.rs` holds the `_Tensor` class, `functions.rs` the op functions, `convert.rs` numpy in and out,
//! `optim.rs` the fused optimizer steps, `model.rs` the fused
//! whole-model paths, `index_ops.rs` gather/scatter/sort/topk/cumsum, `inplace.rs` the `_` ops, `random.rs` the
//! generators and sampling,
//! `errors.rs` the one mapping from [`crate::Error`] to Python exceptions.

mod buckets;
mod convert;
mod errors;
mod functions;
mod index_ops;
mod inplace;
mod model;
mod optim;
mod random;
mod tensor;

use pyo3::prelude::*;

/// Measured here: with glibc's allocator a 256x256 matmul spent half its time in page faults (126 per call:
/// its output and packing buffer freshly mapped each time); mimalloc reuses the freed pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub(crate) use tensor::PyTensor;

/// The compiled core of bigcore. Use the `bigcore` package, not this module.
#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MIN_PARALLEL", crate::parallel::MIN_PARALLEL)?;
    m.add_class::<PyTensor>()?;
    m.add_function(wrap_pyfunction!(tensor::remove_grad_hook, m)?)?;
    functions::register(m)?;
    convert::register(m)?;
    optim::register(m)?;
    model::register(m)?;
    index_ops::register(m)?;
    inplace::register(m)?;
    random::register(m)?;
    buckets::register(m)?;
    Ok(())
}
