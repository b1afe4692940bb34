//! Pricing (`/tp/...`): the campus tariff, one TariffProfile with an import and an export
//! RateComponent, a TimeTariffInterval per market interval (cleared, or indicative before
//! clearing) with its one ConsumptionTariffInterval. Every device sees the same tariff.
use super::{list_page, Page, Refusal, Reply, Service};
use crate::market::{self, RC_EXPORT, RC_IMPORT};
use crate::store::market::PricePoint;

impl Service {
    /// `/tp/...`: `rest` after `tp`.
    pub(super) fn pricing(
        &self,
        rest: &[&str],
        query: Option<&str>,
        now: i64,
    ) -> Result<Reply, Refusal> {
        let t = &self.settings.tariff;
        let reader = self.store.read()?;
        let stored = reader.market()?;
        let market = stored.as_ref();
        // Every published price: only for the lists and the counts their links carry.
        let points = || -> Result<Vec<PricePoint>, Refusal> {
            Ok(match market {
                Some(_) => reader.price_points()?,
                None => Vec::new(),
            })
        };
        let rc_of = |s: &str| -> Result<u8, Refusal> {
            let rc: u8 = s.parse().map_err(|_| Refusal::NotFound)?;
            if rc == RC_IMPORT || rc == RC_EXPORT {
                Ok(rc)
            } else {
                Err(Refusal::NotFound)
            }
        };
        // The interval in effect now: the active list.
        let active = |p: &&PricePoint| {
            market.is_some_and(|m| {
                m.start_of(p.interval)
                    .is_some_and(|s| s <= now && s.saturating_add(i64::from(m.interval_s)) > now)
            })
        };
        Ok(Reply::xml(match rest {
            [] => {
                let page = Page::parse(query)?;
                let mut item = market::tariff_profile(market, t);
                item.xmlns = None;
                let items = list_page(vec![item], &page);
                sep2::to_xml(
                    "TariffProfileList",
                    &sep2::market::TariffProfileList {
                        xmlns: sep2::NS.into(),
                        all: 1,
                        href: "/tp".into(),
                        results: items.len() as u32,
                        subscribable: 0,
                        poll_rate: 900,
                        items,
                    },
                )
            }
            ["0"] => {
                let mut item = market::tariff_profile(market, t);
                item.xmlns = sep2::with_ns();
                sep2::to_xml("TariffProfile", &item)
            }
            ["0", "rc"] => {
                let page = Page::parse(query)?;
                let points = points()?;
                let n = points.len() as u32;
                let a = points.iter().filter(active).count() as u32;
                // mRID descending: the export component's mRID is the greater.
                let items = list_page(
                    vec![
                        market::rate_component(RC_EXPORT, n, a, t),
                        market::rate_component(RC_IMPORT, n, a, t),
                    ],
                    &page,
                );
                sep2::to_xml(
                    "RateComponentList",
                    &sep2::market::RateComponentList {
                        xmlns: sep2::NS.into(),
                        all: 2,
                        href: "/tp/0/rc".into(),
                        results: items.len() as u32,
                        items,
                    },
                )
            }
            ["0", "rc", r] => {
                let rc = rc_of(r)?;
                let points = points()?;
                let a = points.iter().filter(active).count() as u32;
                let mut item = market::rate_component(rc, points.len() as u32, a, t);
                item.xmlns = sep2::with_ns();
                sep2::to_xml("RateComponent", &item)
            }
            ["0", "rc", r, "rt"] => {
                sep2::to_xml("ReadingType", &market::rate_reading_type(rc_of(r)?))
            }
            ["0", "rc", r, list @ ("tti" | "acttti")] => {
                let rc = rc_of(r)?;
                let page = Page::parse(query)?;
                let Some(m) = market else {
                    return Ok(Reply::xml(tti_list(rc, list, 0, Vec::new())));
                };
                // Interval start ascending (one interval per start); `a`: starts from it on.
                let points = points()?;
                let chosen: Vec<&PricePoint> = points
                    .iter()
                    .filter(|p| *list == "tti" || active(p))
                    .filter(|p| {
                        page.after
                            .is_none_or(|a| m.start_of(p.interval).is_some_and(|s| s >= a))
                    })
                    .collect();
                let all = chosen.len() as u32;
                let items = list_page(
                    chosen
                        .into_iter()
                        .map(|p| market::time_tariff_interval(m, rc, p, now, t))
                        .collect(),
                    &page,
                );
                tti_list(rc, list, all, items)
            }
            ["0", "rc", r, "tti", k, tail @ ..] => {
                let rc = rc_of(r)?;
                let k: u64 = k.parse().map_err(|_| Refusal::NotFound)?;
                let m = market.ok_or(Refusal::NotFound)?;
                let p = &reader.price_point(k)?.ok_or(Refusal::NotFound)?;
                match tail {
                    [] => {
                        let mut item = market::time_tariff_interval(m, rc, p, now, t);
                        item.xmlns = sep2::with_ns();
                        sep2::to_xml("TimeTariffInterval", &item)
                    }
                    ["cti"] => {
                        let page = Page::parse(query)?;
                        let items = list_page(
                            vec![market::consumption_tariff_interval(m, rc, p, t)],
                            &page,
                        );
                        sep2::to_xml(
                            "ConsumptionTariffIntervalList",
                            &sep2::market::ConsumptionTariffIntervalList {
                                xmlns: sep2::NS.into(),
                                all: 1,
                                href: format!("/tp/0/rc/{rc}/tti/{k}/cti"),
                                results: items.len() as u32,
                                items,
                            },
                        )
                    }
                    ["cti", "1"] => {
                        let mut item = market::consumption_tariff_interval(m, rc, p, t);
                        item.xmlns = sep2::with_ns();
                        sep2::to_xml("ConsumptionTariffInterval", &item)
                    }
                    _ => return Err(Refusal::NotFound),
                }
            }
            _ => return Err(Refusal::NotFound),
        }))
    }
}

fn tti_list(rc: u8, list: &str, all: u32, items: Vec<sep2::market::TimeTariffInterval>) -> String {
    sep2::to_xml(
        "TimeTariffIntervalList",
        &sep2::market::TimeTariffIntervalList {
            xmlns: sep2::NS.into(),
            all,
            href: format!("/tp/0/rc/{rc}/{list}"),
            results: items.len() as u32,
            subscribable: 0,
            items,
        },
    )
}
