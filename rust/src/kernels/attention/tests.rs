//! The kernels against a composed f64 reference (the whole (T, S) score matrix per head, softmax, products), at
//! awkward sizes, with every mask kind, broadcast masks, dropout regenerated from `Dropout::keeps`, the fused
//! (B, T, 3C) layouts, every SIMD level, and 1 to 4 threads.

use super::*;
use crate::random::Rng;

#[derive(Clone, Copy, Debug)]
enum MaskKind {
    None,
    /// (T, S) booleans, broadcast over batch and head; the first key of every query kept unless `empty_row`.
    Bool,
    /// (B, 1, 1, S) key padding: batch b masks its last b keys.
    Padding,
    /// (B, NH, T, S) additive values, one query row of head 0 all -inf.
    Additive,
    /// (T, 1) additive: the column stride 0.
    Column,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    d: Dims,
    causal: bool,
    mask: MaskKind,
    scale: f64,
    dropout: Option<f64>,
}

fn case(b: usize, nh: usize, t: usize, s: usize, hs: usize, hv: usize) -> Case {
    Case {
        d: Dims { b, nh, t, s, hs, hv },
        causal: false,
        mask: MaskKind::None,
        scale: 1.0 / (hs as f64).sqrt(),
        dropout: None,
    }
}

/// Inputs of a case: q, k, v contiguous (B, NH, rows, width), the mask buffers and their layout, dout.
struct Data {
    q: Vec<f64>,
    k: Vec<f64>,
    v: Vec<f64>,
    dout: Vec<f64>,
    bools: Vec<bool>,
    adds: Vec<f64>,
    ml: MaskLayout,
}

fn data(c: &Case, seed: u64) -> Data {
    let d = c.d;
    let mut rng = Rng::seeded(seed);
    let mut fill = |n: usize| (0..n).map(|_| rng.uniform() * 4.0 - 2.0).collect::<Vec<f64>>();
    let (q, k, v) = (fill(d.b * d.nh * d.t * d.hs), fill(d.b * d.nh * d.s * d.hs), fill(d.b * d.nh * d.s * d.hv));
    let dout = fill(d.b * d.nh * d.t * d.hv);
    let mut bools = vec![];
    let mut adds = vec![];
    let ml = match c.mask {
        MaskKind::None => MaskLayout { batch: 0, head: 0, row: 0, col: 0 },
        MaskKind::Bool => {
            bools = fill(d.t * d.s).iter().enumerate().map(|(n, &x)| n % d.s == 0 || x > -0.6).collect();
            MaskLayout { batch: 0, head: 0, row: d.s, col: 1 }
        }
        MaskKind::Padding => {
            bools = (0..d.b * d.s).map(|n| n % d.s + n / d.s < d.s).collect();
            MaskLayout { batch: d.s, head: 0, row: 0, col: 1 }
        }
        MaskKind::Additive => {
            adds = fill(d.b * d.nh * d.t * d.s);
            if d.t > 1 {
                adds[d.s..2 * d.s].fill(f64::NEG_INFINITY); // query 1 of batch 0, head 0 sees no key
            }
            MaskLayout { batch: d.nh * d.t * d.s, head: d.t * d.s, row: d.s, col: 1 }
        }
        MaskKind::Column => {
            adds = fill(d.t);
            MaskLayout { batch: 0, head: 0, row: 1, col: 0 }
        }
    };
    Data { q, k, v, dout, bools, adds, ml }
}

fn mask_of<'a, T: Float>(c: &Case, data: &'a Data, adds: &'a [T]) -> Mask<'a, T> {
    match c.mask {
        MaskKind::None => Mask::None,
        MaskKind::Bool | MaskKind::Padding => Mask::Bool(&data.bools, data.ml),
        MaskKind::Additive | MaskKind::Column => Mask::Additive(adds, data.ml),
    }
}

fn spec<'a, T: Float>(c: &Case, mask: Mask<'a, T>, seed: u64) -> AttentionSpec<'a, T> {
    let d = c.d;
    AttentionSpec {
        dims: d,
        q: Layout::bhtd(d.nh, d.t, d.hs),
        k: Layout::bhtd(d.nh, d.s, d.hs),
        v: Layout::bhtd(d.nh, d.s, d.hv),
        out: Layout::bhtd(d.nh, d.t, d.hv),
        causal: c.causal,
        mask,
        scale: c.scale,
        dropout: c.dropout.map(|p| Dropout { p, seed }),
    }
}

