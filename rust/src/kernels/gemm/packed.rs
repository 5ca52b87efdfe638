//! B packed once, used by many products. A recurrent layer multiplies the same weights by a new state at every
//! time step (the LSTM: `(B, H) @ W_hh^T (H, 4H)` T times per pass); [`gemm`](super::gemm) would repack W_hh^T at
//! every step, as much memory traffic as the product itself at small batches. [`PackedB`] holds every panel of B
//! for one SIMD level, laid out as the driver's own packing lays them out (blocks of KC steps of k, NR-column
//! panels), so a product on it makes the same microkernel calls on the same values in the same order as `gemm`:
//! the same bits, for any A with at least two rows (`gemm` sends one-row products to `gemv.rs`).
//!
//! Column groups: B can be packed as `groups` equal groups of columns, each padded to whole panels, so one call
//! computes the same column range of every group with A packed once (the LSTM's four gates of a block of hidden
//! units, which its cell update then needs together). A plain B is one group.
//!
//! Not here: deciding when a packing is stale (the caller owns it and packs again after the weights change).

use super::microkernel::{self, Kernel};
use super::pack::{self, MatRef, PackBuf};
use super::{grid, row_block, split, CPtr, KC};
use crate::parallel;
use crate::simd::Simd;

/// A `k x n` matrix B packed for the microkernel of one SIMD level, as `groups` groups of `n / groups` columns.
pub struct PackedB<T> {
    simd: Simd,
    k: usize,
    groups: usize,
    group_n: usize,
    nr: usize,
    /// Panels per group.
    gp: usize,
    buf: PackBuf<T>,
}

impl<T: Kernel> PackedB<T> {
    /// Pack B (`k x n`, any strides) for `simd` (capped at what the CPU supports), as one group.
    ///
    /// # Panics
    /// If B is too short for its shape and strides.
    pub fn new(simd: Simd, k: usize, n: usize, b: MatRef<'_, T>) -> Self {
        Self::grouped(simd, k, n, 1, b)
    }

    /// Pack B as `groups` groups of `n / groups` consecutive columns, each padded to whole panels.
    ///
    /// # Panics
    /// If `groups` is 0 or does not divide `n`, or B is too short for its shape and strides.
    pub fn grouped(simd: Simd, k: usize, n: usize, groups: usize, b: MatRef<'_, T>) -> Self {
        assert!(groups > 0 && n.is_multiple_of(groups), "gemm: {n} columns do not split into {groups} groups");
        b.check(k, n, "B");
        let simd = if simd.supported() { simd } else { crate::simd::best() };
        let nr = microkernel::tile::<T>(simd).1;
        let group_n = n / groups;
        let gp = group_n.div_ceil(nr);
        let mut buf = PackBuf::default();
        let width = groups * gp * nr;
        let dst = buf.get_mut(k * width);
        if width > 0 {
            // block of k at p0: every group's panels in turn, each panel kc x NR (see `panel`)
            for p0 in (0..k).step_by(KC) {
                let kc = KC.min(k - p0);
                let block = &mut dst[p0 * width..(p0 + kc) * width];
                for (q, d) in block.chunks_exact_mut(kc * gp * nr).enumerate() {
                    pack::pack_b_block(d, b, p0, kc, q * group_n, group_n, nr);
                }
            }
        }
        PackedB { simd, k, groups, group_n, nr, gp, buf }
    }

    /// The shared dimension.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B: `groups * group_n`.
    pub fn n(&self) -> usize {
        self.groups * self.group_n
    }

    /// Columns of each group.
    pub fn group_n(&self) -> usize {
        self.group_n
    }

    /// The panel width: column ranges of [`gemm_packed_tile`] start at a multiple of it.
    pub fn nr(&self) -> usize {
        self.nr
    }

    /// The SIMD level the panels are laid out for (the products run on it).
    pub fn simd(&self) -> Simd {
        self.simd
    }

    /// Panel `pj` of group `q` in the block of k starting at `p0` (`kc` deep).
    fn panel(&self, p0: usize, kc: usize, q: usize, pj: usize) -> &[T] {
        let start = p0 * self.groups * self.gp * self.nr + (q * self.gp + pj) * kc * self.nr;
        &self.buf.get()[start..start + kc * self.nr]
    }
}

