//! Elementwise ops: unary math, broadcast binary arithmetic, comparisons, `where`, dtype casts.
//!
//! Dtypes follow PyTorch's promotion for tensors: float64 beats float32 beats int64 beats bool; division,
//! `pow` and the transcendental functions of integer tensors compute in float32.

use super::converted;
use crate::autograd::{record, Binary, Op, Unary};
use crate::dtype::{DType, Element, Float};
use crate::error::{Error, Result};
use crate::kernels::elementwise::{arith_chunk, map_backward, map_forward, Arith, Map};
use crate::kernels::gelu::{gelu_backward, gelu_forward};
use crate::kernels::strided::{map1, map2, map3, Plan};
use crate::parallel;
use crate::shape::{broadcast_shapes, broadcast_strides, strides};
use crate::storage::try_with_capacity;
use crate::tensor::Tensor;
use std::mem::MaybeUninit;

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// Elements a kernel writes at a time into a fresh buffer: its zeroing then stays in the L1 cache.
const PIECE: usize = 4096;

/// A fresh buffer of `n` elements, zeroed and handed to `write(lo, piece)` one piece of elements `lo..` (at
/// most `piece` long) at a time, the pieces spread over the pool. Each piece is zeroed just before `write`
/// fills or accumulates into it, so the buffer is not swept in a separate pass first, and the threads share a
/// large fresh buffer's first-touch page faults. With nothing to write (`write` does nothing, `piece` is
/// `usize::MAX`) it is a parallel `zeros`, whose large fills then take the C library's streaming stores.
pub(crate) fn fresh<T: Float>(
    op: &'static str,
    shape: &[usize],
    n: usize,
    piece: usize,
    write: impl Fn(usize, &mut [T]) + Sync,
) -> Result<Vec<T>> {
    let mut v = try_with_capacity(op, shape, n)?;
    parallel::for_chunks(&mut v.spare_capacity_mut()[..n], 2 * PIECE, |lo, ch| {
        for (i, part) in ch.chunks_mut(piece).enumerate() {
            part.fill(MaybeUninit::new(T::ZERO));
            // SAFETY: every element of `part` was initialized on the line above.
            let part = unsafe { &mut *(part as *mut [MaybeUninit<T>] as *mut [T]) };
            write(lo + i * piece, part);
        }
    });
    // SAFETY: the capacity holds `n` elements, and `for_chunks` handed every one of them to exactly one call
    // above, which initialized it.
    unsafe { v.set_len(n) };
    Ok(v)
}

/// A plan reading `a` and `b` broadcast to `out`.
fn plan2(a: &[usize], b: &[usize], out: &[usize]) -> Plan<2> {
    Plan::new(out, [broadcast_strides(a, out), broadcast_strides(b, out)], [0, 0])
}

fn contiguous_plan(shape: &[usize]) -> Plan<1> {
    Plan::new(shape, [strides(shape)], [0])
}

