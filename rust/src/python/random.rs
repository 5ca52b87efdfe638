//! Bindings of the random generators (`crate::random`): the `_Generator` class (a handle to the default
//! generator or a user's own) and the sampling functions that take one: `randint`, `multinomial`.

use super::errors::{detached, to_py};
use super::tensor::PyTensor;
use crate::error::Error;
use crate::random::{default_generator, Generator};
use pyo3::prelude::*;

/// A handle to a random stream: `bigcore.Generator` wraps one.
#[pyclass(name = "_Generator", module = "bigcore._core", frozen)]
pub struct PyGenerator {
    pub(crate) g: Generator,
}

/// The generator to draw from: the given one, else the library's default.
pub(crate) fn chosen(g: Option<PyRef<'_, PyGenerator>>) -> Generator {
    g.map_or_else(|| default_generator().clone(), |g| g.g.clone())
}

#[pymethods]
impl PyGenerator {
    /// A new generator seeded with PyTorch's default seed.
    #[new]
    fn new() -> Self {
        PyGenerator { g: Generator::default() }
    }
    /// Reseed (any Python int; reduced modulo 2**64).
    fn manual_seed(&self, seed: i128) {
        self.g.manual_seed(seed as u64);
    }
    /// Reseed from the clock; returns the seed.
    fn seed(&self) -> u64 {
        self.g.seed()
    }
    fn initial_seed(&self) -> u64 {
        self.g.initial_seed()
    }
    fn get_state(&self) -> Vec<u64> {
        self.g.get_state().to_vec()
    }
    fn set_state(&self, state: Vec<u64>) -> PyResult<()> {
        let s: [u64; 4] = state
            .try_into()
            .map_err(|_| to_py(Error::invalid("set_state", "a generator state is 4 unsigned 64-bit words")))?;
        self.g.set_state(s).map_err(to_py)
    }
    /// True when both handles draw from one stream.
    fn same_as(&self, other: PyRef<'_, PyGenerator>) -> bool {
        self.g.same_as(&other.g)
    }
}

/// A handle to the library's default generator (the one `manual_seed` seeds).
#[pyfunction]
fn default_generator_handle() -> PyGenerator {
    PyGenerator { g: default_generator().clone() }
}

#[pyfunction]
#[pyo3(signature = (low, high, shape, dt, generator=None))]
fn randint(
    py: Python<'_>,
    low: i64,
    high: i64,
    shape: Vec<i64>,
    dt: &str,
    generator: Option<PyRef<'_, PyGenerator>>,
) -> PyResult<PyTensor> {
    let s = crate::ops::creation::shape_from_i64("randint", &shape).map_err(to_py)?;
    let (dt, g) = (super::functions::dtype(dt)?, chosen(generator));
    detached(py, "randint", move || crate::ops::randint(low, high, &s, dt, &g)).map(PyTensor::from)
}

#[pyfunction]
#[pyo3(signature = (probs, num_samples, replacement, generator=None))]
fn multinomial(
    py: Python<'_>,
    probs: PyRef<'_, PyTensor>,
    num_samples: i64,
    replacement: bool,
    generator: Option<PyRef<'_, PyGenerator>>,
) -> PyResult<PyTensor> {
    let (p, g) = (probs.t.clone(), chosen(generator));
    detached(py, "multinomial", move || crate::ops::multinomial(&p, num_samples, replacement, &g)).map(PyTensor::from)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGenerator>()?;
    m.add_function(wrap_pyfunction!(default_generator_handle, m)?)?;
    m.add_function(wrap_pyfunction!(randint, m)?)?;
    m.add_function(wrap_pyfunction!(multinomial, m)?)?;
    Ok(())
}
