//! The fused LSTM layer op. Its one output packs `[h_1 .. h_T, h_T, c_T]` as (T + 2, B, H) (hidden states by
//! time, then the final states of the direction it ran), so the graph stays single-output: callers slice the
//! sequence and the final states, and their gradients meet in one buffer that the backward splits.
//!
//! What the backward needs besides the inputs and the output (whose hidden states it reads): the gate activations
//! (T, B, 4H) and the cell states (T + 1, B, H), (5T + 1) B H values. The rule: the node keeps them when they take
//! at most [`KEEP_MAX_BYTES`] (1 GiB per layer and direction; B64 T128 H256 in float32 is 42 MB), and the backward
//! reuses them; above it the node keeps nothing and the backward reruns the layer's forward to get them back,
//! which costs about a third of the layer's forward + backward time. Nothing is kept when no graph is recorded.

use crate::autograd::{is_grad_enabled, record, LstmSaved, Op};
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::kernels::gemm::Kernel;
use crate::kernels::lstm::{self, Ctx, Dims, Direction, Grads, Saved};
use crate::ops::converted;
use crate::recycle;
use crate::storage::{try_filled, Storage};
use crate::tensor::Tensor;

/// Most bytes of saved gate activations and cell states a node keeps for its backward; larger layers recompute.
pub const KEEP_MAX_BYTES: usize = 1 << 30;

/// Buffers for the kernel's saved state, allocated fallibly (their sizes come from the user's shapes).
fn saved_buffers<T: Float>(d: Dims) -> Result<Saved<T>> {
    let (g, c) = Saved::<T>::lens(d);
    Ok(Saved {
        gates: try_filled("lstm", &[d.t, d.b, 4 * d.h], g, T::ZERO)?,
        c: try_filled("lstm", &[d.t + 1, d.b, d.h], c, T::ZERO)?,
    })
}

fn dims(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b: Option<&Tensor>,
    direction: Direction,
) -> Result<Dims> {
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
    Ok(Dims { t, b: bsz, i, h, direction })
}

/// Run one LSTM layer over a time-major sequence `x` (T, B, I) from states `h0`, `c0` (B, H), forward in time or
/// in reverse. `bias` is `b_ih + b_hh` when the layer has biases. Returns `[h_1..h_T, h_last, c_last]` as
/// (T + 2, B, H), the hidden states in time order either way.
///
/// # Errors
/// `Shape` for mismatched shapes; `DType` for non-float inputs; `OutOfMemory` for impossible sizes.
pub fn lstm(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    bias: Option<&Tensor>,
    direction: Direction,
) -> Result<Tensor> {
    lstm_keeping(x, h0, c0, w_ih, w_hh, bias, direction, KEEP_MAX_BYTES)
}

/// [`lstm`] with the saved-state limit as an argument (the tests compare both backward paths).
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_keeping(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    bias: Option<&Tensor>,
    direction: Direction,
    keep_max_bytes: usize,
) -> Result<Tensor> {
    let d = dims(x, h0, c0, w_ih, w_hh, bias, direction)?;
    let dt = x.dtype();
    if !dt.is_float() {
        return Err(Error::dtype("lstm", format!("expected a float input, got {dt}")));
    }
    let mut inputs = vec![x, h0, c0, w_ih, w_hh];
    inputs.extend(bias);
    let recording = is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
    let (out, saved) = crate::with_float!(dt, "lstm", T => forward::<T>(x, h0, c0, w_ih, w_hh, bias, d)?);
    let (gl, cl) = Saved::<u8>::lens(d);
    let keep = recording && (gl + cl).saturating_mul(dt.size()) <= keep_max_bytes;
    let saved = if keep {
        let gates = Tensor::from_storage(saved.0, vec![d.t, d.b, 4 * d.h]);
        Some(LstmSaved { gates, cells: Tensor::from_storage(saved.1, vec![d.t + 1, d.b, d.h]) })
    } else {
        // the buffers go to the cache of freed buffers, for the next call's (the allocator would unmap them)
        recycle::give(saved.0);
        recycle::give(saved.1);
        None
    };
    let out = Tensor::from_storage(out, vec![d.t + 2, d.b, d.h]);
    Ok(record(out, &inputs, || Op::Lstm { direction, saved }))
}

