//! The table of parts: which parts a process can run, which other parts
//! each one calls, what it keeps state in when it runs alone, where it
//! listens and which key it holds. The binary wires the parts from it, and
//! the multi-process tests, the bench and the deployment tests start or
//! check the parts from it, so a new dependency is written once, here.

use std::collections::HashMap;
use std::net::SocketAddr;

use chatterbox_config::Config;

/// The parts a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Part {
    /// The auth service (gRPC).
    Auth,
    /// The user service (gRPC).
    User,
    /// The conversation service (gRPC).
    Conversation,
    /// The message service (gRPC).
    Message,
    /// The presence service (gRPC).
    Presence,
    /// The media service (gRPC).
    Media,
    /// The HTTP gateway.
    Gateway,
}

/// What a part keeps state in, shared with its replicas, when it runs alone
/// (the one-process mode has embedded stand-ins for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// Its own MongoDB database (`MONGODB_URI`); SQLite under the data dir without it.
    MongoDb,
    /// Redis (`REDIS_URL`): the event bus, shared rate limits, presence,
    /// ended login sessions.
    Redis,
    /// An S3 bucket (`S3_BUCKET`) for file bytes.
    S3,
}

impl Backing {
    /// The variable that names it.
    pub fn variable(self) -> &'static str {
        match self {
            Backing::MongoDb => "MONGODB_URI",
            Backing::Redis => "REDIS_URL",
            Backing::S3 => "S3_BUCKET",
        }
    }
}

/// The token key a part holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The private key: it issues tokens (auth only).
    Signing,
    /// The public key: it checks them.
    Verifying,
}

impl Key {
    /// The variable naming its file.
    pub fn variable(self) -> &'static str {
        match self {
            Key::Signing => "CHATTERBOX_JWT_PRIVATE_KEY_FILE",
            Key::Verifying => "CHATTERBOX_JWT_PUBLIC_KEY_FILE",
        }
    }
}

impl Part {
    /// Every part.
    pub const ALL: [Part; 7] =
        [Part::Auth, Part::User, Part::Conversation, Part::Message, Part::Presence, Part::Media, Part::Gateway];

    /// An order to start the parts alone in: each after the parts it calls,
    /// except where calls go round (user → media → conversation → user);
    /// [`Part::addressed_before_start`] names the parts whose address must be
    /// chosen before anything starts.
    pub const START_ORDER: [Part; 7] =
        [Part::User, Part::Auth, Part::Conversation, Part::Presence, Part::Media, Part::Message, Part::Gateway];

