//! The fused GPT as one autograd op: `gpt(idx, params) -> logits (B, T, V)`, recorded as [`Op::Gpt`] so that
//! `loss.backward()` runs `gpt_backward` once for all parameters. Checks every input (ids, sizes, dtypes)
//! before any arithmetic, so the fused path raises the same errors as the composed one.
//!
//! The activation arena is borrowed from a [`GptCache`] (one per model) for as long as the graph holds the op,
//! and handed back when the op is freed (after `backward`, or when the logits are dropped), so training steps of
//! one shape reuse one arena instead of faulting fresh pages in every step.

use super::gpt::{gpt_backward, gpt_forward, param_count, param_shapes, Acts, Dims, Dropout, Params};
use super::kv::{gpt_step, KvCache};
use crate::autograd::{record, Op};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::kernels::gemm::Kernel;
use crate::ops::converted;
use crate::random::with_rng;
use crate::storage::try_filled;
use crate::tensor::Tensor;
use std::sync::{Arc, Mutex};

/// The model's hyper-parameters the tensors' shapes do not tell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GptConfig {
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Whether the linear layers and layer norms have biases.
    pub bias: bool,
    /// Dropout probability for this call (the model's in training, 0 in evaluation).
    pub dropout: f64,
}

enum AnyActs {
    F32(Acts<f32>),
    F64(Acts<f64>),
}

/// The arena a model's forward passes borrow (at most one kept while idle).
#[derive(Default)]
pub struct GptCache {
    idle: Mutex<Option<AnyActs>>,
}

impl GptCache {
    /// An empty cache.
    pub fn new() -> Arc<GptCache> {
        Arc::new(GptCache::default())
    }

    /// Drop the idle arena (its memory goes back to the allocator).
    pub fn clear(&self) {
        *lock(&self.idle) = None;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the op keeps for its backward: the borrowed arena and the sizes.
pub struct GptSaved {
    acts: Mutex<Option<AnyActs>>,
    home: Arc<GptCache>,
    dims: Dims,
    config: GptConfig,
}

impl Drop for GptSaved {
    fn drop(&mut self) {
        if let Some(a) = lock(&self.acts).take() {
            *lock(&self.home.idle) = Some(a);
        }
    }
}

impl std::fmt::Debug for GptSaved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GptSaved({:?}, {:?})", self.dims, self.config)
    }
}

impl GptSaved {
    /// The sizes of the forward that saved this.
    pub fn dims(&self) -> Dims {
        self.dims
    }
}

/// Take the cache's idle arena if it fits `dims` and `T`, else allocate one.
fn borrow_acts<T: Element + crate::Float>(
    cache: &GptCache,
    dims: Dims,
    unwrap: fn(AnyActs) -> Option<Acts<T>>,
) -> Result<Acts<T>> {
    if let Some(a) = lock(&cache.idle).take().and_then(unwrap) {
        if a.dims() == dims {
            return Ok(a);
        }
    }
    Acts::try_new(dims)
}

/// Check the inputs and return the dims; `params` in [`Params::all`]'s order.
fn check(idx: &Tensor, params: &[Tensor], cfg: GptConfig) -> Result<Dims> {
    let op = "gpt";
    if !(0.0..1.0).contains(&cfg.dropout) {
        return Err(Error::invalid(op, format!("dropout probability has to be in [0, 1), but got {}", cfg.dropout)));
    }
    let n = param_count(cfg.n_layer, cfg.bias);
    if params.len() != n {
        return Err(Error::invalid(
            op,
            format!(
                "expected {n} parameter tensors for {} layers (bias={}), got {}",
                cfg.n_layer,
                cfg.bias,
                params.len()
            ),
        ));
    }
    if idx.dtype() != DType::I64 || idx.ndim() != 2 {
        return Err(Error::shape(
            op,
            format!("idx must be an int64 tensor (B, T), got {} of shape {:?}", idx.dtype(), idx.shape()),
        ));
    }
    let dt = params[0].dtype();
    if !dt.is_float() || params.iter().any(|p| p.dtype() != dt) {
        return Err(Error::dtype(op, "the parameters must all be float32 or all float64"));
    }
    if params[0].ndim() != 2 || params[1].ndim() != 2 {
        return Err(Error::shape(
            op,
            format!("wte and wpe must be 2-D, got {:?} and {:?}", params[0].shape(), params[1].shape()),
        ));
    }
    let (v, c, block) = (params[0].shape()[0], params[0].shape()[1], params[1].shape()[0]);
    if cfg.n_head == 0 || c % cfg.n_head != 0 {
        return Err(Error::invalid(op, format!("n_embd {c} is not divisible by n_head {}", cfg.n_head)));
    }
    for (i, (p, want)) in params.iter().zip(param_shapes(cfg.n_layer, c, v, block, cfg.bias)).enumerate() {
        if p.shape() != want.as_slice() {
            return Err(Error::shape(op, format!("parameter {i} has shape {:?}, expected {want:?}", p.shape())));
        }
    }
    let (b, t) = (idx.shape()[0], idx.shape()[1]);
    if t > block {
        return Err(Error::invalid(op, format!("Cannot forward sequence of length {t}, block size is only {block}")));
    }
    let ids = idx.storage();
    if let Some(&bad) = ids.as_slice::<i64>().iter().find(|&&i| i < 0 || i as usize >= v) {
        return Err(Error::range(op, format!("token id {bad} is out of range for a vocabulary of {v}")));
    }
    Ok(Dims { b, t, c, nh: cfg.n_head, v, l: cfg.n_layer })
}

