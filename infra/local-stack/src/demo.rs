//! The start-up demo that `make local` runs and prints (`LOCAL_DEMO=off` skips it).

/// The story end to end, over HTTP against a running stack with its local Clerk: a signed
/// `user.created` in, synced, read back with a session token; then updated and deleted. Returns
/// one line per step; fails if any step does not end as it should within 2 s.
pub async fn demo(
    base_url: &str,
    webhook_secret: &str,
    keys: &devkit::tokens::DevKeys,
) -> anyhow::Result<Vec<String>> {
    let user = format!("user_demo{:x}", devkit::signing::now());
    let http = devkit::http_client();
    let token = keys.mint(&user);
    let mut lines = Vec::new();
    /// When the read through the api shows the step's effect.
    type Done = fn(&serde_json::Value, u16) -> bool;
    let steps: [(&str, Done); 3] = [
        ("user.created", |u, s| {
            s == 200 && u["first_name"].is_string()
        }),
        ("user.updated", |u, s| {
            s == 200
                && u["email_addresses"]
                    .as_array()
                    .is_some_and(|a| a.len() == 2)
        }),
        ("user.deleted", |_, s| s == 404),
    ];
    for (fixture, done) in steps {
        let body = devkit::fixture(fixture).replace("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa", &user);
        let posted = http
            .post(format!("{base_url}{}", webhook::ROUTE))
            .headers(devkit::signing::sign_now(webhook_secret, &body))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = posted.status().as_u16();
        anyhow::ensure!(status == 202, "posting {fixture}: {status}");
        let start = std::time::Instant::now();
        loop {
            let read = http
                .get(format!("{base_url}{}", api::ME))
                .bearer_auth(&token)
                .send()
                .await?;
            let status = read.status().as_u16();
            let json: serde_json::Value = read.json().await.unwrap_or_default();
            if done(&json, status) {
                let summary = if status == 200 {
                    format!(
                        "{} {} <{}> updated_at {}",
                        json["first_name"].as_str().unwrap_or("-"),
                        json["last_name"].as_str().unwrap_or("-"),
                        json["email"].as_str().unwrap_or("-"),
                        json["updated_at"]
                    )
                } else {
                    json["error"]["code"].as_str().unwrap_or("-").to_owned()
                };
                lines.push(format!(
                    "{fixture:<13} signed, POST {} -> 202; GET {} -> {status} after {:>4} ms: {summary}",
                    webhook::ROUTE,
                    api::ME,
                    start.elapsed().as_millis()
                ));
                break;
            }
            anyhow::ensure!(
                start.elapsed() < std::time::Duration::from_secs(2),
                "{fixture} was not visible through {} within 2 s (last: {status} {json})",
                api::ME
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
    Ok(lines)
}
