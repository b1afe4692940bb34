//! The campus configuration file (`migrations/campus.toml`): the cluster, the buildings and
//! their meters' capacities, the attestors the oracle trusts, and the council's rules.
use std::path::{Path, PathBuf};

use registry::{BuildingKind, MeterCapacity};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampusConfig {
    pub name: String,
    pub cluster: Cluster,
    pub attestors: Attestors,
    pub council: CouncilRules,
    /// The oracle's reading limits (defaults: [`OracleTerms::default`]).
    #[serde(default)]
    pub oracle: OracleTerms,
    /// The market's parameters (defaults: [`MarketTerms::default`]).
    #[serde(default)]
    pub market: MarketTerms,
    /// Where the campus is and its clock (defaults: [`Site::default`], UTCC in Bangkok).
    #[serde(default)]
    pub site: Site,
    pub buildings: Vec<Building>,
}

/// Where the campus is: its sun follows local solar time at this place, its buildings'
/// working hours and days its civil time in this zone (the simulator), and its bridge,
/// report and console speak that zone. A `[site]` names all three (a partial one would
/// mix one campus's sun with another's clock); without one, the seeds' campus.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Degrees north (south negative).
    pub latitude_deg: f64,
    /// Degrees east (west negative).
    pub longitude_deg: f64,
    /// IANA time zone, e.g. "Asia/Bangkok", "America/Los_Angeles".
    pub time_zone: String,
}

impl Default for Site {
    /// The University of the Thai Chamber of Commerce (UTCC), Bangkok: the seeds' campus.
    fn default() -> Self {
        Site {
            latitude_deg: 13.7797,
            longitude_deg: 100.5601,
            time_zone: "Asia/Bangkok".into(),
        }
    }
}

impl Site {
    /// The zone's rules (the IANA database bundled with jiff: a host without
    /// /usr/share/zoneinfo answers the same).
    pub fn zone(&self) -> Result<jiff::tz::TimeZone, ConfigError> {
        jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|e| ConfigError::Invalid(format!("site: time zone {:?}: {e}", self.time_zone)))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(-90.0..=90.0).contains(&self.latitude_deg)
            || !(-180.0..=180.0).contains(&self.longitude_deg)
        {
            return Err(ConfigError::Invalid(
                "site: latitude_deg must be within -90..90 and longitude_deg within -180..180"
                    .into(),
            ));
        }
        self.zone().map(|_| ())
    }

    /// Seconds from UTC to local solar time at the site: four minutes per degree of
    /// longitude, plus the equation of time (the sun running ahead of or behind its mean by
    /// up to 16 minutes over the year; Spencer's series).
    pub fn solar_offset_s(&self, t: i64) -> f64 {
        // Days into the year (1 January 1970 was the first; leap days drift it by under a
        // day, which the sun's timing does not notice).
        let day_of_year = (t.div_euclid(86_400) as f64).rem_euclid(365.2425);
        let b = 2.0 * std::f64::consts::PI * day_of_year / 365.0;
        let equation_of_time_min = 229.18
            * (0.000075 + 0.001868 * b.cos()
                - 0.032077 * b.sin()
                - 0.014615 * (2.0 * b).cos()
                - 0.040849 * (2.0 * b).sin());
        self.longitude_deg * 240.0 + equation_of_time_min * 60.0
    }
}

/// A clock in a campus's time zone, resolved once.
#[derive(Clone, Debug)]
pub struct CampusTime {
    zone: jiff::tz::TimeZone,
}

impl CampusTime {
    pub fn new(site: &Site) -> Result<CampusTime, ConfigError> {
        Ok(CampusTime { zone: site.zone()? })
    }

    /// Seconds the zone is ahead of UTC at Unix time `t` (daylight saving included).
    pub fn utc_offset_s(&self, t: i64) -> i64 {
        match jiff::Timestamp::from_second(t) {
            Ok(ts) => i64::from(self.zone.to_offset(ts).seconds()),
            Err(_) => 0,
        }
    }

    /// `t` as local wall-clock seconds (what a local calendar and clock show, counted as if
    /// it were UTC: midnight is a multiple of 86,400).
    pub fn local(&self, t: i64) -> i64 {
        t + self.utc_offset_s(t)
    }

    /// The zone's abbreviation at `t` (e.g. "+07", "PDT").
    pub fn abbreviation(&self, t: i64) -> String {
        match jiff::Timestamp::from_second(t) {
            Ok(ts) => self.zone.to_offset_info(ts).abbreviation().to_string(),
            Err(_) => "UTC".into(),
        }
    }
}

