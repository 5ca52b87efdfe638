//! The engine's gradients against central finite differences in f64, with no Python: each case builds a scalar
//! `loss = sum(f(inputs) * g)` and compares autograd's input gradients with numerical ones.

use bigcore::autograd::{backward, NoGradGuard, Reduction, SliceSpec};
use bigcore::kernels::gelu::Gelu;
use bigcore::ops::{self, linalg, nn};
use bigcore::{DType, Error, Result, Tensor};

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

fn t(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(values(shape.iter().product(), seed), shape).unwrap()
}

/// Check d(sum(f(x) * g))/dx for every input against central differences.
fn gradcheck(name: &str, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    for x in inputs {
        x.set_requires_grad(true).unwrap();
        x.set_grad(None).unwrap();
    }
    let out = f(inputs).unwrap();
    let g = t(out.shape(), 99);
    let loss = out.mul(&g).unwrap().sum(None, false).unwrap();
    backward(&loss, None, false).unwrap();
    let _ng = NoGradGuard::new();
    let h = 1e-6;
    for (i, x) in inputs.iter().enumerate() {
        let analytic = x.grad().unwrap_or_else(|| panic!("{name}: input {i} got no gradient")).to_vec::<f64>().unwrap();
        let base = x.to_vec::<f64>().unwrap();
        for j in 0..base.len() {
            let eval = |d: f64| {
                let mut v = base.clone();
                v[j] += d;
                let mut xs: Vec<Tensor> = inputs.to_vec();
                xs[i] = Tensor::from_vec(v, x.shape()).unwrap();
                f(&xs).unwrap().mul(&g).unwrap().sum(None, false).unwrap().item().unwrap()
            };
            let numeric = (eval(h) - eval(-h)) / (2.0 * h);
            let tol = 1e-6 + 1e-5 * numeric.abs();
            assert!(
                (analytic[j] - numeric).abs() < tol,
                "{name}: d/dx{i}[{j}] autograd {} vs numeric {numeric}",
                analytic[j]
            );
        }
    }
}

#[test]
fn arithmetic_with_broadcasting() {
    gradcheck("add/mul/div", &[t(&[3, 1, 4], 1), t(&[2, 1], 2)], |x| {
        // y = (a * b + a) / (b^2 + 2)
        let denom = x[1].mul(&x[1])?.add(&ops::full(&[], 2.0, DType::F64)?)?;
        x[0].mul(&x[1])?.add(&x[0])?.div(&denom)
    });
}

#[test]
fn transcendental_chain() {
    gradcheck("tanh/exp/sigmoid/gelu", &[t(&[5, 3], 3)], |x| {
        use bigcore::autograd::Unary;
        x[0].unary(Unary::Tanh)?.exp()?.unary(Unary::Sigmoid)?.unary(Unary::Gelu(Gelu::None))
    });
}

#[test]
fn matmul_linear_and_reductions() {
    gradcheck("matmul", &[t(&[2, 3, 5], 4), t(&[5, 4], 5)], |x| linalg::matmul(&x[0], &x[1]));
    gradcheck("linear", &[t(&[7, 5], 6), t(&[3, 5], 7), t(&[3], 8)], |x| linalg::linear(&x[0], &x[1], Some(&x[2])));
    gradcheck("sum/mean", &[t(&[3, 4, 5], 9)], |x| x[0].sum(Some(&[0, 2]), true)?.mean(Some(&[1]), false));
    gradcheck("max", &[t(&[4, 6], 10)], |x| Ok(x[0].max_dim(1, false, false)?.0));
}

#[test]
fn movement() {
    gradcheck("permute/slice/cat", &[t(&[3, 4, 2], 11), t(&[3, 1, 2], 12)], |x| {
        let p = x[0].permute(&[2, 0, 1])?;
        let s = p.slice(&[
            SliceSpec { start: 0, step: 1, len: 2 },
            SliceSpec { start: 1, step: 2, len: 1 },
            SliceSpec { start: 0, step: 3, len: 2 },
        ])?;
        let e = x[1].expand(&[3, 4, 2])?;
        Tensor::cat(&[&s.reshape(&[2, 2])?, &e.sum(Some(&[0]), false)?.reshape(&[4, 2])?.transpose(0, 1)?], 1)
    });
    let idx = Tensor::from_vec(vec![2i64, 0, 2], &[3]).unwrap();
    gradcheck("index_select", &[t(&[4, 3], 13)], |x| x[0].index_select(0, &idx));
}

