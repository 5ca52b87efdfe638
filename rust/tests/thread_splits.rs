//! Every kernel that splits its work over threads, at sizes above the parallel threshold whose row lengths and
//! counts divide nothing evenly: against a serial f64 reference written here, and on 1, 2, 3 and 4 threads
//! against each other, bit for bit, in float64 (the plain loops) and float32 (the SIMD kernels at the CPU's
//! level). The row kernels (softmax, log-softmax, layer norm, cross-entropy) split whole rows, the layer
//! norm's weight gradients fixed blocks of rows, the element-wise kernels (GELU, the unary maps, arithmetic
//! over a broadcast plan, the optimizers) elements anywhere, the embedding's backward vocabulary rows.
//!
//! One test function: the pool size is global, so the cases must not run concurrently with each other.

use bigcore::autograd::Unary;
use bigcore::kernels::elementwise::{arith_forward, map_backward, map_forward, Arith, Map};
use bigcore::kernels::gelu::{gelu_backward, gelu_forward, Gelu};
use bigcore::kernels::optim::{Adam, Sgd};
use bigcore::kernels::strided::Plan;
use bigcore::kernels::{cross_entropy, embedding, layernorm, softmax};
use bigcore::parallel::{set_num_threads, MIN_PARALLEL};
use bigcore::random::Rng;
use bigcore::{Float, Tensor};

fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::seeded(seed);
    (0..n).map(|_| 4.0 * rng.uniform() - 2.0).collect()
}

fn cast<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn close(name: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{name}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{name}: element {i}: {a} vs {b}");
    }
}

/// Every row kernel's forward and backward outputs for `rows` rows of `c`, in `T`.
fn row_kernels<T: Float>(rows: usize, c: usize) -> Vec<Vec<T>> {
    let n = rows * c;
    let (x, dy): (Vec<T>, Vec<T>) = (cast(&values(n, 1)), cast(&values(n, 2)));
    let (w, b): (Vec<T>, Vec<T>) = (cast(&values(c, 3)), cast(&values(c, 4)));
    let targets: Vec<i64> = (0..rows).map(|r| if r % 7 == 3 { -100 } else { ((r * 31) % c) as i64 }).collect();
    let z = |len: usize| vec![T::ZERO; len];
    let mut outs = vec![];
    let (mut y, mut dx) = (z(n), z(n));
    softmax::softmax_forward(&mut y, &x, rows, c, 1);
    softmax::softmax_backward(&mut dx, &dy, &y, rows, c, 1);
    outs.extend([y, dx]);
    let (mut y, mut dx) = (z(n), z(n));
    softmax::log_softmax_forward(&mut y, &x, rows, c, 1);
    softmax::log_softmax_backward(&mut dx, &dy, &y, rows, c, 1);
    outs.extend([y, dx]);
    let (mut y, mut mean, mut rstd) = (z(n), z(rows), z(rows));
    layernorm::layer_norm_forward(&mut y, &mut mean, &mut rstd, &x, Some(&w), Some(&b), c, 1e-5);
    let (mut dx, mut dw, mut db) = (z(n), z(c), z(c));
    layernorm::layer_norm_backward(&mut dx, Some(&mut dw), Some(&mut db), &dy, &x, Some(&w), &mean, &rstd, c);
    outs.extend([y, dx, dw, db]);
    let (mut loss, mut lse) = (z(rows), z(rows));
    cross_entropy::cross_entropy_forward(&mut loss, &mut lse, &x, &targets, c, -100, 0.1);
    let mut dl = z(n);
    cross_entropy::cross_entropy_backward(&mut dl, &dy[..rows], &x, &lse, &targets, c, -100, 0.1);
    outs.extend([loss, dl]);
    outs
}

