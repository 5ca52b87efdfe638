//! Packing: copy a block of A into MR-row panels and a block of B into NR-column panels, zero-padded at the
//! edges, so the microkernel streams both with unit stride whatever the operands' strides (transposes included).
//!
//! Both are the same operation: a block of `lanes` x `kc` values (lanes = rows of A or columns of B, depth = the
//! shared dimension k) becomes panels of `w` lanes, stored depth-major (`panel[p * w + lane]`). Which loop order
//! is fast depends on which stride is 1: lane-contiguous sources (row-major B, transposed A) copy `w` values per
//! step of depth; depth-contiguous sources (row-major A, and B = W^T in `linear`) run along each lane and write
//! with stride `w`. The panel width is a const parameter so the compiler unrolls the fixed-size copies.
//! The output buffer ([`PackBuf`]) only grows; every value a call needs, padding included, is written, so
//! nothing is zeroed in advance.

/// A strided read-only matrix: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    /// The elements.
    pub data: &'a [T],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

/// A packing buffer whose panels start on a 64-byte boundary, so each row of a B panel (16 f32 for AVX2, 32 for
/// AVX-512) is one or two whole cache lines and the microkernel's vector loads never straddle a line.
#[derive(Default)]
pub struct PackBuf<T> {
    buf: Vec<T>,
    len: usize,
}

impl<T: Copy + Default> PackBuf<T> {
    /// The packed values of the last `pack_a`/`pack_b` call.
    pub fn get(&self) -> &[T] {
        let off = self.buf.as_ptr().align_offset(64).min(self.buf.len());
        &self.buf[off..off + self.len]
    }

    /// Make room for `len` values starting at a 64-byte boundary (contents unspecified: callers overwrite them).
    pub fn reserve(&mut self, len: usize) {
        let slack = 64 / std::mem::size_of::<T>();
        if self.buf.len() < len + slack {
            self.buf = vec![T::default(); len + slack];
        }
        self.len = len;
    }

    /// Room for `len` values (as [`PackBuf::reserve`]), returned for writing.
    pub(super) fn get_mut(&mut self, len: usize) -> &mut [T] {
        self.reserve(len);
        self.get_mut_keep()
    }

    fn get_mut_keep(&mut self) -> &mut [T] {
        let off = self.buf.as_ptr().align_offset(64).min(self.buf.len());
        &mut self.buf[off..off + self.len]
    }
}

/// Element types with per-thread packing buffers, kept between calls so a product allocates (and, with a fresh
/// mapping, page-faults) nothing.
pub trait Pack: Copy + Default + 'static {
    /// Call `f` with this thread's A and B buffers (fresh ones if they are already in use on this thread).
    fn with_bufs<R>(f: impl FnOnce(&mut PackBuf<Self>, &mut PackBuf<Self>) -> R) -> R;

    /// `dst[q * w + l] = src[l * ls + q]` for `q < 8` and `l < lanes` (6 or 8) with SIMD shuffles, where this
    /// type and CPU have them; false (nothing written) where not, or if the slices are too short.
    fn transpose8(src: &[Self], ls: usize, lanes: usize, dst: &mut [Self], w: usize) -> bool {
        let _ = (src, ls, lanes, dst, w);
        false
    }
}

macro_rules! pack_impl {
    ($t:ty, $bufs:ident $(, $transpose:expr)?) => {
        thread_local! {
            static $bufs: std::cell::RefCell<(PackBuf<$t>, PackBuf<$t>)> = Default::default();
        }
        impl Pack for $t {
            fn with_bufs<R>(f: impl FnOnce(&mut PackBuf<$t>, &mut PackBuf<$t>) -> R) -> R {
                $bufs.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut bufs) => {
                        let (a, b) = &mut *bufs;
                        f(a, b)
                    }
                    Err(_) => f(&mut PackBuf::default(), &mut PackBuf::default()),
                })
            }
            $(
                fn transpose8(src: &[$t], ls: usize, lanes: usize, dst: &mut [$t], w: usize) -> bool {
                    ($transpose)(src, ls, lanes, dst, w)
                }
            )?
        }
    };
}

pack_impl!(f32, F32_BUFS, |src: &[f32], ls: usize, lanes: usize, dst: &mut [f32], w: usize| {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::best() as u8 >= super::Simd::Avx2 as u8
        && (lanes == 6 || lanes == 8)
        && w >= lanes
        && src.len() >= (lanes - 1) * ls + 8
        && dst.len() >= 7 * w + lanes
    {
        // SAFETY: AVX2 is present (`best` detected it) and the checks above give the contract's lanes and ranges.
        unsafe { super::x86::transpose_block(src.as_ptr(), ls, lanes, dst.as_mut_ptr(), w) };
        return true;
    }
    let _ = (src, ls, lanes, dst, w);
    false
});
pack_impl!(f64, F64_BUFS);

