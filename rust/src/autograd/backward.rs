//! One arm per [`Op`]: given the inputs, the output `y` and the gradient `g` of the output, the gradient of
//! each input (`None` where an input needs none). Runs with recording off; arms compose tensor ops or call the
//! kernel's backward.

use super::op::{Binary, Op, Unary};
use crate::error::Result;
use crate::ops::{self, linalg, nn, unary_backward};
use crate::tensor::Tensor;

type Grads = Vec<Option<Tensor>>;

/// Gradients of `op`'s inputs.
pub(super) fn arm(op: &Op, inputs: &[Tensor], y: &Tensor, g: &Tensor) -> Result<Grads> {
    let x = &inputs[0];
    let need = |i: usize| inputs.get(i).is_some_and(Tensor::requires_grad);
    Ok(match op {
        Op::Unary(u) => vec![Some(unary_backward(*u, g, x, y)?)],
        Op::Binary(b) => {
            let a = x;
            let bb = &inputs[1];
            let (ga, gb) = match b {
                // d(a+b) = da + db
                Binary::Add => (g.clone(), g.clone()),
                // d(a-b) = da - db
                Binary::Sub => (g.clone(), if need(1) { g.neg()? } else { g.clone() }),
                // d(ab) = b da + a db
                Binary::Mul => {
                    (if need(0) { g.mul(bb)? } else { g.clone() }, if need(1) { g.mul(a)? } else { g.clone() })
                }
                // d(a/b) = da / b - (a/b) db / b
                Binary::Div => (
                    if need(0) { g.div(bb)? } else { g.clone() },
                    if need(1) { g.mul(y)?.div(bb)?.neg()? } else { g.clone() },
                ),
                // d(a^b) = b a^(b-1) da + a^b ln(a) db (0 where a == 0 and b >= 0, as PyTorch)
                Binary::Pow => (
                    if need(0) { ops::pow_base_grad(g, a, bb, y)? } else { g.clone() },
                    if need(1) { ops::pow_exponent_grad(g, a, bb, y)? } else { g.clone() },
                ),
            };
            vec![
                if need(0) { Some(ga.sum_to(a.shape())?) } else { None },
                if need(1) { Some(gb.sum_to(bb.shape())?) } else { None },
            ]
        }
        Op::Cast(_) => vec![Some(g.to_dtype(x.dtype())?)],
        Op::Matmul => {
            let b = &inputs[1];
            vec![
                // dA = dC @ B^T, dB = A^T @ dC, each summed over broadcast batch dims
                if need(0) { Some(linalg::bmm(g, b, false, true)?.sum_to(x.shape())?) } else { None },
                if need(1) { Some(linalg::bmm(x, g, true, false)?.sum_to(b.shape())?) } else { None },
            ]
        }
        Op::Linear => linalg::linear_backward(g, inputs)?,
        Op::Sum { dims, keepdim } => {
            let mut kept = x.shape().to_vec();
            for &d in dims {
                kept[d] = 1;
            }
            let g = if *keepdim { g.clone() } else { g.reshape(&kept)? };
            vec![Some(g.expand(x.shape())?)]
        }
        Op::MaxDim { dim, indices, .. } => vec![Some(ops::reduce::max_backward(g, indices, x.shape(), *dim)?)],
        Op::Reshape(_) => vec![Some(g.reshape(x.shape())?)],
        Op::Permute(perm) => {
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            vec![Some(g.permute(&inv)?)]
        }
        Op::Expand(_) => vec![Some(g.sum_to(x.shape())?)],
        Op::Slice(specs) => vec![Some(ops::movement::slice_backward(g, x.shape(), specs)?)],
        Op::Cat(dim) => {
            let mut start = 0;
            let mut out = Vec::with_capacity(inputs.len());
            for t in inputs {
                let len = t.shape()[*dim];
                out.push(if t.requires_grad() { Some(g.narrow(*dim, start, len)?) } else { None });
                start += len;
            }
            out
        }
        Op::IndexSelect(dim) => vec![Some(ops::movement::index_select_backward(g, &inputs[1], x.shape(), *dim)?), None],
        Op::Where => {
            let cond = x;
            let zero = ops::scalar_like(0.0, g)?;
            vec![
                None,
                if need(1) { Some(Tensor::where_(cond, g, &zero)?.sum_to(inputs[1].shape())?) } else { None },
                if need(2) { Some(Tensor::where_(cond, &zero, g)?.sum_to(inputs[2].shape())?) } else { None },
            ]
        }
        Op::Triangle { k, upper } => vec![Some(g.triangle(*k, *upper)?)],
        Op::Softmax { dim } => vec![Some(nn::softmax_backward(g, y, *dim)?)],
        Op::LogSoftmax { dim } => vec![Some(nn::log_softmax_backward(g, y, *dim)?)],
        Op::LayerNorm { .. } => nn::layer_norm_backward(op, g, inputs)?,
        Op::CrossEntropy { .. } => vec![Some(nn::cross_entropy_backward(op, g, inputs)?), None],
        Op::Embedding => vec![None, Some(nn::embedding_backward(g, x, &inputs[1])?)],
        Op::ScaledDotProductAttention { .. } => {
            ops::attention::scaled_dot_product_attention_backward(op, g, inputs, y)?
        }
        Op::Lstm { .. } => ops::recurrent::lstm_backward(op, g, inputs, y)?,
        Op::Gather(dim) | Op::Sort(dim) | Op::Topk(dim) => {
            vec![Some(ops::gather::gather_backward(g, &inputs[1], x.shape(), *dim)?), None]
        }
        Op::Scatter(dim) | Op::ScatterAdd(dim) => ops::gather::scatter_backward(op, g, inputs, *dim)?,
        Op::Cumsum(dim) => vec![Some(ops::scan::cumsum_backward(g, *dim)?)],
        Op::Gpt(saved) => crate::model::gpt_op::gpt_backward_op(saved, g, inputs)?,
        Op::Freed(_) => unreachable!("backward checks for freed nodes before calling an arm"),
    })
}

