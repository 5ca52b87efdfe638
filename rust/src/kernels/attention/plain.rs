//! The attention algorithm in scalar loops over `T: Float`: the f64 path, there for exact checks. It runs the
//! same blocks as the vectorized f32 path (query blocks, key tiles clipped at the causal diagonal, the online
//! softmax rescaled once per tile, the log-sum-exp saved, the backward recomputing the probabilities from it, the
//! same dropout words), so the float64 tests check that logic; only the arithmetic inside a tile is plain.
//! Not here: SIMD (`vectorized.rs`), layouts and threads (`mod.rs`).

use super::head::Head;
use crate::dtype::Float;

/// Queries per block.
pub(super) const QB: usize = 8;
/// Keys per tile.
const KB: usize = 16;

/// `sum_d a[d] * b[d]` over `n` elements.
///
/// # Safety
/// `a` and `b` are valid for `n` reads.
#[inline(always)]
unsafe fn dot<T: Float>(a: *const T, b: *const T, n: usize) -> T {
    // SAFETY: the caller's contract.
    (0..n).fold(T::ZERO, |acc, d| unsafe { acc + *a.add(d) * *b.add(d) })
}

/// The scores of queries `i0 + q` (q < nq) against keys `j0 + c` (c < nk): `scale q.k + mask`, -inf above the
/// causal diagonal; `s[q * KB + c]`.
///
/// # Safety
/// `i0 + nq <= t`, `j0 + nk <= s`.
unsafe fn scores<T: Float>(hd: &Head<T>, s: &mut [T], i0: usize, nq: usize, j0: usize, nk: usize) {
    for q in 0..nq {
        let i = i0 + q;
        for c in 0..nk {
            let j = j0 + c;
            s[q * KB + c] = if hd.causal && j > i {
                T::NEG_INFINITY
            } else {
                // SAFETY: rows i < t of q and j < s of k, HS wide, inside the checked buffers; the mask likewise.
                unsafe { dot(hd.q.add(i * hd.ldq), hd.k.add(j * hd.ldk), hd.hs) * hd.scale + hd.mask_at(i, j) }
            };
        }
    }
}

/// The dropout factors of the tile into `z[q * KB + c]`, 1 where there is no dropout.
fn factors<T: Float>(hd: &Head<T>, z: &mut [T], i0: usize, nq: usize, j0: usize, nk: usize) {
    match hd.dropout {
        Some(dr) => dr.factors(z, KB, 1, hd.bh, i0, nq, j0, nk),
        None => z.fill(T::ONE),
    }
}

/// Forward of the query blocks a task owns (`Head`'s invariant vouches for every pointer and write below).
pub(super) fn forward<T: Float>(hd: &Head<T>) {
    let (hv, ldv) = (hd.hv, hd.ldv);
    let mut s = vec![T::ZERO; QB * KB];
    let mut z = vec![T::ONE; QB * KB];
    let mut acc = vec![T::ZERO; QB * hv];
    for blk in hd.first..hd.first + hd.count {
        let i0 = blk * QB;
        let nq = QB.min(hd.t - i0);
        let (mut m, mut l) = ([T::NEG_INFINITY; QB], [T::ZERO; QB]);
        acc.fill(T::ZERO);
        let end = hd.key_end(i0, nq);
        for j0 in (0..end).step_by(KB) {
            let nk = KB.min(end - j0);
            // SAFETY: i0 + nq <= t and j0 + nk <= end <= s.
            unsafe { scores(hd, &mut s, i0, nq, j0, nk) };
            factors(hd, &mut z, i0, nq, j0, nk);
            for q in 0..nq {
                let row = &mut s[q * KB..q * KB + nk];
                // online softmax: the running max moves to `mx`, earlier sums are rescaled by exp(m - mx); a row
                // with every score -inf so far keeps 0 as its reference, so it adds exp(-inf) = 0 instead of NaN
                let mx = row.iter().fold(m[q], |a, &v| if v > a { v } else { a });
                let mu = if mx == T::NEG_INFINITY { T::ZERO } else { mx };
                let alpha = (m[q] - mu).exp();
                let mut sum = T::ZERO;
                for p in row.iter_mut() {
                    *p = (*p - mu).exp();
                    sum += *p;
                }
                l[q] = l[q] * alpha + sum;
                m[q] = mx;
                let a = &mut acc[q * hv..(q + 1) * hv];
                a.iter_mut().for_each(|x| *x *= alpha);
                for (c, &p) in row.iter().enumerate() {
                    let pz = p * z[q * KB + c];
                    // SAFETY: row j0 + c < s of v, HV wide.
                    let vr = unsafe { hd.v.add((j0 + c) * ldv) };
                    // SAFETY: as above.
                    a.iter_mut().enumerate().for_each(|(d, x)| *x += pz * unsafe { *vr.add(d) });
                }
            }
        }
        for q in 0..nq {
            let i = i0 + q;
            let mu = if m[q] == T::NEG_INFINITY { T::ZERO } else { m[q] };
            // a query with no key left gets 0 (l = 0), and lse = -inf
            let inv = if l[q] > T::ZERO { T::ONE / l[q] } else { T::ZERO };
            for d in 0..hv {
                // SAFETY: row i < t of out, HV wide: one of this task's rows (`Head`'s invariant).
                unsafe { *hd.o.add(i * hd.ldo + d) = acc[q * hv + d] * inv };
            }
            // SAFETY: i < t, inside this head's lse.
            unsafe { *hd.lse.add(i) = mu + l[q].ln() };
        }
    }
}

