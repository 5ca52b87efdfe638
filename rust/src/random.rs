//! Random generators (xoshiro256++): the library's default one, shared by `rand`, `randn`, `randint`,
//! `multinomial`, `randperm`, dropout and init unless a [`Generator`] of the caller's is given, and that type.
//! `manual_seed(n)` makes every later draw of the default generator deterministic. Draws are serial so results
//! do not depend on threads.
//!
//! Also the counter-based generator Philox 4x32-10 ([`philox4x32_10`]): a pure function of (counter, key), so a
//! kernel draws the random numbers of any element in any order on any thread, and a backward pass regenerates
//! the forward's numbers instead of storing them (attention's and the fused GPT's dropout take their key from one
//! draw of a seeded generator per forward). No state lives here for it.

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex, OnceLock};

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

    /// Uniform in `0..n` without bias (Lemire's multiply-and-reject); `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let threshold = n.wrapping_neg() % n; // 2^64 mod n: the low products below it are over-represented
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
}

/// The seed a new [`Generator`] starts from (PyTorch's default seed, 67280421310721).
pub const DEFAULT_SEED: u64 = 67_280_421_310_721;

struct GenState {
    rng: Rng,
    initial_seed: u64,
}

/// A random generator: a handle to one shared stream (clones draw from the same one), as `torch.Generator`.
#[derive(Clone)]
pub struct Generator(Arc<Mutex<GenState>>);

