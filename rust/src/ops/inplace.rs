//! In-place operations: `add_`, `sub_`, `mul_`, `div_`, `clamp_`, `fill_`, `zero_`, `copy_`, `masked_fill_`,
//! `scatter_`, `scatter_add_`, `put_`. Each writes new values into the tensor's own storage (every tensor
//! sharing it sees them, and its version goes up by one) and returns the handle that stands for the tensor
//! afterwards; the Python `Tensor` swaps that handle in.
//!
//! Autograd as PyTorch: when the graph records (grad mode on, and the tensor or an operand requires grad), the
//! new values are computed by the out-of-place op, recorded with the *old* handle as its input, and the returned
//! handle is a new tensor on the same storage carrying that node. Graphs built before keep the old handle, so a
//! backward that reads its overwritten values finds the version moved and raises (`autograd::check_versions`).
//! Where the op's own backward needs the old values (`mul_` by a tensor that requires grad, `clamp_`), they are
//! copied first. A leaf that requires grad, or a `reshape`/`view` of one, cannot be written while recording.
//! Otherwise nothing is recorded and the same handle comes back.
//!
//! Not like PyTorch: slicing and indexing copy here (only `reshape`/`view`/`detach` share storage), so
//! `x[0].add_(1)` changes a copy; write through `x[0] += 1` (`__setitem__`) instead. A write to a tensor that
//! shares its storage with another (a `reshape`/`view`, a `detach`, the base of a view) updates the other's
//! values but not its graph (PyTorch rebases views): an op that then reads the other handle records a version
//! its node did not make, and backward through it raises (`autograd::check_versions`) instead of
//! differentiating values the graph does not describe.

use crate::autograd::{is_grad_enabled, Op, Unary};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::full;
use crate::tensor::Tensor;

/// bool < int64 < float: a result goes in place only into a tensor of its kind or a higher one (PyTorch's
/// casting rule for in-place arithmetic).
fn kind(dt: DType) -> u8 {
    match dt {
        DType::Bool => 0,
        DType::I64 => 1,
        DType::F32 | DType::F64 => 2,
    }
}

fn check_cast(op: &'static str, result: DType, target: DType) -> Result<()> {
    if kind(result) > kind(target) {
        return Err(Error::dtype(
            op,
            format!("result type {result} can't be cast to the desired output type {target}"),
        ));
    }
    Ok(())
}

/// A leaf that requires grad, or a reshape of one (sharing its storage), cannot be written while recording.
fn check_writable(op: &'static str, x: &Tensor) -> Result<()> {
    let leaf_msg = "a leaf Variable that requires grad is being used in an in-place operation";
    if x.is_leaf() && x.requires_grad() {
        return Err(Error::autograd(op, format!("{leaf_msg} (use it under no_grad(), or write to a clone)")));
    }
    let mut cur = x.clone();
    loop {
        let base = match cur.node().as_ref() {
            Some(n) if matches!(n.op, Op::Reshape(_)) => n.inputs[0].clone(),
            _ => return Ok(()),
        };
        if base.is_leaf() && base.requires_grad() {
            return Err(Error::autograd(op, format!("a view of {leaf_msg}")));
        }
        cur = base;
    }
}

/// Move `y`'s values into `x`'s storage, bumping its version: by swapping buffers when nothing else holds `y`,
/// else by copying.
fn move_values(x: &Tensor, y: &Tensor) {
    if y.shares_storage(x) {
        drop(x.storage_mut()); // the values are there already; the write still counts
    } else if y.is_sole_owner() {
        std::mem::swap(&mut *x.storage_mut(), &mut *y.storage_mut());
    } else {
        let src = y.storage();
        let mut dst = x.storage_mut();
        crate::with_any!(x.dtype(), T => dst.as_mut_slice::<T>().copy_from_slice(src.as_slice::<T>()));
    }
}

/// Whether an in-place write to `x` with these operands is recorded by autograd.
fn recording(x: &Tensor, operands: &[&Tensor]) -> bool {
    is_grad_enabled() && (x.requires_grad() || operands.iter().any(|t| t.requires_grad()))
}

