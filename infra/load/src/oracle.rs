//! The counting oracle: reads the users table, the event log and both queues, and compares them
//! with the model. A run passes when nothing is lost, nothing is extra, nothing is wrong, every
//! event is logged, and both queues are empty.

use std::collections::BTreeSet;
use std::fmt;

use anyhow::Context;
use aws_config::SdkConfig;
use clerk_sync::adapters::dynamodb::{DynamoUserStore, event_log, users};
use clerk_sync::domain::user::{Stored, UserEvent, UserId};
use clerk_sync::ports::UserStore;
use clerk_sync_ops::aws::dead_letters::Queues;
use futures_util::StreamExt;

use crate::model::{Final, Model};

/// Where a stack keeps what the oracle reads.
#[derive(Debug, Clone)]
pub struct Tables {
    pub users_table: String,
    pub event_log_table: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
}

impl From<&devkit::resources::Resources> for Tables {
    fn from(r: &devkit::resources::Resources) -> Self {
        Self {
            users_table: r.names.users_table.clone(),
            event_log_table: r.names.event_log_table.clone(),
            queue_url: r.queue_url.clone(),
            dead_letter_queue_url: r.dead_letter_queue_url.clone(),
        }
    }
}

/// What the oracle found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Users of the model with no record at all.
    pub lost: Vec<String>,
    /// Records of users the model does not have.
    pub extra: Vec<String>,
    /// Users whose record is not the model's final state: `(id, what is stored)`.
    pub wrong: Vec<(String, String)>,
    /// Events of the model with no event-log record.
    pub unlogged: Vec<String>,
    /// Messages on the events queue (visible or in flight).
    pub queued: u64,
    /// Messages on the dead-letter queue.
    pub dead_lettered: u64,
}

impl Verdict {
    /// Zero loss: the model's final states, nothing else, every event logged, queues drained.
    pub fn converged(&self) -> bool {
        self.lost.is_empty()
            && self.extra.is_empty()
            && self.wrong.is_empty()
            && self.unlogged.is_empty()
            && self.queued == 0
            && self.dead_lettered == 0
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = |v: &[String]| v.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        write!(
            f,
            "lost {} / extra {} / wrong {} / unlogged {} / queued {} / dead-lettered {}",
            self.lost.len(),
            self.extra.len(),
            self.wrong.len(),
            self.unlogged.len(),
            self.queued,
            self.dead_lettered
        )?;
        if !self.lost.is_empty() {
            write!(f, "; lost e.g. {}", first(&self.lost))?;
        }
        if !self.extra.is_empty() {
            write!(f, "; extra e.g. {}", first(&self.extra))?;
        }
        if let Some((id, stored)) = self.wrong.first() {
            write!(f, "; wrong e.g. {id}: {stored}")?;
        }
        if !self.unlogged.is_empty() {
            write!(f, "; unlogged e.g. {}", first(&self.unlogged))?;
        }
        Ok(())
    }
}

/// Reads a stack's state and judges it against a model.
pub struct Oracle {
    dynamodb: aws_sdk_dynamodb::Client,
    /// The stack's two queues, read as the operations tools read them.
    queues: Queues,
    tables: Tables,
}

