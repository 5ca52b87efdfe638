//! The fused GPT op against the same model composed from the engine's ops (embedding, layer_norm, linear, masked
//! softmax attention, GELU), in f64: logits and every parameter's gradient; and its errors. No Python.

use bigcore::autograd::{backward, Unary};
use bigcore::kernels::gelu::Gelu;
use bigcore::model::gpt::{param_count, param_shapes};
use bigcore::model::gpt_op::{gpt, GptCache, GptConfig};
use bigcore::ops::{self, linalg, nn};
use bigcore::random::Rng;
use bigcore::{DType, Error, Result, Tensor};

fn randn(shape: &[usize], std: f64, mean: f64, rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| mean + std * rng.normal()).collect::<Vec<f64>>(), shape).unwrap()
}

/// Parameters in the fused op's order, layer norm weights around 1.
fn params(cfg: GptConfig, c: usize, v: usize, block: usize, seed: u64) -> Vec<Tensor> {
    let mut rng = Rng::seeded(seed);
    let shapes = param_shapes(cfg.n_layer, c, v, block, cfg.bias);
    let per = if cfg.bias { 12 } else { 6 };
    shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // layer norm weights: per-layer slots 0 and 6 with biases (0 and 3 without), and ln_f's weight
            let k = i.wrapping_sub(2) % per;
            let is_ln_w =
                i >= 2 && (i - 2 < cfg.n_layer * per && (k == 0 || k == per / 2) || i == 2 + cfg.n_layer * per);
            let t = randn(s, 0.3, if is_ln_w { 1.0 } else { 0.0 }, &mut rng);
            t.set_requires_grad(true).unwrap();
            t
        })
        .collect()
}

/// The model from ops, the fused op's reference.
fn composed(idx: &Tensor, p: &[Tensor], cfg: GptConfig) -> Result<Tensor> {
    let (b, t) = (idx.shape()[0], idx.shape()[1]);
    let c = p[0].shape()[1];
    let (nh, hs) = (cfg.n_head, c / cfg.n_head);
    let pos = ops::arange(0.0, t as f64, 1.0, DType::I64)?;
    let mut x = nn::embedding(idx, &p[0])?.add(&nn::embedding(&pos, &p[1])?)?; // (B, T, C)
    let per = if cfg.bias { 12 } else { 6 };
    let causal = ops::full(&[t, t], 1.0, DType::F64)?.triangle(0, false)?;
    let neg = ops::full(&[t, t], f64::NEG_INFINITY, DType::F64)?;
    let mask = Tensor::where_(
        &causal.compare(&ops::full(&[], 0.5, DType::F64)?, bigcore::ops::Cmp::Gt)?,
        &ops::full(&[t, t], 0.0, DType::F64)?,
        &neg,
    )?;
    for l in 0..cfg.n_layer {
        let w = |k: usize| &p[2 + l * per + k * if cfg.bias { 2 } else { 1 }];
        let bb = |k: usize| if cfg.bias { Some(&p[2 + l * per + 2 * k + 1]) } else { None };
        let h = nn::layer_norm(&x, &[c], Some(w(0)), bb(0), 1e-5)?;
        let qkv = linalg::linear(&h, w(1), bb(1))?; // (B, T, 3C)
        let heads = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * c, c)?.reshape(&[b, t, nh, hs])?.permute(&[0, 2, 1, 3])
            // (B, NH, T, HS)
        };
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
        let scale = ops::full(&[], 1.0 / (hs as f64).sqrt(), DType::F64)?;
        let att = linalg::matmul(&q, &k.transpose(-1, -2)?)?.mul(&scale)?.add(&mask)?.softmax(-1)?;
        let y = linalg::matmul(&att, &v)?.permute(&[0, 2, 1, 3])?.reshape(&[b, t, c])?;
        x = x.add(&linalg::linear(&y, w(2), bb(2))?)?;
        let h = nn::layer_norm(&x, &[c], Some(w(3)), bb(3), 1e-5)?;
        let f = linalg::linear(&h, w(4), bb(4))?.unary(Unary::Gelu(Gelu::Tanh))?;
        x = x.add(&linalg::linear(&f, w(5), bb(5))?)?;
    }
    let f = 2 + cfg.n_layer * per;
    let x = nn::layer_norm(&x, &[c], Some(&p[f]), if cfg.bias { Some(&p[f + 1]) } else { None }, 1e-5)?;
    linalg::linear(&x, &p[0], None)
}

fn grads_of(out: &Tensor, p: &[Tensor], g: &Tensor) -> Vec<Vec<f64>> {
    for t in p {
        t.set_grad(None).unwrap();
    }
    backward(out, Some(g), false).unwrap();
    p.iter().map(|t| t.grad().expect("every parameter gets a gradient").to_vec::<f64>().unwrap()).collect()
}

