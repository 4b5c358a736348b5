//! Generated protobuf messages and gRPC stubs for the ChatterBox services.

#![allow(missing_docs, clippy::all, missing_debug_implementations)]

/// Encoded file descriptors of every API, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

/// `chatterbox.auth.v1`: registration, login, token refresh and logout.
pub mod auth {
    /// Version 1 of the auth API.
    pub mod v1 {
        tonic::include_proto!("chatterbox.auth.v1");
    }
}

/// `chatterbox.user.v1`: user profiles.
pub mod user {
    /// Version 1 of the user API.
    pub mod v1 {
        tonic::include_proto!("chatterbox.user.v1");
    }
}

/// `chatterbox.conversation.v1`: direct conversations, groups and rooms.
pub mod conversation {
    /// Version 1 of the conversation API.
    pub mod v1 {
        tonic::include_proto!("chatterbox.conversation.v1");
    }
}

/// `chatterbox.message.v1`: messages, history, read watermarks.
pub mod message {
    /// Version 1 of the message API.
    pub mod v1 {
        tonic::include_proto!("chatterbox.message.v1");
    }
}

/// `chatterbox.presence.v1`: online, away, offline.
pub mod presence {
    /// Version 1 of the presence API.
    pub mod v1 {
        tonic::include_proto!("chatterbox.presence.v1");
    }
}

/// `chatterbox.media.v1`: uploads, downloads, attachments.
pub mod media {
    /// Version 1 of the media API.
    pub mod v1 {
        tonic::include_proto!("chatterbox.media.v1");
    }
}

/// `chatterbox.events.v1`: what services publish after commit.
pub mod events {
    /// Version 1 of the event payloads.
    pub mod v1 {
        tonic::include_proto!("chatterbox.events.v1");
    }
}