impl Oracle {
    pub fn new(sdk: &SdkConfig, tables: Tables) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            queues: Queues::new(
                aws_sdk_sqs::Client::new(sdk),
                &tables.dead_letter_queue_url,
                &tables.queue_url,
            ),
            tables,
        }
    }

    /// Whether the pipeline is still busy: messages on the events queue, or events not yet
    /// logged. Cheaper than [`Self::judge`], for polling.
    pub async fn pending(&self, model: &Model) -> anyhow::Result<u64> {
        let queued = self.depth(&self.tables.queue_url).await?;
        let logged = self.logged().await?;
        let unlogged = model
            .events()
            .filter(|e| !logged.contains(&e.svix_id))
            .count();
        Ok(queued + unlogged as u64)
    }

    /// Compares everything stored with the model.
    pub async fn judge(&self, model: &Model) -> anyhow::Result<Verdict> {
        let mut verdict = Verdict {
            queued: self.depth(&self.tables.queue_url).await?,
            dead_lettered: self.depth(&self.tables.dead_letter_queue_url).await?,
            ..Verdict::default()
        };
        let logged = self.logged().await?;
        verdict.unlogged = model
            .events()
            .filter(|e| !logged.contains(&e.svix_id))
            .map(|e| e.svix_id.clone())
            .collect();

        let stored_ids = self.user_ids().await?;
        verdict.extra = stored_ids
            .iter()
            .filter(|id| !model.histories.contains_key(*id))
            .cloned()
            .collect();

        let store = DynamoUserStore::new(self.dynamodb.clone(), &self.tables.users_table);
        let finals = model.finals();
        let reads: Vec<(String, Final, Option<Stored>)> = futures_util::stream::iter(finals)
            .map(|(id, want)| {
                let store = store.clone();
                async move {
                    let user = UserId::parse(id).context("model user ids are Clerk's")?;
                    let stored = store
                        .get(&user)
                        .await
                        .with_context(|| format!("reading user {id}"))?;
                    anyhow::Ok((id.to_owned(), want, stored))
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        for (id, want, stored) in reads {
            match (want, stored) {
                (_, None) => verdict.lost.push(id),
                (Final::Deleted, Some(Stored::Tombstone { .. })) => {}
                (Final::Live { body, .. }, Some(Stored::Live(profile))) => {
                    let expected = UserEvent::parse(&body).context("model bodies parse")?;
                    if expected.stored() != Stored::Live(profile.clone()) {
                        verdict
                            .wrong
                            .push((id, format!("live at updated_at {}", profile.updated_at)));
                    }
                }
                (_, Some(Stored::Tombstone { .. })) => {
                    verdict.wrong.push((id, "deleted".into()));
                }
                (Final::Deleted, Some(Stored::Live(profile))) => {
                    verdict
                        .wrong
                        .push((id, format!("live at updated_at {}", profile.updated_at)));
                }
            }
        }
        verdict.lost.sort();
        verdict.wrong.sort();
        Ok(verdict)
    }

    /// Messages on a queue, visible or in flight.
    async fn depth(&self, url: &str) -> anyhow::Result<u64> {
        let (visible, in_flight) = self.queues.depth(url).await?;
        Ok((visible + in_flight).max(0) as u64)
    }

    /// The svix ids in the event log.
    async fn logged(&self) -> anyhow::Result<BTreeSet<String>> {
        self.scan_strings(&self.tables.event_log_table, event_log::SVIX_ID)
            .await
    }

    /// The user ids in the users table.
    async fn user_ids(&self) -> anyhow::Result<BTreeSet<String>> {
        self.scan_strings(&self.tables.users_table, users::ID).await
    }

    async fn scan_strings(&self, table: &str, attribute: &str) -> anyhow::Result<BTreeSet<String>> {
        let items = self
            .dynamodb
            .scan()
            .table_name(table)
            .projection_expression("#a")
            .expression_attribute_names("#a", attribute)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("scanning {table}"))?;
        Ok(items
            .into_iter()
            .filter_map(|mut item| item.remove(attribute))
            .filter_map(|v| v.as_s().ok().cloned())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_converges_only_with_nothing_lost_extra_wrong_unlogged_or_queued() {
        assert!(Verdict::default().converged());
        let cases = [
            Verdict {
                lost: vec!["user_a".into()],
                ..Verdict::default()
            },
            Verdict {
                extra: vec!["user_b".into()],
                ..Verdict::default()
            },
            Verdict {
                wrong: vec![("user_c".into(), "deleted".into())],
                ..Verdict::default()
            },
            Verdict {
                unlogged: vec!["msg_1".into()],
                ..Verdict::default()
            },
            Verdict {
                queued: 1,
                ..Verdict::default()
            },
            Verdict {
                dead_lettered: 1,
                ..Verdict::default()
            },
        ];
        for verdict in cases {
            assert!(!verdict.converged(), "{verdict}");
        }
    }

    #[test]
    fn a_verdict_names_what_it_found() {
        let verdict = Verdict {
            wrong: vec![("user_c".into(), "deleted".into())],
            dead_lettered: 2,
            ..Verdict::default()
        };
        let text = verdict.to_string();
        assert!(text.contains("wrong 1"), "{text}");
        assert!(text.contains("dead-lettered 2"), "{text}");
        assert!(text.contains("user_c: deleted"), "{text}");
    }
}
