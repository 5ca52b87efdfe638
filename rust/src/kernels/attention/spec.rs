//! The description of one attention call: sizes ([`Dims`]), where each operand lives ([`Layout`]), the mask,
//! the scale and dropout ([`AttentionSpec`]), the gradient buffers ([`QkvGrads`]), and the checks that let the
//! kernels index without bounds checks. Also the dropout mask's definition ([`Dropout::keeps`]). No arithmetic
//! on the operands here.

use crate::dtype::Float;
use crate::error::{Error, Result};

pub(super) const OP: &str = "scaled_dot_product_attention";

/// Sizes of one attention call (see the module docs for the letters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Batches.
    pub b: usize,
    /// Heads.
    pub nh: usize,
    /// Queries.
    pub t: usize,
    /// Keys (and values).
    pub s: usize,
    /// Head size of q and k.
    pub hs: usize,
    /// Head size of v and out.
    pub hv: usize,
}

/// Where one operand lives in its buffer: element `d` of row `r` of head `h` of batch `b` is at
/// `offset + b * batch + h * head + r * row + d` (the head dim is contiguous).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Offset of batch 0, head 0, row 0.
    pub offset: usize,
    /// Stride between batches.
    pub batch: usize,
    /// Stride between heads.
    pub head: usize,
    /// Stride between rows.
    pub row: usize,
}

impl Layout {
    /// A contiguous (B, NH, rows, width) tensor.
    pub fn bhtd(nh: usize, rows: usize, width: usize) -> Layout {
        Layout { offset: 0, batch: nh * rows * width, head: rows * width, row: width }
    }

    /// A contiguous (B, rows, NH * width) tensor whose head `h` is columns `h * width ..`: the attention output
    /// as the GPT's c_proj reads it, (B, T, C).
    pub fn bthd(nh: usize, rows: usize, width: usize) -> Layout {
        Layout { offset: 0, batch: rows * nh * width, head: width, row: nh * width }
    }

    /// q (`which = 0`), k (1) or v (2) inside the (B, T, 3C) output of a fused QKV projection, C = NH * HS.
    pub fn qkv(which: usize, nh: usize, t: usize, hs: usize) -> Layout {
        let c = nh * hs;
        Layout { offset: which * c, batch: t * 3 * c, head: hs, row: 3 * c }
    }

    /// One past the largest offset of `b x nh x rows x width` elements, `None` on overflow.
    fn end(&self, b: usize, nh: usize, rows: usize, width: usize) -> Option<usize> {
        if b == 0 || nh == 0 || rows == 0 || width == 0 {
            return Some(0);
        }
        let last = [(b, self.batch), (nh, self.head), (rows, self.row)]
            .iter()
            .try_fold(self.offset + width - 1, |acc, &(n, st)| acc.checked_add((n - 1).checked_mul(st)?))?;
        last.checked_add(1)
    }

    /// Whether distinct (b, h, row, d) reach distinct elements (required of every buffer a kernel writes).
    fn disjoint(&self, b: usize, nh: usize, rows: usize, width: usize) -> bool {
        let mut dims: Vec<(usize, usize)> =
            [(self.batch, b), (self.head, nh), (self.row, rows), (1, width)].into_iter().filter(|d| d.1 > 1).collect();
        dims.sort_unstable();
        let mut extent = 1; // one past the largest offset of the dims below, from 0
        for (stride, n) in dims {
            if stride < extent {
                return false;
            }
            extent += stride * (n - 1);
        }
        true
    }
}

/// Strides of a mask broadcast over (B, NH, T, S): 0 on broadcast dims. Element (b, h, i, j) is at
/// `b * batch + h * head + i * row + j * col`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskLayout {
    /// Stride between batches.
    pub batch: usize,
    /// Stride between heads.
    pub head: usize,
    /// Stride between queries.
    pub row: usize,
    /// Stride between keys.
    pub col: usize,
}

/// An explicit mask on the scores (besides the causal one).
#[derive(Clone, Copy, Debug)]
pub enum Mask<'a, T> {
    /// No mask.
    None,
    /// `true` = the key takes part (PyTorch SDPA's convention), `false` = its score is `-inf`.
    Bool(&'a [bool], MaskLayout),
    /// Added to the scores (after the scale).
    Additive(&'a [T], MaskLayout),
}

/// Dropout on the attention weights: each weight is kept with probability `1 - p` and scaled by `1 / (1 - p)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// Drop probability, in [0, 1].
    pub p: f64,
    /// The Philox key: one draw of the library's generator per forward, kept for the backward.
    pub seed: u64,
}