/// The same quantities, computed row by row in the plainest way, in f64 from the `T`-rounded inputs.
fn row_reference<T: Float>(rows: usize, c: usize) -> Vec<Vec<f64>> {
    let n = rows * c;
    let round = |v: Vec<f64>| -> Vec<f64> { cast::<T>(&v).iter().map(|x| x.to_f64()).collect() };
    let (x, dy) = (round(values(n, 1)), round(values(n, 2)));
    let (w, b) = (round(values(c, 3)), round(values(c, 4)));
    let mut outs = vec![];
    for log in [false, true] {
        let (mut y, mut dx) = (vec![0.0; n], vec![0.0; n]);
        for r in 0..rows {
            let xr = &x[r * c..(r + 1) * c];
            let m = xr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = xr.iter().map(|v| (v - m).exp()).sum();
            for j in 0..c {
                let p = (xr[j] - m).exp() / s;
                y[r * c + j] = if log { p.ln() } else { p };
            }
            let dyr = &dy[r * c..(r + 1) * c];
            let probs: Vec<f64> = xr.iter().map(|v| (v - m).exp() / s).collect();
            let (sum_dy, dot): (f64, f64) = (dyr.iter().sum(), dyr.iter().zip(&probs).map(|(a, p)| a * p).sum());
            for j in 0..c {
                dx[r * c + j] = if log { dyr[j] - probs[j] * sum_dy } else { probs[j] * (dyr[j] - dot) };
            }
        }
        outs.extend([y, dx]);
    }
    let (mut y, mut dx, mut dw, mut db) = (vec![0.0; n], vec![0.0; n], vec![0.0; c], vec![0.0; c]);
    for r in 0..rows {
        let xr = &x[r * c..(r + 1) * c];
        let m = xr.iter().sum::<f64>() / c as f64;
        let s = 1.0 / (xr.iter().map(|v| (v - m).powi(2)).sum::<f64>() / c as f64 + 1e-5).sqrt();
        let nv: Vec<f64> = xr.iter().map(|v| (v - m) * s).collect();
        let dn: Vec<f64> = (0..c).map(|j| dy[r * c + j] * w[j]).collect();
        let (a, bb) =
            (dn.iter().sum::<f64>() / c as f64, dn.iter().zip(&nv).map(|(d, v)| d * v).sum::<f64>() / c as f64);
        for j in 0..c {
            y[r * c + j] = nv[j] * w[j] + b[j];
            dx[r * c + j] = (dn[j] - a - nv[j] * bb) * s;
            dw[j] += dy[r * c + j] * nv[j];
            db[j] += dy[r * c + j];
        }
    }
    outs.extend([y, dx, dw, db]);
    let (mut loss, mut dl) = (vec![0.0; rows], vec![0.0; n]);
    for r in 0..rows {
        if r % 7 == 3 {
            continue;
        }
        let t = (r * 31) % c;
        let xr = &x[r * c..(r + 1) * c];
        let m = xr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = xr.iter().map(|v| (v - m).exp()).sum::<f64>().ln() + m;
        let mean = xr.iter().sum::<f64>() / c as f64;
        loss[r] = 0.9 * (lse - xr[t]) + 0.1 * (lse - mean);
        for j in 0..c {
            let q = if j == t { 0.9 + 0.1 / c as f64 } else { 0.1 / c as f64 };
            dl[r * c + j] = dy[r] * ((xr[j] - lse).exp() - q);
        }
    }
    outs.extend([loss, dl]);
    outs
}

const ROW_NAMES: [&str; 10] = [
    "softmax",
    "softmax dx",
    "log_softmax",
    "log_softmax dx",
    "layer_norm",
    "layer_norm dx",
    "dw",
    "db",
    "cross_entropy",
    "cross_entropy dx",
];

/// Run `f` on 1, 2, 3 and 4 threads; every run must give the first one's results bit for bit. Returns them.
fn on_every_thread_count<T: PartialEq + std::fmt::Debug>(what: &str, f: impl Fn() -> T) -> T {
    let mut first: Option<T> = None;
    for threads in 1..=4 {
        set_num_threads(threads).unwrap();
        let got = f();
        match &first {
            None => first = Some(got),
            Some(want) => assert!(&got == want, "{what}: {threads} threads differ from one"),
        }
    }
    first.expect("ran once")
}

fn check_row_kernels<T: Float>(tol: f64) {
    for c in [69, 97, 130, 257, 1000] {
        let rows = (3 * MIN_PARALLEL / c + 1) | 1;
        let want = row_reference::<T>(rows, c);
        let got = on_every_thread_count(&format!("{rows} rows of {c}"), || row_kernels::<T>(rows, c));
        for ((name, g), w) in ROW_NAMES.iter().zip(&got).zip(&want) {
            let g: Vec<f64> = g.iter().map(|v| v.to_f64()).collect();
            // dw and db add up `rows` terms: their error grows with the square root of that
            let tol = if name.len() == 2 { tol * (rows as f64).sqrt() } else { tol };
            close(&format!("{name} ({}), {rows} rows of {c}", std::any::type_name::<T>()), &g, w, tol);
        }
    }
}

/// The element-wise kernels over `n` elements: GELU both forms, the unary maps, arithmetic over broadcast plans.
fn element_kernels<T: Float>(n: usize) -> Vec<Vec<T>> {
    let (x, g): (Vec<T>, Vec<T>) = (cast(&values(n, 5)), cast(&values(n, 6)));
    let mut outs = vec![];
    for approximate in [Gelu::None, Gelu::Tanh] {
        let (mut y, mut dx) = (vec![T::ZERO; n], vec![T::ONE; n]);
        gelu_forward(&mut y, &x, approximate);
        gelu_backward(&mut dx, &g, &x, approximate);
        outs.extend([y, dx]);
    }
    for f in [Map::Neg, Map::Exp, Map::Tanh, Map::Sigmoid, Map::Relu, Map::Abs] {
        let (mut y, mut dx) = (vec![T::ZERO; n], vec![T::ONE; n]);
        map_forward(&mut y, &x, f);
        map_backward(&mut dx, &g, &x, &y, f);
        outs.extend([y, dx]);
    }
    // x as (rows, 97) against a row vector, a column, a scalar and a tensor of the same shape
    let (rows, c) = (n / 97, 97);
    let x = &x[..rows * c];
    for (b_strides, b_len) in [([0, 1], c), ([1, 0], rows), ([0, 0], 1), ([c, 1], rows * c)] {
        let plan = Plan::new(&[rows, c], [vec![c, 1], b_strides.to_vec()], [0, 0]);
        for op in [Arith::Add, Arith::Sub, Arith::Mul, Arith::Div] {
            let mut out = vec![T::ZERO; rows * c];
            arith_forward(&mut out, x, &g[..b_len], &plan, op);
            outs.push(out);
        }
    }
    outs
}