/// What `op`'s arm reads besides shapes: the positions of the inputs whose values it uses, and whether it uses
/// the output's, given which inputs need a gradient. `backward` checks these tensors' versions before the arm
/// runs (an in-place write since the forward would make the arm differentiate the wrong values).
pub(super) fn saved(op: &Op, inputs: &[Tensor]) -> (Vec<usize>, bool) {
    let need = |i: usize| inputs.get(i).is_some_and(Tensor::requires_grad);
    // a product reads each operand for the other's gradient
    let other_of_needed = || (0..2).filter(|&i| need(1 - i)).collect();
    match op {
        Op::Unary(Unary::Neg) => (vec![], false),
        // the formula's operand (`unary_backward`): the output for these, the input for the others
        Op::Unary(Unary::Exp | Unary::Tanh | Unary::Sigmoid | Unary::Sqrt) => (vec![], true),
        Op::Unary(Unary::Relu | Unary::Abs | Unary::Log | Unary::Gelu(_) | Unary::Clamp { .. }) => (vec![0], false),
        Op::Binary(Binary::Add | Binary::Sub) => (vec![], false),
        Op::Binary(Binary::Mul) | Op::Matmul | Op::Linear => (other_of_needed(), false),
        Op::Binary(Binary::Div) => (vec![1], need(1)),
        Op::Binary(Binary::Pow) => (vec![0, 1], need(1)),
        Op::Cast(_) | Op::Sum { .. } | Op::MaxDim { .. } | Op::Reshape(_) | Op::Permute(_) | Op::Expand(_) => {
            (vec![], false)
        }
        Op::Slice(_) | Op::Cat(_) | Op::Triangle { .. } | Op::Cumsum(_) | Op::Freed(_) => (vec![], false),
        Op::Where => (vec![0], false),
        Op::IndexSelect(_) | Op::Gather(_) | Op::Sort(_) | Op::Topk(_) | Op::Scatter(_) | Op::ScatterAdd(_) => {
            (vec![1], false)
        }
        Op::Softmax { .. } | Op::LogSoftmax { .. } => (vec![], true),
        Op::LayerNorm { .. } => ((0..inputs.len().min(2)).collect(), false),
        Op::CrossEntropy { .. } => (vec![0, 1], false),
        Op::Embedding => (vec![0], false),
        // the inputs (a recompute reruns the forward on them) and the output (the hidden states)
        Op::Lstm { .. } => ((0..inputs.len()).collect(), true),
        // q, k, v (and the mask) for the scores, the output for rowsum(dout * out)
        Op::ScaledDotProductAttention { .. } => ((0..inputs.len()).collect(), true),
        // the fused GPT reads its parameters again in its backward (it keeps no copy)
        Op::Gpt(_) => ((0..inputs.len()).collect(), false),
    }
}