impl<T> MatRef<'_, T> {
    /// Panic unless every element of a `rows x cols` matrix with these strides is inside `data`.
    pub fn check(&self, rows: usize, cols: usize, name: &str) {
        let last = (rows.max(1) - 1) * self.rs + (cols.max(1) - 1) * self.cs;
        assert!(
            rows == 0 || cols == 0 || last < self.data.len(),
            "gemm: {name} of {} values is too short for {rows} x {cols}",
            self.data.len()
        );
    }
}

/// Pack `A[i0..i0+mc, p0..p0+kc]` into `out` as ceil(mc/MR) panels of `kc * MR` values, rows past `mc` zero.
pub fn pack_a<T: Pack>(out: &mut PackBuf<T>, a: MatRef<'_, T>, i0: usize, mc: usize, p0: usize, kc: usize, mr: usize) {
    let dst = out.get_mut(mc.div_ceil(mr) * kc * mr);
    pack_panels(dst, a.data, i0 * a.rs + p0 * a.cs, mc, kc, mr, a.rs, a.cs, 0);
}

/// Pack panels `pj0..pj0+count` (NR columns each, the last zero-padded) of `B[p0..p0+kc, j0..j0+nc]` into
/// panel slots `slot..slot+count` of `out`, which must already hold room for them (see [`PackBuf::reserve`]). The
/// driver packs B a group of panels at a time, just before their first use, so the copies are read back from cache
/// instead of from wherever a whole block spills to; a group reads `count * NR` contiguous values per row of B.
#[allow(clippy::too_many_arguments)]
pub fn pack_b_panels<T: Pack>(
    out: &mut PackBuf<T>,
    b: MatRef<'_, T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    pj0: usize,
    count: usize,
    slot: usize,
) {
    let dst = &mut out.get_mut_keep()[slot * kc * nr..(slot + count) * kc * nr];
    pack_panels(dst, b.data, p0 * b.rs + j0 * b.cs, nc, kc, nr, b.cs, b.rs, pj0);
}

/// Pack all of `B[p0..p0+kc, j0..j0+nc]` into `dst`: ceil(nc/NR) panels of `kc * NR` values (the last
/// zero-padded), `dst` exactly that long. For B packed once and kept ([`super::PackedB`]).
pub fn pack_b_block<T: Pack>(dst: &mut [T], b: MatRef<'_, T>, p0: usize, kc: usize, j0: usize, nc: usize, nr: usize) {
    debug_assert_eq!(dst.len(), nc.div_ceil(nr) * kc * nr);
    pack_panels(dst, b.data, p0 * b.rs + j0 * b.cs, nc, kc, nr, b.cs, b.rs, 0);
}

