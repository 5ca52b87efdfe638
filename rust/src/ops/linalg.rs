//! Matrix products: `matmul` (PyTorch's rules for 1-D operands and broadcast batch dims), the batched core
//! `bmm` that reads transposed operands in place, and `linear` (`x @ w^T + b`) with its backward.

use crate::autograd::{record, Op};
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::kernels::gemm::{active_simd, gemm, gemm_bias, gemm_with, Kernel, MatRef};
use crate::kernels::strided::Plan;
use crate::ops::converted;
use crate::parallel;
use crate::shape::{broadcast_shapes, broadcast_strides, numel};
use crate::storage::try_filled;
use crate::tensor::Tensor;

/// The (rows, cols) of the last two dims, swapped when `t`.
fn mat_dims(shape: &[usize], t: bool) -> (usize, usize) {
    let n = shape.len();
    let (r, c) = (shape[n - 2], shape[n - 1]);
    if t {
        (c, r)
    } else {
        (r, c)
    }
}

fn bmm_t<T: Kernel + Default>(
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
    out_shape: &[usize],
    batch: &[usize],
) -> Result<Vec<T>> {
    let (m, k) = mat_dims(a.shape(), ta);
    let n = mat_dims(b.shape(), tb).1;
    let (sa, sb) = (a.storage(), b.storage());
    let (av, bv) = (sa.as_slice::<T>(), sb.as_slice::<T>());
    let mut out = try_filled("matmul", out_shape, numel("matmul", out_shape, std::mem::size_of::<T>())?, T::ZERO)?;
    if m == 0 || n == 0 {
        return Ok(out);
    }
    // the (a, b) matrix offsets of every output batch entry, broadcasting batch dims
    let (na, nb) = (a.ndim(), b.ndim());
    let sa_b: Vec<usize> = broadcast_strides(&a.shape()[..na - 2], batch)
        .iter()
        .map(|s| s * a.shape()[na - 2] * a.shape()[na - 1])
        .collect();
    let sb_b: Vec<usize> = broadcast_strides(&b.shape()[..nb - 2], batch)
        .iter()
        .map(|s| s * b.shape()[nb - 2] * b.shape()[nb - 1])
        .collect();
    let plan = Plan::new(batch, [sa_b, sb_b], [0, 0]);
    let mut offs = Vec::with_capacity(plan.len());
    let [ia, ib] = plan.inner_strides();
    plan.for_runs(0, plan.len(), |_, [oa, ob], len| {
        for j in 0..len {
            offs.push((oa + j * ia, ob + j * ib));
        }
    });
    // row-major A (m x k) has rs = k, cs = 1; a transposed operand stored as (k x m) has rs = 1, cs = m
    let (ars, acs) = if ta { (1, m) } else { (k, 1) };
    let (brs, bcs) = if tb { (1, k) } else { (n, 1) };
    let one = |(oa, ob): (usize, usize), c: &mut [T]| {
        let a = MatRef { data: &av[oa..], rs: ars, cs: acs };
        let b = MatRef { data: &bv[ob..], rs: brs, cs: bcs };
        gemm(m, n, k, T::ONE, a, b, T::ZERO, c, n);
    };
    let threads = parallel::num_threads();
    if offs.len() >= 2 * threads
        && threads > 1
        && m.saturating_mul(n).saturating_mul(k).saturating_mul(offs.len()) >= parallel::MIN_PARALLEL * 16
    {
        // many small products: one product per task, each single-threaded inside
        parallel::each_chunk(&mut out, m * n, |i, c| {
            let (oa, ob) = offs[i];
            let a = MatRef { data: &av[oa..], rs: ars, cs: acs };
            let b = MatRef { data: &bv[ob..], rs: brs, cs: bcs };
            gemm_with(active_simd(), 1, m, n, k, T::ONE, a, b, T::ZERO, c, n);
        });
    } else {
        for (c, &o) in out.chunks_exact_mut(m * n).zip(&offs) {
            one(o, c);
        }
    }
    Ok(out)
}

/// Batched product of the last two dims of `a` and `b` (each optionally transposed), batch dims broadcast.
/// Not recorded: the building block of `matmul` and of its backward.
///
/// # Errors
/// `Shape` when inner dims differ or batch dims do not broadcast; `DType` for non-float inputs.
pub fn bmm(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
    if a.ndim() < 2 || b.ndim() < 2 {
        return Err(Error::shape(
            "matmul",
            format!("batched product needs 2-D operands, got {:?} and {:?}", a.shape(), b.shape()),
        ));
    }
    let (m, k) = mat_dims(a.shape(), ta);
    let (k2, n) = mat_dims(b.shape(), tb);
    if k != k2 {
        return Err(Error::shape(
            "matmul",
            format!("shapes {:?} and {:?} cannot be multiplied ({m}x{k} and {k2}x{n})", a.shape(), b.shape()),
        ));
    }
    let batch = broadcast_shapes("matmul", &a.shape()[..a.ndim() - 2], &b.shape()[..b.ndim() - 2])?;
    let dt = DType::promote(a.dtype(), b.dtype());
    let (a, b) = (converted(a, dt)?, converted(b, dt)?);
    let mut shape = batch.clone();
    shape.extend([m, n]);
    let storage = crate::with_float!(dt, "matmul", T => {
        use crate::dtype::Element;
        T::into_storage(bmm_t::<T>(&a, &b, ta, tb, &shape, &batch)?)
    });
    Ok(Tensor::from_storage(storage, shape))
}