/// Where the programs run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// `localnet`, `devnet`, ... (as Anchor names clusters).
    pub name: String,
    pub rpc_url: String,
}

/// The bridges whose signatures the oracle accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestors {
    /// Ed25519 public keys, base58, as each bridge reports at `GET /v1/status`.
    pub keys: Vec<String>,
    /// Distinct attestor signatures a batch needs.
    pub quorum: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouncilRules {
    pub threshold: u8,
    pub timelock_seconds: u32,
    /// The members' public keys (base58). Empty: the migration takes the keys of the member
    /// keypairs it is given (a development campus).
    #[serde(default)]
    pub members: Vec<String>,
    /// Members who may pause a program at once (base58).
    #[serde(default)]
    pub guardians: Vec<String>,
    /// A guardian's pause lapses after this unless a proposal extends it (default 72 h).
    #[serde(default = "CouncilRules::default_max_guardian_pause_s")]
    pub max_guardian_pause_s: u32,
    /// The same guardian may pause the same program again only after this (default 7 days).
    #[serde(default = "CouncilRules::default_guardian_cooldown_s")]
    pub guardian_cooldown_s: u32,
}

impl CouncilRules {
    pub fn default_max_guardian_pause_s() -> u32 {
        72 * 3600
    }

    pub fn default_guardian_cooldown_s() -> u32 {
        7 * 86_400
    }
}

/// The oracle's limits on readings (`oracle::ReadingLimits`), as the file writes them.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OracleTerms {
    pub max_future_skew_s: u32,
    pub min_interval_s: u32,
    pub max_age_s: u32,
    pub tolerance_bps: u16,
}

impl Default for OracleTerms {
    /// A minute of clock skew, readings a minute apart at least and a day old at most, 10 %
    /// above capacity x time.
    fn default() -> Self {
        OracleTerms {
            max_future_skew_s: 60,
            min_interval_s: 60,
            max_age_s: 86_400,
            tolerance_bps: 1_000,
        }
    }
}

impl OracleTerms {
    pub fn limits(&self) -> oracle::ReadingLimits {
        oracle::ReadingLimits {
            max_future_skew_s: self.max_future_skew_s,
            min_interval_s: self.min_interval_s,
            max_age_s: self.max_age_s,
            tolerance_bps: self.tolerance_bps,
        }
    }
}

/// The market's parameters (`trading::MarketParams`) and quote token, as the file writes
/// them. Prices are in the quote token's base units per kWh; the ladder runs from
/// `min_price` to `max_price` in steps of `price_tick` (at most 512 steps).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MarketTerms {
    pub interval_s: u32,
    pub price_tick: u64,
    pub min_price: u64,
    pub max_price: u64,
    pub fee_bps: u16,
    pub min_quantity_wh: u64,
    /// An interval's gate closes this many seconds before it starts.
    pub gate_lead_s: u32,
    /// Orders may be placed up to this many intervals ahead of the open one.
    pub horizon: u8,
    /// The quote token's mint (base58). Unset: a development campus, whose migration makes
    /// its own quote token.
    pub quote_mint: Option<String>,
}

impl Default for MarketTerms {
    /// 15-minute intervals whose gate closes at their start, orders up to 4 intervals ahead,
    /// prices from 0.001 to 0.512 quote token per kWh (6 decimals) in steps of 0.001, a 0.5 %
    /// fee, orders of 100 Wh at least.
    fn default() -> Self {
        MarketTerms {
            interval_s: 900,
            price_tick: 1_000,
            min_price: 1_000,
            max_price: 512_000,
            fee_bps: 50,
            min_quantity_wh: 100,
            gate_lead_s: 0,
            horizon: 4,
            quote_mint: None,
        }
    }
}

