//! What standard IEEE 2030.5 / CSIP clients post, from raw fixtures (not our serializer): a
//! site meter mirroring power quality beside its energy registers, follow-up
//! MirrorMeterReadingLists without ReadingTypes, retries of a post whose reply was lost, the
//! running post period (start = now), DER mirrors beside the site's, and the limits on what
//! one device may make the bridge store; in-band registration, paging, HEAD, media types and
//! the campus time zone.
mod common;

use bridge::normalize::Flow;
use bridge::service::{MAX_MIRRORS_PER_DEVICE, MAX_READINGS_PER_POST};
use common::*;

const SITE_MUP: &str = include_str!("fixtures/csip_site_mup.xml");
const READINGS_LIST: &str = include_str!("fixtures/csip_readings_list.xml");
const IMPORT: &str = "5A0C0000000000000000000000000020";
const EXPORT: &str = "5A0C0000000000000000000000000021";
const POWER_QUALITY: [&str; 7] = [
    "5A0C0000000000000000000000000010",
    "5A0C0000000000000000000000000011",
    "5A0C0000000000000000000000000012",
    "5A0C0000000000000000000000000013",
    "5A0C0000000000000000000000000014",
    "5A0C0000000000000000000000000015",
    "5A0C0000000000000000000000000016",
];

fn fill(template: &str, lfdi: &str, t: i64, import: u64, export: u64) -> String {
    template
        .replace("{LFDI}", lfdi)
        .replace("{T}", &t.to_string())
        .replace("{IMPORT}", &import.to_string())
        .replace("{EXPORT}", &export.to_string())
}

/// The last whole minute: the fixtures' running period starts there and ends a postRate
/// (60 s, the test bridge's) later, possibly after now.
fn minute() -> i64 {
    let n = now();
    n - n % 60
}

#[tokio::test]
async fn a_site_meter_mirroring_power_quality_beside_its_energy_registers_is_accepted_and_attested()
{
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let lfdi = b.lfdi_hex("ENG");
    let t = minute() - 120;
    let r = eng
        .post("/mup", fill(SITE_MUP, &lfdi, t, 1_234_567, 89_000))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.location.expect("Location of the new mirror");

    {
        let reader = b.running.service.store.read().unwrap();
        let mirrors = reader.mirrors_of(&lfdi).unwrap();
        assert_eq!(mirrors.len(), 1);
        assert_eq!(
            mirrors[0].mup.mirror_meter_readings.len(),
            9,
            "every MirrorMeterReading is defined"
        );
        for mrid in POWER_QUALITY {
            let stored = reader.measurements(&lfdi, mrid).unwrap();
            assert_eq!(stored.len(), 1, "{mrid}");
            assert_eq!((stored[0].start, stored[0].end), (t as u32, t as u32 + 60));
        }
        let power = reader.measurements(&lfdi, POWER_QUALITY[0]).unwrap();
        assert_eq!((power[0].value, power[0].power), (-12_400, 0));
        let frequency = reader.measurements(&lfdi, POWER_QUALITY[2]).unwrap();
        assert_eq!((frequency[0].value, frequency[0].power), (5_001, -2));
        // The energy registers are the attested pair, not measurements.
        assert_eq!(
            reader.designated(&lfdi, Flow::Import).unwrap().as_deref(),
            Some(IMPORT)
        );
        assert_eq!(
            reader.designated(&lfdi, Flow::Export).unwrap().as_deref(),
            Some(EXPORT)
        );
        assert!(reader.measurements(&lfdi, IMPORT).unwrap().is_empty());
        assert_eq!(reader.readings().unwrap().len(), 2);
    }

    // The next post: a MirrorMeterReadingList without ReadingTypes.
    let r = eng
        .post(
            &location,
            fill(READINGS_LIST, &lfdi, t + 60, 1_234_600, 89_450),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let reader = b.running.service.store.read().unwrap();
    assert_eq!(reader.readings().unwrap().len(), 4);
    assert_eq!(
        reader.measurements(&lfdi, POWER_QUALITY[0]).unwrap().len(),
        2
    );
    assert_eq!(
        reader.measurements(&lfdi, POWER_QUALITY[1]).unwrap().len(),
        1,
        "var was not posted again"
    );
    let latest = reader.latest(&lfdi, Flow::Export).unwrap().unwrap();
    assert_eq!((latest.timestamp, latest.wh), (t as u32 + 120, 89_450));
    drop(reader);

    // The attestor signs the designated pair, and nothing of the rest.
    b.running
        .attestor
        .attest_once(now() + 60)
        .unwrap()
        .expect("a batch");
    let attested = b
        .running
        .service
        .store
        .read()
        .unwrap()
        .attested(&lfdi)
        .unwrap()
        .expect("ENG attested");
    assert_eq!(
        (attested.timestamp, attested.import_wh, attested.export_wh),
        (t as u32 + 120, 1_234_600, 89_450)
    );
}

/// A MirrorMeterReading of the export register with a MirrorReadingSet of `n` readings, one a
/// minute, ending at `end`.
fn reading_set_xml(mrid: &str, end: i64, n: usize, first_wh: u64) -> String {
    let mut readings = String::new();
    for i in 0..n {
        let start = end - 60 * (n - i) as i64;
        readings.push_str(&format!(
            "<Reading><timePeriod><duration>60</duration><start>{start}</start></timePeriod><value>{}</value></Reading>",
            first_wh + 10 * i as u64
        ));
    }
    format!(
        r#"<MirrorMeterReading xmlns="urn:ieee:std:2030.5:ns"><mRID>{mrid}</mRID><MirrorReadingSet><mRID>{mrid}01</mRID><timePeriod><duration>{}</duration><start>{}</start></timePeriod>{readings}</MirrorReadingSet></MirrorMeterReading>"#,
        60 * n,
        end - 60 * n as i64
    )
}

#[tokio::test]
async fn a_retried_post_is_accepted_again_and_changes_nothing() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let lfdi = b.lfdi_hex("ENG");
    let t = minute() - 600;
    let r = eng
        .post("/mup", fill(SITE_MUP, &lfdi, t, 1_000, 2_000))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.location.unwrap();
    let set = reading_set_xml(EXPORT, t + 60 + 300, 5, 2_010);
    let r = eng.post(&location, set.clone()).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let before = b.running.service.store.read().unwrap().readings().unwrap();
    assert_eq!(before.len(), 2 + 5);

    // The reply was lost: the client posts the same set again.
    let r = eng.post(&location, set).await.unwrap();
    assert_eq!(r.status, 204, "a retry is accepted: {}", r.body);
    let after = b.running.service.store.read().unwrap().readings().unwrap();
    assert_eq!(after, before, "and stores nothing twice");

    // The same times with other values are a conflict, refused whole.
    let r = eng
        .post(&location, reading_set_xml(EXPORT, t + 60 + 300, 5, 2_011))
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        b.running.service.store.read().unwrap().readings().unwrap(),
        before
    );

    // Power-quality readings are idempotent too.
    let again = fill(READINGS_LIST, &lfdi, t + 360, 2_100, 2_100);
    let r = eng.post(&location, again.clone()).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let r = eng.post(&location, again).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let reader = b.running.service.store.read().unwrap();
    assert_eq!(
        reader.measurements(&lfdi, POWER_QUALITY[0]).unwrap().len(),
        2
    );
}

