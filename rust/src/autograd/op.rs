//! The [`Op`] enum: what made a tensor. Its variant names, attributes and the node's inputs are the trace an
//! ONNX exporter reads; `backward.rs` holds one arm per variant.

use crate::dtype::DType;
use crate::kernels::gelu::Gelu;
use crate::kernels::lstm::Direction;
use crate::tensor::Tensor;

/// How a loss is reduced over the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// One loss per element.
    None,
    /// The mean (over non-ignored elements for cross-entropy).
    Mean,
    /// The sum.
    Sum,
}

impl Reduction {
    /// Parse PyTorch's names.
    pub fn parse(s: &str) -> Option<Reduction> {
        match s {
            "none" => Some(Reduction::None),
            "mean" => Some(Reduction::Mean),
            "sum" => Some(Reduction::Sum),
            _ => None,
        }
    }
    /// PyTorch's name.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::None => "none",
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
        }
    }
}

/// Elementwise functions of one input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `-x`
    Neg,
    /// `e^x`
    Exp,
    /// `ln x`
    Log,
    /// `sqrt x`
    Sqrt,
    /// `tanh x`
    Tanh,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `max(x, 0)`
    Relu,
    /// `|x|`
    Abs,
    /// GELU, exact (erf) or with the tanh approximation.
    Gelu(Gelu),
    /// `min(max(x, min), max)`
    Clamp {
        /// Lower bound.
        min: Option<f64>,
        /// Upper bound.
        max: Option<f64>,
    },
}

impl Unary {
    /// The op name (PyTorch's).
    pub fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Relu => "relu",
            Unary::Abs => "abs",
            Unary::Gelu(_) => "gelu",
            Unary::Clamp { .. } => "clamp",
        }
    }
}

/// Elementwise functions of two broadcast inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a ^ b`
    Pow,
}

impl Binary {
    /// The op name (PyTorch's).
    pub fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Pow => "pow",
        }
    }
}

/// One slice per dimension: `len` elements from `start`, every `step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceSpec {
    /// First index.
    pub start: usize,
    /// Distance between taken indices (at least 1).
    pub step: usize,
    /// Number of indices taken.
    pub len: usize,
}

