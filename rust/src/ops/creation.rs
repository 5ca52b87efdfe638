//! Tensors made from nothing: `zeros`, `full`, `arange`, `rand`, `randn`, `randint`. Sizes arrive as i64 from
//! Python and are checked here, so a negative size is an error and not a huge allocation. The random ones draw
//! from a [`Generator`] (the `_with` forms) or the library's default one.

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::random::{default_generator, Generator};
use crate::shape;
use crate::storage::{try_filled, try_with_capacity};
use crate::tensor::Tensor;

/// Sizes from a user (maybe negative) as a shape.
///
/// # Errors
/// `InvalidArgument` naming the negative size.
pub fn shape_from_i64(op: &'static str, sizes: &[i64]) -> Result<Vec<usize>> {
    sizes
        .iter()
        .map(|&s| {
            usize::try_from(s).map_err(|_| Error::invalid(op, format!("negative dimension {s} in size {sizes:?}")))
        })
        .collect()
}

fn filled<T: Element>(op: &'static str, shape: &[usize], v: T) -> Result<Tensor> {
    let n = shape::numel(op, shape, std::mem::size_of::<T>())?;
    Ok(Tensor::from_storage(T::into_storage(try_filled(op, shape, n, v)?), shape.to_vec()))
}

/// A tensor of `shape` filled with `value` (converted to `dtype`).
///
/// # Errors
/// `OutOfMemory` when too large.
pub fn full(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
    crate::with_any!(dtype, T => filled::<T>("full", shape, T::from_f64(value)))
}

/// An int64 tensor of `shape` filled with `value`, exactly (a value above 2**53 does not pass through f64).
///
/// # Errors
/// `OutOfMemory` when too large.
pub fn full_i64(shape: &[usize], value: i64) -> Result<Tensor> {
    filled::<i64>("full", shape, value)
}

/// A tensor of zeros.
///
/// # Errors
/// `OutOfMemory` when too large.
pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
    full(shape, 0.0, dtype)
}

/// `start, start + step, ...` up to but excluding `end`.
///
/// # Errors
/// `InvalidArgument` for a zero step, a step whose sign goes away from `end`, or non-finite bounds.
pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
    if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
        return Err(Error::invalid(
            "arange",
            format!("need finite bounds and a non-zero step, got ({start}, {end}, {step})"),
        ));
    }
    if (end - start) * step < 0.0 {
        return Err(Error::invalid(
            "arange",
            format!("upper bound and larger bound inconsistent with step sign ({start}, {end}, {step})"),
        ));
    }
    let n = ((end - start) / step).ceil().max(0.0);
    if n > shape::MAX_NUMEL as f64 {
        return Err(Error::OutOfMemory {
            op: "arange",
            bytes: (n as u128) * dtype.size() as u128,
            shape: vec![n as usize],
        });
    }
    let n = n as usize;
    crate::with_any!(dtype, T => {
        let mut v = try_with_capacity::<T>("arange", &[n], n)?;
        v.extend((0..n).map(|i| T::from_f64(start + i as f64 * step)));
        Ok(Tensor::from_storage(T::into_storage(v), vec![n]))
    })
}

/// The int64 values `start, start + step, ...` up to but excluding `end`, computed in integers (exact beyond
/// 2**53, where [`arange`]'s f64 arithmetic is not).
///
/// # Errors
/// `InvalidArgument` for a zero step or a step whose sign goes away from `end`; `OutOfMemory` when too long.
pub fn arange_i64(start: i64, end: i64, step: i64) -> Result<Tensor> {
    if step == 0 {
        return Err(Error::invalid("arange", format!("need a non-zero step, got ({start}, {end}, {step})")));
    }
    let (span, st) = (end as i128 - start as i128, step as i128);
    if span * st.signum() < 0 {
        return Err(Error::invalid(
            "arange",
            format!("upper bound and larger bound inconsistent with step sign ({start}, {end}, {step})"),
        ));
    }
    let n = (span.abs() + st.abs() - 1) / st.abs(); // ceil(span / step), both of one sign
    if n > shape::MAX_NUMEL as i128 {
        return Err(Error::OutOfMemory { op: "arange", bytes: n as u128 * 8, shape: vec![n as usize] });
    }
    let n = n as usize;
    let mut v = try_with_capacity::<i64>("arange", &[n], n)?;
    // every value lies between start and end, so none overflows
    v.extend((0..n as i128).map(|i| (start as i128 + i * st) as i64));
    Ok(Tensor::from_storage(i64::into_storage(v), vec![n]))
}

fn random(op: &'static str, shape: &[usize], dtype: DType, normal: bool, gen: &Generator) -> Result<Tensor> {
    let n = shape::numel(op, shape, dtype.size())?;
    crate::with_float!(dtype, op, T => {
        let mut v = try_with_capacity::<T>(op, shape, n)?;
        gen.with(|r| {
            if normal {
                // both values of each pair; an odd count drops the last one
                v.extend((0..n.div_ceil(2)).flat_map(|_| {
                    let (a, b) = r.normal_pair();
                    [T::from_f64(a), T::from_f64(b)]
                }).take(n));
            } else {
                v.extend((0..n).map(|_| T::from_f64(r.uniform())));
            }
        });
        Ok(Tensor::from_storage(T::into_storage(v), shape.to_vec()))
    })
}

/// Uniform samples in [0, 1) from the library's seeded generator.
///
/// # Errors
/// `DType` for non-float dtypes; `OutOfMemory` when too large.
pub fn rand(shape: &[usize], dtype: DType) -> Result<Tensor> {
    rand_with(shape, dtype, default_generator())
}

/// Uniform samples in [0, 1) from `gen`.
///
/// # Errors
/// `DType` for non-float dtypes; `OutOfMemory` when too large.
pub fn rand_with(shape: &[usize], dtype: DType, gen: &Generator) -> Result<Tensor> {
    random("rand", shape, dtype, false, gen)
}

/// Standard normal samples from the library's seeded generator.
///
/// # Errors
/// `DType` for non-float dtypes; `OutOfMemory` when too large.
pub fn randn(shape: &[usize], dtype: DType) -> Result<Tensor> {
    randn_with(shape, dtype, default_generator())
}

/// Standard normal samples from `gen`.
///
/// # Errors
/// `DType` for non-float dtypes; `OutOfMemory` when too large.
pub fn randn_with(shape: &[usize], dtype: DType, gen: &Generator) -> Result<Tensor> {
    random("randn", shape, dtype, true, gen)
}

/// Integers drawn uniformly from `low..high` (exclusive) by `gen`, stored as `dtype`.
///
/// # Errors
/// `InvalidArgument` when `low >= high` or the range does not fit the dtype (bool holds only 0..2);
/// `OutOfMemory` when too large.
pub fn randint(low: i64, high: i64, shape: &[usize], dtype: DType, gen: &Generator) -> Result<Tensor> {
    let op = "randint";
    if low >= high {
        return Err(Error::invalid(
            op,
            format!("random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"),
        ));
    }
    if dtype == DType::Bool && (low < 0 || high > 2) {
        return Err(Error::invalid(op, format!("the range {low}..{high} does not fit a bool tensor")));
    }
    let n = shape::numel(op, shape, 8)?;
    let span = high.wrapping_sub(low) as u64; // high - low as an unsigned width (fits: both are i64)
    let mut v = try_with_capacity::<i64>(op, shape, n)?;
    gen.with(|r| v.extend((0..n).map(|_| low.wrapping_add(r.below(span) as i64))));
    let ints = Tensor::from_storage(i64::into_storage(v), shape.to_vec());
    ints.to_dtype(dtype)
}
