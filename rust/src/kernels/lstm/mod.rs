//! One LSTM layer over a whole sequence, PyTorch's gate order (i, f, g, o):
//! `gates = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh`, `i, f, o = sigmoid(.)`, `g = tanh(.)`,
//! `c_t = f c_{t-1} + i g`, `h_t = o tanh(c_t)`.
//!
//! Dims: T steps, B batch, I input features, H hidden; x is (T, B, I) time-major. The input projection of all
//! steps is one (T*B, I) x (I, 4H) product; each step adds one (B, H) x (H, 4H) product. The backward pass
//! (through time) collects every step's gate gradients and forms dW_ih, dW_hh and dx as three large products.

use super::activation::sigmoid;
use super::gemm::{gemm, Kernel, MatRef};

/// What the forward saves for the backward.
pub struct Saved<T> {
    /// Gate activations (T, B, 4H): sigmoid(i), sigmoid(f), tanh(g), sigmoid(o).
    pub gates: Vec<T>,
    /// Cell states (T + 1, B, H), c_0 first.
    pub c: Vec<T>,
    /// Hidden states (T + 1, B, H), h_0 first.
    pub h: Vec<T>,
}

impl<T> Saved<T> {
    /// The lengths of `gates` and of `c` and `h` for `t_len` steps, batch `b`, hidden size `h_sz`: the caller
    /// allocates the buffers (fallibly: the sizes come from the user) and zeroes them.
    pub fn lens(t_len: usize, b: usize, h_sz: usize) -> (usize, usize) {
        (t_len * b * 4 * h_sz, (t_len + 1) * b * h_sz)
    }
}

/// Forward over the sequence into `saved`, whose zeroed buffers have the lengths [`Saved::lens`] gives. `bias`
/// is `b_ih + b_hh` (4H) when present. The outputs are `saved.h[B*H..]` (h_1..h_T) and `saved.c[T*B*H..]` (c_T).
#[allow(clippy::too_many_arguments)]
pub fn forward<T: Kernel + Default>(
    saved: &mut Saved<T>,
    x: &[T],
    h0: &[T],
    c0: &[T],
    w_ih: &[T],
    w_hh: &[T],
    bias: Option<&[T]>,
    t_len: usize,
    b: usize,
    i_sz: usize,
    h_sz: usize,
) {
    let (bh, g4) = (b * h_sz, 4 * h_sz);
    let Saved { gates, c, h } = saved;
    if let Some(bias) = bias {
        for row in gates.chunks_exact_mut(g4.max(1)) {
            row.copy_from_slice(bias);
        }
    }
    // all input projections at once: gates[(t, b), :] += x[(t, b), :] @ W_ih^T
    let xm = MatRef { data: x, rs: i_sz, cs: 1 };
    let wih_t = MatRef { data: w_ih, rs: 1, cs: i_sz };
    gemm(t_len * b, g4, i_sz, T::ONE, xm, wih_t, T::ONE, gates, g4);
    c[..bh].copy_from_slice(c0);
    h[..bh].copy_from_slice(h0);
    let whh_t = MatRef { data: w_hh, rs: 1, cs: h_sz };
    for t in 0..t_len {
        let g = &mut gates[t * b * g4..(t + 1) * b * g4];
        let (h_prev, h_rest) = h.split_at_mut((t + 1) * bh);
        let h_prev = &h_prev[t * bh..];
        gemm(b, g4, h_sz, T::ONE, MatRef { data: h_prev, rs: h_sz, cs: 1 }, whh_t, T::ONE, g, g4);
        let (c_prev, c_rest) = c.split_at_mut((t + 1) * bh);
        let c_prev = &c_prev[t * bh..];
        for bi in 0..b {
            let row = &mut g[bi * g4..(bi + 1) * g4];
            for j in 0..h_sz {
                let ig = sigmoid(row[j]);
                let fg = sigmoid(row[h_sz + j]);
                let gg = row[2 * h_sz + j].tanh();
                let og = sigmoid(row[3 * h_sz + j]);
                row[j] = ig;
                row[h_sz + j] = fg;
                row[2 * h_sz + j] = gg;
                row[3 * h_sz + j] = og;
                let ct = fg * c_prev[bi * h_sz + j] + ig * gg;
                c_rest[bi * h_sz + j] = ct;
                h_rest[bi * h_sz + j] = og * ct.tanh();
            }
        }
    }
}

