//! Which event types the sync stores.

/// Event types the sync stores unless configured otherwise.
pub const DEFAULT_SYNCED_EVENT_TYPES: &str = "user.created,user.updated,user.deleted";

/// The allow-list of event types the sync stores; everything else is acknowledged and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypeFilter(Vec<String>);

impl EventTypeFilter {
    /// Parses a comma- or whitespace-separated list. An empty list is refused: it would silently
    /// drop every event.
    pub fn parse(list: &str) -> Result<Self, String> {
        let types: Vec<String> = crate::list_items(list).map(str::to_owned).collect();
        if types.is_empty() {
            return Err("the list of synced event types is empty".into());
        }
        Ok(Self(types))
    }

    pub fn allows(&self, event_type: &str) -> bool {
        self.0.iter().any(|t| t == event_type)
    }
}

impl Default for EventTypeFilter {
    fn default() -> Self {
        Self::parse(DEFAULT_SYNCED_EVENT_TYPES).expect("default list is not empty")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_filter_defaults_to_user_events_and_refuses_an_empty_list() {
        let f = EventTypeFilter::default();
        assert!(f.allows("user.created") && f.allows("user.updated") && f.allows("user.deleted"));
        assert!(!f.allows("session.created"));
        assert!(EventTypeFilter::parse(" , ").is_err());
        assert!(
            EventTypeFilter::parse("user.created organization.created")
                .unwrap()
                .allows("organization.created")
        );
    }
}