/// The composed reference: out, lse, dq, dk, dv, all (B, NH, rows, width).
struct Reference {
    out: Vec<f64>,
    lse: Vec<f64>,
    dq: Vec<f64>,
    dk: Vec<f64>,
    dv: Vec<f64>,
}

fn reference(c: &Case, x: &Data, seed: u64) -> Reference {
    let d = c.d;
    let (t, s, hs, hv) = (d.t, d.s, d.hs, d.hv);
    let mut r = Reference {
        out: vec![0.0; d.b * d.nh * t * hv],
        lse: vec![0.0; d.b * d.nh * t],
        dq: vec![0.0; d.b * d.nh * t * hs],
        dk: vec![0.0; d.b * d.nh * s * hs],
        dv: vec![0.0; d.b * d.nh * s * hv],
    };
    let drop = c.dropout.map(|p| Dropout { p, seed });
    for b in 0..d.b {
        for h in 0..d.nh {
            let bh = b * d.nh + h;
            let (q, k, v) = (&x.q[bh * t * hs..], &x.k[bh * s * hs..], &x.v[bh * s * hv..]);
            let g = &x.dout[bh * t * hv..];
            let ml = x.ml;
            let mut p = vec![0.0; t * s]; // softmax weights
            let mut z = vec![1.0; t * s]; // dropout factors
            for i in 0..t {
                let mut sc: Vec<f64> = (0..s)
                    .map(|j| {
                        let at = b * ml.batch + h * ml.head + i * ml.row + j * ml.col;
                        let m = match c.mask {
                            MaskKind::None => 0.0,
                            MaskKind::Bool | MaskKind::Padding => {
                                if x.bools[at] {
                                    0.0
                                } else {
                                    f64::NEG_INFINITY
                                }
                            }
                            MaskKind::Additive | MaskKind::Column => x.adds[at],
                        };
                        let dot: f64 = (0..hs).map(|e| q[i * hs + e] * k[j * hs + e]).sum();
                        if c.causal && j > i {
                            f64::NEG_INFINITY
                        } else {
                            dot * c.scale + m
                        }
                    })
                    .collect();
                let mx = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if mx == f64::NEG_INFINITY {
                    r.lse[bh * t + i] = f64::NEG_INFINITY; // every key masked: weights 0, out 0
                    continue;
                }
                sc.iter_mut().for_each(|x| *x = (*x - mx).exp());
                let sum: f64 = sc.iter().sum();
                r.lse[bh * t + i] = mx + sum.ln();
                for j in 0..s {
                    p[i * s + j] = sc[j] / sum;
                    if let Some(dr) = drop {
                        z[i * s + j] = if dr.keeps(bh, i, j) { 1.0 / (1.0 - dr.p) } else { 0.0 };
                    }
                }
            }
            for i in 0..t {
                // out = (P z) V ; dP = z (dout V^T) ; dS = P (dP - rowsum(P dP))
                let dp: Vec<f64> = (0..s)
                    .map(|j| z[i * s + j] * (0..hv).map(|e| g[i * hv + e] * v[j * hv + e]).sum::<f64>())
                    .collect();
                let rs: f64 = (0..s).map(|j| p[i * s + j] * dp[j]).sum();
                for j in 0..s {
                    let (pz, ds) = (p[i * s + j] * z[i * s + j], p[i * s + j] * (dp[j] - rs) * c.scale);
                    for e in 0..hv {
                        r.out[(bh * t + i) * hv + e] += pz * v[j * hv + e];
                        r.dv[(bh * s + j) * hv + e] += pz * g[i * hv + e];
                    }
                    for e in 0..hs {
                        r.dq[(bh * t + i) * hs + e] += ds * k[j * hs + e];
                        r.dk[(bh * s + j) * hs + e] += ds * q[i * hs + e];
                    }
                }
            }
        }
    }
    r
}