fn forward_t<T: Kernel>(
    idx: &Tensor,
    params: &[Tensor],
    cfg: GptConfig,
    dims: Dims,
    mut acts: Acts<T>,
) -> Result<(Tensor, Acts<T>)> {
    let shape = [dims.b, dims.t, dims.v];
    let mut logits = try_filled("gpt", &shape, dims.b * dims.t * dims.v, T::ZERO)?;
    let guards: Vec<_> = params.iter().map(Tensor::storage).collect();
    let p = Params { all: guards.iter().map(|g| g.as_slice::<T>()).collect(), bias: cfg.bias };
    let ids = idx.storage();
    let dropout = (cfg.dropout > 0.0).then(|| Dropout { p: cfg.dropout, seed: with_rng(|r| r.next_u64()) });
    gpt_forward(&mut acts, &mut logits, &p, ids.as_slice::<i64>(), dropout);
    Ok((Tensor::from_storage(T::into_storage(logits), shape.to_vec()), acts))
}

/// The fused GPT forward: logits (B, T, V) of token ids `idx` (B, T). `params` in [`Params::all`]'s order, the
/// tied head left out. Recorded for autograd when any parameter requires a gradient.
///
/// # Errors
/// `Shape`/`DType` for mismatched parameters or ids, `OutOfRange` for ids outside the vocabulary,
/// `InvalidArgument` for a sequence longer than the block size or a width not divisible by the heads,
/// `OutOfMemory` when the arena cannot be allocated.
pub fn gpt(idx: &Tensor, params: &[Tensor], cfg: GptConfig, cache: &Arc<GptCache>) -> Result<Tensor> {
    let dims = check(idx, params, cfg)?;
    let (logits, acts) = match params[0].dtype() {
        DType::F32 => {
            let acts = borrow_acts(cache, dims, |a| if let AnyActs::F32(a) = a { Some(a) } else { None })?;
            let (l, a) = forward_t::<f32>(idx, params, cfg, dims, acts)?;
            (l, AnyActs::F32(a))
        }
        _ => {
            let acts = borrow_acts(cache, dims, |a| if let AnyActs::F64(a) = a { Some(a) } else { None })?;
            let (l, a) = forward_t::<f64>(idx, params, cfg, dims, acts)?;
            (l, AnyActs::F64(a))
        }
    };
    let saved = Arc::new(GptSaved { acts: Mutex::new(Some(acts)), home: cache.clone(), dims, config: cfg });
    let mut inputs: Vec<&Tensor> = vec![idx];
    inputs.extend(params);
    // Not recorded (no_grad, or no parameter requires grad): `saved` drops here and the arena goes back idle.
    Ok(record(logits, &inputs, || Op::Gpt(saved)))
}

fn backward_t<T: Kernel>(
    acts: &mut Acts<T>,
    saved: &GptSaved,
    g: &Tensor,
    inputs: &[Tensor],
) -> Result<Vec<Option<Tensor>>> {
    let (idx, params) = (&inputs[0], &inputs[1..]);
    let mut grads: Vec<Vec<T>> =
        params.iter().map(|p| try_filled("gpt", p.shape(), p.numel(), T::ZERO)).collect::<Result<_>>()?;
    let g = converted(g, T::DTYPE)?;
    let gs = g.storage();
    let guards: Vec<_> = params.iter().map(Tensor::storage).collect();
    let p = Params { all: guards.iter().map(|g| g.as_slice::<T>()).collect(), bias: saved.config.bias };
    let ids = idx.storage();
    gpt_backward(acts, &mut grads, gs.as_slice::<T>(), &p, ids.as_slice::<i64>());
    let mut out = vec![None];
    for (p, gv) in params.iter().zip(grads) {
        out.push(p.requires_grad().then(|| Tensor::from_storage(T::into_storage(gv), p.shape().to_vec())));
    }
    Ok(out)
}