#[tokio::test]
async fn the_running_period_is_accepted_but_a_period_starting_in_the_future_is_not() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let lfdi = b.lfdi_hex("ENG");
    // start = now, duration = postRate: the period ends after now.
    let t = now();
    let r = eng
        .post("/mup", fill(SITE_MUP, &lfdi, t, 10, 20))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.location.unwrap();
    let stored = b.running.service.store.read().unwrap().readings().unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[0].reading.timestamp,
        t as u32 + 60,
        "the period's end"
    );
    // Not attested before its time has come.
    assert!(b
        .running
        .attestor
        .attest_once(now() - 120)
        .unwrap()
        .is_none());

    // A period starting beyond the clock skew is refused whole.
    let r = eng
        .post(&location, fill(READINGS_LIST, &lfdi, now() + 600, 30, 40))
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("<reasonCode>"), "{}", r.body);
    assert_eq!(
        b.running
            .service
            .store
            .read()
            .unwrap()
            .readings()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_der_mirror_is_stored_but_only_the_site_registers_are_attested() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let lfdi = b.lfdi_hex("ENG");
    let t = minute() - 120;
    // The DER's own mirror (roleFlags isMirror | isDER) with Wh registers, posted first.
    let der = fill(SITE_MUP, &lfdi, t, 500, 700)
        .replace("<roleFlags>03</roleFlags>", "<roleFlags>09</roleFlags>")
        .replace(
            "5A0C00000000000000000000000000",
            "DE0000000000000000000000000000",
        );
    let r = eng.post("/mup", der).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    {
        let reader = b.running.service.store.read().unwrap();
        assert_eq!(reader.readings().unwrap().len(), 0, "nothing to attest");
        assert_eq!(reader.designated(&lfdi, Flow::Import).unwrap(), None);
        assert_eq!(
            reader
                .measurements(&lfdi, "DE000000000000000000000000000020")
                .unwrap()
                .len(),
            1,
            "the DER's registers are stored"
        );
    }
    // Then the site meter: its registers are the attested ones.
    let r = eng
        .post("/mup", fill(SITE_MUP, &lfdi, t, 1_000, 2_000))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let reader = b.running.service.store.read().unwrap();
    assert_eq!(
        reader.designated(&lfdi, Flow::Export).unwrap().as_deref(),
        Some(EXPORT)
    );
    assert_eq!(reader.readings().unwrap().len(), 2);
}

