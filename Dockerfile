# One image, one binary: `chatterbox` runs every part (`chatterbox all`) or
# one of them (`chatterbox run auth|user|conversation|message|gateway`), so a
# deployment pulls one image and scales each part as its own Deployment.
# There is no Docker engine on the build machine; this file is kept simple
# enough to be checked by reading it.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin chatterbox \
 && install -D target/release/chatterbox /out/chatterbox

# glibc + CA certificates, no shell, runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/chatterbox /usr/local/bin/chatterbox
ENV CHATTERBOX_HTTP_ADDR=0.0.0.0:8080 \
    CHATTERBOX_DATA_DIR=/var/lib/chatterbox \
    CHATTERBOX_LOG_JSON=true
USER 65532:65532
# gateway HTTP; auth, user, conversation, message gRPC; metrics of a lone part
EXPOSE 8080 50051 50052 50053 50054 9090
ENTRYPOINT ["/usr/local/bin/chatterbox"]
CMD ["all"]
