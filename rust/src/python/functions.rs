//! Module-level functions of `bigcore._core`: one thin wrapper per engine op. Each clones the tensor handles it
//! needs, releases the GIL, runs the op, and maps errors.

use super::errors::{detached, to_py};
use super::random::chosen;
use super::tensor::PyTensor;
use crate::autograd::{Reduction, SliceSpec, Unary};
use crate::dtype::DType;
use crate::error::Error;
use crate::kernels::gelu::Gelu;
use crate::kernels::lstm::Direction;
use crate::ops::{self, creation::shape_from_i64, linalg, nn, Cmp};
use crate::tensor::Tensor;
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

type P<'py> = PyRef<'py, PyTensor>;
type G<'py> = PyRef<'py, super::random::PyGenerator>;

fn run(py: Python<'_>, op: &str, f: impl FnOnce() -> crate::Result<Tensor> + Send) -> PyResult<PyTensor> {
    detached(py, op, f).map(PyTensor::from)
}

pub(crate) fn dtype(name: &str) -> PyResult<DType> {
    match name {
        "float32" => Ok(DType::F32),
        "float64" => Ok(DType::F64),
        "int64" => Ok(DType::I64),
        "bool" => Ok(DType::Bool),
        other => Err(to_py(Error::dtype("dtype", format!("unsupported dtype {other:?}")))),
    }
}

#[pyfunction]
#[pyo3(signature = (x, kind, min=None, max=None))]
fn unary(py: Python<'_>, x: P<'_>, kind: &str, min: Option<f64>, max: Option<f64>) -> PyResult<PyTensor> {
    let k = match kind {
        "neg" => Unary::Neg,
        "exp" => Unary::Exp,
        "log" => Unary::Log,
        "sqrt" => Unary::Sqrt,
        "tanh" => Unary::Tanh,
        "sigmoid" => Unary::Sigmoid,
        "relu" => Unary::Relu,
        "abs" => Unary::Abs,
        "gelu" => Unary::Gelu(Gelu::None),
        "gelu_tanh" => Unary::Gelu(Gelu::Tanh),
        "clamp" => Unary::Clamp { min, max },
        other => return Err(to_py(Error::invalid("unary", format!("unknown function {other:?}")))),
    };
    let x = x.t.clone();
    run(py, kind, move || x.unary(k))
}

#[pyfunction]
fn binary(py: Python<'_>, a: P<'_>, b: P<'_>, kind: &str) -> PyResult<PyTensor> {
    let (a, b) = (a.t.clone(), b.t.clone());
    let f = match kind {
        "add" => Tensor::add,
        "sub" => Tensor::sub,
        "mul" => Tensor::mul,
        "div" => Tensor::div,
        "pow" => Tensor::pow,
        other => return Err(to_py(Error::invalid("binary", format!("unknown operator {other:?}")))),
    };
    run(py, kind, move || f(&a, &b))
}

#[pyfunction]
fn compare(py: Python<'_>, a: P<'_>, b: P<'_>, kind: &str) -> PyResult<PyTensor> {
    let c = match kind {
        "eq" => Cmp::Eq,
        "ne" => Cmp::Ne,
        "lt" => Cmp::Lt,
        "le" => Cmp::Le,
        "gt" => Cmp::Gt,
        "ge" => Cmp::Ge,
        other => return Err(to_py(Error::invalid("compare", format!("unknown comparison {other:?}")))),
    };
    let (a, b) = (a.t.clone(), b.t.clone());
    run(py, kind, move || a.compare(&b, c))
}

#[pyfunction]
fn where_(py: Python<'_>, cond: P<'_>, a: P<'_>, b: P<'_>) -> PyResult<PyTensor> {
    let (c, a, b) = (cond.t.clone(), a.t.clone(), b.t.clone());
    run(py, "where", move || Tensor::where_(&c, &a, &b))
}

#[pyfunction]
fn to_dtype(py: Python<'_>, x: P<'_>, dt: &str) -> PyResult<PyTensor> {
    let (x, dt) = (x.t.clone(), dtype(dt)?);
    run(py, "to", move || x.to_dtype(dt))
}

