//! `io_manager = "memory"`: outputs kept in this process only (tests, cheap intermediates).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use orch_core::__private::Value;
use orch_core::{AssetKey, BoxError};

use super::{InputContext, IoManager, LoadError, OutputContext, Stored, Storing};

/// Keeps the latest output of each asset in memory; nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryIoManager {
    values: Mutex<HashMap<(AssetKey, Option<String>), Value>>,
}

impl IoManager for MemoryIoManager {
    fn handle_output(&self, ctx: &OutputContext<'_>, value: &Value) -> Result<Stored, BoxError> {
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                (ctx.key.clone(), ctx.partition.map(str::to_owned)),
                Arc::clone(value),
            );
        Ok(Stored::default())
    }

    /// Keeping a value costs a map insert: never worth a thread of its own.
    fn storing(&self, _: &OutputContext<'_>, _: &Value) -> Storing {
        Storing::Deferrable
    }

    fn load_input(&self, ctx: &InputContext<'_>) -> Result<Value, LoadError> {
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(ctx.key.clone(), ctx.partition.map(str::to_owned)))
            .cloned()
            .ok_or_else(|| LoadError::Missing {
                key: ctx.key.clone(),
                location: "memory (this process)".to_owned(),
            })
    }
}
