//! Optimizer steps over many parameters in one call: each parameter's update is a fused kernel pass
//! (`kernels::optim`), parameters are updated in parallel, and the update writes the parameter's storage in
//! place so every tensor sharing it (the module's view, the optimizer's) sees the new values.
//!
//! Also `assign` (copy values into an existing tensor in place), used by `load_state_dict` and `nn.init`.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::optim::{self as k, Adam, Sgd};
use crate::tensor::Tensor;

fn check_same(op: &'static str, what: &str, p: &Tensor, t: &Tensor) -> Result<()> {
    if t.shape() != p.shape() || t.dtype() != p.dtype() {
        return Err(Error::shape(
            op,
            format!(
                "{what} of shape {:?} ({}) does not match parameter {:?} ({})",
                t.shape(),
                t.dtype(),
                p.shape(),
                p.dtype()
            ),
        ));
    }
    Ok(())
}

/// Copy `src`'s values into `dst`'s storage, in place (converting the dtype).
///
/// # Errors
/// `Shape` when the shapes differ.
pub fn assign(dst: &Tensor, src: &Tensor) -> Result<()> {
    if dst.shape() != src.shape() {
        return Err(Error::shape(
            "assign",
            format!("cannot copy a tensor of shape {:?} into one of shape {:?}", src.shape(), dst.shape()),
        ));
    }
    let src = src.to_dtype(dst.dtype())?;
    let values = src.storage().clone(); // copy first: `src` may share `dst`'s storage
    *dst.storage_mut() = values;
    Ok(())
}

/// Parameters are written under their storage's lock while the other tensors are read under theirs: a tensor
/// sharing the parameter's storage would deadlock, so it is refused.
fn check_distinct(op: &'static str, p: &Tensor, others: &[&Tensor]) -> Result<()> {
    if others.iter().any(|t| t.shares_storage(p)) {
        return Err(Error::invalid(op, "a gradient or state tensor shares storage with its parameter"));
    }
    Ok(())
}

/// Run `f` for every parameter: on the calling thread when the total work is small (a region costs more than
/// updating a small model), else one parameter per task.
fn par_each(params: &[Tensor], f: impl Fn(usize) -> Result<()> + Sync) -> Result<()> {
    let total: usize = params.iter().map(Tensor::numel).sum();
    if total < crate::parallel::MIN_PARALLEL || params.len() < 2 {
        return (0..params.len()).try_for_each(f);
    }
    crate::parallel::try_run(params.len(), f)
}

/// One SGD step over `params` with their `grads` and momentum buffers (`first` marks buffers never filled).
/// Parameters without a gradient are skipped by the caller.
///
/// # Errors
/// `Shape` when a gradient or buffer does not match its parameter; `DType` for non-float parameters.
pub fn sgd_step(params: &[Tensor], grads: &[Tensor], bufs: &[Tensor], h: Sgd, first: bool) -> Result<()> {
    par_each(params, |i| {
        let (p, g, b) = (&params[i], &grads[i], &bufs[i]);
        check_same("sgd", "gradient", p, g)?;
        check_same("sgd", "momentum buffer", p, b)?;
        check_distinct("sgd", p, &[g, b])?;
        crate::with_float!(p.dtype(), "sgd", T => {
            let g = g.storage();
            let mut ps = p.storage_mut();
            let mut bs = b.storage_mut();
            k::sgd::<T>(ps.as_mut_slice(), g.as_slice(), bs.as_mut_slice(), &h, first);
        });
        Ok(())
    })
}

/// One Adam or AdamW step (number `step`, from 1) over `params`, updating the moment estimates in place.
///
/// # Errors
/// `Shape` when a gradient or state tensor does not match its parameter; `DType` for non-float parameters.
pub fn adam_step(params: &[Tensor], grads: &[Tensor], m: &[Tensor], v: &[Tensor], h: Adam, step: u64) -> Result<()> {
    if step == 0 {
        return Err(Error::invalid("adam", "step numbers count from 1"));
    }
    par_each(params, |i| {
        let p = &params[i];
        check_same("adam", "gradient", p, &grads[i])?;
        check_same("adam", "exp_avg", p, &m[i])?;
        check_same("adam", "exp_avg_sq", p, &v[i])?;
        check_distinct("adam", p, &[&grads[i], &m[i], &v[i]])?;
        crate::with_float!(p.dtype(), "adam", T => {
            let g = grads[i].storage();
            let mut ps = p.storage_mut();
            let mut ms = m[i].storage_mut();
            let mut vs = v[i].storage_mut();
            k::adam::<T>(ps.as_mut_slice(), g.as_slice(), ms.as_mut_slice(), vs.as_mut_slice(), &h, step);
        });
        Ok(())
    })
}

/// The total 2-norm of several tensors (as one vector), in f64.
///
/// # Errors
/// `DType` for non-float tensors.
pub fn total_norm(tensors: &[Tensor]) -> Result<f64> {
    let mut s = 0.0;
    for t in tensors {
        let c = crate::ops::converted(t, DType::F64)?;
        s += c.storage().as_slice::<f64>().iter().map(|v| v * v).sum::<f64>();
    }
    Ok(s.sqrt())
}

/// Multiply each tensor's values by `scale`, in place.
///
/// # Errors
/// `DType` for non-float tensors.
pub fn scale_(tensors: &[Tensor], scale: f64) -> Result<()> {
    for t in tensors {
        crate::with_float!(t.dtype(), "scale_", T => {
            let s = <T as crate::Element>::from_f64(scale);
            t.storage_mut().as_mut_slice::<T>().iter_mut().for_each(|v| *v *= s);
        });
    }
    Ok(())
}
