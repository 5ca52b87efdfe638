//! Optimizer steps over many parameters in one call, writing each parameter's storage in place so every tensor
//! sharing it (the module's view, the optimizer's) sees the new values. The update of each element is a fused
//! kernel (`kernels::optim`); here the parameters are locked, cut into pieces of [`PIECE`] elements (a large
//! tensor such as a 38M-element embedding into many, so both cores update it) and small ones grouped until a
//! task holds about as many, and the tasks are spread over the pool. The kernels are element-wise and round
//! every element the same wherever a piece starts, so the result is bit-identical on any number of threads.
//!
//! Also `assign` (copy values into an existing tensor in place), used by `load_state_dict` and `nn.init`.

use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::kernels::optim::{self as k, Adam, Rmsprop, Sgd};
use crate::parallel;
use crate::tensor::Tensor;
use std::sync::Mutex;

/// Elements of one task of an update: 1 MB of each float32 stream, long enough for the prefetchers, and still
/// hundreds of tasks for GPT-2's 124M parameters (the tasks are claimed one by one, so threads stay balanced).
pub const PIECE: usize = 1 << 18;

fn check_same(op: &'static str, what: &str, p: &Tensor, t: &Tensor) -> Result<()> {
    if t.dtype() != p.dtype() {
        return Err(Error::dtype(
            op,
            format!(
                "{what} of dtype {} (shape {:?}) does not match parameter {} ({:?})",
                t.dtype(),
                t.shape(),
                p.dtype(),
                p.shape()
            ),
        ));
    }
    if t.shape() != p.shape() {
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

/// Every check of one parameter's update, before anything is written.
fn check_param<const S: usize>(
    op: &'static str,
    p: &Tensor,
    g: &Tensor,
    states: &[&Tensor; S],
    names: [&str; S],
) -> Result<()> {
    if !p.dtype().is_float() {
        return Err(Error::dtype(op, format!("parameters must be float tensors, got {}", p.dtype())));
    }
    check_same(op, "gradient", p, g)?;
    for (t, name) in states.iter().zip(names) {
        check_same(op, name, p, t)?;
    }
    let mut others = vec![g];
    others.extend(states.iter().copied());
    check_distinct(op, p, &others)?;
    for (i, a) in states.iter().enumerate() {
        if states[i + 1..].iter().any(|b| a.shares_storage(b)) || a.shares_storage(g) {
            return Err(Error::invalid(op, "two state tensors (or a state and the gradient) share storage"));
        }
    }
    Ok(())
}

/// One parameter's elements (or a piece of them): the parameter, its gradient and its `S` state tensors.
struct Piece<'a, T, const S: usize> {
    p: &'a mut [T],
    g: &'a [T],
    state: [&'a mut [T]; S],
}

/// Lock the parameters, gradients and states of `sets`, cut them into pieces, and run `update` on every piece,
/// spread over the pool when the work is large.
fn update_all<T: Float, const S: usize>(
    sets: &[(&Tensor, &Tensor, [&Tensor; S])],
    update: &(impl Fn(&mut [T], &[T], [&mut [T]; S]) + Sync),
) {
    let mut ps: Vec<_> = sets.iter().map(|(p, _, _)| p.storage_mut()).collect();
    let gs: Vec<_> = sets.iter().map(|(_, g, _)| g.storage()).collect();
    let mut ss: Vec<_> = sets.iter().map(|(_, _, s)| s.map(|t| t.storage_mut())).collect();
    let mut tasks: Vec<Mutex<Vec<Piece<'_, T, S>>>> = Vec::new();
    let (mut group, mut group_len, mut total) = (Vec::new(), 0, 0);
    for ((p, g), s) in ps.iter_mut().zip(&gs).zip(ss.iter_mut()) {
        let mut state = s.each_mut().map(|t| t.as_mut_slice::<T>().chunks_mut(PIECE));
        for (p, g) in p.as_mut_slice::<T>().chunks_mut(PIECE).zip(g.as_slice::<T>().chunks(PIECE)) {
            let state = state.each_mut().map(|c| c.next().expect("states have the parameter's length"));
            group_len += p.len();
            total += p.len();
            group.push(Piece { p, g, state });
            if group_len >= PIECE {
                tasks.push(Mutex::new(std::mem::take(&mut group)));
                group_len = 0;
            }
        }
    }
    if !group.is_empty() {
        tasks.push(Mutex::new(group));
    }
    let run_task = |t: usize| {
        let pieces = std::mem::take(&mut *tasks[t].lock().unwrap_or_else(|e| e.into_inner()));
        for piece in pieces {
            update(piece.p, piece.g, piece.state);
        }
    };
    if total < parallel::MIN_PARALLEL {
        (0..tasks.len()).for_each(run_task);
    } else {
        parallel::run(tasks.len(), run_task);
    }
}

/// Run an update over every parameter: float32 and float64 parameters each in one parallel region, or, when a
/// tensor is shared between two parameters' sets (the same parameter listed twice, say), one parameter at a
/// time, locking only its own tensors.
fn update_by_dtype<const S: usize>(
    sets: &[(&Tensor, &Tensor, [&Tensor; S])],
    update32: impl Fn(&mut [f32], &[f32], [&mut [f32]; S]) + Sync,
    update64: impl Fn(&mut [f64], &[f64], [&mut [f64]; S]) + Sync,
) {
    let shared = sets.iter().enumerate().any(|(i, a)| {
        sets[i + 1..].iter().any(|b| {
            writes(a).any(|x| writes(b).any(|y| x.shares_storage(y)) || x.shares_storage(b.1))
                || writes(b).any(|y| y.shares_storage(a.1))
        })
    });
    let run = |sets: &[(&Tensor, &Tensor, [&Tensor; S])]| {
        let f32s: Vec<_> = sets.iter().filter(|s| s.0.dtype() == DType::F32).cloned().collect();
        let f64s: Vec<_> = sets.iter().filter(|s| s.0.dtype() == DType::F64).cloned().collect();
        update_all::<f32, S>(&f32s, &update32);
        update_all::<f64, S>(&f64s, &update64);
    };
    if shared {
        sets.iter().for_each(|set| run(std::slice::from_ref(set)));
    } else {
        run(sets);
    }
}

/// The tensors an update writes: the parameter and its states.
fn writes<'a, const S: usize>(set: &'a (&'a Tensor, &'a Tensor, [&'a Tensor; S])) -> impl Iterator<Item = &'a Tensor> {
    std::iter::once(set.0).chain(set.2.iter().copied())
}

fn check_lengths(op: &'static str, params: usize, others: &[(&str, usize)]) -> Result<()> {
    for (what, n) in others {
        if *n != params {
            return Err(Error::invalid(op, format!("{n} {what} for {params} parameters")));
        }
    }
    Ok(())
}

/// One SGD step over `params` with their `grads` and momentum buffers (`first` marks buffers never filled).
/// Parameters without a gradient are skipped by the caller.
///
/// # Errors
/// `Shape` when a gradient or buffer does not match its parameter; `DType` for non-float parameters;
/// `InvalidArgument` for lists of different lengths or a tensor sharing its parameter's storage. Nothing is
/// updated when any parameter fails a check.
pub fn sgd_step(params: &[Tensor], grads: &[Tensor], bufs: &[Tensor], h: Sgd, first: bool) -> Result<()> {
    check_lengths("sgd", params.len(), &[("gradients", grads.len()), ("momentum buffers", bufs.len())])?;
    let sets: Vec<(&Tensor, &Tensor, [&Tensor; 1])> =
        (0..params.len()).map(|i| (&params[i], &grads[i], [&bufs[i]])).collect();
    for (p, g, s) in &sets {
        check_param("sgd", p, g, s, ["momentum buffer"])?;
    }
    update_by_dtype(&sets, |p, g, [b]| k::sgd(p, g, b, &h, first), |p, g, [b]| k::sgd(p, g, b, &h, first));
    Ok(())
}

/// One Adam or AdamW step (number `step`, from 1) over `params`, updating the moment estimates in place.
///
/// # Errors
/// `Shape` when a gradient or state tensor does not match its parameter; `DType` for non-float parameters;
/// `InvalidArgument` for step 0, lists of different lengths or a tensor sharing its parameter's storage.
/// Nothing is updated when any parameter fails a check.
pub fn adam_step(params: &[Tensor], grads: &[Tensor], m: &[Tensor], v: &[Tensor], h: Adam, step: u64) -> Result<()> {
    if step == 0 {
        return Err(Error::invalid("adam", "step numbers count from 1"));
    }
    check_lengths("adam", params.len(), &[("gradients", grads.len()), ("exp_avg", m.len()), ("exp_avg_sq", v.len())])?;
    let sets: Vec<(&Tensor, &Tensor, [&Tensor; 2])> =
        (0..params.len()).map(|i| (&params[i], &grads[i], [&m[i], &v[i]])).collect();
    for (p, g, s) in &sets {
        check_param("adam", p, g, s, ["exp_avg", "exp_avg_sq"])?;
    }
    update_by_dtype(&sets, |p, g, [m, v]| k::adam(p, g, m, v, &h, step), |p, g, [m, v]| k::adam(p, g, m, v, &h, step));
    Ok(())
}

/// One RMSprop step over `params`, updating the squared-gradient averages `square_avg` in place, and the
/// momentum buffers (one per parameter when `h.momentum != 0`, else none) and gradient averages (one per
/// parameter when `h.centered`, else none).
///
/// # Errors
/// `Shape` when a gradient or state tensor does not match its parameter; `DType` for non-float parameters;
/// `InvalidArgument` for lists of the wrong lengths or a tensor sharing its parameter's storage. Nothing is
/// updated when any parameter fails a check.
pub fn rmsprop_step(
    params: &[Tensor],
    grads: &[Tensor],
    square_avg: &[Tensor],
    momentum_buffer: &[Tensor],
    grad_avg: &[Tensor],
    h: Rmsprop,
) -> Result<()> {
    let op = "rmsprop";
    let n = params.len();
    let (bufs, avgs) = (if h.momentum != 0.0 { n } else { 0 }, if h.centered { n } else { 0 });
    check_lengths(op, n, &[("gradients", grads.len()), ("square_avg", square_avg.len())])?;
    check_lengths(
        op,
        bufs,
        &[("momentum buffers (one per parameter with momentum, none without)", momentum_buffer.len())],
    )?;
    check_lengths(op, avgs, &[("grad_avg (one per parameter when centered, none otherwise)", grad_avg.len())])?;
    let (b, a) = (|i: usize| &momentum_buffer[i], |i: usize| &grad_avg[i]);
    // the states each parameter has, in the order the kernel takes them: square_avg, momentum_buffer, grad_avg
    match (bufs > 0, avgs > 0) {
        (false, false) => {
            let sets: Vec<_> = (0..n).map(|i| (&params[i], &grads[i], [&square_avg[i]])).collect();
            check_sets(op, &sets, ["square_avg"])?;
            update_by_dtype(
                &sets,
                |p, g, [v]| k::rmsprop(p, g, v, None, None, &h),
                |p, g, [v]| k::rmsprop(p, g, v, None, None, &h),
            );
        }
        (true, false) => {
            let sets: Vec<_> = (0..n).map(|i| (&params[i], &grads[i], [&square_avg[i], b(i)])).collect();
            check_sets(op, &sets, ["square_avg", "momentum_buffer"])?;
            update_by_dtype(
                &sets,
                |p, g, [v, m]| k::rmsprop(p, g, v, Some(m), None, &h),
                |p, g, [v, m]| k::rmsprop(p, g, v, Some(m), None, &h),
            );
        }
        (false, true) => {
            let sets: Vec<_> = (0..n).map(|i| (&params[i], &grads[i], [&square_avg[i], a(i)])).collect();
            check_sets(op, &sets, ["square_avg", "grad_avg"])?;
            update_by_dtype(
                &sets,
                |p, g, [v, ga]| k::rmsprop(p, g, v, None, Some(ga), &h),
                |p, g, [v, ga]| k::rmsprop(p, g, v, None, Some(ga), &h),
            );
        }
        (true, true) => {
            let sets: Vec<_> = (0..n).map(|i| (&params[i], &grads[i], [&square_avg[i], b(i), a(i)])).collect();
            check_sets(op, &sets, ["square_avg", "momentum_buffer", "grad_avg"])?;
            update_by_dtype(
                &sets,
                |p, g, [v, m, ga]| k::rmsprop(p, g, v, Some(m), Some(ga), &h),
                |p, g, [v, m, ga]| k::rmsprop(p, g, v, Some(m), Some(ga), &h),
            );
        }
    }
    Ok(())
}

/// [`check_param`] on every set, before anything is written.
fn check_sets<const S: usize>(
    op: &'static str,
    sets: &[(&Tensor, &Tensor, [&Tensor; S])],
    names: [&str; S],
) -> Result<()> {
    for (p, g, s) in sets {
        check_param(op, p, g, s, names)?;
    }
    Ok(())
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