fn assert_close(what: &str, a: &[f64], b: &[f64]) {
    let scale = b.iter().fold(1e-30f64, |m, x| m.max(x.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-10 * scale, "{what}[{i}]: fused {x} vs composed {y} (scale {scale})");
    }
}

#[test]
fn fused_gpt_matches_the_composed_model_in_f64() {
    // odd sizes: T not a multiple of anything, B = 1 and 2, three heads, a prime vocabulary
    for (b, t, c, nh, v, layers, block, bias) in
        [(2, 7, 12, 3, 97, 2, 9, true), (1, 5, 6, 3, 11, 1, 5, false), (3, 1, 8, 2, 13, 0, 4, true)]
    {
        let cfg = GptConfig { n_layer: layers, n_head: nh, bias, dropout: 0.0 };
        let p = params(cfg, c, v, block, 7 + t as u64);
        assert_eq!(p.len(), param_count(layers, bias));
        let mut rng = Rng::seeded(3);
        let idx = Tensor::from_vec((0..b * t).map(|_| (rng.next_u64() % v as u64) as i64).collect::<Vec<_>>(), &[b, t])
            .unwrap();
        let cache = GptCache::new();
        let fused = gpt(&idx, &p, cfg, &cache).unwrap();
        let want = composed(&idx, &p, cfg).unwrap();
        assert_eq!(fused.shape(), &[b, t, v]);
        assert_close("logits", &fused.to_vec::<f64>().unwrap(), &want.to_vec::<f64>().unwrap());
        let g = randn(&[b, t, v], 1.0, 0.0, &mut rng);
        let gf = grads_of(&fused, &p, &g);
        let gc = grads_of(&want, &p, &g);
        for (i, (a, bb)) in gf.iter().zip(&gc).enumerate() {
            assert_close(&format!("grad of parameter {i} ({layers} layers, bias {bias})"), a, bb);
        }
        // a second step reuses the arena the first one handed back
        let again = gpt(&idx, &p, cfg, &cache).unwrap();
        assert_eq!(again.to_vec::<f64>().unwrap(), fused.to_vec::<f64>().unwrap());
    }
}

#[test]
fn fused_gpt_rejects_bad_input_with_clear_errors() {
    let cfg = GptConfig { n_layer: 1, n_head: 2, bias: true, dropout: 0.0 };
    let p = params(cfg, 4, 5, 3, 1);
    let cache = GptCache::new();
    let ids = |v: Vec<i64>, s: &[usize]| Tensor::from_vec(v, s).unwrap();
    let e = gpt(&ids(vec![0, 1, 2, 3], &[1, 4]), &p, cfg, &cache).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("block size is only 3"), "{e}");
    let e = gpt(&ids(vec![0, 5], &[1, 2]), &p, cfg, &cache).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }) && e.to_string().contains("5"), "{e}");
    let e = gpt(&ids(vec![-1, 0], &[1, 2]), &p, cfg, &cache).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }) && e.to_string().contains("-1"), "{e}");
    let e = gpt(&ids(vec![0, 1], &[2]), &p, cfg, &cache).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = gpt(&ids(vec![0, 1], &[1, 2]), &p[1..], cfg, &cache).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    let e = gpt(&ids(vec![0, 1], &[1, 2]), &p, GptConfig { n_head: 3, ..cfg }, &cache).unwrap_err();
    assert!(e.to_string().contains("not divisible"), "{e}");
    let e = gpt(&ids(vec![0, 1], &[1, 2]), &p, GptConfig { dropout: 1.0, ..cfg }, &cache).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("dropout"), "{e}");
    let mut wrong = p.clone();
    wrong[3] = ops::zeros(&[7], DType::F64).unwrap();
    let e = gpt(&ids(vec![0, 1], &[1, 2]), &wrong, cfg, &cache).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("[7]"), "{e}");
}