/// Gradients of one layer. `dh_seq` is the gradient of h_1..h_T (T, B, H); `dh_t`, `dc_t` those of the final
/// states. Writes (accumulating) dx (T, B, I), dh0, dc0 (B, H), dw_ih (4H, I), dw_hh (4H, H) and db (4H).
/// `dgates` is the caller's zeroed scratch of (T, B, 4H).
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Kernel + Default>(
    dgates: &mut [T],
    dx: &mut [T],
    dh0: &mut [T],
    dc0: &mut [T],
    dw_ih: &mut [T],
    dw_hh: &mut [T],
    db: &mut [T],
    dh_seq: &[T],
    dh_t: &[T],
    dc_t: &[T],
    saved: &Saved<T>,
    x: &[T],
    w_ih: &[T],
    w_hh: &[T],
    t_len: usize,
    b: usize,
    i_sz: usize,
    h_sz: usize,
) {
    let (bh, g4) = (b * h_sz, 4 * h_sz);
    let mut dh_next = dh_t.to_vec();
    let mut dc_next = dc_t.to_vec();
    let whh = MatRef { data: w_hh, rs: h_sz, cs: 1 };
    for t in (0..t_len).rev() {
        let gates = &saved.gates[t * b * g4..(t + 1) * b * g4];
        let c_prev = &saved.c[t * bh..(t + 1) * bh];
        let c_t = &saved.c[(t + 1) * bh..(t + 2) * bh];
        let dg = &mut dgates[t * b * g4..(t + 1) * b * g4];
        for bi in 0..b {
            let row = &gates[bi * g4..(bi + 1) * g4];
            let drow = &mut dg[bi * g4..(bi + 1) * g4];
            for j in 0..h_sz {
                let k = bi * h_sz + j;
                let (ig, fg, gg, og) = (row[j], row[h_sz + j], row[2 * h_sz + j], row[3 * h_sz + j]);
                let tc = c_t[k].tanh();
                let dh = dh_seq[t * bh + k] + dh_next[k];
                let dc = dc_next[k] + dh * og * (T::ONE - tc * tc);
                drow[j] = dc * gg * ig * (T::ONE - ig);
                drow[h_sz + j] = dc * c_prev[k] * fg * (T::ONE - fg);
                drow[2 * h_sz + j] = dc * ig * (T::ONE - gg * gg);
                drow[3 * h_sz + j] = dh * tc * og * (T::ONE - og);
                dc_next[k] = dc * fg;
            }
        }
        // dh_{t-1} = dgates_t @ W_hh  (B x 4H) (4H x H)
        gemm(b, h_sz, g4, T::ONE, MatRef { data: dg, rs: g4, cs: 1 }, whh, T::ZERO, &mut dh_next, h_sz);
    }
    for (d, v) in dh0.iter_mut().zip(&dh_next) {
        *d += *v;
    }
    for (d, v) in dc0.iter_mut().zip(&dc_next) {
        *d += *v;
    }
    let dgm_t = MatRef { data: &dgates[..], rs: 1, cs: g4 }; // dG^T: (4H, T*B)
                                                             // dW_ih += dG^T X, dW_hh += dG^T H_prev, dx += dG W_ih, db += sum over rows of dG
    gemm(g4, i_sz, t_len * b, T::ONE, dgm_t, MatRef { data: x, rs: i_sz, cs: 1 }, T::ONE, dw_ih, i_sz);
    gemm(
        g4,
        h_sz,
        t_len * b,
        T::ONE,
        dgm_t,
        MatRef { data: &saved.h[..t_len * bh], rs: h_sz, cs: 1 },
        T::ONE,
        dw_hh,
        h_sz,
    );
    gemm(
        t_len * b,
        i_sz,
        g4,
        T::ONE,
        MatRef { data: &dgates[..], rs: g4, cs: 1 },
        MatRef { data: w_ih, rs: i_sz, cs: 1 },
        T::ONE,
        dx,
        i_sz,
    );
    for row in dgates.chunks_exact(g4.max(1)) {
        for (d, v) in db.iter_mut().zip(row) {
            *d += *v;
        }
    }
}
