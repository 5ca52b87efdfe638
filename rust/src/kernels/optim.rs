//! Fused optimizer updates over one parameter's slices (or any piece of them), in place, with PyTorch's
//! formulas and operation order.
//!
//! SGD (momentum `mu`, dampening `d`, weight decay `wd`, Nesterov):
//! `g += wd p; buf = first ? g : mu buf + (1 - d) g; g = nesterov ? g + mu buf : buf; p -= lr g`.
//! Adam / AdamW, step `t`: `g += wd p` (Adam) or `p *= 1 - lr wd` (AdamW);
//! `m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
//! RMSprop (decay `a`, momentum `mu`, weight decay `wd`, centered): `g += wd p; v = a v + (1 - a) g^2;
//! ga = a ga + (1 - a) g` (centered) `; s = v - ga^2` (centered) or `v`; then PyTorch's form
//! `x = g / (sqrt(s) + eps); buf = mu buf + x` (momentum) `; p -= lr x` (x the buffer with momentum), or Keras's
//! `x = lr g / sqrt(s + eps); buf = mu buf + x; p -= x` ([`RmspropForm`]).
//!
//! float32 runs SIMD code; float64 runs the plain loop. Both use only `+ - * / sqrt` in the same order (no
//! fused multiply-add), each rounded once, so every level and every element gives the plain float32 loop's
//! result bit for bit: an update cut into pieces anywhere, on any number of threads, is identical.
//! Not here: splitting parameters into pieces and over threads (`crate::optim`), gradient clipping.

use super::simd_loops::{load, step, store};
use crate::dtype::Float;
use crate::simd::{self, F32x};

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

/// Where RMSprop's epsilon and learning rate enter the update; the two agree when epsilon is 0 and the
/// learning rate constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmspropForm {
    /// `torch.optim.RMSprop`: `x = g / (sqrt(s) + eps)`, the momentum buffer sums `x`, `p -= lr * buffer`.
    Torch,
    /// `keras.optimizers.RMSprop`: `x = lr * g / sqrt(s + eps)`, the momentum buffer sums `x`, `p -= buffer`.
    Keras,
}

/// RMSprop hyper-parameters.
#[derive(Clone, Copy, Debug)]
pub struct Rmsprop {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the squared-gradient average (PyTorch's `alpha`, Keras's `rho`).
    pub alpha: f64,
    /// Added to the denominator, outside or inside the square root as `form` says.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Momentum factor (0 turns the buffer off).
    pub momentum: f64,
    /// Subtract the squared gradient average from the squared-gradient average (needs a `grad_avg` state).
    pub centered: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// PyTorch's or Keras's placement of epsilon and the learning rate.
    pub form: RmspropForm,
}

/// SGD's constants in the element type.
#[derive(Clone, Copy)]
struct SgdConsts<T> {
    lr: T,
    mu: T,
    damp: T,
    wd: T,
    h: Sgd,
    first: bool,
}

impl<T: Float> SgdConsts<T> {
    fn new(h: &Sgd, first: bool) -> Self {
        let f = T::from_f64;
        SgdConsts { lr: f(h.lr), mu: f(h.momentum), damp: f(1.0 - h.dampening), wd: f(h.weight_decay), h: *h, first }
    }
}

/// Adam's constants in the element type.
#[derive(Clone, Copy)]
struct AdamConsts<T> {
    b1: T,
    b2: T,
    one_b1: T,
    one_b2: T,
    step_size: T,
    inv_bc2: T,
    eps: T,
    wd: T,
    shrink: T,
    h: Adam,
}

impl<T: Float> AdamConsts<T> {
    fn new(h: &Adam, step: u64) -> Self {
        let f = T::from_f64;
        let bc1 = 1.0 - h.beta1.powf(step as f64);
        let bc2_sqrt = (1.0 - h.beta2.powf(step as f64)).sqrt();
        AdamConsts {
            b1: f(h.beta1),
            b2: f(h.beta2),
            one_b1: f(1.0 - h.beta1),
            one_b2: f(1.0 - h.beta2),
            step_size: f(h.lr / bc1),
            inv_bc2: f(1.0 / bc2_sqrt),
            eps: f(h.eps),
            wd: f(h.weight_decay),
            shrink: f(1.0 - h.lr * h.weight_decay),
            h: *h,
        }
    }
}

