//! The attestor signs batches in the oracle's format; the keeper fetches them over the
//! token-protected local interface and acknowledges them; unacknowledged ones survive restarts.
mod common;

use base64::Engine;
use bridge::attestor::B64;
use bridge::store::SignedBatch;
use bytes::Bytes;
use common::*;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use oracle::attestation::{batch_domain, batch_hash, meters_digest, Batch};

/// One request to the keeper interface; returns status and body.
async fn keeper(b: &TestBridge, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    keeper_with(b, method, path, token, Bytes::new()).await
}

async fn keeper_with(
    b: &TestBridge,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Bytes,
) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(b.running.keeper_addr)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "localhost");
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let res = sender
        .send_request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn batches(body: &str) -> Vec<SignedBatch> {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    serde_json::from_value(value["batches"].clone()).unwrap()
}

/// ENG and PHYS create their sites at `t0` and post one more round at `t1`.
async fn two_meters_post(b: &TestBridge, t0: i64, t1: i64) {
    for (code, base) in [("ENG", 10_000), ("PHYS", 20_000)] {
        let mut m = b.meter(code);
        let site = mup_xml(
            &b.lfdi_hex(code),
            "0A01",
            "03",
            vec![
                mmr(&format!("{code}01"), 1, base, t0, true),
                mmr(&format!("{code}02"), 19, base + 5, t0, true),
            ],
        );
        let location = m
            .post(
                "/mup",
                site.replace(
                    &format!("{code}01"),
                    if code == "ENG" { "E1" } else { "F1" },
                )
                .replace(
                    &format!("{code}02"),
                    if code == "ENG" { "E2" } else { "F2" },
                ),
            )
            .await
            .unwrap()
            .location
            .unwrap();
        let (i, e) = if code == "ENG" {
            ("E1", "E2")
        } else {
            ("F1", "F2")
        };
        let round = mmr_list_xml(vec![
            mmr(i, 1, base + 100, t1, false),
            mmr(e, 19, base + 205, t1, false),
        ]);
        assert_eq!(m.post(&location, round).await.unwrap().status, 204);
    }
}

#[tokio::test]
async fn attested_batch_is_the_oracle_format_signed_by_the_bridge() {
    let b = TestBridge::start().await;
    let (t0, t1) = (now() - 600, now() - 300);
    two_meters_post(&b, t0, t1).await;
    let batch = b
        .running
        .attestor
        .attest_once(now())
        .unwrap()
        .expect("a batch");
    assert_eq!((batch.sequence, batch.readings), (1, 2));

    let message = B64.decode(&batch.message).unwrap();
    let parsed = Batch::parse(&message).unwrap();
    // Bound to the oracle program, the campus and the cluster.
    assert_eq!(
        parsed.domain,
        &batch_domain(
            &oracle::ID.to_bytes(),
            &bridge::attestor::campus_address().to_bytes(),
            &test_cluster().to_bytes()
        )
    );
    assert_eq!(parsed.sequence, 1);
    // The readings' meters, by their oracle state addresses, in order.
    assert_eq!(batch.meters, vec![b.lfdi_hex("ENG"), b.lfdi_hex("PHYS")]);
    let states: Vec<[u8; 32]> = ["ENG", "PHYS"]
        .iter()
        .map(|code| {
            let lfdi = b.pki.meters.iter().find(|m| m.code == *code).unwrap().lfdi;
            bridge::attestor::meter_state_address(&oracle::ID, &lfdi).to_bytes()
        })
        .collect();
    assert_eq!(parsed.meters, &meters_digest(states.iter()));
    assert_eq!(batch.hash, sep2::hex(&batch_hash(&message)));
    let eng = parsed.reading(0);
    assert_eq!(
        (i64::from(eng.timestamp), eng.import_wh, eng.export_wh),
        (t1, 10_100, 10_205)
    );
    let phys = parsed.reading(1);
    assert_eq!((phys.import_wh, phys.export_wh), (20_100, 20_205));

    let key: [u8; 32] = B64.decode(&batch.attestor).unwrap().try_into().unwrap();
    let signature: [u8; 64] = B64.decode(&batch.signature).unwrap().try_into().unwrap();
    VerifyingKey::from_bytes(&key)
        .unwrap()
        .verify(&message, &Signature::from_bytes(&signature))
        .unwrap();

    // Nothing new: no batch. New readings before the minimum interval: none either.
    assert!(b.running.attestor.attest_once(now()).unwrap().is_none());
}

