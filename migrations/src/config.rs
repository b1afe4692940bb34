//! The `migrate` binary's settings (a TOML file, then `GRIDTOKENX_MIGRATE_<KEY>`
//! environment variables, then defaults), and the plan they make.
//!
//! Keys live in `keys_dir` (default `~/.config/gridtokenx/campus-keys`, outside the
//! repository) as Solana CLI keypair files, readable by their owner only (a key file that
//! others can read is refused): `owners/<CODE>.json`, the wallet of each building's owner, who co-signs its
//! meter's registration; `council/*.json`, the council members who sign here
//! (propose and approve the hand-over); `quote-mint.json`, a development quote token's
//! address. `dev_keys` makes whichever of them is missing (a development cluster);
//! otherwise a missing owner key stops the run before anything is sent.
use std::path::{Path, PathBuf};

use anchor_lang::prelude::Pubkey;
use anyhow::{anyhow, bail, ensure, Context, Result};
use governance::CouncilConfig;
use sdk::campus::parse_pubkey;
use sdk::CampusConfig;
use serde::Deserialize;
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::migrate::{Plan, PlannedMeter};

pub const ENV_PREFIX: &str = "GRIDTOKENX_MIGRATE_";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MigrateConfig {
    /// The cluster's JSON-RPC endpoint; the campus file's `cluster.rpc_url` if unset.
    pub rpc_url: Option<String>,
    /// The deploy wallet: the programs' upgrade authority, which the initialisers require,
    /// and the payer of every step.
    pub wallet: PathBuf,
    /// The campus file.
    pub campus_config: PathBuf,
    /// The campus PKI (`campus-pki`): each building's device certificate names its meter.
    pub pki_dir: PathBuf,
    /// The owners' and council members' keypairs (see the module's documentation).
    pub keys_dir: PathBuf,
    /// Make missing owner, council and quote-mint keys (a development cluster only).
    pub dev_keys: bool,
    /// Lamports each council member signing here is topped up to from the wallet (their
    /// proposals' rent); 0 leaves their balances alone.
    pub fund_council_lamports: u64,
    /// Lamports each building owner is topped up to from the wallet (the owner pays its
    /// meter's rent when it co-signs the registration, and later its orders' fees): a
    /// development cluster's owners have nothing else; 0 leaves their balances alone.
    pub fund_owners_lamports: u64,
    /// When the market's interval 0 starts (Unix seconds); the current interval's start if
    /// unset. Read only when the market is created.
    pub market_start: Option<i64>,
    /// Deploy the programs first, from this directory (`<lib>.so`, and `<lib>-keypair.json`
    /// for a program whose account does not exist yet), as `anchor build` leaves
    /// `target/deploy`; unset: the programs are deployed already.
    pub programs_dir: Option<PathBuf>,
    /// Room a deployed program gets for later upgrades, in percent of its size.
    pub program_headroom_percent: u32,
}

impl Default for MigrateConfig {
    fn default() -> Self {
        MigrateConfig {
            rpc_url: None,
            wallet: PathBuf::from("~/.config/solana/id.json"),
            campus_config: CampusConfig::default_path(),
            pki_dir: certs::Layout::default_dir(),
            keys_dir: PathBuf::from("~/.config/gridtokenx/campus-keys"),
            dev_keys: false,
            fund_council_lamports: 0,
            fund_owners_lamports: 0,
            market_start: None,
            programs_dir: None,
            program_headroom_percent: 25,
        }
    }
}

impl MigrateConfig {
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<MigrateConfig> {
        let table =
            sdk::settings::overlay(file, env, ENV_PREFIX, &["config", "log_format", "dry_run"])?;
        let config: MigrateConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow!("migrate configuration: {e}"))?;
        Ok(config.expanded())
    }

    /// The settings with `~/` expanded in every path.
    pub fn expanded(mut self) -> MigrateConfig {
        use sdk::settings::expand_home;
        self.wallet = expand_home(&self.wallet);
        self.campus_config = expand_home(&self.campus_config);
        self.pki_dir = expand_home(&self.pki_dir);
        self.keys_dir = expand_home(&self.keys_dir);
        self.programs_dir = self.programs_dir.map(|d| expand_home(&d));
        self
    }

    pub fn rpc_url(&self, campus: &CampusConfig) -> String {
        self.rpc_url
            .clone()
            .unwrap_or_else(|| campus.cluster.rpc_url.clone())
    }
}

/// What the plan needs besides the chain: the campus, and the keys found (or made).
pub struct Keys {
    pub owners: Vec<(String, Keypair)>,
    pub council: Vec<Keypair>,
    pub quote_mint: QuoteMint,
    /// The key files this load made (or, previewing, would make).
    pub made: Vec<PathBuf>,
}

/// The market's quote token: named by the campus file, or a development token of our own.
pub enum QuoteMint {
    Named(Pubkey),
    /// Created by the migration at this keypair's address if missing.
    Dev(Keypair),
}

