//! Element-wise dropout whose mask is a function of (seed, stream, element index): Philox 4x32-10 words from
//! `crate::random`, counter `(index / 4, stream)`, key the seed. Nothing is stored: the backward regenerates the
//! forward's mask, any thread can draw any element, and the result does not depend on the thread count.
//!
//! forward: `out = x * z`, backward (accumulates): `dx += dout * z`, with `z = 0` where the element's word is
//! below `p * 2^32` and `1 / (1 - p)` elsewhere.
//!
//! One seed serves many masks through distinct `stream`s (the fused GPT gives each dropout site of each layer
//! its own). Not here: the attention weights' dropout (`kernels::attention`, keyed by query and key).

use crate::dtype::Float;
use crate::parallel;
use crate::random::philox4x32_10_lanes;

/// Which mask: the Philox key and the counter's high half.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mask {
    /// Drop probability in [0, 1).
    pub p: f64,
    /// The Philox key (one draw of the library's generator).
    pub seed: u64,
    /// Distinguishes masks drawn under one seed.
    pub stream: u64,
}

/// Philox blocks drawn together (four words, four elements each).
const LANES: usize = 16;
/// Elements per block of lanes.
const SPAN: usize = 4 * LANES;

impl Mask {
    fn threshold(&self) -> u64 {
        (self.p * 4_294_967_296.0).round() as u64
    }

    /// The factors `z` of elements `lo .. lo + z.len()`; `lo` is a multiple of [`SPAN`].
    #[inline(always)]
    fn factors<T: Float>(&self, z: &mut [T], lo: usize) {
        debug_assert!(lo.is_multiple_of(SPAN));
        let (th, kept) = (self.threshold(), T::from_f64(1.0 / (1.0 - self.p)));
        let key = [self.seed as u32, (self.seed >> 32) as u32];
        for (b, zs) in z.chunks_mut(SPAN).enumerate() {
            let first = (lo + b * SPAN) / 4;
            let counter: [[u32; LANES]; 4] = [
                std::array::from_fn(|l| (first + l) as u32),
                std::array::from_fn(|l| ((first + l) as u64 >> 32) as u32),
                [self.stream as u32; LANES],
                [(self.stream >> 32) as u32; LANES],
            ];
            let w = philox4x32_10_lanes(counter, key);
            for (i, zv) in zs.iter_mut().enumerate() {
                *zv = if w[i % 4][i / 4] as u64 >= th { kept } else { T::ZERO };
            }
        }
    }

    /// Whether element `i` is kept (the forward's mapping, one element at a time; for tests).
    pub fn keeps(&self, i: usize) -> bool {
        let mut z = [0f64; SPAN];
        self.factors(&mut z, i / SPAN * SPAN);
        z[i % SPAN] != 0.0
    }
}

/// `out = x * z`.
pub fn dropout_forward<T: Float>(out: &mut [T], x: &[T], mask: Mask) {
    apply(out, x, mask, false);
}

/// `dx += dout * z`.
pub fn dropout_backward<T: Float>(dx: &mut [T], dout: &[T], mask: Mask) {
    apply(dx, dout, mask, true);
}

fn apply<T: Float>(out: &mut [T], x: &[T], mask: Mask, accumulate: bool) {
    assert_eq!(out.len(), x.len(), "dropout: {} outputs for {} inputs", out.len(), x.len());
    let spans = |lo: usize, ch: &mut [T]| {
        let mut z = [T::ZERO; SPAN];
        for (k, o) in ch.chunks_mut(SPAN).enumerate() {
            let (at, len) = (lo + k * SPAN, o.len());
            mask.factors(&mut z[..len], at);
            for ((o, &xv), &zv) in o.iter_mut().zip(&x[at..at + len]).zip(&z) {
                *o = if accumulate { *o + xv * zv } else { xv * zv };
            }
        }
    };
    // whole spans over threads (each element's factor comes from the same Philox block on any split), then the
    // last partial span
    let full = out.len() / SPAN * SPAN;
    let (head, tail) = out.split_at_mut(full);
    parallel::for_rows(head, SPAN, 64, |r, ch| spans(r * SPAN, ch));
    spans(full, tail);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_drops_p_of_the_elements_and_scales_the_rest() {
        let n = 100_003;
        let x: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64).collect();
        for p in [0.1, 0.5, 0.9] {
            let m = Mask { p, seed: 42, stream: 3 };
            let mut y = vec![0.0; n];
            dropout_forward(&mut y, &x, m);
            let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
            // 100k Bernoulli draws: the rate within 5 standard deviations
            assert!((dropped - p).abs() < 5.0 * (p * (1.0 - p) / n as f64).sqrt(), "p {p}: dropped {dropped}");
            for (i, (&yv, &xv)) in y.iter().zip(&x).enumerate() {
                let want = if m.keeps(i) { xv / (1.0 - p) } else { 0.0 };
                assert!((yv - want).abs() <= 1e-12 * want.abs(), "element {i}");
            }
            // the backward uses the same mask, accumulating
            let mut dx = vec![1.0; n];
            dropout_backward(&mut dx, &x, m);
            for ((&d, &yv), _) in dx.iter().zip(&y).zip(&x) {
                assert!((d - 1.0 - yv).abs() <= 1e-12 * yv.abs().max(1.0));
            }
        }
    }

    #[test]
    fn streams_and_seeds_give_different_masks_and_threads_do_not_matter() {
        let n = 50_000;
        let x = vec![1.0f32; n];
        let run = |m: Mask| {
            let mut y = vec![0f32; n];
            dropout_forward(&mut y, &x, m);
            y
        };
        let a = run(Mask { p: 0.5, seed: 1, stream: 0 });
        assert_ne!(a, run(Mask { p: 0.5, seed: 1, stream: 1 }));
        assert_ne!(a, run(Mask { p: 0.5, seed: 2, stream: 0 }));
        for threads in 1..=4 {
            crate::parallel::set_num_threads(threads).unwrap();
            assert_eq!(run(Mask { p: 0.5, seed: 1, stream: 0 }), a, "{threads} threads");
        }
    }
}
