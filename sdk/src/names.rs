//! The programs' names for their instructions and errors, read from the IDLs in the
//! repository (what `anchor idl build` writes; CI checks they are current): for metrics,
//! logs and the command line, which show `submit_readings` rather than a discriminator.
use std::collections::HashMap;
use std::sync::LazyLock;

use anchor_lang::prelude::Pubkey;

const IDLS: [&str; 5] = [
    include_str!("../../idl/registry.json"),
    include_str!("../../idl/oracle.json"),
    include_str!("../../idl/energy_token.json"),
    include_str!("../../idl/trading.json"),
    include_str!("../../idl/governance.json"),
];

#[derive(Default)]
struct Names {
    programs: HashMap<Pubkey, &'static str>,
    instructions: HashMap<(Pubkey, [u8; 8]), &'static str>,
    errors: HashMap<(Pubkey, u32), &'static str>,
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

static NAMES: LazyLock<Names> = LazyLock::new(|| {
    let mut names = Names::default();
    for idl in IDLS {
        let v: serde_json::Value = serde_json::from_str(idl).expect("the IDLs are JSON");
        let Some(program) = v["address"].as_str().and_then(|a| a.parse().ok()) else {
            continue;
        };
        if let Some(name) = v["metadata"]["name"].as_str() {
            names.programs.insert(program, leak(name));
        }
        for ix in v["instructions"].as_array().into_iter().flatten() {
            let disc: Option<[u8; 8]> = ix["discriminator"]
                .as_array()
                .and_then(|d| {
                    d.iter()
                        .map(|b| b.as_u64().map(|b| b as u8))
                        .collect::<Option<Vec<u8>>>()
                })
                .and_then(|d| d.try_into().ok());
            if let (Some(disc), Some(name)) = (disc, ix["name"].as_str()) {
                names.instructions.insert((program, disc), leak(name));
            }
        }
        for e in v["errors"].as_array().into_iter().flatten() {
            if let (Some(code), Some(name)) = (e["code"].as_u64(), e["name"].as_str()) {
                names.errors.insert((program, code as u32), leak(name));
            }
        }
    }
    names
});

/// The program's name (`oracle`, `trading`, ...), for one of the five.
pub fn program(program: &Pubkey) -> Option<&'static str> {
    NAMES.programs.get(program).copied()
}

/// The name of the instruction `data` encodes for `program` (its first 8 bytes).
pub fn instruction(program: &Pubkey, data: &[u8]) -> Option<&'static str> {
    let disc: [u8; 8] = data.get(..8)?.try_into().ok()?;
    NAMES.instructions.get(&(*program, disc)).copied()
}

/// The name of `program`'s error `code` (6000 + variant).
pub fn error(program: &Pubkey, code: u32) -> Option<&'static str> {
    NAMES.errors.get(&(*program, code)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idls_name_instructions_errors_and_programs() {
        let submit = crate::ix::oracle::submit_readings(Pubkey::new_unique(), 1, &[[1u8; 20]]);
        assert_eq!(
            instruction(&oracle::ID, &submit.data),
            Some("submit_readings")
        );
        assert_eq!(instruction(&trading::ID, &submit.data), None);
        assert_eq!(instruction(&oracle::ID, &[1, 2]), None);
        assert_eq!(error(&oracle::ID, 6000), Some("Unauthorized"));
        assert_eq!(error(&oracle::ID, 1), None);
        assert_eq!(program(&trading::ID), Some("trading"));
        assert_eq!(program(&Pubkey::new_unique()), None);
    }
}