impl QuoteMint {
    pub fn address(&self) -> Pubkey {
        match self {
            QuoteMint::Named(p) => *p,
            QuoteMint::Dev(k) => k.pubkey(),
        }
    }
}

/// What to do about a missing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Leave it missing (a dry run, or keys that must come from their holders).
    Leave,
    /// Make a new one (`dev_keys`: a development cluster).
    Make,
    /// Stand one in for this run without writing it (a dry run with `dev_keys`).
    Preview,
}

/// Refuses a key file that anyone but its owner can read.
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .permissions()
        .mode();
    ensure!(
        mode & 0o077 == 0,
        "key file {} is readable by others (mode {:o}): chmod 600 it",
        path.display(),
        mode & 0o777
    );
    Ok(())
}

/// Reads the keypair at `path`, or makes one there: written to a temporary file (mode 0600)
/// in a directory only its owner can enter, fsync'd, then renamed, so that a crash leaves
/// either no key or a whole one.
pub(crate) fn keypair_at(path: &Path, missing: Missing) -> Result<Option<Keypair>> {
    if path.exists() {
        check_private(path)?;
        return sdk::settings::read_keypair(path).map(Some);
    }
    match missing {
        Missing::Leave => return Ok(None),
        Missing::Preview => return Ok(Some(Keypair::new())),
        Missing::Make => {}
    }
    let key = Keypair::new();
    sdk::settings::write_private_keypair(path, &key)?;
    Ok(Some(key))
}

/// Development council size when the campus file names no members.
const DEV_COUNCIL: usize = 3;

