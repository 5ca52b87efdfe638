//! Reverse-mode autograd: grad mode, the node recorded on each op's output, and `backward()`, which walks the
//! graph in reverse topological order entirely in Rust. One backward arm per op lives in `backward.rs`.
//!
//! Grad mode is per thread (as in PyTorch): `no_grad` on one Python thread does not affect another.
//!
//! Each node remembers the version of every tensor it read (its inputs and its output) when it was recorded;
//! before an arm runs, the tensors that arm reads must still be at those versions, or backward raises instead
//! of differentiating values that an in-place write changed since (`backward::saved` lists what each arm reads).

mod backward;
pub mod hooks;
mod op;

pub use op::{Attr, Binary, LstmSaved, Op, Reduction, SliceSpec, Unary};

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record the graph.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Turn recording on or off for this thread; returns the previous setting.
pub fn set_grad_enabled(on: bool) -> bool {
    GRAD_ENABLED.with(|g| g.replace(on))
}

/// Disables recording until dropped.
pub struct NoGradGuard(bool);

impl NoGradGuard {
    /// Turn recording off for this thread.
    pub fn new() -> Self {
        NoGradGuard(set_grad_enabled(false))
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        set_grad_enabled(self.0);
    }
}

/// The op that made a tensor and the tensors it read.
pub struct Node {
    pub(crate) op: Op,
    pub(crate) inputs: Vec<Tensor>,
    /// Each input's storage version when the op ran.
    pub(crate) versions: Vec<u64>,
    /// The output's storage version when the op ran (moved on by `ops::inplace`, which makes the output the
    /// tensor it writes).
    pub(crate) out_version: u64,
}

impl Node {
    /// The op.
    pub fn op(&self) -> &Op {
        &self.op
    }
    /// The inputs, in the op's order.
    pub fn inputs(&self) -> &[Tensor] {
        &self.inputs
    }
}

/// Attach `op` to `out` when recording is on and any input requires a gradient.
pub(crate) fn record(out: Tensor, inputs: &[&Tensor], op: impl FnOnce() -> Op) -> Tensor {
    if is_grad_enabled() && inputs.iter().any(|t| t.requires_grad()) {
        let node = Node {
            op: op(),
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
            versions: inputs.iter().map(|t| t.version()).collect(),
            out_version: out.version(),
        };
        *out.node() = Some(node);
        out.mark_requires_grad();
    }
    out
}

/// Fail when a tensor that `node`'s arm reads (an input, or `out`, the tensor the node made) was written in
/// place after the op ran; or when an input's values, as this op read them, are not the ones the input's own op
/// made: they were changed in place through another handle on the same storage (a reshape/view, a detach, the
/// base of a view) before this op ran, and that input's node does not describe them (PyTorch rebases views;
/// bigcore refuses to differentiate through them rather than give a wrong gradient).
fn check_versions(node: &Node, out: &Tensor) -> Result<()> {
    for (input, &read_at) in node.inputs.iter().zip(&node.versions) {
        let made_at = input.node().as_ref().map(|n| n.out_version);
        if let Some(made_at) = made_at.filter(|&m| m != read_at) {
            return Err(Error::autograd(
                "backward",
                format!(
                    "`{}` read a {} tensor of shape {:?} at version {read_at}, but its op made it at version \
                     {made_at}: it was modified in place through another tensor sharing its storage (a \
                     reshape/view, a detach, or the base of a view) in between, and bigcore does not rebase \
                     views, so backward through it would be wrong. Hint: clone() it before the in-place write, or \
                     write out of place",
                    node.op.name(),
                    input.dtype(),
                    input.shape(),
                ),
            ));
        }
    }
    let (inputs, reads_out) = backward::saved(&node.op, &node.inputs);
    let stale = inputs
        .into_iter()
        .map(|i| (&node.inputs[i], node.versions[i], format!("input {i}")))
        .chain(reads_out.then(|| (out, node.out_version, "the output".to_string())))
        .find(|(t, saved, _)| t.version() != *saved);
    match stale {
        None => Ok(()),
        Some((t, saved, which)) => Err(Error::autograd(
            "backward",
            format!(
                "one of the variables needed for gradient computation has been modified by an inplace operation: \
                 [{} tensor of shape {:?}], which is {which} of `{}`, is at version {}; expected version {saved} \
                 instead. Hint: compute it out of place (`x = x + y`, not `x += y`), or clone it before the \
                 in-place write",
                t.dtype(),
                t.shape(),
                node.op.name(),
                t.version()
            ),
        )),
    }
}