impl MarketTerms {
    /// The program's parameters; `None` when the ladder is not whole steps or too long.
    pub fn params(&self) -> Option<trading::MarketParams> {
        let span = self.max_price.checked_sub(self.min_price)?;
        if self.price_tick == 0 || span % self.price_tick != 0 {
            return None;
        }
        let ticks = u16::try_from(span / self.price_tick + 1).ok()?;
        Some(trading::MarketParams {
            interval_s: self.interval_s,
            price_tick: self.price_tick,
            min_price: self.min_price,
            ticks,
            fee_bps: self.fee_bps,
            min_quantity_wh: self.min_quantity_wh,
            gate_lead_s: self.gate_lead_s,
            horizon: self.horizon,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Building {
    pub code: String,
    pub kind: Kind,
    pub generation_kw: u64,
    pub storage_kwh: u64,
    /// Peak battery discharge power, kW.
    pub max_discharge_kw: u64,
    pub max_import_kw: u64,
}

/// `registry::BuildingKind` as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Kind {
    Academic,
    Residential,
    Administrative,
    Athletic,
    Research,
    Support,
}

impl From<Kind> for BuildingKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Academic => BuildingKind::Academic,
            Kind::Residential => BuildingKind::Residential,
            Kind::Administrative => BuildingKind::Administrative,
            Kind::Athletic => BuildingKind::Athletic,
            Kind::Research => BuildingKind::Research,
            Kind::Support => BuildingKind::Support,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Building {
    /// The capacity in the registry's units (W, Wh); `None` if it overflows.
    pub fn capacity(&self) -> Option<MeterCapacity> {
        Some(MeterCapacity {
            generation_w: self.generation_kw.checked_mul(1000)?,
            storage_wh: self.storage_kwh.checked_mul(1000)?,
            max_import_w: self.max_import_kw.checked_mul(1000)?,
            max_discharge_w: self.max_discharge_kw.checked_mul(1000)?,
        })
    }
}

impl CampusConfig {
    /// Where the binaries look by default: relative to the working directory (the
    /// repository root), never a path of the machine that built them.
    pub fn default_path() -> PathBuf {
        PathBuf::from("migrations/campus.toml")
    }

    /// The campus shipped in this source tree (`migrations/campus.toml`), wherever the tests
    /// run from.
    pub fn in_repository() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(Self::default_path())
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: CampusConfig = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The checks the programs would make, made before anything is sent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.name.is_empty() || self.name.len() > registry::Campus::MAX_NAME_LEN {
            return invalid(format!(
                "campus name must be 1 to {} bytes",
                registry::Campus::MAX_NAME_LEN
            ));
        }
        if self.attestors.keys.len() > 8
            || (!self.attestors.keys.is_empty()
                && usize::from(self.attestors.quorum) > self.attestors.keys.len())
            || self.attestors.quorum == 0
        {
            return invalid(
                "attestors: at most 8 keys and a quorum between 1 and their number".into(),
            );
        }
        for key in &self.attestors.keys {
            if parse_pubkey(key).is_none() {
                return invalid(format!("attestor key {key:?} is not a base58 public key"));
            }
        }
        for key in self.council.members.iter().chain(&self.council.guardians) {
            if parse_pubkey(key).is_none() {
                return invalid(format!("council key {key:?} is not a base58 public key"));
            }
        }
        if let Some(mint) = &self.market.quote_mint {
            if parse_pubkey(mint).is_none() {
                return invalid(format!(
                    "market quote_mint {mint:?} is not a base58 public key"
                ));
            }
        }
        if self.oracle.limits().validate().is_err() {
            return invalid("oracle: limits out of range".into());
        }
        if self.market.params().is_none_or(|p| p.validate().is_err()) {
            return invalid(
                "market: parameters out of range (a ladder of at most 1,024 whole steps, fee at most 10 %, horizon 1 to 7)"
                    .into(),
            );
        }
        self.site.validate()?;
        if self.buildings.is_empty() {
            return invalid("the campus has no buildings".into());
        }
        if self.buildings.len() > usize::from(u16::MAX) {
            return invalid(format!(
                "{} buildings: the registry numbers at most {}",
                self.buildings.len(),
                u16::MAX
            ));
        }
        let mut codes = std::collections::HashSet::with_capacity(self.buildings.len());
        for b in &self.buildings {
            if !codes.insert(b.code.as_str()) {
                return invalid(format!("building code {} appears twice", b.code));
            }
            let capacity = b
                .capacity()
                .ok_or_else(|| ConfigError::Invalid(format!("{}: capacity overflows", b.code)))?;
            if capacity.validate().is_err() {
                return invalid(format!("{}: capacity out of range", b.code));
            }
        }
        Ok(())
    }

    pub fn total_generation_kw(&self) -> u64 {
        self.buildings.iter().map(|b| b.generation_kw).sum()
    }

    pub fn total_storage_kwh(&self) -> u64 {
        self.buildings.iter().map(|b| b.storage_kwh).sum()
    }
}

/// Most a generated building's capacities differ from its template's, per cent.
pub const GENERATED_SPREAD_PERCENT: u64 = 15;

/// The text of a campus of `n` buildings modelled on a template campus file (`template_text`,
/// parsed as `template`): every setting of the file is kept (its comments too), and its
/// buildings are replaced by `n` buildings that take the template's in turn, so the mix of
/// kinds and sizes is the template's (the 25 of the university, 400 times each for 10,000).
/// Each is named `<template code>-<copy>` (unique; the simulator's profiles go by the kind
/// and the code's prefix) and has its capacities varied by up to ±15 % from its template's,
/// deterministically in `seed`, as real buildings of one kind differ.
pub fn generated_campus(
    template_text: &str,
    template: &CampusConfig,
    n: usize,
    seed: u64,
) -> Result<String, ConfigError> {
    if n == 0 || n > usize::from(u16::MAX) {
        return Err(ConfigError::Invalid(format!(
            "a generated campus has 1 to {} buildings, not {n}",
            u16::MAX
        )));
    }
    if template.buildings.is_empty() {
        return Err(ConfigError::Invalid("the template has no buildings".into()));
    }
    let settings = match template_text.find("[[buildings]]") {
        Some(at) => &template_text[..at],
        None => template_text,
    };
    let mut out = String::with_capacity(settings.len() + n * 140);
    out.push_str(settings.trim_end());
    out.push_str(&format!(
        "\n\n# {n} buildings generated from the template's {} (generated_campus, seed {seed}).\n",
        template.buildings.len()
    ));
    let mut state = seed;
    let mut next = || {
        // splitmix64: deterministic, no dependency.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    // A factor in [100 - spread, 100 + spread] per cent.
    let mut vary = |value: u64| -> u64 {
        let percent = 100 - GENERATED_SPREAD_PERCENT + next() % (2 * GENERATED_SPREAD_PERCENT + 1);
        (value * percent / 100).max(1)
    };
    let per_template = template.buildings.len();
    for i in 0..n {
        let t = &template.buildings[i % per_template];
        let copy = i / per_template + 1;
        out.push_str(&format!(
            "\n[[buildings]]\ncode = \"{}-{copy:04}\"\nkind = \"{:?}\"\ngeneration_kw = {}\nstorage_kwh = {}\nmax_discharge_kw = {}\nmax_import_kw = {}\n",
            t.code,
            t.kind,
            vary(t.generation_kw),
            vary(t.storage_kwh),
            vary(t.max_discharge_kw),
            vary(t.max_import_kw),
        ));
    }
    Ok(out)
}

/// A base58 public key, if `text` is one.
pub fn parse_pubkey(text: &str) -> Option<anchor_lang::prelude::Pubkey> {
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_names_its_place_and_zone_in_full() {
        let base = std::fs::read_to_string(CampusConfig::in_repository()).unwrap();
        let start = base.find("[site]").unwrap();
        let end = base[start..].find("\n\n").unwrap() + start;
        let with = |site: &str| {
            let text = format!("{}{site}{}", &base[..start], &base[end..]);
            toml::from_str::<CampusConfig>(&text)
                .map_err(|e| e.to_string())
                .and_then(|c| c.validate().map(|_| c).map_err(|e| e.to_string()))
        };
        let stanford = with("[site]\nlatitude_deg = 37.43\nlongitude_deg = -122.17\ntime_zone = \"America/Los_Angeles\"").unwrap();
        assert_eq!(stanford.site.time_zone, "America/Los_Angeles");
        // No [site]: the seeds' campus.
        assert_eq!(with("").unwrap().site, Site::default());
        // A partial one is refused, not completed with Bangkok's values.
        let err = with("[site]\nlatitude_deg = 37.43\nlongitude_deg = -122.17").unwrap_err();
        assert!(err.contains("time_zone"), "{err}");
        let err = with(
            "[site]\nlatitude_deg = 37.43\nlongitude_deg = -122.17\ntime_zone = \"Mars/Olympus\"",
        )
        .unwrap_err();
        assert!(err.contains("Mars/Olympus"), "{err}");
        let err = with("[site]\nlatitude_deg = 97.0\nlongitude_deg = 0.0\ntime_zone = \"UTC\"")
            .unwrap_err();
        assert!(err.contains("latitude_deg"), "{err}");
        // Bangkok: UTC+7 all year; solar noon 12:18-ish on its clocks (100.56 E and the
        // equation of time within 17 minutes).
        let bkk = CampusTime::new(&Site::default()).unwrap();
        assert_eq!(bkk.utc_offset_s(1_782_086_400), 7 * 3600);
        let solar = Site::default().solar_offset_s(1_782_086_400);
        assert!((solar - 100.5601 * 240.0).abs() < 17.0 * 60.0, "{solar}");
    }

    #[test]
    fn default_campus_has_the_25_buildings() {
        let config = CampusConfig::load(&CampusConfig::in_repository()).unwrap();
        assert_eq!(config.buildings.len(), 25);
        assert_eq!(config.total_generation_kw(), 1_120);
        assert_eq!(config.total_storage_kwh(), 684);
        let gym = config.buildings.iter().find(|b| b.code == "GYM").unwrap();
        assert_eq!(gym.kind, Kind::Athletic);
        assert_eq!(
            gym.capacity(),
            Some(MeterCapacity {
                generation_w: 80_000,
                storage_wh: 60_000,
                max_import_w: 160_000,
                max_discharge_w: 30_000,
            })
        );
        let count = |k| config.buildings.iter().filter(|b| b.kind == k).count();
        assert_eq!(
            [
                Kind::Academic,
                Kind::Residential,
                Kind::Administrative,
                Kind::Athletic,
                Kind::Research,
                Kind::Support
            ]
            .map(count),
            [8, 6, 4, 3, 2, 2]
        );
    }

    #[test]
    fn duplicate_codes_are_refused() {
        let mut config = CampusConfig::load(&CampusConfig::in_repository()).unwrap();
        config.buildings[1].code = config.buildings[0].code.clone();
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(m)) if m.contains("twice")));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = toml::from_str::<CampusConfig>("name = \"x\"\ncolour = 1\n[council]\nthreshold = 1\ntimelock_seconds = 0\nbuildings = []");
        assert!(err.is_err());
    }

