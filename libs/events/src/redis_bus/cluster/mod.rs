//! Sharded pub/sub on a Redis Cluster: each topic's channel is subscribed
//! (`SSUBSCRIBE`) on the primary owning its slot, over one connection per
//! primary that this module owns ([`node`]), so it always knows what is
//! subscribed where. (The Redis client's own cluster subscriptions were
//! tried first: after a failover it replaced node connections on its own and
//! resubscribed their channels in one `SSUBSCRIBE` per node, which a node
//! refuses when they hash to different slots, so subscriptions vanished
//! without a word.)
//!
//! What can lose events, and what this does about each:
//! - a node's connection ends (the node died, the network broke, or it went
//!   silent for 15 s): a gap is reported at once; the next read asks the
//!   cluster for its slot map again and subscribes every topic on the
//!   primary now owning it, retrying until each has confirmed (a dead
//!   primary's slots come back once its replica is promoted), then reports a
//!   second gap, after which nothing published is missed;
//! - the server drops a subscription (`sunsubscribe` push: its slot moved to
//!   another primary): the same;
//! - the queue of received messages fills (this process reads slower than
//!   events arrive): a gap.

mod node;
mod resp;
mod slots;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chatterbox_proto::events::v1::Envelope;
use prost::Message as _;
use redis::ConnectionInfo;
use tokio::sync::mpsc;

use self::node::{Node, NodeEvent};
use self::slots::{Addr, SlotMap};
use super::count_gap;
use crate::{Received, Subscription, Topic};

/// Messages held for a slow reader before it is told of a gap instead.
const QUEUE: usize = 65_536;

/// How long a node may take to confirm a subscription.
const CONFIRM_WITHIN: Duration = Duration::from_secs(2);

/// A subscription over sharded pub/sub.
pub(super) struct ClusterSubscription {
    seeds: Vec<ConnectionInfo>,
    /// For `CLUSTER SLOTS`: the bus's own connection to the cluster.
    control: chatterbox_redis::Connection,
    slots: SlotMap,
    nodes: HashMap<Addr, Node>,
    next_node: u64,
    /// Each topic and the node holding its subscription.
    topics: HashMap<Topic, u64>,
    events: mpsc::Receiver<NodeEvent>,
    sender: mpsc::Sender<NodeEvent>,
    /// Set when a message found the queue full.
    overflowed: Arc<AtomicBool>,
    prefix: String,
    /// Every topic must be placed again before the next event is trusted.
    resubscribe: bool,
}

