//! The f32 attention path on every SIMD level, written once against [`F32x`] (N lanes).
//!
//! Lanes run over queries wherever the softmax happens: a query block is `QV` vectors (`QV * N` queries), its
//! q rows are transposed once into `qt` (HS x QB, scaled by `scale` on the way), and the scores of a key tile are
//! computed transposed, `st[c][lane] = k_c . q_lane`, so the running max, sums and rescaling of the online softmax
//! are plain vertical vector ops (no horizontal reduction anywhere). The products go through two register-blocked
//! microkernels, which hold 80-90% of the FMA peak and most of the time (benchmarks/README.md, "Attention"):
//! - [`lanes_q`]: R rows x QV query vectors, a broadcast scalar times a packed vector per step: the scores
//!   `K qt` (reduction over HS) and `dP^T = V dout^T` (over HV); k and v rows are read in place through their
//!   strides.
//! - [`lanes_d`]: R rows x up to 4 vectors along the head dim (masked tail): the output `O = alpha O + P V` and
//!   `dq += dS k` (reduction over the tile's keys, rows in a block buffer), `dv += P^T dout` and `dk += dS^T q`
//!   (reduction over the block's queries, accumulated straight into the gradient rows).
//!
//! Not here: the scalar f64 path (`plain.rs`), layouts, checks and threads (`mod.rs`).

use super::head::Head;
use crate::simd::{math, F32x, Simd};

/// Query vectors per block (32 queries on AVX-512; 4 vectors were no faster in paired timings).
const QV: usize = 2;
/// Keys per tile: a multiple of [`RQ`]. Paired timings at B4 NH12 T1024 HS64 (benchmarks/README.md): 32 and 64 keys
/// 3-10% slower than 128-288, which were within noise of each other (per-tile rescaling and call overhead).
const KB: usize = 192;
/// Rows of [`lanes_q`]'s register tile (R x QV accumulators: 12 of 32 zmm, 12 of 16 ymm).
const RQ: usize = 6;
/// The widest vector (AVX-512's 16 lanes): block-sized stack arrays hold `QV * MAX_N` values.
const MAX_N: usize = 16;

/// Lanes of the level `simd` runs on (after `simd_kernel!`'s fallback to what the CPU supports).
fn lanes(simd: Simd) -> usize {
    match if simd.supported() { simd } else { crate::simd::best() } {
        Simd::Avx512 => 16,
        Simd::Avx2 => 8,
        Simd::Scalar => 1,
    }
}

/// Queries per block on `simd`.
pub(super) fn query_block(simd: Simd) -> usize {
    QV * lanes(simd)
}

