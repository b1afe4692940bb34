//! Emitting Anchor events so that native tests see them too.
//!
//! On SBF, `emit_event!` is exactly Anchor's `emit!` (`sol_log_data`, recorded by the runtime
//! as `Program data: <base64>`). Anchor 1.2 compiles `sol_log_data` to nothing on the host,
//! so the programs' events would be invisible to the native test suite; there the macro goes
//! through the host syscall stubs instead, which the test harness routes to the
//! transaction's log.

/// Emits an Anchor event (see the module documentation).
#[macro_export]
macro_rules! emit_event {
    ($event:expr) => {{
        #[cfg(target_os = "solana")]
        {
            anchor_lang::prelude::emit!($event);
        }
        #[cfg(not(target_os = "solana"))]
        {
            $crate::events::host_log_data(&anchor_lang::Event::data(&$event));
        }
    }};
}

/// The host (non-SBF) path of `emit_event!`.
#[cfg(not(target_os = "solana"))]
pub fn host_log_data(data: &[u8]) {
    solana_sysvar::program_stubs::sol_log_data(&[data]);
}