/// RMSprop's constants in the element type. The two forms differ only in constants, each exact where it is
/// neutral: `sqrt(s + eps_in) + eps_out` (Torch: `eps_in = 0`; Keras: `eps_out = 0`), and
/// `x = (lr_in g) / denom; p += lr_out x` (Torch: `lr_in = 1, lr_out = -lr`; Keras: `lr_in = lr, lr_out = -1`).
#[derive(Clone, Copy)]
struct RmspropConsts<T> {
    alpha: T,
    one_alpha: T,
    mu: T,
    wd: T,
    eps_in: T,
    eps_out: T,
    lr_in: T,
    lr_out: T,
    h: Rmsprop,
}

impl<T: Float> RmspropConsts<T> {
    fn new(h: &Rmsprop) -> Self {
        let f = T::from_f64;
        let (eps_in, eps_out, lr_in, lr_out) = match h.form {
            RmspropForm::Torch => (0.0, h.eps, 1.0, -h.lr),
            RmspropForm::Keras => (h.eps, 0.0, h.lr, -1.0),
        };
        RmspropConsts {
            alpha: f(h.alpha),
            one_alpha: f(1.0 - h.alpha),
            mu: f(h.momentum),
            wd: f(h.weight_decay),
            eps_in: f(eps_in),
            eps_out: f(eps_out),
            lr_in: f(lr_in),
            lr_out: f(lr_out),
            h: *h,
        }
    }
}

/// One SGD step of `p` with gradient `g`. `buf` is the momentum buffer (ignored when momentum is 0); `first`
/// says it holds nothing yet. All the same length.
pub fn sgd<T: Float>(p: &mut [T], g: &[T], buf: &mut [T], h: &Sgd, first: bool) {
    if let (Some(p), Some(g), Some(buf)) = (T::as_f32_mut(p), T::as_f32(g), T::as_f32_mut(buf)) {
        return sgd_f32(simd::active(), p, g, buf, SgdConsts::new(h, first));
    }
    sgd_plain(p, g, buf, h, first);
}

/// [`sgd`] element by element: the float64 path, and the loop every SIMD level reproduces bit for bit in f32.
fn sgd_plain<T: Float>(p: &mut [T], g: &[T], buf: &mut [T], h: &Sgd, first: bool) {
    let k = SgdConsts::<T>::new(h, first);
    for i in 0..p.len() {
        let mut d = if h.maximize { -g[i] } else { g[i] };
        if h.weight_decay != 0.0 {
            d += k.wd * p[i];
        }
        if h.momentum != 0.0 {
            buf[i] = if first { d } else { k.mu * buf[i] + k.damp * d };
            d = if h.nesterov { d + k.mu * buf[i] } else { buf[i] };
        }
        p[i] += -k.lr * d;
    }
}

/// One Adam step number `step` (counting from 1) of `p` with gradient `g` and moments `m`, `v`, all the same
/// length.
pub fn adam<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], h: &Adam, step: u64) {
    if let (Some(p), Some(g), Some(m), Some(v)) = (T::as_f32_mut(p), T::as_f32(g), T::as_f32_mut(m), T::as_f32_mut(v)) {
        return adam_f32(simd::active(), p, g, m, v, AdamConsts::new(h, step));
    }
    adam_plain(p, g, m, v, h, step);
}

/// [`adam`] element by element: the float64 path, and the loop every SIMD level reproduces bit for bit in f32.
fn adam_plain<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], h: &Adam, step: u64) {
    let k = AdamConsts::<T>::new(h, step);
    for i in 0..p.len() {
        let mut d = if h.maximize { -g[i] } else { g[i] };
        if h.weight_decay != 0.0 {
            if h.decoupled {
                p[i] *= k.shrink;
            } else {
                d += k.wd * p[i];
            }
        }
        m[i] = k.b1 * m[i] + k.one_b1 * d;
        v[i] = k.b2 * v[i] + k.one_b2 * d * d;
        let denom = v[i].sqrt() * k.inv_bc2 + k.eps;
        p[i] += -k.step_size * m[i] / denom;
    }
}

