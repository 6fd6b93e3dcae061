//! Set-returning functions in materialize mode: rows go into the tuplestore
//! that InitMaterializedSRF sets up for the caller.

use crate::pg::error::{guard, PgResult};
use crate::pg::sys;

pub struct Rows {
    rsinfo: *mut sys::ReturnSetInfo,
}

impl Rows {
    /// Prepares the result tuplestore (the result type comes from the
    /// function's declaration).
    pub fn start(fcinfo: sys::FunctionCallInfo) -> PgResult<Self> {
        // SAFETY: called from an SRF's fmgr frame.
        guard(|| unsafe { sys::InitMaterializedSRF(fcinfo, 0) })?;
        // SAFETY: InitMaterializedSRF checked resultinfo is a ReturnSetInfo.
        let rsinfo = unsafe { (*fcinfo).resultinfo as *mut sys::ReturnSetInfo };
        Ok(Rows { rsinfo })
    }

    pub fn push(&mut self, values: &[sys::Datum], nulls: &[bool]) -> PgResult<()> {
        // SAFETY: values/nulls match the result descriptor's width.
        let (store, desc) = unsafe { ((*self.rsinfo).setResult, (*self.rsinfo).setDesc) };
        let (v, n) = (
            values.as_ptr() as *mut sys::Datum,
            nulls.as_ptr() as *mut bool,
        );
        guard(|| unsafe { sys::tuplestore_putvalues(store, desc, v, n) })
    }
}
