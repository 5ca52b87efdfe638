//! Shape arithmetic: element counts, strides, dim normalization and broadcasting. No data, no math on elements.

use crate::error::{Error, Result};

/// Largest number of elements a tensor may hold: keeps byte counts far from `usize` overflow.
pub const MAX_NUMEL: usize = 1 << 48;

/// The number of elements of `shape`, or an error if it overflows [`MAX_NUMEL`]. A shape with a 0 dimension has
/// no elements whatever its other sizes (`zeros(2**50, 0)` is empty, as in PyTorch).
///
/// `elem_size` is the bytes of one element of the tensor to be made: the error reports the bytes it would need.
///
/// # Errors
/// `OutOfMemory` when the product is too large to ever allocate.
pub fn numel(op: &'static str, shape: &[usize], elem_size: usize) -> Result<usize> {
    let too_large = || Error::OutOfMemory {
        op,
        bytes: shape.iter().fold(elem_size as u128, |acc, &d| acc.saturating_mul(d as u128)),
        shape: shape.to_vec(),
    };
    // the other sizes of an empty shape must still multiply without overflow: strides are computed from them
    let mut n: usize = 1;
    for &d in shape.iter().filter(|&&d| d != 0) {
        n = n.checked_mul(d).ok_or_else(too_large)?;
    }
    if shape.contains(&0) {
        return Ok(0);
    }
    if n > MAX_NUMEL {
        return Err(too_large());
    }
    Ok(n)
}

/// Row-major strides (in elements) of a contiguous tensor of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Turn a possibly negative `dim` into an index in `0..ndim`.
///
/// # Errors
/// `OutOfRange` naming `op` when `dim` is outside `-ndim..ndim`.
pub fn normalize_dim(op: &'static str, dim: i64, ndim: usize) -> Result<usize> {
    let n = ndim as i64;
    let d = if dim < 0 { dim + n } else { dim };
    if d < 0 || d >= n.max(0) {
        return Err(Error::range(
            op,
            format!(
                "dimension {dim} is out of range for a tensor with {ndim} dimensions (expected {} to {})",
                -n,
                n - 1
            ),
        ));
    }
    Ok(d as usize)
}

/// The error of a dim checked against one dimension, reworded for the 0-d tensor it was really checked for.
pub fn as_scalar_dim_error(e: Error) -> Error {
    match e {
        Error::OutOfRange { op, msg } => Error::OutOfRange {
            op,
            msg: msg.replace("a tensor with 1 dimensions", "a 0-d tensor, which takes dims 0 and -1"),
        },
        other => other,
    }
}

/// Normalize a list of dims, sorted and checked for repeats.
///
/// # Errors
/// `OutOfRange` for a bad dim, `InvalidArgument` for a repeated one.
pub fn normalize_dims(op: &'static str, dims: &[i64], ndim: usize) -> Result<Vec<usize>> {
    let mut out = dims.iter().map(|&d| normalize_dim(op, d, ndim)).collect::<Result<Vec<_>>>()?;
    out.sort_unstable();
    if out.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid(op, format!("dimension repeated in {dims:?}")));
    }
    Ok(out)
}

/// The shape two shapes broadcast to, as numpy and PyTorch define it.
///
/// # Errors
/// `Shape` naming both shapes when a dimension pair is neither equal nor 1.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shape(
                    op,
                    format!("shapes {a:?} and {b:?} cannot be broadcast together (dimension {i}: {da} vs {db})"),
                ))
            }
        };
    }
    Ok(out)
}

/// Strides that read a contiguous tensor of `shape` as if it had `target` shape (0 on broadcast dims).
/// `shape` must broadcast to `target`.
pub fn broadcast_strides(shape: &[usize], target: &[usize]) -> Vec<usize> {
    let s = strides(shape);
    let off = target.len() - shape.len();
    (0..target.len()).map(|i| if i < off || shape[i - off] == 1 { 0 } else { s[i - off] }).collect()
}

/// Split `shape` around `dim` into (outer, size, inner) element counts.
pub fn split_at_dim(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    let outer = shape[..dim].iter().product();
    let inner = shape[dim + 1..].iter().product();
    (outer, shape[dim], inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes("t", &[3, 1, 5], &[4, 1]).unwrap(), vec![3, 4, 5]);
        assert_eq!(broadcast_shapes("t", &[], &[2, 0]).unwrap(), vec![2, 0]);
        assert!(broadcast_shapes("t", &[3], &[4]).is_err());
        assert_eq!(broadcast_strides(&[4, 1], &[3, 4, 5]), vec![0, 1, 0]);
    }

    #[test]
    fn dims_normalize_and_reject() {
        assert_eq!(normalize_dim("t", -1, 3).unwrap(), 2);
        assert!(normalize_dim("t", 3, 3).is_err());
        assert!(normalize_dim("t", 0, 0).is_err());
        assert!(normalize_dims("t", &[0, -3], 3).is_err());
        assert!(numel("t", &[1 << 40, 1 << 40], 4).is_err());
        assert_eq!(numel("t", &[1 << 50, 0], 4).unwrap(), 0);
        assert!(numel("t", &[usize::MAX, 0, usize::MAX], 8).is_err());
        let e = numel("t", &[1 << 30, 1 << 30], 8).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { bytes, .. } if bytes == 8 << 60), "bytes use the element size: {e}");
    }
}
