//! Users and conversations for a scenario. Users are created straight in
//! the user service with a service token and given access tokens signed
//! with the installation's key (the bench holds it, as an operator would):
//! registering ten thousand users through Argon2 would measure password
//! hashing, not real time. Conversations go through the public API.

use std::net::SocketAddr;
use std::time::Duration;

use chatterbox_identity::{TokenSettings, TokenSigner};
use chatterbox_proto::user::v1::CreateUserRequest;
use chatterbox_proto::user::v1::user_service_client::UserServiceClient;
use chatterbox_types::UserId;
use futures::StreamExt as _;
use serde_json::{Value, json};

/// Requests in flight while populating.
const PARALLEL: usize = 16;

/// A user as a client holds it.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub token: String,
}

/// Mints users and builds conversations.
#[derive(Debug, Clone)]
pub struct Populator {
    signer: TokenSigner,
    users: UserServiceClient<chatterbox_runtime::GrpcChannel>,
    http: reqwest::Client,
}

impl Populator {
    /// For a suite whose key pair is `private_pem`, user service at `user_service`.
    pub fn new(private_pem: &str, user_service: SocketAddr) -> anyhow::Result<Self> {
        let settings =
            TokenSettings { issuer: "chatterbox".into(), audience: "chatterbox-api".into(), access_ttl_secs: 7200 };
        let channel = chatterbox_runtime::connect(&format!("http://{user_service}"), Duration::from_secs(30), None)?;
        Ok(Self {
            signer: TokenSigner::new(private_pem, settings)?,
            users: UserServiceClient::new(channel),
            http: reqwest::Client::builder().pool_max_idle_per_host(PARALLEL).build()?,
        })
    }

    /// Creates `n` users named `<prefix><i>`.
    pub async fn users(&self, prefix: &str, n: usize) -> anyhow::Result<Vec<Member>> {
        let service = self.signer.issue_service("auth")?;
        let made = futures::stream::iter(0..n)
            .map(|i| {
                let (mut users, service, signer) = (self.users.clone(), service.clone(), self.signer.clone());
                let name = format!("bench_{prefix}{i:06}");
                async move {
                    let id = UserId::generate();
                    let request = CreateUserRequest {
                        id: id.to_string(),
                        email: format!("{name}@bench.example"),
                        username: name,
                    };
                    users.create_user(chatterbox_identity::with_bearer(request, &service)?).await?;
                    // A login session of its own that no one ends (no auth
                    // record: the bench skips logging in).
                    let (token, _) = signer.issue_access(id, chatterbox_types::SessionId::generate())?;
                    anyhow::Ok(Member { id: id.to_string(), token })
                }
            })
            .buffered(PARALLEL)
            .collect::<Vec<_>>()
            .await;
        made.into_iter().collect()
    }

    async fn post(&self, gateway: SocketAddr, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        let response = self.http.post(format!("http://{gateway}{path}")).bearer_auth(token).json(&body).send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    /// One group per slice of `members`, created by its first member; returns their ids.
    pub async fn groups(&self, gateway: SocketAddr, groups: &[Vec<Member>]) -> anyhow::Result<Vec<String>> {
        let made = futures::stream::iter(groups.iter().enumerate())
            .map(|(i, members)| async move {
                let others: Vec<&str> = members[1..].iter().map(|m| m.id.as_str()).collect();
                let kind = if members.len() == 2 { "direct" } else { "group" };
                let body = json!({"type": kind, "name": format!("bench {i}"), "participant_ids": others});
                let created = self.post(gateway, "/api/v1/conversations", &members[0].token, body).await?;
                anyhow::Ok(created["id"].as_str().unwrap_or_default().to_owned())
            })
            .buffered(PARALLEL)
            .collect::<Vec<_>>()
            .await;
        made.into_iter().collect()
    }

    /// A room created by the first member and joined by every other.
    pub async fn room(&self, gateway: SocketAddr, members: &[Member]) -> anyhow::Result<String> {
        let body = json!({"name": format!("bench room {}", ulid::Ulid::new()), "description": "load"});
        let created = self.post(gateway, "/api/v1/rooms", &members[0].token, body).await?;
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        let path = format!("/api/v1/rooms/{id}/join");
        let joins = futures::stream::iter(&members[1..])
            .map(|m| self.post(gateway, &path, &m.token, json!({})))
            .buffered(PARALLEL)
            .collect::<Vec<_>>()
            .await;
        for join in joins {
            join?;
        }
        Ok(id)
    }
}

/// Splits `members` into consecutive groups of `size`.
pub fn chunks(members: &[Member], size: usize) -> Vec<Vec<Member>> {
    members.chunks(size).map(<[Member]>::to_vec).collect()
}