/// Ask the cache for the source rows of panels `pj0..pj0+count` of `B[p0..p0+kc, j0..j0+nc]` ahead of packing
/// them. Only row-major B needs it: its panels are `kc` short pieces at a stride of a whole row of B, a page or
/// more apart when B is wide, which the hardware prefetchers do not follow (`perf` put ~15% of 256x2304x768 on
/// those loads); the other layout reads contiguous runs, which they do.
#[allow(clippy::too_many_arguments)]
pub fn prefetch_b_panels<T>(
    b: MatRef<'_, T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    pj0: usize,
    count: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if b.cs == 1 && pj0 * nr < nc {
        let per_line = (64 / std::mem::size_of::<T>()).max(1);
        let width = (count * nr).min(nc - pj0 * nr);
        for p in 0..kc {
            let row = (p0 + p) * b.rs + j0 + pj0 * nr;
            for off in (0..width).step_by(per_line) {
                prefetch_to::<{ std::arch::x86_64::_MM_HINT_T1 }, T>(b.data, row + off);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (b, p0, kc, j0, nc, nr, pj0, count);
}

/// Of `lanes` x `kc` values starting at `data[base]` (lane stride `ls`, depth stride `ds`), cut into panels of
/// `w` lanes, write panels `pj0..` into `dst` (`kc * w` values each; lanes past `lanes` zero).
#[allow(clippy::too_many_arguments)]
fn pack_panels<T: Pack>(
    dst: &mut [T],
    data: &[T],
    base: usize,
    lanes: usize,
    kc: usize,
    w: usize,
    ls: usize,
    ds: usize,
    pj0: usize,
) {
    // Lane-contiguous sources are swept a few source rows at a time across all the panels (panel by panel would
    // walk the block at stride `ds` once per panel); depth-contiguous sources are read panel by panel.
    let step = if ls == 1 { ROWS } else { kc };
    for p0 in (0..kc).step_by(step) {
        let p1 = (p0 + step).min(kc);
        for (g, d) in dst.chunks_exact_mut(kc * w).enumerate() {
            let l0 = (pj0 + g) * w;
            let panel = Panel { data, base: base + l0 * ls, lanes: w.min(lanes - l0), p0, p1, ls, ds };
            write_panel(&panel, &mut d[p0 * w..p1 * w], w);
        }
    }
}

fn write_panel<T: Pack>(panel: &Panel<'_, T>, dst: &mut [T], w: usize) {
    match w {
        4 => panel.write::<4>(dst),
        6 => panel.write::<6>(dst),
        8 => panel.write::<8>(dst),
        16 => panel.write::<16>(dst),
        32 => panel.write::<32>(dst),
        _ => unreachable!("no microkernel has a tile side of {w}"),
    }
}

/// Source rows a lane-contiguous pack copies into one panel before moving to the next.
const ROWS: usize = 8;

/// How far ahead (in values) a transposing pack asks for each lane's source: 16 lanes are more sequential streams
/// than the hardware prefetchers follow.
const PREFETCH_AHEAD: usize = 64;

/// Hint that `data[i]` will be read soon, into L1 (a no-op off x86-64; never faults, even past the end).
#[inline(always)]
pub fn prefetch<T>(data: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    prefetch_to::<{ std::arch::x86_64::_MM_HINT_T0 }, T>(data, i);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, i);
}

/// Hint that `data[i]` will be read soon, with an `_mm_prefetch` hint.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_to<const HINT: i32, T>(data: &[T], i: usize) {
    // SAFETY: a prefetch is only a hint: it never faults and has no effect on memory, whatever the address
    // (`wrapping_add` keeps even the address computation free of undefined behaviour).
    unsafe { std::arch::x86_64::_mm_prefetch::<HINT>(data.as_ptr().wrapping_add(i) as *const i8) };
}

/// Depth steps a depth-contiguous pack (a transpose) reads from each lane before moving to the next lane.
const TQ: usize = 16;

/// One panel's source: `lanes` (at most the panel width) lanes of depth `p0..p1`, lane 0 at `data[base]`.
struct Panel<'a, T> {
    data: &'a [T],
    base: usize,
    lanes: usize,
    p0: usize,
    p1: usize,
    ls: usize,
    ds: usize,
}

impl<T: Pack> Panel<'_, T> {
    /// Write depth rows `p0..p1` of the panel into `dst` (`(p1 - p0) * W` values), lanes past `self.lanes` zero.
    fn write<const W: usize>(&self, dst: &mut [T]) {
        let Panel { data, base, lanes, p0, p1, ls, ds } = *self;
        if lanes == W && ls == 1 {
            for (p, d) in (p0..p1).zip(dst.chunks_exact_mut(W)) {
                let s = base + p * ds;
                let src: &[T; W] = data[s..s + W].try_into().expect("a slice of W values");
                d.copy_from_slice(src);
            }
            return;
        }
        if ds == 1 {
            // A transpose. Full blocks of 8 depth steps by 8 lanes (6 for A's panels) go through SIMD shuffles
            // where the type and CPU have them; the rest
            // reads every lane a few values at a time, so the writes fill a few whole rows of the panel (cache
            // lines) at once and the lanes are read as parallel sequential streams. Lane by lane (each lane's
            // whole run, written at stride W) cost ~2 ns a value on x @ W^T (`perf`: 88% of a 1x768 @ 768x3072
            // product in this loop).
            let mut q0 = p0;
            let group = if W == 6 { 6 } else { 8 };
            if lanes == W && W.is_multiple_of(group) {
                'blocks: while q0 + 8 <= p1 {
                    let rows = &mut dst[(q0 - p0) * W..(q0 - p0 + 8) * W];
                    for g in (0..W).step_by(group) {
                        let s = base + g * ls + q0;
                        for l in 0..group {
                            prefetch(data, s + l * ls + PREFETCH_AHEAD);
                        }
                        if !T::transpose8(&data[s..], ls, group, &mut rows[g..], W) {
                            break 'blocks;
                        }
                    }
                    q0 += 8;
                }
            }
            for (q0, rows) in (q0..p1).step_by(TQ).zip(dst[(q0 - p0) * W..].chunks_mut(TQ * W)) {
                let q = rows.len() / W;
                for l in 0..lanes {
                    let s = base + l * ls + q0;
                    prefetch(data, s + PREFETCH_AHEAD);
                    for (row, &v) in rows.chunks_exact_mut(W).zip(&data[s..s + q]) {
                        row[l] = v;
                    }
                }
            }
        } else {
            for (p, d) in (p0..p1).zip(dst.chunks_exact_mut(W)) {
                let s = base + p * ds;
                for (l, v) in d[..lanes].iter_mut().enumerate() {
                    *v = data[s + l * ls];
                }
            }
        }
        if lanes < W {
            for d in dst.chunks_exact_mut(W) {
                d[lanes..].fill(T::default());
            }
        }
    }
}
