//! The time loop of the LSTM over threads. Batch rows never interact, so the usual split gives each thread a block
//! of rows and lets it run the whole sequence on them: one parallel region for all T steps, no barrier between
//! steps (a late or descheduled thread delays only the final join), and each step's product (rows x 4H, on the
//! weights packed once) followed by the cell update of exactly those elements. With fewer register-tile rows
//! (6) than threads (small batches: sampling one sequence at a time), each step is a region of its own whose tasks
//! are blocks of (batch rows) x (hidden units): a task computes its block's product for all four gates and then
//! its cell update, and the region's end is the barrier the next step needs.
//!
//! No element's arithmetic depends on the split: the results are the same bits on any number of threads.
//! Tasks write disjoint blocks of shared buffers that are not contiguous slices (a few columns of every row, or a
//! few rows of every step), so the buffers reach them as [`Shared`] raw pointers; each access states why it
//! stays inside the task's own block.

use super::cell::{cell_backward, cell_forward};
use super::Dims;
use crate::kernels::gemm::{gemm_packed_tile, tile, Kernel, MatRef, PackedB};
use crate::parallel::{self, MIN_PARALLEL};
use crate::simd::Simd;
use std::ops::Range;

/// How the time loop is cut: `tr` blocks of `rows` batch rows times `tc` blocks of `cols` hidden units (a whole
/// number of the packed weights' panels). With `tc == 1` each row block runs every step in one task.
pub(super) struct Plan {
    b: usize,
    h: usize,
    rows: usize,
    pub(super) cols: usize,
    pub(super) tr: usize,
    pub(super) tc: usize,
}

impl Plan {
    /// The plan for batch `b`, hidden size `h` on `threads` threads: batch rows when there are at least as many
    /// register-tile rows as threads, else rows and hidden units per step; fewer tasks than threads when a step's
    /// product (8 B H^2 flops) leaves under about 0.5 MFLOP a task, as `gemm` does.
    pub(super) fn new<T: Kernel>(simd: Simd, threads: usize, b: usize, h: usize) -> Plan {
        let (mr, nr) = tile::<T>(simd);
        let by_work = (b.saturating_mul(h).saturating_mul(h) / (2 * MIN_PARALLEL)).max(1);
        let t = threads.min(by_work).max(1);
        let tr = t.min(b.div_ceil(mr)).max(1);
        let tc = (t / tr).min(h.div_ceil(nr)).max(1);
        let cut = |len: usize, parts: usize, unit: usize| len.div_ceil(parts).div_ceil(unit).max(1) * unit;
        let (rows, cols) = (cut(b, tr, mr), cut(h, tc, nr));
        Plan { b, h, rows, cols, tr: b.div_ceil(rows).max(1), tc: h.div_ceil(cols).max(1) }
    }

    /// Run `body(s, rows, units)` for every step `s` in order and every block: per row block over all steps in
    /// one region (`tc == 1`), else one region per step.
    fn run(&self, steps: usize, body: impl Fn(usize, Range<usize>, Range<usize>) + Sync) {
        let rows = |r: usize| r * self.rows..((r + 1) * self.rows).min(self.b);
        let cols = |q: usize| q * self.cols..((q + 1) * self.cols).min(self.h);
        if self.tc == 1 {
            let task = |r: usize| (0..steps).for_each(|s| body(s, rows(r), 0..self.h));
            if self.tr == 1 {
                task(0);
            } else {
                parallel::run(self.tr, task);
            }
        } else {
            for s in 0..steps {
                parallel::run(self.tr * self.tc, |k| body(s, rows(k / self.tc), cols(k % self.tc)));
            }
        }
    }
}

/// A mutable buffer shared by the tasks of one region, each accessing its own elements.
struct Shared<T> {
    ptr: *mut T,
    len: usize,
}

// by hand: derived impls would ask `T: Copy`, and the handle is copyable whatever T is
impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<T> {}

