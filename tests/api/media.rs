//! Media through the public API, on both backends (files on disk and
//! SQLite; S3 (s3s-fs) and MongoDB): uploads typed by their bytes, the cap,
//! images measured and thumbnailed, who may download, signed URLs, and
//! attachments on messages.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, assert_error};
use crate::on_every_backend;

on_every_backend!(
    a_png_gets_its_size_and_a_thumbnail,
    files_are_typed_by_their_bytes_and_markup_is_refused,
    images_too_large_to_decode_are_refused_from_their_header,
    an_upload_over_the_cap_is_refused_and_nothing_is_kept,
    only_the_uploader_and_participants_may_download,
    signed_download_urls_expire,
    messages_carry_attachments_the_sender_uploaded,
    an_avatar_is_an_image_of_your_own_that_everyone_may_see,
    uploads_attached_nowhere_go_after_the_grace_period_and_free_the_quota,
);

async fn uploads_attached_nowhere_go_after_the_grace_period_and_free_the_quota(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.media_quota_bytes = 1_000;
        c.media_unattached_grace_secs = 1;
    })
    .await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let conversation = app.direct(&alice, &bob).await;
    let text = |c: u8| vec![c; 400];
    let sent = upload(&app, &alice, "sent.txt", "text/plain", &text(b's')).await;
    let loose = upload(&app, &alice, "loose.txt", "text/plain", &text(b'l')).await;
    // Past the quota: refused with 413, and it says why.
    let over = upload_raw(&app, &alice, "over.txt", "text/plain", &text(b'o')).await;
    let message = assert_error(over, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(message.contains("1000"), "{message}");
    // Bob's allowance is his own.
    upload(&app, &bob, "his.txt", "text/plain", &text(b'b')).await;
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let r = app
        .post_as(&path, &alice.access_token, json!({"type": "file", "content": "", "attachments": [sent["id"]]}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // Within a few sweeps (every second here) the never-sent upload is gone;
    // the sent one stays, for both participants.
    let media = |m: &Value| format!("/api/v1/media/{}", m["id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (answer, _) = fetch(&app, &alice, &media(&loose)).await;
        if answer.status() == StatusCode::NOT_FOUND {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the unattached upload is still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for user in [&alice, &bob] {
        let (answer, _) = fetch(&app, user, &media(&sent)).await;
        assert!(answer.status() == StatusCode::OK || answer.status() == StatusCode::FOUND, "{}", answer.status());
    }
    // What it took is free again.
    upload(&app, &alice, "again.txt", "text/plain", &text(b'a')).await;
}

const BOUNDARY: &str = "chatterbox-test-boundary";

/// A `multipart/form-data` body with one `file` field.
fn multipart(filename: &str, claimed_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {claimed_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload_raw(app: &TestApp, user: &TestUser, filename: &str, claimed: &str, bytes: &[u8]) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/media"))
        .bearer_auth(&user.access_token)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart(filename, claimed, bytes))
        .send()
        .await
        .unwrap()
}

pub async fn upload(app: &TestApp, user: &TestUser, filename: &str, claimed: &str, bytes: &[u8]) -> Value {
    let r = upload_raw(app, user, filename, claimed, bytes).await;
    assert_eq!(r.status(), StatusCode::CREATED, "uploading {filename}");
    r.json().await.unwrap()
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// What a download of `path` answers, the redirect followed when there is
/// one: (the gateway's answer, the final answer).
async fn fetch(app: &TestApp, user: &TestUser, path: &str) -> (reqwest::Response, Option<reqwest::Response>) {
    let first = no_redirects().get(app.url(path)).bearer_auth(&user.access_token).send().await.unwrap();
    if first.status() == StatusCode::FOUND {
        let location = first.headers()["location"].to_str().unwrap().to_owned();
        let second = reqwest::Client::new().get(location).send().await.unwrap();
        (first, Some(second))
    } else {
        (first, None)
    }
}

/// The bytes a user gets for `path`, with the final answer's headers; checks
/// the rules every download follows on the way.
async fn download(app: &TestApp, user: &TestUser, path: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let (first, second) = fetch(app, user, path).await;
    assert_eq!(first.headers()["x-content-type-options"], "nosniff");
    let last = match second {
        Some(second) => {
            // S3 mode: a short-lived signed URL.
            let location = first.headers()["location"].to_str().unwrap();
            let expires: u64 =
                location.split("X-Amz-Expires=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
            assert!(expires <= 300, "signed for {expires} s");
            second
        }
        None => first,
    };
    assert_eq!(last.status(), StatusCode::OK, "downloading {path}");
    (last.headers().clone(), last.bytes().await.unwrap().to_vec())
}

/// Files the suite keeps: blobs (on disk or in its bucket) and spooled uploads.
async fn kept(app: &TestApp) -> usize {
    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { files(&e.path()) } else { 1 }).sum())
            .unwrap_or(0)
    }
    let spooled = files(&app.data_dir.path().join("spool"));
    let blobs = match &app.config.s3_bucket {
        Some(bucket) => {
            let settings = chatterbox_media::S3Settings {
                bucket: bucket.clone(),
                endpoint: app.config.s3_endpoint.clone(),
                public_endpoint: None,
            };
            chatterbox_media::S3BlobStore::new(&settings).await.keys().await.unwrap().len()
        }
        None => files(&app.data_dir.path().join("media")),
    };
    spooled + blobs
}

/// Waits (bounded) until the suite keeps exactly `expected` files: a
/// cancelled upload's spool file goes when the cancellation reaches the service.
async fn kept_settles_at(app: &TestApp, expected: usize) {
    chatterbox_testkit::eventually(&format!("{expected} files kept"), crate::ws_client::PATIENCE, || async {
        let now = kept(app).await;
        if now == expected { Ok(()) } else { Err(format!("{now} kept")) }
    })
    .await;
}

async fn a_png_gets_its_size_and_a_thumbnail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let bytes = png(640, 480);
    let media = upload(&app, &alice, "holiday.png", "image/png", &bytes).await;
    let id = media["id"].as_str().unwrap();
    assert_eq!(media["content_type"], "image/png");
    assert_eq!((media["width"].as_u64(), media["height"].as_u64()), (Some(640), Some(480)));
    assert_eq!(media["size"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(media["filename"], "holiday.png");
    assert_eq!(media["url"], format!("/api/v1/media/{id}"));
    assert_eq!(media["thumbnail_url"], format!("/api/v1/media/{id}/thumbnail"));
    assert!(media["created_at"].as_str().unwrap().ends_with('Z'));

    let (headers, got) = download(&app, &alice, &format!("/api/v1/media/{id}")).await;
    assert_eq!(got, bytes);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["content-disposition"], "inline", "a raster image may show inline");

    let (headers, thumb) = download(&app, &alice, &format!("/api/v1/media/{id}/thumbnail")).await;
    assert_eq!(headers["content-type"], "image/png");
    let thumb = image::load_from_memory_with_format(&thumb, image::ImageFormat::Png).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 192), "fits 256 px, keeps the aspect ratio");
}

async fn files_are_typed_by_their_bytes_and_markup_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    // HTML claiming to be a PNG, and an SVG: refused whatever they claim.
    for (name, claimed, bytes) in [
        ("cat.png", "image/png", &b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"[..]),
        ("logo.svg", "image/svg+xml", b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>"),
        ("run.exe", "application/octet-stream", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00"),
        ("broken.png", "image/png", b"\x89PNG\r\n\x1a\nthis is no image at all"),
    ] {
        let refused = upload_raw(&app, &alice, name, claimed, bytes).await;
        assert_error(refused, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    }
    kept_settles_at(&app, 0).await;
    let empty = upload_raw(&app, &alice, "empty.txt", "text/plain", b"").await;
    assert_error(empty, StatusCode::BAD_REQUEST, "invalid_argument").await;

    // Plain text claiming to be a PNG is what its bytes say, and downloads
    // as an attachment under a cleaned-up name.
    let text = b"meeting notes: <b>bring snacks</b>\n";
    let media = upload(&app, &alice, "../../notes.png", "image/png", text).await;
    assert_eq!(media["content_type"], "text/plain; charset=utf-8");
    assert_eq!(media["filename"], "notes.png");
    assert!(media["width"].is_null() && media["thumbnail_url"].is_null());
    let id = media["id"].as_str().unwrap();
    let (headers, got) = download(&app, &alice, &format!("/api/v1/media/{id}")).await;
    assert_eq!(got, text);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\"notes.png\""), "{disposition}");
    let (no_thumbnail, _) = fetch(&app, &alice, &format!("/api/v1/media/{id}/thumbnail")).await;
    assert_error(no_thumbnail, StatusCode::NOT_FOUND, "not_found").await;

    let missing_field = app
        .client
        .post(app.url("/api/v1/media"))
        .bearer_auth(&alice.access_token)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n"))
        .send()
        .await
        .unwrap();
    assert_error(missing_field, StatusCode::BAD_REQUEST, "invalid_argument").await;
    let anonymous = app.client.post(app.url("/api/v1/media")).body(multipart("a.txt", "text/plain", b"hi")).send();
    assert_error(anonymous.await.unwrap(), StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

/// CRC-32 (IEEE), for hand-made PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A tiny PNG whose header claims `side` × `side` pixels: a decompression bomb.
fn bomb(side: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut header = Vec::new();
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &header);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

async fn images_too_large_to_decode_are_refused_from_their_header(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register("alice").await;
    let tiny = bomb(60_000);
    assert!(tiny.len() < 100, "a few bytes claiming 3.6 billion pixels");
    let refused = upload_raw(&app, &alice, "bomb.png", "image/png", &tiny).await;
    let message = assert_error(refused, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(message.contains("pixels"), "{message}");
    kept_settles_at(&app, 0).await;
}

async fn an_upload_over_the_cap_is_refused_and_nothing_is_kept(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.media_max_bytes = 4_000_000).await;
    let alice = app.register("alice").await;
    let over = vec![b'a'; 4_000_001];
    let refused = upload_raw(&app, &alice, "big.txt", "text/plain", &over).await;
    assert_error(refused, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Far over: refused while streaming, long before the end.
    let far = vec![b'a'; 9_000_000];
    let refused = upload_raw(&app, &alice, "bigger.txt", "text/plain", &far).await;
    assert_error(refused, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    kept_settles_at(&app, 0).await;
    // Exactly the cap, in one request body: many chunks streamed through.
    let exact = upload(&app, &alice, "fits.txt", "text/plain", &over[..4_000_000]).await;
    assert_eq!(exact["size"], 4_000_000);
    assert_eq!(kept(&app).await, 1, "one blob, no spool file left");
    let (_, bytes) = download(&app, &alice, exact["url"].as_str().unwrap()).await;
    assert_eq!(bytes.len(), 4_000_000);
}

async fn only_the_uploader_and_participants_may_download(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, carol) = (app.register("alice").await, app.register("bob").await, app.register("carol").await);
    let media = upload(&app, &alice, "pic.png", "image/png", &png(32, 32)).await;
    let path = format!("/api/v1/media/{}", media["id"].as_str().unwrap());
    let thumbnail = format!("{path}/thumbnail");
    // Not attached anywhere: only Alice.
    download(&app, &alice, &path).await;
    for (user, what) in [(&bob, &path), (&carol, &path), (&bob, &thumbnail)] {
        let (refused, _) = fetch(&app, user, what).await;
        assert_error(refused, StatusCode::NOT_FOUND, "not_found").await;
    }
    let conversation = app.direct(&alice, &bob).await;
    let sent = app
        .post_as(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &alice.access_token,
            json!({"type": "image", "content": "", "attachments": [media["id"]]}),
        )
        .await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    // Bob takes part in the conversation it is attached in; Carol does not.
    let (_, bytes) = download(&app, &bob, &path).await;
    assert_eq!(bytes, png(32, 32));
    download(&app, &bob, &thumbnail).await;
    let (refused, _) = fetch(&app, &carol, &path).await;
    assert_error(refused, StatusCode::NOT_FOUND, "not_found").await;
    for bogus in ["/api/v1/media/nope", "/api/v1/media/01J0000000000000000000000Z", "/api/v1/media/../etc/passwd"] {
        let (refused, _) = fetch(&app, &alice, bogus).await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{bogus}");
    }
    let (anonymous, _) = fetch(&app, &TestUser { access_token: "x".into(), ..alice.clone() }, &path).await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

async fn signed_download_urls_expire(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.media_url_ttl_secs = 3).await;
    let alice = app.register("alice").await;
    let media = upload(&app, &alice, "notes.txt", "text/plain", b"for your eyes only\n").await;
    let path = format!("/api/v1/media/{}", media["id"].as_str().unwrap());
    let answer = no_redirects().get(app.url(&path)).bearer_auth(&alice.access_token).send().await.unwrap();
    if backend == Backend::Embedded {
        // On disk the gateway streams the bytes itself, after checking the token.
        assert_eq!(answer.status(), StatusCode::OK);
        assert!(answer.headers().get("location").is_none());
        return;
    }
    assert_eq!(answer.status(), StatusCode::FOUND);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("X-Amz-Expires=3"), "{location}");
    let now = reqwest::get(&location).await.unwrap();
    assert_eq!(now.status(), StatusCode::OK);
    assert!(now.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    tokio::time::sleep(Duration::from_millis(4_200)).await;
    assert_eq!(reqwest::get(&location).await.unwrap().status(), StatusCode::FORBIDDEN, "expired");
    // A fresh one comes from the gateway again.
    let again = no_redirects().get(app.url(&path)).bearer_auth(&alice.access_token).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::FOUND);
}

async fn messages_carry_attachments_the_sender_uploaded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let conversation = app.direct(&alice, &bob).await;
    let mut bob_ws = app.ws(&bob).await;
    let picture = upload(&app, &alice, "pic.png", "image/png", &png(100, 50)).await;
    let notes = upload(&app, &alice, "notes.txt", "text/plain", b"minutes\n").await;
    let bobs = upload(&app, &bob, "his.png", "image/png", &png(10, 10)).await;
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let send = |body: Value| app.post_as(&path, &alice.access_token, body);
    // Refusals change nothing.
    for (body, why) in [
        (json!({"type": "image", "content": "look"}), "an image message needs an attachment"),
        (json!({"type": "file", "content": "", "attachments": []}), "a file message needs an attachment"),
        (json!({"type": "image", "content": "", "attachments": [bobs["id"]]}), "Bob's upload is not Alice's"),
        (json!({"type": "image", "content": "", "attachments": [notes["id"]]}), "text is not an image"),
        (json!({"type": "file", "content": "", "attachments": ["nope"]}), "not a media id"),
        (json!({"type": "file", "content": "", "attachments": [notes["id"], notes["id"]]}), "listed twice"),
    ] {
        let refused = send(body).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{why}");
        assert_error(refused, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
    let (refused, _) = fetch(&app, &bob, &format!("/api/v1/media/{}", notes["id"].as_str().unwrap())).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND, "a refused message attached nothing");

    let sent = send(json!({"type": "image", "content": "the view", "attachments": [picture["id"]]})).await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let sent: Value = sent.json().await.unwrap();
    let attached = &sent["attachments"][0];
    assert_eq!(attached["id"], picture["id"]);
    for field in ["content_type", "size", "filename", "width", "height", "url", "thumbnail_url", "created_at"] {
        assert_eq!(attached[field], picture[field], "{field}");
    }
    let file = send(json!({"type": "file", "content": "", "attachments": [notes["id"]]})).await;
    assert_eq!(file.status(), StatusCode::CREATED);

    // Live and in history alike.
    let live = bob_ws.expect("message.new").await;
    assert_eq!(live["message"]["attachments"][0]["url"], picture["url"]);
    let history = app.json_as(&format!("/api/v1/conversations/{conversation}/messages"), &bob.access_token).await;
    let items = history["items"].as_array().unwrap();
    assert_eq!(items[0]["attachments"][0]["thumbnail_url"], picture["thumbnail_url"]);
    assert_eq!(items[1]["attachments"][0]["filename"], "notes.txt");
    assert_eq!(items[1]["content"], "");
    // A retry of a send answers with the original and attaches nothing new.
    let other = upload(
        &app,
        &alice,
        "other.txt",
        "text/plain",
        b"second thoughts
",
    )
    .await;
    let first = send(json!({"type": "file", "content": "", "attachments": [notes["id"]], "client_id": "c-9"})).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = send(json!({"type": "file", "content": "", "attachments": [other["id"]], "client_id": "c-9"})).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["attachments"][0]["id"], notes["id"]);
    let (refused, _) = fetch(&app, &bob, other["url"].as_str().unwrap()).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND, "the retry's attachment was not attached");

    // Deleted: the message loses its attachments, and they are no longer shared.
    let id = items[0]["id"].as_str().unwrap();
    assert_eq!(app.delete_as(&format!("/api/v1/messages/{id}"), &alice.access_token).await.status(), 204);
    let history = app.json_as(&format!("/api/v1/conversations/{conversation}/messages"), &bob.access_token).await;
    assert_eq!(history["items"][0]["attachments"], json!([]));
    let (gone, _) = fetch(&app, &bob, picture["url"].as_str().unwrap()).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    download(&app, &alice, picture["url"].as_str().unwrap()).await;
    download(&app, &bob, notes["url"].as_str().unwrap()).await;
}

async fn an_avatar_is_an_image_of_your_own_that_everyone_may_see(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let face = upload(&app, &alice, "me.png", "image/png", &png(64, 64)).await;
    let notes = upload(&app, &alice, "notes.txt", "text/plain", b"not a face\n").await;
    let bobs = upload(&app, &bob, "bob.png", "image/png", &png(8, 8)).await;
    for avatar in [&bobs["id"], &notes["id"], &json!("01J0000000000000000000000Z")] {
        let refused = app.patch_as("/api/v1/users/me", &alice.access_token, json!({"avatar": avatar})).await;
        assert_error(refused, StatusCode::BAD_REQUEST, "invalid_argument").await;
    }
    assert!(app.json_as("/api/v1/users/me", &alice.access_token).await["avatar"].is_null(), "refusals change nothing");
    let set = app.patch_as("/api/v1/users/me", &alice.access_token, json!({"avatar": face["id"]})).await;
    assert_eq!(set.status(), StatusCode::OK);
    let profile = app.json_as(&format!("/api/v1/users/{}", alice.id), &bob.access_token).await;
    assert_eq!(profile["avatar"], face["id"]);
    // A stranger may see an avatar, and nothing else of hers.
    let (_, bytes) = download(&app, &bob, face["url"].as_str().unwrap()).await;
    assert_eq!(bytes, png(64, 64));
    let (refused, _) = fetch(&app, &bob, notes["url"].as_str().unwrap()).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
}

/// Every file and directory the one-process suite makes under its data dir
/// (databases with their WAL, media, spool, keys) is its user's alone.
#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_is_readable_by_its_owner_alone() {
    use std::os::unix::fs::PermissionsExt as _;

    let app = TestApp::spawn(Backend::Embedded).await;
    let alice = app.register("alice").await;
    upload(&app, &alice, "me.png", "image/png", &png(8, 8)).await;
    let mut seen = 0;
    let mut pending = vec![app.data_dir.path().to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            let path = entry.path();
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
            }
            seen += 1;
        }
    }
    // The six databases (and their WAL files), the media dir with the upload, the keys.
    assert!(seen >= 10, "only {seen} entries looked at");
}
