//! `scaled_dot_product_attention`: PyTorch's `F.scaled_dot_product_attention` as one op over the fused kernels
//! (`kernels/attention`), recorded as one autograd node whose backward arm calls the kernels' backward.
//!
//! The op owns what the kernels leave out: dtype and shape checks with PyTorch's rules, broadcasting of the batch
//! dims of q, k and v (inputs that need it are expanded first, so the gradients sum back through `expand`), the
//! mask's strides over (B, NH, T, S) (the batch dims flatten to B x NH, NH being the last one), the default
//! scale `1 / sqrt(HS)` and the dropout seed, drawn from the library's generator once per call.
//! Not here: gradients with respect to the mask (an error, not a silent zero).

use crate::autograd::{record, Op};
use crate::dtype::{DType, Element, Float};
use crate::error::{Error, Result};
use crate::kernels::attention::{self as kernel, AttentionSpec, Dims, Dropout, Layout, Mask, MaskLayout, QkvGrads};
use crate::ops::converted;
use crate::shape::{broadcast_shapes, broadcast_strides};
use crate::storage::try_filled;
use crate::tensor::Tensor;

const OP: &str = "scaled_dot_product_attention";

/// The call as the kernels see it: sizes, and the mask's layout over (B, NH, T, S).
struct Plan {
    dims: Dims,
    mask: Option<MaskLayout>,
}