fn ids(v: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

#[test]
fn gather_scatter_sort_and_cumsum() {
    // index (2, 3) smaller than the input (3, 4) outside dim 1
    let idx = ids(&[3, 0, 3, 1, 1, 2], &[2, 3]);
    gradcheck("gather", &[t(&[3, 4], 20)], |x| x[0].gather(1, &idx));
    // scatter's targets are distinct per row (a repeated target makes the gradient of src undefined)
    let dis = ids(&[0, 2, 1, 3, 1, 0], &[2, 3]);
    gradcheck("scatter", &[t(&[3, 4], 21), t(&[2, 5], 22)], |x| x[0].scatter(1, &dis, &x[1]));
    gradcheck("scatter_add", &[t(&[3, 4], 23), t(&[2, 5], 24)], |x| x[0].scatter_add(1, &idx, &x[1]));
    gradcheck("put", &[t(&[3, 4], 25), t(&[2, 2], 26)], |x| x[0].put(&ids(&[-1, 0, 5, 7], &[2, 2]), &x[1], false));
    gradcheck("sort", &[t(&[3, 5, 2], 27)], |x| Ok(x[0].sort(1, true, false)?.0));
    gradcheck("topk", &[t(&[4, 7], 28)], |x| Ok(x[0].topk(3, -1, false, true)?.0));
    gradcheck("topk dim 0 unsorted", &[t(&[5, 3], 29)], |x| Ok(x[0].topk(2, 0, true, false)?.0));
    gradcheck("cumsum", &[t(&[3, 4, 2], 30)], |x| x[0].cumsum(1));
}

#[test]
fn in_place_ops_record_like_their_out_of_place_forms() {
    use bigcore::ops::inplace;
    let one = || ops::full(&[], 1.0, DType::F64);
    // y = clamp(a * b + 2a, -0.5, 0.7); written in place into a copy of a
    gradcheck("mul_/add_/clamp_", &[t(&[3, 4], 31), t(&[4], 32)], |x| {
        let y = x[0].mul(&one()?)?;
        let y = inplace::mul_(&y, &x[1])?;
        let y = inplace::add_(&y, &x[0], 2.0)?;
        inplace::clamp_(&y, Some(-0.5), Some(0.7))
    });
    // y = where(mask, v, a - b / 2) with the mask over rows, then its second row replaced by c
    let mask = Tensor::from_vec(vec![true, false, true], &[3, 1]).unwrap();
    gradcheck("sub_/masked_fill_/put_", &[t(&[3, 4], 33), t(&[3, 4], 34), t(&[], 35), t(&[4], 36)], |x| {
        let y = inplace::sub_(&x[0].mul(&one()?)?, &x[1], 0.5)?;
        let y = inplace::masked_fill_(&y, &mask, &x[2])?;
        inplace::put_(&y, &ids(&[4, 5, 6, 7], &[4]), &x[3], false)
    });
}

#[test]
fn nn_ops() {
    gradcheck("softmax", &[t(&[3, 5], 14)], |x| x[0].softmax(-1));
    gradcheck("log_softmax dim 0", &[t(&[4, 3], 15)], |x| x[0].log_softmax(0));
    gradcheck("layer_norm", &[t(&[4, 6], 16), t(&[6], 17), t(&[6], 18)], |x| {
        nn::layer_norm(&x[0], &[6], Some(&x[1]), Some(&x[2]), 1e-5)
    });
    let y = Tensor::from_vec(vec![1i64, 0, -100, 3], &[4]).unwrap();
    gradcheck("cross_entropy", &[t(&[4, 5], 19)], |x| nn::cross_entropy(&x[0], &y, -100, 0.1, Reduction::Mean));
}

#[test]
fn scaled_dot_product_attention() {
    use bigcore::ops::attention::scaled_dot_product_attention as sdpa;
    // causal with T != S (top-left aligned), and an explicit scale
    gradcheck("sdpa causal", &[t(&[2, 3, 4, 3], 20), t(&[2, 3, 6, 3], 21), t(&[2, 3, 6, 2], 22)], |x| {
        sdpa(&x[0], &x[1], &x[2], None, true, 0.0, Some(0.7))
    });
    // a bool mask (T, S) broadcast over batch and heads, query 1 sees no key; batch dims broadcast (k, v)
    let keep: Vec<bool> = (0..4 * 6).map(|n| n / 6 != 1 && n % 3 != 2).collect();
    let keep = Tensor::from_vec(keep, &[4, 6]).unwrap();
    gradcheck("sdpa bool mask", &[t(&[2, 3, 4, 3], 23), t(&[1, 3, 6, 3], 24), t(&[3, 6, 5], 25)], |x| {
        sdpa(&x[0], &x[1], &x[2], Some(&keep), false, 0.0, None)
    });
    // an additive mask (B, 1, T, S); dropout drawn again under the same seed at every evaluation
    let add = t(&[2, 1, 4, 6], 26);
    gradcheck(
        "sdpa additive mask, dropout",
        &[t(&[2, 3, 4, 3], 27), t(&[2, 3, 6, 3], 28), t(&[2, 3, 6, 2], 29)],
        |x| {
            bigcore::random::manual_seed(7);
            sdpa(&x[0], &x[1], &x[2], Some(&add), false, 0.3, None)
        },
    );
}

#[test]
fn errors_name_the_op_and_shapes() {
    let e = linalg::matmul(&t(&[2, 3], 1), &t(&[4, 5], 2)).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "matmul", .. }) && e.to_string().contains("[2, 3]"), "{e}");
    let e = t(&[2, 3], 1).reshape(&[4]).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }));
    let e = t(&[5, 2], 1).index_select(0, &Tensor::from_vec(vec![5i64], &[1]).unwrap()).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }));
    let e = ops::zeros(&[1 << 24, 1 << 24, 1 << 20], DType::F32).unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }));
    let e = bigcore::parallel::set_num_threads(0).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }));
}

#[test]
fn second_backward_through_a_freed_graph_is_an_error() {
    let x = t(&[3], 1);
    x.set_requires_grad(true).unwrap();
    let y = x.exp().unwrap().sum(None, false).unwrap();
    backward(&y, None, false).unwrap();
    assert!(matches!(backward(&y, None, false), Err(Error::Autograd { .. })));
}
