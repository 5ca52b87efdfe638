//! Neural-network ops with fused kernels: `softmax`, `log_softmax`, `layer_norm`, `cross_entropy`,
//! `embedding`, `dropout`, and their backward helpers.

use crate::autograd::{record, Op, Reduction};
use crate::dtype::{DType, Element, Float};
use crate::error::{Error, Result};
use crate::kernels::{cross_entropy as ce, embedding as emb, layernorm, softmax as sm};
use crate::ops::elementwise::fresh;
use crate::ops::{converted, full};
use crate::shape::{normalize_dim, numel, split_at_dim};
use crate::storage::{try_filled, try_with_capacity};
use crate::tensor::Tensor;

/// `n` zeros for a gradient the row kernels accumulate into, zeroed in parallel: for a large fresh buffer (a
/// 154 MB embedding gradient, a 51 MB gradient of GPT-2's logits) the threads then also share the first-touch
/// page faults, which are most of its cost.
fn zeros<T: Float>(op: &'static str, shape: &[usize], n: usize) -> Result<Vec<T>> {
    fresh(op, shape, n, usize::MAX, |_, _| ())
}

/// Which of the two normalizations along a dim an op computes.
#[derive(Clone, Copy)]
enum Form {
    Softmax,
    LogSoftmax,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Softmax => "softmax",
            Form::LogSoftmax => "log_softmax",
        }
    }
}

/// The (outer, D, inner) view of `shape` around dim `d` (a 0-d tensor is one row of one).
fn rows_around(shape: &[usize], d: usize) -> (Vec<usize>, (usize, usize, usize)) {
    let shape: Vec<usize> = if shape.is_empty() { vec![1] } else { shape.to_vec() };
    let split = split_at_dim(&shape, d);
    (shape, split)
}

fn along_dim(x: &Tensor, dim: i64, form: Form) -> Result<Tensor> {
    let op = form.name();
    let d = normalize_dim(op, dim, x.ndim().max(1))?;
    let xf = if x.dtype().is_float() { x.clone() } else { converted(x, DType::F32)? };
    let (shape, (outer, dsz, inner)) = rows_around(x.shape(), d);
    let storage = crate::with_float!(xf.dtype(), op, T => {
        let mut out = try_filled(op, &shape, xf.numel(), T::ZERO)?;
        let xs = xf.storage();
        match form {
            Form::Softmax => sm::softmax_forward(&mut out, xs.as_slice::<T>(), outer, dsz, inner),
            Form::LogSoftmax => sm::log_softmax_forward(&mut out, xs.as_slice::<T>(), outer, dsz, inner),
        }
        T::into_storage(out)
    });
    let out = Tensor::from_storage(storage, x.shape().to_vec());
    Ok(match form {
        Form::Softmax => record(out, &[x], || Op::Softmax { dim: d }),
        Form::LogSoftmax => record(out, &[x], || Op::LogSoftmax { dim: d }),
    })
}

fn along_dim_backward(g: &Tensor, y: &Tensor, dim: usize, form: Form) -> Result<Tensor> {
    let op = form.name();
    let (shape, (outer, d, inner)) = rows_around(y.shape(), dim);
    let g = converted(g, y.dtype())?;
    let storage = crate::with_float!(y.dtype(), op, T => {
        let mut dx = zeros(op, &shape, y.numel())?;
        let (gs, ys) = (g.storage(), y.storage());
        let (gv, yv) = (gs.as_slice::<T>(), ys.as_slice::<T>());
        match form {
            Form::Softmax => sm::softmax_backward(&mut dx, gv, yv, outer, d, inner),
            Form::LogSoftmax => sm::log_softmax_backward(&mut dx, gv, yv, outer, d, inner),
        }
        T::into_storage(dx)
    });
    Ok(Tensor::from_storage(storage, y.shape().to_vec()))
}

impl Tensor {
    /// Softmax along `dim`. Integer input computes in float32.
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim.
    pub fn softmax(&self, dim: i64) -> Result<Tensor> {
        along_dim(self, dim, Form::Softmax)
    }

    /// Log-softmax along `dim`, computed stably (not as the log of softmax). Integer input computes in float32.
    ///
    /// # Errors
    /// `OutOfRange` for a bad dim.
    pub fn log_softmax(&self, dim: i64) -> Result<Tensor> {
        along_dim(self, dim, Form::LogSoftmax)
    }
}