/// Plan attention over `q (*, T, HS)`, `k (*, S, HS)`, `v (*, S, HV)` of one batch shape `*`, with a mask of
/// a shape that broadcasts to `(*, T, S)` and whose leading batch dims (all but the last) flatten to one stride.
fn plan(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Plan {
    let nb = q.ndim() - 2;
    let batch = &q.shape()[..nb];
    let (t, hs) = (q.shape()[nb], q.shape()[nb + 1]);
    let (s, hv) = (k.shape()[nb], v.shape()[nb + 1]);
    let nh = batch.last().copied().unwrap_or(1);
    let b = batch.iter().product::<usize>() / nh.max(1);
    let dims = Dims { b: if nh == 0 { 0 } else { b }, nh, t, s, hs, hv };
    let mask = mask.map(|m| {
        let mut full = batch.to_vec();
        full.extend([t, s]);
        let st = broadcast_strides(m.shape(), &full);
        // the leading batch dims are all broadcast or all the mask's own (`mask_for_plan`): the flat index b
        // then steps over the mask's trailing (head, T, S) block
        let padded: Vec<usize> =
            std::iter::repeat_n(1, full.len() - m.ndim()).chain(m.shape().iter().copied()).collect();
        let lead_broadcast = padded[..nb.saturating_sub(1)].iter().all(|&d| d == 1);
        let bstride = if lead_broadcast { 0 } else { padded[nb - 1..].iter().product() };
        let hstride = if nb >= 1 { st[nb - 1] } else { 0 };
        MaskLayout { batch: bstride, head: hstride, row: st[nb], col: st[nb + 1] }
    });
    Plan { dims, mask }
}

/// The mask as the kernels read it: bool, or float in `dt`, with leading batch dims that are either all
/// broadcast or all present (a mask that broadcasts over some of them but not all is expanded over them).
fn mask_for_plan(m: &Tensor, batch: &[usize], t: usize, s: usize, dt: DType) -> Result<Tensor> {
    let mut full = batch.to_vec();
    full.extend([t, s]);
    if m.ndim() > full.len() || broadcast_shapes(OP, m.shape(), &full).ok().as_deref() != Some(&full[..]) {
        return Err(Error::shape(
            OP,
            format!("attn_mask of shape {:?} does not broadcast to the attention weights' shape {full:?}", m.shape()),
        ));
    }
    let m = match m.dtype() {
        DType::Bool => m.clone(),
        d if d.is_float() => converted(m, dt)?,
        d => return Err(Error::dtype(OP, format!("attn_mask must be bool or float, got {d}"))),
    };
    let nb = batch.len();
    if nb < 2 {
        return Ok(m);
    }
    // mask dims aligned with the leading batch dims: all 1 (or missing), or all full, flatten to one stride
    let pad = full.len() - m.ndim();
    let lead: Vec<usize> = (0..nb - 1).map(|i| if i < pad { 1 } else { m.shape()[i - pad] }).collect();
    if lead.iter().all(|&d| d == 1) || lead == batch[..nb - 1] {
        return Ok(m);
    }
    let mut shape: Vec<usize> = batch[..nb - 1].to_vec();
    shape.extend((nb - 1..full.len()).map(|i| if i < pad { 1 } else { m.shape()[i - pad] }));
    let _g = crate::autograd::NoGradGuard::new();
    m.expand(&shape)
}

/// `softmax(q @ k^T * scale + mask) @ v` with PyTorch's `F.scaled_dot_product_attention` semantics: q
/// `(*, T, HS)`, k `(*, S, HS)`, v `(*, S, HV)` with batch dims `*` that broadcast, output `(*, T, HV)`.
/// `mask` is bool (true = takes part) or float (added), broadcast to `(*, T, S)`; `causal` lets query i see keys
/// `j <= i` (top-left aligned); `scale` defaults to `1 / sqrt(HS)`; `dropout_p` drops attention weights (always,
/// as PyTorch's function does; the module decides about training). A query with every key masked gets 0.
///
/// # Errors
/// `DType` for non-float or mixed q, k, v or a mask that is neither bool nor float; `Shape` for fewer than 2
/// dims, mismatched head or key sizes, batch dims that do not broadcast, or a mask that does not broadcast to
/// the weights; `InvalidArgument` for a mask together with `causal`, a dropout probability outside [0, 1] or a
/// non-finite scale; `Unsupported` for a mask that requires a gradient.
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    causal: bool,
    dropout_p: f64,
    scale: Option<f64>,
) -> Result<Tensor> {
    let dt = q.dtype();
    if !dt.is_float() || k.dtype() != dt || v.dtype() != dt {
        return Err(Error::dtype(
            OP,
            format!("expected float query, key and value of one dtype, got {dt}, {} and {}", k.dtype(), v.dtype()),
        ));
    }
    let shapes = format!("query {:?}, key {:?}, value {:?}", q.shape(), k.shape(), v.shape());
    if q.ndim() < 2 || k.ndim() < 2 || v.ndim() < 2 {
        return Err(Error::shape(OP, format!("query, key and value need at least 2 dims, got {shapes}")));
    }
    let last2 = |x: &Tensor| (x.shape()[x.ndim() - 2], x.shape()[x.ndim() - 1]);
    let ((_, hs), (s, hk), (sv, _)) = (last2(q), last2(k), last2(v));
    if hk != hs || sv != s {
        return Err(Error::shape(
            OP,
            format!("query and key need the same head size, key and value the same length: {shapes}"),
        ));
    }
    let batch_of = |x: &Tensor| x.shape()[..x.ndim() - 2].to_vec();
    let batch = broadcast_shapes(OP, &batch_of(q), &batch_of(k))
        .and_then(|b| broadcast_shapes(OP, &b, &batch_of(v)))
        .map_err(|_| Error::shape(OP, format!("the batch dims do not broadcast: {shapes}")))?;
    if causal && mask.is_some() {
        return Err(Error::invalid(OP, "an explicit attn_mask cannot be combined with is_causal=True"));
    }
    if dropout_p.is_nan() || !(0.0..=1.0).contains(&dropout_p) {
        return Err(Error::invalid(OP, format!("dropout probability has to be between 0 and 1, but got {dropout_p}")));
    }
    if let Some(m) = mask {
        if m.requires_grad() && crate::autograd::is_grad_enabled() {
            return Err(Error::unsupported(OP, "the gradient with respect to attn_mask is not implemented; detach it"));
        }
    }
    // broadcast batch dims by expanding (recorded: gradients sum back to the input's shape)
    let expand = |x: &Tensor| -> Result<Tensor> {
        let mut shape = batch.clone();
        shape.extend_from_slice(&x.shape()[x.ndim() - 2..]);
        if x.shape() == shape.as_slice() {
            Ok(x.clone())
        } else {
            x.expand(&shape)
        }
    };
    let (q, k, v) = (expand(q)?, expand(k)?, expand(v)?);
    let t = q.shape()[batch.len()];
    let mask = mask.map(|m| mask_for_plan(m, &batch, t, s, dt)).transpose()?;
    let p = plan(&q, &k, &v, mask.as_ref());
    let scale = scale.unwrap_or(1.0 / (hs as f64).sqrt());
    let seed = if dropout_p > 0.0 { crate::random::with_rng(|r| r.next_u64()) } else { 0 };
    let mut out_shape = batch.clone();
    out_shape.extend([t, p.dims.hv]);
    let d = p.dims;
    let (out, lse) = crate::with_float!(dt, OP, T => {
        let mut out = try_filled(OP, &out_shape, d.b * d.nh * d.t * d.hv, T::ZERO)?;
        let mut lse = try_filled(OP, &[d.b * d.nh * d.t], d.b * d.nh * d.t, T::ZERO)?;
        let (qs, ks, vs) = (q.storage(), k.storage(), v.storage());
        let ms = mask.as_ref().map(|m| m.storage());
        let spec = spec::<T>(&p, ms.as_deref(), causal, scale, dropout_p, seed);
        kernel::attention_forward(&mut out, &mut lse, qs.as_slice(), ks.as_slice(), vs.as_slice(), &spec)?;
        (T::into_storage(out), T::into_storage(lse))
    });
    let out = Tensor::from_storage(out, out_shape);
    let lse = Tensor::from_storage(lse, vec![d.b * d.nh * d.t]);
    let mut inputs = vec![&q, &k, &v];
    inputs.extend(mask.as_ref());
    Ok(record(out, &inputs, || Op::ScaledDotProductAttention { causal, scale, dropout_p, seed, lse }))
}

