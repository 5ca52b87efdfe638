//! Fused whole-model paths, where one call for the whole forward and one for the whole backward beat composing
//! ops: the GPT (`gpt.rs`, the arithmetic on slices; `gpt_op.rs`, the autograd op around it; `kv.rs`, generation
//! with a key/value cache).

pub mod gpt;
pub mod gpt_op;
pub mod kv;