    #[test]
    fn attestors_are_checked() {
        let mut config = CampusConfig::load(&CampusConfig::in_repository()).unwrap();
        assert_eq!(config.cluster.name, "localnet");
        assert_eq!(config.attestors.quorum, 1);
        config.attestors.keys = vec!["not a key".into()];
        assert!(config.validate().is_err());
        config.attestors.keys = vec!["EsBoZvjvba2DKd6uoiKssseWpPYKkabLNfaeLBBPSP6i".into()];
        assert!(config.validate().is_ok());
        config.attestors.quorum = 2;
        assert!(config.validate().is_err());
    }

    /// 10,000 buildings from the university's 25: every setting kept, codes unique, the mix
    /// of kinds the template's, each capacity within the spread of its template's, the same
    /// campus for the same seed.
    #[test]
    fn a_generated_campus_keeps_the_templates_mix_at_any_size() {
        let path = CampusConfig::in_repository();
        let text = std::fs::read_to_string(&path).unwrap();
        let template = CampusConfig::load(&path).unwrap();
        let generated = generated_campus(&text, &template, 10_000, 7).unwrap();
        let campus: CampusConfig = toml::from_str(&generated).unwrap();
        campus.validate().unwrap();
        assert_eq!(campus.buildings.len(), 10_000);
        assert_eq!(campus.name, template.name);
        assert_eq!(campus.market.params(), template.market.params());
        let count = |c: &CampusConfig, k: Kind| c.buildings.iter().filter(|b| b.kind == k).count();
        for kind in [
            Kind::Academic,
            Kind::Residential,
            Kind::Administrative,
            Kind::Athletic,
            Kind::Research,
            Kind::Support,
        ] {
            assert_eq!(
                count(&campus, kind),
                400 * count(&template, kind),
                "{kind:?}"
            );
        }
        let within = |v: u64, t: u64| {
            let (lo, hi) = (
                t * (100 - GENERATED_SPREAD_PERCENT) / 100,
                t * (100 + GENERATED_SPREAD_PERCENT) / 100,
            );
            (lo.max(1)..=hi.max(1)).contains(&v)
        };
        let mut varied = 0;
        for (i, b) in campus.buildings.iter().enumerate() {
            let t = &template.buildings[i % 25];
            assert_eq!(b.code, format!("{}-{:04}", t.code, i / 25 + 1));
            assert_eq!(b.kind, t.kind);
            assert!(within(b.generation_kw, t.generation_kw), "{}", b.code);
            assert!(within(b.storage_kwh, t.storage_kwh), "{}", b.code);
            assert!(within(b.max_discharge_kw, t.max_discharge_kw), "{}", b.code);
            assert!(within(b.max_import_kw, t.max_import_kw), "{}", b.code);
            varied += usize::from(b.generation_kw != t.generation_kw);
        }
        assert!(
            varied > 9_000,
            "{varied} of 10,000 differ from their template"
        );
        assert_eq!(
            generated,
            generated_campus(&text, &template, 10_000, 7).unwrap()
        );
        assert_ne!(
            generated,
            generated_campus(&text, &template, 10_000, 8).unwrap()
        );
        for n in [0, 65_536] {
            assert!(generated_campus(&text, &template, n, 7).is_err());
        }
    }
}
