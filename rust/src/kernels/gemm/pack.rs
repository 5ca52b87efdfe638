//! Packing: copy a block of A into MR-row panels and a block of B into NR-column panels, zero-padded at the
//! edges, so the microkernel streams both with unit stride whatever the operands' strides (transposes included).

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

/// Pack `A[i0..i0+mc, p0..p0+kc]` into `out` as ceil(mc/MR) panels of `kc * MR` values (column of the panel
/// contiguous), rows past `mc` zero.
pub fn pack_a<T: Copy + Default>(
    out: &mut Vec<T>,
    a: MatRef<'_, T>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    mr: usize,
) {
    let panels = mc.div_ceil(mr);
    out.clear();
    out.resize(panels * kc * mr, T::default());
    for pi in 0..panels {
        let dst = &mut out[pi * kc * mr..(pi + 1) * kc * mr];
        let rows = mr.min(mc - pi * mr);
        for i in 0..rows {
            let base = (i0 + pi * mr + i) * a.rs + p0 * a.cs;
            for p in 0..kc {
                dst[p * mr + i] = a.data[base + p * a.cs];
            }
        }
    }
}

/// Pack `B[p0..p0+kc, j0..j0+nc]` into `out` as ceil(nc/NR) panels of `kc * NR` values (row of the panel
/// contiguous), columns past `nc` zero.
pub fn pack_b<T: Copy + Default>(
    out: &mut Vec<T>,
    b: MatRef<'_, T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
) {
    let panels = nc.div_ceil(nr);
    out.clear();
    out.resize(panels * kc * nr, T::default());
    for pj in 0..panels {
        let dst = &mut out[pj * kc * nr..(pj + 1) * kc * nr];
        let cols = nr.min(nc - pj * nr);
        for p in 0..kc {
            let base = (p0 + p) * b.rs + (j0 + pj * nr) * b.cs;
            let row = &mut dst[p * nr..p * nr + cols];
            if b.cs == 1 {
                row.copy_from_slice(&b.data[base..base + cols]);
            } else {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = b.data[base + j * b.cs];
                }
            }
        }
    }
}
