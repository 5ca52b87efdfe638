//! Which instruction set the kernels use: detected once, cached, and forceable with
//! `BIGCORE_SIMD=scalar|avx2|avx512` so the tests can run every path on one machine.

use std::sync::OnceLock;

/// An instruction-set level with its own compiled microkernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// Portable code (SSE2 on x86-64), no FMA.
    Scalar,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512F (with AVX2 and FMA).
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

    /// Whether this CPU runs the level. In the crate's unit tests AVX-512 also counts as supported on a CPU with
    /// only AVX2: the 6 x 32 tile then runs on pairs of AVX2 vectors (`x86::emulated`), so the driver and
    /// packing at AVX-512's tile width are tested on machines without it.
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
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Simd::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
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
        let rank = |s: Simd| s as u8;
        if rank(wanted) <= rank(best) {
            wanted
        } else {
            best
        }
    })
}