#[pyfunction]
#[pyo3(signature = (x, dims=None, keepdim=false))]
fn sum(py: Python<'_>, x: P<'_>, dims: Option<Vec<i64>>, keepdim: bool) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "sum", move || x.sum(dims.as_deref(), keepdim))
}

#[pyfunction]
#[pyo3(signature = (x, dims=None, keepdim=false))]
fn mean(py: Python<'_>, x: P<'_>, dims: Option<Vec<i64>>, keepdim: bool) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "mean", move || x.mean(dims.as_deref(), keepdim))
}

#[pyfunction]
fn max_dim(py: Python<'_>, x: P<'_>, dim: i64, keepdim: bool, min: bool) -> PyResult<(PyTensor, PyTensor)> {
    let x = x.t.clone();
    let (v, i) = detached(py, "max", move || x.max_dim(dim, keepdim, min))?;
    Ok((v.into(), i.into()))
}

#[pyfunction]
#[pyo3(signature = (x, dims, keepdim, min))]
fn amax(py: Python<'_>, x: P<'_>, dims: Option<Vec<i64>>, keepdim: bool, min: bool) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "amax", move || x.amax(dims.as_deref(), keepdim, min))
}

#[pyfunction]
#[pyo3(signature = (x, dim, keepdim, min))]
fn argmax(py: Python<'_>, x: P<'_>, dim: Option<i64>, keepdim: bool, min: bool) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "argmax", move || x.argmax(dim, keepdim, min))
}

#[pyfunction]
fn reshape(py: Python<'_>, x: P<'_>, shape: Vec<i64>) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "reshape", move || x.reshape_infer(&shape))
}

#[pyfunction]
fn permute(py: Python<'_>, x: P<'_>, dims: Vec<i64>) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "permute", move || {
        if dims.len() != x.ndim() {
            return Err(Error::shape(
                "permute",
                format!("{dims:?} has {} dims but the tensor has shape {:?}", dims.len(), x.shape()),
            ));
        }
        let perm = dims
            .iter()
            .map(|&d| crate::shape::normalize_dim("permute", d, x.ndim()))
            .collect::<crate::Result<Vec<_>>>()?;
        x.permute(&perm)
    })
}

#[pyfunction]
fn transpose(py: Python<'_>, x: P<'_>, d0: i64, d1: i64) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "transpose", move || x.transpose(d0, d1))
}

#[pyfunction]
fn expand(py: Python<'_>, x: P<'_>, shape: Vec<i64>) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "expand", move || x.expand_infer(&shape))
}

#[pyfunction]
fn slice(py: Python<'_>, x: P<'_>, specs: Vec<(usize, usize, usize)>) -> PyResult<PyTensor> {
    let x = x.t.clone();
    let specs: Vec<SliceSpec> = specs.into_iter().map(|(start, step, len)| SliceSpec { start, step, len }).collect();
    run(py, "slice", move || x.slice(&specs))
}

#[pyfunction]
fn cat(py: Python<'_>, xs: Vec<P<'_>>, dim: i64) -> PyResult<PyTensor> {
    let xs: Vec<Tensor> = xs.iter().map(|x| x.t.clone()).collect();
    run(py, "cat", move || Tensor::cat(&xs.iter().collect::<Vec<_>>(), dim))
}

#[pyfunction]
fn stack(py: Python<'_>, xs: Vec<P<'_>>, dim: i64) -> PyResult<PyTensor> {
    let xs: Vec<Tensor> = xs.iter().map(|x| x.t.clone()).collect();
    run(py, "stack", move || Tensor::stack(&xs.iter().collect::<Vec<_>>(), dim))
}

#[pyfunction]
fn index_select(py: Python<'_>, x: P<'_>, dim: i64, idx: P<'_>) -> PyResult<PyTensor> {
    let (x, i) = (x.t.clone(), idx.t.clone());
    run(py, "index_select", move || x.index_select(dim, &i))
}