fn check_element_kernels() {
    for n in [MIN_PARALLEL + 1, 3 * MIN_PARALLEL + 17, 10 * MIN_PARALLEL - 3] {
        let want = on_every_thread_count(&format!("element-wise f64, {n}"), || element_kernels::<f64>(n));
        let got = on_every_thread_count(&format!("element-wise f32, {n}"), || element_kernels::<f32>(n));
        // float32 within a few roundings of float64 (GELU's erf is within 4e-7): the vector code is the one
        // computing every element, wherever the chunks start
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            let g: Vec<f64> = g.iter().map(|&v| v as f64).collect();
            let w32: Vec<f64> = w.iter().map(|&v| v as f32 as f64).collect();
            close(&format!("element-wise output {k}, {n} elements"), &g, &w32, 2e-5);
        }
    }
}

fn check_embedding() {
    // V = 1001 rows of C = 97, 1500 ids with repeats: the backward's work (ids x C) lies above the threshold
    let (v, c, n) = (1001, 97, 1500);
    let weight = values(v * c, 7);
    let ids: Vec<i64> = (0..n).map(|i| ((i * i * 7 + 3) % v) as i64).collect();
    let dout = values(n * c, 8);
    let (out, dw) = on_every_thread_count("embedding", || {
        let mut out = vec![0.0; n * c];
        embedding::embedding_forward(&mut out, &ids, &weight, c);
        let mut dw = vec![0.0; v * c];
        embedding::embedding_backward(&mut dw, &dout, &ids, c);
        (out, dw)
    });
    let mut want = vec![0.0; v * c];
    for (i, &id) in ids.iter().enumerate() {
        let id = id as usize;
        assert_eq!(&out[i * c..(i + 1) * c], &weight[id * c..(id + 1) * c]);
        for j in 0..c {
            want[id * c + j] += dout[i * c + j];
        }
    }
    assert_eq!(dw, want, "the scatter-add in the order of the ids");
}

fn check_optimizers() {
    // one large parameter cut into pieces, and small ones grouped; float32 and float64 in one call
    let shapes: [&[usize]; 5] = [&[3 * MIN_PARALLEL + 17, 5], &[97, 13], &[1], &[1000], &[69, 130]];
    let make = |seed: u64, f32s: bool| -> Vec<Tensor> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let n = s.iter().product();
                let t = Tensor::from_vec(values(n, seed + i as u64), s).unwrap();
                if f32s && i % 2 == 0 {
                    t.to_dtype(bigcore::DType::F32).unwrap()
                } else {
                    t
                }
            })
            .collect()
    };
    let snapshot = |ts: &[Tensor]| -> Vec<Vec<f64>> {
        ts.iter().map(|t| t.to_dtype(bigcore::DType::F64).unwrap().to_vec().unwrap()).collect()
    };
    let adam =
        Adam { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.1, decoupled: true, maximize: false };
    let sgd = Sgd { lr: 1e-2, momentum: 0.9, dampening: 0.0, weight_decay: 0.01, nesterov: true, maximize: false };
    on_every_thread_count("adamw and sgd", || {
        let (p, g, m, v) = (make(10, true), make(20, true), make(0, true), make(0, true));
        for t in m.iter().chain(&v) {
            bigcore::optim::scale_(std::slice::from_ref(t), 0.0).unwrap();
        }
        for step in 1..=3 {
            bigcore::optim::adam_step(&p, &g, &m, &v, adam, step).unwrap();
        }
        let (q, b) = (make(30, true), make(40, true));
        for first in [true, false] {
            bigcore::optim::sgd_step(&q, &g, &b, sgd, first).unwrap();
        }
        [snapshot(&p), snapshot(&m), snapshot(&v), snapshot(&q), snapshot(&b)]
    });
}

#[test]
fn kernels_give_the_same_bits_on_any_thread_count() {
    check_row_kernels::<f64>(1e-11);
    check_row_kernels::<f32>(2e-5);
    check_element_kernels();
    check_embedding();
    check_optimizers();
    // the unary ops through the Tensor API take the same kernels
    let x = Tensor::from_vec(values(2 * MIN_PARALLEL + 1, 9), &[2 * MIN_PARALLEL + 1]).unwrap();
    on_every_thread_count("gelu through the op", || x.unary(Unary::Gelu(Gelu::Tanh)).unwrap().to_vec::<f64>().unwrap());
}
