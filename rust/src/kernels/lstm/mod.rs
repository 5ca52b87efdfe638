//! One LSTM layer over a whole sequence, PyTorch's gate order (i, f, g, o):
//! `z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh`, `i, f, o = sigmoid(.)`, `g = tanh(.)`,
//! `c_t = f c_{t-1} + i g`, `h_t = o tanh(c_t)`; in [`Direction::Reverse`] (a bidirectional layer's second half)
//! the steps run from t = T-1 down to 0, reading and writing the sequence in place rather than flipped copies.
//!
//! Dims: T steps, B batch, I input features, H hidden; x is (T, B, I) time-major.
//! - forward: the input projections of all steps are one (T*B, I) x (I, 4H) product with the bias in its
//!   epilogue; each step then adds (B, H) x (H, 4H) on W_hh^T packed once per call (`gemm::PackedB`) and updates
//!   the cell (`cell.rs`); threads split the batch and run the whole time loop each (`step.rs`).
//! - backward (through time): each step's gate gradients, then `dh_{t-1} = dz_t W_hh` on W_hh packed once, split
//!   the same way; dW_ih, dW_hh, dx and db come after the loop as large products over all steps.
//!
//! The forward saves the gate activations (T, B, 4H) and the cell states (T + 1, B, H) for the backward; the
//! hidden states are the output itself. Results are the same bits on any number of threads.

mod cell;
mod step;

use super::gemm::{gemm_bias_with, gemm_packed_with, gemm_with, Kernel, MatRef, PackedB};
use crate::parallel::{self, MIN_PARALLEL};
use crate::simd::Simd;
use step::{backward_steps, forward_steps, Plan};

pub use cell::{cell_backward, cell_forward};

/// Which way a layer runs through time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// t = 0, 1, .., T-1.
    Forward,
    /// t = T-1, .., 0 (the second direction of a bidirectional layer).
    Reverse,
}

impl Direction {
    /// ONNX's name of the direction (`forward` or `reverse`).
    pub fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
        }
    }
}

/// The sizes of one layer and the direction it runs.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    /// Steps.
    pub t: usize,
    /// Batch.
    pub b: usize,
    /// Input features.
    pub i: usize,
    /// Hidden size.
    pub h: usize,
    /// Forward or reverse in time.
    pub direction: Direction,
}

impl Dims {
    /// The time index of step `s`.
    fn time(&self, s: usize) -> usize {
        match self.direction {
            Direction::Forward => s,
            Direction::Reverse => self.t - 1 - s,
        }
    }
}

/// The SIMD level and thread count a call runs with (explicit so tests can run every path).
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// Instruction-set level.
    pub simd: Simd,
    /// Threads to cut the work for.
    pub threads: usize,
}

impl Ctx {
    /// The library's current level and pool size.
    pub fn current() -> Ctx {
        Ctx { simd: crate::simd::active(), threads: parallel::num_threads() }
    }
}

/// What the forward saves for the backward.
pub struct Saved<T> {
    /// Gate activations (T, B, 4H) by time: sigmoid(i), sigmoid(f), tanh(g), sigmoid(o).
    pub gates: Vec<T>,
    /// Cell states (T + 1, B, H) by step: c_0, then the state after each step (step s is time T-1-s when reverse).
    pub c: Vec<T>,
}

impl<T> Saved<T> {
    /// The lengths of `gates` and of `c` for `d`: the caller allocates them (fallibly: the sizes come from the
    /// user); their contents on entry do not matter.
    pub fn lens(d: Dims) -> (usize, usize) {
        (d.t * d.b * 4 * d.h, (d.t + 1) * d.b * d.h)
    }
}

