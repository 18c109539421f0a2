//! Resources: shared objects (a database pool, an HTTP client, a configuration) that assets
//! receive by type, configured once when the program starts.
//!
//! ```ignore
//! #[asset]
//! fn orders_raw(#[resource] db: &Db) -> Result<Vec<Order>, BoxError> { ... }
//!
//! fn main() -> std::process::ExitCode {
//!     orch::App::new().resource(Db::sqlite("orders.db")).main()
//! }
//! ```
//!
//! A `#[resource]` parameter is not a dependency edge. Every resource a run's assets need is
//! checked before the first asset starts; a missing one is an error naming the asset and the
//! type.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The type of a resource an asset takes, as the macro records it.
#[derive(Clone, Copy)]
pub struct ResourceKey {
    /// `TypeId::of::<T>`.
    pub type_id: fn() -> TypeId,
    /// `type_name::<T>`, for messages.
    pub type_name: fn() -> &'static str,
}

impl fmt::Debug for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str((self.type_name)())
    }
}

impl ResourceKey {
    /// The type's name without module paths (`Db` for `my_crate::db::Db`), for messages.
    pub fn short_name(&self) -> String {
        short_type_name((self.type_name)())
    }
}

/// `my_crate::db::Db<other::T>` → `Db<T>`.
pub fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    out
}

/// The configured resources, one value per type.
#[derive(Clone, Default)]
pub struct Resources {
    by_type: HashMap<TypeId, (&'static str, Arc<dyn Any + Send + Sync>)>,
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.by_type.values().map(|(n, _)| *n).collect();
        names.sort_unstable();
        f.debug_set().entries(names).finish()
    }
}

impl Resources {
    /// No resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` as the resource of type `T` (replacing an earlier one of that type).
    pub fn with<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.insert(value);
        self
    }

    /// Adds `value` as the resource of type `T` (replacing an earlier one of that type).
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.by_type.insert(
            TypeId::of::<T>(),
            (std::any::type_name::<T>(), Arc::new(value)),
        );
    }

    /// The resource of type `T`, if configured.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.by_type
            .get(&TypeId::of::<T>())
            .and_then(|(_, v)| v.downcast_ref::<T>())
    }

    /// Whether a resource of this type is configured.
    pub fn contains(&self, key: &ResourceKey) -> bool {
        self.by_type.contains_key(&(key.type_id)())
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.by_type.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }

    /// The configured types' short names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .by_type
            .values()
            .map(|(n, _)| short_type_name(n))
            .collect();
        names.sort();
        names
    }
}

/// An asset asked for a resource that is not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "resource `{resource}` is not configured: add it with `App::new().resource(...)` (or `Materialize::resources(...)` in a library run)"
)]
pub struct MissingResource {
    /// The resource type's short name.
    pub resource: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Db(&'static str);

    #[test]
    fn by_type_and_named_briefly() {
        let r = Resources::new().with(Db("orders.db")).with(42u32);
        assert_eq!(r.get::<Db>(), Some(&Db("orders.db")));
        assert_eq!(r.get::<u32>(), Some(&42));
        assert_eq!(r.get::<u64>(), None);
        let key = ResourceKey {
            type_id: TypeId::of::<Db>,
            type_name: std::any::type_name::<Db>,
        };
        assert!(r.contains(&key));
        assert_eq!(key.short_name(), "Db");
        assert_eq!(r.names(), ["Db", "u32"]);
        assert_eq!(
            short_type_name("alloc::sync::Arc<my::pool::Pool<my::Conn>>"),
            "Arc<Pool<Conn>>"
        );
    }
}