/// The kernels' out, lse, dq, dk, dv for a case (f64 through the plain path, f32 through `simd`), with the
/// gradients accumulated onto `init` to check the `+=`.
fn run<T: Float>(simd: Simd, c: &Case, x: &Data, seed: u64, init: f64) -> [Vec<f64>; 5] {
    let d = c.d;
    let cv = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
    let (q, k, v, g, adds) = (cv(&x.q), cv(&x.k), cv(&x.v), cv(&x.dout), cv(&x.adds));
    let sp = spec(c, mask_of(c, x, &adds), seed);
    let mut out = vec![T::from_f64(f64::NAN); d.b * d.nh * d.t * d.hv];
    let mut lse = vec![T::ZERO; d.b * d.nh * d.t];
    attention_forward_with(simd, &mut out, &mut lse, &q, &k, &v, &sp).unwrap();
    let (mut dq, mut dk, mut dv) = (cv(&vec![init; q.len()]), cv(&vec![init; k.len()]), cv(&vec![init; v.len()]));
    let grads = QkvGrads::Separate(&mut dq, &mut dk, &mut dv);
    attention_backward_with(simd, grads, &g, &q, &k, &v, &out, &lse, &sp).unwrap();
    let back = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let minus = |v: &[T]| v.iter().map(|x| x.to_f64() - init).collect::<Vec<f64>>();
    [back(&out), back(&lse), minus(&dq), minus(&dk), minus(&dv)]
}

fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().filter(|x| x.is_finite()).fold(1.0f64, |a, x| a.max(x.abs()));
    for (n, (&a, &b)) in got.iter().zip(want).enumerate() {
        let ok = if b.is_finite() { (a - b).abs() <= atol * scale + rtol * b.abs() } else { a == b };
        assert!(ok, "{what}[{n}]: {a} vs {b} (max |ref| {scale})");
    }
}

fn check_case(c: Case) {
    let seed = 0x5eed_0000 + c.d.t as u64 * 31 + c.d.hs as u64;
    let x = data(&c, seed);
    let want = reference(&c, &x, seed);
    let want = [want.out, want.lse, want.dq, want.dk, want.dv];
    let names = ["out", "lse", "dq", "dk", "dv"];
    let got = run::<f64>(Simd::Scalar, &c, &x, seed, 0.5);
    for ((name, g), w) in names.iter().zip(&got).zip(&want) {
        assert_close(&format!("f64 {name} {c:?}"), g, w, 1e-11, 1e-12);
    }
    for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
        let got = run::<f32>(simd, &c, &x, seed, 0.5);
        for ((name, g), w) in names.iter().zip(&got).zip(&want) {
            // float32 rounding of sums over up to S * HS terms of size ~4
            assert_close(&format!("f32 {} {name} {c:?}", simd.name()), g, w, 2e-5, 2e-5);
        }
    }
}

#[test]
fn awkward_sizes_match_the_composed_reference() {
    for &(t, s) in &[(1, 1), (2, 7), (7, 2), (69, 69), (130, 69), (69, 130)] {
        for &(hs, hv) in &[(1, 1), (8, 13), (13, 8), (64, 64)] {
            check_case(case(1, 3, t, s, hs, hv));
        }
    }
    check_case(case(3, 1, 17, 33, 16, 32));
}

#[test]
fn long_sequences_span_several_key_tiles() {
    // more keys than two tiles of either path, with a partial last tile: the online softmax rescales across tiles
    check_case(case(1, 2, 37, 451, 16, 8));
    check_case(Case { causal: true, ..case(1, 1, 451, 451, 13, 13) });
    check_case(Case { causal: true, mask: MaskKind::Additive, dropout: Some(0.3), ..case(2, 1, 300, 401, 8, 8) });
}

#[test]
fn causal_is_top_left_aligned() {
    for &(t, s) in &[(1, 1), (7, 7), (69, 69), (130, 69), (69, 130), (2, 97)] {
        for &hs in &[1, 13, 64] {
            check_case(Case { causal: true, ..case(3, 1, t, s, hs, hs) });
        }
    }
}

#[test]
fn masks_broadcast_by_strides() {
    for mask in [MaskKind::Bool, MaskKind::Padding, MaskKind::Additive, MaskKind::Column] {
        for &(t, s) in &[(1, 3), (7, 7), (69, 130), (130, 69)] {
            check_case(Case { mask, ..case(3, 3, t, s, 13, 8) });
            check_case(Case { mask, causal: true, scale: 0.3, ..case(1, 2, t, s, 64, 64) });
        }
    }
}