/// Forward over the sequence. `out` (T + 2, B, H) gets `[h_1 .. h_T by time, h of the last step, c of the last
/// step]`; `saved` is filled (lengths from [`Saved::lens`]). `bias` is `b_ih + b_hh` (4H) when present; `x` is
/// (T, B, I), `h0` and `c0` (B, H), `w_ih` (4H, I), `w_hh` (4H, H).
///
/// # Panics
/// If a slice's length does not match `d`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward<T: Kernel>(
    ctx: Ctx,
    out: &mut [T],
    saved: &mut Saved<T>,
    x: &[T],
    h0: &[T],
    c0: &[T],
    w_ih: &[T],
    w_hh: &[T],
    bias: Option<&[T]>,
    d: Dims,
) {
    let Dims { t, b, i, h, .. } = d;
    let (bh, g4) = (b * h, 4 * h);
    let (gl, cl) = Saved::<T>::lens(d);
    let Saved { gates, c } = saved;
    assert!(
        out.len() == (t + 2) * bh
            && gates.len() == gl
            && c.len() == cl
            && x.len() == t * b * i
            && h0.len() == bh
            && c0.len() == bh
            && w_ih.len() == g4 * i
            && w_hh.len() == g4 * h
            && bias.is_none_or(|v| v.len() == g4),
        "lstm: buffers do not match T={t} B={b} I={i} H={h}"
    );
    c[..bh].copy_from_slice(c0);
    let (seq, last) = out.split_at_mut(t * bh);
    if t == 0 {
        last[..bh].copy_from_slice(h0);
        last[bh..].copy_from_slice(c0);
        return;
    }
    // z_t = x_t W_ih^T + b for every step at once
    let (xm, wih_t) = (MatRef { data: x, rs: i, cs: 1 }, MatRef { data: w_ih, rs: 1, cs: i });
    gemm_bias_with(ctx.simd, ctx.threads, t * b, g4, i, T::ONE, xm, wih_t, T::ZERO, bias, gates, g4);
    let whh_t = PackedB::grouped(ctx.simd, h, g4, 4, MatRef { data: w_hh, rs: 1, cs: h });
    let plan = Plan::new::<T>(whh_t.simd(), ctx.threads, b, h);
    forward_steps(&plan, d, &whh_t, h0, gates, c, seq);
    let tl = d.time(t - 1);
    last[..bh].copy_from_slice(&seq[tl * bh..(tl + 1) * bh]);
    last[bh..].copy_from_slice(&c[t * bh..]);
}

/// The gradients [`lstm_backward`] accumulates into (`+=`), each `None` when not wanted.
pub struct Grads<'a, T> {
    /// (T, B, I)
    pub dx: Option<&'a mut [T]>,
    /// (B, H)
    pub dh0: Option<&'a mut [T]>,
    /// (B, H)
    pub dc0: Option<&'a mut [T]>,
    /// (4H, I)
    pub dw_ih: Option<&'a mut [T]>,
    /// (4H, H)
    pub dw_hh: Option<&'a mut [T]>,
    /// (4H)
    pub db: Option<&'a mut [T]>,
}

/// Backward through time. `dout` is the gradient of the forward's `out` (T + 2, B, H), `out` the output itself
/// (its hidden states), `gates` and `c` what the forward saved ([`Saved`]). `dz` is scratch of (T, B, 4H)
/// (contents irrelevant): it ends holding the gate gradients.
///
/// # Panics
/// If a slice's length does not match `d`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward<T: Kernel>(
    ctx: Ctx,
    grads: Grads<'_, T>,
    dz: &mut [T],
    dout: &[T],
    gates: &[T],
    c: &[T],
    out: &[T],
    x: &[T],
    h0: &[T],
    w_ih: &[T],
    w_hh: &[T],
    d: Dims,
) {
    let Dims { t, b, i, h, .. } = d;
    let (bh, g4) = (b * h, 4 * h);
    let (gl, cl) = Saved::<T>::lens(d);
    assert!(
        dz.len() == gl
            && gates.len() == gl
            && c.len() == cl
            && dout.len() == (t + 2) * bh
            && out.len() == (t + 2) * bh
            && x.len() == t * b * i
            && h0.len() == bh
            && w_ih.len() == g4 * i
            && w_hh.len() == g4 * h,
        "lstm: buffers do not match T={t} B={b} I={i} H={h}"
    );
    let Grads { dx, dh0, dc0, dw_ih, dw_hh, db } = grads;
    let mut dc = dout[(t + 1) * bh..].to_vec();
    if t == 0 {
        add_into(dh0, &dout[t * bh..(t + 1) * bh]);
        add_into(dc0, &dc);
        return;
    }
    let w = PackedB::new(ctx.simd, g4, h, MatRef { data: w_hh, rs: h, cs: 1 });
    let plan = Plan::new::<T>(w.simd(), ctx.threads, b, h);
    let mut scratch = vec![T::ZERO; bh];
    backward_steps(&plan, d, &w, dz, &mut dc, &mut scratch, gates, c, &dout[..t * bh], &dout[t * bh..(t + 1) * bh]);
    // the first step's recurrent input was h0: dh0 += dz W_hh there
    let first = d.time(0);
    if let Some(dh0) = dh0 {
        let a = MatRef { data: &dz[first * b * g4..(first + 1) * b * g4], rs: g4, cs: 1 };
        gemm_packed_with(ctx.threads, b, T::ONE, a, &w, T::ONE, dh0, h);
    }
    add_into(dc0, &dc);
    weight_grads(ctx, dx, dw_ih, dw_hh, db, dz, out, x, h0, w_ih, d);
}

