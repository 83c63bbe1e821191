# syntax=docker/dockerfile:1
#
# Container image for tresor: the `tresor` binary and a CA bundle on
# distroless/cc (glibc and libgcc_s, no shell, no package manager).
#
# NOTE: this image has never been built: the machine this file was written on
# runs no Docker engine. Its build command, `cargo build --release --locked`,
# was run there (Debian bookworm, stable Rust) and succeeds. The file is
# checked by hadolint and by tests/dockerfile.rs, which also keeps the
# README's `docker run` example in step with it.
#
# Base images are named by tag only: no digest of them could be verified
# where this was written. Pin each FROM before building for real:
#   docker buildx imagetools inspect <tag>     # prints the digest
#
# Layout inside the container (the README's "Container image" section):
#   /usr/local/bin/tresor            the binary (ENTRYPOINT)
#   /data                            the keystore and the audit log (VOLUME, uid 65532)
#   /etc/tresor/master.key           master key file        (mount read-only)
#   /etc/tresor/ca.pem               CA of server and client certificates
#   /etc/tresor/server/{cert,key}.pem  server certificate
#   /etc/tresor/health/{cert,key}.pem  client certificate of the HEALTHCHECK
#
#   docker build -t tresor .
#   docker run --read-only --cap-drop ALL --security-opt no-new-privileges \
#     -p 7443:7443 -v tresor-data:/data -v /etc/tresor:/etc/tresor:ro \
#     tresor serve --listen 0.0.0.0:7443 --data-dir /data \
#     --master-key-file /etc/tresor/master.key \
#     --tls-cert /etc/tresor/server/cert.pem --tls-key /etc/tresor/server/key.pem \
#     --client-ca /etc/tresor/ca.pem --admin spiffe://example.org/admin
#
# Read-only root filesystem: the server writes only below --data-dir (/data,
# a volume: keystore and audit log; put --backup-dir on a volume too), so
# `--read-only` needs no --tmpfs. Everything under /etc/tresor is only read.
# The files there must be readable by uid 65532; the master key must also
# have no group/other permission bits, or the server refuses to start.

# ---- build ------------------------------------------------------------------
# pin: replace with @sha256:... of rust:1-bookworm when building
FROM rust:1-bookworm AS build
WORKDIR /src
# No protoc needed: crates/tresor-proto/build.rs compiles the proto with protox (pure Rust).
# .dockerignore keeps target/, .git/, keys and certificates out of the context.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tresor \
 && install -D -m 0755 target/release/tresor /out/tresor \
 && install -d -m 0700 /out/data

# ---- runtime ----------------------------------------------------------------
# pin: replace with @sha256:... of gcr.io/distroless/cc-debian12:nonroot when building
FROM gcr.io/distroless/cc-debian12:nonroot
# Only the binary and the CA bundle (for AWS KMS over TLS), plus the empty
# /data owned by the runtime user so a new named volume starts writable.
COPY --from=build /out/tresor /usr/local/bin/tresor
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 /out/data /data
# distroless "nonroot", by number so the runtime needs no /etc/passwd lookup.
USER 65532:65532
# Connection settings of `tresor health`, the HEALTHCHECK: it asks the gRPC
# health service over mTLS with a client certificate from the server's CA
# (any identity; it needs no grants). The server certificate must name
# 127.0.0.1, or set TRESOR_HEALTH_SERVER_NAME to a name it does carry.
ENV TRESOR_ADDR=https://127.0.0.1:7443 \
    TRESOR_CA=/etc/tresor/ca.pem \
    TRESOR_CERT=/etc/tresor/health/cert.pem \
    TRESOR_KEY=/etc/tresor/health/key.pem
VOLUME ["/data"]
EXPOSE 7443
# Unhealthy while sealed or while the keystore does not answer (the whole
# server's status). Set TRESOR_HEALTH_SERVICE=tresor.v1.Admin to stay healthy
# while sealed where an orchestrator replaces unhealthy containers: a new
# container would start unsealed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/tresor", "health", "--timeout", "3s"]
ENTRYPOINT ["/usr/local/bin/tresor"]
CMD ["serve", "--listen", "0.0.0.0:7443", "--data-dir", "/data", \
     "--master-key-file", "/etc/tresor/master.key", \
     "--tls-cert", "/etc/tresor/server/cert.pem", "--tls-key", "/etc/tresor/server/key.pem", \
     "--client-ca", "/etc/tresor/ca.pem"]
