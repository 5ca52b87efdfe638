//! The `_Tensor` class: a handle to an engine [`Tensor`]. The Python `bigcore.Tensor` wraps it and adds the
//! PyTorch-shaped API; this class exposes only what Python cannot compute itself.

use super::convert::to_numpy;
use super::errors::{call_back, callback_error, detached, to_py};
use crate::autograd::hooks::{self, GradHook};
use crate::autograd::{self, Attr};
use crate::error::Error;
use crate::tensor::Tensor;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::Arc;

/// An engine tensor.
#[pyclass(name = "_Tensor", module = "bigcore._core", frozen)]
pub struct PyTensor {
    pub(crate) t: Tensor,
}

impl From<Tensor> for PyTensor {
    fn from(t: Tensor) -> Self {
        PyTensor { t }
    }
}

/// Remove the gradient hook of `handle` (from `register_post_accumulate_grad_hook`); false if already gone.
#[pyfunction]
pub fn remove_grad_hook(handle: u64) -> bool {
    hooks::remove(handle)
}

fn attr_to_py<'py>(py: Python<'py>, a: &Attr) -> PyResult<Bound<'py, PyAny>> {
    Ok(match a {
        Attr::Int(v) => v.into_pyobject(py)?.into_any(),
        Attr::Float(v) => v.into_pyobject(py)?.into_any(),
        Attr::Ints(v) => PyList::new(py, v)?.into_any(),
        Attr::Str(v) => v.into_pyobject(py)?.into_any(),
        Attr::Bool(v) => v.into_pyobject(py)?.to_owned().into_any(),
    })
}

/// `(op_name, attrs, inputs)`: one step of the trace an exporter reads.
type TraceStep<'py> = (String, Bound<'py, PyDict>, Vec<PyTensor>);

#[pymethods]
impl PyTensor {
    /// The shape as a tuple.
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.t.shape().to_vec()
    }
    /// The dtype name.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.t.dtype().name()
    }
    /// Whether gradients flow to this tensor.
    #[getter]
    fn requires_grad(&self) -> bool {
        self.t.requires_grad()
    }
    fn set_requires_grad(&self, on: bool) -> PyResult<()> {
        self.t.set_requires_grad(on).map_err(to_py)
    }
    /// The accumulated gradient, or None.
    #[getter]
    fn grad(&self) -> Option<PyTensor> {
        self.t.grad().map(PyTensor::from)
    }
    fn set_grad(&self, g: Option<PyRef<'_, PyTensor>>) -> PyResult<()> {
        self.t.set_grad(g.map(|g| g.t.clone())).map_err(to_py)
    }
    #[getter]
    fn is_leaf(&self) -> bool {
        self.t.is_leaf()
    }
    #[getter]
    fn id(&self) -> u64 {
        self.t.id()
    }
    /// The storage's version: how many in-place writes it has seen (PyTorch's `_version`).
    #[getter]
    fn version(&self) -> u64 {
        self.t.version()
    }
    fn numel(&self) -> usize {
        self.t.numel()
    }
    fn shares_storage(&self, other: PyRef<'_, PyTensor>) -> bool {
        self.t.shares_storage(&other.t)
    }
    /// A numpy copy of the elements.
    fn numpy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_numpy(py, &self.t)
    }
    /// The single element as a Python number.
    fn item<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = self.t.item().map_err(to_py)?;
        Ok(match self.t.dtype() {
            crate::DType::I64 => (self.t.to_vec::<i64>().map_err(to_py)?[0]).into_pyobject(py)?.into_any(),
            crate::DType::Bool => (v != 0.0).into_pyobject(py)?.to_owned().into_any(),
            _ => v.into_pyobject(py)?.into_any(),
        })
    }
    fn detach(&self) -> PyTensor {
        self.t.detach().into()
    }
    /// Run backward from this tensor.
    #[pyo3(signature = (gradient=None, retain_graph=false))]
    fn backward(&self, py: Python<'_>, gradient: Option<PyRef<'_, PyTensor>>, retain_graph: bool) -> PyResult<()> {
        let t = self.t.clone();
        let g = gradient.map(|g| g.t.clone());
        detached(py, "backward", move || autograd::backward(&t, g.as_ref(), retain_graph)).map_err(callback_error)
    }
    /// Call `hook()` after every backward that accumulates into this leaf's gradient; returns a handle for
    /// `remove_grad_hook`. An exception in the hook stops the backward and is raised from `backward()`.
    fn register_post_accumulate_grad_hook(&self, hook: Py<PyAny>) -> PyResult<u64> {
        let hook: GradHook = Arc::new(move |_: &Tensor| {
            call_back(&hook, || Error::autograd("backward", "a post accumulate grad hook raised an exception"))
        });
        hooks::register(&self.t, hook).map_err(to_py)
    }
    /// `(op_name, attrs, inputs)` of the op that made this tensor, or None for a leaf.
    fn trace<'py>(&self, py: Python<'py>) -> PyResult<Option<TraceStep<'py>>> {
        let node = self.t.node();
        let Some(node) = node.as_ref() else { return Ok(None) };
        let attrs = PyDict::new(py);
        for (k, v) in node.op().attrs() {
            attrs.set_item(k, attr_to_py(py, &v)?)?;
        }
        let inputs = node.inputs().iter().cloned().map(PyTensor::from).collect();
        Ok(Some((node.op().name().to_string(), attrs, inputs)))
    }
}