// SAFETY: a `Shared` lives for one call, whose tasks access disjoint elements (each use says why).
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn new(s: &mut [T]) -> Self {
        Shared { ptr: s.as_mut_ptr(), len: s.len() }
    }

    /// `len` elements from `start`, for writing.
    ///
    /// # Safety
    /// No other live reference covers them, and the buffer outlives `'a`: the caller's task owns them for `'a`.
    unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [T] {
        assert!(start + len <= self.len, "lstm: block {start}..{} outside a buffer of {}", start + len, self.len);
        // SAFETY: inside the buffer (checked above), which outlives the region; exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }

    /// `len` elements from `start`, for reading.
    ///
    /// # Safety
    /// Nobody writes them during `'a`, and the buffer outlives `'a`.
    unsafe fn read<'a>(self, start: usize, len: usize) -> &'a [T] {
        assert!(start + len <= self.len, "lstm: block {start}..{} outside a buffer of {}", start + len, self.len);
        // SAFETY: inside the buffer (checked above); unchanging by the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.add(start), len) }
    }

    /// Units `cols` of the four gates in row `r` of a (rows, 4H) buffer, for writing.
    ///
    /// # Safety
    /// As for [`Shared::slice`], for each of the four.
    unsafe fn gates<'a>(self, r: usize, h: usize, cols: &Range<usize>) -> [&'a mut [T]; 4] {
        // SAFETY: the caller's contract; the four ranges are disjoint.
        [0, 1, 2, 3].map(|q| unsafe { self.slice(r * 4 * h + q * h + cols.start, cols.len()) })
    }
}

/// Units `cols` of the four gates in row `r` of a (rows, 4H) buffer.
fn gates_of<'a, T>(z: &'a [T], r: usize, h: usize, cols: &Range<usize>) -> [&'a [T]; 4] {
    [0, 1, 2, 3].map(|q| &z[r * 4 * h + q * h + cols.start..r * 4 * h + q * h + cols.end])
}

/// The forward's time loop. `z` (T, B, 4H) holds `x_t W_ih^T + b` and gets `h_{t-1} W_hh^T` added at each step,
/// then becomes the gate activations; `c` (T + 1, B, H) holds c_0 and gets the state after each step; `seq`
/// (T, B, H) gets the hidden states by time. `whh_t` is W_hh^T packed as four groups (the gates).
pub(super) fn forward_steps<T: Kernel>(
    plan: &Plan,
    d: Dims,
    whh_t: &PackedB<T>,
    h0: &[T],
    z: &mut [T],
    c: &mut [T],
    seq: &mut [T],
) {
    let Dims { t, b, h, .. } = d;
    let (bh, g4) = (b * h, 4 * h);
    assert!(z.len() == t * b * g4 && c.len() == (t + 1) * bh && seq.len() == t * bh && h0.len() == bh);
    assert!(whh_t.k() == h && whh_t.group_n() == h && whh_t.n() == g4, "lstm: W_hh^T packed for other sizes");
    let (zs, cs, hs) = (Shared::new(z), Shared::new(c), Shared::new(seq));
    let simd = whh_t.simd();
    plan.run(t, |s, rows, cols| {
        let (zs, cs, hs) = (zs, cs, hs);
        let tt = d.time(s);
        let (r0, nrows) = (rows.start, rows.len());
        let h_prev = if s == 0 {
            &h0[r0 * h..rows.end * h]
        } else {
            // SAFETY: rows `rows` of the step before, written by an earlier step (this task's, or any task's in an
            // earlier region); this step writes only time `tt`.
            unsafe { hs.read(d.time(s - 1) * bh + r0 * h, nrows * h) }
        };
        let a = MatRef { data: h_prev, rs: h, cs: 1 };
        // SAFETY: the tile writes rows `rows`, units `cols` of each gate of z at time tt: this task's block (the
        // plan's blocks are disjoint), inside z (asserted above: T B rows of 4H).
        unsafe {
            let zt = zs.ptr.add((tt * b + r0) * g4);
            gemm_packed_tile(0, nrows, cols.start, cols.len(), T::ONE, a, whh_t, T::ONE, zt, g4);
        }
        for r in rows {
            let at = r * h + cols.start;
            // SAFETY: row r, units `cols` of z and h at time tt and of c after step s: this task's block; the
            // tile above has returned. c before step s is read only (written by an earlier step).
            unsafe {
                let zr = zs.gates((tt * b) + r, h, &cols);
                let c_prev = cs.read(s * bh + at, cols.len());
                let (c_t, h_t) = (cs.slice((s + 1) * bh + at, cols.len()), hs.slice(tt * bh + at, cols.len()));
                cell_forward(simd, zr, c_prev, c_t, h_t);
            }
        }
    });
}

