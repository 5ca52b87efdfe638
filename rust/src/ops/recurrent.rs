//! The fused LSTM layer op. Its one output packs `[h_1 .. h_T, h_T, c_T]` as (T + 2, B, H), so the graph stays
//! single-output: callers slice the sequence and the final states, and their gradients meet in one buffer that
//! the backward splits.

use crate::autograd::{record, Op};
use crate::dtype::{Element, Float};
use crate::error::{Error, Result};
use crate::kernels::lstm;
use crate::ops::converted;
use crate::storage::{try_filled, try_with_capacity};
use crate::tensor::Tensor;

/// Zeroed buffers for the kernel's saved state, allocated fallibly (their sizes come from the user's shapes).
fn saved_buffers<T: Float>(t: usize, b: usize, h: usize) -> Result<lstm::Saved<T>> {
    let (g, ch) = lstm::Saved::<T>::lens(t, b, h);
    Ok(lstm::Saved {
        gates: try_filled("lstm", &[t, b, 4 * h], g, T::ZERO)?,
        c: try_filled("lstm", &[t + 1, b, h], ch, T::ZERO)?,
        h: try_filled("lstm", &[t + 1, b, h], ch, T::ZERO)?,
    })
}

fn dims(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b: Option<&Tensor>,
) -> Result<(usize, usize, usize, usize)> {
    let bad = |msg: String| Err(Error::shape("lstm", msg));
    if x.ndim() != 3 {
        return bad(format!("input must be (T, B, input_size), got {:?}", x.shape()));
    }
    let (t, bsz, i) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    if w_hh.ndim() != 2 || !w_hh.shape()[0].is_multiple_of(4) || w_hh.shape()[0] != 4 * w_hh.shape()[1] {
        return bad(format!("weight_hh must be (4*hidden_size, hidden_size), got {:?}", w_hh.shape()));
    }
    let h = w_hh.shape()[1];
    if w_ih.shape() != [4 * h, i] {
        return bad(format!("weight_ih {:?} does not fit input_size {i} and hidden_size {h}", w_ih.shape()));
    }
    if h0.shape() != [bsz, h] || c0.shape() != [bsz, h] {
        return bad(format!("initial states must be ({bsz}, {h}), got {:?} and {:?}", h0.shape(), c0.shape()));
    }
    if let Some(b) = b {
        if b.shape() != [4 * h] {
            return bad(format!("bias must be ({},), got {:?}", 4 * h, b.shape()));
        }
    }
    Ok((t, bsz, i, h))
}

/// Run one LSTM layer over a time-major sequence `x` (T, B, I) from states `h0`, `c0` (B, H).
/// `bias` is `b_ih + b_hh` when the layer has biases. Returns `[h_1..h_T, h_T, c_T]` as (T + 2, B, H).
///
/// # Errors
/// `Shape` for mismatched shapes; `DType` for non-float inputs.
pub fn lstm(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let (t, b, i, h) = dims(x, h0, c0, w_ih, w_hh, bias)?;
    let dt = x.dtype();
    if !dt.is_float() {
        return Err(Error::dtype("lstm", format!("expected a float input, got {dt}")));
    }
    let conv = |v: &Tensor| converted(v, dt);
    let (h0c, c0c, wih, whh) = (conv(h0)?, conv(c0)?, conv(w_ih)?, conv(w_hh)?);
    let bc = bias.map(conv).transpose()?;
    let storage = crate::with_float!(dt, "lstm", T => {
        let (xs, hs, cs, wis, whs) = (x.storage(), h0c.storage(), c0c.storage(), wih.storage(), whh.storage());
        let bs = bc.as_ref().map(|b| b.storage());
        let mut saved = saved_buffers::<T>(t, b, h)?;
        lstm::forward::<T>(&mut saved, xs.as_slice(), hs.as_slice(), cs.as_slice(), wis.as_slice(), whs.as_slice(),
            bs.as_ref().map(|s| s.as_slice::<T>()), t, b, i, h);
        let bh = b * h;
        let mut out = try_with_capacity("lstm", &[t + 2, b, h], (t + 2) * bh)?;
        out.extend_from_slice(&saved.h[bh..]);
        out.extend_from_slice(&saved.h[t * bh..]);
        out.extend_from_slice(&saved.c[t * bh..]);
        T::into_storage(out)
    });
    let out = Tensor::from_storage(storage, vec![t + 2, b, h]);
    let mut inputs = vec![x, h0, c0, w_ih, w_hh];
    inputs.extend(bias);
    Ok(record(out, &inputs, || Op::Lstm))
}