impl Dropout {
    /// A 32-bit random word at or above this keeps the weight (a u64 so p = 1 can drop everything).
    fn threshold(&self) -> u64 {
        (self.p * 4_294_967_296.0).round() as u64
    }

    /// The factor of a kept weight.
    fn kept(&self) -> f64 {
        if self.p < 1.0 {
            1.0 / (1.0 - self.p)
        } else {
            0.0
        }
    }

    /// The random words of queries `4 * i4 .. 4 * i4 + 4` for key `j` of head `bh` (`b * NH + h`): one Philox
    /// block, counter (i4, j, bh low, bh high), key = the seed.
    pub fn words(&self, bh: usize, i4: usize, j: usize) -> [u32; 4] {
        let bh = bh as u64;
        let key = [self.seed as u32, (self.seed >> 32) as u32];
        crate::random::philox4x32_10([i4 as u32, j as u32, bh as u32, (bh >> 32) as u32], key)
    }

    /// Whether the weight of query `i`, key `j` in head `bh` is kept (what both paths compute, one word each).
    pub fn keeps(&self, bh: usize, i: usize, j: usize) -> bool {
        self.words(bh, i / 4, j)[i % 4] as u64 >= self.threshold()
    }

    /// The factors (0 or 1 / (1 - p)) of queries `i0 + q` (`q < nq`) and keys `j0 + c` (`c < nk`) into
    /// `z[q * qs + c * cs]`: the words of 16 keys at a time, one Philox lane each (`keeps`'s mapping).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn factors<T: Float>(
        &self,
        z: &mut [T],
        qs: usize,
        cs: usize,
        bh: usize,
        i0: usize,
        nq: usize,
        j0: usize,
        nk: usize,
    ) {
        const L: usize = 16;
        let (thr, kept) = (self.threshold(), T::from_f64(self.kept()));
        let key = [self.seed as u32, (self.seed >> 32) as u32];
        let bh = bh as u64;
        for i4 in i0 / 4..(i0 + nq).div_ceil(4) {
            for c0 in (0..nk).step_by(L) {
                let keys: [u32; L] = std::array::from_fn(|l| (j0 + c0 + l) as u32);
                let words = crate::random::philox4x32_10_lanes(
                    [[i4 as u32; L], keys, [bh as u32; L], [(bh >> 32) as u32; L]],
                    key,
                );
                for (w, words) in words.iter().enumerate() {
                    let i = 4 * i4 + w;
                    if i < i0 || i >= i0 + nq {
                        continue;
                    }
                    for (l, &word) in words.iter().enumerate().take(nk - c0) {
                        z[(i - i0) * qs + (c0 + l) * cs] = if word as u64 >= thr { kept } else { T::ZERO };
                    }
                }
            }
        }
    }
}

/// Everything about one attention call besides its buffers.
#[derive(Clone, Copy, Debug)]
pub struct AttentionSpec<'a, T> {
    /// Sizes.
    pub dims: Dims,
    /// Layout of q (and dq): rows are queries, width HS.
    pub q: Layout,
    /// Layout of k (and dk): rows are keys, width HS.
    pub k: Layout,
    /// Layout of v (and dv): rows are keys, width HV.
    pub v: Layout,
    /// Layout of out (and of dout in the backward): rows are queries, width HV.
    pub out: Layout,
    /// Query i sees keys j <= i only.
    pub causal: bool,
    /// An explicit mask, combined with the causal one when both are given.
    pub mask: Mask<'a, T>,
    /// Multiplies `q . k` (PyTorch's default is `1 / sqrt(HS)`).
    pub scale: f64,
    /// Dropout on the weights, or none.
    pub dropout: Option<Dropout>,
}