/// `c[r][v] = sum_{k < kn} a[r * ars + k * aks] * b[k * QB + v * N ..]` for `R` rows and `QV` vectors of queries
/// (`QB = QV * N`): `b` holds `kn` rows of QB values, `c` rows of QB values. Rows `rows..R` repeat row
/// `rows - 1` and are not stored.
///
/// # Safety
/// The CPU has `V`'s features; `1 <= rows <= R`; `a` is valid for reads at `r * ars + k * aks` (`r < rows`,
/// `k < kn`), `b` for `kn * QB` reads, `c` for writes of `rows * QB` values.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn lanes_q<V: F32x, const R: usize>(
    a: *const f32,
    ars: usize,
    aks: usize,
    b: *const f32,
    kn: usize,
    c: *mut f32,
    rows: usize,
) {
    let qb = QV * V::N;
    // SAFETY: the caller's contract covers every pointer below.
    unsafe {
        let ar: [*const f32; R] = std::array::from_fn(|r| a.add(r.min(rows - 1) * ars));
        let mut acc = [[V::zero(); QV]; R];
        for k in 0..kn {
            let bk = b.add(k * qb);
            let bv: [V; QV] = std::array::from_fn(|v| V::load(bk.add(v * V::N)));
            for r in 0..R {
                let s = V::splat(*ar[r].add(k * aks));
                for v in 0..QV {
                    acc[r][v] = V::fmadd(s, bv[v], acc[r][v]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate().take(rows) {
            for (v, x) in acc.iter().enumerate() {
                x.store(c.add(r * qb + v * V::N));
            }
        }
    }
}

/// `c[r * ldc + d] += sum_{k < kn} a[r * ars + k * aks] * b[k * ldb + d]` for `R` rows and `NV` vectors along
/// `d`, the last of them `tail` lanes wide when `PARTIAL` (masked loads and stores). Rows `rows..R` repeat row
/// `rows - 1` and are not stored.
///
/// # Safety
/// The CPU has `V`'s features; `1 <= rows <= R`; `a` is valid for reads at `r * ars + k * aks` (`r < rows`,
/// `k < kn`); `b` for reads of the `NV` vectors (the tail's lanes only) at `k * ldb`, `k < kn`; `c` likewise for
/// reads and writes at `r * ldc`, `r < rows`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn lanes_d<V: F32x, const R: usize, const NV: usize, const PARTIAL: bool>(
    a: *const f32,
    ars: usize,
    aks: usize,
    b: *const f32,
    ldb: usize,
    kn: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    tail: usize,
) {
    // SAFETY: the caller's contract covers every pointer below; a partial vector touches `tail` values only.
    unsafe {
        let load = |p: *const f32, v: usize| {
            if PARTIAL && v == NV - 1 {
                V::read_partial(std::slice::from_raw_parts(p, tail), 0, tail)
            } else {
                V::load(p)
            }
        };
        let ar: [*const f32; R] = std::array::from_fn(|r| a.add(r.min(rows - 1) * ars));
        let cr: [*mut f32; R] = std::array::from_fn(|r| c.add(r.min(rows - 1) * ldc));
        let mut acc: [[V; NV]; R] = std::array::from_fn(|r| std::array::from_fn(|v| load(cr[r].add(v * V::N), v)));
        for k in 0..kn {
            let bk = b.add(k * ldb);
            let bv: [V; NV] = std::array::from_fn(|v| load(bk.add(v * V::N), v));
            for r in 0..R {
                let s = V::splat(*ar[r].add(k * aks));
                for v in 0..NV {
                    acc[r][v] = V::fmadd(s, bv[v], acc[r][v]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate().take(rows) {
            for (v, x) in acc.iter().enumerate() {
                let p = cr[r].add(v * V::N);
                if PARTIAL && v == NV - 1 {
                    x.write_partial(std::slice::from_raw_parts_mut(p, tail), 0, tail);
                } else {
                    x.store(p);
                }
            }
        }
    }
}

/// [`lanes_d`] over `rows` rows and a head dim of `w`: row groups of R, chunks of `NV` (at most 4) vectors.
///
/// # Safety
/// As [`lanes_d`] for all `rows` rows and `w` columns (no `rows <= R` limit; `rows` may be 0).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn lanes_d_rows<V: F32x, const R: usize, const NV: usize>(
    a: *const f32,
    ars: usize,
    aks: usize,
    b: *const f32,
    ldb: usize,
    kn: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    w: usize,
) {
    let n = V::N;
    for r0 in (0..rows).step_by(R) {
        let nr = R.min(rows - r0);
        let mut d0 = 0;
        while d0 < w {
            let rem = w - d0;
            let (nv, tail) = if rem >= NV * n { (NV, n) } else { (rem.div_ceil(n), rem - (rem.div_ceil(n) - 1) * n) };
            // SAFETY: rows r0 .. r0 + nr and columns d0 .. d0 + nv vectors (the last `tail` lanes) lie inside the
            // ranges the caller vouches for.
            unsafe {
                let (ap, bp, cp) = (a.add(r0 * ars), b.add(d0), c.add(r0 * ldc + d0));
                match (nv, tail == n) {
                    (4, true) => lanes_d::<V, R, 4, false>(ap, ars, aks, bp, ldb, kn, cp, ldc, nr, tail),
                    (4, false) => lanes_d::<V, R, 4, true>(ap, ars, aks, bp, ldb, kn, cp, ldc, nr, tail),
                    (3, true) => lanes_d::<V, R, 3, false>(ap, ars, aks, bp, ldb, kn, cp, ldc, nr, tail),
                    (3, false) => lanes_d::<V, R, 3, true>(ap, ars, aks, bp, ldb, kn, cp, ldc, nr, tail),
                    (2, true) => lanes_d::<V, R, 2, false>(ap, ars, aks, bp, ldb, kn, cp, ldc, nr, tail),
                    (2, false) => lanes_d::<V, R, 2, true>(ap, ars, aks, bp, ldb, kn, cp, ldc, nr, tail),
                    (_, true) => lanes_d::<V, R, 1, false>(ap, ars, aks, bp, ldb, kn, cp, ldc, nr, tail),
                    (_, false) => lanes_d::<V, R, 1, true>(ap, ars, aks, bp, ldb, kn, cp, ldc, nr, tail),
                }
            }
            d0 += nv * n;
        }
    }
}

/// `dst[d * QB + l] = scale * src[(i0 + l) * ld + d]` for `l < nq`, 0 for the padding lanes `nq <= l < QB`.
///
/// # Safety
/// Rows `i0 .. i0 + nq` of `src` are valid for `w` reads each.
#[allow(clippy::too_many_arguments)]
unsafe fn transpose_rows(
    dst: &mut [f32],
    src: *const f32,
    ld: usize,
    i0: usize,
    nq: usize,
    w: usize,
    qb: usize,
    scale: f32,
) {
    for l in 0..qb {
        if l < nq {
            // SAFETY: the caller's contract.
            let row = unsafe { src.add((i0 + l) * ld) };
            // SAFETY: as above.
            (0..w).for_each(|d| dst[d * qb + l] = scale * unsafe { *row.add(d) });
        } else {
            (0..w).for_each(|d| dst[d * qb + l] = 0.0);
        }
    }
}

/// The additive mask of key `j` for the block's queries into `row[..qb]` (0 on padding lanes).
///
/// # Safety
/// As `Head::mask_at`: `i0 + nq <= t`, `j < s`.
unsafe fn mask_row(hd: &Head<f32>, row: &mut [f32], i0: usize, nq: usize, j: usize, qb: usize) {
    for (l, x) in row[..qb].iter_mut().enumerate() {
        // SAFETY: the caller's contract.
        *x = if l < nq { unsafe { hd.mask_at(i0 + l, j) } } else { 0.0 };
    }
}

/// Add the mask and the causal mask to the tile's scores `st` (nk keys x QB, already scaled through q) and return
/// the column maxima folded into `m`. A tile with neither mask is only read.
///
/// # Safety
/// The CPU has `V`'s features; `i0 + nq <= t`, `j0 + nk <= s`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn scores<V: F32x>(
    hd: &Head<f32>,
    st: &mut [f32],
    row: &mut [f32],
    i0: usize,
    nq: usize,
    j0: usize,
    nk: usize,
    m: [V; QV],
) -> [V; QV] {
    let (n, qb) = (V::N, QV * V::N);
    // SAFETY: the CPU contract is the caller's; `mask_row` gets `i0 + nq <= t` and `j < s` from it too.
    unsafe {
        let mut mx = m;
        if !masks_tile(hd, i0, j0, nk) {
            for at in (0..nk * qb).step_by(n) {
                let v = at / n % QV;
                mx[v] = V::max(V::read(st, at), mx[v]);
            }
            return mx;
        }
        // lane indices relative to i0 stay small, so their f32 compares are exact
        let diag = diagonal(hd, i0, j0, nk);
        let masked = !matches!(hd.mask, super::head::HeadMask::None);
        let mut lane = [0f32; QV * MAX_N];
        lane.iter_mut().enumerate().for_each(|(l, x)| *x = l as f32);
        let li: [V; QV] = std::array::from_fn(|v| V::read(&lane, v * n));
        let ninf = V::splat(f32::NEG_INFINITY);
        for c in 0..nk {
            if masked {
                mask_row(hd, row, i0, nq, j0 + c, qb);
            }
            let jr = V::splat((j0 + c) as f32 - i0 as f32);
            for v in 0..QV {
                let mut x = V::read(st, c * qb + v * n);
                if masked {
                    x = V::add(x, V::read(row, v * n));
                }
                if diag {
                    x = V::select_lt(li[v], jr, ninf, x);
                }
                x.write(st, c * qb + v * n);
                mx[v] = V::max(x, mx[v]);
            }
        }
        mx
    }
}

/// Whether the tile of queries from `i0` and keys `j0 .. j0 + nk` holds a key after one of its queries (only tiles
/// on the causal diagonal do).
fn diagonal(hd: &Head<f32>, i0: usize, j0: usize, nk: usize) -> bool {
    hd.causal && j0 + nk > i0 + 1
}

/// Whether any mask changes the tile's scores.
fn masks_tile(hd: &Head<f32>, i0: usize, j0: usize, nk: usize) -> bool {
    diagonal(hd, i0, j0, nk) || !matches!(hd.mask, super::head::HeadMask::None)
}

/// `sum_d x[d] * y[d]` over `n` values.
///
/// # Safety
/// The CPU has `V`'s features; `x` and `y` are valid for `n` reads.
#[inline(always)]
unsafe fn dot<V: F32x>(x: *const f32, y: *const f32, n: usize) -> f32 {
    // SAFETY: the caller's contract.
    unsafe {
        let (x, y) = (std::slice::from_raw_parts(x, n), std::slice::from_raw_parts(y, n));
        let mut acc = V::zero();
        for d in (0..n).step_by(V::N) {
            let w = V::N.min(n - d);
            let (a, b) = if w == V::N {
                (V::read(x, d), V::read(y, d))
            } else {
                (V::read_partial(x, d, w), V::read_partial(y, d, w))
            };
            acc = V::fmadd(a, b, acc);
        }
        V::hsum(acc)
    }
}

/// `dst[d] += src[d]` over `n` values.
///
/// # Safety
/// The CPU has `V`'s features; `dst` is valid for `n` reads and writes and overlaps no value of `src`.
#[inline(always)]
unsafe fn add_row<V: F32x>(dst: *mut f32, src: &[f32], n: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        let dst = std::slice::from_raw_parts_mut(dst, n);
        for d in (0..n).step_by(V::N) {
            let w = V::N.min(n - d);
            if w == V::N {
                V::add(V::read(dst, d), V::read(src, d)).write(dst, d);
            } else {
                V::add(V::read_partial(dst, d, w), V::read_partial(src, d, w)).write_partial(dst, d, w);
            }
        }
    }
}

/// `row[d] *= x` over `n` values.
///
/// # Safety
/// The CPU has `V`'s features; `row` is valid for `n` reads and writes.
#[inline(always)]
unsafe fn scale_row<V: F32x>(row: *mut f32, x: f32, n: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        let row = std::slice::from_raw_parts_mut(row, n);
        for d in (0..n).step_by(V::N) {
            let w = V::N.min(n - d);
            if w == V::N {
                V::mul(V::read(row, d), V::splat(x)).write(row, d);
            } else {
                V::mul(V::read_partial(row, d, w), V::splat(x)).write_partial(row, d, w);
            }
        }
    }
}

/// Forward of the query blocks a task owns (see `mod.rs` for what is computed).
///
/// # Safety
/// The CPU has `V`'s features (`Head`'s invariant vouches for every pointer and write).
#[inline(always)]
unsafe fn forward_body<V: F32x>(hd: &Head<f32>) {
    let (n, qb) = (V::N, QV * V::N);
    let (hs, hv, ldv) = (hd.hs, hd.hv, hd.ldv);
    let mut qt = vec![0f32; hs * qb];
    let mut st = vec![0f32; KB * qb];
    let mut ot = vec![0f32; qb * hv]; // O, a row of HV per query
    let mut zt = vec![0f32; KB * qb];
    let mut row = [0f32; QV * MAX_N];
    // SAFETY: the CPU contract is the caller's; every pointer is into the head's checked buffers, at rows below
    // t (queries) or s (keys), or into the block buffers above, at the sizes the microkernels' contracts need.
    unsafe {
        for blk in hd.first..hd.first + hd.count {
            let i0 = blk * qb;
            let nq = qb.min(hd.t - i0);
            transpose_rows(&mut qt, hd.q, hd.ldq, i0, nq, hs, qb, hd.scale);
            let mut m = [V::splat(f32::NEG_INFINITY); QV];
            let mut l = [V::zero(); QV];
            ot.fill(0.0);
            let end = hd.key_end(i0, nq);
            for j0 in (0..end).step_by(KB) {
                let nk = KB.min(end - j0);
                for c0 in (0..nk).step_by(RQ) {
                    let rows = RQ.min(nk - c0);
                    let kr = hd.k.add((j0 + c0) * hd.ldk);
                    lanes_q::<V, RQ>(kr, hd.ldk, 1, qt.as_ptr(), hs, st.as_mut_ptr().add(c0 * qb), rows);
                }
                let mx = scores::<V>(hd, &mut st, &mut row, i0, nq, j0, nk, m);
                // online softmax: a query with only -inf scores so far keeps 0 as its reference, so its weights
                // are exp(-inf) = 0 rather than NaN
                let mu = mx.map(|x| V::select_lt(x, V::splat(f32::MIN), V::zero(), x));
                let alpha: [V; QV] = std::array::from_fn(|v| math::exp(V::sub(m[v], mu[v])));
                let mut sum = [V::zero(); QV];
                for c in 0..nk {
                    for v in 0..QV {
                        let p = math::exp(V::sub(V::read(&st, c * qb + v * n), mu[v]));
                        p.write(&mut st, c * qb + v * n);
                        sum[v] = V::add(sum[v], p);
                    }
                }
                for v in 0..QV {
                    l[v] = V::fmadd(l[v], alpha[v], sum[v]);
                }
                m = mx;
                if let Some(dr) = hd.dropout {
                    dr.factors(&mut zt, 1, qb, hd.bh, i0, nq, j0, nk);
                    for at in (0..nk * qb).step_by(n) {
                        V::mul(V::read(&st, at), V::read(&zt, at)).write(&mut st, at);
                    }
                }
                // O = alpha O + P V, lanes along the head dim (rows of O are queries): rescale the rows, then the
                // product over the tile's keys, the weights read as broadcast scalars of st's columns
                let mut al = [0f32; QV * MAX_N];
                for (v, a) in alpha.iter().enumerate() {
                    a.write(&mut al, v * n);
                }
                for (q, &a) in al.iter().enumerate().take(nq) {
                    scale_row::<V>(ot.as_mut_ptr().add(q * hv), a, hv);
                }
                let vr = hd.v.add(j0 * ldv);
                match V::N {
                    16 => lanes_d_rows::<V, 4, 4>(st.as_ptr(), 1, qb, vr, ldv, nk, ot.as_mut_ptr(), hv, nq, hv),
                    8 => lanes_d_rows::<V, 6, 2>(st.as_ptr(), 1, qb, vr, ldv, nk, ot.as_mut_ptr(), hv, nq, hv),
                    _ => lanes_d_rows::<V, 2, 4>(st.as_ptr(), 1, qb, vr, ldv, nk, ot.as_mut_ptr(), hv, nq, hv),
                }
            }
            // out = O / l (0 for a query that saw no key), lse = mu + ln l
            let mut mu = [0f32; QV * MAX_N];
            let mut inv = [0f32; QV * MAX_N];
            let mut ls = [0f32; QV * MAX_N];
            for v in 0..QV {
                V::select_lt(V::zero(), l[v], V::div(V::splat(1.0), l[v]), V::zero()).write(&mut inv, v * n);
                V::select_lt(m[v], V::splat(f32::MIN), V::zero(), m[v]).write(&mut mu, v * n);
                l[v].write(&mut ls, v * n);
            }
            for q in 0..nq {
                let o = ot.as_mut_ptr().add(q * hv);
                scale_row::<V>(o, inv[q], hv);
                std::ptr::copy_nonoverlapping(o, hd.o.add((i0 + q) * hd.ldo), hv);
                *hd.lse.add(i0 + q) = mu[q] + ls[q].ln();
            }
        }
    }
}

crate::simd_kernel! {
    /// Forward of the query blocks a task owns.
    pub(super) fn forward(simd: Simd, hd: &Head<f32>) = forward_body;
}

/// Backward of one head, accumulating into its dq, dk, dv.
///
/// # Safety
/// The CPU has `V`'s features (`Head`'s invariant vouches for every pointer and write).
#[inline(always)]
unsafe fn backward_body<V: F32x>(hd: &Head<f32>) {
    let (n, qb) = (V::N, QV * V::N);
    let (hs, hv) = (hd.hs, hd.hv);
    let mut qt = vec![0f32; hs * qb];
    let mut dot_t = vec![0f32; hv * qb];
    let mut st = vec![0f32; KB * qb];
    let mut dpt = vec![0f32; KB * qb];
    let mut dq = vec![0f32; qb * hs];
    let mut row = [0f32; QV * MAX_N];
    let mut zt = vec![0f32; KB * qb];
    // SAFETY: as in `forward_body`; the gradient rows written are this head's, which only this task writes.
    unsafe {
        for i0 in (0..hd.t).step_by(qb) {
            let nq = qb.min(hd.t - i0);
            transpose_rows(&mut qt, hd.q, hd.ldq, i0, nq, hs, qb, hd.scale);
            transpose_rows(&mut dot_t, hd.dout, hd.ldo, i0, nq, hv, qb, 1.0);
            // D_i = dout_i . out_i; a query that saw no key (lse = -inf) and the padding lanes get lse = +inf,
            // so exp(s - lse) = 0 for them
            let mut dd = [0f32; QV * MAX_N];
            let mut lse = [f32::INFINITY; QV * MAX_N];
            for q in 0..nq {
                let i = i0 + q;
                let (g, o) = (hd.dout.add(i * hd.ldo), hd.o.add(i * hd.ldo));
                dd[q] = dot::<V>(g, o, hv);
                let x = *hd.lse.add(i);
                lse[q] = if x == f32::NEG_INFINITY { f32::INFINITY } else { x };
            }
            // -D scale, so ds = p (dP - D) scale is p times one fused multiply-add
            let nds: [V; QV] = std::array::from_fn(|v| V::mul(V::read(&dd, v * n), V::splat(-hd.scale)));
            let lsev: [V; QV] = std::array::from_fn(|v| V::read(&lse, v * n));
            let scale = V::splat(hd.scale);
            dq.fill(0.0);
            let end = hd.key_end(i0, nq);
            for j0 in (0..end).step_by(KB) {
                let nk = KB.min(end - j0);
                for c0 in (0..nk).step_by(RQ) {
                    let rows = RQ.min(nk - c0);
                    let (kr, vr) = (hd.k.add((j0 + c0) * hd.ldk), hd.v.add((j0 + c0) * hd.ldv));
                    lanes_q::<V, RQ>(kr, hd.ldk, 1, qt.as_ptr(), hs, st.as_mut_ptr().add(c0 * qb), rows);
                    lanes_q::<V, RQ>(vr, hd.ldv, 1, dot_t.as_ptr(), hv, dpt.as_mut_ptr().add(c0 * qb), rows);
                }
                if masks_tile(hd, i0, j0, nk) {
                    scores::<V>(hd, &mut st, &mut row, i0, nq, j0, nk, [V::zero(); QV]);
                }
                // st <- p z (the weights that met dout), dpt <- ds = p (z dP - D) scale
                if let Some(dr) = hd.dropout {
                    dr.factors(&mut zt, 1, qb, hd.bh, i0, nq, j0, nk);
                }
                for c in 0..nk {
                    for v in 0..QV {
                        let at = c * qb + v * n;
                        let p = math::exp(V::sub(V::read(&st, at), lsev[v]));
                        let mut dp = V::read(&dpt, at);
                        if hd.dropout.is_some() {
                            let z = V::read(&zt, at);
                            dp = V::mul(dp, z);
                            V::mul(p, z).write(&mut st, at);
                        } else {
                            p.write(&mut st, at);
                        }
                        V::mul(p, V::fmadd(dp, scale, nds[v])).write(&mut dpt, at);
                    }
                }
                // dv_j += sum_i (p z)_ij dout_i ; dk_j += sum_i ds_ij q_i ; dq_i += sum_j ds_ij k_j
                let (g, qr) = (hd.dout.add(i0 * hd.ldo), hd.q.add(i0 * hd.ldq));
                let (kr, dvr, dkr) = (hd.k.add(j0 * hd.ldk), hd.dv.add(j0 * hd.ldv), hd.dk.add(j0 * hd.ldk));
                // R x NV accumulators: on AVX-512 key rows (a tile of 192) in groups of 6 by 4 vectors (24 of its 32
                // registers), query rows (a block of 32) in groups of 4 that divide the block; on AVX2 (16
                // registers) 6 (or the block's 16 in 4) rows by 2 vectors
                macro_rules! grads {
                    ($rk:literal, $rq:literal, $nv:literal) => {{
                        lanes_d_rows::<V, $rk, $nv>(st.as_ptr(), qb, 1, g, hd.ldo, nq, dvr, hd.ldv, nk, hv);
                        lanes_d_rows::<V, $rk, $nv>(dpt.as_ptr(), qb, 1, qr, hd.ldq, nq, dkr, hd.ldk, nk, hs);
                        let dqp = dq.as_mut_ptr();
                        lanes_d_rows::<V, $rq, $nv>(dpt.as_ptr(), 1, qb, kr, hd.ldk, nk, dqp, hs, nq, hs);
                    }};
                }
                match V::N {
                    16 => grads!(6, 4, 4),
                    8 => grads!(6, 4, 2),
                    _ => grads!(4, 2, 4),
                }
            }
            for q in 0..nq {
                add_row::<V>(hd.dq.add((i0 + q) * hd.ldq), &dq[q * hs..(q + 1) * hs], hs);
            }
        }
    }
}

crate::simd_kernel! {
    /// Backward of one head, accumulating into its dq, dk, dv.
    pub(super) fn backward(simd: Simd, hd: &Head<f32>) = backward_body;
}
