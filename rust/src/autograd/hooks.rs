//! Post-accumulate-grad hooks (PyTorch's `Tensor.register_post_accumulate_grad_hook`): functions called with a
//! leaf as soon as `backward` has finished adding into its `.grad`. Data-parallel training uses them to start
//! reducing a bucket of gradients the moment its last gradient is final, while the rest of the backward runs.
//!
//! The hooks live in one registry keyed by tensor id rather than on every tensor: few tensors ever have one, and
//! a backward with none registered pays one atomic load per leaf. A tensor's hooks are forgotten when it drops.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A function of the leaf whose gradient has just been accumulated; an error stops the backward.
pub type GradHook = Arc<dyn Fn(&Tensor) -> Result<()> + Send + Sync>;

/// Tensor id -> its hooks with their handles, in registration order.
type Registry = HashMap<u64, Vec<(u64, GradHook)>>;

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
/// How many tensors have hooks: zero means backward and drops skip the registry.
static TENSORS: AtomicUsize = AtomicUsize::new(0);
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

fn registry() -> MutexGuard<'static, Option<Registry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Call `hook` with `t` after every backward that accumulates into `t.grad`, after the hooks registered before
/// it. Returns a handle for [`remove`].
///
/// # Errors
/// `Autograd` when `t` is not a leaf that requires grad (only leaves accumulate gradients).
pub fn register(t: &Tensor, hook: GradHook) -> Result<u64> {
    if !t.requires_grad() || !t.is_leaf() {
        return Err(Error::autograd(
            "register_post_accumulate_grad_hook",
            "post accumulate grad hooks can only be registered on leaf tensors that require grad",
        ));
    }
    let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    let mut reg = registry();
    let hooks = reg.get_or_insert_with(HashMap::new).entry(t.id()).or_default();
    if hooks.is_empty() {
        TENSORS.fetch_add(1, Ordering::AcqRel);
    }
    hooks.push((handle, hook));
    Ok(handle)
}

/// Remove the hook of `handle`; false when it was already removed (or its tensor dropped).
pub fn remove(handle: u64) -> bool {
    let mut reg = registry();
    let Some(map) = reg.as_mut() else { return false };
    let Some((&id, hooks)) = map.iter_mut().find(|(_, hooks)| hooks.iter().any(|(h, _)| *h == handle)) else {
        return false;
    };
    hooks.retain(|(h, _)| *h != handle);
    if hooks.is_empty() {
        map.remove(&id);
        TENSORS.fetch_sub(1, Ordering::AcqRel);
    }
    true
}

/// Run `t`'s hooks in registration order (outside the registry's lock, so a hook may register or remove hooks).
pub(crate) fn run(t: &Tensor) -> Result<()> {
    if TENSORS.load(Ordering::Acquire) == 0 {
        return Ok(());
    }
    let hooks: Vec<GradHook> = match registry().as_ref().and_then(|m| m.get(&t.id())) {
        Some(hooks) => hooks.iter().map(|(_, h)| h.clone()).collect(),
        None => return Ok(()),
    };
    hooks.iter().try_for_each(|h| h(t))
}

/// Drop the hooks of the tensor `id` (called when it drops).
pub(crate) fn forget(id: u64) {
    if TENSORS.load(Ordering::Acquire) == 0 {
        return;
    }
    let removed = registry().as_mut().and_then(|m| m.remove(&id));
    if removed.is_some() {
        TENSORS.fetch_sub(1, Ordering::AcqRel);
    }
    // `removed` drops here, outside the lock: a hook's captured values may own tensors whose drops call forget
}
