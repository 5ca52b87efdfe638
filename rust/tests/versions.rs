//! Version counters and autograd through in-place writes, with no Python: a value saved for backward and
//! written in place since makes backward fail naming the op (as PyTorch), writes that no backward reads do not,
//! and leaves that require grad cannot be written while the graph records.

use bigcore::autograd::{backward, NoGradGuard};
use bigcore::ops::{self, inplace};
use bigcore::{DType, Error, Tensor};

fn leaf(v: &[f64], shape: &[usize]) -> Tensor {
    let t = Tensor::from_vec(v.to_vec(), shape).unwrap();
    t.set_requires_grad(true).unwrap();
    t
}

fn scalar(v: f64) -> Tensor {
    ops::full(&[], v, DType::F64).unwrap()
}

fn grad(t: &Tensor) -> Vec<f64> {
    t.grad().unwrap().to_vec::<f64>().unwrap()
}

#[test]
fn every_write_bumps_the_version_shared_by_views() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let v = x.reshape(&[4]).unwrap();
    let d = x.detach();
    assert_eq!((x.version(), v.version()), (0, 0));
    let x = inplace::add_(&x, &scalar(1.0), 1.0).unwrap();
    let x = inplace::fill_(&x, &scalar(7.0)).unwrap();
    bigcore::optim::assign(&d, &ops::zeros(&[2, 2], DType::F64).unwrap()).unwrap();
    assert_eq!((x.version(), v.version(), d.version()), (3, 3, 3));
    // a fresh result starts at 0: out-of-place ops never bump
    assert_eq!(x.add(&x).unwrap().version(), 0);
}

#[test]
fn a_saved_input_written_in_place_makes_backward_fail_naming_the_op() {
    // y = sum(w * x): backward reads x for dw
    let w = leaf(&[1.0, 2.0], &[2]);
    let x = Tensor::from_vec(vec![3.0f64, 4.0], &[2]).unwrap();
    let y = w.mul(&x).unwrap().sum(None, false).unwrap();
    inplace::mul_(&x, &scalar(2.0)).unwrap();
    let e = backward(&y, None, false).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Autograd { .. }), "{e}");
    assert!(msg.contains("modified by an inplace operation") && msg.contains("`mul`"), "{msg}");
    assert!(msg.contains("is at version 1; expected version 0"), "{msg}");
}

#[test]
fn writes_no_backward_reads_are_fine() {
    // y = sum(w + x): add's backward reads nothing, so writing x afterwards changes no gradient
    let w = leaf(&[1.0, 2.0], &[2]);
    let x = Tensor::from_vec(vec![3.0f64, 4.0], &[2]).unwrap();
    let y = w.add(&x).unwrap().sum(None, false).unwrap();
    inplace::zero_(&x).unwrap();
    backward(&y, None, false).unwrap();
    assert_eq!(grad(&w), [1.0, 1.0]);
}

#[test]
fn an_output_the_backward_reads_written_in_place_fails() {
    // e = exp(w) is read by exp's backward; e.mul_(2) then e.sum().backward() must fail, as PyTorch
    let w = leaf(&[0.5, -1.0], &[2]);
    let e = w.exp().unwrap();
    let e2 = inplace::mul_(&e, &scalar(2.0)).unwrap();
    let err = backward(&e2.sum(None, false).unwrap(), None, false).unwrap_err();
    assert!(err.to_string().contains("which is the output of `exp`"), "{err}");
}

#[test]
fn each_arm_checks_what_it_reads() {
    // clamp's backward reads its input (kept by clamp_), not its output: writing the output again is fine
    let w = leaf(&[-2.0, 0.5, 3.0], &[3]);
    let h = inplace::clamp_(&w.mul(&scalar(1.0)).unwrap(), Some(-1.0), Some(1.0)).unwrap();
    let h = inplace::mul_(&h, &scalar(2.0)).unwrap();
    backward(&h.sum(None, false).unwrap(), None, false).unwrap();
    assert_eq!(grad(&w), [0.0, 2.0, 0.0]);
    // tanh's reads its output: writing it fails
    let t = w.unary(bigcore::autograd::Unary::Tanh).unwrap();
    let t2 = inplace::add_(&t, &scalar(1.0), 1.0).unwrap();
    let e = backward(&t2.sum(None, false).unwrap(), None, false).unwrap_err();
    assert!(e.to_string().contains("the output of `tanh`"), "{e}");
}

#[test]
fn gradients_flow_through_in_place_writes() {
    // h = w * 3 (a non-leaf); h += w; h *= 2  =>  h = 8w, dh/dw = 8
    let w = leaf(&[1.0, -2.0, 0.5], &[3]);
    let h = w.mul(&scalar(3.0)).unwrap();
    let before = h.clone();
    let h = inplace::add_(&h, &w, 1.0).unwrap();
    let h = inplace::mul_(&h, &scalar(2.0)).unwrap();
    assert!(h.shares_storage(&before) && h.id() != before.id());
    assert_eq!(h.to_vec::<f64>().unwrap(), [8.0, -16.0, 4.0]);
    backward(&h.sum(None, false).unwrap(), None, false).unwrap();
    assert_eq!(grad(&w), [8.0, 8.0, 8.0]);
}

