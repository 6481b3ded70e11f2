use super::*;
use crate::mds::http::Request;

const UUID: &str = "6b0a4c7a-8d4c-4e0b-9b3e-0a8f2a6c1d2e";

fn req(method: &str, path: &str, query: &str, body: &str) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        body: body.as_bytes().to_vec(),
    }
}

fn registered(dir: Option<&std::path::Path>) -> Service {
    let s = Service::new([7; 64]);
    let pod = r#"{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"web","image":{"id":"sha512-abc"},"annotations":[{"name":"role","value":"front"}]}],"annotations":[{"name":"team","value":"infra"}]}"#;
    let query = match dir {
        Some(d) => format!("token=tok&dir={}", d.display()),
        None => "token=tok".into(),
    };
    assert_eq!(
        s.handle(
            &Peer::Registrar,
            &req("PUT", &format!("/pods/{UUID}"), &query, pod)
        )
        .status,
        200
    );
    let image = r#"{"acKind":"ImageManifest","name":"example.com/web","annotations":[{"name":"role","value":"image"},{"name":"owner","value":"me"}]}"#;
    assert_eq!(
        s.handle(
            &Peer::Registrar,
            &req("PUT", &format!("/pods/{UUID}/web"), "", image)
        )
        .status,
        200
    );
    s
}

fn get(s: &Service, from: &str, path: &str) -> Response {
    s.handle(&Peer::App(from.parse().unwrap()), &req("GET", path, "", ""))
}

fn text(r: &Response) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

#[test]
fn endpoints_answer_for_the_pods_token() {
    let s = registered(None);
    let base = "/tok/acMetadata/v1";
    let r = get(&s, "127.0.0.1", &format!("{base}/pod/uuid"));
    assert_eq!((r.status, text(&r)), (200, UUID.to_string()));
    let r = get(&s, "127.0.0.1", &format!("{base}/pod/annotations/team"));
    assert_eq!(
        (r.status, text(&r), r.content_type),
        (200, "infra".into(), TEXT)
    );
    let r = get(&s, "127.0.0.1", &format!("{base}/pod/annotations"));
    assert_eq!(r.content_type, JSON);
    assert_eq!(text(&r), r#"[{"name":"team","value":"infra"}]"#);
    assert_eq!(
        get(&s, "127.0.0.1", &format!("{base}/pod/annotations/nope")).status,
        404
    );
    // The pod's app annotations win over the image's.
    let r = get(
        &s,
        "127.0.0.1",
        &format!("{base}/apps/web/annotations/role"),
    );
    assert_eq!(text(&r), "front");
    let r = get(
        &s,
        "127.0.0.1",
        &format!("{base}/apps/web/annotations/owner"),
    );
    assert_eq!(text(&r), "me");
    let r = get(&s, "127.0.0.1", &format!("{base}/apps/web/image/id"));
    assert_eq!(text(&r), "sha512-abc");
    let r = get(&s, "127.0.0.1", &format!("{base}/apps/web/image/manifest"));
    assert!(text(&r).contains("example.com/web"));
    assert_eq!(
        get(&s, "127.0.0.1", &format!("{base}/apps/db/image/id")).status,
        404
    );
    assert_eq!(
        get(&s, "127.0.0.1", &format!("{base}/apps/Bad_Name/image/id")).status,
        400
    );
    assert_eq!(
        get(&s, "127.0.0.1", &format!("{base}/pod/manifest")).content_type,
        JSON
    );
    assert_eq!(
        get(&s, "127.0.0.1", "/other/acMetadata/v1/pod/uuid").status,
        401
    );
    assert_eq!(
        get(&s, "127.0.0.1", &format!("{base}/pod/nothing")).status,
        404
    );
}

#[test]
fn sign_and_verify_round_trip_and_tampering_fails() {
    let s = registered(None);
    let from: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let sign = s.handle(
        &Peer::App(from),
        &req(
            "POST",
            "/tok/acMetadata/v1/pod/hmac/sign",
            "",
            "content=hello+world",
        ),
    );
    assert_eq!(sign.status, 200);
    let sig = text(&sign);
    let enc = |v: &str| {
        v.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    };
    let verify = |content: &str| {
        let body = format!("uuid={UUID}&content={content}&signature={}", enc(&sig));
        s.handle(
            &Peer::App(from),
            &req("POST", "/tok/acMetadata/v1/pod/hmac/verify", "", &body),
        )
        .status
    };
    assert_eq!(verify("hello+world"), 200);
    assert_eq!(verify("hello+there"), 403);
    assert_eq!(
        s.handle(
            &Peer::App(from),
            &req("GET", "/tok/acMetadata/v1/pod/hmac/sign", "", "")
        )
        .status,
        405
    );
    assert_eq!(
        s.handle(
            &Peer::App(from),
            &req("POST", "/tok/acMetadata/v1/pod/hmac/sign", "", "")
        )
        .status,
        400
    );
}

#[test]
fn a_token_only_works_from_its_pods_addresses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("net-info.json"),
        r#"[{"netName":"default","ip":"172.16.28.5"}]"#,
    )
    .unwrap();
    let s = registered(Some(dir.path()));
    assert_eq!(
        get(&s, "172.16.28.5", "/tok/acMetadata/v1/pod/uuid").status,
        200
    );
    assert_eq!(
        get(&s, "172.16.28.9", "/tok/acMetadata/v1/pod/uuid").status,
        403
    );
}

#[test]
fn registration_is_checked_and_deregistration_forgets() {
    let s = registered(None);
    let bad =
        |m: &str, p: &str, q: &str, b: &str| s.handle(&Peer::Registrar, &req(m, p, q, b)).status;
    assert_eq!(bad("PUT", "/pods/not-a-uuid", "token=t", "{}"), 400);
    assert_eq!(bad("PUT", &format!("/pods/{UUID}"), "", "{}"), 400);
    assert_eq!(
        bad("PUT", &format!("/pods/{UUID}"), "token=t", "not json"),
        400
    );
    let other = "0b0a4c7a-8d4c-4e0b-9b3e-0a8f2a6c1d2e";
    assert_eq!(bad("PUT", &format!("/pods/{other}/web"), "", "{}"), 404);
    assert_eq!(bad("DELETE", &format!("/pods/{UUID}"), "", ""), 200);
    assert_eq!(
        get(&s, "127.0.0.1", "/tok/acMetadata/v1/pod/uuid").status,
        401
    );
    assert_eq!(bad("DELETE", &format!("/pods/{UUID}"), "", ""), 404);
}
