//! The library's seeded random generator (xoshiro256++), shared by `rand`, `randn`, dropout and init.
//! `manual_seed(n)` makes every later draw deterministic. Draws are serial so results do not depend on threads.

use std::sync::Mutex;

/// xoshiro256++ state.
pub struct Rng([u64; 4]);

impl Rng {
    /// A generator seeded through splitmix64, so nearby seeds give unrelated streams.
    pub fn seeded(seed: u64) -> Rng {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (the first of a [`normal_pair`](Self::normal_pair)).
    pub fn normal(&mut self) -> f64 {
        self.normal_pair().0
    }

    /// Two independent standard normals (Marsaglia's polar method: one logarithm and one square root for two
    /// values and no trigonometry, about 5x faster than Box-Muller's cosine per value; 21% of the candidate
    /// points are rejected).
    pub fn normal_pair(&mut self) -> (f64, f64) {
        loop {
            let x = 2.0 * self.uniform() - 1.0;
            let y = 2.0 * self.uniform() - 1.0;
            let s = x * x + y * y;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * s.ln() / s).sqrt();
                return (x * f, y * f);
            }
        }
    }
}

static GLOBAL: Mutex<Option<Rng>> = Mutex::new(None);

/// Reseed the library's generator.
pub fn manual_seed(seed: u64) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Rng::seeded(seed));
}

/// The generator's state (four words), for checkpoints that must resume the same random stream.
pub fn get_state() -> [u64; 4] {
    with_rng(|r| r.0)
}

/// Restore a state from [`get_state`].
///
/// # Errors
/// `InvalidArgument` for the all-zero state, which xoshiro can never leave.
pub fn set_state(state: [u64; 4]) -> crate::Result<()> {
    if state == [0; 4] {
        return Err(crate::Error::invalid("set_rng_state", "the all-zero generator state is invalid"));
    }
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Rng(state));
    Ok(())
}

/// A uniformly random permutation of `0..n` (Fisher-Yates).
pub fn randperm(n: usize) -> Vec<i64> {
    let mut v: Vec<i64> = (0..n as i64).collect();
    with_rng(|r| {
        for i in (1..n).rev() {
            let j = (r.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    });
    v
}

/// Run `f` with the library's generator (seeded from the clock on first use unless `manual_seed` was called).
pub fn with_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let rng = g.get_or_insert_with(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng::seeded(t)
    });
    f(rng)
}