/// The backward's time loop, last step first. Writes the gate gradients `dz` (T, B, 4H) from the activations
/// `act` (T, B, 4H), the cell states `c` (T + 1, B, H), the output's gradient `dh_seq` (T, B, H) by time and the
/// recurrent one: `dh_last` (B, H) at the last step, before it `dz_{t+1} W_hh` (`w`: W_hh packed, 4H x H) into
/// `scratch` (B, H). `dc` (B, H) holds the final cell's gradient and ends holding c_0's.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_steps<T: Kernel>(
    plan: &Plan,
    d: Dims,
    w: &PackedB<T>,
    dz: &mut [T],
    dc: &mut [T],
    scratch: &mut [T],
    act: &[T],
    c: &[T],
    dh_seq: &[T],
    dh_last: &[T],
) {
    let Dims { t, b, h, .. } = d;
    let (bh, g4) = (b * h, 4 * h);
    assert!(dz.len() == t * b * g4 && act.len() == t * b * g4 && c.len() == (t + 1) * bh && dh_seq.len() == t * bh);
    assert!(dc.len() == bh && scratch.len() == bh && dh_last.len() == bh && w.k() == g4 && w.n() == h);
    let (dzs, dcs, ss) = (Shared::new(dz), Shared::new(dc), Shared::new(scratch));
    let simd = w.simd();
    plan.run(t, |k, rows, cols| {
        let (dzs, dcs, ss) = (dzs, dcs, ss);
        let s = t - 1 - k;
        let tt = d.time(s);
        let (r0, nrows) = (rows.start, rows.len());
        if s + 1 < t {
            // SAFETY: rows `rows` of dz at the next step's time, written by an earlier region or by this task;
            // this step writes dz only at time tt. The tile writes rows `rows`, units `cols` of the scratch:
            // this task's block.
            unsafe {
                let next = dzs.read((d.time(s + 1) * b + r0) * g4, nrows * g4);
                let a = MatRef { data: next, rs: g4, cs: 1 };
                gemm_packed_tile(0, nrows, cols.start, cols.len(), T::ONE, a, w, T::ZERO, ss.ptr.add(r0 * h), h);
            }
        }
        for r in rows {
            let at = r * h + cols.start;
            let span = at..at + cols.len();
            // SAFETY: row r, units `cols` of dz at time tt, of dc and of the scratch: this task's block (the
            // scratch written by the tile above, which has returned).
            unsafe {
                let rec = if s + 1 < t { ss.read(at, cols.len()) } else { &dh_last[span.clone()] };
                let (dzr, dcr) = (dzs.gates(tt * b + r, h, &cols), dcs.slice(at, cols.len()));
                let (cp, cc) = (&c[s * bh..][span.clone()], &c[(s + 1) * bh..][span.clone()]);
                cell_backward(
                    simd,
                    dzr,
                    dcr,
                    gates_of(act, tt * b + r, h, &cols),
                    cp,
                    cc,
                    &dh_seq[tt * bh..][span],
                    rec,
                );
            }
        }
    });
}