/// The matrix product with PyTorch's rules: 1-D @ 1-D is a dot product, a 1-D operand gains a dim that is
/// removed afterwards, batch dims broadcast.
///
/// # Errors
/// `Shape` for 0-D operands or mismatched inner dims; `DType` for non-float inputs.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return Err(Error::shape(
            "matmul",
            format!("both arguments need at least 1 dimension, got {:?} and {:?}", a.shape(), b.shape()),
        ));
    }
    if !a.dtype().is_float() || !b.dtype().is_float() {
        return Err(Error::dtype("matmul", format!("expected float tensors, got {} and {}", a.dtype(), b.dtype())));
    }
    let a2 = if a.ndim() == 1 { a.unsqueeze(0)? } else { a.clone() };
    let b2 = if b.ndim() == 1 { b.unsqueeze(1)? } else { b.clone() };
    let out = bmm(&a2, &b2, false, false).map_err(|e| match e {
        Error::Shape { op, .. } if a2.shape()[a2.ndim() - 1] != b2.shape()[b2.ndim() - 2] => Error::shape(
            op,
            format!(
                "shapes {:?} and {:?} cannot be multiplied ({} != {})",
                a.shape(),
                b.shape(),
                a2.shape()[a2.ndim() - 1],
                b2.shape()[b2.ndim() - 2]
            ),
        ),
        e => e,
    })?;
    let out = record(out, &[&a2, &b2], || Op::Matmul);
    match (a.ndim(), b.ndim()) {
        (1, 1) => out.reshape(&[]),
        (1, _) => out.squeeze(Some(&[-2])),
        (_, 1) => out.squeeze(Some(&[-1])),
        _ => Ok(out),
    }
}

/// `x @ w^T + b`: `x` is (..., K), `w` is (N, K), `b` is (N,); the result is (..., N). `w` is read transposed
/// in place and the bias seeds the output before the product accumulates into it.
///
/// # Errors
/// `Shape` for mismatched sizes; `DType` for non-float inputs.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    if x.ndim() == 0 || w.ndim() != 2 {
        return Err(Error::shape(
            "linear",
            format!(
                "expected input (..., in_features) and weight (out_features, in_features), got {:?} and {:?}",
                x.shape(),
                w.shape()
            ),
        ));
    }
    let (n, k) = (w.shape()[0], w.shape()[1]);
    if x.shape()[x.ndim() - 1] != k {
        return Err(Error::shape(
            "linear",
            format!(
                "input {:?} has {} features but weight {:?} expects {k}",
                x.shape(),
                x.shape()[x.ndim() - 1],
                w.shape()
            ),
        ));
    }
    if let Some(b) = b {
        if b.shape() != [n] {
            return Err(Error::shape(
                "linear",
                format!("bias {:?} does not match weight {:?} (expected ({n},))", b.shape(), w.shape()),
            ));
        }
    }
    let mut dt = DType::promote(x.dtype(), w.dtype());
    if let Some(b) = b {
        dt = DType::promote(dt, b.dtype());
    }
    if !dt.is_float() {
        return Err(Error::dtype("linear", format!("expected float tensors, got {}", dt)));
    }
    let (xc, wc) = (converted(x, dt)?, converted(w, dt)?);
    let bc = b.map(|b| converted(b, dt)).transpose()?;
    let m: usize = x.shape()[..x.ndim() - 1].iter().product(); // rows: every dim but the features
    let mut shape = x.shape()[..x.ndim() - 1].to_vec();
    shape.push(n);
    let storage = crate::with_float!(dt, "linear", T => {
        use crate::dtype::Element;
        // checked: the rows times out_features of huge (or empty) inputs must not wrap
        let mut out = try_filled("linear", &shape, numel("linear", &shape, std::mem::size_of::<T>())?, T::ZERO)?;
        let (xs, ws) = (xc.storage(), wc.storage());
        let bs = bc.as_ref().map(|b| b.storage());
        let a = MatRef { data: xs.as_slice::<T>(), rs: k, cs: 1 };
        let bm = MatRef { data: ws.as_slice::<T>(), rs: 1, cs: k };
        // the bias is added by the GEMM's epilogue as each tile of the output is stored
        gemm_bias(m, n, k, T::ONE, a, bm, T::ZERO, bs.as_ref().map(|s| s.as_slice::<T>()), &mut out, n);
        T::into_storage(out)
    });
    let out = Tensor::from_storage(storage, shape);
    let inputs: Vec<&Tensor> = match b {
        Some(b) => vec![x, w, b],
        None => vec![x, w],
    };
    Ok(record(out, &inputs, || Op::Linear))
}

/// Gradients of `linear`'s inputs: `dx = g @ w`, `dw = g^T @ x`, `db = sum_rows g`.
///
/// # Errors
/// Propagates allocation errors.
pub fn linear_backward(g: &Tensor, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    let (x, w) = (&inputs[0], &inputs[1]);
    let (n, k) = (w.shape()[0], w.shape()[1]);
    let m: usize = x.shape()[..x.ndim() - 1].iter().product();
    let dt = g.dtype();
    let (xc, wc) = (converted(x, dt)?, converted(w, dt)?);
    let g2 = g.reshape(&[m, n])?;
    let dx = if x.requires_grad() { Some(bmm(&g2, &wc, false, false)?.reshape(x.shape())?) } else { None };
    let dw = if w.requires_grad() { Some(bmm(&g2, &xc.reshape(&[m, k])?, true, false)?) } else { None };
    let mut out = vec![dx, dw];
    if let Some(b) = inputs.get(2) {
        out.push(if b.requires_grad() { Some(g2.sum(Some(&[0]), false)?) } else { None });
    }
    Ok(out)
}