impl Default for Generator {
    fn default() -> Self {
        Generator::new(DEFAULT_SEED)
    }
}

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Generator {
        Generator(Arc::new(Mutex::new(GenState { rng: Rng::seeded(seed), initial_seed: seed })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GenState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reseed: every later draw is determined by `seed`.
    pub fn manual_seed(&self, seed: u64) {
        *self.lock() = GenState { rng: Rng::seeded(seed), initial_seed: seed };
    }

    /// Reseed from the clock; returns the seed used.
    pub fn seed(&self) -> u64 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let seed = Rng::seeded(t).next_u64(); // spread clock readings that differ in their last bits
        self.manual_seed(seed);
        seed
    }

    /// The seed of the last `manual_seed` (or `seed`).
    pub fn initial_seed(&self) -> u64 {
        self.lock().initial_seed
    }

    /// The state (four words), for checkpoints that must resume the same random stream.
    pub fn get_state(&self) -> [u64; 4] {
        self.lock().rng.0
    }

    /// Restore a state from [`get_state`](Self::get_state).
    ///
    /// # Errors
    /// `InvalidArgument` for the all-zero state, which xoshiro can never leave.
    pub fn set_state(&self, state: [u64; 4]) -> Result<()> {
        if state == [0; 4] {
            return Err(Error::invalid("set_state", "the all-zero generator state is invalid"));
        }
        self.lock().rng = Rng(state);
        Ok(())
    }

    /// Run `f` with the generator's stream (locked: draws from other threads wait).
    pub fn with<R>(&self, f: impl FnOnce(&mut Rng) -> R) -> R {
        f(&mut self.lock().rng)
    }

    /// True when `self` and `other` are handles to the same stream.
    pub fn same_as(&self, other: &Generator) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The library's default generator: seeded from the clock at first use unless `manual_seed` was called.
pub fn default_generator() -> &'static Generator {
    static DEFAULT: OnceLock<Generator> = OnceLock::new();
    DEFAULT.get_or_init(|| {
        let g = Generator::new(0);
        g.seed();
        g
    })
}

/// Reseed the library's default generator.
pub fn manual_seed(seed: u64) {
    default_generator().manual_seed(seed);
}

/// The default generator's state (four words).
pub fn get_state() -> [u64; 4] {
    default_generator().get_state()
}

/// Restore the default generator's state from [`get_state`].
///
/// # Errors
/// `InvalidArgument` for the all-zero state, which xoshiro can never leave.
pub fn set_state(state: [u64; 4]) -> Result<()> {
    default_generator()
        .set_state(state)
        .map_err(|_| Error::invalid("set_rng_state", "the all-zero generator state is invalid"))
}

/// A uniformly random permutation of `0..n` (Fisher-Yates) from `gen`.
///
/// # Errors
/// `OutOfMemory` when `n` elements cannot be allocated (the buffer is allocated fallibly: `randperm(2**40)` is
/// an error, not an abort).
pub fn randperm_with(n: usize, gen: &Generator) -> Result<Vec<i64>> {
    let shape = [n];
    let n = crate::shape::numel("randperm", &shape, 8)?;
    let mut v: Vec<i64> = crate::storage::try_with_capacity("randperm", &shape, n)?;
    v.extend(0..n as i64);
    gen.with(|r| {
        for i in (1..n).rev() {
            let j = (r.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    });
    Ok(v)
}

/// A uniformly random permutation of `0..n` from the default generator.
///
/// # Errors
/// As [`randperm_with`].
pub fn randperm(n: usize) -> Result<Vec<i64>> {
    randperm_with(n, default_generator())
}

/// Run `f` with the library's default generator.
pub fn with_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    default_generator().with(f)
}

/// Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): four random 32-bit
/// words for a 128-bit `counter` under a 64-bit `key`, ten rounds, the Random123 reference's word order.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let w = philox4x32_10_lanes::<1>(counter.map(|c| [c]), key);
    w.map(|x| x[0])
}

/// [`philox4x32_10`] for `L` counters at once under one key, word-major (`counter[w][l]`, `out[w][l]`): each
/// round is a loop over the lanes that compilers turn into vector multiplies (AVX-512: 8 lanes a `vpmuludq`),
/// which is what makes dropout masks cheap to draw (inline it into code compiled for the vector level).
#[inline(always)]
pub fn philox4x32_10_lanes<const L: usize>(counter: [[u32; L]; 4], key: [u32; 2]) -> [[u32; L]; 4] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        for l in 0..L {
            let p0 = M0 * c0[l] as u64;
            let p1 = M1 * c2[l] as u64;
            (c0[l], c1[l], c2[l], c3[l]) =
                ((p1 >> 32) as u32 ^ c1[l] ^ k[0], p1 as u32, (p0 >> 32) as u32 ^ c3[l] ^ k[1], p0 as u32);
        }
    }
    [c0, c1, c2, c3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_independent_streams_and_states_restore() {
        let a = Generator::new(7);
        let b = Generator::new(7);
        let first: Vec<u64> = (0..4).map(|_| a.with(|r| r.next_u64())).collect();
        let state = a.get_state();
        let later: Vec<u64> = (0..4).map(|_| a.with(|r| r.next_u64())).collect();
        assert_eq!(first, (0..4).map(|_| b.with(|r| r.next_u64())).collect::<Vec<_>>());
        a.set_state(state).unwrap();
        assert_eq!(later, (0..4).map(|_| a.with(|r| r.next_u64())).collect::<Vec<_>>());
        assert!(a.set_state([0; 4]).is_err());
        a.manual_seed(3);
        assert_eq!(a.initial_seed(), 3);
        assert_eq!(Generator::default().initial_seed(), DEFAULT_SEED);
    }

    #[test]
    fn below_is_uniform_and_in_range() {
        // 60,000 draws in 0..6: each count within 5 standard deviations (sqrt(60000 * 1/6 * 5/6) = 91) of 10,000
        let mut r = Rng::seeded(1);
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            counts[r.below(6) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c.abs_diff(10_000) < 5 * 91), "{counts:?}");
        assert_eq!(r.below(1), 0);
        assert!((0..1000).all(|_| r.below(u64::MAX) < u64::MAX));
    }

    #[test]
    fn philox_matches_the_random123_known_answers() {
        // Random123's kat_vectors, the three `philox4x32 10` lines
        let cases = [
            ([0; 4], [0; 2], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
            ([u32::MAX; 4], [u32::MAX; 2], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ];
        for (counter, key, want) in cases {
            assert_eq!(philox4x32_10(counter, key), want, "counter {counter:x?} key {key:x?}");
        }
    }

    #[test]
    fn philox_lanes_are_independent_philox_blocks() {
        let key = [0xdead_beef, 0x0123_4567];
        let counter: [[u32; 5]; 4] = std::array::from_fn(|w| std::array::from_fn(|l| (w * 1000 + l * 7) as u32));
        let out = philox4x32_10_lanes(counter, key);
        for l in 0..5 {
            let one = philox4x32_10([counter[0][l], counter[1][l], counter[2][l], counter[3][l]], key);
            assert_eq!([out[0][l], out[1][l], out[2][l], out[3][l]], one, "lane {l}");
        }
    }
}
