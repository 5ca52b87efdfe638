//! Tensors packed into and unpacked from one flat numpy buffer, for data parallelism's gradient buckets: the
//! buffer is allocated once and reused every step, so no step pays for fresh pages (a fresh 100 MB numpy array
//! from `Tensor.numpy()` costs ~0.3 s of page faults on a VM; the copy itself ~15 ms).

use super::errors::to_py;
use super::tensor::PyTensor;
use crate::dtype::{DType, Element};
use crate::error::Error;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;

type P<'py> = PyRef<'py, PyTensor>;

/// The common dtype of `tensors`, and that the buffer is a 1-D array of it holding exactly their elements.
fn check(op: &'static str, tensors: &[P<'_>], buffer: &Bound<'_, PyAny>) -> PyResult<DType> {
    let Some(first) = tensors.first() else {
        return Err(to_py(Error::invalid(op, "no tensors")));
    };
    let dt = first.t.dtype();
    if let Some(other) = tensors.iter().find(|t| t.t.dtype() != dt) {
        return Err(to_py(Error::dtype(op, format!("tensors of {dt} and {} in one buffer", other.t.dtype()))));
    }
    let n: usize = tensors.iter().map(|t| t.t.numel()).sum();
    let len = buffer.len().unwrap_or(usize::MAX);
    if len != n {
        return Err(to_py(Error::shape(op, format!("the buffer holds {len} elements, the tensors {n}"))));
    }
    Ok(dt)
}

fn typed<'a, 'py, T: numpy::Element>(
    op: &'static str,
    b: &'a Bound<'py, PyAny>,
) -> PyResult<&'a Bound<'py, PyArray1<T>>> {
    b.cast::<PyArray1<T>>().map_err(|_| {
        to_py(Error::dtype(op, format!("the buffer must be a 1-D numpy array of {}", std::any::type_name::<T>())))
    })
}

fn pack_t<T: numpy::Element + Element>(tensors: &[P<'_>], buffer: &Bound<'_, PyAny>) -> PyResult<()> {
    let arr = typed::<T>("pack", buffer)?;
    let mut rw = arr.try_readwrite().map_err(|e| to_py(Error::invalid("pack", format!("the buffer: {e}"))))?;
    let out = rw.as_slice_mut().map_err(|_| to_py(Error::invalid("pack", "the buffer must be contiguous")))?;
    let mut at = 0;
    for t in tensors {
        let s = t.t.storage();
        let src = s.as_slice::<T>();
        out[at..at + src.len()].copy_from_slice(src);
        at += src.len();
    }
    Ok(())
}

fn unpack_t<T: numpy::Element + Element>(buffer: &Bound<'_, PyAny>, tensors: &[P<'_>], scale: f64) -> PyResult<()> {
    let arr = typed::<T>("unpack", buffer)?;
    let ro = arr.try_readonly().map_err(|e| to_py(Error::invalid("unpack", format!("the buffer: {e}"))))?;
    let src = ro.as_slice().map_err(|_| to_py(Error::invalid("unpack", "the buffer must be contiguous")))?;
    let mut at = 0;
    for t in tensors {
        let mut s = t.t.storage_mut();
        let dst = s.as_mut_slice::<T>();
        let part = &src[at..at + dst.len()];
        if scale == 1.0 {
            dst.copy_from_slice(part);
        } else {
            for (d, &v) in dst.iter_mut().zip(part) {
                *d = T::from_f64(v.to_f64() * scale);
            }
        }
        at += dst.len();
    }
    Ok(())
}

/// Copy the elements of `tensors` one after another into `buffer`, a 1-D numpy array of their dtype holding
/// exactly as many elements.
#[pyfunction]
fn pack(tensors: Vec<P<'_>>, buffer: &Bound<'_, PyAny>) -> PyResult<()> {
    match check("pack", &tensors, buffer)? {
        DType::F32 => pack_t::<f32>(&tensors, buffer),
        DType::F64 => pack_t::<f64>(&tensors, buffer),
        DType::I64 => pack_t::<i64>(&tensors, buffer),
        DType::Bool => Err(to_py(Error::dtype("pack", "bool tensors are not packed"))),
    }
}

/// Write consecutive slices of `buffer` times `scale` into `tensors`, in place (their versions move on).
#[pyfunction]
#[pyo3(signature = (buffer, tensors, scale=1.0))]
fn unpack(buffer: &Bound<'_, PyAny>, tensors: Vec<P<'_>>, scale: f64) -> PyResult<()> {
    match check("unpack", &tensors, buffer)? {
        DType::F32 => unpack_t::<f32>(buffer, &tensors, scale),
        DType::F64 => unpack_t::<f64>(buffer, &tensors, scale),
        DType::I64 if scale == 1.0 => unpack_t::<i64>(buffer, &tensors, scale),
        DType::I64 => Err(to_py(Error::dtype("unpack", "int64 tensors take no scale"))),
        DType::Bool => Err(to_py(Error::dtype("unpack", "bool tensors are not unpacked"))),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pack, m)?)?;
    m.add_function(wrap_pyfunction!(unpack, m)?)?;
    Ok(())
}