/// The kernel's forward on tensors: the output and the saved (gates, cells).
fn forward<T: Kernel>(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    bias: Option<&Tensor>,
    d: Dims,
) -> Result<(Storage, (Storage, Storage))> {
    let conv = |v: &Tensor| converted(v, T::DTYPE);
    let (h0c, c0c, wih, whh) = (conv(h0)?, conv(c0)?, conv(w_ih)?, conv(w_hh)?);
    let bc = bias.map(conv).transpose()?;
    let (xs, hs, cs, wis, whs) = (x.storage(), h0c.storage(), c0c.storage(), wih.storage(), whh.storage());
    let bs = bc.as_ref().map(|b| b.storage());
    let mut saved = saved_buffers::<T>(d)?;
    let bh = d.b * d.h;
    let mut out = try_filled("lstm", &[d.t + 2, d.b, d.h], (d.t + 2) * bh, T::ZERO)?;
    lstm::lstm_forward::<T>(
        Ctx::current(),
        &mut out,
        &mut saved,
        xs.as_slice(),
        hs.as_slice(),
        cs.as_slice(),
        wis.as_slice(),
        whs.as_slice(),
        bs.as_ref().map(|s| s.as_slice::<T>()),
        d,
    );
    Ok((T::into_storage(out), (T::into_storage(saved.gates), T::into_storage(saved.c))))
}

/// Gradients of `lstm`'s inputs from the gradient `g` (T + 2, B, H) of its packed output `y`, with the saved
/// state of `op` (an [`Op::Lstm`]) or, when it kept none, the forward rerun to recover it.
///
/// # Errors
/// Propagates shape and dtype errors; `OutOfMemory` when the gradients cannot be allocated.
pub fn lstm_backward(op: &Op, g: &Tensor, inputs: &[Tensor], y: &Tensor) -> Result<Vec<Option<Tensor>>> {
    let Op::Lstm { direction, saved } = op else { unreachable!("lstm_backward is only called for Op::Lstm") };
    let (x, h0, c0, w_ih, w_hh) = (&inputs[0], &inputs[1], &inputs[2], &inputs[3], &inputs[4]);
    let bias = inputs.get(5);
    let d = dims(x, h0, c0, w_ih, w_hh, bias, *direction)?;
    let (t, b, i, h) = (d.t, d.b, d.i, d.h);
    let want = [x, h0, c0, w_ih, w_hh].map(Tensor::requires_grad);
    let want_db = bias.is_some_and(Tensor::requires_grad);
    let grads: [Option<Storage>; 6] = crate::with_float!(x.dtype(), "lstm", T => match saved {
        Some(s) => {
            let (gates, cells) = (s.gates.storage(), s.cells.storage());
            backward::<T>(d, want, want_db, g, x, h0, w_ih, w_hh, y, gates.as_slice(), cells.as_slice())?
        }
        None => {
            let (out, (gates, cells)) = forward::<T>(x, h0, c0, w_ih, w_hh, bias, d)?;
            recycle::give(out);
            let grads = backward::<T>(d, want, want_db, g, x, h0, w_ih, w_hh, y, gates.as_slice(), cells.as_slice())?;
            recycle::give(gates);
            recycle::give(cells);
            grads
        }
    });
    let [dx, dh0, dc0, dwih, dwhh, db] = grads;
    let mk = |s: Option<Storage>, shape: &[usize]| s.map(|s| Tensor::from_storage(s, shape.to_vec()));
    let mut out =
        vec![mk(dx, &[t, b, i]), mk(dh0, &[b, h]), mk(dc0, &[b, h]), mk(dwih, &[4 * h, i]), mk(dwhh, &[4 * h, h])];
    if bias.is_some() {
        out.push(mk(db, &[4 * h]));
    }
    Ok(out)
}

