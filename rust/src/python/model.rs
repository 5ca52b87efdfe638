//! Bindings of the fused whole-model paths (`crate::model`): the GPT's arena cache, its forward op, its
//! key/value cache for generation, and the next-token sampler.

use super::errors::detached;
use super::random::{chosen, PyGenerator};
use super::tensor::PyTensor;
use crate::dtype::DType;
use crate::error::Error;
use crate::kernels::sample::{sample_row, Sampling};
use crate::model::gpt_op::{self, GptCache, GptConfig, GptKv};
use crate::tensor::Tensor;
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

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
    m.add_class::<PyGptKv>()?;
    m.add_function(wrap_pyfunction!(gpt, m)?)?;
    m.add_function(wrap_pyfunction!(sample_next, m)?)?;
    Ok(())
}

/// A model's key/value cache for generation (see `crate::model::gpt_op::GptKv`).
#[pyclass(name = "_GptKv", module = "bigcore._core", frozen)]
pub struct PyGptKv {
    kv: Mutex<GptKv>,
}

fn lock(m: &Mutex<GptKv>) -> std::sync::MutexGuard<'_, GptKv> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[pymethods]
impl PyGptKv {
    #[new]
    fn new(
        py: Python<'_>,
        params: Vec<P<'_>>,
        n_layer: usize,
        n_head: usize,
        bias: bool,
        batch: usize,
    ) -> PyResult<Self> {
        let params: Vec<Tensor> = params.iter().map(|p| p.t.clone()).collect();
        let cfg = GptConfig { n_layer, n_head, bias, dropout: 0.0 };
        let kv = detached(py, "gpt", move || GptKv::new(&params, cfg, batch))?;
        Ok(PyGptKv { kv: Mutex::new(kv) })
    }

    /// Feed new ids (B, Tn); the logits of each row's last one (B, V).
    fn step(&self, py: Python<'_>, idx: P<'_>) -> PyResult<PyTensor> {
        let idx = idx.t.clone();
        detached(py, "gpt", || lock(&self.kv).step(&idx)).map(PyTensor::from)
    }

    /// Forget the cached tokens.
    fn clear(&self) {
        lock(&self.kv).clear();
    }

    fn __len__(&self) -> usize {
        lock(&self.kv).len()
    }
}

/// The next token of each row of `logits` (B, V): temperature, top-k, top-p, then a draw from the library's
/// generator (or `generator`), or the arg-max (`do_sample=False` or temperature 0). Returns (B,) int64.
#[pyfunction]
#[pyo3(signature = (logits, temperature=1.0, top_k=None, top_p=None, do_sample=true, generator=None))]
fn sample_next(
    py: Python<'_>,
    logits: P<'_>,
    temperature: f64,
    top_k: Option<usize>,
    top_p: Option<f64>,
    do_sample: bool,
    generator: Option<PyRef<'_, PyGenerator>>,
) -> PyResult<PyTensor> {
    let (x, g) = (logits.t.clone(), chosen(generator));
    let s = Sampling { temperature, top_k, top_p, do_sample };
    detached(py, "sample", move || {
        if x.ndim() != 2 || !x.dtype().is_float() {
            return Err(Error::shape(
                "sample",
                format!("logits must be float (B, V), got {} {:?}", x.dtype(), x.shape()),
            ));
        }
        if temperature.is_nan() || temperature < 0.0 {
            return Err(Error::invalid("sample", format!("temperature must be non-negative, got {temperature}")));
        }
        if top_k == Some(0) {
            return Err(Error::invalid("sample", "top_k must be at least 1, got 0"));
        }
        if let Some(p) = top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(Error::invalid("sample", format!("top_p must be in (0, 1], got {p}")));
        }
        let (b, v) = (x.shape()[0], x.shape()[1]);
        let rows = x.to_dtype(DType::F64)?.to_vec::<f64>()?;
        let ids: Vec<i64> = g.with(|r| {
            (0..b).map(|i| if v == 0 { 0 } else { sample_row(&rows[i * v..(i + 1) * v], &s, r) as i64 }).collect()
        });
        Tensor::from_vec(ids, &[b])
    })
    .map(PyTensor::from)
}