/// Write `compute(x)` (the new values, of `x`'s shape, converted to its dtype) into `x`; returns the handle for `x`
/// afterwards. `operands`: the other tensors the values depend on.
fn write(
    op: &'static str,
    x: &Tensor,
    operands: &[&Tensor],
    compute: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let rec = recording(x, operands);
    if rec {
        check_writable(op, x)?;
    }
    let y = compute(x)?;
    if y.shape() != x.shape() {
        return Err(Error::shape(
            op,
            format!("output with shape {:?} doesn't match the broadcast shape {:?}", x.shape(), y.shape()),
        ));
    }
    // (a cast only when needed: a second handle on `y` would make `move_values` copy instead of swap)
    let y = if y.dtype() == x.dtype() { y } else { y.to_dtype(x.dtype())? };
    move_values(x, &y);
    if !rec {
        return Ok(x.clone());
    }
    let out = Tensor::share_storage(x, x.shape().to_vec());
    if let Some(mut node) = y.node().take() {
        node.out_version = out.version();
        *out.node() = Some(node);
        out.mark_requires_grad();
    }
    Ok(out)
}

/// A copy of `x` recorded as `x * 1`: the old values for a backward that needs them after `x` is overwritten.
fn snapshot(x: &Tensor) -> Result<Tensor> {
    x.mul(&full(&[], 1.0, x.dtype())?)
}

/// `other * alpha`, refusing a fractional `alpha` for integer tensors (as PyTorch).
fn scaled(op: &'static str, other: &Tensor, alpha: f64) -> Result<Tensor> {
    if alpha == 1.0 {
        return Ok(other.clone());
    }
    if !other.dtype().is_float() && alpha.fract() != 0.0 {
        return Err(Error::invalid(
            op,
            format!("for integral input tensors, alpha must not be fractional (got {alpha})"),
        ));
    }
    let dt = if other.dtype() == DType::Bool { DType::I64 } else { other.dtype() };
    other.mul(&full(&[], alpha, dt)?)
}

/// `x += alpha * other` (broadcasting `other` to `x`'s shape).
///
/// # Errors
/// `Shape` when `other` does not broadcast to `x`; `DType` when the result's kind does not fit `x` (a float
/// result into an int64 tensor); `Autograd` for a leaf that requires grad while recording.
pub fn add_(x: &Tensor, other: &Tensor, alpha: f64) -> Result<Tensor> {
    write("add_", x, &[other], |x| {
        let y = x.add(&scaled("add_", other, alpha)?)?;
        check_cast("add_", y.dtype(), x.dtype())?;
        Ok(y)
    })
}

/// `x -= alpha * other`.
///
/// # Errors
/// As [`add_`].
pub fn sub_(x: &Tensor, other: &Tensor, alpha: f64) -> Result<Tensor> {
    write("sub_", x, &[other], |x| {
        let y = x.sub(&scaled("sub_", other, alpha)?)?;
        check_cast("sub_", y.dtype(), x.dtype())?;
        Ok(y)
    })
}

/// `x *= other`.
///
/// # Errors
/// As [`add_`].
pub fn mul_(x: &Tensor, other: &Tensor) -> Result<Tensor> {
    write("mul_", x, &[other], |x| {
        // d(x other)/d other = x: keep the old values when other's gradient will need them
        let a = if is_grad_enabled() && other.requires_grad() { snapshot(x)? } else { x.clone() };
        let y = a.mul(other)?;
        check_cast("mul_", y.dtype(), x.dtype())?;
        Ok(y)
    })
}

/// `x /= other` (true division: an int64 `x` cannot hold the result).
///
/// # Errors
/// As [`add_`].
pub fn div_(x: &Tensor, other: &Tensor) -> Result<Tensor> {
    write("div_", x, &[other], |x| {
        let y = x.div(other)?;
        check_cast("div_", y.dtype(), x.dtype())?;
        Ok(y)
    })
}