/// The gradient of softmax from its output `y`: `y * (g - sum(g * y))` along `dim`.
///
/// # Errors
/// `DType` for non-float input.
pub fn softmax_backward(g: &Tensor, y: &Tensor, dim: usize) -> Result<Tensor> {
    along_dim_backward(g, y, dim, Form::Softmax)
}

/// The gradient of log-softmax from its output `y`: `g - exp(y) * sum(g)` along `dim`.
///
/// # Errors
/// `DType` for non-float input.
pub fn log_softmax_backward(g: &Tensor, y: &Tensor, dim: usize) -> Result<Tensor> {
    along_dim_backward(g, y, dim, Form::LogSoftmax)
}

/// Layer normalization over the trailing `normalized_shape` dims, with optional elementwise weight and bias.
///
/// # Errors
/// `Shape` when `x` does not end with `normalized_shape` or weight/bias do not have it; `DType` for non-float
/// input; `InvalidArgument` for a negative eps.
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let nd = normalized_shape.len();
    if nd == 0 || x.ndim() < nd || &x.shape()[x.ndim() - nd..] != normalized_shape {
        return Err(Error::shape(
            "layer_norm",
            format!("input of shape {:?} does not end with normalized_shape {normalized_shape:?}", x.shape()),
        ));
    }
    for (name, t) in [("weight", w), ("bias", b)] {
        if let Some(t) = t {
            if t.shape() != normalized_shape {
                return Err(Error::shape(
                    "layer_norm",
                    format!("{name} has shape {:?}, expected {normalized_shape:?}", t.shape()),
                ));
            }
        }
    }
    if eps.is_nan() || eps < 0.0 {
        return Err(Error::invalid("layer_norm", format!("eps must be non-negative, got {eps}")));
    }
    let dt = x.dtype();
    if !dt.is_float() {
        return Err(Error::dtype("layer_norm", format!("expected a float tensor, got {dt}")));
    }
    let c: usize = normalized_shape.iter().product();
    let rows = x.numel().checked_div(c).unwrap_or(0);
    let (wc, bc) = (w.map(|t| converted(t, dt)).transpose()?, b.map(|t| converted(t, dt)).transpose()?);
    let (out, mean, rstd) = crate::with_float!(dt, "layer_norm", T => {
        let mut out = try_filled("layer_norm", x.shape(), x.numel(), T::ZERO)?;
        let mut mean = try_filled("layer_norm", &[rows], rows, T::ZERO)?;
        let mut rstd = try_filled("layer_norm", &[rows], rows, T::ZERO)?;
        let (ws, bs) = (wc.as_ref().map(|t| t.storage()), bc.as_ref().map(|t| t.storage()));
        layernorm::layer_norm_forward(&mut out, &mut mean, &mut rstd, x.storage().as_slice::<T>(),
            ws.as_ref().map(|s| s.as_slice::<T>()), bs.as_ref().map(|s| s.as_slice::<T>()), c, eps);
        (T::into_storage(out), T::into_storage(mean), T::into_storage(rstd))
    });
    let out = Tensor::from_storage(out, x.shape().to_vec());
    let mean = Tensor::from_storage(mean, vec![rows]);
    let rstd = Tensor::from_storage(rstd, vec![rows]);
    let mut inputs = vec![x];
    inputs.extend(w);
    inputs.extend(b);
    Ok(record(out, &inputs, || Op::LayerNorm {
        normalized: nd,
        eps,
        mean,
        rstd,
        has_weight: w.is_some(),
        has_bias: b.is_some(),
    }))
}

/// Gradients of `layer_norm`'s inputs.
///
/// # Errors
/// `DType` for non-float input.
pub fn layer_norm_backward(op: &Op, g: &Tensor, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    let Op::LayerNorm { normalized, mean, rstd, has_weight, has_bias, .. } = op else { unreachable!("layer_norm arm") };
    let x = &inputs[0];
    let w = if *has_weight { Some(&inputs[1]) } else { None };
    let b = if *has_bias { Some(&inputs[1 + *has_weight as usize]) } else { None };
    let c: usize = x.shape()[x.ndim() - normalized..].iter().product();
    let dt = x.dtype();
    let g = converted(g, dt)?;
    let wc = w.map(|t| converted(t, dt)).transpose()?;
    let (dx, dw, db) = crate::with_float!(dt, "layer_norm", T => {
        let mut dx = zeros("layer_norm", x.shape(), x.numel())?;
        let mut dw = w.map(|_| try_filled("layer_norm", &[c], c, T::ZERO)).transpose()?;
        let mut db = b.map(|_| try_filled("layer_norm", &[c], c, T::ZERO)).transpose()?;
        let ws = wc.as_ref().map(|t| t.storage());
        layernorm::layer_norm_backward(&mut dx, dw.as_deref_mut(), db.as_deref_mut(), g.storage().as_slice::<T>(),
            x.storage().as_slice::<T>(),
            ws.as_ref().map(|s| s.as_slice::<T>()), mean.storage().as_slice::<T>(), rstd.storage().as_slice::<T>(), c);
        (T::into_storage(dx), dw.map(T::into_storage), db.map(T::into_storage))
    });
    let nshape = x.shape()[x.ndim() - normalized..].to_vec();
    let mut out = vec![if x.requires_grad() { Some(Tensor::from_storage(dx, x.shape().to_vec())) } else { None }];
    if let Some(dw) = dw {
        out.push(Some(Tensor::from_storage(dw, nshape.clone())));
    }
    if let Some(db) = db {
        out.push(Some(Tensor::from_storage(db, nshape)));
    }
    Ok(out)
}

