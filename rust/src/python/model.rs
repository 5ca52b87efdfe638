//! Bindings of the fused whole-model paths (`crate::model`): the GPT's arena cache and its forward op.

use super::errors::detached;
use super::tensor::PyTensor;
use crate::model::gpt_op::{self, GptCache, GptConfig};
use crate::tensor::Tensor;
use pyo3::prelude::*;
use std::sync::Arc;

type P<'py> = PyRef<'py, PyTensor>;

/// The activation arena a fused GPT reuses across steps of one shape (one per model).
#[pyclass(name = "_GptCache", module = "bigcore._core", frozen)]
pub struct PyGptCache {
    cache: Arc<GptCache>,
}

#[pymethods]
impl PyGptCache {
    #[new]
    fn new() -> Self {
        PyGptCache { cache: GptCache::new() }
    }

    /// Release the idle arena's memory.
    fn clear(&self) {
        self.cache.clear();
    }

    /// A copy is a fresh, empty cache: an arena belongs to one model.
    fn __copy__(&self) -> Self {
        Self::new()
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        Self::new()
    }

    /// Pickled as an empty cache.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, ())> {
        Ok((slf.get_type().into_any(), ()))
    }
}

/// The fused GPT forward: logits (B, T, V) of int64 ids (B, T); `params` in nanoGPT's order without the head;
/// `dropout` the probability for this call (0 in evaluation).
#[pyfunction]
#[pyo3(signature = (idx, params, n_layer, n_head, bias, cache, dropout=0.0))]
#[allow(clippy::too_many_arguments)]
fn gpt(
    py: Python<'_>,
    idx: P<'_>,
    params: Vec<P<'_>>,
    n_layer: usize,
    n_head: usize,
    bias: bool,
    cache: &PyGptCache,
    dropout: f64,
) -> PyResult<PyTensor> {
    let idx = idx.t.clone();
    let params: Vec<Tensor> = params.iter().map(|p| p.t.clone()).collect();
    let cache = cache.cache.clone();
    let cfg = GptConfig { n_layer, n_head, bias, dropout };
    detached(py, "gpt", move || gpt_op::gpt(&idx, &params, cfg, &cache)).map(PyTensor::from)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGptCache>()?;
    m.add_function(wrap_pyfunction!(gpt, m)?)?;
    Ok(())
}