/// What made a tensor, with what its backward needs beyond the inputs.
#[derive(Clone, Debug)]
pub enum Op {
    /// Inputs `[x]`.
    Unary(Unary),
    /// Inputs `[a, b]`.
    Binary(Binary),
    /// Inputs `[x]`; float to float conversion.
    Cast(DType),
    /// Batched matrix product of inputs `[a, b]`, both at least 2-D, batch dims broadcast.
    Matmul,
    /// `x @ w^T (+ b)`: inputs `[x, w]` or `[x, w, b]`.
    Linear,
    /// Sum over `dims` (sorted, normalized).
    Sum {
        /// Reduced dims.
        dims: Vec<usize>,
        /// Whether reduced dims were kept as size 1.
        keepdim: bool,
    },
    /// Max or min along `dim`; the picked indices are saved.
    MaxDim {
        /// Reduced dim.
        dim: usize,
        /// Whether it was kept as size 1.
        keepdim: bool,
        /// Min instead of max.
        min: bool,
        /// The picked indices (int64, output shape).
        indices: Tensor,
    },
    /// Same elements, new shape.
    Reshape(Vec<usize>),
    /// Dims reordered: output dim `i` is input dim `perm[i]`.
    Permute(Vec<usize>),
    /// Broadcast to a larger shape.
    Expand(Vec<usize>),
    /// A strided sub-block.
    Slice(Vec<SliceSpec>),
    /// Inputs concatenated along `dim`.
    Cat(usize),
    /// `src.index_select(dim, index)`: inputs `[src, index]`.
    IndexSelect(usize),
    /// `where(cond, a, b)`: inputs `[cond, a, b]`.
    Where,
    /// Lower (`upper == false`) or upper triangle relative to diagonal `k`.
    Triangle {
        /// Diagonal offset.
        k: i64,
        /// `triu` instead of `tril`.
        upper: bool,
    },
    /// Softmax along `dim`.
    Softmax {
        /// The normalized dim.
        dim: usize,
    },
    /// Log-softmax along `dim`.
    LogSoftmax {
        /// The normalized dim.
        dim: usize,
    },
    /// Layer norm over the last `normalized` dims: inputs `[x]`, `[x, w]` or `[x, w, b]`.
    LayerNorm {
        /// How many trailing dims are normalized.
        normalized: usize,
        /// Epsilon.
        eps: f64,
        /// Per-row mean saved by the forward.
        mean: Tensor,
        /// Per-row reciprocal standard deviation saved by the forward.
        rstd: Tensor,
        /// Whether a weight input is present.
        has_weight: bool,
        /// Whether a bias input is present.
        has_bias: bool,
    },
    /// Cross-entropy of logits `(N, C)` with int64 targets `(N,)`: inputs `[logits, target]`.
    CrossEntropy {
        /// Target value whose rows are skipped.
        ignore_index: i64,
        /// Label smoothing in [0, 1].
        label_smoothing: f64,
        /// Reduction.
        reduction: Reduction,
        /// Per-row log-sum-exp saved by the forward.
        lse: Tensor,
        /// Number of rows not ignored.
        count: usize,
    },
    /// Rows of a table picked by int64 ids: inputs `[ids, weight]`.
    Embedding,
    /// Fused scaled-dot-product attention: inputs `[q, k, v]` or `[q, k, v, mask]` (no gradient for the mask).
    ScaledDotProductAttention {
        /// Query i sees keys j <= i only.
        causal: bool,
        /// Multiplier of `q . k`.
        scale: f64,
        /// Dropout probability on the attention weights.
        dropout_p: f64,
        /// The dropout mask's Philox key, drawn once by the forward.
        seed: u64,
        /// Per-query log-sum-exp of the scores saved by the forward, (B * NH * T).
        lse: Tensor,
    },
    /// One LSTM layer over a sequence: inputs `[x, h0, c0, w_ih, w_hh]` or with a summed bias appended; the
    /// output packs `[h_1..h_T, h_T, c_T]`.
    Lstm {
        /// Forward or reverse in time.
        direction: Direction,
        /// The forward's gate activations and cell states, unless too large to keep (`ops::recurrent`).
        saved: Option<LstmSaved>,
    },
    /// `src.gather(dim, index)` (`ops::gather`), and sort's and topk's values, which are that gather of the
    /// indices they return: inputs `[src, index]`.
    Gather(usize),
    /// The values of `sort` along the dim: inputs `[x, indices]`.
    Sort(usize),
    /// The values of `topk` along the dim: inputs `[x, indices]`.
    Topk(usize),
    /// `x.scatter(dim, index, src)`: inputs `[x, index, src]`.
    Scatter(usize),
    /// `x.scatter_add(dim, index, src)`: inputs `[x, index, src]`.
    ScatterAdd(usize),
    /// Running sum along the dim: inputs `[x]`.
    Cumsum(usize),
    /// The fused GPT (`model::gpt_op`): inputs `[idx, params...]`, output the logits; the arena it borrowed goes
    /// back to its model's cache when this op is dropped.
    Gpt(std::sync::Arc<crate::model::gpt_op::GptSaved>),
    /// Placeholder left when backward freed the graph.
    Freed(&'static str),
}

/// What an LSTM layer's forward keeps for its backward (`ops::recurrent` says when).
#[derive(Clone, Debug)]
pub struct LstmSaved {
    /// Gate activations (T, B, 4H).
    pub gates: Tensor,
    /// Cell states (T + 1, B, H), by step.
    pub cells: Tensor,
}

/// An attribute value of a traced op.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A string.
    Str(String),
    /// A flag.
    Bool(bool),
}

fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