/// int64 arithmetic wraps on overflow, as PyTorch's does.
fn binary_i64(kind: Binary, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Vec<i64>> {
    let (sa, sb) = (a.storage(), b.storage());
    let (x, y) = (sa.as_slice::<i64>(), sb.as_slice::<i64>());
    let plan = plan2(a.shape(), b.shape(), shape);
    let op = kind.name();
    match kind {
        Binary::Add => map2(op, shape, x, y, &plan, i64::wrapping_add),
        Binary::Sub => map2(op, shape, x, y, &plan, i64::wrapping_sub),
        Binary::Mul => map2(op, shape, x, y, &plan, i64::wrapping_mul),
        Binary::Div | Binary::Pow => unreachable!("division and pow compute in float"),
    }
}

fn binary_f<T: Float>(kind: Binary, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Vec<T>> {
    let (sa, sb) = (a.storage(), b.storage());
    let (x, y) = (sa.as_slice::<T>(), sb.as_slice::<T>());
    let plan = plan2(a.shape(), b.shape(), shape);
    let op = kind.name();
    let arith = |k: Arith| fresh(op, shape, plan.len(), PIECE, |lo, out| arith_chunk(out, lo, x, y, &plan, k));
    match kind {
        Binary::Add => arith(Arith::Add),
        Binary::Sub => arith(Arith::Sub),
        Binary::Mul => arith(Arith::Mul),
        Binary::Div => arith(Arith::Div),
        Binary::Pow => map2(op, shape, x, y, &plan, |p, q| p.powf(q)),
    }
}

fn binary(kind: Binary, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let op = kind.name();
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    let mut dt = DType::promote(a.dtype(), b.dtype());
    if dt == DType::Bool || (!dt.is_float() && matches!(kind, Binary::Div | Binary::Pow)) {
        dt = if matches!(kind, Binary::Div | Binary::Pow) { DType::F32 } else { DType::I64 };
    }
    let (ca, cb) = (converted(a, dt)?, converted(b, dt)?);
    let out = match dt {
        DType::F32 => Tensor::from_storage(f32::into_storage(binary_f::<f32>(kind, &ca, &cb, &shape)?), shape),
        DType::F64 => Tensor::from_storage(f64::into_storage(binary_f::<f64>(kind, &ca, &cb, &shape)?), shape),
        _ => Tensor::from_storage(i64::into_storage(binary_i64(kind, &ca, &cb, &shape)?), shape),
    };
    Ok(record(out, &[a, b], || Op::Binary(kind)))
}

fn unary_f<T: Float>(kind: Unary, x: &Tensor) -> Result<Vec<T>> {
    let s = x.storage();
    let v = s.as_slice::<T>();
    let plan = contiguous_plan(x.shape());
    let op = kind.name();
    // each piece's kernel call runs on the thread `fresh` gave the piece to (below the kernels' own threshold)
    let map = |f: Map| fresh(op, x.shape(), v.len(), PIECE, |lo, out| map_forward(out, &v[lo..lo + out.len()], f));
    match kind {
        Unary::Neg => map(Map::Neg),
        Unary::Exp => map(Map::Exp),
        Unary::Tanh => map(Map::Tanh),
        Unary::Sigmoid => map(Map::Sigmoid),
        Unary::Relu => map(Map::Relu),
        Unary::Abs => map(Map::Abs),
        Unary::Gelu(approximate) => {
            fresh(op, x.shape(), v.len(), PIECE, |lo, out| gelu_forward(out, &v[lo..lo + out.len()], approximate))
        }
        Unary::Log => map1(op, x.shape(), v, &plan, T::ln),
        Unary::Sqrt => map1(op, x.shape(), v, &plan, T::sqrt),
        Unary::Clamp { min, max } => {
            let (lo, hi) = (min.map(T::from_f64), max.map(T::from_f64));
            // a NaN bound gives NaN, as PyTorch's (a comparison with it alone would leave `a` unchanged)
            map1(op, x.shape(), v, &plan, move |a: T| {
                let a = match lo {
                    Some(l) if a < l || l.is_nan() => l,
                    _ => a,
                };
                match hi {
                    Some(h) if a > h || h.is_nan() => h,
                    _ => a,
                }
            })
        }
    }
}

fn unary_i64(kind: Unary, x: &Tensor) -> Result<Vec<i64>> {
    let s = x.storage();
    let v = s.as_slice::<i64>();
    let plan = contiguous_plan(x.shape());
    let op = kind.name();
    match kind {
        Unary::Neg => map1(op, x.shape(), v, &plan, i64::wrapping_neg),
        Unary::Abs => map1(op, x.shape(), v, &plan, i64::wrapping_abs),
        Unary::Relu => map1(op, x.shape(), v, &plan, |a| a.max(0)),
        Unary::Clamp { min, max } => {
            let lo = min.map_or(i64::MIN, |m| m.ceil() as i64);
            let hi = max.map_or(i64::MAX, |m| m.floor() as i64);
            map1(op, x.shape(), v, &plan, move |a| a.max(lo).min(hi))
        }
        _ => unreachable!("transcendental functions of integers compute in float"),
    }
}

fn unary(kind: Unary, x: &Tensor) -> Result<Tensor> {
    if let Unary::Clamp { min: Some(lo), max: Some(hi) } = kind {
        if lo > hi {
            // PyTorch sets everything to max in this case; say so instead of silently doing it
            return Err(Error::invalid("clamp", format!("min ({lo}) is greater than max ({hi})")));
        }
    }
    // a NaN bound makes every element NaN (PyTorch: the result of an integer tensor is then float32), where an
    // integer clamp would turn the NaN into some integer
    let nan_bound =
        matches!(kind, Unary::Clamp { min, max } if min.is_some_and(f64::is_nan) || max.is_some_and(f64::is_nan));
    let int_ok = matches!(kind, Unary::Neg | Unary::Abs | Unary::Relu | Unary::Clamp { .. }) && !nan_bound;
    let dt = match x.dtype() {
        DType::Bool if matches!(kind, Unary::Neg) => {
            return Err(Error::dtype("neg", "negation of a bool tensor is not supported; use logical_not"))
        }
        DType::I64 | DType::Bool if int_ok => DType::I64,
        DType::I64 | DType::Bool => DType::F32,
        f => f,
    };
    let cx = converted(x, dt)?;
    let shape = x.shape().to_vec();
    let out = match dt {
        DType::F32 => Tensor::from_storage(f32::into_storage(unary_f::<f32>(kind, &cx)?), shape),
        DType::F64 => Tensor::from_storage(f64::into_storage(unary_f::<f64>(kind, &cx)?), shape),
        _ => Tensor::from_storage(i64::into_storage(unary_i64(kind, &cx)?), shape),
    };
    Ok(record(out, &[x], || Op::Unary(kind)))
}

fn unary_backward_t<T: Float>(kind: Unary, g: &Tensor, x: &Tensor, y: &Tensor) -> Result<Vec<T>> {
    let (gs, xs, ys) = (g.storage(), x.storage(), y.storage());
    let (gv, xv, yv) = (gs.as_slice::<T>(), xs.as_slice::<T>(), ys.as_slice::<T>());
    let op = kind.name();
    // the kernels accumulate into a zeroed gradient, a piece at a time (see `fresh`)
    let map = |f: Map| {
        fresh(op, x.shape(), xv.len(), PIECE, |lo, dx| {
            let hi = lo + dx.len();
            map_backward(dx, &gv[lo..hi], &xv[lo..hi], &yv[lo..hi], f)
        })
    };
    let st = strides(x.shape());
    let plan = Plan::new(x.shape(), [st.clone(), st.clone(), st], [0, 0, 0]);
    let run = |f: &(dyn Fn(T, T, T) -> T + Sync)| map3(op, x.shape(), (gv, xv, yv), &plan, f);
    match kind {
        Unary::Neg => map(Map::Neg),
        Unary::Exp => map(Map::Exp),
        Unary::Tanh => map(Map::Tanh),
        Unary::Sigmoid => map(Map::Sigmoid),
        Unary::Relu => map(Map::Relu),
        Unary::Abs => map(Map::Abs),
        Unary::Gelu(approximate) => fresh(op, x.shape(), xv.len(), PIECE, |lo, dx| {
            let hi = lo + dx.len();
            gelu_backward(dx, &gv[lo..hi], &xv[lo..hi], approximate)
        }),
        Unary::Log => run(&|g, x, _| g / x),
        Unary::Sqrt => {
            let two = T::from_f64(2.0);
            run(&|g, _, y| g / (two * y))
        }
        // gradient passes where min <= x <= max, as PyTorch's
        Unary::Clamp { min, max } => {
            let (lo, hi) = (min.map(T::from_f64), max.map(T::from_f64));
            run(&move |g, x, _| {
                let inside = lo.is_none_or(|l| x >= l) && hi.is_none_or(|h| x <= h);
                if inside {
                    g
                } else {
                    T::ZERO
                }
            })
        }
    }
}

/// The gradient of a unary op's input, given the input `x`, output `y` and output gradient `g`.
///
/// # Errors
/// `DType` if the tensors are not float.
pub fn unary_backward(kind: Unary, g: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let dt = y.dtype();
    let (g, x) = (converted(g, dt)?, converted(x, dt)?);
    let v = crate::with_float!(dt, kind.name(), T => T::into_storage(unary_backward_t::<T>(kind, &g, &x, y)?));
    Ok(Tensor::from_storage(v, x.shape().to_vec()))
}

/// `g * b * a^(b-1)`, with 0 where `b == 0` (PyTorch's convention: `x ** 0` has gradient 0 everywhere, also at
/// `x = 0` where `0 * 0^-1` would be NaN).
///
/// # Errors
/// Propagates shape and dtype errors.
pub fn pow_base_grad(g: &Tensor, a: &Tensor, b: &Tensor, y: &Tensor) -> Result<Tensor> {
    let dt = y.dtype();
    let (a, b, g) = (converted(a, dt)?, converted(b, dt)?, converted(g, dt)?);
    let shape = g.shape().to_vec();
    let v = crate::with_float!(dt, "pow", T => {
        let (sa, sb, sg) = (a.storage(), b.storage(), g.storage());
        let plan = Plan::new(&shape, [broadcast_strides(a.shape(), &shape), broadcast_strides(b.shape(), &shape), strides(&shape)], [0, 0, 0]);
        T::into_storage(map3("pow", &shape, (sa.as_slice::<T>(), sb.as_slice::<T>(), sg.as_slice::<T>()), &plan,
            |a: T, b: T, g: T| if b == T::ZERO { T::ZERO } else { g * b * a.powf(b - T::ONE) })?)
    });
    Ok(Tensor::from_storage(v, shape))
}

/// `g * a^b * ln(a)`, with 0 where `a == 0` and `b >= 0` (PyTorch's convention for the exponent's gradient).
///
/// # Errors
/// Propagates shape and dtype errors.
pub fn pow_exponent_grad(g: &Tensor, a: &Tensor, b: &Tensor, y: &Tensor) -> Result<Tensor> {
    let dt = y.dtype();
    let (a, b) = (converted(a, dt)?, converted(b, dt)?);
    let t = g.mul(y)?;
    let shape = t.shape().to_vec();
    let v = crate::with_float!(dt, "pow", T => {
        let (sa, sb, st) = (a.storage(), b.storage(), t.storage());
        let plan = Plan::new(&shape, [broadcast_strides(a.shape(), &shape), broadcast_strides(b.shape(), &shape), broadcast_strides(t.shape(), &shape)], [0, 0, 0]);
        T::into_storage(map3("pow", &shape, (sa.as_slice::<T>(), sb.as_slice::<T>(), st.as_slice::<T>()), &plan,
            |a: T, b: T, t: T| if a == T::ZERO && b >= T::ZERO { T::ZERO } else { t * a.ln() })?)
    });
    Ok(Tensor::from_storage(v, shape))
}

fn compare_t<T: Element>(cmp: Cmp, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Vec<bool>> {
    let (sa, sb) = (a.storage(), b.storage());
    let (x, y) = (sa.as_slice::<T>(), sb.as_slice::<T>());
    let plan = plan2(a.shape(), b.shape(), shape);
    let op = "compare";
    match cmp {
        Cmp::Eq => map2(op, shape, x, y, &plan, |p, q| p == q),
        Cmp::Ne => map2(op, shape, x, y, &plan, |p, q| p != q),
        Cmp::Lt => map2(op, shape, x, y, &plan, |p, q| p < q),
        Cmp::Le => map2(op, shape, x, y, &plan, |p, q| p <= q),
        Cmp::Gt => map2(op, shape, x, y, &plan, |p, q| p > q),
        Cmp::Ge => map2(op, shape, x, y, &plan, |p, q| p >= q),
    }
}

impl Tensor {
    /// `self + other`, broadcasting.
    ///
    /// # Errors
    /// `Shape` when the shapes do not broadcast.
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        binary(Binary::Add, self, other)
    }
    /// `self - other`, broadcasting.
    ///
    /// # Errors
    /// `Shape` when the shapes do not broadcast.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        binary(Binary::Sub, self, other)
    }
    /// `self * other`, broadcasting.
    ///
    /// # Errors
    /// `Shape` when the shapes do not broadcast.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        binary(Binary::Mul, self, other)
    }
    /// `self / other` (true division), broadcasting.
    ///
    /// # Errors
    /// `Shape` when the shapes do not broadcast.
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        binary(Binary::Div, self, other)
    }
    /// `self ** other`, broadcasting.
    ///
    /// # Errors
    /// `Shape` when the shapes do not broadcast.
    pub fn pow(&self, other: &Tensor) -> Result<Tensor> {
        binary(Binary::Pow, self, other)
    }
    /// Apply an elementwise function.
    ///
    /// # Errors
    /// `InvalidArgument` for `clamp` with min > max; `DType` for negating bools.
    pub fn unary(&self, kind: Unary) -> Result<Tensor> {
        unary(kind, self)
    }
    /// `-self`.
    ///
    /// # Errors
    /// `DType` for bool tensors.
    pub fn neg(&self) -> Result<Tensor> {
        unary(Unary::Neg, self)
    }
    /// `e^self`.
    ///
    /// # Errors
    /// None in practice; allocation failure.
    pub fn exp(&self) -> Result<Tensor> {
        unary(Unary::Exp, self)
    }
    /// Compare elementwise, broadcasting; the result is bool.
    ///
    /// # Errors
    /// `Shape` when the shapes do not broadcast.
    pub fn compare(&self, other: &Tensor, cmp: Cmp) -> Result<Tensor> {
        let shape = broadcast_shapes("compare", self.shape(), other.shape())?;
        let dt = DType::promote(self.dtype(), other.dtype());
        let (a, b) = (converted(self, dt)?, converted(other, dt)?);
        let v = crate::with_any!(dt, T => compare_t::<T>(cmp, &a, &b, &shape)?);
        Ok(Tensor::from_storage(bool::into_storage(v), shape))
    }
    /// `cond ? a : b` elementwise, broadcasting all three.
    ///
    /// # Errors
    /// `DType` when `cond` is not bool; `Shape` when the shapes do not broadcast.
    pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if cond.dtype() != DType::Bool {
            return Err(Error::dtype("where", format!("the condition must be a bool tensor, got {}", cond.dtype())));
        }
        let s1 = broadcast_shapes("where", a.shape(), b.shape())?;
        let shape = broadcast_shapes("where", cond.shape(), &s1)?;
        let dt = DType::promote(a.dtype(), b.dtype());
        let (ca, cb) = (converted(a, dt)?, converted(b, dt)?);
        let plan = Plan::new(
            &shape,
            [
                broadcast_strides(cond.shape(), &shape),
                broadcast_strides(a.shape(), &shape),
                broadcast_strides(b.shape(), &shape),
            ],
            [0, 0, 0],
        );
        let storage = crate::with_any!(dt, T => {
            let (sc, sa, sb) = (cond.storage(), ca.storage(), cb.storage());
            T::into_storage(map3("where", &shape, (sc.as_slice::<bool>(), sa.as_slice::<T>(), sb.as_slice::<T>()), &plan,
                |c, x, y| if c { x } else { y })?)
        });
        Ok(record(Tensor::from_storage(storage, shape), &[cond, a, b], || Op::Where))
    }
    /// A copy converted to `dtype` (`self` when it already has it). Float-to-float casts are differentiable.
    ///
    /// # Errors
    /// Allocation failure.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let plan = contiguous_plan(self.shape());
        let storage = crate::with_any!(self.dtype(), S => {
            let s = self.storage();
            let v = s.as_slice::<S>();
            crate::with_any!(dtype, D => D::into_storage(map1("to", self.shape(), v, &plan, |x: S| D::from_f64(x.to_f64()))?))
        });
        let out = Tensor::from_storage(storage, self.shape().to_vec());
        if dtype.is_float() && self.dtype().is_float() {
            Ok(record(out, &[self], || Op::Cast(dtype)))
        } else {
            Ok(out)
        }
    }
}