/// One RMSprop step of `p` with gradient `g` and squared-gradient average `v`; `buf` is the momentum buffer
/// (given exactly when `h.momentum != 0`), `ga` the gradient average (given exactly when `h.centered`). All the
/// same length.
pub fn rmsprop<T: Float>(p: &mut [T], g: &[T], v: &mut [T], buf: Option<&mut [T]>, ga: Option<&mut [T]>, h: &Rmsprop) {
    if let (Some(p), Some(g), Some(v)) = (T::as_f32_mut(p), T::as_f32(g), T::as_f32_mut(v)) {
        let buf32 = buf.map(|b| T::as_f32_mut(b).expect("the momentum buffer has the parameter's dtype"));
        let ga32 = ga.map(|a| T::as_f32_mut(a).expect("the gradient average has the parameter's dtype"));
        return rmsprop_f32(simd::active(), p, g, v, buf32, ga32, RmspropConsts::new(h));
    }
    rmsprop_plain(p, g, v, buf, ga, h);
}

/// [`rmsprop`] element by element: the float64 path, and the loop every SIMD level reproduces bit for bit in
/// f32.
fn rmsprop_plain<T: Float>(
    p: &mut [T],
    g: &[T],
    v: &mut [T],
    mut buf: Option<&mut [T]>,
    mut ga: Option<&mut [T]>,
    h: &Rmsprop,
) {
    let k = RmspropConsts::<T>::new(h);
    for i in 0..p.len() {
        let mut d = if h.maximize { -g[i] } else { g[i] };
        if h.weight_decay != 0.0 {
            d += k.wd * p[i];
        }
        v[i] = k.alpha * v[i] + k.one_alpha * d * d;
        let mut s = v[i];
        if let Some(ga) = ga.as_deref_mut() {
            ga[i] = k.alpha * ga[i] + k.one_alpha * d;
            s = s - ga[i] * ga[i];
        }
        let denom = (s + k.eps_in).sqrt() + k.eps_out;
        let mut x = k.lr_in * d / denom;
        if let Some(buf) = buf.as_deref_mut() {
            buf[i] = k.mu * buf[i] + x;
            x = buf[i];
        }
        p[i] += k.lr_out * x;
    }
}

/// The gradient an update reads, shared by the SIMD optimizer bodies: negated for `maximize`, plus `wd * p` when
/// `l2` (weight decay as an L2 term; AdamW's decoupled decay shrinks the parameter instead).
#[inline(always)]
unsafe fn update_grad<V: F32x>(g: V, p: V, maximize: bool, l2: bool, wd: V) -> V {
    // SAFETY: called only from the SIMD optimizer bodies, under the CPU contract `simd_kernel!` establishes for them.
    unsafe {
        let d = if maximize { V::sub(V::splat(-0.0), g) } else { g };
        if l2 {
            V::add(d, V::mul(wd, p))
        } else {
            d
        }
    }
}

#[inline(always)]
unsafe fn sgd_body<V: F32x>(p: &mut [f32], g: &[f32], buf: &mut [f32], k: SgdConsts<f32>) {
    // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
    unsafe {
        let (lr, mu, damp, wd) = (V::splat(-k.lr), V::splat(k.mu), V::splat(k.damp), V::splat(k.wd));
        let mut i = 0;
        while i < p.len() {
            let n = step::<V>(i, p.len());
            let pv = load::<V>(p, i, n);
            let mut d = update_grad::<V>(load::<V>(g, i, n), pv, k.h.maximize, k.h.weight_decay != 0.0, wd);
            if k.h.momentum != 0.0 {
                let b = if k.first { d } else { V::add(V::mul(mu, load::<V>(buf, i, n)), V::mul(damp, d)) };
                store(b, buf, i, n);
                d = if k.h.nesterov { V::add(d, V::mul(mu, b)) } else { b };
            }
            store(V::add(pv, V::mul(lr, d)), p, i, n);
            i += n;
        }
    }
}

crate::simd_kernel! {
    /// [`sgd_body`] at the given level.
    fn sgd_f32(simd: Simd, p: &mut [f32], g: &[f32], buf: &mut [f32], k: SgdConsts<f32>) = sgd_body;
}