/// Cross-entropy of logits `(N, C)` against int64 class indices `(N,)`.
///
/// # Errors
/// `Shape` for mismatched shapes; `DType` for non-int64 targets or non-float logits; `OutOfRange` for a target
/// outside `0..C` (other than `ignore_index`); `InvalidArgument` for smoothing outside [0, 1].
pub fn cross_entropy(
    logits: &Tensor,
    target: &Tensor,
    ignore_index: i64,
    label_smoothing: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    let op = "cross_entropy";
    if logits.ndim() != 2 || target.ndim() != 1 || target.shape()[0] != logits.shape()[0] {
        return Err(Error::shape(
            op,
            format!("expected logits (N, C) and target (N,), got {:?} and {:?}", logits.shape(), target.shape()),
        ));
    }
    if target.dtype() != DType::I64 {
        return Err(Error::dtype(op, format!("class-index targets must be int64, got {}", target.dtype())));
    }
    if !logits.dtype().is_float() {
        return Err(Error::dtype(op, format!("logits must be float, got {}", logits.dtype())));
    }
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(Error::invalid(op, format!("label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")));
    }
    let (n, c) = (logits.shape()[0], logits.shape()[1]);
    let ts = target.storage();
    let tv = ts.as_slice::<i64>();
    if let Some(&bad) = tv.iter().find(|&&t| t != ignore_index && (t < 0 || t as usize >= c)) {
        return Err(Error::range(op, format!("target {bad} is out of bounds for {c} classes")));
    }
    let count = tv.iter().filter(|&&t| t != ignore_index).count();
    let dt = logits.dtype();
    let (losses, lse) = crate::with_float!(dt, op, T => {
        let mut losses = try_filled(op, &[n], n, T::ZERO)?;
        let mut lse = try_filled(op, &[n], n, T::ZERO)?;
        if c > 0 {
            ce::cross_entropy_forward(&mut losses, &mut lse, logits.storage().as_slice::<T>(), tv, c, ignore_index,
                label_smoothing);
        }
        let mut as_f64 = try_with_capacity::<f64>(op, &[n], n)?;
        as_f64.extend(losses.iter().map(|v| v.to_f64()));
        (as_f64, T::into_storage(lse))
    });
    drop(ts);
    let out = match reduction {
        Reduction::None => Tensor::from_vec(losses, &[n])?.to_dtype(dt)?,
        Reduction::Sum => full(&[], losses.iter().sum(), dt)?,
        // mean over non-ignored rows: NaN when every row is ignored, as in PyTorch
        Reduction::Mean => full(&[], losses.iter().sum::<f64>() / count as f64, dt)?,
    };
    let lse = Tensor::from_storage(lse, vec![n]);
    Ok(record(out, &[logits, target], || Op::CrossEntropy { ignore_index, label_smoothing, reduction, lse, count }))
}

