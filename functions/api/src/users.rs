//! The user reads: the caller's own record (lazily synced), or any record for an admin.

use clerk_sync::domain::auth::Principal;
use clerk_sync::domain::user::{Stored, UserId, UserProfile};
use clerk_sync::edge::json_response;
use clerk_sync::telemetry::metrics::Document;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

use crate::view::UserView;
use crate::{Api, ApiError, no_store};

impl Api {
    pub(crate) async fn stored(&self, id: &UserId) -> Result<Option<Stored>, ApiError> {
        self.deps
            .users
            .get(id)
            .await
            .map_err(ApiError::StoreUnavailable)
    }

    pub(crate) async fn me(
        &self,
        principal: &Principal,
        document: &mut Document<'_>,
    ) -> Result<UserProfile, ApiError> {
        match self.stored(&principal.user_id).await? {
            Some(Stored::Live(user)) => Ok(*user),
            Some(Stored::Tombstone { .. }) => Err(ApiError::UserNotFound),
            None => self.lazy_sync(&principal.user_id, document).await,
        }
    }

    /// `id` is `None` when the path named no Clerk-shaped id: that is no one's own id, so only an
    /// admin learns that no such user exists.
    pub(crate) async fn user(
        &self,
        principal: &Principal,
        id: Option<&UserId>,
    ) -> Result<UserProfile, ApiError> {
        let allowed = id == Some(&principal.user_id) || principal.is_admin;
        if !allowed {
            return Err(ApiError::Forbidden);
        }
        let id = id.ok_or(ApiError::UserNotFound)?;
        match self.stored(id).await? {
            Some(Stored::Live(user)) => Ok(*user),
            _ => Err(ApiError::UserNotFound),
        }
    }
}

pub(crate) fn user_response(user: UserProfile) -> Response<Body> {
    let mut response = json_response(StatusCode::OK, &UserView::from(&user));
    no_store(&mut response);
    response
}