#[tokio::test]
async fn only_registers_measured_together_and_a_new_interval_are_attested() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let t0 = now() - 900;
    let site = mup_xml(
        &b.lfdi_hex("ENG"),
        "0A01",
        "03",
        vec![mmr("E1", 1, 100, t0, true)],
    );
    let location = eng.post("/mup", site).await.unwrap().location.unwrap();
    // Import only: nothing to attest yet.
    assert!(b.running.attestor.attest_once(now()).unwrap().is_none());
    let export = mmr_list_xml(vec![mmr("E2", 19, 50, t0, true)]);
    assert_eq!(eng.post(&location, export).await.unwrap().status, 201);
    assert_eq!(
        b.running
            .attestor
            .attest_once(now())
            .unwrap()
            .unwrap()
            .readings,
        1
    );
    // 30 s later: inside the oracle's 60 s minimum interval.
    let soon = mmr_list_xml(vec![
        mmr("E1", 1, 110, t0 + 30, false),
        mmr("E2", 19, 55, t0 + 30, false),
    ]);
    assert_eq!(eng.post(&location, soon).await.unwrap().status, 204);
    assert!(b.running.attestor.attest_once(now()).unwrap().is_none());
    // A minute on, but only the import register: the export of that moment is unknown, and
    // the attestor never pairs registers of different times.
    let import_only = mmr_list_xml(vec![mmr("E1", 1, 120, t0 + 60, false)]);
    assert_eq!(eng.post(&location, import_only).await.unwrap().status, 204);
    assert!(b.running.attestor.attest_once(now()).unwrap().is_none());
    let export = mmr_list_xml(vec![mmr("E2", 19, 58, t0 + 60, false)]);
    assert_eq!(eng.post(&location, export).await.unwrap().status, 204);
    let batch = b.running.attestor.attest_once(now()).unwrap().unwrap();
    assert_eq!(batch.sequence, 2);
    let message = B64.decode(&batch.message).unwrap();
    let reading = Batch::parse(&message).unwrap().reading(0);
    assert_eq!(
        (
            i64::from(reading.timestamp),
            reading.import_wh,
            reading.export_wh
        ),
        (t0 + 60, 120, 58)
    );
}

/// Batches 1 (ENG and PHYS) and 2 (ENG's next round), signed and awaiting the keeper.
async fn two_batches(b: &TestBridge) {
    two_meters_post(b, now() - 600, now() - 300).await;
    b.running.attestor.attest_once(now()).unwrap().unwrap();
    let mut eng = b.meter("ENG");
    let round = mmr_list_xml(vec![
        mmr("E1", 1, 10_200, now() - 120, false),
        mmr("E2", 19, 10_300, now() - 120, false),
    ]);
    let location = eng
        .get("/mup?l=1")
        .await
        .unwrap()
        .body
        .split("href=\"/mup/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        eng.post(&format!("/mup/{location}"), round)
            .await
            .unwrap()
            .status,
        204
    );
    b.running.attestor.attest_once(now()).unwrap().unwrap();
}

