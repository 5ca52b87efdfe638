//! Element types: the [`DType`] tag, the [`Element`] trait that ties a Rust type to its storage variant,
//! and the [`Float`] trait the math kernels are generic over (f32 fast path, f64 for exact checks).

use crate::storage::Storage;
use std::fmt;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float: the default and the fast path.
    F32,
    /// 64-bit float: exact checks.
    F64,
    /// 64-bit signed integer: indices and token ids.
    I64,
    /// Boolean: comparison results and masks.
    Bool,
}

impl DType {
    /// The PyTorch-style name (`float32`, `float64`, `int64`, `bool`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I64 => "int64",
            DType::Bool => "bool",
        }
    }
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }
    /// True for float32 and float64.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
    /// The dtype two operands are computed in, as PyTorch promotes tensors of equal rank.
    pub fn promote(a: DType, b: DType) -> DType {
        use DType::*;
        match (a, b) {
            (F64, _) | (_, F64) => F64,
            (F32, _) | (_, F32) => F32,
            (I64, _) | (_, I64) => I64,
            _ => Bool,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that can be stored in a tensor.
pub trait Element: Copy + Send + Sync + PartialOrd + fmt::Debug + 'static {
    /// The dtype tag of this type.
    const DTYPE: DType;
    /// The slice inside `s`, or `None` when `s` holds another dtype.
    fn slice(s: &Storage) -> Option<&[Self]>;
    /// The mutable slice inside `s`, or `None` when `s` holds another dtype.
    fn slice_mut(s: &mut Storage) -> Option<&mut [Self]>;
    /// Wrap a vector into storage.
    fn into_storage(v: Vec<Self>) -> Storage;
    /// The vector inside `s`, or `None` when `s` holds another dtype.
    fn from_storage(s: Storage) -> Option<Vec<Self>>;
    /// Zero (false for bool).
    fn zero() -> Self;
    /// Convert to f64 (true is 1).
    fn to_f64(self) -> f64;
    /// Convert from f64 (ints truncate toward zero; bool is `x != 0`).
    fn from_f64(x: f64) -> Self;
}

macro_rules! element {
    ($t:ty, $variant:ident, $zero:expr, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn slice(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn slice_mut(s: &mut Storage) -> Option<&mut [Self]> {
                match s {
                    Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$variant(v)
            }
            fn from_storage(s: Storage) -> Option<Vec<Self>> {
                match s {
                    Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn zero() -> Self {
                $zero
            }
            fn to_f64(self) -> f64 {
                ($to)(self)
            }
            fn from_f64(x: f64) -> Self {
                ($from)(x)
            }
        }
    };
}

element!(f32, F32, 0.0, |x: f32| x as f64, |x: f64| x as f32);
element!(f64, F64, 0.0, |x: f64| x, |x: f64| x);
element!(i64, I64, 0, |x: i64| x as f64, |x: f64| x as i64);
element!(bool, Bool, false, |x: bool| if x { 1.0 } else { 0.0 }, |x: f64| x != 0.0);

/// The floating point types the math kernels are generic over.
pub trait Float:
    Element
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::MulAssign
    + std::iter::Sum
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Negative infinity (the identity of max).
    const NEG_INFINITY: Self;
    /// Positive infinity (the identity of min).
    const INFINITY: Self;
    /// `e^x`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// The error function.
    fn erf(self) -> Self;
    /// `self^e`.
    fn powf(self, e: Self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Larger of two; NaN if either is NaN.
    fn max_nan(self, o: Self) -> Self;
    /// Smaller of two; NaN if either is NaN.
    fn min_nan(self, o: Self) -> Self;
    /// True for NaN.
    fn is_nan(self) -> bool;
    /// `self * a + b`, fused where the instruction set has FMA.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// The slice as `f32` when `Self` is `f32`: generic kernels take their SIMD path (`crate::simd`) through it
    /// and keep the plain loop for `f64`, which exists for exact checks.
    fn as_f32(s: &[Self]) -> Option<&[f32]>;
    /// The mutable slice as `f32` when `Self` is `f32`.
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]>;
}

macro_rules! float {
    ($t:ident, $erf:path, $as_f32:expr, $as_f32_mut:expr) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            const INFINITY: Self = $t::INFINITY;
            #[inline(always)]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $t::tanh(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                $t::powf(self, e)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn max_nan(self, o: Self) -> Self {
                if self.is_nan() || o.is_nan() {
                    $t::NAN
                } else if o > self {
                    o
                } else {
                    self
                }
            }
            #[inline(always)]
            fn min_nan(self, o: Self) -> Self {
                if self.is_nan() || o.is_nan() {
                    $t::NAN
                } else if o < self {
                    o
                } else {
                    self
                }
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $t::mul_add(self, a, b)
            }
            #[inline(always)]
            fn as_f32(s: &[Self]) -> Option<&[f32]> {
                ($as_f32)(s)
            }
            #[inline(always)]
            fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]> {
                ($as_f32_mut)(s)
            }
        }
    };
}

float!(f32, libm::erff, Some, Some);
float!(f64, libm::erf, |_| None, |_| None);

/// Run `$body` with `$T` bound to the Rust float type of `$dt`, or return a dtype error naming `$op`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_float {
    ($dt:expr, $op:expr, $T:ident => $body:expr) => {
        match $dt {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            other => {
                return Err($crate::Error::dtype($op, format!("expected a float32 or float64 tensor, got {other}")))
            }
        }
    };
}

/// Run `$body` with `$T` bound to the Rust type of `$dt` (any dtype).
#[macro_export]
#[doc(hidden)]
macro_rules! with_any {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::DType::Bool => {
                type $T = bool;
                $body
            }
        }
    };
}
