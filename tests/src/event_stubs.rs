//! Anchor events in native tests.
//!
//! A program's `emit!` calls `sol_log_data`, which the SBF runtime records in the
//! transaction's logs as `Program data: <base64>`. solana-program-test 3.1 runs native
//! programs through syscall stubs that print those calls to stdout instead, so tests could
//! not see events. This wrapper keeps program-test's stubs for everything else and sends
//! `sol_log_data` to the transaction log as `Program log: Program data: <base64>`, which
//! `events` reads like the real line.
use std::sync::Once;

use anchor_lang::prelude::{AccountInfo, Pubkey};
use anchor_lang::solana_program::entrypoint::ProgramResult;
use base64::Engine;
use solana_instruction::Instruction;
use solana_sysvar::program_stubs::{set_syscall_stubs, SyscallStubs};

struct EventStubs {
    inner: Box<dyn SyscallStubs>,
}

/// Installs the wrapper once program-test has installed its own stubs (at its first start).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Take program-test's stubs out, then put them back inside the wrapper.
        let inner = set_syscall_stubs(Box::new(Placeholder));
        set_syscall_stubs(Box::new(EventStubs { inner }));
    });
}

struct Placeholder;
impl SyscallStubs for Placeholder {}

impl SyscallStubs for EventStubs {
    fn sol_log(&self, message: &str) {
        self.inner.sol_log(message)
    }
    fn sol_log_compute_units(&self) {
        self.inner.sol_log_compute_units()
    }
    fn sol_remaining_compute_units(&self) -> u64 {
        self.inner.sol_remaining_compute_units()
    }
    fn sol_invoke_signed(
        &self,
        instruction: &Instruction,
        account_infos: &[AccountInfo],
        signers_seeds: &[&[&[u8]]],
    ) -> ProgramResult {
        self.inner
            .sol_invoke_signed(instruction, account_infos, signers_seeds)
    }
    fn sol_get_sysvar(
        &self,
        sysvar_id_addr: *const u8,
        var_addr: *mut u8,
        offset: u64,
        length: u64,
    ) -> u64 {
        self.inner
            .sol_get_sysvar(sysvar_id_addr, var_addr, offset, length)
    }
    fn sol_get_clock_sysvar(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_clock_sysvar(var_addr)
    }
    fn sol_get_epoch_schedule_sysvar(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_epoch_schedule_sysvar(var_addr)
    }
    fn sol_get_fees_sysvar(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_fees_sysvar(var_addr)
    }
    fn sol_get_rent_sysvar(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_rent_sysvar(var_addr)
    }
    fn sol_get_epoch_rewards_sysvar(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_epoch_rewards_sysvar(var_addr)
    }
    fn sol_get_last_restart_slot(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_last_restart_slot(var_addr)
    }
    fn sol_get_epoch_stake(&self, vote_address: *const u8) -> u64 {
        self.inner.sol_get_epoch_stake(vote_address)
    }
    unsafe fn sol_memcpy(&self, dst: *mut u8, src: *const u8, n: usize) {
        self.inner.sol_memcpy(dst, src, n)
    }
    unsafe fn sol_memmove(&self, dst: *mut u8, src: *const u8, n: usize) {
        self.inner.sol_memmove(dst, src, n)
    }
    unsafe fn sol_memcmp(&self, s1: *const u8, s2: *const u8, n: usize, result: *mut i32) {
        self.inner.sol_memcmp(s1, s2, n, result)
    }
    unsafe fn sol_memset(&self, s: *mut u8, c: u8, n: usize) {
        self.inner.sol_memset(s, c, n)
    }
    fn sol_get_return_data(&self) -> Option<(Pubkey, Vec<u8>)> {
        self.inner.sol_get_return_data()
    }
    fn sol_set_return_data(&self, data: &[u8]) {
        self.inner.sol_set_return_data(data)
    }
    fn sol_log_data(&self, fields: &[&[u8]]) {
        let b64 = base64::engine::general_purpose::STANDARD;
        let encoded: Vec<String> = fields.iter().map(|f| b64.encode(f)).collect();
        self.inner
            .sol_log(&format!("Program data: {}", encoded.join(" ")))
    }
    fn sol_get_processed_sibling_instruction(&self, index: usize) -> Option<Instruction> {
        self.inner.sol_get_processed_sibling_instruction(index)
    }
    fn sol_get_stack_height(&self) -> u64 {
        self.inner.sol_get_stack_height()
    }
}