/// The kernel's backward on tensors, with the saved state as slices: the gradients wanted, as storages.
#[allow(clippy::too_many_arguments)]
fn backward<T: Kernel>(
    d: Dims,
    want: [bool; 5],
    want_db: bool,
    g: &Tensor,
    x: &Tensor,
    h0: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    y: &Tensor,
    gates: &[T],
    cells: &[T],
) -> Result<[Option<Storage>; 6]> {
    let (t, b, i, h) = (d.t, d.b, d.i, d.h);
    let conv = |v: &Tensor| converted(v, T::DTYPE);
    let (h0c, wih, whh, gc, yc) = (conv(h0)?, conv(w_ih)?, conv(w_hh)?, conv(g)?, conv(y)?);
    let (xs, hs, wis, whs, gs, ys) =
        (x.storage(), h0c.storage(), wih.storage(), whh.storage(), gc.storage(), yc.storage());
    let z = |need: bool, shape: &[usize]| -> Result<Option<Vec<T>>> {
        need.then(|| try_filled("lstm", shape, shape.iter().product(), T::ZERO)).transpose()
    };
    let (mut dx, mut dh0, mut dc0) = (z(want[0], &[t, b, i])?, z(want[1], &[b, h])?, z(want[2], &[b, h])?);
    let (mut dwih, mut dwhh, mut db) = (z(want[3], &[4 * h, i])?, z(want[4], &[4 * h, h])?, z(want_db, &[4 * h])?);
    let mut dz = try_filled("lstm", &[t, b, 4 * h], t * b * 4 * h, T::ZERO)?;
    let grads = Grads {
        dx: dx.as_deref_mut(),
        dh0: dh0.as_deref_mut(),
        dc0: dc0.as_deref_mut(),
        dw_ih: dwih.as_deref_mut(),
        dw_hh: dwhh.as_deref_mut(),
        db: db.as_deref_mut(),
    };
    lstm::lstm_backward::<T>(
        Ctx::current(),
        grads,
        &mut dz,
        gs.as_slice(),
        gates,
        cells,
        ys.as_slice(),
        xs.as_slice(),
        hs.as_slice(),
        wis.as_slice(),
        whs.as_slice(),
        d,
    );
    recycle::give(T::into_storage(dz));
    Ok([dx, dh0, dc0, dwih, dwhh, db].map(|v| v.map(T::into_storage)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::{DType, Element};

    fn leaf(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> =
            (0..n).map(|k| (((k as u64 * 2654435761 + seed * 97) % 1000) as f64 / 1000.0 - 0.5) * 0.8).collect();
        let t = Tensor::from_storage(f64::into_storage(v), shape.to_vec());
        t.set_requires_grad(true).expect("a float leaf");
        t
    }

    /// Kept or recomputed, the backward reads the same gate activations and cell states: the same bits.
    #[test]
    fn saved_and_recomputed_backward_agree() {
        for direction in [Direction::Forward, Direction::Reverse] {
            let (t, b, i, h) = (5, 3, 4, 7);
            let ins = [
                leaf(&[t, b, i], 1),
                leaf(&[b, h], 2),
                leaf(&[b, h], 3),
                leaf(&[4 * h, i], 4),
                leaf(&[4 * h, h], 5),
                leaf(&[4 * h], 6),
            ];
            let g = leaf(&[t + 2, b, h], 7).detach();
            let mut results = vec![];
            for keep in [KEEP_MAX_BYTES, 0] {
                for v in &ins {
                    v.set_grad(None).unwrap();
                }
                let y =
                    lstm_keeping(&ins[0], &ins[1], &ins[2], &ins[3], &ins[4], Some(&ins[5]), direction, keep).unwrap();
                let kept = matches!(&*y.node(), Some(n) if matches!(&n.op, Op::Lstm { saved: Some(_), .. }));
                assert_eq!(kept, keep > 0, "{direction:?}: the node keeps its state only under the limit");
                crate::autograd::backward(&y, Some(&g), false).unwrap();
                let grads: Vec<Vec<f64>> =
                    ins.iter().map(|v| v.grad().unwrap().storage().as_slice::<f64>().to_vec()).collect();
                results.push((y.storage().as_slice::<f64>().to_vec(), grads));
            }
            assert!(results[0] == results[1], "{direction:?}: recomputed backward differs from the saved one");
            assert_eq!(ins[0].dtype(), DType::F64);
        }
    }
}
