//! Which instruction set the kernels use, for every kernel of the crate: detected once, cached, and forceable
//! with `BIGCORE_SIMD=scalar|avx2|avx512` so the tests can run every path on one machine.
//!
//! Kernels are written once against the vector trait [`F32x`] (`vector.rs`), with the transcendental functions
//! they need built from its methods (`math.rs`), and compiled per level by [`simd_kernel!`]: AVX-512 (16 lanes),
//! AVX2 + FMA (8 lanes) and portable code (one lane, plain `f32`). Every level runs the same arithmetic in the
//! same order, so they differ only where a fused multiply-add rounds once instead of twice.

pub mod math;
pub mod vector;

pub use vector::F32x;

use std::sync::OnceLock;

/// An instruction-set level with its own compiled kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// Portable code (SSE2 on x86-64), no FMA.
    Scalar,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512F and BW (with AVX2 and FMA).
    Avx512,
}

impl Simd {
    /// The lowercase name used by `BIGCORE_SIMD`.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Scalar => "scalar",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
    }

    /// Every level, lowest first.
    pub const ALL: [Simd; 3] = [Simd::Scalar, Simd::Avx2, Simd::Avx512];

    /// Whether this CPU runs the level. In the crate's unit tests AVX-512 also counts as supported on a CPU with
    /// only AVX2: 16-lane vectors then run as pairs of AVX2 vectors (`vector::emulated`), so the kernels at
    /// AVX-512's width (GEMM's 6 x 32 tile, the 16-lane loops and tails) are tested on machines without it.
    pub fn supported(self) -> bool {
        self as u8 <= best() as u8 || (cfg!(test) && self == Simd::Avx512 && best() == Simd::Avx2)
    }
}

/// Whether the unit tests run the AVX-512 level emulated on AVX2 (see [`Simd::supported`]).
#[cfg(test)]
pub fn avx512_emulated() -> bool {
    best() != Simd::Avx512
}

fn detect() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        if avx2 && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
            return Simd::Avx512;
        }
        if avx2 {
            return Simd::Avx2;
        }
    }
    Simd::Scalar
}

/// The best level this CPU supports.
pub fn best() -> Simd {
    static BEST: OnceLock<Simd> = OnceLock::new();
    *BEST.get_or_init(detect)
}

/// The level in use: `BIGCORE_SIMD` if set (capped at what the CPU supports), else [`best`].
pub fn active() -> Simd {
    static ACTIVE: OnceLock<Simd> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let best = best();
        let wanted = match std::env::var("BIGCORE_SIMD").ok().as_deref().map(str::trim) {
            Some("scalar") => Simd::Scalar,
            Some("avx2") => Simd::Avx2,
            Some("avx512") => Simd::Avx512,
            _ => best,
        };
        if wanted as u8 <= best as u8 {
            wanted
        } else {
            best
        }
    })
}

/// Compile a kernel body once per level and pick one at run time.
///
/// ```ignore
/// simd_kernel! {
///     /// Doc of the dispatching function.
///     pub fn scale(simd: Simd, x: &mut [f32], s: f32) = scale_body;
/// }
/// ```
/// defines `pub fn scale(simd: Simd, x: &mut [f32], s: f32)` that runs `scale_body::<V>(x, s)` with `V` the
/// level's vector type, inside a function compiled with the level's target features. The body must be
/// `#[inline(always)] unsafe fn scale_body<V: F32x>(...)` whose only unsafety is the vector methods' CPU
/// requirement (pointer contracts belong inside the body, each with its own `SAFETY` comment). A level the CPU
/// lacks falls back to the best one it has.
#[macro_export]
macro_rules! simd_kernel {
    ($(#[$meta:meta])* $vis:vis fn $name:ident(simd: Simd $(, $arg:ident : $ty:ty)* $(,)?) $(-> $ret:ty)? = $body:ident;) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(simd: $crate::simd::Simd $(, $arg: $ty)*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: only called when the CPU has these features.
                unsafe { $body::<std::arch::x86_64::__m512>($($arg),*) }
            }
            #[cfg(all(test, target_arch = "x86_64"))]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512_emulated($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: only called when the CPU has these features.
                unsafe { $body::<$crate::simd::vector::emulated::Pair>($($arg),*) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: only called when the CPU has these features.
                unsafe { $body::<std::arch::x86_64::__m256>($($arg),*) }
            }
            let simd = if simd.supported() { simd } else { $crate::simd::best() };
            match simd {
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Simd::Avx512 => {
                    #[cfg(test)]
                    if $crate::simd::avx512_emulated() {
                        // SAFETY: `supported` admits the emulated level only on CPUs with AVX2 and FMA.
                        return unsafe { avx512_emulated($($arg),*) };
                    }
                    // SAFETY: `supported` checked the CPU has AVX-512F/BW, AVX2 and FMA.
                    unsafe { avx512($($arg),*) }
                }
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `supported` checked the CPU has AVX2 and FMA.
                $crate::simd::Simd::Avx2 => unsafe { avx2($($arg),*) },
                // SAFETY: the portable level needs no CPU feature.
                _ => unsafe { $body::<f32>($($arg),*) },
            }
        }
    };
}