/// The kernels' description of a planned call; `mask` is the mask's storage when there is one.
fn spec<'a, T: Float>(
    p: &Plan,
    mask: Option<&'a crate::storage::Storage>,
    causal: bool,
    scale: f64,
    dropout_p: f64,
    seed: u64,
) -> AttentionSpec<'a, T> {
    let d = p.dims;
    let mask = match (mask, p.mask) {
        (Some(m), Some(l)) if m.dtype() == DType::Bool => Mask::Bool(m.as_slice::<bool>(), l),
        (Some(m), Some(l)) => Mask::Additive(m.as_slice::<T>(), l),
        _ => Mask::None,
    };
    AttentionSpec {
        dims: d,
        q: Layout::bhtd(d.nh, d.t, d.hs),
        k: Layout::bhtd(d.nh, d.s, d.hs),
        v: Layout::bhtd(d.nh, d.s, d.hv),
        out: Layout::bhtd(d.nh, d.t, d.hv),
        causal,
        mask,
        scale,
        dropout: (dropout_p > 0.0).then_some(Dropout { p: dropout_p, seed }),
    }
}

/// Gradients of q, k, v (and none for the mask) from the output's gradient `g`, the inputs and the output `y`.
///
/// # Errors
/// `DType` for non-float inputs (not reachable from a recorded op).
pub fn scaled_dot_product_attention_backward(
    op: &Op,
    g: &Tensor,
    inputs: &[Tensor],
    y: &Tensor,
) -> Result<Vec<Option<Tensor>>> {
    let Op::ScaledDotProductAttention { causal, scale, dropout_p, seed, lse } = op else {
        unreachable!("scaled_dot_product_attention arm")
    };
    let (q, k, v, mask) = (&inputs[0], &inputs[1], &inputs[2], inputs.get(3));
    let p = plan(q, k, v, mask);
    let dt = q.dtype();
    let g = converted(g, dt)?;
    let (dq, dk, dv) = crate::with_float!(dt, OP, T => {
        let mut dq = try_filled(OP, q.shape(), q.numel(), T::ZERO)?;
        let mut dk = try_filled(OP, k.shape(), k.numel(), T::ZERO)?;
        let mut dv = try_filled(OP, v.shape(), v.numel(), T::ZERO)?;
        let (qs, ks, vs, ys, gs, ls) = (q.storage(), k.storage(), v.storage(), y.storage(), g.storage(), lse.storage());
        let ms = mask.map(|m| m.storage());
        let spec = spec::<T>(&p, ms.as_deref(), *causal, *scale, *dropout_p, *seed);
        let grads = QkvGrads::Separate(&mut dq, &mut dk, &mut dv);
        kernel::attention_backward(grads, gs.as_slice(), qs.as_slice(), ks.as_slice(), vs.as_slice(), ys.as_slice(),
            ls.as_slice(), &spec)?;
        (T::into_storage(dq), T::into_storage(dk), T::into_storage(dv))
    });
    Ok(vec![
        Some(Tensor::from_storage(dq, q.shape().to_vec())),
        Some(Tensor::from_storage(dk, k.shape().to_vec())),
        Some(Tensor::from_storage(dv, v.shape().to_vec())),
        None,
    ])
}