#[test]
fn fused_gpt_with_dropout_has_gradients_matching_finite_differences() {
    // the masks are a function of the seed drawn from the library's generator: reseeding before each forward
    // makes the output a deterministic function of the weights, so finite differences check that the backward
    // regenerates the forward's masks at all four sites
    let cfg = GptConfig { n_layer: 2, n_head: 2, bias: true, dropout: 0.3 };
    let (b, t, c, v) = (2, 5, 4, 7);
    let p = params(cfg, c, v, 6, 11);
    let idx = Tensor::from_vec(vec![1i64, 6, 0, 3, 3, 2, 5, 4, 1, 0], &[b, t]).unwrap();
    let cache = GptCache::new();
    let mut rng = Rng::seeded(5);
    let g = randn(&[b, t, v], 1.0, 0.0, &mut rng);
    let run = |p: &[Tensor]| {
        bigcore::random::manual_seed(1234);
        gpt(&idx, p, cfg, &cache).unwrap()
    };
    let out = run(&p);
    bigcore::random::manual_seed(99);
    let other = gpt(&idx, &p, cfg, &cache).unwrap();
    assert_ne!(out.to_vec::<f64>().unwrap(), other.to_vec::<f64>().unwrap(), "another seed, other masks");
    let eval = gpt(&idx, &p, GptConfig { dropout: 0.0, ..cfg }, &cache).unwrap();
    assert_ne!(out.to_vec::<f64>().unwrap(), eval.to_vec::<f64>().unwrap(), "dropout changes the output");
    let analytic = grads_of(&out, &p, &g);
    let _ng = bigcore::autograd::NoGradGuard::new();
    let h = 1e-6;
    for (i, x) in p.iter().enumerate() {
        let base = x.to_vec::<f64>().unwrap();
        for j in (0..base.len()).step_by(3) {
            let eval_at = |delta: f64| {
                let mut q = p.clone();
                let mut w = base.clone();
                w[j] += delta;
                q[i] = Tensor::from_vec(w, x.shape()).unwrap();
                run(&q).mul(&g).unwrap().sum(None, false).unwrap().item().unwrap()
            };
            let numeric = (eval_at(h) - eval_at(-h)) / (2.0 * h);
            let tol = 1e-6 + 1e-5 * numeric.abs();
            assert!((analytic[i][j] - numeric).abs() < tol, "param {i}[{j}]: {} vs {numeric}", analytic[i][j]);
        }
    }
}

#[test]
fn kv_cache_steps_give_the_full_forwards_logits_token_by_token() {
    use bigcore::model::gpt_op::GptKv;
    // positions past 16 and 32: full vectors of scores and masked tails on every SIMD level
    for (bias, b, t, block, dtype_f32) in [
        (true, 2, 9, 9, false),
        (false, 1, 7, 9, false),
        (true, 3, 8, 9, true),
        (true, 2, 37, 40, true),
        (false, 1, 37, 37, false),
    ] {
        let cfg = GptConfig { n_layer: 2, n_head: 3, bias, dropout: 0.0 };
        let (c, v) = (12, 17);
        let mut p = params(cfg, c, v, block, 21);
        if dtype_f32 {
            p = p.iter().map(|x| x.to_dtype(DType::F32).unwrap()).collect();
        }
        let mut rng = Rng::seeded(8);
        let ids: Vec<i64> = (0..b * t).map(|_| (rng.next_u64() % v as u64) as i64).collect();
        let idx = Tensor::from_vec(ids.clone(), &[b, t]).unwrap();
        let _ng = bigcore::autograd::NoGradGuard::new();
        let full = gpt(&idx, &p, cfg, &GptCache::new()).unwrap().to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        let mut kv = GptKv::new(&p, cfg, b).unwrap();
        let prompt = 3;
        let cols = |lo: usize, hi: usize| {
            let v: Vec<i64> = (0..b).flat_map(|r| ids[r * t + lo..r * t + hi].to_vec()).collect();
            Tensor::from_vec(v, &[b, hi - lo]).unwrap()
        };
        let tol = if dtype_f32 { 2e-5 } else { 1e-10 };
        let check = |logits: Tensor, pos: usize| {
            let got = logits.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
            for r in 0..b {
                for j in 0..v {
                    let want = full[(r * t + pos) * v + j];
                    assert!((got[r * v + j] - want).abs() <= tol * (1.0 + want.abs()), "row {r} position {pos}");
                }
            }
        };
        check(kv.step(&cols(0, prompt)).unwrap(), prompt - 1); // prefill
        for pos in prompt..t - 2 {
            check(kv.step(&cols(pos, pos + 1)).unwrap(), pos); // decode
        }
        check(kv.step(&cols(t - 2, t)).unwrap(), t - 1); // two tokens in one call after the prefill
        assert_eq!(kv.len(), t);
        while kv.len() < block {
            kv.step(&cols(0, 1)).unwrap();
        }
        let e = kv.step(&cols(0, 1)).unwrap_err();
        assert!(e.to_string().contains(&format!("block size is only {block}")), "{e}");
        kv.clear();
        check(kv.step(&cols(0, 1)).unwrap(), 0);
        assert!(matches!(
            kv.step(&Tensor::from_vec(vec![v as i64; b], &[b, 1]).unwrap()),
            Err(Error::OutOfRange { .. })
        ));
    }
}