#[pyfunction]
fn triangle(py: Python<'_>, x: P<'_>, k: i64, upper: bool) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "tril", move || x.triangle(k, upper))
}

#[pyfunction]
fn unsqueeze(py: Python<'_>, x: P<'_>, dim: i64) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "unsqueeze", move || x.unsqueeze(dim))
}

#[pyfunction]
#[pyo3(signature = (x, dims=None))]
fn squeeze(py: Python<'_>, x: P<'_>, dims: Option<Vec<i64>>) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "squeeze", move || x.squeeze(dims.as_deref()))
}

#[pyfunction]
fn flatten(py: Python<'_>, x: P<'_>, start: i64, end: i64) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "flatten", move || x.flatten(start, end))
}

#[pyfunction]
fn repeat(py: Python<'_>, x: P<'_>, repeats: Vec<i64>) -> PyResult<PyTensor> {
    let x = x.t.clone();
    let r = shape_from_i64("repeat", &repeats).map_err(to_py)?;
    run(py, "repeat", move || x.repeat(&r))
}

#[pyfunction]
fn matmul(py: Python<'_>, a: P<'_>, b: P<'_>) -> PyResult<PyTensor> {
    let (a, b) = (a.t.clone(), b.t.clone());
    run(py, "matmul", move || linalg::matmul(&a, &b))
}

#[pyfunction]
#[pyo3(signature = (x, w, b=None))]
fn linear(py: Python<'_>, x: P<'_>, w: P<'_>, b: Option<P<'_>>) -> PyResult<PyTensor> {
    let (x, w, b) = (x.t.clone(), w.t.clone(), b.map(|b| b.t.clone()));
    run(py, "linear", move || linalg::linear(&x, &w, b.as_ref()))
}

#[pyfunction]
fn softmax(py: Python<'_>, x: P<'_>, dim: i64) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "softmax", move || x.softmax(dim))
}

#[pyfunction]
fn log_softmax(py: Python<'_>, x: P<'_>, dim: i64) -> PyResult<PyTensor> {
    let x = x.t.clone();
    run(py, "log_softmax", move || x.log_softmax(dim))
}

#[pyfunction]
#[pyo3(signature = (x, normalized_shape, w=None, b=None, eps=1e-5))]
fn layer_norm(
    py: Python<'_>,
    x: P<'_>,
    normalized_shape: Vec<i64>,
    w: Option<P<'_>>,
    b: Option<P<'_>>,
    eps: f64,
) -> PyResult<PyTensor> {
    let ns = shape_from_i64("layer_norm", &normalized_shape).map_err(to_py)?;
    let (x, w, b) = (x.t.clone(), w.map(|t| t.t.clone()), b.map(|t| t.t.clone()));
    run(py, "layer_norm", move || nn::layer_norm(&x, &ns, w.as_ref(), b.as_ref(), eps))
}

#[pyfunction]
fn cross_entropy(
    py: Python<'_>,
    logits: P<'_>,
    target: P<'_>,
    ignore_index: i64,
    label_smoothing: f64,
    reduction: &str,
) -> PyResult<PyTensor> {
    let red = Reduction::parse(reduction).ok_or_else(|| {
        to_py(Error::invalid("cross_entropy", format!("{reduction:?} is not a valid value for reduction")))
    })?;
    let (l, t) = (logits.t.clone(), target.t.clone());
    run(py, "cross_entropy", move || nn::cross_entropy(&l, &t, ignore_index, label_smoothing, red))
}

#[pyfunction]
fn embedding(py: Python<'_>, ids: P<'_>, weight: P<'_>) -> PyResult<PyTensor> {
    let (i, w) = (ids.t.clone(), weight.t.clone());
    run(py, "embedding", move || nn::embedding(&i, &w))
}

