//! Fused optimizer updates over one parameter's slices, in place, with PyTorch's formulas and operation order.
//!
//! SGD (momentum `mu`, dampening `d`, weight decay `wd`, Nesterov):
//! `g += wd p; buf = first ? g : mu buf + (1 - d) g; g = nesterov ? g + mu buf : buf; p -= lr g`.
//! Adam / AdamW, step `t`: `g += wd p` (Adam) or `p *= 1 - lr wd` (AdamW);
//! `m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.

use crate::dtype::Float;

/// SGD hyper-parameters.
#[derive(Clone, Copy, Debug)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 turns the buffer off).
    pub momentum: f64,
    /// Dampening of the gradient added to the buffer.
    pub dampening: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// One SGD step. `buf` is the momentum buffer (ignored when momentum is 0); `first` says it holds nothing yet.
pub fn sgd<T: Float>(p: &mut [T], g: &[T], buf: &mut [T], h: &Sgd, first: bool) {
    let (lr, mu, damp, wd) =
        (T::from_f64(h.lr), T::from_f64(h.momentum), T::from_f64(1.0 - h.dampening), T::from_f64(h.weight_decay));
    for i in 0..p.len() {
        let mut d = if h.maximize { -g[i] } else { g[i] };
        if h.weight_decay != 0.0 {
            d += wd * p[i];
        }
        if h.momentum != 0.0 {
            buf[i] = if first { d } else { mu * buf[i] + damp * d };
            d = if h.nesterov { d + mu * buf[i] } else { buf[i] };
        }
        p[i] += -lr * d;
    }
}

/// Adam / AdamW hyper-parameters.
#[derive(Clone, Copy, Debug)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Weight decay: an L2 term in the gradient (Adam) or decoupled shrinkage (AdamW).
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// One Adam step number `step` (counting from 1).
pub fn adam<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], h: &Adam, step: u64) {
    let bc1 = 1.0 - h.beta1.powf(step as f64);
    let bc2_sqrt = (1.0 - h.beta2.powf(step as f64)).sqrt();
    let (b1, b2) = (T::from_f64(h.beta1), T::from_f64(h.beta2));
    let (one_b1, one_b2) = (T::from_f64(1.0 - h.beta1), T::from_f64(1.0 - h.beta2));
    let step_size = T::from_f64(h.lr / bc1);
    let (inv_bc2, eps, wd) = (T::from_f64(1.0 / bc2_sqrt), T::from_f64(h.eps), T::from_f64(h.weight_decay));
    let shrink = T::from_f64(1.0 - h.lr * h.weight_decay);
    for i in 0..p.len() {
        let mut d = if h.maximize { -g[i] } else { g[i] };
        if h.weight_decay != 0.0 {
            if h.decoupled {
                p[i] *= shrink;
            } else {
                d += wd * p[i];
            }
        }
        m[i] = b1 * m[i] + one_b1 * d;
        v[i] = b2 * v[i] + one_b2 * d * d;
        let denom = v[i].sqrt() * inv_bc2 + eps;
        p[i] += -step_size * m[i] / denom;
    }
}