/// The gradients of every input of [`gpt`] (none for the ids) from the logits' gradient `g`.
///
/// # Errors
/// `Autograd` if the saved activations are gone; `OutOfMemory` for the gradient buffers.
pub fn gpt_backward_op(saved: &GptSaved, g: &Tensor, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    let mut acts = lock(&saved.acts);
    match acts.as_mut() {
        Some(AnyActs::F32(a)) => backward_t(a, saved, g, inputs),
        Some(AnyActs::F64(a)) => backward_t(a, saved, g, inputs),
        None => Err(Error::autograd("gpt", "the saved activations were freed")),
    }
}

enum AnyKv {
    F32(KvCache<f32>),
    F64(KvCache<f64>),
}

/// A model's key/value cache for generation: the parameter tensors (read at every step, so they may not change
/// shape meanwhile) and the cached keys and values of B rows.
pub struct GptKv {
    params: Vec<Tensor>,
    config: GptConfig,
    vocab: usize,
    kv: AnyKv,
}

impl GptKv {
    /// An empty cache for `batch` rows of up to the block size's tokens.
    ///
    /// # Errors
    /// As [`gpt`] for mismatched parameters; `OutOfMemory` for the cache.
    pub fn new(params: &[Tensor], cfg: GptConfig, batch: usize) -> Result<GptKv> {
        let probe = Tensor::from_vec(Vec::<i64>::new(), &[batch, 0])?;
        let d = check(&probe, params, cfg)?;
        let block = params[1].shape()[0];
        let kv = match params[0].dtype() {
            DType::F32 => AnyKv::F32(KvCache::try_new(batch, block, d.c, d.nh, d.l)?),
            _ => AnyKv::F64(KvCache::try_new(batch, block, d.c, d.nh, d.l)?),
        };
        Ok(GptKv { params: params.to_vec(), config: cfg, vocab: d.v, kv })
    }

    /// Tokens cached per row.
    pub fn len(&self) -> usize {
        match &self.kv {
            AnyKv::F32(k) => k.len(),
            AnyKv::F64(k) => k.len(),
        }
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget the cached tokens (a new context starts at position 0).
    pub fn clear(&mut self) {
        match &mut self.kv {
            AnyKv::F32(k) => k.clear(),
            AnyKv::F64(k) => k.clear(),
        }
    }

    /// Feed `idx` (B, Tn) new tokens; returns the logits of each row's last one (B, V).
    ///
    /// # Errors
    /// `Shape` for ids of another batch or not 2-D, `OutOfRange` for ids outside the vocabulary,
    /// `InvalidArgument` when the tokens do not fit in the block size.
    pub fn step(&mut self, idx: &Tensor) -> Result<Tensor> {
        let (b, cap) = match &self.kv {
            AnyKv::F32(k) => (k.batch(), k.capacity()),
            AnyKv::F64(k) => (k.batch(), k.capacity()),
        };
        if idx.dtype() != DType::I64 || idx.ndim() != 2 || idx.shape()[0] != b {
            return Err(Error::shape(
                "gpt",
                format!("new ids must be int64 of shape ({b}, T), got {} of shape {:?}", idx.dtype(), idx.shape()),
            ));
        }
        let tn = idx.shape()[1];
        if self.len() + tn > cap {
            return Err(Error::invalid(
                "gpt",
                format!("Cannot forward sequence of length {}, block size is only {cap}", self.len() + tn),
            ));
        }
        let ids = idx.storage();
        let ids = ids.as_slice::<i64>();
        if let Some(&bad) = ids.iter().find(|&&i| i < 0 || i as usize >= self.vocab) {
            return Err(Error::range(
                "gpt",
                format!("token id {bad} is out of range for a vocabulary of {}", self.vocab),
            ));
        }
        let guards: Vec<_> = self.params.iter().map(Tensor::storage).collect();
        let v = self.vocab;
        let bias = self.config.bias;
        Ok(match &mut self.kv {
            AnyKv::F32(k) => {
                let p = Params { all: guards.iter().map(|g| g.as_slice::<f32>()).collect(), bias };
                let mut logits = try_filled("gpt", &[b, v], b * v, 0f32)?;
                gpt_step(k, &mut logits, &p, ids, tn)?;
                Tensor::from_vec(logits, &[b, v])?
            }
            AnyKv::F64(k) => {
                let p = Params { all: guards.iter().map(|g| g.as_slice::<f64>()).collect(), bias };
                let mut logits = try_filled("gpt", &[b, v], b * v, 0f64)?;
                gpt_step(k, &mut logits, &p, ids, tn)?;
                Tensor::from_vec(logits, &[b, v])?
            }
        })
    }
}