#[test]
fn dropout_regenerated_in_the_backward_matches_the_composed_reference() {
    for &(t, s, hs) in &[(7, 7, 8), (69, 130, 13), (130, 69, 64)] {
        for p in [0.1, 0.5] {
            check_case(Case { dropout: Some(p), ..case(2, 3, t, s, hs, hs) });
            check_case(Case { dropout: Some(p), causal: true, mask: MaskKind::Padding, ..case(3, 1, t, s, hs, hs) });
        }
    }
}

#[test]
fn a_query_with_every_key_masked_gets_zeros() {
    // PyTorch 2.15: 0 in the output and in every gradient, not NaN
    let c = Case { mask: MaskKind::Additive, ..case(1, 1, 5, 4, 3, 3) };
    let x = data(&c, 9);
    for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
        let got = run::<f32>(simd, &c, &x, 9, 0.0);
        assert!(got[0][3..6].iter().all(|&v| v == 0.0), "{}: out of query 1 {:?}", simd.name(), &got[0][3..6]);
        assert_eq!(got[1][1], f64::NEG_INFINITY);
        assert!(got[2][3..6].iter().all(|&v| v == 0.0), "dq of query 1");
        assert!(got.iter().flatten().all(|v| !v.is_nan()));
    }
}

#[test]
fn dropout_keeps_the_right_fraction_and_depends_on_the_seed() {
    let (t, s) = (300, 301);
    for p in [0.1, 0.5, 0.9] {
        let dr = Dropout { p, seed: 1234 };
        let kept = (0..t).flat_map(|i| (0..s).map(move |j| (i, j))).filter(|&(i, j)| dr.keeps(5, i, j)).count();
        // binomial: within 5 standard deviations
        let n = (t * s) as f64;
        let sd = (n * p * (1.0 - p)).sqrt();
        assert!((kept as f64 - n * (1.0 - p)).abs() < 5.0 * sd, "p {p}: kept {kept} of {n}");
    }
    let (a, b) = (Dropout { p: 0.5, seed: 1 }, Dropout { p: 0.5, seed: 2 });
    let differ = (0..1000).filter(|&j| a.keeps(0, 3, j) != b.keeps(0, 3, j)).count();
    assert!((400..600).contains(&differ), "{differ} of 1000 decisions differ between seeds");
    let other_head = (0..1000).filter(|&j| a.keeps(0, 3, j) != a.keeps(1, 3, j)).count();
    assert!((400..600).contains(&other_head), "{other_head} of 1000 decisions differ between heads");
    assert!((0..100).all(|j| !Dropout { p: 1.0, seed: 3 }.keeps(2, 1, j)));
    assert!((0..100).all(|j| Dropout { p: 0.0, seed: 3 }.keeps(2, 1, j)));
}

/// q, k, v as column slices of one (B, T, 3C) buffer, out as (B, T, C): the same numbers as the (B, NH, T, HS)
/// layout, bit for bit, and the gradients into one (B, T, 3C) buffer.
#[test]
fn fused_qkv_layout_gives_the_same_bits() {
    for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
        for &(b, nh, t, hs, causal) in &[(2, 3, 69, 13, false), (1, 2, 130, 64, true), (3, 1, 7, 8, true)] {
            let c = Case { causal, dropout: Some(0.2), ..case(b, nh, t, t, hs, hs) };
            let x = data(&c, 77);
            let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let (q, k, v, g) = (f(&x.q), f(&x.k), f(&x.v), f(&x.dout));
            let sp = spec::<f32>(&c, Mask::None, 5);
            let mut out = vec![0f32; q.len()];
            let mut lse = vec![0f32; b * nh * t];
            attention_forward_with(simd, &mut out, &mut lse, &q, &k, &v, &sp).unwrap();
            let (mut dq, mut dk, mut dv) = (vec![0f32; q.len()], vec![0f32; k.len()], vec![0f32; v.len()]);
            let grads = QkvGrads::Separate(&mut dq, &mut dk, &mut dv);
            attention_backward_with(simd, grads, &g, &q, &k, &v, &out, &lse, &sp).unwrap();

            // (B, NH, T, HS) -> columns h*HS.. of (B, T, W) at `col0`
            let cc = nh * hs;
            let to_btc = |src: &[f32], dst: &mut [f32], w: usize, col0: usize| {
                for (n, &val) in src.iter().enumerate() {
                    let (bb, h, i, e) = (n / (nh * t * hs), n / (t * hs) % nh, n / hs % t, n % hs);
                    dst[bb * t * w + i * w + col0 + h * hs + e] = val;
                }
            };
            let mut qkv = vec![0f32; b * t * 3 * cc];
            to_btc(&q, &mut qkv, 3 * cc, 0);
            to_btc(&k, &mut qkv, 3 * cc, cc);
            to_btc(&v, &mut qkv, 3 * cc, 2 * cc);
            let mut g_btc = vec![0f32; b * t * cc];
            to_btc(&g, &mut g_btc, cc, 0);
            let fused = AttentionSpec {
                q: Layout::qkv(0, nh, t, hs),
                k: Layout::qkv(1, nh, t, hs),
                v: Layout::qkv(2, nh, t, hs),
                out: Layout::bthd(nh, t, hs),
                ..sp
            };
            let mut out2 = vec![0f32; b * t * cc];
            let mut lse2 = vec![0f32; b * nh * t];
            attention_forward_with(simd, &mut out2, &mut lse2, &qkv, &qkv, &qkv, &fused).unwrap();
            let mut dqkv = vec![0f32; qkv.len()];
            let grads = QkvGrads::Fused(&mut dqkv);
            attention_backward_with(simd, grads, &g_btc, &qkv, &qkv, &qkv, &out2, &lse2, &fused).unwrap();

            let mut want = vec![0f32; b * t * cc];
            to_btc(&out, &mut want, cc, 0);
            assert_eq!(out2, want, "{} out", simd.name());
            assert_eq!(lse2, lse, "{} lse", simd.name());
            let mut want = vec![0f32; qkv.len()];
            to_btc(&dq, &mut want, 3 * cc, 0);
            to_btc(&dk, &mut want, 3 * cc, cc);
            to_btc(&dv, &mut want, 3 * cc, 2 * cc);
            assert_eq!(dqkv, want, "{} dqkv", simd.name());
        }
    }
}

