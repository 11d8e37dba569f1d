//! The PhiException watch: valid exceptions into the cluster state (each decision compares
//! their expiry with its own time).

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::api::DynamicObject;
use kube::ResourceExt;

use super::{to_value, Ctx, Sink};

/// Keeps the valid PhiExceptions in the state. One that cannot be read is skipped and logged
/// (the webhook refuses writing such an exception, so this is only for ones written before
/// phi-guard was installed or while it was down).
pub(super) struct ExceptionSink {
    ctx: Ctx,
    items: BTreeMap<String, Arc<crate::policy::exception::Exception>>,
    buffer: BTreeMap<String, Arc<crate::policy::exception::Exception>>,
}

impl ExceptionSink {
    pub(super) fn new(ctx: Ctx) -> Self {
        ExceptionSink {
            ctx,
            items: BTreeMap::new(),
            buffer: BTreeMap::new(),
        }
    }

    fn read(
        &self,
        obj: &DynamicObject,
    ) -> Result<Arc<crate::policy::exception::Exception>, String> {
        let v = to_value(obj)?;
        let x: crate::policy::exception::PhiException =
            serde_json::from_value(v).map_err(|e| format!("not a valid PhiException: {e}"))?;
        crate::policy::exception::parse(&x).map(Arc::new)
    }
    fn publish(&self) {
        self.ctx
            .state
            .set_exceptions(self.items.values().cloned().collect());
        self.ctx.state.mark_dirty(None);
    }
}

impl Sink<DynamicObject> for ExceptionSink {
    fn init(&mut self) {
        self.buffer.clear();
    }
    fn init_apply(&mut self, obj: DynamicObject) -> Result<(), String> {
        let e = self.read(&obj)?;
        self.buffer.insert(obj.name_any(), e);
        Ok(())
    }
    fn init_done(&mut self) {
        self.items = std::mem::take(&mut self.buffer);
        self.publish();
    }
    fn apply(&mut self, obj: DynamicObject) -> Result<(), String> {
        let r = self.read(&obj);
        match r {
            Ok(e) => {
                self.items.insert(obj.name_any(), e);
                self.publish();
                Ok(())
            }
            Err(err) => {
                self.items.remove(&obj.name_any());
                self.publish();
                Err(err)
            }
        }
    }
    fn delete(&mut self, obj: DynamicObject) {
        self.items.remove(&obj.name_any());
        self.publish();
    }
}
