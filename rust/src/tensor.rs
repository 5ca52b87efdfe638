//! The [`Tensor`] type: a shape, a dtype, shared contiguous storage, and (for tensors made by a recorded op)
//! the autograd node that made it. No math lives here.
//!
//! Storage is always contiguous and row-major; movement ops that cannot share it (permute, slice, expand) copy.
//! `reshape` and `detach` share storage, as in PyTorch. Each storage carries a version counter that every write
//! through [`Tensor::storage_mut`] bumps, so autograd can tell a value it saved from one changed in place since.

use crate::autograd::Node;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::shape;
use crate::storage::Storage;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A cheap, clonable handle to an n-dimensional array.
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    id: u64,
    shape: Vec<usize>,
    dtype: DType,
    storage: Arc<Cell>,
    requires_grad: AtomicBool,
    grad: Mutex<Option<Tensor>>,
    /// The op that made this tensor; `None` for leaves.
    pub(crate) node: Mutex<Option<Node>>,
}

/// The elements and their version: the number of in-place writes so far, shared by every tensor on the storage.
struct Cell {
    data: RwLock<Storage>,
    version: AtomicU64,
}

impl Drop for Inner {
    /// The last tensor holding a large storage hands its buffer to the cache of freed buffers (`recycle.rs`).
    ///
    /// The graph below the tensor is freed in a loop, not by recursion: dropping a node drops its inputs, and a
    /// chain of 100,000 recorded ops (`total = total + loss` in a training loop) would otherwise recurse once per
    /// op and overflow the stack. Every input this tensor held the last reference to gives its own node's inputs
    /// to the loop before it is dropped, so no drop here reaches more than one level below.
    fn drop(&mut self) {
        if let Some(cell) = Arc::get_mut(&mut self.storage) {
            let s = cell.data.get_mut().unwrap_or_else(|e| e.into_inner());
            if s.capacity_bytes() >= crate::recycle::MIN_BYTES {
                crate::recycle::give(std::mem::replace(s, Storage::Bool(Vec::new())));
            }
        }
        crate::autograd::hooks::forget(self.id);
        let Some(node) = self.node.get_mut().unwrap_or_else(|e| e.into_inner()).take() else { return };
        let mut pending = node.inputs;
        while let Some(mut t) = pending.pop() {
            // `get_mut` succeeds only for the last reference, so a node another tensor still reaches stays whole
            if let Some(inner) = Arc::get_mut(&mut t.0) {
                if let Some(n) = inner.node.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
                    pending.extend(n.inputs);
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while holding it; the data is still whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tensor {
    /// A tensor owning `storage`, of `shape`. The caller guarantees `storage.len() == numel(shape)`.
    pub(crate) fn from_storage(storage: Storage, shape: Vec<usize>) -> Tensor {
        debug_assert_eq!(storage.len(), shape.iter().product::<usize>());
        Tensor(Arc::new(Inner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            dtype: storage.dtype(),
            shape,
            storage: Arc::new(Cell { data: RwLock::new(storage), version: AtomicU64::new(0) }),
            requires_grad: AtomicBool::new(false),
            grad: Mutex::new(None),
            node: Mutex::new(None),
        }))
    }

    /// A tensor sharing `src`'s storage with a new shape of the same element count.
    pub(crate) fn share_storage(src: &Tensor, shape: Vec<usize>) -> Tensor {
        Tensor(Arc::new(Inner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            dtype: src.0.dtype,
            shape,
            storage: src.0.storage.clone(),
            requires_grad: AtomicBool::new(false),
            grad: Mutex::new(None),
            node: Mutex::new(None),
        }))
    }

    /// A tensor from a vector of elements and a shape.
    ///
    /// # Errors
    /// `Shape` when `data.len()` is not the product of `shape`.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let n = shape::numel("tensor", shape, std::mem::size_of::<T>())?;
        if n != data.len() {
            return Err(Error::shape("tensor", format!("{} elements cannot have shape {shape:?}", data.len())));
        }
        Ok(Tensor::from_storage(T::into_storage(data), shape.to_vec()))
    }

    /// A 0-dimensional tensor holding `value`.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor::from_storage(T::into_storage(vec![value]), vec![])
    }

