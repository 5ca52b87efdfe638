//! Post-accumulate-grad hooks without Python: order, accumulated values, removal, errors, and a dropped tensor's
//! hooks released with it.

use bigcore::autograd::backward;
use bigcore::autograd::hooks::{self, GradHook};
use bigcore::{Error, Tensor};
use std::sync::{Arc, Mutex};

fn leaf(v: &[f64]) -> Tensor {
    let t = Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap();
    t.set_requires_grad(true).unwrap();
    t
}

/// (hook name, the gradient it saw), in call order.
type Log = Arc<Mutex<Vec<(String, Vec<f64>)>>>;

fn recorder(log: &Log, name: &str) -> GradHook {
    let (log, name) = (log.clone(), name.to_string());
    Arc::new(move |t: &Tensor| {
        log.lock().unwrap().push((name.clone(), t.grad().unwrap().to_vec::<f64>().unwrap()));
        Ok(())
    })
}

#[test]
fn hooks_run_once_per_backward_with_accumulated_gradients() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (leaf(&[1.0, 2.0]), leaf(&[3.0, 4.0]));
    hooks::register(&a, recorder(&log, "a")).unwrap();
    let hb = hooks::register(&b, recorder(&log, "b")).unwrap();
    let y = a.mul(&a).unwrap().mul(&b).unwrap().sum(None, false).unwrap(); // sum(a² b)
    backward(&y, None, true).unwrap();
    backward(&y, None, false).unwrap();
    // each backward calls each hook once with the accumulated gradient (which of two independent leaves is
    // final first is the walk's business)
    let mut got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    got[..2].sort_by(|x, y| x.0.cmp(&y.0));
    got[2..].sort_by(|x, y| x.0.cmp(&y.0));
    let want = [("a", [6.0, 16.0]), ("b", [1.0, 4.0]), ("a", [12.0, 32.0]), ("b", [2.0, 8.0])];
    for ((name, g), (wn, wg)) in got.iter().zip(want) {
        assert_eq!((name.as_str(), g.as_slice()), (wn, wg.as_slice()));
    }
    assert!(hooks::remove(hb));
    assert!(!hooks::remove(hb));
}

#[test]
fn a_failing_hook_stops_backward_and_non_leaves_are_refused() {
    let a = leaf(&[1.0]);
    hooks::register(&a, Arc::new(|_: &Tensor| Err(Error::invalid("hook", "no")))).unwrap();
    let y = a.mul(&a).unwrap().sum(None, false).unwrap();
    assert!(matches!(backward(&y, None, false), Err(Error::InvalidArgument { .. })));
    let e = hooks::register(&y, Arc::new(|_: &Tensor| Ok(()))).unwrap_err();
    assert!(matches!(e, Error::Autograd { .. }), "{e}");
}

#[test]
fn a_dropped_tensor_releases_its_hooks() {
    let captured = Arc::new(());
    let a = leaf(&[1.0]);
    let c = captured.clone();
    let handle = hooks::register(
        &a,
        Arc::new(move |_: &Tensor| {
            let _keep = &c;
            Ok(())
        }),
    )
    .unwrap();
    assert_eq!(Arc::strong_count(&captured), 2);
    drop(a);
    assert_eq!(Arc::strong_count(&captured), 1);
    assert!(!hooks::remove(handle));
}