#[tokio::test]
async fn what_one_device_may_make_the_bridge_store_is_bounded() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let lfdi = b.lfdi_hex("ENG");
    let t = minute() - 86_000;
    let r = eng
        .post("/mup", fill(SITE_MUP, &lfdi, t, 1_000, 2_000))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.location.unwrap();

    // Too many readings in one post.
    let r = eng
        .post(
            &location,
            reading_set_xml(
                POWER_QUALITY[0],
                t + 60 * 1_100,
                MAX_READINGS_PER_POST + 1,
                0,
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("<reasonCode>"), "{}", r.body);

    // Too many mirrors.
    for i in 1..MAX_MIRRORS_PER_DEVICE {
        let xml = mup_xml(&lfdi, &format!("{:02X}", 0x30 + i), "09", vec![]);
        let r = eng.post("/mup", xml).await.unwrap();
        assert_eq!(r.status, 201, "mirror {i}: {}", r.body);
    }
    let r = eng
        .post("/mup", mup_xml(&lfdi, "7F", "09", vec![]))
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    let reader = b.running.service.store.read().unwrap();
    assert_eq!(
        reader.mirrors_of(&lfdi).unwrap().len(),
        MAX_MIRRORS_PER_DEVICE
    );
    assert_eq!(reader.readings().unwrap().len(), 2);
}

#[tokio::test]
async fn in_band_registration_confirms_the_callers_own_end_device() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let me = b.pki.meters.iter().find(|m| m.code == "ENG").unwrap();
    // As a client posts it (sFDI, changedTime, enabled; no lFDI).
    let posted = format!(
        r#"<EndDevice xmlns="urn:ieee:std:2030.5:ns"><sFDI>{}</sFDI><changedTime>0</changedTime><enabled>true</enabled></EndDevice>"#,
        me.sfdi
    );
    let r = eng.post("/edev", posted).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.location.expect("Location");
    let r = eng.get(&location).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains(&format!("<sFDI>{}</sFDI>", me.sfdi)),
        "{}",
        r.body
    );

    // Another device's identity is refused.
    let other = b.pki.meters.iter().find(|m| m.code == "PHYS").unwrap();
    let posted = format!(
        r#"<EndDevice xmlns="urn:ieee:std:2030.5:ns"><lFDI>{}</lFDI><sFDI>{}</sFDI></EndDevice>"#,
        b.lfdi_hex("PHYS"),
        other.sfdi
    );
    let r = eng.post("/edev", posted).await.unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn end_device_list_pages_end() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let first = eng.get("/edev?s=0&l=10").await.unwrap().body;
    assert!(
        first.contains(r#"all="1""#) && first.contains(r#"results="1""#),
        "{first}"
    );
    // A client paging on (s = 1) gets an empty page and stops.
    let next = eng.get("/edev?s=1&l=10").await.unwrap().body;
    assert!(
        next.contains(r#"all="1""#) && next.contains(r#"results="0""#),
        "{next}"
    );
    assert!(!next.contains("<EndDevice "), "{next}");
    let none = eng.get("/edev?l=0").await.unwrap().body;
    assert!(none.contains(r#"results="0""#), "{none}");
    assert_eq!(eng.get("/edev?s=x").await.unwrap().status, 400);
}

#[tokio::test]
async fn head_media_types_and_the_campus_time() {
    let b = TestBridge::start_with(|c| c.time_zone = None).await; // the campus file's [site] zone
    let head = raw_request(&b, "ENG", "HEAD /dcap HTTP/1.1\r\nHost: bridge\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (headers, body) = head.split_once("\r\n\r\n").unwrap();
    assert!(body.is_empty(), "HEAD has no body: {body}");
    let length: usize = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .expect("Content-Length")
        .trim()
        .parse()
        .unwrap();
    let mut eng = b.meter("ENG");
    assert_eq!(length, eng.get("/dcap").await.unwrap().body.len());

    // EXI is not supported: 415 for a body in it, 406 for a client that accepts only it.
    let exi = raw_request(
        &b,
        "ENG",
        "POST /mup HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/sep-exi\r\nContent-Length: 4\r\n\r\nabcd",
    )
    .await;
    assert!(exi.starts_with("HTTP/1.1 415"), "{exi}");
    let only_exi = raw_request(
        &b,
        "ENG",
        "GET /dcap HTTP/1.1\r\nHost: bridge\r\nAccept: application/sep-exi\r\n\r\n",
    )
    .await;
    assert!(only_exi.starts_with("HTTP/1.1 406"), "{only_exi}");
    let with_params = raw_request(
        &b,
        "ENG",
        "GET /dcap HTTP/1.1\r\nHost: bridge\r\nAccept: application/sep+xml; level=-S1, application/sep-exi\r\n\r\n",
    )
    .await;
    assert!(with_params.starts_with("HTTP/1.1 200"), "{with_params}");
    assert_eq!(
        b.running
            .service
            .store
            .read()
            .unwrap()
            .mirror_count()
            .unwrap(),
        0
    );

    // The campus time zone (UTC+7, no DST) and a quality from the host clock's state.
    let tm = eng.get("/tm").await.unwrap().body;
    assert!(tm.contains("<tzOffset>25200</tzOffset>"), "{tm}");
    assert!(tm.contains("<dstOffset>0</dstOffset>"), "{tm}");
    let quality = if bridge::clock::host_clock_synchronised() {
        4
    } else {
        7
    };
    assert!(
        tm.contains(&format!("<quality>{quality}</quality>")),
        "{tm}"
    );
}
