# syntax=docker/dockerfile:1
# amq2api in a container: a locked release build, then a slim Debian image holding the binary.
#   docker build -t amq2api .
#   docker run -d --name amq2api -p 8080:8080 -v amq2api-data:/app/data --stop-timeout 35 amq2api
# The database lives on the volume at /app/data; manage it with the same image, e.g.
#   docker exec amq2api amq2api keys create --name me
# See README.md, "Running in Docker", for a docker-compose.yml.

# The toolchain CI tests with (Cargo.toml's rust-version, 1.85, is only the minimum).
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep crates.io downloads and compiled dependencies between builds (BuildKit),
# so a source change rebuilds amq2api alone. SQLite is compiled in; TLS is rustls: no -dev package.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/amq2api /usr/local/bin/amq2api

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed non-root uid, so that Kubernetes' runAsNonRoot can check it and a bind-mounted data
# folder can be given to it (chown 10001:10001).
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin amq2api \
    && mkdir -p /app/data \
    && chown amq2api:amq2api /app/data
COPY --from=builder /usr/local/bin/amq2api /usr/local/bin/amq2api
WORKDIR /app
# The seed's variables work as they are: AMAZONQ_REFRESH_TOKEN, AMAZONQ_CLIENT_ID,
# AMAZONQ_CLIENT_SECRET, AMAZONQ_PROFILE_ARN, AMAZONQ_API_ENDPOINT, AMAZONQ_TOKEN_ENDPOINT, PORT.
ENV HOST=0.0.0.0 \
    PORT=8080 \
    DATABASE_PATH=/app/data/amq2api.db
VOLUME ["/app/data"]
USER 10001:10001
EXPOSE 8080
# No curl in a slim image: the binary checks GET http://127.0.0.1:$PORT/health itself (3 s).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["amq2api", "healthcheck"]
# SIGTERM (docker stop) shuts down gracefully; open streams get 30 s, hence --stop-timeout 35.
ENTRYPOINT ["amq2api"]
CMD ["serve"]