    /// A unique id, stable for the tensor's life (used to key gradients and traces).
    pub fn id(&self) -> u64 {
        self.0.id
    }
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.0.shape.len()
    }
    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.0.shape.iter().product()
    }
    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    /// Read access to the elements.
    pub fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.data.read().unwrap_or_else(|e| e.into_inner())
    }
    /// Write access to the elements, for in-place updates (optimizers, `nn.init`, the `_` ops). Every tensor
    /// sharing the storage sees them, and the storage's [`version`](Tensor::version) goes up by one.
    pub fn storage_mut(&self) -> RwLockWriteGuard<'_, Storage> {
        let guard = self.0.storage.data.write().unwrap_or_else(|e| e.into_inner());
        self.0.storage.version.fetch_add(1, Ordering::Relaxed);
        guard
    }
    /// How many times the storage was written in place (PyTorch's `_version`), shared by every tensor on it.
    pub fn version(&self) -> u64 {
        self.0.storage.version.load(Ordering::Relaxed)
    }
    /// True when no other tensor handle shares this one's storage (nor this handle itself is shared), so its
    /// elements may be moved out.
    pub(crate) fn is_sole_owner(&self) -> bool {
        Arc::strong_count(&self.0) == 1 && Arc::strong_count(&self.0.storage) == 1
    }
    /// True when `self` and `other` share storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }
    /// A copy of the elements as a `Vec<T>`.
    ///
    /// # Errors
    /// `DType` when `T` is not the tensor's dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let s = self.storage();
        let src = T::slice(&s)
            .ok_or_else(|| Error::dtype("to_vec", format!("tensor is {}, asked for {}", self.dtype(), T::DTYPE)))?;
        // allocated fallibly: a copy of a huge tensor (numpy(), tolist()) is a MemoryError, not an abort
        let mut v = crate::storage::try_with_capacity("to_vec", self.shape(), src.len())?;
        v.extend_from_slice(src);
        Ok(v)
    }
    /// The single element of a one-element tensor, as f64.
    ///
    /// # Errors
    /// `InvalidArgument` when the tensor does not hold exactly one element.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "item",
                format!(
                    "a tensor with {} elements (shape {:?}) cannot be converted to a scalar",
                    self.numel(),
                    self.shape()
                ),
            ));
        }
        let s = self.storage();
        Ok(crate::with_any!(self.dtype(), T => s.as_slice::<T>()[0].to_f64()))
    }

    /// Whether gradients flow to or through this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }
    /// Mark a leaf as needing a gradient (or not).
    ///
    /// # Errors
    /// `DType` for non-float tensors; `Autograd` when turning it off on a non-leaf.
    pub fn set_requires_grad(&self, on: bool) -> Result<()> {
        if on && !self.dtype().is_float() {
            return Err(Error::dtype(
                "requires_grad_",
                format!("only float32 and float64 tensors can require gradients, not {}", self.dtype()),
            ));
        }
        if !on && !self.is_leaf() {
            return Err(Error::autograd(
                "requires_grad_",
                "you can only change requires_grad of leaf tensors; use detach() for a non-leaf",
            ));
        }
        self.0.requires_grad.store(on, Ordering::Relaxed);
        Ok(())
    }
    pub(crate) fn mark_requires_grad(&self) {
        self.0.requires_grad.store(true, Ordering::Relaxed);
    }
    /// True when no recorded op made this tensor.
    pub fn is_leaf(&self) -> bool {
        lock(&self.0.node).is_none()
    }
    /// The accumulated gradient of a leaf.
    pub fn grad(&self) -> Option<Tensor> {
        lock(&self.0.grad).clone()
    }
    /// Replace (or clear) the gradient.
    ///
    /// # Errors
    /// `Shape`/`DType` when the gradient does not match the tensor.
    pub fn set_grad(&self, g: Option<Tensor>) -> Result<()> {
        if let Some(g) = &g {
            if g.dtype() != self.dtype() {
                return Err(Error::dtype(
                    "grad",
                    format!(
                        "assigned gradient of dtype {} (shape {:?}) to a tensor of dtype {} (shape {:?})",
                        g.dtype(),
                        g.shape(),
                        self.dtype(),
                        self.shape()
                    ),
                ));
            }
            if g.shape() != self.shape() {
                return Err(Error::shape(
                    "grad",
                    format!(
                        "assigned gradient of shape {:?} ({}) to a tensor of shape {:?} ({})",
                        g.shape(),
                        g.dtype(),
                        self.shape(),
                        self.dtype()
                    ),
                ));
            }
        }
        *lock(&self.0.grad) = g;
        Ok(())
    }
    pub(crate) fn grad_slot(&self) -> MutexGuard<'_, Option<Tensor>> {
        lock(&self.0.grad)
    }
    pub(crate) fn node(&self) -> MutexGuard<'_, Option<Node>> {
        lock(&self.0.node)
    }
    /// A tensor sharing this one's storage, cut off from the graph.
    pub fn detach(&self) -> Tensor {
        Tensor::share_storage(self, self.shape().to_vec())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor(shape={:?}, dtype={}, requires_grad={})", self.shape(), self.dtype(), self.requires_grad())
    }
}