/// Gradients of `lstm`'s inputs from the gradient `g` (T + 2, B, H) of its packed output. The forward is rerun
/// to recover the gate activations and cell states instead of keeping them on the node (a trade of one layer's
/// forward for (T, B, 6H) of memory per layer).
///
/// # Errors
/// Propagates shape and dtype errors.
pub fn lstm_backward(g: &Tensor, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    let (x, h0, c0, w_ih, w_hh) = (&inputs[0], &inputs[1], &inputs[2], &inputs[3], &inputs[4]);
    let bias = inputs.get(5);
    let (t, b, i, h) = dims(x, h0, c0, w_ih, w_hh, bias)?;
    let dt = x.dtype();
    let conv = |v: &Tensor| converted(v, dt);
    let (h0c, c0c, wih, whh, gc) = (conv(h0)?, conv(c0)?, conv(w_ih)?, conv(w_hh)?, conv(g)?);
    let bc = bias.map(conv).transpose()?;
    let bh = b * h;
    let grads: [crate::storage::Storage; 6] = crate::with_float!(dt, "lstm", T => {
        let (xs, hs, cs, wis, whs, gs) = (x.storage(), h0c.storage(), c0c.storage(), wih.storage(), whh.storage(), gc.storage());
        let bs = bc.as_ref().map(|b| b.storage());
        let mut saved = saved_buffers::<T>(t, b, h)?;
        lstm::forward::<T>(&mut saved, xs.as_slice(), hs.as_slice(), cs.as_slice(), wis.as_slice(), whs.as_slice(),
            bs.as_ref().map(|s| s.as_slice::<T>()), t, b, i, h);
        let gv = gs.as_slice::<T>();
        let z = |shape: &[usize]| try_filled("lstm", shape, shape.iter().product(), T::ZERO);
        let (mut dx, mut dh0, mut dc0) = (z(&[t, b, i])?, z(&[b, h])?, z(&[b, h])?);
        let (mut dwih, mut dwhh, mut db) = (z(&[4 * h, i])?, z(&[4 * h, h])?, z(&[4 * h])?);
        let mut dgates = z(&[t, b, 4 * h])?;
        lstm::backward::<T>(&mut dgates, &mut dx, &mut dh0, &mut dc0, &mut dwih, &mut dwhh, &mut db, &gv[..t * bh],
            &gv[t * bh..(t + 1) * bh], &gv[(t + 1) * bh..], &saved, xs.as_slice(), wis.as_slice(), whs.as_slice(), t, b, i, h);
        [dx, dh0, dc0, dwih, dwhh, db].map(T::into_storage)
    });
    let [dx, dh0, dc0, dwih, dwhh, db] = grads;
    let mk = |s, shape: &[usize], need: bool| if need { Some(Tensor::from_storage(s, shape.to_vec())) } else { None };
    let mut out = vec![
        mk(dx, x.shape(), x.requires_grad()),
        mk(dh0, &[b, h], h0.requires_grad()),
        mk(dc0, &[b, h], c0.requires_grad()),
        mk(dwih, &[4 * h, i], w_ih.requires_grad()),
        mk(dwhh, &[4 * h, h], w_hh.requires_grad()),
    ];
    if let Some(bias) = bias {
        out.push(mk(db, &[4 * h], bias.requires_grad()));
    }
    Ok(out)
}
