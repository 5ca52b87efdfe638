//! Graphs deeper than any stack: building, differentiating and dropping a chain of 200,000 recorded ops runs
//! in a thread with a 256 KiB stack, which a walk or a drop that recursed once per op would overflow at once
//! (a user's `total = total + loss` over a long training run builds such a chain).

use bigcore::autograd::backward;
use bigcore::ops;
use bigcore::{DType, Tensor};

const DEPTH: usize = 200_000;

fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(256 * 1024).spawn(f).unwrap().join().unwrap();
}

fn chain(x: &Tensor) -> Tensor {
    let one = ops::full(&[], 1.0, DType::F64).unwrap();
    let mut y = x.clone();
    for _ in 0..DEPTH {
        y = y.add(&one).unwrap();
    }
    y
}

fn leaf() -> Tensor {
    let x = Tensor::from_vec(vec![0.5f64], &[]).unwrap();
    x.set_requires_grad(true).unwrap();
    x
}

#[test]
fn dropping_a_deep_chain_frees_it_without_recursion() {
    on_small_stack(|| drop(chain(&leaf())));
}

#[test]
fn a_deep_chain_differentiates_and_drops_after_backward() {
    on_small_stack(|| {
        let x = leaf();
        let y = chain(&x);
        assert_eq!(y.to_vec::<f64>().unwrap(), vec![0.5 + DEPTH as f64]);
        backward(&y, None, true).unwrap();
        backward(&y, None, false).unwrap();
        assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![2.0]); // dy/dx = 1, accumulated twice
        drop(y);
    });
}

#[test]
fn a_shared_middle_of_a_chain_survives_the_drop_of_its_end() {
    on_small_stack(|| {
        let x = leaf();
        let mid = chain(&x);
        let end = chain(&mid);
        drop(end);
        // `mid` and its own graph are still whole: backward through it reaches x
        backward(&mid, None, false).unwrap();
        assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![1.0]);
    });
}