#[inline(always)]
unsafe fn adam_body<V: F32x>(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: AdamConsts<f32>) {
    // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
    unsafe {
        let (b1, b2, one_b1, one_b2) = (V::splat(k.b1), V::splat(k.b2), V::splat(k.one_b1), V::splat(k.one_b2));
        let (step_size, inv_bc2, eps) = (V::splat(-k.step_size), V::splat(k.inv_bc2), V::splat(k.eps));
        let (wd, shrink) = (V::splat(k.wd), V::splat(k.shrink));
        let mut i = 0;
        while i < p.len() {
            let n = step::<V>(i, p.len());
            let mut pv = load::<V>(p, i, n);
            let l2 = k.h.weight_decay != 0.0 && !k.h.decoupled;
            let d = update_grad::<V>(load::<V>(g, i, n), pv, k.h.maximize, l2, wd);
            if k.h.weight_decay != 0.0 && k.h.decoupled {
                pv = V::mul(pv, shrink);
            }
            let mv = V::add(V::mul(b1, load::<V>(m, i, n)), V::mul(one_b1, d));
            let vv = V::add(V::mul(b2, load::<V>(v, i, n)), V::mul(V::mul(one_b2, d), d));
            store(mv, m, i, n);
            store(vv, v, i, n);
            let denom = V::add(V::mul(V::sqrt(vv), inv_bc2), eps);
            store(V::add(pv, V::div(V::mul(step_size, mv), denom)), p, i, n);
            i += n;
        }
    }
}

crate::simd_kernel! {
    /// [`adam_body`] at the given level.
    fn adam_f32(simd: Simd, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: AdamConsts<f32>) = adam_body;
}

#[inline(always)]
unsafe fn rmsprop_body<V: F32x>(
    p: &mut [f32],
    g: &[f32],
    v: &mut [f32],
    mut buf: Option<&mut [f32]>,
    mut ga: Option<&mut [f32]>,
    k: RmspropConsts<f32>,
) {
    // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
    unsafe {
        let (alpha, one_alpha, mu, wd) = (V::splat(k.alpha), V::splat(k.one_alpha), V::splat(k.mu), V::splat(k.wd));
        let (eps_in, eps_out, lr_in, lr_out) =
            (V::splat(k.eps_in), V::splat(k.eps_out), V::splat(k.lr_in), V::splat(k.lr_out));
        let mut i = 0;
        while i < p.len() {
            let n = step::<V>(i, p.len());
            let pv = load::<V>(p, i, n);
            let d = update_grad::<V>(load::<V>(g, i, n), pv, k.h.maximize, k.h.weight_decay != 0.0, wd);
            let vv = V::add(V::mul(alpha, load::<V>(v, i, n)), V::mul(V::mul(one_alpha, d), d));
            store(vv, v, i, n);
            let mut s = vv;
            if let Some(ga) = ga.as_deref_mut() {
                let av = V::add(V::mul(alpha, load::<V>(ga, i, n)), V::mul(one_alpha, d));
                store(av, ga, i, n);
                s = V::sub(s, V::mul(av, av));
            }
            let denom = V::add(V::sqrt(V::add(s, eps_in)), eps_out);
            let mut x = V::div(V::mul(lr_in, d), denom);
            if let Some(buf) = buf.as_deref_mut() {
                x = V::add(V::mul(mu, load::<V>(buf, i, n)), x);
                store(x, buf, i, n);
            }
            store(V::add(pv, V::mul(lr_out, x)), p, i, n);
            i += n;
        }
    }
}