impl std::fmt::Debug for ClusterSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSubscription")
            .field("topics", &self.topics.len())
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl ClusterSubscription {
    pub(super) async fn open(
        seeds: &[ConnectionInfo],
        control: chatterbox_redis::Connection,
        prefix: String,
    ) -> anyhow::Result<Self> {
        let (sender, events) = mpsc::channel(QUEUE);
        let mut subscription = Self {
            seeds: seeds.to_vec(),
            control,
            slots: SlotMap::default(),
            nodes: HashMap::new(),
            next_node: 1,
            topics: HashMap::new(),
            events,
            sender,
            overflowed: Arc::new(AtomicBool::new(false)),
            prefix,
            resubscribe: false,
        };
        subscription.refresh_slots().await?;
        Ok(subscription)
    }

    /// Asks the cluster which primary serves which slot.
    async fn refresh_slots(&mut self) -> anyhow::Result<()> {
        let reply: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut self.control).await?;
        let default_host = match self.seeds.first().map(ConnectionInfo::addr) {
            Some(redis::ConnectionAddr::Tcp(host, _)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        self.slots = SlotMap::from_reply(&reply, &default_host)
            .ok_or_else(|| anyhow::anyhow!("CLUSTER SLOTS gave an answer this cannot read"))?;
        Ok(())
    }

    /// The primary serving `channel`, by the slot map last read.
    fn owner_of(&self, channel: &[u8]) -> anyhow::Result<Addr> {
        self.slots
            .owner(slots::slot(channel))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no primary serves the slot of an event channel"))
    }

    /// The connection to `addr`, made if need be.
    async fn node_at(&mut self, addr: &Addr) -> anyhow::Result<&Node> {
        if !self.nodes.contains_key(addr) {
            let id = self.next_node;
            self.next_node += 1;
            let seed = self.seeds.first().ok_or_else(|| anyhow::anyhow!("no seed node"))?;
            let node = Node::connect(id, addr, seed, self.sender.clone(), self.overflowed.clone()).await?;
            self.nodes.insert(addr.clone(), node);
        }
        Ok(&self.nodes[addr])
    }

    /// Subscribes each topic on the primary serving it and waits for every
    /// confirmation; the first failure, if any (the topics stay wanted). A
    /// node that cannot be reached is tried once per call, not once per topic.
    async fn place(&mut self, topics: &[Topic]) -> anyhow::Result<()> {
        let mut answers = Vec::with_capacity(topics.len());
        let mut unreachable: Vec<Addr> = Vec::new();
        let mut first_error = None;
        for topic in topics {
            let channel = topic.channel(&self.prefix).into_bytes();
            let addr = match self.owner_of(&channel) {
                Ok(addr) if !unreachable.contains(&addr) => addr,
                Ok(_) => continue,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            match self.node_at(&addr).await {
                Ok(node) => {
                    let (id, answer) = (node.id, node.subscribe(channel));
                    self.topics.insert(*topic, id);
                    answers.push(answer);
                }
                Err(e) => {
                    unreachable.push(addr);
                    first_error.get_or_insert(e);
                }
            }
        }
        for answer in answers {
            let confirmed = match tokio::time::timeout(CONFIRM_WITHIN, answer).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(refused))) => Err(anyhow::anyhow!("a node refused a subscription: {refused}")),
                Ok(Err(_)) => Err(anyhow::anyhow!("a node's connection ended before it confirmed a subscription")),
                Err(_) => Err(anyhow::anyhow!("a node did not confirm a subscription in time")),
            };
            if let Err(e) = confirmed {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Learns the slot map again and places every topic, retrying with
    /// backoff until all are confirmed.
    async fn resubscribe_all(&mut self) {
        let mut delay = Duration::from_millis(50);
        loop {
            let all: Vec<Topic> = self.topics.keys().copied().collect();
            let attempt = match self.refresh_slots().await {
                Ok(()) => self.place(&all).await,
                Err(e) => Err(e),
            };
            match attempt {
                Ok(()) => {
                    tracing::info!(topics = all.len(), "event bus resubscribed on the cluster");
                    self.resubscribe = false;
                    return;
                }
                Err(e) => tracing::warn!(error = %e, retry_in = ?delay, "event bus resubscription failed"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    fn topic_of(&self, channel: &[u8]) -> Option<Topic> {
        Topic::from_channel(&self.prefix, std::str::from_utf8(channel).ok()?)
    }

    /// Forgets a node whose connection ended; whether it held any topic.
    fn lose(&mut self, id: u64) -> bool {
        self.nodes.retain(|_, node| node.id != id);
        self.topics.values().any(|node| *node == id)
    }
}

#[async_trait::async_trait]
impl Subscription for ClusterSubscription {
    async fn subscribe(&mut self, topics: &[Topic]) -> anyhow::Result<()> {
        let fresh: Vec<Topic> = topics.iter().copied().filter(|t| !self.topics.contains_key(t)).collect();
        if fresh.is_empty() {
            return Ok(());
        }
        // A topic not confirmed now is placed again on the next read.
        if let Err(e) = self.place(&fresh).await {
            tracing::warn!(error = %e, "subscribe failed; will resubscribe");
            for topic in fresh {
                self.topics.entry(topic).or_insert(0);
            }
            self.resubscribe = true;
        }
        Ok(())
    }

    async fn unsubscribe(&mut self, topics: &[Topic]) -> anyhow::Result<()> {
        for topic in topics {
            let Some(id) = self.topics.remove(topic) else { continue };
            // Events of a topic that could not be left are dropped as they come.
            if let Some(node) = self.nodes.values().find(|n| n.id == id) {
                node.unsubscribe(topic.channel(&self.prefix).into_bytes());
            }
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<Received> {
        loop {
            if self.resubscribe {
                self.resubscribe_all().await;
                count_gap();
                return Some(Received::Gap);
            }
            if self.overflowed.swap(false, Ordering::Relaxed) {
                count_gap();
                return Some(Received::Gap);
            }
            // The sender is held here too: this never ends by itself.
            let event = self.events.recv().await?;
            match event {
                NodeEvent::Message { channel, payload } => {
                    // A late message for a topic just left is dropped here.
                    let Some(topic) = self.topic_of(&channel).filter(|t| self.topics.contains_key(t)) else { continue };
                    match Envelope::decode(payload.as_slice()) {
                        Ok(envelope) => return Some(Received::Event { topic, envelope: Arc::new(envelope) }),
                        Err(e) => tracing::warn!(%topic, error = %e, "undecodable event skipped"),
                    }
                }
                // Said at once (listeners stop trusting what they cached);
                // said again, and counted, once resubscribed.
                NodeEvent::Lost { node } => {
                    if self.lose(node) {
                        self.resubscribe = true;
                        return Some(Received::Gap);
                    }
                }
                NodeEvent::Dropped { node, channel } => {
                    let wanted = self.topic_of(&channel).and_then(|t| self.topics.get(&t)).is_some_and(|n| *n == node);
                    if wanted {
                        self.resubscribe = true;
                        return Some(Received::Gap);
                    }
                }
            }
        }
    }
}
