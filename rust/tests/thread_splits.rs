//! The row kernels (softmax, log-softmax, layer norm, cross-entropy) at sizes above the parallel threshold with
//! row lengths and row counts that divide nothing evenly: against a serial f64 reference written here, and on 1,
//! 2, 3 and 4 threads against each other, bit for bit. One test function: the pool size is global, so the cases
//! must not run concurrently with each other.

use bigcore::kernels::{cross_entropy, layernorm, softmax};
use bigcore::parallel::{set_num_threads, MIN_PARALLEL};
use bigcore::random::Rng;

fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::seeded(seed);
    (0..n).map(|_| 4.0 * rng.uniform() - 2.0).collect()
}

fn close(name: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{name}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{name}: element {i}: {a} vs {b}");
    }
}

/// Every row kernel's forward and backward outputs for `rows` rows of `c`, concatenated.
fn row_kernels(rows: usize, c: usize) -> Vec<Vec<f64>> {
    let n = rows * c;
    let (x, dy) = (values(n, 1), values(n, 2));
    let (w, b) = (values(c, 3), values(c, 4));
    let targets: Vec<i64> = (0..rows).map(|r| if r % 7 == 3 { -100 } else { ((r * 31) % c) as i64 }).collect();
    let mut outs = vec![];
    for log in [false, true] {
        let mut y = vec![0.0; n];
        softmax::forward(&mut y, &x, rows, c, 1, log);
        let mut dx = vec![0.0; n];
        softmax::backward(&mut dx, &dy, &y, rows, c, 1, log);
        outs.extend([y, dx]);
    }
    let (mut y, mut mean, mut rstd) = (vec![0.0; n], vec![0.0; rows], vec![0.0; rows]);
    layernorm::forward(&mut y, &mut mean, &mut rstd, &x, Some(&w), Some(&b), c, 1e-5);
    let (mut dx, mut dw, mut db) = (vec![0.0; n], vec![0.0; c], vec![0.0; c]);
    layernorm::backward(&mut dx, Some(&mut dw), Some(&mut db), &dy, &x, Some(&w), &mean, &rstd, c);
    outs.extend([y, dx, dw, db]);
    let (mut loss, mut lse) = (vec![0.0; rows], vec![0.0; rows]);
    cross_entropy::forward(&mut loss, &mut lse, &x, &targets, c, -100, 0.1);
    let mut dl = vec![0.0; n];
    cross_entropy::backward(&mut dl, &dy[..rows], &x, &lse, &targets, c, -100, 0.1);
    outs.extend([loss, dl]);
    outs
}

/// The same quantities, computed row by row in the plainest way.
fn reference(rows: usize, c: usize) -> Vec<Vec<f64>> {
    let n = rows * c;
    let (x, dy) = (values(n, 1), values(n, 2));
    let (w, b) = (values(c, 3), values(c, 4));
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

#[test]
fn row_kernels_split_whole_rows_on_any_thread_count() {
    let names = [
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
    for c in [69, 97, 130, 257, 1000] {
        let rows = (3 * MIN_PARALLEL / c + 1) | 1;
        let want = reference(rows, c);
        let mut first: Option<Vec<Vec<f64>>> = None;
        for threads in 1..=4 {
            set_num_threads(threads).unwrap();
            let got = row_kernels(rows, c);
            for ((name, g), w) in names.iter().zip(&got).zip(&want) {
                close(&format!("{name}, {rows} rows of {c}, {threads} threads"), g, w, 1e-11);
            }
            match &first {
                None => first = Some(got),
                Some(f) => assert_eq!(&got, f, "{rows} rows of {c}: {threads} threads differ from one"),
            }
        }
    }
}