/// The gradients of q, k and v the backward accumulates into, each addressed by its input's layout.
pub enum QkvGrads<'a, T> {
    /// Three buffers.
    Separate(&'a mut [T], &'a mut [T], &'a mut [T]),
    /// One buffer holding all three, such as the (B, T, 3C) gradient of a fused QKV projection; the three
    /// layouts must not reach a common element.
    Fused(&'a mut [T]),
}

fn too_short(what: &str, len: usize, need: Option<usize>, d: &Dims) -> Error {
    Error::shape(
        OP,
        format!(
            "{what} of {len} elements is too short for its layout at B={} NH={} T={} S={} HS={} HV={} (needs {})",
            d.b,
            d.nh,
            d.t,
            d.s,
            d.hs,
            d.hv,
            need.map_or("more than usize::MAX".to_string(), |n| n.to_string())
        ),
    )
}

impl<T> AttentionSpec<'_, T> {
    pub(super) fn check_read(&self, what: &str, len: usize, l: &Layout, rows: usize, width: usize) -> Result<()> {
        let d = &self.dims;
        match l.end(d.b, d.nh, rows, width) {
            Some(n) if n <= len => Ok(()),
            need => Err(too_short(what, len, need, d)),
        }
    }

    pub(super) fn check_write(&self, what: &str, len: usize, l: &Layout, rows: usize, width: usize) -> Result<()> {
        self.check_read(what, len, l, rows, width)?;
        let d = &self.dims;
        if !l.disjoint(d.b, d.nh, rows, width) {
            return Err(Error::invalid(OP, format!("the layout of {what} {l:?} writes some element twice")));
        }
        Ok(())
    }

    /// Check every buffer against the dims and layouts (so the kernels may index without bounds checks).
    pub(super) fn check(&self, q: usize, k: usize, v: usize, lse: usize) -> Result<()> {
        let d = &self.dims;
        self.check_read("q", q, &self.q, d.t, d.hs)?;
        self.check_read("k", k, &self.k, d.s, d.hs)?;
        self.check_read("v", v, &self.v, d.s, d.hv)?;
        if lse != d.b * d.nh * d.t {
            return Err(Error::shape(OP, format!("lse has {lse} elements, expected B*NH*T = {}", d.b * d.nh * d.t)));
        }
        if !(self.scale.is_finite()) {
            return Err(Error::invalid(OP, format!("scale must be finite, got {}", self.scale)));
        }
        if let Some(dr) = self.dropout {
            if !(0.0..=1.0).contains(&dr.p) {
                return Err(Error::invalid(OP, format!("dropout probability has to be between 0 and 1, got {}", dr.p)));
            }
            if d.t.max(d.s) > u32::MAX as usize {
                return Err(Error::unsupported(
                    OP,
                    format!("dropout with {} queries or keys (at most 2^32)", d.t.max(d.s)),
                ));
            }
        }
        let (mask_len, ml) = match self.mask {
            Mask::None => return Ok(()),
            Mask::Bool(m, l) => (m.len(), l),
            Mask::Additive(m, l) => (m.len(), l),
        };
        let last = [(d.b, ml.batch), (d.nh, ml.head), (d.t, ml.row), (d.s, ml.col)]
            .iter()
            .try_fold(0usize, |acc, &(n, st)| acc.checked_add(n.saturating_sub(1).checked_mul(st)?));
        match last {
            Some(l) if d.b * d.nh * d.t * d.s == 0 || l < mask_len => Ok(()),
            _ => Err(Error::shape(OP, format!("mask of {mask_len} elements is too short for its strides {ml:?}"))),
        }
    }
}

/// Whether the q, k, v layouts of a fused gradient buffer reach distinct elements. Sufficient condition (what a
/// (B, T, 3C) buffer meets): one row stride, batch strides that are whole numbers of rows with room for every
/// row, and each layout inside its own range of columns `[offset, offset + (NH - 1) * head + width)` of a row.
pub(super) fn fused_disjoint<T>(spec: &AttentionSpec<'_, T>) -> bool {
    let d = &spec.dims;
    if d.b * d.nh * d.t * d.s == 0 {
        return true; // nothing is written
    }
    let row = spec.q.row;
    let cols = |l: &Layout, rows: usize, w: usize| {
        let fits = l.row == row && row > 0 && l.batch.is_multiple_of(row) && l.batch >= rows * row;
        let end = l.offset + (d.nh - 1) * l.head + w;
        (fits && end <= row).then_some((l.offset, end))
    };
    let (Some(a), Some(b), Some(c)) = (cols(&spec.q, d.t, d.hs), cols(&spec.k, d.s, d.hs), cols(&spec.v, d.s, d.hv))
    else {
        return false;
    };
    let apart = |x: (usize, usize), y: (usize, usize)| x.1 <= y.0 || y.1 <= x.0;
    apart(a, b) && apart(a, c) && apart(b, c)
}