impl Keys {
    /// The keys in `config.keys_dir` for `campus`'s buildings and council; with `dev_keys`
    /// and `Missing::Make`, missing ones are made.
    pub fn load(config: &MigrateConfig, campus: &CampusConfig, missing: Missing) -> Result<Keys> {
        ensure!(
            !config.dev_keys || !is_mainnet(campus),
            "dev_keys makes keys for a development cluster; the campus file names {}",
            campus.cluster.name
        );
        let missing = if config.dev_keys {
            missing
        } else {
            Missing::Leave
        };
        let dir = config.keys_dir.clone();
        let mut owners = Vec::new();
        let mut absent = Vec::new();
        let mut made = Vec::new();
        for b in &campus.buildings {
            let path = dir.join("owners").join(format!("{}.json", b.code));
            if !path.exists() && missing != Missing::Leave {
                made.push(path.clone());
            }
            match keypair_at(&path, missing)? {
                Some(k) => owners.push((b.code.clone(), k)),
                None => absent.push(path.display().to_string()),
            }
        }
        if !absent.is_empty() {
            bail!(
                "no owner key for {} building(s) ({}{}): each owner co-signs its meter's \
                 registration; put their keypairs there, or set dev_keys on a development cluster",
                absent.len(),
                absent[..absent.len().min(3)].join(", "),
                if absent.len() > 3 { ", ..." } else { "" }
            );
        }
        let council_dir = dir.join("council");
        let mut council = Vec::new();
        if council_dir.is_dir() {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(&council_dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            paths.sort();
            for path in paths {
                check_private(&path)?;
                council.push(sdk::settings::read_keypair(&path)?);
            }
        }
        if council.is_empty() && campus.council.members.is_empty() && missing != Missing::Leave {
            for i in 0..DEV_COUNCIL {
                let path = council_dir.join(format!("member-{i}.json"));
                made.push(path.clone());
                council.push(keypair_at(&path, missing)?.expect("made"));
            }
        }
        let quote_mint = match &campus.market.quote_mint {
            Some(mint) => QuoteMint::Named(parse_pubkey(mint).expect("validated")),
            None => {
                let path = dir.join("quote-mint.json");
                if !path.exists() && missing != Missing::Leave {
                    made.push(path.clone());
                }
                match keypair_at(&path, missing)? {
                    Some(k) => QuoteMint::Dev(k),
                    None => bail!(
                        "the campus file names no market quote_mint: set [market] quote_mint to \
                         the campus's quote token, or dev_keys on a development cluster"
                    ),
                }
            }
        };
        Ok(Keys {
            owners,
            council,
            quote_mint,
            made,
        })
    }
}

/// Whether the campus file names Solana's mainnet.
fn is_mainnet(campus: &CampusConfig) -> bool {
    campus.cluster.name.starts_with("mainnet") || campus.cluster.rpc_url.contains("mainnet")
}

/// The plan for `campus`: its meters (named by their device certificates in `pki_dir`),
/// trusting the campus file's attestors, with the council it names (or, when it names none,
/// the members whose keys are given).
pub fn plan<'a>(
    campus: &'a CampusConfig,
    pki_dir: &Path,
    keys: Keys,
    market_start: i64,
) -> Result<Plan<'a>> {
    ensure!(
        !campus.attestors.keys.is_empty(),
        "the campus file trusts no attestor: add each bridge's key (its GET /v1/status \
         `attestor`, as base58) to [attestors] keys"
    );
    let layout = certs::Layout::new(pki_dir);
    let mut meters = Vec::new();
    for (code, owner) in keys.owners {
        let path = layout.meter_cert(&code);
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("device certificate of {code}: {}", path.display()))?;
        let der = certs::pem_to_der(&pem, &path)?;
        meters.push(PlannedMeter {
            code,
            lfdi: sdk::identity::lfdi_from_certificate(&der),
            owner,
        });
    }
    let members: Vec<Pubkey> = if campus.council.members.is_empty() {
        keys.council.iter().map(|k| k.pubkey()).collect()
    } else {
        campus
            .council
            .members
            .iter()
            .map(|m| parse_pubkey(m).expect("validated"))
            .collect()
    };
    ensure!(
        !members.is_empty(),
        "the campus file names no council members and no member keys are in keys_dir/council"
    );
    Ok(Plan {
        campus,
        meters,
        attestors: campus
            .attestors
            .keys
            .iter()
            .map(|k| parse_pubkey(k).expect("validated"))
            .collect(),
        limits: campus.oracle.limits(),
        council: CouncilConfig {
            members,
            guardians: campus
                .council
                .guardians
                .iter()
                .map(|g| parse_pubkey(g).expect("validated"))
                .collect(),
            threshold: campus.council.threshold,
            timelock_seconds: campus.council.timelock_seconds,
            max_guardian_pause_s: campus.council.max_guardian_pause_s,
            guardian_cooldown_s: campus.council.guardian_cooldown_s,
        },
        quote_mint: keys.quote_mint.address(),
        market: campus.market.params().expect("validated"),
        market_start,
        council_signers: keys.council,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campus() -> CampusConfig {
        let mut c = CampusConfig::load(&CampusConfig::in_repository()).unwrap();
        c.attestors.keys = vec!["EsBoZvjvba2DKd6uoiKssseWpPYKkabLNfaeLBBPSP6i".into()];
        c
    }

    #[test]
    fn settings_come_from_the_file_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("migrate.toml");
        std::fs::write(&file, "keys_dir = \"/srv/keys\"\ndev_keys = true\n").unwrap();
        let config = MigrateConfig::load(
            Some(&file),
            [(
                "GRIDTOKENX_MIGRATE_RPC_URL".to_string(),
                "http://h:1".to_string(),
            )],
        )
        .unwrap();
        assert_eq!(config.keys_dir, PathBuf::from("/srv/keys"));
        assert!(config.dev_keys);
        assert_eq!(config.rpc_url(&campus()), "http://h:1");
        assert_eq!(
            MigrateConfig::default().rpc_url(&campus()),
            "http://127.0.0.1:8899"
        );
        let err = MigrateConfig::load(
            None,
            [("GRIDTOKENX_MIGRATE_COLOUR".to_string(), "red".to_string())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err:#}");
    }

    #[test]
    fn missing_owner_keys_stop_the_run_unless_dev_keys_makes_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = MigrateConfig {
            keys_dir: dir.path().join("keys"),
            ..MigrateConfig::default()
        };
        let err = Keys::load(&config, &campus(), Missing::Make)
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("no owner key for 25 building(s)"), "{err}");
        config.dev_keys = true;
        let keys = Keys::load(&config, &campus(), Missing::Make).unwrap();
        assert_eq!(keys.owners.len(), 25);
        assert_eq!(keys.council.len(), DEV_COUNCIL);
        let owner = dir.path().join("keys/owners/ENG.json");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&owner).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A key file others can read is refused.
        std::fs::set_permissions(&owner, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keys::load(&config, &campus(), Missing::Make)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("readable by others (mode 644)"), "{err}");
        std::fs::set_permissions(&owner, std::fs::Permissions::from_mode(0o600)).unwrap();
        // The key directory is its owner's only.
        let dir_mode = std::fs::metadata(dir.path().join("keys/owners"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        // A second load finds the same keys.
        config.dev_keys = false;
        let again = Keys::load(&config, &campus(), Missing::Make).unwrap();
        assert_eq!(again.owners[0].1.pubkey(), keys.owners[0].1.pubkey());
        assert_eq!(again.quote_mint.address(), keys.quote_mint.address());
        assert_eq!(again.council.len(), DEV_COUNCIL);
    }

    #[test]
    fn a_plan_needs_an_attestor_and_names_meters_by_their_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let config = MigrateConfig {
            keys_dir: dir.path().join("keys"),
            dev_keys: true,
            ..MigrateConfig::default()
        };
        let mut campus = campus();
        let keys = Keys::load(&config, &campus, Missing::Make).unwrap();
        let err = plan(&campus, &dir.path().join("pki"), keys, 0)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("device certificate of ENG"), "{err}");
        campus.attestors.keys.clear();
        let keys = Keys::load(&config, &campus, Missing::Make).unwrap();
        let err = plan(&campus, &dir.path().join("pki"), keys, 0)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("trusts no attestor"), "{err}");
    }
}