#[test]
fn threads_give_identical_bits() {
    // above the parallel threshold: 2 x 5 heads of 130 queries
    let c = Case { causal: true, dropout: Some(0.1), ..case(2, 5, 130, 130, 24, 24) };
    let x = data(&c, 3);
    let mut first = None;
    for threads in 1..=4 {
        crate::parallel::set_num_threads(threads).unwrap();
        let got = (run::<f32>(crate::simd::best(), &c, &x, 3, 0.0), run::<f64>(Simd::Scalar, &c, &x, 3, 0.0));
        match &first {
            None => first = Some(got),
            Some(f) => assert!(f.0 == got.0 && f.1 == got.1, "{threads} threads differ from 1"),
        }
    }
}

#[test]
fn bad_buffers_and_layouts_are_errors() {
    let c = case(2, 3, 5, 4, 8, 8);
    let x = data(&c, 1);
    let sp = spec::<f64>(&c, Mask::None, 0);
    let (mut out, mut lse) = (vec![0.0; 2 * 3 * 5 * 8], vec![0.0; 30]);
    let short = &x.k[..x.k.len() - 1];
    assert!(matches!(attention_forward(&mut out, &mut lse, &x.q, short, &x.v, &sp), Err(Error::Shape { .. })));
    assert!(matches!(attention_forward(&mut out, &mut lse[..29], &x.q, &x.k, &x.v, &sp), Err(Error::Shape { .. })));
    let overlapping = AttentionSpec { out: Layout { head: 0, ..sp.out }, ..sp };
    let r = attention_forward(&mut out, &mut lse, &x.q, &x.k, &x.v, &overlapping);
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    // q, k, v of a (B, T, 3C) buffer with k's columns on top of q's
    let d = Dims { s: 5, ..c.d };
    let clash = AttentionSpec {
        dims: d,
        q: Layout::qkv(0, 3, 5, 8),
        k: Layout { offset: 4, ..Layout::qkv(0, 3, 5, 8) },
        v: Layout::qkv(2, 3, 5, 8),
        ..sp
    };
    let (mut g, qkv) = (vec![0.0; 2 * 5 * 72], vec![0.0; 2 * 5 * 72]);
    let r = attention_backward(QkvGrads::Fused(&mut g), &out, &qkv, &qkv, &qkv, &out, &lse, &clash);
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    let bad_p = AttentionSpec { dropout: Some(Dropout { p: 1.5, seed: 0 }), ..sp };
    assert!(attention_forward(&mut out, &mut lse, &x.q, &x.k, &x.v, &bad_p).is_err());
}
