//! [`Head`]: one task's raw view of one head of the buffers of a checked call, shared by the two paths; the
//! invariant that makes their unchecked indexing and cross-thread writes sound lives on this type. No
//! arithmetic here beyond addressing.

use super::spec::{AttentionSpec, Dropout, Layout, Mask};
use crate::dtype::Float;

/// One task's view of one head: raw pointers into buffers [`AttentionSpec::check`] has checked, at row 0,
/// column 0 of the head (`ld*` are row strides). Only [`Buffers::head`] makes one, and its contract is this
/// type's invariant: every pointer is valid for the rows and widths the dims give, and the task holding the
/// `Head` is the only writer of what it writes. In a forward that is out's and lse's rows of query blocks
/// `first .. first + count` (`dout`, `dq`, `dk`, `dv` are null); in a backward, the head's gradients (`o` and
/// `lse` are read).
pub(super) struct Head<T> {
    pub(super) bh: usize,
    pub(super) first: usize,
    pub(super) count: usize,
    pub(super) q: *const T,
    pub(super) k: *const T,
    pub(super) v: *const T,
    pub(super) o: *mut T,
    pub(super) dout: *const T,
    pub(super) dq: *mut T,
    pub(super) dk: *mut T,
    pub(super) dv: *mut T,
    pub(super) lse: *mut T,
    pub(super) ldq: usize,
    pub(super) ldk: usize,
    pub(super) ldv: usize,
    pub(super) ldo: usize,
    pub(super) t: usize,
    pub(super) s: usize,
    pub(super) hs: usize,
    pub(super) hv: usize,
    pub(super) causal: bool,
    pub(super) mask: HeadMask<T>,
    pub(super) scale: T,
    pub(super) dropout: Option<Dropout>,
}

/// The mask of one head: element (i, j) at `i * row + j * col`.
#[derive(Clone, Copy)]
pub(super) enum HeadMask<T> {
    None,
    Bool(*const bool, usize, usize),
    Additive(*const T, usize, usize),
}

// SAFETY: a `Head` is shared only by the tasks of one kernel call, which read its inputs and write disjoint parts
// of its outputs (see the struct docs); the buffers outlive the call.
unsafe impl<T: Send> Send for Head<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Head<T> {}

impl<T: Float> Head<T> {
    /// The additive mask value of query `i`, key `j` (0 without a mask; the causal mask is not included).
    ///
    /// # Safety
    /// `i < t`, `j < s`.
    #[inline(always)]
    pub(super) unsafe fn mask_at(&self, i: usize, j: usize) -> T {
        match self.mask {
            HeadMask::None => T::ZERO,
            // SAFETY: inside the mask `check` measured, for i < t and j < s.
            HeadMask::Bool(p, r, c) => unsafe {
                if *p.add(i * r + j * c) {
                    T::ZERO
                } else {
                    T::NEG_INFINITY
                }
            },
            // SAFETY: as above.
            HeadMask::Additive(p, r, c) => unsafe { *p.add(i * r + j * c) },
        }
    }

    /// The keys query block `i0 .. i0 + nq` attends to: all, or up to its last query when causal.
    pub(super) fn key_end(&self, i0: usize, nq: usize) -> usize {
        if self.causal {
            self.s.min(i0 + nq)
        } else {
            self.s
        }
    }
}

/// Raw pointers of the buffers of one call, from which each task builds its heads.
pub(super) struct Buffers<T> {
    pub(super) q: *const T,
    pub(super) k: *const T,
    pub(super) v: *const T,
    pub(super) o: *mut T,
    pub(super) dout: *const T,
    pub(super) dq: *mut T,
    pub(super) dk: *mut T,
    pub(super) dv: *mut T,
    pub(super) lse: *mut T,
}

impl<T: Float> Buffers<T> {
    /// Head `bh` of the call, for the task that owns query blocks `first .. first + count` of its outputs (a
    /// forward) or its gradients (a backward).
    ///
    /// # Safety
    /// The pointers are those of buffers `spec` was checked against (null where unused), `bh < B * NH`, the
    /// blocks lie below T, and while the `Head` lives no other one writes what it owns (see [`Head`]).
    pub(super) unsafe fn head(&self, spec: &AttentionSpec<'_, T>, bh: usize, first: usize, count: usize) -> Head<T> {
        let d = &spec.dims;
        let (b, h) = (bh / d.nh, bh % d.nh);
        let at = |l: &Layout| l.offset + b * l.batch + h * l.head;
        let off = |p: *const T, l: &Layout| if p.is_null() { p } else { p.wrapping_add(at(l)) };
        let off_mut = |p: *mut T, l: &Layout| if p.is_null() { p } else { p.wrapping_add(at(l)) };
        let mask = match spec.mask {
            Mask::None => HeadMask::None,
            Mask::Bool(m, l) => HeadMask::Bool(m.as_ptr().wrapping_add(b * l.batch + h * l.head), l.row, l.col),
            Mask::Additive(m, l) => HeadMask::Additive(m.as_ptr().wrapping_add(b * l.batch + h * l.head), l.row, l.col),
        };
        Head {
            bh,
            first,
            count,
            q: off(self.q, &spec.q),
            k: off(self.k, &spec.k),
            v: off(self.v, &spec.v),
            o: off_mut(self.o, &spec.out),
            dout: off(self.dout, &spec.out),
            dq: off_mut(self.dq, &spec.q),
            dk: off_mut(self.dk, &spec.k),
            dv: off_mut(self.dv, &spec.v),
            lse: self.lse.wrapping_add(bh * d.t),
            ldq: spec.q.row,
            ldk: spec.k.row,
            ldv: spec.v.row,
            ldo: spec.out.row,
            t: d.t,
            s: d.s,
            hs: d.hs,
            hv: d.hv,
            causal: spec.causal,
            mask,
            scale: T::from_f64(spec.scale),
            dropout: spec.dropout.filter(|dr| dr.p > 0.0),
        }
    }
}

// SAFETY: the pointers are only used as `Head` uses them (see its Send impl).
unsafe impl<T: Send> Send for Buffers<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Buffers<T> {}
