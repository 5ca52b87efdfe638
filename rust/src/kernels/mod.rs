//! Raw compute on slices: no `Tensor`, no autograd, no PyO3. Each kernel is a forward/backward pair in llm.c's
//! convention (`forward(out, saved.., inputs.., dims..)`, `backward(dinp.., dout, saved.., dims..)`, the
//! backward accumulating with `+=`).

pub mod activation;
pub mod attention;
pub mod cross_entropy;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod gelu;
pub mod gemm;
pub mod index;
pub mod layernorm;
pub mod lstm;
pub mod optim;
pub mod reduce;
pub mod sample;
pub mod scan;
mod simd_loops;
pub mod softmax;
pub mod sort;
pub mod strided;