impl Op {
    /// The op's name, as its Python function is called.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Cast(_) => "to",
            Op::Matmul => "matmul",
            Op::Linear => "linear",
            Op::Sum { .. } => "sum",
            Op::MaxDim { min: false, .. } => "max",
            Op::MaxDim { min: true, .. } => "min",
            Op::Reshape(_) => "reshape",
            Op::Permute(_) => "permute",
            Op::Expand(_) => "expand",
            Op::Slice(_) => "slice",
            Op::Cat(_) => "cat",
            Op::IndexSelect(_) => "index_select",
            Op::Where => "where",
            Op::Triangle { upper: false, .. } => "tril",
            Op::Triangle { upper: true, .. } => "triu",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::LayerNorm { .. } => "layer_norm",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::Embedding => "embedding",
            Op::ScaledDotProductAttention { .. } => "scaled_dot_product_attention",
            Op::Lstm { .. } => "lstm",
            Op::Gather(_) => "gather",
            Op::Sort(_) => "sort",
            Op::Topk(_) => "topk",
            Op::Scatter(_) => "scatter",
            Op::ScatterAdd(_) => "scatter_add",
            Op::Cumsum(_) => "cumsum",
            Op::Gpt(_) => "gpt",
            Op::Freed(name) => name,
        }
    }

    /// The op's attributes, for the trace.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        match self {
            Op::Unary(Unary::Gelu(approximate)) => vec![("approximate", Attr::Str(approximate.name().into()))],
            Op::Unary(Unary::Clamp { min, max }) => {
                let mut v = vec![];
                if let Some(m) = min {
                    v.push(("min", Attr::Float(*m)));
                }
                if let Some(m) = max {
                    v.push(("max", Attr::Float(*m)));
                }
                v
            }
            Op::Cast(dt) => vec![("dtype", Attr::Str(dt.name().into()))],
            Op::Sum { dims, keepdim } => vec![("dim", ints(dims)), ("keepdim", Attr::Bool(*keepdim))],
            Op::MaxDim { dim, keepdim, .. } => vec![("dim", Attr::Int(*dim as i64)), ("keepdim", Attr::Bool(*keepdim))],
            Op::Reshape(s) => vec![("shape", ints(s))],
            Op::Permute(p) => vec![("dims", ints(p))],
            Op::Expand(s) => vec![("size", ints(s))],
            Op::Slice(specs) => vec![
                ("starts", Attr::Ints(specs.iter().map(|s| s.start as i64).collect())),
                ("steps", Attr::Ints(specs.iter().map(|s| s.step as i64).collect())),
                ("lens", Attr::Ints(specs.iter().map(|s| s.len as i64).collect())),
            ],
            Op::Cat(d) | Op::IndexSelect(d) | Op::Gather(d) | Op::Sort(d) | Op::Topk(d) => {
                vec![("dim", Attr::Int(*d as i64))]
            }
            Op::Scatter(d) | Op::ScatterAdd(d) | Op::Cumsum(d) => vec![("dim", Attr::Int(*d as i64))],
            Op::Triangle { k, .. } => vec![("diagonal", Attr::Int(*k))],
            Op::Softmax { dim } | Op::LogSoftmax { dim } => vec![("dim", Attr::Int(*dim as i64))],
            Op::LayerNorm { normalized, eps, .. } => {
                vec![("normalized_ndim", Attr::Int(*normalized as i64)), ("eps", Attr::Float(*eps))]
            }
            Op::CrossEntropy { ignore_index, label_smoothing, reduction, .. } => vec![
                ("ignore_index", Attr::Int(*ignore_index)),
                ("label_smoothing", Attr::Float(*label_smoothing)),
                ("reduction", Attr::Str(reduction.name().into())),
            ],
            Op::Lstm { direction, .. } => vec![("direction", Attr::Str(direction.name().into()))],
            Op::ScaledDotProductAttention { causal, scale, dropout_p, .. } => vec![
                ("is_causal", Attr::Bool(*causal)),
                ("scale", Attr::Float(*scale)),
                ("dropout_p", Attr::Float(*dropout_p)),
            ],
            _ => vec![],
        }
    }
}
