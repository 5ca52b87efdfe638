//! numpy in and out: one copy each way. Any numpy layout comes in (non-contiguous, Fortran, negative strides);
//! a fresh C-contiguous array goes out.

use super::errors::{detached, to_py};
use super::tensor::PyTensor;
use crate::dtype::DType;
use crate::error::Error;
use crate::tensor::Tensor;
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

fn copy_in<T: numpy::Element + crate::Element>(a: &Bound<'_, PyArrayDyn<T>>) -> PyResult<Tensor> {
    let r: PyReadonlyArrayDyn<'_, T> = a.readonly();
    let shape = r.shape().to_vec();
    // `as_slice` also accepts Fortran-contiguous arrays (memory order != logical order): memcpy only C order
    // allocated fallibly: an impossible size (a broadcast view of terabytes) is a MemoryError, not an abort
    let mut data: Vec<T> = crate::storage::try_with_capacity("tensor", &shape, r.len()).map_err(to_py)?;
    match r.as_slice() {
        Ok(s) if r.is_c_contiguous() => data.extend_from_slice(s),
        _ => data.extend(r.as_array().iter().copied()),
    }
    Tensor::from_vec(data, &shape).map_err(to_py)
}

/// A tensor copied from a numpy array of dtype float32, float64, int64 or bool.
#[pyfunction]
fn from_numpy(a: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    if let Ok(x) = a.cast::<PyArrayDyn<f32>>() {
        return copy_in(x).map(Into::into);
    }
    if let Ok(x) = a.cast::<PyArrayDyn<f64>>() {
        return copy_in(x).map(Into::into);
    }
    if let Ok(x) = a.cast::<PyArrayDyn<i64>>() {
        return copy_in(x).map(Into::into);
    }
    if let Ok(x) = a.cast::<PyArrayDyn<bool>>() {
        return copy_in(x).map(Into::into);
    }
    let dt = a.getattr("dtype").map(|d| d.to_string()).unwrap_or_else(|_| a.get_type().to_string());
    Err(to_py(Error::dtype("tensor", format!("cannot make a tensor from a numpy array of dtype {dt}"))))
}

fn out<'py, T: numpy::Element + crate::Element>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    // the copy (and the page faults of a fresh buffer, the larger cost for big tensors) runs without the GIL
    let v = detached(py, "numpy", || t.to_vec::<T>())?;
    Ok(PyArray1::from_vec(py, v).reshape(t.shape())?.into_any())
}

/// A numpy copy of a tensor.
pub fn to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    match t.dtype() {
        DType::F32 => out::<f32>(py, t),
        DType::F64 => out::<f64>(py, t),
        DType::I64 => out::<i64>(py, t),
        DType::Bool => out::<bool>(py, t),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(from_numpy, m)?)?;
    Ok(())
}
