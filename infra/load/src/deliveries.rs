//! The deliveries of a run: every event of the model once, a share of them again (Svix redelivers
//! under the same message id), all shuffled so a user's events arrive in any order.

use crate::model::Model;

/// One webhook delivery: an event of the model, sent under its svix id.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub svix_id: String,
    pub body: String,
    /// Whether this is the redelivery of an event also delivered elsewhere in the run.
    pub duplicate: bool,
}

/// The model's events plus `size.deliveries - events` redeliveries of random ones, shuffled with
/// the model's seed.
pub fn plan(model: &Model) -> Vec<Delivery> {
    let mut rng = fastrand::Rng::with_seed(model.size.seed ^ 0x5eed);
    let events: Vec<_> = model.events().collect();
    let mut deliveries: Vec<Delivery> = events
        .iter()
        .map(|e| Delivery {
            svix_id: e.svix_id.clone(),
            body: e.body.clone(),
            duplicate: false,
        })
        .collect();
    let extra = model.size.deliveries.saturating_sub(events.len());
    for _ in 0..extra {
        let e = events[rng.usize(..events.len())];
        deliveries.push(Delivery {
            svix_id: e.svix_id.clone(),
            body: e.body.clone(),
            duplicate: true,
        });
    }
    rng.shuffle(&mut deliveries);
    deliveries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Size;

    #[test]
    fn every_event_is_delivered_and_the_duplicates_make_up_the_rest() {
        let size = Size {
            users: 30,
            deliveries: 220,
            duplicate_percent: 10,
            delete_percent: 20,
            seed: 11,
        };
        let model = Model::generate(size);
        let deliveries = plan(&model);
        assert_eq!(deliveries.len(), 220);
        assert_eq!(deliveries.iter().filter(|d| d.duplicate).count(), 20);
        for event in model.events() {
            assert!(deliveries.iter().any(|d| d.svix_id == event.svix_id));
        }
    }

    #[test]
    fn deliveries_are_shuffled_across_users() {
        let model = Model::generate(Size {
            users: 30,
            deliveries: 220,
            duplicate_percent: 10,
            delete_percent: 20,
            seed: 11,
        });
        let in_model_order: Vec<_> = model.events().map(|e| e.svix_id.clone()).collect();
        let sent: Vec<_> = plan(&model)
            .into_iter()
            .filter(|d| !d.duplicate)
            .map(|d| d.svix_id)
            .collect();
        assert_ne!(sent, in_model_order);
    }
}