#[pyfunction]
#[pyo3(signature = (q, k, v, mask=None, dropout_p=0.0, causal=false, scale=None))]
#[allow(clippy::too_many_arguments)]
fn scaled_dot_product_attention(
    py: Python<'_>,
    q: P<'_>,
    k: P<'_>,
    v: P<'_>,
    mask: Option<P<'_>>,
    dropout_p: f64,
    causal: bool,
    scale: Option<f64>,
) -> PyResult<PyTensor> {
    let (q, k, v, m) = (q.t.clone(), k.t.clone(), v.t.clone(), mask.map(|m| m.t.clone()));
    run(py, "scaled_dot_product_attention", move || {
        ops::attention::scaled_dot_product_attention(&q, &k, &v, m.as_ref(), causal, dropout_p, scale)
    })
}

#[pyfunction]
#[pyo3(signature = (x, h0, c0, w_ih, w_hh, bias=None, reverse=false))]
#[allow(clippy::too_many_arguments)]
fn lstm(
    py: Python<'_>,
    x: P<'_>,
    h0: P<'_>,
    c0: P<'_>,
    w_ih: P<'_>,
    w_hh: P<'_>,
    bias: Option<P<'_>>,
    reverse: bool,
) -> PyResult<PyTensor> {
    let (x, h0, c0, wi, wh) = (x.t.clone(), h0.t.clone(), c0.t.clone(), w_ih.t.clone(), w_hh.t.clone());
    let b = bias.map(|b| b.t.clone());
    let direction = if reverse { Direction::Reverse } else { Direction::Forward };
    run(py, "lstm", move || ops::recurrent::lstm(&x, &h0, &c0, &wi, &wh, b.as_ref(), direction))
}

#[pyfunction]
#[pyo3(signature = (x, p, training, generator=None))]
fn dropout(py: Python<'_>, x: P<'_>, p: f64, training: bool, generator: Option<G<'_>>) -> PyResult<PyTensor> {
    let (x, g) = (x.t.clone(), chosen(generator));
    run(py, "dropout", move || nn::dropout_with(&x, p, training, &g))
}

/// A Python int (not a bool) as an exact int64: `OverflowError` beyond int64, as PyTorch.
fn exact_int(v: &Bound<'_, PyAny>) -> Option<PyResult<i64>> {
    (v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>()).then(|| v.extract::<i64>())
}

/// A float for an int64 tensor: one outside int64's range (NaN and the infinities too) is an `OverflowError`
/// instead of a saturated or zero value.
fn float_for_i64(op: &str, v: f64) -> PyResult<f64> {
    // -2**63 is exact in f64 and in range; 2**63 is the first value above it
    if v.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v) {
        return Err(PyOverflowError::new_err(format!("{op}: value {v} cannot be converted to int64 without overflow")));
    }
    Ok(v)
}

/// `value` may be a Python int (exact in an int64 tensor) or float.
#[pyfunction]
fn full(py: Python<'_>, shape: Vec<i64>, value: &Bound<'_, PyAny>, dt: &str) -> PyResult<PyTensor> {
    let (s, dt) = (shape_from_i64("full", &shape).map_err(to_py)?, dtype(dt)?);
    if dt == DType::I64 {
        if let Some(v) = exact_int(value) {
            let v = v?;
            return run(py, "full", move || ops::creation::full_i64(&s, v));
        }
        let v = float_for_i64("full", value.extract::<f64>()?)?;
        return run(py, "full", move || ops::full(&s, v, dt));
    }
    let v: f64 = value.extract()?;
    run(py, "full", move || ops::full(&s, v, dt))
}

/// Integer bounds of an int64 `arange` are computed exactly; anything else in f64.
#[pyfunction]
fn arange(
    py: Python<'_>,
    start: &Bound<'_, PyAny>,
    end: &Bound<'_, PyAny>,
    step: &Bound<'_, PyAny>,
    dt: &str,
) -> PyResult<PyTensor> {
    let dt = dtype(dt)?;
    if dt == DType::I64 {
        if let (Some(a), Some(b), Some(c)) = (exact_int(start), exact_int(end), exact_int(step)) {
            let (a, b, c) = (a?, b?, c?);
            return run(py, "arange", move || ops::creation::arange_i64(a, b, c));
        }
    }
    let (a, b, c): (f64, f64, f64) = (start.extract()?, end.extract()?, step.extract()?);
    run(py, "arange", move || ops::arange(a, b, c, dt))
}