    /// Its name on the command line (`chatterbox run <name>`) and in deployments.
    pub fn name(self) -> &'static str {
        match self {
            Part::Auth => "auth",
            Part::User => "user",
            Part::Conversation => "conversation",
            Part::Message => "message",
            Part::Presence => "presence",
            Part::Media => "media",
            Part::Gateway => "gateway",
        }
    }

    /// The parts it calls.
    pub fn calls(self) -> &'static [Part] {
        match self {
            // Profiles live in the user service.
            Part::Auth => &[Part::User],
            // Avatars are media.
            Part::User => &[Part::Media],
            // Participants must be users.
            Part::Conversation => &[Part::User],
            // Membership, and attachments.
            Part::Message => &[Part::Conversation, Part::Media],
            // Who may see an attachment.
            Part::Media => &[Part::Conversation],
            // Last-seen times; whose presence a user may hear.
            Part::Presence => &[Part::User, Part::Conversation],
            Part::Gateway => &[Part::Auth, Part::User, Part::Conversation, Part::Message, Part::Presence, Part::Media],
        }
    }

    /// What it keeps state in when it runs alone.
    pub fn backings(self) -> &'static [Backing] {
        match self {
            // Every part reads the ended login sessions from Redis; auth
            // writes them and counts failed logins there; conversation and
            // message publish events.
            Part::Auth | Part::User | Part::Conversation | Part::Message => &[Backing::MongoDb, Backing::Redis],
            Part::Media => &[Backing::MongoDb, Backing::S3, Backing::Redis],
            // Connections and shared limits; events.
            Part::Presence | Part::Gateway => &[Backing::Redis],
        }
    }

    /// The token key it holds.
    pub fn key(self) -> Key {
        match self {
            Part::Auth => Key::Signing,
            _ => Key::Verifying,
        }
    }

    /// The variable naming where it listens: HTTP for the gateway, gRPC for services.
    pub fn listen_variable(self) -> &'static str {
        match self {
            Part::Gateway => "CHATTERBOX_HTTP_ADDR",
            _ => "CHATTERBOX_GRPC_ADDR",
        }
    }

    /// The variable its callers are given its URL in (`CHATTERBOX_<PART>_URL`).
    pub fn url_variable(self) -> &'static str {
        match self {
            Part::Auth => "CHATTERBOX_AUTH_URL",
            Part::User => "CHATTERBOX_USER_URL",
            Part::Conversation => "CHATTERBOX_CONVERSATION_URL",
            Part::Message => "CHATTERBOX_MESSAGE_URL",
            Part::Presence => "CHATTERBOX_PRESENCE_URL",
            Part::Media => "CHATTERBOX_MEDIA_URL",
            Part::Gateway => "CHATTERBOX_GATEWAY_URL",
        }
    }

    /// Its URL as `config` gives it to callers.
    pub fn configured_url(self, config: &Config) -> Option<&str> {
        match self {
            Part::Auth => config.auth_url.as_deref(),
            Part::User => config.user_url.as_deref(),
            Part::Conversation => config.conversation_url.as_deref(),
            Part::Message => config.message_url.as_deref(),
            Part::Presence => config.presence_url.as_deref(),
            Part::Media => config.media_url.as_deref(),
            // Nothing calls the gateway.
            Part::Gateway => None,
        }
    }

    /// What a deployment must give it to run alone, sharing state with its
    /// replicas: its backings, where it listens, the URL of each part it
    /// calls, and its key file.
    pub fn deployment_variables(self) -> Vec<&'static str> {
        let mut variables: Vec<&'static str> = self.backings().iter().map(|b| b.variable()).collect();
        variables.push(self.listen_variable());
        variables.extend(self.calls().iter().map(|p| p.url_variable()));
        variables.push(self.key().variable());
        variables
    }

    /// The variables telling it where the parts it calls are, given each
    /// one's URL.
    pub fn peer_env(self, url_of: impl Fn(Part) -> String) -> Vec<(String, String)> {
        self.calls().iter().map(|p| (p.url_variable().to_owned(), url_of(*p))).collect()
    }

    /// The parts whose address must be chosen before the parts start in
    /// [`Part::START_ORDER`]: called by a part that starts before them.
    pub fn addressed_before_start() -> Vec<Part> {
        let mut early = Vec::new();
        for (i, part) in Part::START_ORDER.iter().enumerate() {
            for called in part.calls() {
                if !Part::START_ORDER[..i].contains(called) && !early.contains(called) {
                    early.push(*called);
                }
            }
        }
        early
    }

    /// The gRPC port a service listens on when run alone and none is configured.
    pub fn default_grpc_port(self) -> u16 {
        match self {
            Part::Auth => 50051,
            Part::User => 50052,
            Part::Conversation => 50053,
            Part::Message => 50054,
            Part::Presence => 50055,
            Part::Media => 50056,
            Part::Gateway => 0,
        }
    }
}

/// Where the parts are while they are started one by one, each alone (the
/// multi-process tests, the bench): the addresses fixed before anything
/// starts (see [`Part::addressed_before_start`]) and those learned as each
/// part comes up, and from them the variables each part is started with.
#[derive(Debug, Default)]
pub struct Layout {
    urls: HashMap<Part, String>,
    fixed: HashMap<Part, SocketAddr>,
}

impl Layout {
    /// Fixes an address, from `reserve`, for each part called before it starts.
    pub fn new(mut reserve: impl FnMut() -> std::io::Result<SocketAddr>) -> std::io::Result<Self> {
        let mut layout = Self::default();
        for part in Part::addressed_before_start() {
            let addr = reserve()?;
            layout.fixed.insert(part, addr);
            layout.urls.insert(part, format!("http://{addr}"));
        }
        Ok(layout)
    }

    /// The variables that tell `part` where the parts it calls are, and
    /// where to listen when its address was fixed. Every part it calls must
    /// have started (or been fixed) before: [`Part::START_ORDER`] sees to it.
    pub fn env(&self, part: Part) -> Vec<(String, String)> {
        let mut env = part.peer_env(|called| {
            self.urls
                .get(&called)
                .cloned()
                .unwrap_or_else(|| panic!("{} is started before {}, which it calls", part.name(), called.name()))
        });
        if let Some(addr) = self.fixed.get(&part) {
            env.push((part.listen_variable().to_owned(), addr.to_string()));
        }
        env
    }