/// The tensors reachable from `root` through recorded ops, each before its inputs.
fn topological(root: &Tensor) -> Vec<Tensor> {
    let mut seen = HashSet::new();
    let mut post = Vec::new();
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, done)) = stack.pop() {
        if done {
            post.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        let inputs = t.node().as_ref().map(|n| n.inputs.clone()).unwrap_or_default();
        stack.push((t, true));
        for i in inputs {
            if i.requires_grad() && !seen.contains(&i.id()) {
                stack.push((i, false));
            }
        }
    }
    post.reverse();
    post
}

/// Compute gradients of `root` with respect to every leaf that requires one, adding them into the leaves'
/// `.grad`. `gradient` is d(loss)/d(root); it may be omitted for a one-element root.
///
/// # Errors
/// `Autograd` when `root` does not require grad, when a non-scalar root has no `gradient`, or when the graph
/// was already freed by an earlier `backward` without `retain_graph`; `Shape` for a mismatched `gradient`.
pub fn backward(root: &Tensor, gradient: Option<&Tensor>, retain_graph: bool) -> Result<()> {
    if !root.requires_grad() {
        return Err(Error::autograd("backward", "the tensor does not require grad and has no grad_fn"));
    }
    let g = match gradient {
        Some(g) if g.shape() != root.shape() => {
            return Err(Error::shape(
                "backward",
                format!("gradient has shape {:?} but the tensor has shape {:?}", g.shape(), root.shape()),
            ))
        }
        Some(g) => g.to_dtype(root.dtype())?.detach(),
        None if root.numel() != 1 => {
            return Err(Error::autograd(
                "backward",
                format!(
                    "grad can be implicitly created only for scalar outputs; \
                     pass `gradient` for a tensor of shape {:?}",
                    root.shape()
                ),
            ))
        }
        None => crate::ops::full(root.shape(), 1.0, root.dtype())?,
    };
    let order = topological(root);
    let _guard = NoGradGuard::new();
    let mut grads: HashMap<u64, Tensor> = HashMap::new();
    grads.insert(root.id(), g);
    for t in &order {
        let Some(g) = grads.remove(&t.id()) else { continue };
        if t.node().is_none() {
            {
                let mut slot = t.grad_slot();
                *slot = Some(match slot.take() {
                    Some(old) => old.add(&g)?,
                    None => g,
                });
            }
            // The leaf's gradient is final (topological order brought every contribution before it). No lock
            // of `t` is held while its hooks run: they read `t.grad` and may call anything.
            hooks::run(t)?;
            continue;
        }
        let node = t.node();
        let Some(node) = node.as_ref() else { continue };
        if let Op::Freed(name) = node.op {
            return Err(Error::autograd(
                "backward",
                format!(
                    "trying to backward through the graph a second time (through `{name}`); its saved values were \
                     freed by the first backward. Pass retain_graph=True to the first call if you need to"
                ),
            ));
        }
        check_versions(node, t)?;
        let input_grads = backward::arm(&node.op, &node.inputs, t, &g)?;
        for (input, gi) in node.inputs.iter().zip(input_grads) {
            let Some(gi) = gi else { continue };
            if !input.requires_grad() {
                continue;
            }
            debug_assert_eq!(gi.shape(), input.shape(), "gradient shape of `{}`", node.op.name());
            let gi = gi.to_dtype(input.dtype())?;
            let acc = match grads.remove(&input.id()) {
                Some(prev) => prev.add(&gi)?,
                None => gi,
            };
            grads.insert(input.id(), acc);
        }
    }
    if !retain_graph {
        for t in &order {
            if let Some(node) = t.node().as_mut() {
                let name = node.op.name();
                node.op = Op::Freed(name);
                node.inputs.clear();
            }
        }
    }
    Ok(())
}