/// `dst += src` when `dst` is wanted.
fn add_into<T: Kernel>(dst: Option<&mut [T]>, src: &[T]) {
    if let Some(dst) = dst {
        dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
    }
}

/// The gradients that sum over all steps, from the gate gradients `dz` (T*B, 4H): dW_ih += dz^T X,
/// dW_hh += dz^T H_prev (H_prev: each step's recurrent input, h0 at the first step, else the output of the step
/// before), dx += dz W_ih, db += the column sums of dz.
#[allow(clippy::too_many_arguments)]
fn weight_grads<T: Kernel>(
    ctx: Ctx,
    dx: Option<&mut [T]>,
    dw_ih: Option<&mut [T]>,
    dw_hh: Option<&mut [T]>,
    db: Option<&mut [T]>,
    dz: &[T],
    out: &[T],
    x: &[T],
    h0: &[T],
    w_ih: &[T],
    d: Dims,
) {
    let Dims { t, b, i, h, .. } = d;
    let (bh, g4, tb) = (b * h, 4 * h, t * b);
    let Ctx { simd, threads } = ctx;
    let dz_t = |from: usize, rows: usize| MatRef { data: &dz[from * g4..(from + rows) * g4], rs: 1, cs: g4 }; // (4H, rows)
    if let Some(dw) = dw_ih {
        gemm_with(simd, threads, g4, i, tb, T::ONE, dz_t(0, tb), MatRef { data: x, rs: i, cs: 1 }, T::ONE, dw, i);
    }
    if let Some(dw) = dw_hh {
        // the first step's input h0, then steps 1.. against the outputs one time index earlier (forward) or later
        let first = d.time(0);
        gemm_with(
            simd,
            threads,
            g4,
            h,
            b,
            T::ONE,
            dz_t(first * b, b),
            MatRef { data: h0, rs: h, cs: 1 },
            T::ONE,
            dw,
            h,
        );
        let (z_from, h_from) = match d.direction {
            Direction::Forward => (b, 0),
            Direction::Reverse => (0, bh),
        };
        let hm = MatRef { data: &out[h_from..h_from + (t - 1) * bh], rs: h, cs: 1 };
        gemm_with(simd, threads, g4, h, (t - 1) * b, T::ONE, dz_t(z_from, (t - 1) * b), hm, T::ONE, dw, h);
    }
    if let Some(dx) = dx {
        let (a, wm) = (MatRef { data: dz, rs: g4, cs: 1 }, MatRef { data: w_ih, rs: i, cs: 1 });
        gemm_with(simd, threads, tb, i, g4, T::ONE, a, wm, T::ONE, dx, i);
    }
    if let Some(db) = db {
        column_sums(threads, db, dz, g4);
    }
}

/// `db[j] += sum of rows[r][j]` over the rows of `rows` (width `w`), the columns in blocks over threads; each
/// column is summed in row order whatever the blocks, so the bits do not depend on the thread count.
fn column_sums<T: Kernel>(threads: usize, db: &mut [T], rows: &[T], w: usize) {
    let tasks = if rows.len() >= MIN_PARALLEL { threads.min(w.div_ceil(64)).max(1) } else { 1 };
    let per = w.div_ceil(tasks).max(1);
    let chunks: Vec<std::sync::Mutex<&mut [T]>> = db.chunks_mut(per).map(std::sync::Mutex::new).collect();
    let sum = |k: usize| {
        let mut part = chunks[k].lock().unwrap_or_else(|e| e.into_inner());
        let lo = k * per;
        for row in rows.chunks_exact(w) {
            part.iter_mut().zip(&row[lo..]).for_each(|(d, &v)| *d += v);
        }
    };
    if chunks.len() > 1 {
        parallel::run(chunks.len(), sum);
    } else {
        (0..chunks.len()).for_each(sum);
    }
}

#[cfg(test)]
mod tests;
