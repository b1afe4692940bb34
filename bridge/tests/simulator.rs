//! The simulator's meters against a real bridge over mutual TLS: what they post is what the
//! bridge stores, and they ride out a bridge restart.
mod common;

use bridge::normalize::Flow;
use common::*;
use simulator::meter::SimulatedMeter;
use simulator::profile::BuildingModel;
use simulator::runner::{Campus, SimOptions};

const CODES: [&str; 5] = ["ENG", "DORM_001", "GYM", "MED", "DINING"];

fn campus_sim(b: &TestBridge, seed: u64) -> Campus {
    let config = campus();
    let place = simulator::profile::Place::new(&config.site).unwrap();
    let mut models = Vec::new();
    let mut meters = Vec::new();
    for (i, building) in config.buildings.iter().enumerate() {
        if CODES.contains(&building.code.as_str()) {
            models.push(BuildingModel::new(building, i, seed, &place));
            meters.push(SimulatedMeter::new(
                &building.code,
                &b.lfdi_hex(&building.code),
                b.meter(&building.code),
            ));
        }
    }
    Campus { models, meters }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_meters_post_what_their_models_measure() {
    let b = TestBridge::start().await;
    let mut sim = campus_sim(&b, 7);
    // Two hours ending now, in five-minute posts, as fast as the bridge answers.
    let start = (now() - 7_200) / 300 * 300;
    let options = SimOptions {
        start,
        duration_s: 7_200,
        post_rate_s: 300,
        speed: 0.0,
        progress_every_s: 0,
    };
    let summary = sim.run(&options).await.unwrap();

    let reader = b.running.service.store.read().unwrap();
    for building in &summary {
        // The site mirror's two registers, then 24 posts of two.
        assert_eq!(
            building.acknowledged.readings,
            2 + 24 * 2,
            "{}",
            building.code
        );
        let lfdi = b.lfdi_hex(&building.code);
        let import = reader.latest(&lfdi, Flow::Import).unwrap().unwrap();
        let export = reader.latest(&lfdi, Flow::Export).unwrap().unwrap();
        assert_eq!(
            (import.wh, export.wh),
            (building.registers.import_wh, building.registers.export_wh),
            "{}",
            building.code
        );
        assert_eq!(i64::from(import.timestamp), start + 7_200);
        assert!(building.registers.consumed_wh > 0);
    }
    assert_eq!(reader.readings().unwrap().len(), 5 * 50);

    // The same seed gives the same readings.
    let again = TestBridge::start().await;
    let mut sim = campus_sim(&again, 7);
    let repeat = sim.run(&options).await.unwrap();
    let registers = |s: &[simulator::runner::BuildingSummary]| {
        s.iter().map(|b| b.registers).collect::<Vec<_>>()
    };
    assert_eq!(registers(&summary), registers(&repeat));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_meters_survive_a_bridge_restart() {
    let b = TestBridge::start().await;
    let mut sim = campus_sim(&b, 11);
    let start = (now() - 10_800) / 300 * 300;
    // Three hours at 36 000x: about 0.3 s of real time, plus the bridge's answers.
    let options = SimOptions {
        start,
        duration_s: 10_800,
        post_rate_s: 300,
        speed: 36_000.0,
        progress_every_s: 0,
    };
    let run = tokio::spawn(async move {
        let summary = sim.run(&options).await;
        (summary, sim)
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let b = b.restart().await;
    let (summary, _) = run.await.unwrap();
    let summary = summary.expect("the simulation completes across the restart");
    let reader = b.running.service.store.read().unwrap();
    for building in &summary {
        assert_eq!(
            building.acknowledged.readings,
            2 + 36 * 2,
            "{}",
            building.code
        );
        let lfdi = b.lfdi_hex(&building.code);
        assert_eq!(
            reader.latest(&lfdi, Flow::Export).unwrap().unwrap().wh,
            building.registers.export_wh
        );
    }
}
