//! Bindings of indexing along a dim with index tensors (`ops::gather`), sorting (`ops::sort`) and running sums
//! (`ops::scan`): `gather`, `scatter`, `scatter_add`, `put`, `one_hot`, `sort`, `topk`, `cumsum`.

use super::errors::detached;
use super::tensor::PyTensor;
use crate::tensor::Tensor;
use pyo3::prelude::*;

type P<'py> = PyRef<'py, PyTensor>;

fn run(py: Python<'_>, op: &str, f: impl FnOnce() -> crate::Result<Tensor> + Send) -> PyResult<PyTensor> {
    detached(py, op, f).map(PyTensor::from)
}

fn pair(
    py: Python<'_>,
    op: &str,
    f: impl FnOnce() -> crate::Result<(Tensor, Tensor)> + Send,
) -> PyResult<(PyTensor, PyTensor)> {
    detached(py, op, f).map(|(a, b)| (a.into(), b.into()))
}

#[pyfunction]
fn gather(py: Python<'_>, x: P<'_>, dim: i64, index: P<'_>) -> PyResult<PyTensor> {
    let (x, i) = (x.t.clone(), index.t.clone());
    run(py, "gather", move || x.gather(dim, &i))
}

#[pyfunction]
fn scatter(py: Python<'_>, x: P<'_>, dim: i64, index: P<'_>, src: P<'_>) -> PyResult<PyTensor> {
    let (x, i, s) = (x.t.clone(), index.t.clone(), src.t.clone());
    run(py, "scatter", move || x.scatter(dim, &i, &s))
}

#[pyfunction]
fn scatter_add(py: Python<'_>, x: P<'_>, dim: i64, index: P<'_>, src: P<'_>) -> PyResult<PyTensor> {
    let (x, i, s) = (x.t.clone(), index.t.clone(), src.t.clone());
    run(py, "scatter_add", move || x.scatter_add(dim, &i, &s))
}

#[pyfunction]
fn put(py: Python<'_>, x: P<'_>, index: P<'_>, source: P<'_>, accumulate: bool) -> PyResult<PyTensor> {
    let (x, i, s) = (x.t.clone(), index.t.clone(), source.t.clone());
    run(py, "put", move || x.put(&i, &s, accumulate))
}

#[pyfunction]
fn one_hot(py: Python<'_>, x: P<'_>, num_classes: i64) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "one_hot", move || x.one_hot(num_classes))
}

#[pyfunction]
fn sort(py: Python<'_>, x: P<'_>, dim: i64, descending: bool, stable: bool) -> PyResult<(PyTensor, PyTensor)> {
    let x = x.t.clone();
    pair(py, "sort", move || x.sort(dim, descending, stable))
}

#[pyfunction]
fn topk(py: Python<'_>, x: P<'_>, k: i64, dim: i64, largest: bool, sorted: bool) -> PyResult<(PyTensor, PyTensor)> {
    let x = x.t.clone();
    pair(py, "topk", move || x.topk(k, dim, largest, sorted))
}

#[pyfunction]
fn cumsum(py: Python<'_>, x: P<'_>, dim: i64) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "cumsum", move || x.cumsum(dim))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => { $( m.add_function(wrap_pyfunction!($f, m)?)?; )* };
    }
    add!(gather, scatter, scatter_add, put, one_hot, sort, topk, cumsum);
    Ok(())
}