#[tokio::test]
async fn keeper_interface_needs_the_token_and_unacknowledged_batches_survive_a_restart() {
    let b = TestBridge::start().await;
    two_batches(&b).await;

    let token = b.running.keeper_token.clone();
    assert_eq!(keeper(&b, "GET", "/v1/batches", None).await.0, 401);
    assert_eq!(
        keeper(&b, "GET", "/v1/batches", Some("not-the-token"))
            .await
            .0,
        401
    );
    let (status, body) = keeper(&b, "GET", "/v1/batches", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        batches(&body)
            .iter()
            .map(|b| b.sequence)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );

    assert_eq!(
        keeper(&b, "POST", "/v1/batches/1/ack", Some(&token))
            .await
            .0,
        204
    );
    assert_eq!(
        keeper(&b, "POST", "/v1/batches/1/ack", Some(&token))
            .await
            .0,
        204,
        "idempotent"
    );
    assert_eq!(
        keeper(&b, "POST", "/v1/batches/99/ack", Some(&token))
            .await
            .0,
        404
    );
    assert_eq!(
        keeper(&b, "DELETE", "/v1/batches", Some(&token)).await.0,
        405
    );
    let (_, status_body) = keeper(&b, "GET", "/v1/status", Some(&token)).await;
    let before: serde_json::Value = serde_json::from_str(&status_body).unwrap();
    // No round has run yet (the batches above were single signings): no report.
    assert!(before["attestation"].is_null(), "{before}");
    // A round: nothing new to sign; batch 2 awaits the keeper.
    let round = b.running.attestor.attest_round(now()).unwrap();
    assert!(round.batches.is_empty());
    let (_, status_body) = keeper(&b, "GET", "/v1/status", Some(&token)).await;
    let reported: serde_json::Value = serde_json::from_str(&status_body).unwrap();
    let attestation = &reported["attestation"];
    assert_eq!(attestation["pending_batches"], 1, "{reported}");
    assert_eq!(attestation["batches_signed"], 0);
    assert_eq!(attestation["backlog_full"], false);
    assert_eq!(attestation["waiting_meters"], 0);
    assert!(attestation["oldest_unattested_s"].is_null());

    let b = b.restart().await;
    let (_, body) = keeper(&b, "GET", "/v1/batches", Some(&token)).await;
    assert_eq!(
        batches(&body)
            .iter()
            .map(|b| b.sequence)
            .collect::<Vec<_>>(),
        vec![2]
    );
    let (_, status_body) = keeper(&b, "GET", "/v1/status", Some(&token)).await;
    let after: serde_json::Value = serde_json::from_str(&status_body).unwrap();
    assert_eq!(
        before["attestor"], after["attestor"],
        "the attestor key is kept"
    );

    use std::os::unix::fs::PermissionsExt;
    for secret in [b.config.attestor_key_path(), b.config.keeper_token_path()] {
        assert_eq!(
            std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

fn record(lfdi: &str, index: u16, active: bool, since: i64) -> serde_json::Value {
    serde_json::json!({
        "lfdi": lfdi, "index": index, "active": active, "since": since,
        "generation_w": 100_000, "storage_wh": 0, "max_import_w": 200_000, "max_discharge_w": 0,
    })
}

#[tokio::test]
async fn the_registry_decides_which_meters_the_bridge_serves() {
    let b = TestBridge::start().await;
    let token = b.running.keeper_token.clone();
    let mut phys = b.meter("PHYS");
    assert_eq!(phys.get("/dcap").await.unwrap().status, 200);

    // The registry: every campus meter except PHYS (not registered), GYM suspended, and one
    // meter registered on chain after the bridge started (lower-case hex is accepted).
    let newcomer = "ab".repeat(20);
    let mut meters: Vec<serde_json::Value> = b
        .pki
        .meters
        .iter()
        .enumerate()
        .filter(|(_, m)| m.code != "PHYS")
        .map(|(i, m)| {
            record(
                &sdk::identity::lfdi_hex(&m.lfdi),
                i as u16,
                m.code != "GYM",
                1_000,
            )
        })
        .collect();
    meters.push(record(&newcomer, 25, true, 2_000));
    let body = Bytes::from(serde_json::json!({ "meters": meters }).to_string());
    let (status, reply) = keeper_with(&b, "PUT", "/v1/meters", Some(&token), body.clone()).await;
    assert_eq!(status, 200, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["added"], 1);
    assert_eq!(reply["unregistered"], 1, "PHYS");
    assert_eq!(
        reply["changed"], 24,
        "every campus meter got the chain's start (and GYM its suspension)"
    );

    let directory = &b.running.service.directory;
    let gym = directory
        .all()
        .into_iter()
        .find(|m| m.code == "GYM")
        .unwrap();
    assert!(!gym.active);
    assert_eq!(gym.active_since, 1_000);
    let added = directory
        .all()
        .into_iter()
        .find(|m| m.lfdi_hex == newcomer.to_uppercase())
        .unwrap();
    assert!(added.active);
    assert_eq!((added.index, added.active_since), (25, 2_000));
    assert_eq!(added.sfdi, registry::identity::sfdi_from_lfdi(&added.lfdi));
    assert_eq!(
        phys.get("/dcap").await.unwrap().status,
        403,
        "an unregistered meter is refused"
    );
    assert!(
        b.meter("GYM").get("/dcap").await.is_err(),
        "a suspended meter fails the handshake"
    );
    assert_eq!(b.meter("ENG").get("/dcap").await.unwrap().status, 200);

    // The same list again changes nothing.
    let (_, again) = keeper_with(&b, "PUT", "/v1/meters", Some(&token), body).await;
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(
        (
            again["added"].clone(),
            again["changed"].clone(),
            again["unregistered"].clone()
        ),
        (0.into(), 0.into(), 0.into())
    );

    // Refused, changing nothing: no token, malformed JSON, a bad LFDI, too large, wrong method.
    let before = directory.all();
    let ok_body = Bytes::from(serde_json::json!({ "meters": [] }).to_string());
    assert_eq!(
        keeper_with(&b, "PUT", "/v1/meters", None, ok_body).await.0,
        401
    );
    let bad = [
        Bytes::from_static(b"{\"meters\": [ {"),
        Bytes::from(serde_json::json!({ "meters": [record("XYZ", 0, true, 0)] }).to_string()),
        Bytes::from(
            serde_json::json!({ "meters": [record(&"ab".repeat(19), 0, true, 0)] }).to_string(),
        ),
    ];
    for body in bad {
        let (status, reply) = keeper_with(&b, "PUT", "/v1/meters", Some(&token), body).await;
        assert_eq!(status, 400, "{reply}");
    }
    let huge = Bytes::from(vec![b' '; keeper_protocol::MAX_METERS_BODY + 1]);
    assert_eq!(
        keeper_with(&b, "PUT", "/v1/meters", Some(&token), huge)
            .await
            .0,
        413
    );
    assert_eq!(keeper(&b, "GET", "/v1/meters", Some(&token)).await.0, 405);
    assert_eq!(directory.all(), before);
}

/// The keeper interface's recovery routes: acknowledgements only oldest first (409 naming
/// the batch to acknowledge first, nothing changed), the chain's settled sequence (a floor
/// that never goes down; bad bodies refused), and a batch signed again only at or below
/// that floor (409 above it, 404 unknown, the same copy for a retry).
#[tokio::test]
async fn acknowledgements_go_oldest_first_and_batches_are_signed_again_only_below_the_chains_floor()
{
    let b = TestBridge::start().await;
    two_batches(&b).await;
    let token = b.running.keeper_token.clone();
    let listed = |body: &str| batches(body).iter().map(|b| b.sequence).collect::<Vec<_>>();

    // Out of order: 409, naming batch 1; both still wait.
    let (status, body) = keeper(&b, "POST", "/v1/batches/2/ack", Some(&token)).await;
    assert_eq!(status, 409, "{body}");
    let conflict: keeper_protocol::Conflict = serde_json::from_str(&body).unwrap();
    assert_eq!(conflict.next, Some(1));
    assert!(
        conflict.error.contains("acknowledge batch 1 first"),
        "{body}"
    );
    let (_, body) = keeper(&b, "GET", "/v1/batches", Some(&token)).await;
    assert_eq!(listed(&body), vec![1, 2]);

    // Batch 1 cannot be signed again while the chain may still apply it.
    let (status, body) = keeper(&b, "POST", "/v1/batches/1/resign", Some(&token)).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("above the chain's settled sequence 0"),
        "{body}"
    );
    assert_eq!(
        keeper(&b, "POST", "/v1/batches/77/resign", Some(&token))
            .await
            .0,
        404
    );

    // The chain's settled sequence: bad bodies refused, then a floor that never goes down.
    let chain =
        |body: &'static str| keeper_with(&b, "POST", "/v1/chain", Some(&token), Bytes::from(body));
    assert_eq!(chain("{\"highest\": 5}").await.0, 400);
    assert_eq!(chain("not json").await.0, 400);
    let huge = format!(
        "{{\"highest_sequence\": 5, \"pad\": \"{}\"}}",
        "x".repeat(4096)
    );
    assert_eq!(
        keeper_with(&b, "POST", "/v1/chain", Some(&token), Bytes::from(huge))
            .await
            .0,
        413
    );
    assert_eq!(keeper(&b, "POST", "/v1/chain", None).await.0, 401);
    let (status, body) = chain("{\"highest_sequence\": 20}").await;
    assert_eq!((status, body.as_str()), (200, "{\"floor\":20}"));
    let (_, body) = chain("{\"highest_sequence\": 3}").await;
    assert_eq!(body, "{\"floor\":20}");
    let (_, body) = keeper(&b, "GET", "/v1/status", Some(&token)).await;
    let status: keeper_protocol::BridgeStatus = serde_json::from_str(&body).unwrap();
    assert_eq!(status.chain_floor, 20);

    // Now batch 1 is signed again as 21, verifiable with the bridge's key; a retry gets
    // the same copy; the keeper's list is 2 and 21.
    let (status, body) = keeper(&b, "POST", "/v1/batches/1/resign", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let copy: SignedBatch = serde_json::from_str(&body).unwrap();
    assert_eq!(copy.sequence, 21);
    let message = B64.decode(&copy.message).unwrap();
    assert_eq!(Batch::parse(&message).unwrap().sequence, 21);
    let key =
        VerifyingKey::from_bytes(&B64.decode(&copy.attestor).unwrap().try_into().unwrap()).unwrap();
    let signature = Signature::from_slice(&B64.decode(&copy.signature).unwrap()).unwrap();
    key.verify(&message, &signature).unwrap();
    let (status, again) = keeper(&b, "POST", "/v1/batches/1/resign", Some(&token)).await;
    assert_eq!(
        (status, serde_json::from_str::<SignedBatch>(&again).unwrap()),
        (200, copy)
    );
    let (_, body) = keeper(&b, "GET", "/v1/batches", Some(&token)).await;
    assert_eq!(listed(&body), vec![2, 21]);
    // An acknowledged batch is not signed again.
    assert_eq!(
        keeper(&b, "POST", "/v1/batches/2/ack", Some(&token))
            .await
            .0,
        204
    );
    let (status, body) = keeper(&b, "POST", "/v1/batches/2/resign", Some(&token)).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("is acknowledged"), "{body}");
    // The next batch signed comes after the copy, and it all survives a restart.
    let b = b.restart().await;
    let (_, body) = keeper(&b, "GET", "/v1/batches", Some(&token)).await;
    assert_eq!(listed(&body), vec![21]);
    let (_, body) = keeper(&b, "GET", "/v1/status", Some(&token)).await;
    let status: keeper_protocol::BridgeStatus = serde_json::from_str(&body).unwrap();
    assert_eq!(status.chain_floor, 20);
}
