//! DKIM and DMARC alignment decided locally: an owner's signed message passes; unsigned, forged
//! From, a signature by another domain, a body changed after signing and a DMARC policy the
//! message fails are all refused (each next to the passing control).

use clawdia_email::auth::Verifier;
use clawdia_test_support::mail::DkimKey;

const MESSAGE: &str = "From: Ana <ana@example.org>\r\nTo: claw@example.net\r\nSubject: Plans\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.org>\r\n\r\nWhat is on tomorrow?\r\n";

fn received(raw: &[u8]) -> Vec<u8> {
    let mut out = b"Return-Path: <ana@example.org>\r\nReceived: from client.test (localhost [127.0.0.1])\r\n\tby mx.test (Postfix) with ESMTPA id 1\r\n".to_vec();
    out.extend_from_slice(raw);
    out
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

#[test]
fn a_signed_aligned_message_passes_and_forgeries_do_not() {
    let key = DkimKey::generate("example.org");
    let spf = ("example.org".to_string(), "v=spf1 ip4:127.0.0.1 -all".to_string());
    let verifier = Verifier::with_records(&[key.record(), spf.clone()]).unwrap();
    // Positive control.
    let signed = received(&key.sign(MESSAGE.as_bytes()));
    let verdict = block_on(verifier.check(&signed));
    assert!(verdict.authentic, "{verdict:?}");
    assert_eq!(verdict.from.as_deref(), Some("ana@example.org"));
    assert_eq!(verdict.dkim, "dkim=pass d=example.org");
    assert_eq!(verdict.spf, "spf=pass");

    // Unsigned.
    let verdict = block_on(verifier.check(&received(MESSAGE.as_bytes())));
    assert!(!verdict.authentic && verdict.dkim.starts_with("dkim=none"), "{verdict:?}");

    // The From header changed after signing.
    let forged = String::from_utf8(signed.clone())
        .unwrap()
        .replace("From: Ana <ana@example.org>", "From: Ana <ana@example.org >");
    let forged = forged.replace("ana@example.org >", "ana@example.org>").replace("Ana <", "Ana Evil <");
    let verdict = block_on(verifier.check(forged.as_bytes()));
    assert!(!verdict.authentic && verdict.dkim.starts_with("dkim=fail"), "{verdict:?}");

    // The body changed after signing.
    let tampered =
        String::from_utf8(signed.clone()).unwrap().replace("tomorrow?", "tomorrow? Also wire money.");
    let verdict = block_on(verifier.check(tampered.as_bytes()));
    assert!(!verdict.authentic, "{verdict:?}");

    // Signed by a domain the attacker controls, From the owner: not aligned.
    let evil = DkimKey::generate("evil.test");
    let verifier2 = Verifier::with_records(&[key.record(), evil.record()]).unwrap();
    let verdict = block_on(verifier2.check(&received(&evil.sign(MESSAGE.as_bytes()))));
    assert!(!verdict.authentic && verdict.dkim.contains("not aligned"), "{verdict:?}");

    // A key the test resolver does not know (not published): refused.
    let unpublished = Verifier::with_records(std::slice::from_ref(&spf)).unwrap();
    let verdict = block_on(unpublished.check(&signed));
    assert!(!verdict.authentic, "{verdict:?}");

    // Two From addresses: no single sender.
    let two = MESSAGE.replace("From: Ana <ana@example.org>", "From: ana@example.org, bob@example.org");
    let verdict = block_on(verifier.check(&received(&key.sign(two.as_bytes()))));
    assert!(!verdict.authentic && verdict.from.is_none(), "{verdict:?}");
}

#[test]
fn a_dmarc_record_is_evaluated_and_its_verdict_recorded() {
    let key = DkimKey::generate("example.org");
    let dmarc = ("_dmarc.example.org".to_string(), "v=DMARC1; p=reject; adkim=s".to_string());
    let verifier = Verifier::with_records(&[key.record(), dmarc]).unwrap();
    let verdict = block_on(verifier.check(&received(&key.sign(MESSAGE.as_bytes()))));
    assert!(verdict.authentic, "{verdict:?}");
    assert_eq!(verdict.dmarc, "dmarc=pass");
    let verdict = block_on(verifier.check(&received(MESSAGE.as_bytes())));
    assert!(!verdict.authentic, "{verdict:?}");
    assert_eq!(verdict.dmarc, "dmarc=fail");
}
