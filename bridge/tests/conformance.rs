//! Conformance over real HTTPS with client certificates, modelled on the CSIP-AUS server
//! tests (S-ALL-01 discovery, S-ALL-05 authorisation, S-ALL-06 MUP creation and readings,
//! S-ALL-07 overwrite, S-ALL-52 LFDI mismatch, S-ALL-56 malformed LFDI).
mod common;

use bridge::normalize::Flow;
use common::*;
use simulator::client::Suites;

const T: i64 = 60;

/// Creates meter `code`'s site mirror with import and export registers at `t0`.
async fn create_site(
    b: &TestBridge,
    client: &mut simulator::client::MeterClient,
    code: &str,
    t0: i64,
) -> String {
    let body = mup_xml(
        &b.lfdi_hex(code),
        "0A01",
        "03",
        vec![
            mmr("0B01", 1, 1_000, t0, true),
            mmr("0B02", 19, 2_000, t0, true),
        ],
    );
    let r = client.post("/mup", body).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    r.location.expect("201 carries Location")
}

#[tokio::test]
async fn s_all_01_discovery_and_time() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let dcap = eng.get("/dcap").await.unwrap();
    assert_eq!(dcap.status, 200);
    assert_eq!(dcap.content_type.as_deref(), Some("application/sep+xml"));
    assert!(
        dcap.body.contains(r#"<TimeLink href="/tm"/>"#),
        "{}",
        dcap.body
    );
    assert!(dcap
        .body
        .contains(r#"<EndDeviceListLink all="1" href="/edev"/>"#));
    assert!(dcap
        .body
        .contains(r#"<MirrorUsagePointListLink all="0" href="/mup"/>"#));

    let tm = eng.get("/tm").await.unwrap();
    let current: i64 = tm
        .body
        .split("<currentTime>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (current - now()).abs() <= 5,
        "clock drift {}",
        current - now()
    );

    // The list shows the caller only.
    let edev = eng.get("/edev").await.unwrap();
    assert!(
        edev.body.contains(r#"all="1""#)
            && edev
                .body
                .contains(&format!("<lFDI>{}</lFDI>", b.lfdi_hex("ENG")))
    );
    let sfdi = b.pki.meters[0].sfdi;
    assert!(edev.body.contains(&format!("<sFDI>{sfdi}</sFDI>")));
    assert!(!edev.body.contains(&b.lfdi_hex("PHYS")));
    let device = eng.get("/edev/0").await.unwrap();
    assert_eq!(device.status, 200);
    let rg = eng.get("/edev/0/rg").await.unwrap();
    let pin = bridge::service::registration_pin(sfdi);
    assert!(rg.body.contains(&format!("<pIN>{pin}</pIN>")));
    assert!(
        registry::identity::sfdi_is_well_formed(u64::from(pin)),
        "PIN carries a check digit"
    );
    assert_eq!(eng.get("/edev/0/fsa").await.unwrap().status, 200);

    let mup = eng.get("/mup?s=0&l=10").await.unwrap();
    assert_eq!(mup.status, 200);
    assert!(
        mup.body.contains(r#"all="0""#) && mup.body.contains(r#"results="0""#),
        "{}",
        mup.body
    );
}

#[tokio::test]
async fn s_all_06_mirror_creation_and_four_rounds_of_readings() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let t0 = now() - 10 * T;
    let location = create_site(&b, &mut eng, "ENG", t0).await;
    assert!(location.starts_with("/mup/"));

    let list = eng.get("/mup?s=0&l=10").await.unwrap();
    assert!(
        list.body.contains(r#"all="1""#) && list.body.contains(&format!(r#"href="{location}""#)),
        "{}",
        list.body
    );
    assert!(list.body.contains("<postRate>60</postRate>"));

    for round in 1..=4i64 {
        let t = t0 + round * T;
        let body = mmr_list_xml(vec![
            mmr("0B01", 1, 1_000 + round * 100, t, false),
            mmr("0B02", 19, 2_000 + round * 50, t, false),
        ]);
        let r = eng.post(&location, body).await.unwrap();
        assert_eq!(r.status, 204, "round {round}: {}", r.body);
    }
    let reader = b.running.service.store.read().unwrap();
    assert_eq!(reader.readings().unwrap().len(), 10);
    let lfdi = b.lfdi_hex("ENG");
    let import = reader.latest(&lfdi, Flow::Import).unwrap().unwrap();
    let export = reader.latest(&lfdi, Flow::Export).unwrap().unwrap();
    assert_eq!((import.wh, export.wh), (1_400, 2_200));
    assert_eq!(i64::from(import.timestamp), t0 + 4 * T);

    // The same round again (a retry after a lost answer) is accepted once.
    let again = mmr_list_xml(vec![mmr("0B01", 1, 1_400, t0 + 4 * T, false)]);
    assert_eq!(eng.post(&location, again).await.unwrap().status, 204);
    assert_eq!(
        b.running
            .service
            .store
            .read()
            .unwrap()
            .readings()
            .unwrap()
            .len(),
        10
    );
}

#[tokio::test]
async fn s_all_07_reposting_a_mirror_mrid_overwrites_it() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let location = create_site(&b, &mut eng, "ENG", now() - 600).await;
    let body = mup_xml(&b.lfdi_hex("ENG"), "0a01", "49", vec![]);
    let r = eng.post("/mup", body).await.unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(r.location.as_deref(), Some(location.as_str()));
    let list = eng.get("/mup?l=10").await.unwrap();
    assert!(list.body.contains(r#"all="1""#), "{}", list.body);
    assert!(list.body.contains("<roleFlags>49</roleFlags>"));
    // Its registers are still known: readings without a ReadingType are accepted.
    let body = mmr_list_xml(vec![mmr("0B01", 1, 1_500, now() - 60, false)]);
    assert_eq!(eng.post(&location, body).await.unwrap().status, 204);
}

#[tokio::test]
async fn s_all_05_devices_cannot_use_each_others_resources() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let mut phys = b.meter("PHYS");
    let location = create_site(&b, &mut eng, "ENG", now() - 600).await;

    assert_eq!(phys.get(&location).await.unwrap().status, 403);
    let body = mmr_list_xml(vec![mmr("0B01", 1, 5_000, now() - 60, true)]);
    assert_eq!(
        phys.post(&location, body.clone()).await.unwrap().status,
        403
    );
    assert_eq!(
        phys.request(
            "PUT",
            &location,
            Some(mup_xml(&b.lfdi_hex("PHYS"), "0A01", "03", vec![]))
        )
        .await
        .unwrap()
        .status,
        403
    );
    assert_eq!(
        phys.request("DELETE", &location, None)
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(phys.get("/edev/0").await.unwrap().status, 403);
    // PHYS's own mirror may not adopt ENG's MirrorMeterReading mRID.
    let stolen = mup_xml(
        &b.lfdi_hex("PHYS"),
        "0A01",
        "03",
        vec![mmr("0B01", 1, 9_999, now() - 60, true)],
    );
    assert_eq!(phys.post("/mup", stolen).await.unwrap().status, 403);
    let phys_mirrors = phys.get("/mup?l=10").await.unwrap().body;
    assert!(phys_mirrors.contains(r#"all="0""#), "{phys_mirrors}");
    // ENG's data is untouched.
    let reader = b.running.service.store.read().unwrap();
    assert_eq!(
        reader
            .latest(&b.lfdi_hex("ENG"), Flow::Import)
            .unwrap()
            .unwrap()
            .wh,
        1_000
    );
    assert_eq!(reader.readings().unwrap().len(), 2);
}

#[tokio::test]
async fn s_all_52_and_56_lfdi_in_the_body_must_be_the_certificates() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let other = mup_xml(&b.lfdi_hex("PHYS"), "0A01", "03", vec![]);
    assert_eq!(eng.post("/mup", other).await.unwrap().status, 403);
    let malformed = mup_xml(&"Z".repeat(40), "0A01", "03", vec![]);
    let r = eng.post("/mup", malformed).await.unwrap();
    assert_eq!(r.status, 400);
    assert!(r.body.contains("<reasonCode>1</reasonCode>"), "{}", r.body);
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
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let location = create_site(&b, &mut eng, "ENG", now() - 600).await;

    let malformed = eng
        .post(
            "/mup",
            "<MirrorUsagePoint xmlns=\"urn:ieee:std:2030.5:ns\"><mRID>".into(),
        )
        .await
        .unwrap();
    assert_eq!(malformed.status, 400);
    assert!(malformed.body.contains("<reasonCode>0</reasonCode>"));
    let foreign = mup_xml(&b.lfdi_hex("ENG"), "0A02", "03", vec![])
        .replace("urn:ieee:std:2030.5:ns", "urn:example");
    assert_eq!(eng.post("/mup", foreign).await.unwrap().status, 400);

    let watts = {
        let mut m = mmr("0B01", 1, 1_100, now() - 60, true);
        m.reading_type.as_mut().unwrap().uom = Some(38);
        mmr_list_xml(vec![m])
    };
    let r = eng.post(&location, watts).await.unwrap();
    assert_eq!(r.status, 400);
    assert!(r.body.contains("<reasonCode>1</reasonCode>"));
    let backwards = mmr_list_xml(vec![mmr("0B01", 1, 999, now() - 60, false)]);
    assert_eq!(eng.post(&location, backwards).await.unwrap().status, 400);
    let impossible = mmr_list_xml(vec![mmr("0B01", 1, 1_000_000_000, now() - 60, false)]);
    assert_eq!(eng.post(&location, impossible).await.unwrap().status, 400);
    let future = mmr_list_xml(vec![mmr("0B01", 1, 1_001, now() + 3_600, false)]);
    assert_eq!(eng.post(&location, future).await.unwrap().status, 400);

    let huge = format!(
        "<MirrorMeterReadingList xmlns=\"urn:ieee:std:2030.5:ns\">{}</MirrorMeterReadingList>",
        " ".repeat(1 << 20)
    );
    assert_eq!(eng.post(&location, huge).await.unwrap().status, 413);

    let r = eng.request("DELETE", "/dcap", None).await.unwrap();
    assert_eq!((r.status, r.allow.as_deref()), (405, Some("GET, HEAD")));
    let r = eng.request("PATCH", "/mup", None).await.unwrap();
    assert_eq!(
        (r.status, r.allow.as_deref()),
        (405, Some("GET, HEAD, POST"))
    );
    assert_eq!(eng.get("/nothing/here").await.unwrap().status, 404);
    assert_eq!(eng.get("/mup/999").await.unwrap().status, 404);

    let reader = b.running.service.store.read().unwrap();
    assert_eq!(
        reader.readings().unwrap().len(),
        2,
        "only the site's first two readings"
    );
    assert_eq!(reader.mirror_count().unwrap(), 1);
}

#[tokio::test]
async fn put_and_delete_a_mirror() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let location = create_site(&b, &mut eng, "ENG", now() - 600).await;
    let changed = mup_xml(&b.lfdi_hex("ENG"), "0A01", "07", vec![]);
    assert_eq!(
        eng.request("PUT", &location, Some(changed))
            .await
            .unwrap()
            .status,
        204
    );
    assert!(eng
        .get(&location)
        .await
        .unwrap()
        .body
        .contains("<roleFlags>07</roleFlags>"));
    let other_mrid = mup_xml(&b.lfdi_hex("ENG"), "0A09", "07", vec![]);
    assert_eq!(
        eng.request("PUT", &location, Some(other_mrid))
            .await
            .unwrap()
            .status,
        400
    );
    assert_eq!(
        eng.request("DELETE", &location, None).await.unwrap().status,
        204
    );
    assert_eq!(eng.get(&location).await.unwrap().status, 404);
    // Acknowledged readings are kept.
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
async fn a_client_offering_only_ccm8_connects() {
    let b = TestBridge::start().await;
    let mut eng = b.meter_with("ENG", Suites::Ccm8Only);
    let dcap = eng.get("/dcap").await.unwrap();
    assert_eq!(dcap.status, 200);
    assert_eq!(
        eng.suite,
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8)
    );
    let mut default = b.meter("PHYS");
    default.connect().await.unwrap();
    assert_eq!(
        default.suite,
        Some(rustls::CipherSuite::TLS13_AES_256_GCM_SHA384)
    );
    // The bridge's order decides, not the client's.
    let mut chacha = b.meter_with("ENG", Suites::ChaChaFirst);
    chacha.connect().await.unwrap();
    assert_eq!(
        chacha.suite,
        Some(rustls::CipherSuite::TLS13_AES_256_GCM_SHA384)
    );
    // TLS 1.3's CCM-8 is not offered: a client with nothing else is refused.
    let mut ccm8_13 = b.meter_with("ENG", Suites::Tls13Ccm8Only);
    assert!(ccm8_13.connect().await.is_err());
    assert!(!bridge::tls::provider()
        .cipher_suites
        .iter()
        .any(|s| s.suite() == rustls::CipherSuite::TLS13_AES_128_CCM_8_SHA256));
}

#[tokio::test]
async fn unknown_foreign_expired_and_suspended_certificates_are_refused_at_tls() {
    let b = TestBridge::start().await;
    // A certificate from another CA.
    let other = tempfile::tempdir().unwrap();
    let foreign = certs::ensure_pki(&certs::Layout::new(other.path()), &campus()).unwrap();
    let mut stranger = b.client(
        foreign.layout.meter_cert("ENG"),
        foreign.layout.meter_key("ENG"),
        Suites::Default,
    );
    assert!(stranger.get("/dcap").await.is_err());

    // Right CA, but no meter of the campus.
    let now_t = time::OffsetDateTime::now_utc();
    let (der, key) = certs::issue_device_certificate(
        &b.pki.layout,
        b"GTX-9999-EXTRA",
        now_t - time::Duration::days(1),
        certs::no_expiry(),
    )
    .unwrap();
    let (cert_path, key_path) = (
        b.dir.path().join("extra.pem"),
        b.dir.path().join("extra.key"),
    );
    write_pem(&cert_path, &der);
    std::fs::write(&key_path, key).unwrap();
    let mut unknown = b.client(cert_path, key_path, Suites::Default);
    assert!(unknown.get("/dcap").await.is_err());

    // Right CA, expired.
    let (der, key) = certs::issue_device_certificate(
        &b.pki.layout,
        b"GTX-9998-OLD",
        now_t - time::Duration::days(30),
        now_t - time::Duration::days(1),
    )
    .unwrap();
    let (cert_path, key_path) = (b.dir.path().join("old.pem"), b.dir.path().join("old.key"));
    write_pem(&cert_path, &der);
    std::fs::write(&key_path, key).unwrap();
    let mut expired = b.client(cert_path, key_path, Suites::Default);
    assert!(expired.get("/dcap").await.is_err());

    // A suspended meter: refused from the next handshake on.
    let lfdi = b.pki.meters.iter().find(|m| m.code == "GYM").unwrap().lfdi;
    let mut gym = b.meter("GYM");
    assert_eq!(gym.get("/dcap").await.unwrap().status, 200);
    assert!(b.running.service.directory.set_active(&lfdi, false, now()));
    assert_eq!(
        gym.get("/dcap").await.unwrap().status,
        403,
        "open connection, refused per request"
    );
    gym.disconnect();
    assert!(gym.get("/dcap").await.is_err());
}