    /// Notes that `part` listens at `addr`.
    pub fn started(&mut self, part: Part, addr: SocketAddr) {
        self.urls.insert(part, format!("http://{addr}"));
    }

    /// Starts every service, each alone, in [`Part::START_ORDER`] (the
    /// gateways, of which there may be several, are the caller's to start
    /// after): `start` gets the part and its variables (`own` of it, then
    /// where the parts it calls are) and returns what it started and where
    /// callers are to reach it (the part itself, or something in front of
    /// it). The one loop the multi-process tests and the bench share.
    pub async fn start_services<T>(
        &mut self,
        mut own: impl FnMut(Part) -> Vec<(String, String)>,
        mut start: impl AsyncFnMut(Part, Vec<(String, String)>) -> anyhow::Result<(T, SocketAddr)>,
    ) -> anyhow::Result<Vec<(Part, T)>> {
        let mut started = Vec::new();
        for part in Part::START_ORDER.into_iter().filter(|p| *p != Part::Gateway) {
            let mut env = own(part);
            env.extend(self.env(part));
            let (what, addr) = start(part, env).await?;
            self.started(part, addr);
            started.push((part, what));
        }
        Ok(started)
    }

    /// A gateway's variables: `own`, then where the services are.
    pub fn gateway_env(&self, mut own: Vec<(String, String)>) -> Vec<(String, String)> {
        own.extend(self.env(Part::Gateway));
        own
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::*;

    #[test]
    fn every_part_is_in_the_table_once_and_named_as_on_the_command_line() {
        assert_eq!(Part::value_variants(), &Part::ALL);
        let mut ordered = Part::START_ORDER.to_vec();
        ordered.sort();
        assert_eq!(ordered, Part::ALL);
        for part in Part::ALL {
            assert_eq!(part.to_possible_value().unwrap().get_name(), part.name());
            assert_eq!(part.url_variable(), format!("CHATTERBOX_{}_URL", part.name().to_uppercase()));
        }
    }

    #[test]
    fn only_the_circle_of_calls_needs_an_address_before_start() {
        // user → media → conversation → user: media is chosen first.
        assert_eq!(Part::addressed_before_start(), vec![Part::Media]);
        assert!(Part::ALL.iter().all(|p| !p.calls().contains(&Part::Gateway)), "nothing calls the gateway");
        assert!(Part::ALL.iter().all(|p| !p.calls().contains(p)), "no part calls itself");
    }

    #[test]
    fn a_layout_gives_each_part_in_start_order_the_urls_of_what_it_calls() {
        let mut port = 40_000;
        let mut layout = Layout::new(|| {
            port += 1;
            Ok(SocketAddr::from(([127, 0, 0, 1], port)))
        })
        .unwrap();
        for (n, part) in Part::START_ORDER.into_iter().enumerate() {
            let env = layout.env(part);
            for called in part.calls() {
                assert!(env.iter().any(|(k, _)| k == called.url_variable()), "{part:?} learns where {called:?} is");
            }
            let listens = env.iter().find(|(k, _)| k == part.listen_variable()).map(|(_, v)| v.as_str());
            assert_eq!(listens, (part == Part::Media).then_some("127.0.0.1:40001"), "{part:?}");
            if part != Part::Media {
                layout.started(part, SocketAddr::from(([127, 0, 0, 1], 50_000 + n as u16)));
            }
        }
    }

    #[test]
    fn a_config_names_each_called_part_in_its_url_variable() {
        let config = Config {
            auth_url: Some("http://auth:1".into()),
            media_url: Some("http://media:6".into()),
            ..Config::default()
        };
        assert_eq!(Part::Auth.configured_url(&config), Some("http://auth:1"));
        assert_eq!(Part::Media.configured_url(&config), Some("http://media:6"));
        assert_eq!(Part::User.configured_url(&config), None);
        let env = Part::Message.peer_env(|p| format!("http://{}", p.name()));
        assert_eq!(
            env,
            vec![
                ("CHATTERBOX_CONVERSATION_URL".to_owned(), "http://conversation".to_owned()),
                ("CHATTERBOX_MEDIA_URL".to_owned(), "http://media".to_owned()),
            ]
        );
        assert_eq!(
            Part::Auth.deployment_variables(),
            [
                "MONGODB_URI",
                "REDIS_URL",
                "CHATTERBOX_GRPC_ADDR",
                "CHATTERBOX_USER_URL",
                "CHATTERBOX_JWT_PRIVATE_KEY_FILE"
            ]
        );
    }
}