/// For every group `q`: `C[i0..i0+m, q*G + j0 .. q*G + j0 + n] = alpha * A[i0..i0+m, :] @ B_q[:, j0..j0+n] + beta * C[..]`
/// (G = `group_n`), on the calling thread: one tile of a product that the caller splits over threads itself.
/// `beta == 0` writes C without reading it.
///
/// # Safety
/// `c` is valid for reads and writes of those rows and columns at row stride `ldc`, and no other thread accesses
/// them during the call.
///
/// # Panics
/// If `j0` is not a multiple of [`PackedB::nr`], `j0 + n` passes `group_n`, or A is too short for `i0 + m` rows of k.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_packed_tile<T: Kernel>(
    i0: usize,
    m: usize,
    j0: usize,
    n: usize,
    alpha: T,
    a: MatRef<'_, T>,
    bp: &PackedB<T>,
    beta: T,
    c: *mut T,
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let (simd, k, nr, gn) = (bp.simd, bp.k, bp.nr, bp.group_n);
    assert!(j0.is_multiple_of(nr) && j0 + n <= gn, "gemm: columns {j0}..{} are not a panel range of {gn}", j0 + n);
    if k == 0 || alpha == T::ZERO {
        for i in i0..i0 + m {
            for q in 0..bp.groups {
                // SAFETY: row i, columns q*G + j0 .. + n of C: inside the caller's block.
                let row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc + q * gn + j0), n) };
                row.iter_mut().for_each(|v| *v = if beta == T::ZERO { T::ZERO } else { beta * *v });
            }
        }
        return;
    }
    a.check(i0 + m, k, "A");
    let mr = microkernel::tile::<T>(simd).0;
    let mcb = row_block::<T>(m, KC.min(k), mr);
    T::with_bufs(|apack, _| {
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            // the first block of k applies beta, the others accumulate
            let beta = if p0 == 0 { beta } else { T::ONE };
            for ic in (0..m).step_by(mcb) {
                let mc = mcb.min(m - ic);
                pack::pack_a(apack, a, i0 + ic, mc, p0, kc, mr);
                let apk = apack.get();
                for q in 0..bp.groups {
                    for jr in (j0..j0 + n).step_by(nr) {
                        let nr_eff = nr.min(j0 + n - jr);
                        let bpanel = bp.panel(p0, kc, q, jr / nr);
                        for (pi, ir) in (0..mc).step_by(mr).enumerate() {
                            let mr_eff = mr.min(mc - ir);
                            let ap = &apk[pi * kc * mr..(pi + 1) * kc * mr];
                            // SAFETY: the tile's mr_eff x nr_eff corner lies inside the caller's block of C (rows
                            // below i0 + m, columns below q*G + j0 + n), the panels hold kc steps of the full tile,
                            // and `simd` was capped at what the CPU supports when B was packed.
                            unsafe {
                                let corner = c.add((i0 + ic + ir) * ldc + q * gn + jr);
                                T::run(
                                    simd,
                                    kc,
                                    alpha,
                                    ap,
                                    bpanel,
                                    beta,
                                    std::ptr::null(),
                                    corner,
                                    ldc,
                                    mr_eff,
                                    nr_eff,
                                );
                            }
                        }
                    }
                }
            }
        }
    });
}

/// `C = alpha * A @ B + beta * C` with B packed: A is `m x k`, C is `m x n` (n = [`PackedB::n`]) with row stride
/// `ldc`. Threads split C into tiles of whole rows and whole panels, as `gemm` does.
///
/// # Panics
/// If C or A is too short.
pub fn gemm_packed<T: Kernel>(m: usize, alpha: T, a: MatRef<'_, T>, bp: &PackedB<T>, beta: T, c: &mut [T], ldc: usize) {
    gemm_packed_with(parallel::num_threads(), m, alpha, a, bp, beta, c, ldc)
}

/// [`gemm_packed`] with an explicit thread count.
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed_with<T: Kernel>(
    threads: usize,
    m: usize,
    alpha: T,
    a: MatRef<'_, T>,
    bp: &PackedB<T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    let n = bp.n();
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n, "gemm: C of {} values is too short for {m} x {n}", c.len());
    let (mr, nr) = microkernel::tile::<T>(bp.simd);
    let (tr, tc) = grid::<T>(bp.simd, threads, m, bp.group_n, bp.k * bp.groups);
    let (rows, cols) = (split(m, tr, mr), split(bp.group_n, tc, nr));
    let c = CPtr { ptr: c.as_mut_ptr(), ldc };
    let tile = |t: usize| {
        let c = &c; // the whole `CPtr` (Sync), not its raw pointer field alone
        let (i0, i1) = (rows * (t / tc), (rows * (t / tc + 1)).min(m));
        let (j0, j1) = (cols * (t % tc), (cols * (t % tc + 1)).min(bp.group_n));
        if i0 < i1 && j0 < j1 {
            // SAFETY: tile t covers rows i0..i1 and columns j0..j1 of every group; the tiles of the grid are
            // disjoint, the assert above puts all of them inside `c`, which stays mutably borrowed until `run`
            // returns after the last tile.
            unsafe { gemm_packed_tile(i0, i1 - i0, j0, j1 - j0, alpha, a, bp, beta, c.ptr, c.ldc) };
        }
    };
    if tr * tc == 1 {
        tile(0);
    } else {
        parallel::run(tr * tc, tile);
    }
}
