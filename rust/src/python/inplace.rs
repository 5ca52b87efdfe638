//! Bindings of the in-place ops (`ops::inplace`). Each returns the engine tensor that stands for the written
//! tensor afterwards (the same one unless autograd recorded the write); the Python `Tensor` stores it.

use super::errors::detached;
use super::tensor::PyTensor;
use crate::ops::inplace;
use crate::tensor::Tensor;
use pyo3::prelude::*;

type P<'py> = PyRef<'py, PyTensor>;

fn run(py: Python<'_>, op: &str, f: impl FnOnce() -> crate::Result<Tensor> + Send) -> PyResult<PyTensor> {
    detached(py, op, f).map(PyTensor::from)
}

#[pyfunction]
fn add_(py: Python<'_>, x: P<'_>, other: P<'_>, alpha: f64) -> PyResult<PyTensor> {
    let (x, o) = (x.t.clone(), other.t.clone());
    run(py, "add_", move || inplace::add_(&x, &o, alpha))
}

#[pyfunction]
fn sub_(py: Python<'_>, x: P<'_>, other: P<'_>, alpha: f64) -> PyResult<PyTensor> {
    let (x, o) = (x.t.clone(), other.t.clone());
    run(py, "sub_", move || inplace::sub_(&x, &o, alpha))
}

#[pyfunction]
fn mul_(py: Python<'_>, x: P<'_>, other: P<'_>) -> PyResult<PyTensor> {
    let (x, o) = (x.t.clone(), other.t.clone());
    run(py, "mul_", move || inplace::mul_(&x, &o))
}

#[pyfunction]
fn div_(py: Python<'_>, x: P<'_>, other: P<'_>) -> PyResult<PyTensor> {
    let (x, o) = (x.t.clone(), other.t.clone());
    run(py, "div_", move || inplace::div_(&x, &o))
}

#[pyfunction]
#[pyo3(signature = (x, min=None, max=None))]
fn clamp_(py: Python<'_>, x: P<'_>, min: Option<f64>, max: Option<f64>) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "clamp_", move || inplace::clamp_(&x, min, max))
}

#[pyfunction]
fn fill_(py: Python<'_>, x: P<'_>, value: P<'_>) -> PyResult<PyTensor> {
    let (x, v) = (x.t.clone(), value.t.clone());
    run(py, "fill_", move || inplace::fill_(&x, &v))
}

#[pyfunction]
fn zero_(py: Python<'_>, x: P<'_>) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "zero_", move || inplace::zero_(&x))
}

#[pyfunction]
fn copy_(py: Python<'_>, x: P<'_>, src: P<'_>) -> PyResult<PyTensor> {
    let (x, s) = (x.t.clone(), src.t.clone());
    run(py, "copy_", move || inplace::copy_(&x, &s))
}

#[pyfunction]
fn masked_fill_(py: Python<'_>, x: P<'_>, mask: P<'_>, value: P<'_>) -> PyResult<PyTensor> {
    let (x, m, v) = (x.t.clone(), mask.t.clone(), value.t.clone());
    run(py, "masked_fill_", move || inplace::masked_fill_(&x, &m, &v))
}

#[pyfunction]
fn scatter_(py: Python<'_>, x: P<'_>, dim: i64, index: P<'_>, src: P<'_>) -> PyResult<PyTensor> {
    let (x, i, s) = (x.t.clone(), index.t.clone(), src.t.clone());
    run(py, "scatter_", move || inplace::scatter_(&x, dim, &i, &s))
}

#[pyfunction]
fn scatter_add_(py: Python<'_>, x: P<'_>, dim: i64, index: P<'_>, src: P<'_>) -> PyResult<PyTensor> {
    let (x, i, s) = (x.t.clone(), index.t.clone(), src.t.clone());
    run(py, "scatter_add_", move || inplace::scatter_add_(&x, dim, &i, &s))
}

#[pyfunction]
fn put_(py: Python<'_>, x: P<'_>, index: P<'_>, source: P<'_>, accumulate: bool) -> PyResult<PyTensor> {
    let (x, i, s) = (x.t.clone(), index.t.clone(), source.t.clone());
    run(py, "put_", move || inplace::put_(&x, &i, &s, accumulate))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => { $( m.add_function(wrap_pyfunction!($f, m)?)?; )* };
    }
    add!(add_, sub_, mul_, div_, clamp_, fill_, zero_, copy_, masked_fill_, scatter_, scatter_add_, put_);
    Ok(())
}
