//! Bindings of the fused optimizer steps and in-place helpers (`crate::optim`).

use super::errors::detached;
use super::tensor::PyTensor;
use crate::error::Error;
use crate::kernels::optim::{Adam, Rmsprop, RmspropForm, Sgd};
use crate::optim;
use crate::tensor::Tensor;
use pyo3::prelude::*;

type P<'py> = PyRef<'py, PyTensor>;

fn handles(xs: &[P<'_>]) -> Vec<Tensor> {
    xs.iter().map(|x| x.t.clone()).collect()
}

/// Copy `src` into `dst` in place.
#[pyfunction]
fn assign(py: Python<'_>, dst: P<'_>, src: P<'_>) -> PyResult<()> {
    let (d, s) = (dst.t.clone(), src.t.clone());
    detached(py, "assign", move || optim::assign(&d, &s))
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn sgd_step(
    py: Python<'_>,
    params: Vec<P<'_>>,
    grads: Vec<P<'_>>,
    bufs: Vec<P<'_>>,
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    maximize: bool,
    first: bool,
) -> PyResult<()> {
    let (p, g, b) = (handles(&params), handles(&grads), handles(&bufs));
    let h = Sgd { lr, momentum, dampening, weight_decay, nesterov, maximize };
    detached(py, "sgd", move || optim::sgd_step(&p, &g, &b, h, first))
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn adam_step(
    py: Python<'_>,
    params: Vec<P<'_>>,
    grads: Vec<P<'_>>,
    exp_avg: Vec<P<'_>>,
    exp_avg_sq: Vec<P<'_>>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    maximize: bool,
    step: u64,
) -> PyResult<()> {
    let (p, g, m, v) = (handles(&params), handles(&grads), handles(&exp_avg), handles(&exp_avg_sq));
    let h = Adam { lr, beta1, beta2, eps, weight_decay, decoupled, maximize };
    detached(py, "adam", move || optim::adam_step(&p, &g, &m, &v, h, step))
}

/// One RMSprop step; `form` is `"torch"` (`torch.optim.RMSprop`) or `"keras"` (`keras.optimizers.RMSprop`).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn rmsprop_step(
    py: Python<'_>,
    params: Vec<P<'_>>,
    grads: Vec<P<'_>>,
    square_avg: Vec<P<'_>>,
    momentum_buffer: Vec<P<'_>>,
    grad_avg: Vec<P<'_>>,
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    maximize: bool,
    form: &str,
) -> PyResult<()> {
    let form = match form {
        "torch" => Ok(RmspropForm::Torch),
        "keras" => Ok(RmspropForm::Keras),
        other => Err(Error::invalid("rmsprop", format!("form must be 'torch' or 'keras', got {other:?}"))),
    };
    let (p, g, v) = (handles(&params), handles(&grads), handles(&square_avg));
    let (b, a) = (handles(&momentum_buffer), handles(&grad_avg));
    detached(py, "rmsprop", move || {
        let h = Rmsprop { lr, alpha, eps, weight_decay, momentum, centered, maximize, form: form? };
        optim::rmsprop_step(&p, &g, &v, &b, &a, h)
    })
}

/// The 2-norm of all values of `tensors` together.
#[pyfunction]
fn total_norm(py: Python<'_>, tensors: Vec<P<'_>>) -> PyResult<f64> {
    let t = handles(&tensors);
    detached(py, "total_norm", move || optim::total_norm(&t))
}

/// Multiply every value of `tensors` by `scale`, in place.
#[pyfunction]
fn scale_(py: Python<'_>, tensors: Vec<P<'_>>, scale: f64) -> PyResult<()> {
    let t = handles(&tensors);
    detached(py, "scale_", move || optim::scale_(&t, scale))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(assign, m)?)?;
    m.add_function(wrap_pyfunction!(sgd_step, m)?)?;
    m.add_function(wrap_pyfunction!(adam_step, m)?)?;
    m.add_function(wrap_pyfunction!(rmsprop_step, m)?)?;
    m.add_function(wrap_pyfunction!(total_norm, m)?)?;
    m.add_function(wrap_pyfunction!(scale_, m)?)?;
    Ok(())
}