crate::simd_kernel! {
    /// [`rmsprop_body`] at the given level.
    fn rmsprop_f32(
        simd: Simd,
        p: &mut [f32],
        g: &[f32],
        v: &mut [f32],
        buf: Option<&mut [f32]>,
        ga: Option<&mut [f32]>,
        k: RmspropConsts<f32>,
    ) = rmsprop_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Simd;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = crate::random::Rng::seeded(seed);
        (0..n).map(|_| (4.0 * rng.uniform() - 2.0) as f32).collect()
    }

    #[test]
    fn every_level_reproduces_the_plain_float32_loop_bit_for_bit() {
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            for len in [1usize, 7, 16, 17, 33, 1001] {
                let g = values(len, 1);
                for (decoupled, wd, maximize) in [(true, 0.1, false), (false, 0.01, true), (true, 0.0, false)] {
                    let h =
                        Adam { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: wd, decoupled, maximize };
                    let (mut p, mut m, mut v) = (values(len, 2), vec![0f32; len], vec![0f32; len]);
                    let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
                    for step in 1..=3 {
                        adam_f32(simd, &mut p, &g, &mut m, &mut v, AdamConsts::new(&h, step));
                        adam_plain(&mut p2, &g, &mut m2, &mut v2, &h, step);
                    }
                    assert_eq!((&p, &m, &v), (&p2, &m2, &v2), "{} adam {h:?} len {len}", simd.name());
                }
                for (momentum, nesterov, wd) in [(0.9, true, 0.1), (0.9, false, 0.0), (0.0, false, 0.01)] {
                    let h = Sgd { lr: 0.05, momentum, dampening: 0.1, weight_decay: wd, nesterov, maximize: false };
                    let (mut p, mut b) = (values(len, 3), vec![0f32; len]);
                    let (mut p2, mut b2) = (p.clone(), b.clone());
                    for first in [true, false, false] {
                        sgd_f32(simd, &mut p, &g, &mut b, SgdConsts::new(&h, first));
                        sgd_plain(&mut p2, &g, &mut b2, &h, first);
                    }
                    assert_eq!((&p, &b), (&p2, &b2), "{} sgd {h:?} len {len}", simd.name());
                }
            }
        }
    }

    #[test]
    fn every_level_reproduces_the_plain_float32_rmsprop_loop_bit_for_bit() {
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            for len in [1usize, 7, 16, 17, 33, 1001] {
                let g = values(len, 4);
                for form in [RmspropForm::Torch, RmspropForm::Keras] {
                    for (momentum, centered, wd, maximize) in [
                        (0.0, false, 0.0, false),
                        (0.9, true, 0.1, false),
                        (0.5, false, 0.0, true),
                        (0.0, true, 0.01, false),
                    ] {
                        let h = Rmsprop {
                            lr: 0.01,
                            alpha: 0.9,
                            eps: 1e-7,
                            weight_decay: wd,
                            momentum,
                            centered,
                            maximize,
                            form,
                        };
                        let (mut p, mut v, mut b, mut a) =
                            (values(len, 5), vec![0f32; len], vec![0f32; len], vec![0f32; len]);
                        let (mut p2, mut v2, mut b2, mut a2) = (p.clone(), v.clone(), b.clone(), a.clone());
                        for _ in 0..3 {
                            let (buf, ga) = ((momentum != 0.0).then_some(&mut b[..]), centered.then_some(&mut a[..]));
                            rmsprop_f32(simd, &mut p, &g, &mut v, buf, ga, RmspropConsts::new(&h));
                            let (buf2, ga2) =
                                ((momentum != 0.0).then_some(&mut b2[..]), centered.then_some(&mut a2[..]));
                            rmsprop_plain(&mut p2, &g, &mut v2, buf2, ga2, &h);
                        }
                        assert_eq!((&p, &v, &b, &a), (&p2, &v2, &b2, &a2), "{} rmsprop {h:?} len {len}", simd.name());
                    }
                }
            }
        }
    }

    #[test]
    fn float64_rmsprop_forms_match_their_formulas() {
        // one step from zero state: v = (1 - a) g^2; PyTorch p -= lr g / (sqrt(v) + eps), Keras p -= lr g / sqrt(v + eps)
        let (lr, a, eps, g0, p0) = (0.01f64, 0.9f64, 1e-3f64, 0.5f64, 1.0f64);
        for form in [RmspropForm::Torch, RmspropForm::Keras] {
            let h =
                Rmsprop { lr, alpha: a, eps, weight_decay: 0.0, momentum: 0.0, centered: false, maximize: false, form };
            let (mut p, mut v) = (vec![p0], vec![0.0f64]);
            rmsprop(&mut p, &[g0], &mut v, None, None, &h);
            let vv = (1.0 - a) * g0 * g0;
            let want = match form {
                RmspropForm::Torch => p0 - lr * g0 / (vv.sqrt() + eps),
                RmspropForm::Keras => p0 - lr * g0 / (vv + eps).sqrt(),
            };
            assert!((p[0] - want).abs() < 1e-15, "{form:?}: {} vs {want}", p[0]);
        }
    }

    #[test]
    fn float64_adamw_matches_the_formula() {
        // one AdamW step from zero moments: m = (1 - b1) g, v = (1 - b2) g^2, so the step is about lr sign(g)
        let h =
            Adam { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, decoupled: true, maximize: false };
        let (mut p, g, mut m, mut v) = (vec![1.0f64, -2.0], vec![0.5, -0.25], vec![0.0; 2], vec![0.0; 2]);
        adam(&mut p, &g, &mut m, &mut v, &h, 1);
        for (i, (p0, g)) in [(1.0f64, 0.5f64), (-2.0, -0.25)].iter().enumerate() {
            let shrunk = p0 * (1.0 - 0.01 * 0.1);
            let want = shrunk - 0.01 / 0.1 * (0.1 * g) / ((0.001 * g * g).sqrt() / 0.001f64.sqrt() + 1e-8);
            assert!((p[i] - want).abs() < 1e-15, "{} vs {want}", p[i]);
        }
    }
}
