//! Regression tests for issue 13 (hardening) that need no Python: impossible sizes are errors (never an abort, a
//! panic or a wrapped size), integer creation is exact, `x ** 0` has gradient 0 at 0, a NaN clamp bound is not an
//! integer, and the optimizers refuse aliased buffers instead of deadlocking.

use bigcore::autograd::{backward, SliceSpec, Unary};
use bigcore::kernels::optim::{Adam, Sgd};
use bigcore::ops::{self, creation, linalg};
use bigcore::{optim, random, shape, DType, Error, Tensor};

fn is_oom(r: bigcore::Result<Tensor>, op: &str) -> bool {
    matches!(r, Err(Error::OutOfMemory { op: o, .. }) if o == op)
}

#[test]
fn randperm_of_an_impossible_size_is_an_error() {
    for n in [1usize << 40, 1 << 62, usize::MAX] {
        let e = random::randperm(n).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    }
    let mut p = random::randperm(10).unwrap();
    p.sort_unstable();
    assert_eq!(p, (0..10).collect::<Vec<i64>>());
}

#[test]
fn thread_counts_beyond_the_cap_are_invalid_arguments() {
    for n in [1usize << 40, 1 << 62] {
        let e = bigcore::parallel::set_num_threads(n).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    }
}

#[test]
fn slice_offsets_do_not_wrap() {
    let x = ops::arange(0.0, 3.0, 1.0, DType::F32).unwrap();
    // 1 + 2 * 2**63 wraps to 1 in usize arithmetic
    let e = x.slice(&[SliceSpec { start: 1, step: 1 << 63, len: 3 }]).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
    let e = x.slice(&[SliceSpec { start: usize::MAX, step: 1, len: 2 }]).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
    let ok = x.slice(&[SliceSpec { start: 0, step: 2, len: 2 }]).unwrap();
    assert_eq!(ok.to_vec::<f32>().unwrap(), vec![0.0, 2.0]);
}

#[test]
fn repeat_sizes_are_multiplied_with_overflow_checks() {
    let x = ops::zeros(&[3, 0], DType::F32).unwrap();
    assert!(is_oom(x.repeat(&[usize::MAX / 2, 1]), "repeat"));
    let y = ops::zeros(&[3], DType::F32).unwrap();
    assert!(is_oom(y.repeat(&[1 << 62]), "repeat"));
    assert_eq!(y.repeat(&[2, 2]).unwrap().shape(), &[2, 6]);
}

#[test]
fn linear_output_size_is_checked_not_wrapped() {
    // 2**33 rows times 2**33 outputs: 2**66 elements, which wrapped to 0 in `m * n`
    let x = ops::zeros(&[1 << 33, 0], DType::F32).unwrap();
    let w = ops::zeros(&[1 << 33, 0], DType::F32).unwrap();
    assert!(is_oom(linalg::linear(&x, &w, None), "linear"));
}

#[test]
fn empty_shapes_have_no_elements_whatever_the_other_sizes() {
    assert_eq!(shape::numel("zeros", &[1 << 50, 0], 4).unwrap(), 0);
    let t = ops::zeros(&[1 << 50, 0], DType::F32).unwrap();
    assert_eq!((t.shape(), t.numel()), (&[1usize << 50, 0][..], 0));
    assert!(shape::numel("zeros", &[1 << 40, 0, 1 << 40], 4).is_err(), "the other sizes must still multiply");
}

#[test]
fn out_of_memory_reports_bytes_with_the_element_size() {
    for (dt, size) in [(DType::F64, 8u128), (DType::F32, 4), (DType::I64, 8), (DType::Bool, 1)] {
        match ops::zeros(&[1 << 40, 1 << 40], dt) {
            Err(Error::OutOfMemory { bytes, .. }) => assert_eq!(bytes, size << 80, "{dt}"),
            other => panic!("{dt}: {other:?}"),
        }
    }
}

#[test]
fn int64_creation_is_exact_beyond_2_pow_53() {
    let big = (1i64 << 53) + 1;
    assert_eq!(creation::full_i64(&[2], big).unwrap().to_vec::<i64>().unwrap(), vec![big, big]);
    let r = creation::arange_i64(1 << 53, (1 << 53) + 3, 1).unwrap();
    assert_eq!(r.to_vec::<i64>().unwrap(), vec![1 << 53, (1 << 53) + 1, (1 << 53) + 2]);
    let r = creation::arange_i64(i64::MAX, i64::MAX - 7, -3).unwrap();
    assert_eq!(r.to_vec::<i64>().unwrap(), vec![i64::MAX, i64::MAX - 3, i64::MAX - 6]);
    assert_eq!(creation::arange_i64(i64::MIN, i64::MAX, i64::MAX).unwrap().numel(), 3);
    assert!(creation::arange_i64(0, 5, 0).is_err());
    assert!(creation::arange_i64(0, 5, -1).is_err());
    assert_eq!(creation::arange_i64(5, 5, 1).unwrap().numel(), 0);
}

#[test]
fn pow_zero_has_gradient_zero_at_zero() {
    // y = x ** 0 = 1: dy/dx = 0 everywhere, x = 0 included (PyTorch), not 0 * 0**-1 = NaN
    let x = Tensor::from_vec(vec![0.0f64, 2.0, -1.0], &[3]).unwrap();
    x.set_requires_grad(true).unwrap();
    let e = ops::full(&[], 0.0, DType::F64).unwrap();
    let y = x.pow(&e).unwrap().sum(None, false).unwrap();
    backward(&y, None, false).unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![0.0, 0.0, 0.0]);
}

#[test]
fn a_nan_clamp_bound_makes_an_integer_tensor_nan() {
    let x = Tensor::from_vec(vec![1i64, 2, 3], &[3]).unwrap();
    let y = x.unary(Unary::Clamp { min: Some(f64::NAN), max: None }).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    assert!(y.to_vec::<f32>().unwrap().iter().all(|v| v.is_nan()));
    let z = x.unary(Unary::Clamp { min: Some(1.5), max: Some(2.0) }).unwrap();
    assert_eq!(z.to_vec::<i64>().unwrap(), vec![2, 2, 2]);
}

#[test]
fn optimizers_refuse_a_gradient_sharing_storage_with_a_moment_buffer() {
    let p = ops::zeros(&[4], DType::F32).unwrap();
    let (m, v) = (ops::zeros(&[4], DType::F32).unwrap(), ops::zeros(&[4], DType::F32).unwrap());
    let g = m.reshape(&[4]).unwrap(); // shares m's storage
    let h = Adam { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.0, decoupled: true, maximize: false };
    let one = std::slice::from_ref;
    let e = optim::adam_step(one(&p), one(&g), one(&m), one(&v), h, 1).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    let s = Sgd { lr: 0.1, momentum: 0.9, dampening: 0.0, weight_decay: 0.0, nesterov: false, maximize: false };
    let e = optim::sgd_step(one(&p), &[g], &[m], s, false).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    // a moment buffer of the wrong dtype is a dtype error, not a shape error
    let m64 = ops::zeros(&[4], DType::F64).unwrap();
    let g = ops::zeros(&[4], DType::F32).unwrap();
    let e = optim::adam_step(&[p], &[g], &[m64], &[v], h, 1).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
}

#[test]
fn set_grad_of_the_wrong_dtype_is_a_dtype_error() {
    let p = ops::zeros(&[2], DType::F32).unwrap();
    let e = p.set_grad(Some(ops::zeros(&[2], DType::F64).unwrap())).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    let e = p.set_grad(Some(ops::zeros(&[3], DType::F32).unwrap())).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}