/// `x = min(max(x, min), max)` (either bound may be absent).
///
/// # Errors
/// `InvalidArgument` for min > max or no bound; `Autograd` for a leaf that requires grad while recording.
pub fn clamp_(x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
    if min.is_none() && max.is_none() {
        return Err(Error::invalid("clamp_", "at least one of 'min' or 'max' must not be None"));
    }
    write("clamp_", x, &[], |x| {
        // clamp's gradient mask reads its input: keep the old values
        let a = if is_grad_enabled() && x.requires_grad() { snapshot(x)? } else { x.clone() };
        let y = a.unary(Unary::Clamp { min, max })?;
        // a NaN bound makes an integer tensor's result float (NaN): it cannot go back into the integers
        check_cast("clamp_", y.dtype(), x.dtype())?;
        Ok(y)
    })
}

/// `x = where(mask, value, x)`: `value` (0-d) where the bool `mask` (broadcast to `x`) is true.
///
/// # Errors
/// `DType` for a non-bool mask; `Shape` for a mask that does not broadcast to `x` or a value that is not 0-d.
pub fn masked_fill_(x: &Tensor, mask: &Tensor, value: &Tensor) -> Result<Tensor> {
    if value.ndim() != 0 {
        return Err(Error::shape(
            "masked_fill_",
            format!("only supports a 0-dimensional value tensor, but got one of shape {:?}", value.shape()),
        ));
    }
    write("masked_fill_", x, &[value], |x| Tensor::where_(mask, &value.to_dtype(x.dtype())?, x))
}

/// Every element of `x` set to the 0-d `value` (converted to `x`'s dtype).
///
/// # Errors
/// `Shape` for a value that is not 0-d.
pub fn fill_(x: &Tensor, value: &Tensor) -> Result<Tensor> {
    fill_named("fill_", x, value)
}

/// Every element of `x` set to zero.
///
/// # Errors
/// `Autograd` for a leaf that requires grad while recording.
pub fn zero_(x: &Tensor) -> Result<Tensor> {
    fill_named("zero_", x, &full(&[], 0.0, x.dtype())?)
}

fn fill_named(op: &'static str, x: &Tensor, value: &Tensor) -> Result<Tensor> {
    if value.ndim() != 0 {
        return Err(Error::shape(
            op,
            format!("only supports a 0-dimensional value tensor, but got one of shape {:?}", value.shape()),
        ));
    }
    if recording(x, &[value]) {
        let all = full(&[], 1.0, DType::Bool)?;
        return write(op, x, &[value], |x| Tensor::where_(&all, &value.to_dtype(x.dtype())?, x));
    }
    let v = value.to_dtype(x.dtype())?;
    crate::with_any!(x.dtype(), T => {
        let s = v.storage().as_slice::<T>()[0]; // read before locking `x`: `value` may share its storage
        x.storage_mut().as_mut_slice::<T>().fill(s);
    });
    Ok(x.clone())
}

/// `src`'s values (broadcast to `x`'s shape, converted to its dtype) copied into `x`.
///
/// # Errors
/// `Shape` when `src` does not broadcast to `x`.
pub fn copy_(x: &Tensor, src: &Tensor) -> Result<Tensor> {
    let expanded = |x: &Tensor| src.to_dtype(x.dtype())?.expand(x.shape());
    if recording(x, &[src]) {
        let all = full(&[], 1.0, DType::Bool)?;
        return write("copy_", x, &[src], |x| Tensor::where_(&all, &expanded(x)?, x));
    }
    write("copy_", x, &[src], expanded)
}

/// `x.scatter(dim, index, src)` written into `x`.
///
/// # Errors
/// As [`Tensor::scatter`].
pub fn scatter_(x: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    write("scatter_", x, &[src], |x| x.scatter(dim, index, src))
}

/// `x.scatter_add(dim, index, src)` written into `x`.
///
/// # Errors
/// As [`Tensor::scatter_add`].
pub fn scatter_add_(x: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    write("scatter_add_", x, &[src], |x| x.scatter_add(dim, index, src))
}

/// `x.put(index, source, accumulate)` written into `x`: what `x[key] = value` does.
///
/// # Errors
/// As [`Tensor::put`].
pub fn put_(x: &Tensor, index: &Tensor, source: &Tensor, accumulate: bool) -> Result<Tensor> {
    write("put_", x, &[source], |x| x.put(index, source, accumulate))
}