/// Backward of one head, accumulating into its dq, dk, dv (`Head`'s invariant vouches for every pointer and write
/// below).
pub(super) fn backward<T: Float>(hd: &Head<T>) {
    let (hs, hv) = (hd.hs, hd.hv);
    let mut s = vec![T::ZERO; QB * KB];
    let mut z = vec![T::ONE; QB * KB];
    let mut dq = vec![T::ZERO; QB * hs];
    for i0 in (0..hd.t).step_by(QB) {
        let nq = QB.min(hd.t - i0);
        let (mut dd, mut lse) = ([T::ZERO; QB], [T::ZERO; QB]);
        for q in 0..nq {
            let i = i0 + q;
            // SAFETY: rows i < t of dout and out, HV wide; lse of query i.
            unsafe {
                dd[q] = dot(hd.dout.add(i * hd.ldo), hd.o.add(i * hd.ldo), hv);
                // a query that saw no key (lse = -inf) had p = 0 everywhere: +inf makes exp(s - lse) 0 again
                lse[q] = if *hd.lse.add(i) == T::NEG_INFINITY { T::INFINITY } else { *hd.lse.add(i) };
            }
        }
        dq.fill(T::ZERO);
        let end = hd.key_end(i0, nq);
        for j0 in (0..end).step_by(KB) {
            let nk = KB.min(end - j0);
            // SAFETY: i0 + nq <= t and j0 + nk <= end <= s.
            unsafe { scores(hd, &mut s, i0, nq, j0, nk) };
            factors(hd, &mut z, i0, nq, j0, nk);
            for q in 0..nq {
                let i = i0 + q;
                for c in 0..nk {
                    let j = j0 + c;
                    let zc = z[q * KB + c];
                    let p = (s[q * KB + c] - lse[q]).exp();
                    // SAFETY: rows i < t (q, dout, dq's block) and j < s (k, v, dk, dv) inside the checked buffers;
                    // this task is the only writer of the head's gradients.
                    unsafe {
                        let (qi, doi) = (hd.q.add(i * hd.ldq), hd.dout.add(i * hd.ldo));
                        let (kj, vj) = (hd.k.add(j * hd.ldk), hd.v.add(j * hd.ldv));
                        let dp = dot(doi, vj, hv) * zc;
                        let ds = p * (dp - dd[q]) * hd.scale;
                        let pz = p * zc;
                        let (dkj, dvj) = (hd.dk.add(j * hd.ldk), hd.dv.add(j * hd.ldv));
                        for d in 0..hv {
                            *dvj.add(d) += pz * *doi.add(d);
                        }
                        for d in 0..hs {
                            *dkj.add(d) += ds * *qi.add(d);
                            dq[q * hs + d] += ds * *kj.add(d);
                        }
                    }
                }
            }
        }
        for q in 0..nq {
            for d in 0..hs {
                // SAFETY: row i0 + q < t of dq, HS wide; this task writes the head's gradients (`Head`'s invariant).
                unsafe { *hd.dq.add((i0 + q) * hd.ldq + d) += dq[q * hs + d] };
            }
        }
    }
}
