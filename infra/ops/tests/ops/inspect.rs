//! Inspect: an event's record and the user's bookkeeping, a user's timeline from `by_user`;
//! personal fields only with `--show-pii`.

use clerk_sync_ops::inspect;

use crate::support::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_and_a_timeline_show_their_fates_and_hide_personal_fields_unless_asked() {
    let h = Harness::start("inspect", 0, 0).await;
    let queue = h.resources.queue_url.clone();
    let user = "user_inspected";
    h.enqueue(
        &queue,
        "msg_first",
        &devkit::clerk::user_upsert("user.created", user, 100),
    )
    .await;
    assert_eq!(h.sync_events_queue().await, 1);
    h.enqueue(
        &queue,
        "msg_second",
        &devkit::clerk::user_upsert("user.updated", user, 200),
    )
    .await;
    h.enqueue(
        &queue,
        "msg_stale",
        &devkit::clerk::user_upsert("user.updated", user, 150),
    )
    .await;
    h.sync_events_queue().await;

    let event = inspect::event(&h.target, "msg_second", false)
        .await
        .unwrap();
    assert!(event.found);
    let text = event.lines.join("\n");
    for expected in [
        "event        msg_second",
        "source       webhook",
        "type         user.updated",
        "outcome      applied",
        "user now     user_inspected: live, updated_at 1970-01-01T00:00:00.200Z",
        "written by   msg_second",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    assert!(
        !text.contains("@example.com") && text.contains("--show-pii"),
        "{text}"
    );
    let with_pii = inspect::event(&h.target, "msg_second", true)
        .await
        .unwrap()
        .lines
        .join("\n");
    assert!(with_pii.contains("v200@example.com"), "{with_pii}");

    let timeline = inspect::user(&h.target, user, 50, false).await.unwrap();
    assert!(timeline.found);
    let rows: Vec<&String> = timeline
        .lines
        .iter()
        .filter(|l| l.contains(" webhook "))
        .collect();
    assert_eq!(rows.len(), 3, "{:#?}", timeline.lines);
    assert!(
        rows[0].contains("msg_first") && rows[0].contains("applied"),
        "{}",
        rows[0]
    );
    let stale = rows.iter().find(|r| r.contains("msg_stale")).unwrap();
    assert!(stale.contains("stale"), "{stale}");
    assert!(!timeline.lines.join("\n").contains("@example.com"));

    let missing = inspect::event(&h.target, "msg_never", false).await.unwrap();
    assert!(!missing.found);
    assert!(missing.lines[0].contains("no event-log record"));
}