/// The gradient of `cross_entropy` with respect to the logits.
///
/// # Errors
/// `DType` for non-float input.
pub fn cross_entropy_backward(op: &Op, g: &Tensor, inputs: &[Tensor]) -> Result<Tensor> {
    let Op::CrossEntropy { ignore_index, label_smoothing, reduction, lse, count } = op else {
        unreachable!("cross_entropy arm")
    };
    let (logits, target) = (&inputs[0], &inputs[1]);
    let (n, c) = (logits.shape()[0], logits.shape()[1]);
    let gv: Vec<f64> = converted(g, DType::F64)?.to_vec::<f64>()?;
    let dloss: Vec<f64> = match reduction {
        Reduction::None => gv,
        Reduction::Sum => try_filled("cross_entropy", &[n], n, gv[0])?,
        Reduction::Mean => try_filled("cross_entropy", &[n], n, gv[0] / *count as f64)?,
    };
    let storage = crate::with_float!(logits.dtype(), "cross_entropy", T => {
        let mut dx = zeros("cross_entropy", logits.shape(), n * c)?;
        let mut dl = try_with_capacity::<T>("cross_entropy", &[n], n)?;
        dl.extend(dloss.iter().map(|&v| T::from_f64(v)));
        if c > 0 {
            ce::cross_entropy_backward(&mut dx, &dl, logits.storage().as_slice::<T>(), lse.storage().as_slice::<T>(),
                target.storage().as_slice::<i64>(), c, *ignore_index, *label_smoothing);
        }
        T::into_storage(dx)
    });
    Ok(Tensor::from_storage(storage, logits.shape().to_vec()))
}

/// Rows of `weight` (V, C) picked by int64 ids of any shape: the result is `ids.shape + (C,)`.
///
/// # Errors
/// `Shape` when `weight` is not 2-D; `DType` for non-int64 ids; `OutOfRange` for an id outside `0..V`
/// (negative ids included: they are not counted from the end).
pub fn embedding(ids: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let op = "embedding";
    if weight.ndim() != 2 {
        return Err(Error::shape(
            op,
            format!("weight must be 2-D (num_embeddings, embedding_dim), got {:?}", weight.shape()),
        ));
    }
    if ids.dtype() != DType::I64 {
        return Err(Error::dtype(op, format!("indices must be an int64 tensor, got {}", ids.dtype())));
    }
    let (v, c) = (weight.shape()[0], weight.shape()[1]);
    let is = ids.storage();
    let iv = is.as_slice::<i64>();
    if let Some(&bad) = iv.iter().find(|&&i| i < 0 || i as usize >= v) {
        return Err(Error::range(
            op,
            format!("index {bad} is out of range for {v} embeddings (weight of shape {:?})", weight.shape()),
        ));
    }
    let mut shape = ids.shape().to_vec();
    shape.push(c);
    let storage = crate::with_any!(weight.dtype(), T => {
        let mut out = try_filled(op, &shape, numel(op, &shape, std::mem::size_of::<T>())?, T::zero())?;
        emb::embedding_forward(&mut out, iv, weight.storage().as_slice::<T>(), c);
        T::into_storage(out)
    });
    drop(is);
    Ok(record(Tensor::from_storage(storage, shape), &[ids, weight], || Op::Embedding))
}

/// The gradient of `embedding` with respect to the weight: `g`'s rows added into the rows the ids picked.
///
/// # Errors
/// `DType` for a non-float weight.
pub fn embedding_backward(g: &Tensor, ids: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let c = weight.shape()[1];
    let g = converted(g, weight.dtype())?;
    let storage = crate::with_float!(weight.dtype(), "embedding", T => {
        let mut dw = zeros("embedding", weight.shape(), weight.numel())?;
        emb::embedding_backward(&mut dw, g.storage().as_slice::<T>(), ids.storage().as_slice::<i64>(), c);
        T::into_storage(dw)
    });
    Ok(Tensor::from_storage(storage, weight.shape().to_vec()))
}

/// Zero each element with probability `p` and scale the rest by `1 / (1 - p)`; identity when not training.
///
/// # Errors
/// `InvalidArgument` for `p` outside [0, 1); `DType` for non-float input.
pub fn dropout(x: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    dropout_with(x, p, training, crate::random::default_generator())
}

/// [`dropout`] with its mask drawn from `gen`.
///
/// # Errors
/// As [`dropout`].
pub fn dropout_with(x: &Tensor, p: f64, training: bool, gen: &crate::random::Generator) -> Result<Tensor> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::invalid("dropout", format!("dropout probability has to be in [0, 1), but got {p}")));
    }
    if !training || p == 0.0 {
        return Ok(x.clone());
    }
    if !x.dtype().is_float() {
        return Err(Error::dtype("dropout", format!("expected a float tensor, got {}", x.dtype())));
    }
    let u = crate::ops::creation::rand_with(x.shape(), DType::F64, gen)?;
    let scale = 1.0 / (1.0 - p);
    // the mask overwrites the uniform draws in place (`u` is ours alone): no infallible temporary of x's size
    u.storage_mut().as_mut_slice::<f64>().iter_mut().for_each(|r| *r = if *r < p { 0.0 } else { scale });
    let mask = u.to_dtype(x.dtype())?;
    x.mul(&mask)
}