#[pyfunction]
#[pyo3(signature = (shape, dt, generator=None))]
fn rand(py: Python<'_>, shape: Vec<i64>, dt: &str, generator: Option<G<'_>>) -> PyResult<PyTensor> {
    let (s, dt, g) = (shape_from_i64("rand", &shape).map_err(to_py)?, dtype(dt)?, chosen(generator));
    run(py, "rand", move || ops::creation::rand_with(&s, dt, &g))
}

#[pyfunction]
#[pyo3(signature = (shape, dt, generator=None))]
fn randn(py: Python<'_>, shape: Vec<i64>, dt: &str, generator: Option<G<'_>>) -> PyResult<PyTensor> {
    let (s, dt, g) = (shape_from_i64("randn", &shape).map_err(to_py)?, dtype(dt)?, chosen(generator));
    run(py, "randn", move || ops::creation::randn_with(&s, dt, &g))
}

/// Seed the library's generator (any Python int; reduced modulo 2**64).
#[pyfunction]
fn manual_seed(seed: i128) {
    crate::random::manual_seed(seed as u64);
}

#[pyfunction]
fn get_rng_state() -> Vec<u64> {
    crate::random::get_state().to_vec()
}

#[pyfunction]
fn set_rng_state(state: Vec<u64>) -> PyResult<()> {
    let s: [u64; 4] = state
        .try_into()
        .map_err(|_| to_py(Error::invalid("set_rng_state", "a generator state is 4 unsigned 64-bit words")))?;
    crate::random::set_state(s).map_err(to_py)
}

/// A random permutation of `0..n` from the seeded generator (or `generator`).
#[pyfunction]
#[pyo3(signature = (n, generator=None))]
fn randperm(py: Python<'_>, n: i64, generator: Option<G<'_>>) -> PyResult<PyTensor> {
    let n = usize::try_from(n)
        .map_err(|_| to_py(Error::invalid("randperm", format!("n must be non-negative, got {n}"))))?;
    let g = chosen(generator);
    run(py, "randperm", move || Tensor::from_vec(crate::random::randperm_with(n, &g)?, &[n]))
}

#[pyfunction]
fn set_num_threads(n: i64) -> PyResult<()> {
    let n = usize::try_from(n).map_err(|_| {
        to_py(Error::invalid("set_num_threads", format!("the number of threads must be at least 1, got {n}")))
    })?;
    crate::parallel::set_num_threads(n).map_err(to_py)
}

#[pyfunction]
fn get_num_threads() -> usize {
    crate::parallel::num_threads()
}

/// Turn graph recording on or off for the calling thread; returns the previous setting.
#[pyfunction]
fn set_grad_enabled(on: bool) -> bool {
    crate::autograd::set_grad_enabled(on)
}

#[pyfunction]
fn is_grad_enabled() -> bool {
    crate::autograd::is_grad_enabled()
}

/// The SIMD level the kernels use (`scalar`, `avx2` or `avx512`).
#[pyfunction]
fn simd_level() -> &'static str {
    crate::kernels::gemm::active_simd().name()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => { $( m.add_function(wrap_pyfunction!($f, m)?)?; )* };
    }
    add!(
        unary,
        binary,
        compare,
        where_,
        to_dtype,
        sum,
        mean,
        max_dim,
        amax,
        argmax,
        reshape,
        permute,
        transpose,
        expand,
        slice,
        cat,
        stack,
        index_select,
        triangle,
        unsqueeze,
        squeeze,
        flatten,
        repeat,
        matmul,
        linear,
        softmax,
        log_softmax,
        layer_norm,
        cross_entropy,
        embedding,
        dropout,
        scaled_dot_product_attention,
        lstm,
        full,
        arange,
        rand,
        randn,
        manual_seed,
        set_num_threads,
        get_num_threads,
        set_grad_enabled,
        is_grad_enabled,
        simd_level,
        get_rng_state,
        set_rng_state,
        randperm,
    );
    Ok(())
}