#[test]
fn graphs_built_before_a_write_keep_the_old_node() {
    // a = w * 2, b = a * 5 (reads only the constant 5), then a *= 10: b still depends on w as 10w
    let w = leaf(&[1.0, 2.0], &[2]);
    let a = w.mul(&scalar(2.0)).unwrap();
    let b = a.mul(&scalar(5.0)).unwrap();
    let a = inplace::mul_(&a, &scalar(10.0)).unwrap();
    backward(&b.sum(None, false).unwrap(), None, true).unwrap();
    assert_eq!(grad(&w), [10.0, 10.0]);
    w.set_grad(None).unwrap();
    backward(&a.sum(None, false).unwrap(), None, false).unwrap();
    assert_eq!(grad(&w), [20.0, 20.0]);
}

#[test]
fn mul_by_a_tensor_that_requires_grad_keeps_the_old_values() {
    // h = a * 1 (non-leaf), h *= b: dh/db = a (the values before the write), dh/da = b
    let a = leaf(&[2.0, 3.0], &[2]);
    let b = leaf(&[5.0, 7.0], &[2]);
    let h = inplace::mul_(&a.mul(&scalar(1.0)).unwrap(), &b).unwrap();
    backward(&h.sum(None, false).unwrap(), None, false).unwrap();
    assert_eq!((grad(&a), grad(&b)), (vec![5.0, 7.0], vec![2.0, 3.0]));
}

#[test]
fn leaves_that_require_grad_cannot_be_written_while_recording() {
    let w = leaf(&[1.0, 2.0], &[2]);
    let e = inplace::add_(&w, &scalar(1.0), 1.0).unwrap_err();
    assert!(e.to_string().contains("a leaf Variable that requires grad is being used in an in-place operation"), "{e}");
    let e = inplace::zero_(&w.reshape(&[2, 1]).unwrap()).unwrap_err();
    assert!(e.to_string().contains("a view of a leaf Variable"), "{e}");
    // under no_grad (an optimizer step, an init) the write goes through on the same handle
    let _g = NoGradGuard::new();
    let same = inplace::add_(&w, &scalar(1.0), 1.0).unwrap();
    assert_eq!(same.id(), w.id());
    assert_eq!(w.to_vec::<f64>().unwrap(), [2.0, 3.0]);
}

#[test]
fn in_place_results_keep_the_dtype_and_shape() {
    let i = Tensor::from_vec(vec![1i64, 2], &[2]).unwrap();
    let e = inplace::add_(&i, &scalar(0.5), 1.0).unwrap_err();
    assert!(matches!(e, Error::DType { op: "add_", .. }), "{e}");
    let e = inplace::add_(&i, &ops::zeros(&[3, 2], DType::I64).unwrap(), 1.0).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "add_", .. }), "{e}");
    // float64 into float32 narrows, as PyTorch; copy_ and fill_ convert any dtype
    let f = ops::zeros(&[2], DType::F32).unwrap();
    let f = inplace::add_(&f, &scalar(0.25), 4.0).unwrap();
    assert_eq!(f.to_vec::<f32>().unwrap(), [1.0, 1.0]);
    let i = inplace::copy_(&i, &Tensor::from_vec(vec![2.9f64], &[1]).unwrap()).unwrap();
    assert_eq!(i.to_vec::<i64>().unwrap(), [2, 2]);
}

#[test]
fn the_fused_gpt_checks_its_parameters_versions() {
    // the fused op reads its parameters again in backward: writing one between forward and backward must fail
    use bigcore::model::gpt::param_shapes;
    use bigcore::model::gpt_op::{gpt, GptCache, GptConfig};
    let cfg = GptConfig { n_layer: 1, n_head: 2, bias: false, dropout: 0.0 };
    let params: Vec<Tensor> = param_shapes(1, 4, 7, 5, false)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let n: usize = s.iter().product();
            leaf(&(0..n).map(|j| ((i * 31 + j * 7) % 11) as f64 * 0.05 - 0.25).collect::<Vec<_>>(), &s)
        })
        .collect();
    let idx = Tensor::from_vec(vec![1i64, 3, 6], &[1, 3]).unwrap();
    let logits = gpt(&idx, &params, cfg, &GptCache::new()).unwrap();
    {
        let _g = NoGradGuard::new();
        inplace::mul_(&params[2], &scalar(0.5)).unwrap();
    }
    let err = backward(&logits.sum(None, false).unwrap(), None, false).unwrap_err();
    assert!(err.to_string().contains("input 3 of `gpt`"), "{err}");
}
